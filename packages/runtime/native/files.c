#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int
read_file_at (int dirfd, const char *path, char **out, size_t *len, shim_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return shim_make_error (err, errno, "open `%s`", path);
  return read_fd (fd, path, out, len, err);
}

int
read_fd (int fd, const char *path, char **out, size_t *len, shim_error_t *err)
{
  size_t cap = 4096, n = 0;
  char *buf = xmalloc (cap);
  for (;;)
    {
      if (n + 1 >= cap)
        {
          cap *= 2;
          buf = xrealloc (buf, cap);
        }
      ssize_t r = SHIM_RETRY (read (fd, buf + n, cap - n - 1));
      if (r < 0)
        {
          int saved = errno;
          free (buf);
          return shim_make_error (err, saved, "read `%s`", path);
        }
      if (r == 0)
        break;
      n += (size_t) r;
    }
  buf[n] = 0;
  *out = buf;
  if (len)
    *len = n;
  return 0;
}

int
read_file (const char *path, char **out, size_t *len, shim_error_t *err)
{
  return read_file_at (AT_FDCWD, path, out, len, err);
}

int
write_file_at (int dirfd, const char *path, const char *data, size_t len, shim_error_t *err)
{
  cleanup_close int fd = openat (dirfd, path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return shim_make_error (err, errno, "open `%s`", path);
  ssize_t w = SHIM_RETRY (write (fd, data, len));
  if (w < 0)
    return shim_make_error (err, errno, "write `%.*s` to `%s`", (int) (len > 64 ? 64 : len), data, path);
  if ((size_t) w != len)
    return shim_make_error (err, EIO, "short write to `%s`", path);
  return 0;
}

int
write_file (const char *path, const char *data, size_t len, shim_error_t *err)
{
  return write_file_at (AT_FDCWD, path, data, len, err);
}

int
write_file_atomic (const char *path, const char *data, size_t len, mode_t mode, shim_error_t *err)
{
  cleanup_free char *tmp = xasprintf ("%s.tmp-%d", path, getpid ());
  cleanup_close int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0)
    return shim_make_error (err, errno, "create `%s`", tmp);
  size_t off = 0;
  while (off < len)
    {
      ssize_t w = SHIM_RETRY (write (fd, data + off, len - off));
      if (w < 0)
        {
          int saved = errno;
          unlink (tmp);
          return shim_make_error (err, saved, "write `%s`", tmp);
        }
      off += (size_t) w;
    }
  /* No fsync: runtime state describes processes, which do not survive a power loss either;
     the rename alone gives readers the old or the new file, never half of one. */
  if (rename (tmp, path) < 0)
    {
      int saved = errno;
      unlink (tmp);
      return shim_make_error (err, saved, "rename `%s` to `%s`", tmp, path);
    }
  return 0;
}

int
mkdir_p_counted (const char *path, mode_t mode, int *created, shim_error_t *err)
{
  /* Try the directory itself first: usually only the last levels are missing. */
  if (mkdir (path, mode) == 0)
    {
      if (created)
        (*created)++;
      return 0;
    }
  if (errno == EEXIST)
    return 0;
  if (errno != ENOENT)
    return shim_make_error (err, errno, "mkdir `%s`", path);
  cleanup_free char *parent = xstrdup (path);
  char *slash = strrchr (parent, '/');
  while (slash && slash > parent && slash[1] == 0)
    {
      *slash = 0;
      slash = strrchr (parent, '/');
    }
  if (slash == NULL || slash == parent)
    return shim_make_error (err, ENOENT, "mkdir `%s`", path);
  *slash = 0;
  if (mkdir_p_counted (parent, mode, created, err) < 0)
    return -1;
  if (mkdir (path, mode) < 0 && errno != EEXIST)
    return shim_make_error (err, errno, "mkdir `%s`", path);
  if (created)
    (*created)++;
  return 0;
}

int
mkdir_p (const char *path, mode_t mode, shim_error_t *err)
{
  return mkdir_p_counted (path, mode, NULL, err);
}

static int
remove_at (int parent, const char *name, shim_error_t *err)
{
  if (unlinkat (parent, name, 0) == 0 || errno == ENOENT)
    return 0;
  if (errno != EISDIR)
    return shim_make_error (err, errno, "remove `%s`", name);
  int fd = openat (parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0)
    return shim_make_error (err, errno, "open `%s`", name);
  DIR *d = fdopendir (fd);
  if (d == NULL)
    {
      close (fd);
      return shim_make_error (err, errno, "opendir `%s`", name);
    }
  struct dirent *de;
  int ret = 0;
  while ((de = readdir (d)) != NULL)
    {
      if (strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      ret = remove_at (dirfd (d), de->d_name, err);
      if (ret < 0)
        break;
    }
  closedir (d);
  if (ret < 0)
    return ret;
  if (unlinkat (parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
    return shim_make_error (err, errno, "rmdir `%s`", name);
  return 0;
}

int
remove_tree (const char *path, shim_error_t *err)
{
  return remove_at (AT_FDCWD, path, err);
}

unsigned long long
process_start_time (pid_t pid, char *state)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = SHIM_RETRY (read (fd, buf, sizeof buf - 1));
  if (n <= 0)
    return 0;
  buf[n] = 0;
  /* The command name may hold spaces and parentheses; fields resume after the last ')'. */
  char *p = strrchr (buf, ')');
  if (p == NULL || p[1] == 0)
    return 0;
  p += 2;
  if (state)
    *state = *p;
  for (int field = 3; field < 22; field++)
    {
      p = strchr (p, ' ');
      if (p == NULL)
        return 0;
      p++;
    }
  return strtoull (p, NULL, 10);
}

int
write_pid_file (const char *path, pid_t pid, shim_error_t *err)
{
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d", pid);
  return write_file_atomic (path, buf, (size_t) n, 0644, err);
}
