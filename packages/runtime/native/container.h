/* create and run: from a bundle to a process in its namespaces and cgroups, with its monitor. */
#ifndef BERTH_CONTAINER_H
#define BERTH_CONTAINER_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct container_options
{
  const char *root;   /* state root (absolute) */
  const char *id;
  const char *bundle; /* absolute */
  const char *console_socket;
  const char *pid_file;
  const char *log_path;      /* Berth: json-file log of stdout/stderr */
  long long log_max_size;    /* Berth: rotate the log at this size (docker's max-size); 0 never */
  int log_max_files;         /* Berth: files kept, the live one included (docker's max-file) */
  bool log_compress;         /* Berth: gzip the rotated files (docker's compress) */
  const char *attach_socket; /* Berth: unix socket serving attach */
  bool create_only;          /* `create`: stop before exec until `start` */
  bool detach;               /* `run -d` */
  bool no_pivot;
  bool keep;       /* `run --keep`: leave the stopped container for `delete` */
  bool open_stdin; /* Berth: give the process a stdin pipe fed by attach clients */
  bool stdin_once; /* Berth: close that stdin when the first client that wrote to it leaves */
  bool start_on_attach; /* Berth, create: the first attach client starts the process, as `start` */
  const char *exit_file; /* Berth, create and run -d: the monitor records the exit there too */
  bool delete_on_exit;   /* Berth, create and run -d: the monitor then deletes the container */
  int preserve_fds;
  /* Berth: run the container with this OCI runtime (runc, crun) under our monitor (conmon's
     role), with its --root and other global options. */
  const char *oci_runtime;
  const char *oci_runtime_root;
  char **oci_runtime_args;
  size_t n_oci_runtime_args;
};

/* Runs `create` or `run`. For a foreground `run`, *exit_code gets the container's status
   (128+signal when killed); otherwise 0. */
int container_start (const struct container_options *o, int *exit_code, shim_error_t *err);
/* Closes every descriptor from `first_closed` up that is not in `keep`: a monitor must not hold
   what its caller gave it (a pipe the caller waits on, its --log) for the container's life. */
void close_fds_except (const int *keep, size_t n_keep, int first_closed);
/* `start`: releases a created container (writes to its exec.fifo). */
int container_release (const char *root, const char *id, shim_error_t *err);
/* Fills the monitor's options that a container's own options decide: its log and rotation,
   stdin_once, whether this process relays its own stdio (`local`, a foreground run, with
   `monitored` stdio) and its signals, and who records the exit (`record_exit` with `ctx`, unless
   a foreground run deletes the container at its end). The caller sets the process, its
   descriptors and tty first. */
struct monitor_options;
void container_monitor_options (struct monitor_options *mo, const struct container_options *o, bool local, bool monitored,
                                void (*record_exit) (void *ctx, int wait_status), void *ctx);
/* Runs the hooks of one kind with the state on stdin (prestart, createRuntime, poststart, poststop). */
struct spec;
int hooks_run (const struct spec *s, int kind, const char *state_json, shim_error_t *err);

#endif
