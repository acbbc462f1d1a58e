/* linux.seccomp compiled with libseccomp into a BPF program, cached per profile, and loaded into
   the calling process. */
#ifndef BERTH_SECCOMP_H
#define BERTH_SECCOMP_H

#include <linux/filter.h>
#include <stdint.h>

#include "error.h"
#include "spec.h"

/* The libseccomp token of "SCMP_ARCH_X86_64" (or "x86_64"), 0 when unknown. */
uint32_t seccomp_arch_token (const char *name);

/* A profile compiled to BPF, with the seccomp(2) flags it asks for: what the runtime prepares
   before it clones, and the container's init (or an exec'd process) loads. */
struct seccomp_program
{
  struct sock_filter *filter;
  unsigned short len;
  unsigned int flags; /* SECCOMP_FILTER_FLAG_* */
};

/* Compiles the profile of `s` (linux.seccomp; syscall names libseccomp does not know are skipped,
   as runc does). With `cache_dir`, the program is kept there and taken from there the next time
   the same profile is compiled by the same libseccomp for the same kernel API level: compiling
   docker's profile takes longer than the rest of a container's setup. */
int seccomp_program_prepare (const struct spec *s, const char *cache_dir, struct seccomp_program *out,
                             shim_error_t *err);
/* Loads a prepared program into the calling process. */
int seccomp_program_load (const struct seccomp_program *p, shim_error_t *err);
void seccomp_program_release (struct seccomp_program *p);

#endif
