/* exec: a new process in every namespace and the cgroup of a running container. */
#ifndef BERTH_EXEC_H
#define BERTH_EXEC_H

#include <stdbool.h>
#include <stddef.h>

#include "error.h"

struct exec_options
{
  const char *root, *id;
  const char *process_path; /* --process: a runtime-spec process object */
  char **args;              /* the command, when there is no --process */
  bool tty, detach;
  const char *console_socket, *pid_file, *cwd, *user;
  char **env; /* --env KEY=value, added to the container's */
  size_t n_env;
  char **caps; /* --cap, added to every set */
  size_t n_caps;
  char **additional_gids;
  size_t n_additional_gids;
  bool no_new_privs;
  int preserve_fds;
  /* Berth: serve the process's stdio on this unix socket (the attach protocol of monitor.h).
     The process starts once the first client is connected, so it loses no output. */
  const char *attach_socket;
};

/* *exit_code gets the process's status unless detached. */
int container_exec (const struct exec_options *o, int *exit_code, shim_error_t *err);

#endif
