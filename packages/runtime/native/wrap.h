/* Another OCI runtime (runc, crun) under our monitor, as conmon runs them: `create --oci-runtime
   PATH` starts the monitor, which becomes a child subreaper, runs `PATH create` (and `start`)
   with its pipes or a console socket as the container's stdio, and adopts the container's init
   when that runtime exits. The monitor then keeps the json-file log, serves attach and records
   the exit as for our own containers. The other commands on such a container go to that runtime
   (state merges its state with the monitor's fields; delete also removes ours). */
#ifndef BERTH_WRAP_H
#define BERTH_WRAP_H

#include <stdbool.h>

#include "container.h"
#include "error.h"
#include "state.h"

/* `create` and `run` with o->oci_runtime set. */
int wrap_start (const struct container_options *o, int *exit_code, shim_error_t *err);
/* Runs `cmd` (start, kill, pause, resume, ps, update, exec) of a wrapped container through its
   runtime with the caller's arguments (`args`, after the command name); `state` and `delete`
   are handled here. *exit_code gets that runtime's status. */
int wrap_command (const struct container_state *st, const char *cmd, char **args, int *exit_code, shim_error_t *err);
/* `exec --attach-socket` in a wrapped container: the runtime starts the process detached with
   our pipes or console socket, we adopt it and serve its stdio as our own exec does. */
int wrap_exec_attach (const struct container_state *st, char **args, const char *attach_socket, int *exit_code,
                      shim_error_t *err);
/* The runtime a wrapped container's `state` reports, merged with ours, into `b` (compact JSON). */
int wrap_state_json (const struct container_state *st, struct strbuf *b, shim_error_t *err);

#endif
