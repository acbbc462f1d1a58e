/* The commands that act on an existing container: state, kill, delete, pause, resume, list, ps. */
#ifndef BERTH_LIFECYCLE_H
#define BERTH_LIFECYCLE_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

int command_state (const char *root, const char *id, shim_error_t *err);
/* `sig` is a number or a name with or without "SIG"; all signals every process in the cgroup. */
int command_kill (const char *root, const char *id, const char *sig, bool all, shim_error_t *err);
int command_delete (const char *root, const char *id, bool force, shim_error_t *err);
int command_pause (const char *root, const char *id, bool pause, shim_error_t *err);
int command_list (const char *root, bool json, bool quiet, shim_error_t *err);
/* json: the pids as a JSON array; otherwise `ps` (with ps_args, default -ef) filtered to the container. */
int command_ps (const char *root, const char *id, bool json, char **ps_args, shim_error_t *err);
/* `spec`: writes a default config.json into the bundle (runc's, with Berth's hostname). */
int command_spec (const char *bundle, bool rootless, shim_error_t *err);
int signal_from_name (const char *name);
/* Waits for a process (checked by start time) to exit through its pidfd: no polling loop,
   bounded by timeout_ms; false when it is still there. */
bool wait_exit (pid_t pid, unsigned long long start, int timeout_ms);

#endif
