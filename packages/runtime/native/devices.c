/* /dev inside the container: the default nodes and the spec's, plus the standard symlinks. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "mounts.h"

static const struct spec_device default_devices[] = {
  { .path = "/dev/null", .type = 'c', .major = 1, .minor = 3, .file_mode = 0666, .has_file_mode = true },
  { .path = "/dev/zero", .type = 'c', .major = 1, .minor = 5, .file_mode = 0666, .has_file_mode = true },
  { .path = "/dev/full", .type = 'c', .major = 1, .minor = 7, .file_mode = 0666, .has_file_mode = true },
  { .path = "/dev/random", .type = 'c', .major = 1, .minor = 8, .file_mode = 0666, .has_file_mode = true },
  { .path = "/dev/urandom", .type = 'c', .major = 1, .minor = 9, .file_mode = 0666, .has_file_mode = true },
  { .path = "/dev/tty", .type = 'c', .major = 5, .minor = 0, .file_mode = 0666, .has_file_mode = true },
};

static int
create_device (int rootfd, const struct spec_device *d, bool bind, shim_error_t *err)
{
  cleanup_free char *dir = xstrdup (d->path);
  char *slash = strrchr (dir, '/');
  *slash = 0;
  cleanup_close int dirfd = -1;
  if (open_in_root (rootfd, *dir ? dir : "/", true, true, &dirfd, err) < 0)
    return -1;
  const char *name = slash + 1;
  cleanup_free char *dirpath = xasprintf ("/proc/self/fd/%d", dirfd);
  cleanup_close int realdir = open (dirpath, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (realdir < 0)
    return shim_make_error (err, errno, "open %s", dir);
  unlinkat (realdir, name, 0);
  if (!bind)
    {
      mode_t type = d->type == 'b' ? S_IFBLK : d->type == 'p' ? S_IFIFO : S_IFCHR;
      mode_t mode = (d->has_file_mode ? d->file_mode : 0666) & 07777;
      if (mknodat (realdir, name, type | mode, makedev (d->major, d->minor)) == 0)
        {
          if (fchmodat (realdir, name, mode, 0) < 0)
            return shim_make_error (err, errno, "chmod %s", d->path);
          if (fchownat (realdir, name, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
            return shim_make_error (err, errno, "chown %s", d->path);
          return 0;
        }
      if (errno != EPERM)
        return shim_make_error (err, errno, "mknod %s", d->path);
    }
  /* Without CAP_MKNOD in the initial user namespace: bind the host's node instead, like runc. */
  int f = openat (realdir, name, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0000);
  if (f < 0)
    return shim_make_error (err, errno, "create %s", d->path);
  close (f);
  cleanup_free char *target = xasprintf ("/proc/self/fd/%d/%s", realdir, name);
  if (mount (d->path, target, NULL, MS_BIND, NULL) < 0)
    return shim_make_error (err, errno, "bind the host's %s", d->path);
  return 0;
}

int
devices_create (const struct spec *s, int rootfd, bool user_namespace, shim_error_t *err)
{
  for (size_t i = 0; i < sizeof default_devices / sizeof default_devices[0]; i++)
    {
      bool overridden = false;
      for (size_t j = 0; j < s->n_devices && !overridden; j++)
        overridden = strcmp (s->devices[j].path, default_devices[i].path) == 0;
      if (!overridden && create_device (rootfd, &default_devices[i], user_namespace, err) < 0)
        return -1;
    }
  for (size_t i = 0; i < s->n_devices; i++)
    if (create_device (rootfd, &s->devices[i], user_namespace, err) < 0)
      return shim_error_wrap (err, "linux.devices[%zu]", i);
  return 0;
}

int
devices_symlinks (int rootfd, bool has_devpts, shim_error_t *err)
{
  static const char *const links[][2] = {
    { "/proc/self/fd", "fd" },       { "/proc/self/fd/0", "stdin" }, { "/proc/self/fd/1", "stdout" },
    { "/proc/self/fd/2", "stderr" }, { "/proc/kcore", "core" },
  };
  cleanup_close int dev = -1;
  if (open_in_root (rootfd, "/dev", true, true, &dev, err) < 0)
    return -1;
  cleanup_free char *devpath = xasprintf ("/proc/self/fd/%d", dev);
  cleanup_close int devdir = open (devpath, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
  if (devdir < 0)
    return shim_make_error (err, errno, "open /dev of the rootfs");
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++)
    {
      if (strcmp (links[i][1], "core") == 0 && access ("/proc/kcore", F_OK) < 0)
        continue;
      if (symlinkat (links[i][0], devdir, links[i][1]) < 0 && errno != EEXIST)
        return shim_make_error (err, errno, "symlink /dev/%s", links[i][1]);
    }
  if (has_devpts)
    {
      unlinkat (devdir, "ptmx", 0);
      if (symlinkat ("pts/ptmx", devdir, "ptmx") < 0)
        return shim_make_error (err, errno, "symlink /dev/ptmx");
    }
  return 0;
}
