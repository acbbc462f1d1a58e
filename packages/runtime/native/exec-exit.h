/* exec --detach --exit-file: a detached exec whose end is recorded, as conmon does for podman's
   execs. The command forks a small monitor (its own session, no stdio) that starts the process
   as its child (or, for a wrapped runtime, adopts it as a child subreaper), answers the command
   once the process runs, then waits for it and writes its exit to the file. */
#ifndef BERTH_EXEC_EXIT_H
#define BERTH_EXEC_EXIT_H

#include "error.h"

/* Starts the process; it must be a child of the caller, or be adopted by it, once this returns,
   and its pid must be in `pid_file`. */
typedef int (*exec_start_fn) (void *ctx, shim_error_t *err);

/* Runs `start` in the exec monitor and returns once it has (its error, if any, is the command's).
   The monitor then writes {"exitCode":N,"signal":S,"finished":"RFC 3339"} to `exit_file` when the
   process ends (exitCode 128+S after signal S, as docker reports it). */
int exec_recording_exit (const char *exit_file, const char *pid_file, exec_start_fn start, void *ctx, shim_error_t *err);

#endif
