/* linux.seccomp compiled with libseccomp and loaded into the calling process. */
#ifndef BERTH_SECCOMP_H
#define BERTH_SECCOMP_H

#include <stdint.h>

#include "error.h"
#include "spec.h"

/* The libseccomp token of "SCMP_ARCH_X86_64" (or "x86_64"), 0 when unknown. */
uint32_t seccomp_arch_token (const char *name);
/* Compiles the profile and loads it. Syscall names libseccomp does not know are skipped, as runc does. */
int seccomp_load_profile (const struct spec_seccomp *sc, shim_error_t *err);

#endif
