/* The last steps before execve, shared by a container's init and by exec: who the process runs
   as, its capabilities, no_new_privs, seccomp, and the exec itself. */
#ifndef BERTH_PROCESS_H
#define BERTH_PROCESS_H

#include <stdbool.h>

#include "error.h"
#include "seccomp.h"
#include "spec.h"

/* Finds args[0] on the PATH of the process's environment, in the current root. */
int process_find_executable (const struct spec_process *p, char **out, shim_error_t *err);
/* Adds HOME (from the container's /etc/passwd) when the environment has none, as runc does. */
char **process_environment (const struct spec_process *p);
/* Up to the point of waiting for `start`: seccomp when it must precede the capability drop,
   the bounding set, groups and ids, the other capability sets, umask and cwd. */
int process_set_identity (const struct spec_process *p, const struct seccomp_program *seccomp, shim_error_t *err);
/* no_new_privs and (then) seccomp, as late as possible; call right before process_exec. */
int process_finish_security (const struct spec_process *p, const struct seccomp_program *seccomp, shim_error_t *err);
/* Default signal dispositions and mask, descriptors above 2 (+ preserved ones) closed on exec,
   then execve. Returns only on failure, with the code that tells "not found" from "denied". */
int process_exec (const char *path, const struct spec_process *p, char **env, int preserve_fds, shim_error_t *err);

#endif
