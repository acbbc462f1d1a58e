/* The state directory of a container, <root>/<id>/:
     state.json   written by create: runc's state fields plus Berth's (pidStartTime,
                  monitorPid, logPath, attachSocket, cgroup, resources; ociRuntime,
                  ociRuntimeRoot, ociRuntimeArgs when another runtime runs the container
                  under our monitor); `update` rewrites its `resources`
     config.json  the bundle's config as it was at create (exec reads the container's settings)
     exec.fifo    exists between create and start
     exit.json    written by the monitor when the container's process ends
                  ({"exitCode", "signal", "finished", "oomKilled"})
   `state` computes the status from these and the live process. */
#ifndef BERTH_STATE_H
#define BERTH_STATE_H

#include <stdbool.h>
#include <sys/types.h>

#include "cgroup.h"
#include "error.h"
#include "json.h"

struct container_state
{
  char *dir;
  char *id;
  pid_t pid;
  unsigned long long start_time;
  char *bundle, *rootfs, *created, *owner;
  const struct json_value *annotations;
  pid_t monitor_pid;
  unsigned long long monitor_start_time;
  char *log_path, *attach_socket;
  struct cgroup *cgroup;
  const struct json_value *resources; /* linux.resources as created, then as updated */
  /* A container that another OCI runtime (runc, crun) runs under our monitor: that runtime,
     its --root (or NULL) and its other global options. */
  char *oci_runtime, *oci_runtime_root;
  char **oci_runtime_args;
  size_t n_oci_runtime_args;
  bool has_exit;
  int exit_code, exit_signal;
  char *finished;
  bool oom_killed;
  struct json_value *doc, *exit_doc;
};

#define STATUS_CREATED "created"
#define STATUS_RUNNING "running"
#define STATUS_PAUSED "paused"
#define STATUS_STOPPED "stopped"

/* Container ids as runc accepts them: [A-Za-z0-9_+.-]+, not "." or "..". */
int state_check_id (const char *id, shim_error_t *err);
char *state_dir_of (const char *root, const char *id);
/* Creates the state directory; an existing one is ERR_CONTAINER_EXISTS. */
int state_create_dir (const char *root, const char *id, shim_error_t *err);
int state_write (const struct container_state *st, const struct json_value *annotations, shim_error_t *err);
/* ERR_CONTAINER_NOT_FOUND when there is no such container. */
int state_load (const char *root, const char *id, struct container_state **out, shim_error_t *err);
void state_free (struct container_state *st);
/* created, running, paused or stopped, from the files and the live process; a container whose
   process is gone stays running while its monitor is still writing the log and the exit. */
const char *state_status (const struct container_state *st);
/* True while the container's init process exists (and is not a zombie). */
bool state_process_alive (const struct container_state *st);
/* The `state` output: runc's fields plus Berth's. */
void state_write_json (struct strbuf *b, const struct container_state *st);
/* Rewrites state.json with one top-level member replaced by `json` (update's `resources`). */
int state_replace_field (const struct container_state *st, const char *key, const char *json, shim_error_t *err);
/* Records how the process ended (the monitor calls this): `dir`/exit.json, and the same record
   at `also` unless it is NULL (create --exit-file). */
int state_write_exit (const char *dir, const char *also, int wait_status, bool oom_killed, shim_error_t *err);

#endif
