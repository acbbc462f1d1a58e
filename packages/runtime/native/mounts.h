/* The container's file system view, built inside its new mount namespace: the rootfs bind,
   the spec's mounts (resolved inside the rootfs, never through a symlink out of it), /dev with
   its nodes and links, pivot_root (or move + chroot where pivot_root cannot work), then the
   read-only and masked paths. */
#ifndef BERTH_MOUNTS_H
#define BERTH_MOUNTS_H

#include <stdbool.h>

#include "cgroup.h"
#include "error.h"
#include "spec.h"

struct rootfs_options
{
  const struct spec *spec;
  const struct cgroup *cgroup; /* bound at /sys/fs/cgroup for "cgroup" mounts; may be NULL */
  bool no_pivot;
  bool user_namespace; /* device nodes are bind-mounted from the host instead of mknod */
};

/* Everything up to and including the switch of root. Runs in the container's mount namespace. */
int rootfs_prepare (const struct rootfs_options *o, shim_error_t *err);
/* Binds the pty slave onto /dev/console (after rootfs_prepare, when process.terminal is set). */
int rootfs_bind_console (const char *slave_path, shim_error_t *err);
/* readonlyPaths, maskedPaths, root.readonly and rootfsPropagation, the last steps. */
int rootfs_finalize (const struct spec *s, shim_error_t *err);
/* The device nodes every container gets when /dev is not bound from the host. */
int devices_create (const struct spec *s, int rootfd, bool user_namespace, shim_error_t *err);
/* /dev/fd, /dev/std{in,out,err}, /dev/core and /dev/ptmx. */
int devices_symlinks (int rootfd, bool has_devpts, shim_error_t *err);
/* Opens `path` inside the tree at rootfd (O_PATH), creating what is missing as directories, and
   the last component as a directory or an empty file. Symlinks resolve inside the tree. */
int open_in_root (int rootfd, const char *path, bool create, bool as_dir, int *out, shim_error_t *err);

#endif
