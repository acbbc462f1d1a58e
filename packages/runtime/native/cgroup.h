/* cgroups for a container on the v1, v2 (unified) and hybrid layouts: find the hierarchies,
   resolve the spec's cgroupsPath as runc does, create the cgroups, write the resources, move
   processes in, freeze, list, signal and remove. */
#ifndef BERTH_CGROUP_H
#define BERTH_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"
#include "json.h"
#include "spec.h"

#define CGROUP_LAYOUT_V1 1
#define CGROUP_LAYOUT_V2 2
#define CGROUP_LAYOUT_HYBRID 3

/* Where the cgroup file systems are and which cgroups this process is in. The real values come
   from statfs(2), /proc/self/mountinfo and /proc/self/cgroup; tests pass their own. */
struct cgroup_env
{
  int layout;
  const char *mountinfo;   /* text of /proc/self/mountinfo */
  const char *self_cgroup; /* text of /proc/self/cgroup */
};

struct cgroup_hierarchy
{
  char *controllers; /* as mounted: "memory", "cpu,cpuacct", "name=systemd"; "" for the v2 hierarchy */
  char *path;        /* the container's cgroup directory in this hierarchy */
  int created_depth; /* how many trailing components we created (0 when the cgroup existed) */
};

struct cgroup
{
  int layout;
  struct cgroup_hierarchy *h;
  size_t n;
  char *v2_path;  /* the unified hierarchy's directory (v2 and hybrid), or NULL */
  char *v2_mount; /* where the unified hierarchy is mounted (only known to cgroup_resolve) */
};

const char *cgroup_layout_name (int layout);
/* Reads the layout and the process's view of the hierarchies from the running system. */
int cgroup_env_load (struct cgroup_env *env, shim_error_t *err);
void cgroup_env_release (struct cgroup_env *env);
/* Resolves the directories for the spec's cgroupsPath (the container id when empty) without
   touching anything. */
int cgroup_resolve (const struct cgroup_env *env, const char *cgroups_path, const char *id, struct cgroup **out,
                    shim_error_t *err);
/* Creates the directories and writes linux.resources. On error nothing is left behind. */
int cgroup_create (struct cgroup *cg, const struct spec_resources *r, shim_error_t *err);
/* Writes linux.resources to the existing cgroups of a container (`update`); device rules are
   left as they are. */
int cgroup_update (const struct cgroup *cg, const struct spec_resources *r, shim_error_t *err);
/* Puts a new process into the container's cgroups without cgroup.procs. A cgroup.procs write
   write-locks the kernel's global cgroup_threadgroup_rwsem, and the first such write after a
   quiet spell waits for an RCU grace period (10-20 ms, on every `run` and `exec`). Instead the
   process is born in the v2 cgroup by clone3(CLONE_INTO_CGROUP) and, while it still has a single
   thread, moves that thread into each v1 hierarchy by writing 0 to `tasks` (fds we opened, so
   a new user namespace does not matter). Neither takes the global lock. A kernel without
   CLONE_INTO_CGROUP (before 5.7) gets the v2 cgroup.procs write from the parent. */
struct cgroup_join
{
  int v2_fd;     /* the v2 directory, or -1 */
  int *v1_tasks; /* `tasks` of each v1 hierarchy, open for writing */
  size_t n_v1;
  bool v2_pending; /* the clone could not use CLONE_INTO_CGROUP */
};

/* With cg NULL the process joins nothing and the clone is a plain fork. */
int cgroup_join_open (const struct cgroup *cg, struct cgroup_join *j, shim_error_t *err);
/* Like fork(2) with namespace flags (no CLONE_NEWCGROUP): raw, so glibc's fork handlers do not
   run. The child is born in the v2 cgroup where the kernel can do that. */
pid_t cgroup_join_clone (struct cgroup_join *j, unsigned long flags);
/* In the child, first, while it has one thread: into each v1 hierarchy. */
int cgroup_join_self (const struct cgroup_join *j, shim_error_t *err);
/* In the parent after the clone: the v2 move the clone could not make. */
int cgroup_join_finish (const struct cgroup_join *j, const struct cgroup *cg, pid_t pid, shim_error_t *err);
void cgroup_join_close (struct cgroup_join *j);
/* Removes the container's cgroups; waits briefly for exiting processes to leave. */
int cgroup_destroy (const struct cgroup *cg, shim_error_t *err);
int cgroup_freeze (const struct cgroup *cg, bool freeze, shim_error_t *err);
bool cgroup_is_frozen (const struct cgroup *cg);
/* Every process in the container's cgroup and its descendants. */
int cgroup_pids (const struct cgroup *cg, pid_t **out, size_t *n, shim_error_t *err);
int cgroup_signal_all (const struct cgroup *cg, int sig, shim_error_t *err);
/* True when the kernel's OOM killer killed a process of this cgroup. */
bool cgroup_oom_killed (const struct cgroup *cg);
void cgroup_write_json (struct strbuf *b, const struct cgroup *cg);
int cgroup_from_json (const struct json_value *v, struct cgroup **out, shim_error_t *err);
void cgroup_free (struct cgroup *cg);

/* Resource writers for one layout (cgroup-v1.c, cgroup-v2.c). */
int cgroup_v1_apply (const struct cgroup *cg, const struct spec_resources *r, shim_error_t *err);
int cgroup_v2_apply (const char *path, const struct spec_resources *r, shim_error_t *err);
/* Attaches an eBPF device program to a v2 cgroup that enforces the rules (the last matching rule
   wins; a device no rule matches is allowed, as in a fresh v1 devices cgroup). */
int cgroup_v2_device_filter (const char *path, const struct spec_device_rule *rules, size_t n, shim_error_t *err);
/* Enables in cgroup.subtree_control of every ancestor the controllers the leaf needs. */
int cgroup_v2_enable_controllers (const char *mountpoint, const char *path, shim_error_t *err);
/* cpu.weight of a v1 cpu.shares value, by the formula runc and crun share. */
unsigned long long cgroup_v2_cpu_weight (unsigned long long shares);
/* The directory of one controller, or NULL when it is not mounted. */
const char *cgroup_controller_path (const struct cgroup *cg, const char *controller);
/* Copies cpuset.cpus and cpuset.mems from the parent into the created levels (v1 needs them set). */
int cgroup_v1_cpuset_inherit (const char *path, int depth, shim_error_t *err);

#endif
