/* Linux namespaces: joining the spec's namespace paths, writing id maps, and entering a running
   container's namespaces for exec. */
#ifndef BERTH_NAMESPACES_H
#define BERTH_NAMESPACES_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "spec.h"

/* Joins every namespace the spec gives a path for, the user namespace first. */
int ns_join_paths (const struct spec *s, shim_error_t *err);
/* Brings up the loopback interface of the network namespace we are in: a new one has it down,
   and every container expects 127.0.0.1 (runc does the same for the namespaces it creates). */
int ns_loopback_up (shim_error_t *err);
/* Writes /proc/<pid>/uid_map and gid_map from the spec. */
int ns_write_id_maps (pid_t pid, const struct spec *s, shim_error_t *err);

/* The namespaces of a running process that differ from ours, opened for setns. */
struct ns_set
{
  int user, mnt, pid, net, ipc, uts, cgroup; /* -1 when shared with us */
};
int ns_open_process (pid_t pid, struct ns_set *out, shim_error_t *err);
void ns_close (struct ns_set *ns);
/* Joins all of them but the pid namespace (which the caller joins for its children). */
int ns_enter (const struct ns_set *ns, shim_error_t *err);

#endif
