/* The OCI runtime-spec config.json, read into plain structs. Everything berth-runtime does not
   implement is refused here with an error naming the field, so nothing is silently ignored. */
#ifndef BERTH_SPEC_H
#define BERTH_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"
#include "json.h"

struct kv
{
  char *key, *value;
};

struct spec_mount
{
  char *destination, *type, *source;
  unsigned long flags;       /* MS_* to set */
  unsigned long clear_flags; /* MS_* the options turned off ("rw", "suid", ...) */
  unsigned long propagation; /* MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, with MS_REC */
  bool bind, recursive_bind;
  bool readonly;
  char *data; /* the options the kernel takes as filesystem data (mode=755,size=...) */
  char *cwd;  /* rootfs mounts: the directory relative paths in `data` (lowerdirs) resolve from */
};

struct spec_namespace
{
  int flag; /* CLONE_NEW* */
  char *path;
};

struct spec_idmap
{
  uint32_t container_id, host_id, size;
};

struct spec_device
{
  char *path;
  char type; /* 'c', 'b', 'p', 'u' */
  int64_t major, minor;
  uint32_t file_mode;
  bool has_file_mode;
  uint32_t uid, gid;
};

struct spec_device_rule
{
  bool allow;
  char type;            /* 'a', 'c', 'b' */
  int64_t major, minor; /* -1 is a wildcard */
  char access[4];
};

struct spec_rlimit
{
  int resource;
  uint64_t soft, hard;
};

struct spec_throttle
{
  int64_t major, minor;
  uint64_t rate;
};

struct spec_resources
{
  bool has_memory_limit, has_memory_reservation, has_memory_swap, has_swappiness, disable_oom_killer;
  int64_t memory_limit, memory_reservation, memory_swap;
  uint64_t swappiness;
  bool has_cpu_shares, has_cpu_quota, has_cpu_period, has_cpu_idle;
  uint64_t cpu_shares, cpu_period;
  int64_t cpu_quota, cpu_idle;
  char *cpuset_cpus, *cpuset_mems;
  bool has_pids_limit;
  int64_t pids_limit;
  bool has_blkio_weight;
  uint16_t blkio_weight;
  struct spec_throttle *throttle_read_bps, *throttle_write_bps, *throttle_read_iops, *throttle_write_iops;
  size_t n_throttle_read_bps, n_throttle_write_bps, n_throttle_read_iops, n_throttle_write_iops;
  struct spec_device_rule *devices;
  size_t n_devices;
  bool has_devices;
  struct kv *unified;
  size_t n_unified;
};

/* Seccomp actions, as in libseccomp, resolved from "SCMP_ACT_*" names. */
#define SECCOMP_ACTION_KILL_THREAD 0
#define SECCOMP_ACTION_KILL_PROCESS 1
#define SECCOMP_ACTION_TRAP 2
#define SECCOMP_ACTION_ERRNO 3
#define SECCOMP_ACTION_TRACE 4
#define SECCOMP_ACTION_ALLOW 5
#define SECCOMP_ACTION_LOG 6

struct spec_seccomp_arg
{
  unsigned index;
  uint64_t value, value_two;
  int op; /* enum scmp_compare */
};

struct spec_seccomp_rule
{
  char **names;
  size_t n_names;
  int action;
  bool has_errno;
  uint32_t errno_ret;
  struct spec_seccomp_arg *args;
  size_t n_args;
};

struct spec_seccomp
{
  int default_action;
  bool has_default_errno;
  uint32_t default_errno;
  char **architectures;
  size_t n_architectures;
  unsigned flags; /* SECCOMP_FILTER_FLAG_* */
  struct spec_seccomp_rule *rules;
  size_t n_rules;
};

struct spec_caps
{
  uint64_t bounding, effective, inheritable, permitted, ambient;
};

struct spec_process
{
  bool terminal;
  unsigned short console_height, console_width;
  uid_t uid;
  gid_t gid;
  bool has_umask;
  mode_t umask;
  gid_t *additional_gids;
  size_t n_additional_gids;
  char **args; /* NULL-terminated */
  size_t n_args;
  char **env; /* NULL-terminated */
  size_t n_env;
  char *cwd;
  bool has_caps;
  struct spec_caps caps;
  struct spec_rlimit *rlimits;
  size_t n_rlimits;
  bool no_new_privileges;
  bool has_oom_score_adj;
  int oom_score_adj;
  char *apparmor_profile;
  char *home; /* set by user_lookup: HOME when the environment has none */
};

struct spec_hook
{
  char *path;
  char **args; /* NULL-terminated; args[0] defaults to path */
  char **env;  /* NULL-terminated */
  int timeout; /* seconds, 0 for none */
};

/* The host-side hooks berth-runtime runs, in the order of the lifecycle. */
#define HOOK_PRESTART 0
#define HOOK_CREATE_RUNTIME 1
#define HOOK_POSTSTART 2
#define HOOK_POSTSTOP 3
#define HOOK_KINDS 4

struct spec
{
  char *bundle; /* absolute; relative bind-mount sources resolve against it */
  char *oci_version;
  char *root_path; /* absolute */
  bool root_readonly;
  struct spec_mount *mounts;
  size_t n_mounts;
  struct spec_process *process;
  char *hostname, *domainname;
  struct json_value *annotations; /* the raw object, written back into `state` */
  struct spec_namespace *namespaces;
  size_t n_namespaces;
  int clone_flags; /* the namespaces to create (those without a path) */
  struct spec_idmap *uid_mappings, *gid_mappings;
  size_t n_uid_mappings, n_gid_mappings;
  struct spec_device *devices;
  size_t n_devices;
  char *cgroups_path;
  struct spec_resources resources;
  struct kv *sysctl;
  size_t n_sysctl;
  struct spec_seccomp *seccomp;
  unsigned long rootfs_propagation; /* 0 when unset */
  char **masked_paths, **readonly_paths;
  size_t n_masked_paths, n_readonly_paths;
  struct spec_hook *hooks[HOOK_KINDS];
  size_t n_hooks[HOOK_KINDS];
  /* Berth: what to mount at root.path inside the container's mount namespace, instead of binding
     root.path to itself (ANNOTATION_ROOTFS_MOUNTS): no mount of the rootfs is seen on the host. */
  struct spec_mount *rootfs_mounts;
  size_t n_rootfs_mounts;
  /* Berth: docker's --user and --group-add as given (ANNOTATION_USER, ANNOTATION_GROUP_ADD),
     looked up in the container's /etc/passwd and /etc/group once its root is in place. */
  char *user_lookup;
  char *group_add_lookup;
  struct json_value *doc; /* owns every string above */
};

/* Annotations berth-runtime acts on (see docs/berth-runtime.md). */
#define ANNOTATION_ROOTFS_MOUNTS "org.berth.rootfs.mounts"
#define ANNOTATION_USER "org.berth.user"
#define ANNOTATION_GROUP_ADD "org.berth.group-add"

/* Reads and validates <bundle>/config.json; the rootfs path is resolved against the bundle. */
int spec_load (const char *bundle, struct spec **out, shim_error_t *err);
/* Parses a config from memory (the copy kept in the state dir). */
int spec_parse (const char *text, size_t len, const char *what, const char *bundle, struct spec **out, shim_error_t *err);
/* Parses a linux.resources object on its own (`update -r`, the record in state.json); strings
   point into `res`. */
int spec_parse_resources (const struct json_value *res, const char *what, struct spec_resources *r, shim_error_t *err);
/* Parses a process object on its own (`exec --process`). */
int spec_parse_process (const char *text, size_t len, const char *what, struct spec_process **out, shim_error_t *err);
bool spec_has_namespace (const struct spec *s, int flag);
const char *spec_namespace_name (int flag);
/* The rlimit number of "RLIMIT_NOFILE", or -1. */
int spec_rlimit_from_name (const char *name);
/* Parses one mount's options into flags, propagation and data. */
int spec_parse_mount_options (struct spec_mount *m, char **options, size_t n, const char *field, shim_error_t *err);


#endif
