#include "mounts.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>

#include "files.h"

static int
openat2_in_root (int rootfd, const char *path, int flags, mode_t mode)
{
  struct open_how how = { .flags = (uint64_t) flags, .mode = mode, .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS };
  return (int) syscall (SYS_openat2, rootfd, path, &how, sizeof how);
}

int
open_in_root (int rootfd, const char *path, bool create, bool as_dir, int *out, shim_error_t *err)
{
  int fd = openat2_in_root (rootfd, path, O_PATH | O_CLOEXEC, 0);
  if (fd >= 0 || errno != ENOENT || !create)
    {
      if (fd < 0)
        return shim_make_error (err, errno, "open `%s` in the rootfs", path);
      *out = fd;
      return 0;
    }
  /* Walk down from the root, creating each missing level. */
  cleanup_free char *copy = xstrdup (path);
  int dir = dup (rootfd);
  if (dir < 0)
    return shim_make_error (err, errno, "dup");
  char *save = NULL;
  char *part = strtok_r (copy, "/", &save);
  while (part)
    {
      char *next = strtok_r (NULL, "/", &save);
      bool last = next == NULL;
      int child = openat2_in_root (dir, part, O_PATH | O_CLOEXEC, 0);
      if (child < 0 && errno == ENOENT)
        {
          if (!last || as_dir)
            {
              if (mkdirat (dir, part, 0755) < 0 && errno != EEXIST)
                {
                  int saved = errno;
                  close (dir);
                  return shim_make_error (err, saved, "mkdir `%s` for `%s` in the rootfs", part, path);
                }
            }
          else
            {
              int f = openat (dir, part, O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
              if (f < 0 && errno != EEXIST)
                {
                  int saved = errno;
                  close (dir);
                  return shim_make_error (err, saved, "create `%s` in the rootfs", path);
                }
              if (f >= 0)
                close (f);
            }
          child = openat2_in_root (dir, part, O_PATH | O_CLOEXEC, 0);
        }
      if (child < 0)
        {
          int saved = errno;
          close (dir);
          return shim_make_error (err, saved, "open `%s` in the rootfs", path);
        }
      close (dir);
      dir = child;
      part = next;
    }
  *out = dir;
  return 0;
}

static char *
fd_path (int fd)
{
  return xasprintf ("/proc/self/fd/%d", fd);
}

/* A path that names the mount now sitting on `dest`: a descriptor opened before the mount still
   names the directory underneath, so remounts and propagation changes must look it up again. */
static char *
mounted_path (int rootfd, const char *dest, shim_error_t *err)
{
  int fd = -1;
  if (open_in_root (rootfd, dest, false, true, &fd, err) < 0)
    return NULL;
  /* The descriptor stays open for the life of the init process: the path refers to it. */
  return fd_path (fd);
}

/* Flags a bind remount must repeat: in a user namespace the kernel locks them on the source. */
static unsigned long
locked_flags (const char *path)
{
  struct statvfs sv;
  unsigned long f = 0;
  if (statvfs (path, &sv) < 0)
    return 0;
  if (sv.f_flag & ST_NOSUID)
    f |= MS_NOSUID;
  if (sv.f_flag & ST_NODEV)
    f |= MS_NODEV;
  if (sv.f_flag & ST_NOEXEC)
    f |= MS_NOEXEC;
  if (sv.f_flag & ST_NOATIME)
    f |= MS_NOATIME;
  if (sv.f_flag & ST_NODIRATIME)
    f |= MS_NODIRATIME;
  if (sv.f_flag & ST_RELATIME)
    f |= MS_RELATIME;
  if (sv.f_flag & ST_RDONLY)
    f |= MS_RDONLY;
  return f;
}

static int
remount_bind (const char *target, unsigned long flags, unsigned long clear, const char *what, shim_error_t *err)
{
  unsigned long want = MS_BIND | MS_REMOUNT | (flags & ~(MS_BIND | MS_REC | MS_REMOUNT));
  if (mount (NULL, target, NULL, want, NULL) == 0)
    return 0;
  if (errno != EPERM)
    return shim_make_error (err, errno, "remount `%s`", what);
  /* Locked flags of the source (nosuid, nodev, noexec, atime) must be kept, unless explicitly cleared. */
  unsigned long locked = locked_flags (target) & ~clear & ~MS_RDONLY;
  if (mount (NULL, target, NULL, want | locked, NULL) < 0)
    return shim_make_error (err, errno, "remount `%s`", what);
  return 0;
}

static const char *
source_of (const struct spec *s, const struct spec_mount *m, char *buf, size_t size)
{
  if (m->source == NULL || *m->source == 0)
    return m->type;
  if (m->bind && m->source[0] != '/')
    {
      snprintf (buf, size, "%s/%s", s->bundle, m->source);
      return buf;
    }
  return m->source;
}

static bool
has_option (const char *data, const char *name)
{
  size_t n = strlen (name);
  for (const char *p = data; p && *p;)
    {
      if (strncmp (p, name, n) == 0 && (p[n] == 0 || p[n] == ',' || p[n] == '='))
        return true;
      p = strchr (p, ',');
      if (p)
        p++;
    }
  return false;
}

/* data without the option `name` (a copy). */
static char *
drop_option (const char *data, const char *name)
{
  struct strbuf b = { 0 };
  size_t n = strlen (name);
  cleanup_free char *copy = xstrdup (data ? data : "");
  char *save = NULL;
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    {
      if (strncmp (t, name, n) == 0 && (t[n] == 0 || t[n] == '='))
        continue;
      if (b.len)
        strbuf_add (&b, ",");
      strbuf_add (&b, t);
    }
  return b.p ? b.p : xstrdup ("");
}

static int
mount_cgroup_tree (const struct rootfs_options *o, int rootfd, const struct spec_mount *m, int targetfd,
                   shim_error_t *err)
{
  cleanup_free char *target = fd_path (targetfd);
  const struct cgroup *cg = o->cgroup;
  if (cg == NULL)
    return 0;
  unsigned long ro = m->readonly ? MS_RDONLY : 0;
  if (cg->layout == CGROUP_LAYOUT_V2)
    {
      /* In a cgroup namespace a fresh cgroup2 mount shows the container's cgroup as its root. */
      if (spec_has_namespace (o->spec, CLONE_NEWCGROUP)
          && mount ("cgroup2", target, "cgroup2", (m->flags & ~MS_RDONLY) | ro, NULL) == 0)
        return 0;
      if (mount (cg->v2_path, target, NULL, MS_BIND | MS_REC, NULL) < 0)
        return shim_make_error (err, errno, "bind the cgroup `%s` at %s", cg->v2_path, m->destination);
      cleanup_free char *mounted = mounted_path (rootfd, m->destination, err);
      if (mounted == NULL)
        return -1;
      return remount_bind (mounted, m->flags | ro | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, m->destination, err);
    }
  /* v1 and hybrid: a tmpfs holding one bind of the container's cgroup per hierarchy, like runc. */
  if (mount ("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
    return shim_make_error (err, errno, "mount tmpfs at %s", m->destination);
  for (size_t i = 0; i < cg->n; i++)
    {
      const char *name = *cg->h[i].controllers ? cg->h[i].controllers : "unified";
      if (strncmp (name, "name=", 5) == 0)
        name += 5;
      cleanup_free char *dest = xasprintf ("%s/%s", m->destination, name);
      cleanup_close int fd = -1;
      if (open_in_root (rootfd, dest, true, true, &fd, err) < 0)
        return -1;
      cleanup_free char *where = fd_path (fd);
      if (mount (cg->h[i].path, where, NULL, MS_BIND | MS_REC, NULL) < 0)
        return shim_make_error (err, errno, "bind the cgroup `%s` at %s", cg->h[i].path, dest);
      cleanup_free char *mounted = mounted_path (rootfd, dest, err);
      if (mounted == NULL || remount_bind (mounted, ro | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, dest, err) < 0)
        return -1;
      /* Co-mounted controllers ("cpu,cpuacct") also answer to each name, as on the host. */
      if (strchr (name, ','))
        {
          cleanup_free char *names = xstrdup (name);
          char *save = NULL;
          for (char *t = strtok_r (names, ",", &save); t; t = strtok_r (NULL, ",", &save))
            {
              cleanup_free char *link = xasprintf ("%s/%s", m->destination, t);
              cleanup_close int dirfd = -1;
              if (open_in_root (rootfd, m->destination, false, true, &dirfd, err) < 0)
                return -1;
              if (symlinkat (name, dirfd, t) < 0 && errno != EEXIST)
                return shim_make_error (err, errno, "symlink %s", link);
            }
        }
    }
  if (ro)
    {
      cleanup_free char *mounted = mounted_path (rootfd, m->destination, err);
      if (mounted == NULL)
        return -1;
      if (mount ("tmpfs", mounted, "tmpfs", MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=755") < 0)
        return shim_make_error (err, errno, "remount %s read-only", m->destination);
    }
  return 0;
}

static int
mount_one (const struct rootfs_options *o, int rootfd, const struct spec_mount *m, shim_error_t *err)
{
  const struct spec *s = o->spec;
  char srcbuf[4096];
  const char *source = source_of (s, m, srcbuf, sizeof srcbuf);
  bool is_cgroup = m->type && strcmp (m->type, "cgroup") == 0 && !m->bind;
  bool as_dir = true;
  if (m->bind)
    {
      struct stat st;
      if (stat (source, &st) < 0)
        return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, errno, "mount source `%s` for %s", source,
                                     m->destination);
      as_dir = S_ISDIR (st.st_mode);
    }
  cleanup_close int targetfd = -1;
  if (open_in_root (rootfd, m->destination, true, as_dir, &targetfd, err) < 0)
    return -1;
  cleanup_free char *target = fd_path (targetfd);
  if (is_cgroup)
    return mount_cgroup_tree (o, rootfd, m, targetfd, err);
  if (m->bind)
    {
      if (mount (source, target, NULL, MS_BIND | (m->recursive_bind ? MS_REC : 0), NULL) < 0)
        return shim_make_error (err, errno, "bind `%s` at %s", source, m->destination);
      cleanup_free char *mpath = mounted_path (rootfd, m->destination, err);
      if (mpath == NULL)
        return -1;
      if ((m->flags & ~MS_REC) && remount_bind (mpath, m->flags, m->clear_flags, m->destination, err) < 0)
        return -1;
      if (m->propagation && mount (NULL, mpath, NULL, m->propagation, NULL) < 0)
        return shim_make_error (err, errno, "set the propagation of %s", m->destination);
      return 0;
    }
  const char *type = m->type;
  cleanup_free char *data = xstrdup (m->data ? m->data : "");
  if (strcmp (type, "devpts") == 0)
    {
      /* A private devpts instance, with a ptmx everyone can open as /dev/ptmx needs. */
      if (!has_option (data, "newinstance"))
        {
          char *more = xasprintf ("%s%snewinstance", data, *data ? "," : "");
          free (data);
          data = more;
        }
      if (!has_option (data, "ptmxmode"))
        {
          char *more = xasprintf ("%s,ptmxmode=0666", data);
          free (data);
          data = more;
        }
    }
  int r = mount (source, target, type, m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT), data);
  if (r < 0 && errno == EINVAL && o->user_namespace && strcmp (type, "devpts") == 0 && has_option (data, "gid"))
    {
      /* gid=5 cannot be used when group 5 is not mapped into the user namespace. */
      cleanup_free char *without = drop_option (data, "gid");
      r = mount (source, target, type, m->flags & ~(MS_BIND | MS_REC | MS_REMOUNT), without);
    }
  if (r < 0 && (errno == EPERM || errno == EINVAL) && o->user_namespace
      && (strcmp (type, "sysfs") == 0 || strcmp (type, "mqueue") == 0))
    {
      /* Without a network (or ipc) namespace of its own, a user namespace may not mount sysfs
         (or mqueue): bind the host's instead, read-only, as runc does. */
      const char *host = strcmp (type, "sysfs") == 0 ? "/sys" : "/dev/mqueue";
      r = mount (host, target, NULL, MS_BIND | MS_REC, NULL);
      if (r == 0)
        {
          cleanup_free char *mpath = mounted_path (rootfd, m->destination, err);
          return mpath == NULL ? -1 : remount_bind (mpath, m->flags | MS_RDONLY, 0, m->destination, err);
        }
    }
  if (r < 0)
    return shim_make_error (err, errno, "mount %s (%s) at %s", source, type, m->destination);
  if (m->propagation)
    {
      cleanup_free char *mpath = mounted_path (rootfd, m->destination, err);
      if (mpath == NULL)
        return -1;
      if (mount (NULL, mpath, NULL, m->propagation, NULL) < 0)
        return shim_make_error (err, errno, "set the propagation of %s", m->destination);
    }
  return 0;
}

/* Hides every mount that is not under the new root (the move + chroot fallback keeps them in the namespace). */
static void
detach_foreign_mounts (const char *rootfs)
{
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  if (read_file ("/proc/self/mountinfo", &text, NULL, &e) < 0)
    {
      shim_error_release (&e);
      return;
    }
  size_t rlen = strlen (rootfs);
  /* Unmount deepest first: walk the lines from the end. */
  size_t n = 0;
  char *lines[4096];
  char *save = NULL;
  for (char *l = strtok_r (text, "\n", &save); l && n < 4096; l = strtok_r (NULL, "\n", &save))
    lines[n++] = l;
  for (size_t i = n; i > 0; i--)
    {
      char *f = lines[i - 1];
      for (int k = 0; k < 4 && f; k++)
        {
          f = strchr (f, ' ');
          if (f)
            f++;
        }
      if (f == NULL)
        continue;
      char *end = strchr (f, ' ');
      if (end)
        *end = 0;
      if (strncmp (f, rootfs, rlen) == 0 && (f[rlen] == 0 || f[rlen] == '/'))
        continue;
      if (strcmp (f, "/") == 0 || strncmp (rootfs, f, strlen (f)) == 0)
        continue; /* an ancestor of the rootfs: it must stay to reach it */
      umount2 (f, MNT_DETACH);
    }
}

static int
switch_root (const char *rootfs, bool no_pivot, shim_error_t *err)
{
  if (!no_pivot)
    {
      cleanup_close int oldroot = open ("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
      cleanup_close int newroot = open (rootfs, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
      if (oldroot < 0 || newroot < 0)
        return shim_make_error (err, errno, "open the roots for pivot_root");
      if (fchdir (newroot) < 0)
        return shim_make_error (err, errno, "chdir to the rootfs");
      /* pivot_root(".", ".") stacks the old root under the new one; unmounting "." then drops it. */
      if (syscall (SYS_pivot_root, ".", ".") == 0)
        {
          if (fchdir (oldroot) < 0)
            return shim_make_error (err, errno, "fchdir to the old root");
          if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
            return shim_make_error (err, errno, "make the old root a slave");
          if (umount2 (".", MNT_DETACH) < 0)
            return shim_make_error (err, errno, "detach the old root");
          if (chdir ("/") < 0)
            return shim_make_error (err, errno, "chdir /");
          return 0;
        }
      /* EINVAL: the host root is an initramfs (or otherwise unpivotable); fall back. */
      if (errno != EINVAL)
        return shim_make_error (err, errno, "pivot_root to `%s`", rootfs);
    }
  detach_foreign_mounts (rootfs);
  if (chdir (rootfs) < 0)
    return shim_make_error (err, errno, "chdir to the rootfs `%s`", rootfs);
  if (mount (rootfs, "/", NULL, MS_MOVE, NULL) < 0)
    return shim_make_error (err, errno, "move the rootfs to /");
  if (chroot (".") < 0)
    return shim_make_error (err, errno, "chroot to the rootfs");
  if (chdir ("/") < 0)
    return shim_make_error (err, errno, "chdir /");
  return 0;
}

static bool
dev_is_bound (const struct spec *s)
{
  for (size_t i = 0; i < s->n_mounts; i++)
    if (strcmp (s->mounts[i].destination, "/dev") == 0)
      return s->mounts[i].bind;
  return false;
}

static bool
has_mount_at (const struct spec *s, const char *dest)
{
  for (size_t i = 0; i < s->n_mounts; i++)
    if (strcmp (s->mounts[i].destination, dest) == 0)
      return true;
  return false;
}

/* The rootfs mounts of the annotation, in order, at root.path: made in the container's own mount
   namespace, they go with it, and the host never sees (or has to unmount) them. */
static int
mount_rootfs (const struct spec *s, shim_error_t *err)
{
  for (size_t i = 0; i < s->n_rootfs_mounts; i++)
    {
      const struct spec_mount *m = &s->rootfs_mounts[i];
      cleanup_close int here = -1;
      /* Relative lowerdirs keep a deep overlay's options within the page the kernel copies. */
      if (m->cwd)
        {
          here = open (".", O_PATH | O_DIRECTORY | O_CLOEXEC);
          if (here < 0 || chdir (m->cwd) < 0)
            return shim_make_error (err, errno, "annotations." ANNOTATION_ROOTFS_MOUNTS "[%zu]: chdir `%s`", i, m->cwd);
        }
      int r = m->bind ? mount (m->source, s->root_path, NULL, MS_BIND | (m->recursive_bind ? MS_REC : 0), NULL)
                      : mount (m->source, s->root_path, m->type, m->flags, m->data);
      int saved = errno;
      if (here >= 0 && fchdir (here) < 0)
        return shim_make_error (err, errno, "return from `%s`", m->cwd);
      if (r < 0)
        return shim_make_error (err, saved, "annotations." ANNOTATION_ROOTFS_MOUNTS "[%zu]: mount %s `%s` on `%s`", i,
                                m->bind ? "bind" : m->type, m->source, s->root_path);
      if (m->bind && (m->flags & ~MS_REC)
          && remount_bind (s->root_path, m->flags, m->clear_flags, "annotations." ANNOTATION_ROOTFS_MOUNTS, err) < 0)
        return -1;
    }
  return 0;
}

int
rootfs_prepare (const struct rootfs_options *o, shim_error_t *err)
{
  const struct spec *s = o->spec;
  /* Nothing we mount may propagate back to the host; host unmounts still reach us (rslave). */
  if (mount (NULL, "/", NULL, MS_SLAVE | MS_REC, NULL) < 0)
    return shim_make_error (err, errno, "make / a recursive slave");
  if (s->n_rootfs_mounts)
    {
      if (mount_rootfs (s, err) < 0)
        return -1;
    }
  /* pivot_root needs the new root to be a mount point. */
  else if (mount (s->root_path, s->root_path, NULL, MS_BIND | MS_REC, NULL) < 0)
    return shim_make_error (err, errno, "bind the rootfs `%s`", s->root_path);
  cleanup_close int rootfd = open (s->root_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return shim_make_error (err, errno, "open the rootfs `%s`", s->root_path);
  for (size_t i = 0; i < s->n_mounts; i++)
    if (mount_one (o, rootfd, &s->mounts[i], err) < 0)
      return shim_error_wrap (err, "mounts[%zu] (%s)", i, s->mounts[i].destination);
  if (!dev_is_bound (s))
    {
      if (devices_create (s, rootfd, o->user_namespace, err) < 0)
        return -1;
      if (devices_symlinks (rootfd, has_mount_at (s, "/dev/pts"), err) < 0)
        return -1;
    }
  return switch_root (s->root_path, o->no_pivot, err);
}

int
rootfs_bind_console (const char *slave_path, shim_error_t *err)
{
  int fd = open ("/dev/console", O_CREAT | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno != EEXIST)
    return shim_make_error (err, errno, "create /dev/console");
  if (fd >= 0)
    close (fd);
  if (mount (slave_path, "/dev/console", NULL, MS_BIND, NULL) < 0)
    return shim_make_error (err, errno, "bind %s at /dev/console", slave_path);
  return 0;
}

int
rootfs_finalize (const struct spec *s, shim_error_t *err)
{
  for (size_t i = 0; i < s->n_readonly_paths; i++)
    {
      const char *p = s->readonly_paths[i];
      if (mount (p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
        {
          if (errno == ENOENT)
            continue;
          return shim_make_error (err, errno, "linux.readonlyPaths[%zu]: bind `%s`", i, p);
        }
      if (remount_bind (p, MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, 0, p, err) < 0)
        return shim_error_wrap (err, "linux.readonlyPaths[%zu]", i);
    }
  for (size_t i = 0; i < s->n_masked_paths; i++)
    {
      const char *p = s->masked_paths[i];
      struct stat st;
      if (stat (p, &st) < 0)
        {
          if (errno == ENOENT)
            continue;
          return shim_make_error (err, errno, "linux.maskedPaths[%zu]: stat `%s`", i, p);
        }
      int r = S_ISDIR (st.st_mode) ? mount ("tmpfs", p, "tmpfs", MS_RDONLY, "size=0k")
                                    : mount ("/dev/null", p, NULL, MS_BIND, NULL);
      if (r < 0)
        return shim_make_error (err, errno, "linux.maskedPaths[%zu]: mask `%s`", i, p);
    }
  if (s->root_readonly && remount_bind ("/", MS_RDONLY, 0, "/ (root.readonly)", err) < 0)
    return -1;
  if (s->rootfs_propagation && mount (NULL, "/", NULL, s->rootfs_propagation, NULL) < 0)
    return shim_make_error (err, errno, "linux.rootfsPropagation: apply to /");
  return 0;
}
