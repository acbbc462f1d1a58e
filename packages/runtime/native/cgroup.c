#include "cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "files.h"

const char *
cgroup_layout_name (int layout)
{
  switch (layout)
    {
    case CGROUP_LAYOUT_V1:
      return "v1";
    case CGROUP_LAYOUT_V2:
      return "v2";
    default:
      return "hybrid";
    }
}

int
cgroup_env_load (struct cgroup_env *env, shim_error_t *err)
{
  struct statfs st;
  memset (env, 0, sizeof *env);
  if (statfs ("/sys/fs/cgroup", &st) < 0)
    return shim_make_error (err, errno, "statfs /sys/fs/cgroup");
  if (st.f_type == CGROUP2_SUPER_MAGIC)
    env->layout = CGROUP_LAYOUT_V2;
  else
    {
      struct statfs unified;
      env->layout = statfs ("/sys/fs/cgroup/unified", &unified) == 0 && unified.f_type == CGROUP2_SUPER_MAGIC
                        ? CGROUP_LAYOUT_HYBRID
                        : CGROUP_LAYOUT_V1;
    }
  char *text;
  if (read_file ("/proc/self/mountinfo", &text, NULL, err) < 0)
    return -1;
  env->mountinfo = text;
  if (read_file ("/proc/self/cgroup", &text, NULL, err) < 0)
    return -1;
  env->self_cgroup = text;
  return 0;
}

void
cgroup_env_release (struct cgroup_env *env)
{
  free ((char *) env->mountinfo);
  free ((char *) env->self_cgroup);
  env->mountinfo = env->self_cgroup = NULL;
}

/* Removes "." and ".." and doubled slashes; the result is absolute or empty-relative like Go's
   filepath.Clean applied to "/" + path, so a cgroupsPath can never climb out of its hierarchy. */
static char *
clean_path (const char *path)
{
  char *out = xmalloc (strlen (path) + 2);
  size_t n = 0;
  const char *p = path;
  while (*p)
    {
      while (*p == '/')
        p++;
      const char *e = strchr (p, '/');
      size_t len = e ? (size_t) (e - p) : strlen (p);
      if (len == 0)
        break;
      if (len == 1 && p[0] == '.')
        ;
      else if (len == 2 && p[0] == '.' && p[1] == '.')
        {
          while (n > 0 && out[n - 1] != '/')
            n--;
          if (n > 0)
            n--;
        }
      else
        {
          out[n++] = '/';
          memcpy (out + n, p, len);
          n += len;
        }
      p += len;
    }
  out[n] = 0;
  return out;
}

static char *
unescape_mount_field (const char *s, size_t len)
{
  char *out = xmalloc (len + 1);
  size_t n = 0;
  for (size_t i = 0; i < len; i++)
    {
      if (s[i] == '\\' && i + 3 < len + 1 && s[i + 1] >= '0' && s[i + 1] <= '7')
        {
          out[n++] = (char) (((s[i + 1] - '0') << 6) | ((s[i + 2] - '0') << 3) | (s[i + 3] - '0'));
          i += 3;
        }
      else
        out[n++] = s[i];
    }
  out[n] = 0;
  return out;
}

static const char *const v1_controllers[]
    = { "cpu",    "cpuacct", "cpuset",   "memory",  "devices", "freezer", "blkio", "pids",
        "hugetlb", "net_cls", "net_prio", "perf_event", "rdma",  "misc",    NULL };

/* The controllers of a v1 mount, from its super options ("rw,cpu,cpuacct" -> "cpu,cpuacct"). */
static char *
controllers_of (const char *super_opts)
{
  struct strbuf b = { 0 };
  cleanup_free char *copy = xstrdup (super_opts);
  char *save = NULL;
  for (char *t = strtok_r (copy, ",", &save); t; t = strtok_r (NULL, ",", &save))
    {
      bool keep = strncmp (t, "name=", 5) == 0;
      for (size_t i = 0; !keep && v1_controllers[i]; i++)
        keep = strcmp (t, v1_controllers[i]) == 0;
      if (!keep)
        continue;
      if (b.len)
        strbuf_add (&b, ",");
      strbuf_add (&b, t);
    }
  return b.p ? b.p : xstrdup ("");
}

/* The process's own cgroup in the hierarchy with these controllers ("" for v2). */
static const char *
own_cgroup (const struct cgroup_env *env, const char *controllers, char *buf, size_t size)
{
  const char *line = env->self_cgroup;
  while (line && *line)
    {
      const char *end = strchr (line, '\n');
      size_t len = end ? (size_t) (end - line) : strlen (line);
      const char *c1 = memchr (line, ':', len);
      const char *c2 = c1 ? memchr (c1 + 1, ':', len - (size_t) (c1 + 1 - line)) : NULL;
      if (c2)
        {
          size_t clen = (size_t) (c2 - c1 - 1);
          if (clen == strlen (controllers) && strncmp (c1 + 1, controllers, clen) == 0)
            {
              size_t plen = len - (size_t) (c2 + 1 - line);
              if (plen >= size)
                plen = size - 1;
              memcpy (buf, c2 + 1, plen);
              buf[plen] = 0;
              return buf;
            }
        }
      line = end ? end + 1 : NULL;
    }
  return "/";
}

static void
add_hierarchy (struct cgroup *cg, const char *controllers, char *path)
{
  cg->h = xrealloc (cg->h, (cg->n + 1) * sizeof *cg->h);
  cg->h[cg->n].controllers = xstrdup (controllers);
  cg->h[cg->n].path = path;
  cg->h[cg->n].created_depth = 0;
  cg->n++;
}

int
cgroup_resolve (const struct cgroup_env *env, const char *cgroups_path, const char *id, struct cgroup **out,
                shim_error_t *err)
{
  const char *wanted = cgroups_path && *cgroups_path ? cgroups_path : id;
  if (wanted[0] != '/' && strchr (wanted, ':'))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "config.json: linux.cgroupsPath: `%s` is a systemd slice path; berth-runtime manages "
                                 "cgroups through the file system and takes a path such as /berth/<id>",
                                 wanted);
  bool absolute = wanted[0] == '/';
  cleanup_free char *inner = clean_path (wanted);
  if (*inner == 0)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "config.json: linux.cgroupsPath: `%s` resolves to the root cgroup", wanted);
  struct cgroup *cg = xcalloc (1, sizeof *cg);
  cg->layout = env->layout;

  const char *line = env->mountinfo;
  while (line && *line)
    {
      const char *end = strchr (line, '\n');
      size_t len = end ? (size_t) (end - line) : strlen (line);
      cleanup_free char *l = xmalloc (len + 1);
      memcpy (l, line, len);
      l[len] = 0;
      line = end ? end + 1 : NULL;
      /* id parent major:minor root mountpoint options [optional...] - fstype source superopts */
      char *fields[6] = { 0 };
      char *save = NULL, *t = strtok_r (l, " ", &save);
      for (int i = 0; i < 5 && t; i++, t = strtok_r (NULL, " ", &save))
        fields[i] = t;
      while (t && strcmp (t, "-") != 0)
        t = strtok_r (NULL, " ", &save);
      char *fstype = t ? strtok_r (NULL, " ", &save) : NULL;
      if (fstype == NULL)
        continue;
      strtok_r (NULL, " ", &save); /* source */
      char *super = strtok_r (NULL, " ", &save);
      bool v2 = strcmp (fstype, "cgroup2") == 0;
      if (!v2 && strcmp (fstype, "cgroup") != 0)
        continue;
      if (v2 && env->layout == CGROUP_LAYOUT_V1)
        continue;
      if (!v2 && env->layout == CGROUP_LAYOUT_V2)
        continue;
      cleanup_free char *mountpoint = unescape_mount_field (fields[4], strlen (fields[4]));
      cleanup_free char *mount_root = unescape_mount_field (fields[3], strlen (fields[3]));
      cleanup_free char *controllers = v2 ? xstrdup ("") : controllers_of (super ? super : "");
      if (!v2 && *controllers == 0)
        continue;
      bool seen = false;
      for (size_t i = 0; i < cg->n; i++)
        seen = seen || strcmp (cg->h[i].controllers, controllers) == 0;
      if (seen)
        continue;
      char base[4096];
      if (absolute)
        snprintf (base, sizeof base, "%s", "");
      else
        {
          char own[4096];
          own_cgroup (env, controllers, own, sizeof own);
          /* Inside the mount the path starts at the mount's root (not "/" in a cgroup namespace). */
          const char *rel = own;
          size_t rlen = strlen (mount_root);
          if (strcmp (mount_root, "/") != 0 && strncmp (own, mount_root, rlen) == 0)
            rel = own + rlen;
          snprintf (base, sizeof base, "%s", strcmp (rel, "/") == 0 ? "" : rel);
        }
      char *path = xasprintf ("%s%s%s", mountpoint, base, inner);
      if (v2)
        {
          free (cg->v2_path);
          free (cg->v2_mount);
          cg->v2_path = xstrdup (path);
          cg->v2_mount = xstrdup (mountpoint);
        }
      add_hierarchy (cg, controllers, path);
    }
  if (cg->n == 0)
    {
      cgroup_free (cg);
      return shim_make_error (err, ENOENT, "no cgroup hierarchy is mounted (layout %s)",
                              cgroup_layout_name (env->layout));
    }
  *out = cg;
  return 0;
}

const char *
cgroup_controller_path (const struct cgroup *cg, const char *controller)
{
  size_t n = strlen (controller);
  for (size_t i = 0; i < cg->n; i++)
    {
      const char *c = cg->h[i].controllers;
      if (*c == 0)
        continue;
      while (c && *c)
        {
          const char *e = strchr (c, ',');
          size_t len = e ? (size_t) (e - c) : strlen (c);
          if (len == n && strncmp (c, controller, n) == 0)
            return cg->h[i].path;
          c = e ? e + 1 : NULL;
        }
    }
  return NULL;
}

/* mkdir of each missing level; *created gets how many trailing levels were made. */
static int
make_levels (const char *path, int *created, shim_error_t *err)
{
  *created = 0;
  return mkdir_p_counted (path, 0755, created, err);
}

static int
remove_levels (const char *path, int depth)
{
  cleanup_free char *p = xstrdup (path);
  for (int i = 0; i < depth; i++)
    {
      if (rmdir (p) < 0 && errno != ENOENT)
        return -1;
      char *slash = strrchr (p, '/');
      if (slash == NULL || slash == p)
        break;
      *slash = 0;
    }
  return 0;
}

static void
undo_create (const struct cgroup *cg, size_t upto)
{
  for (size_t j = 0; j < upto && j < cg->n; j++)
    remove_levels (cg->h[j].path, cg->h[j].created_depth);
}

/* v1 controllers, and linux.resources.unified on the hybrid layout's v2 hierarchy. */
static int
apply_v1 (const struct cgroup *cg, const struct spec_resources *r, shim_error_t *err)
{
  if (cgroup_v1_apply (cg, r, err) < 0)
    return -1;
  if (r->n_unified == 0)
    return 0;
  if (cg->v2_path == NULL)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "linux.resources.unified: needs cgroup v2, this host has cgroup v1");
  struct spec_resources only_unified = { .unified = r->unified, .n_unified = r->n_unified };
  return cgroup_v2_apply (cg->v2_path, &only_unified, err);
}

int
cgroup_create (struct cgroup *cg, const struct spec_resources *r, shim_error_t *err)
{
  for (size_t i = 0; i < cg->n; i++)
    {
      if (make_levels (cg->h[i].path, &cg->h[i].created_depth, err) < 0)
        {
          undo_create (cg, i);
          return -1;
        }
      if (strstr (cg->h[i].controllers, "cpuset") && cgroup_v1_cpuset_inherit (cg->h[i].path, cg->h[i].created_depth, err) < 0)
        {
          undo_create (cg, i + 1);
          return -1;
        }
    }
  int ret;
  if (cg->layout == CGROUP_LAYOUT_V2)
    ret = cgroup_v2_enable_controllers (cg->v2_mount, cg->v2_path, err) < 0 ? -1 : cgroup_v2_apply (cg->v2_path, r, err);
  else
    ret = apply_v1 (cg, r, err);
  if (ret < 0)
    undo_create (cg, cg->n);
  return ret;
}

int
cgroup_update (const struct cgroup *cg, const struct spec_resources *r, shim_error_t *err)
{
  /* The device rules stay as created: rewriting them would briefly deny devices in use (v1) or
     stack a second filter (v2), and runc's update leaves them alone too. */
  struct spec_resources without_devices = *r;
  without_devices.has_devices = false;
  without_devices.n_devices = 0;
  if (cg->layout == CGROUP_LAYOUT_V2)
    {
      if (cg->v2_path == NULL)
        return shim_make_error (err, ENOENT, "the container's state records no cgroup v2 directory");
      return cgroup_v2_apply (cg->v2_path, &without_devices, err);
    }
  return apply_v1 (cg, &without_devices, err);
}

int
cgroup_join_open (const struct cgroup *cg, struct cgroup_join *j, shim_error_t *err)
{
  *j = (struct cgroup_join){ .v2_fd = -1 };
  if (cg == NULL)
    return 0;
  j->v1_tasks = xmalloc ((cg->n ? cg->n : 1) * sizeof *j->v1_tasks);
  for (size_t i = 0; i < cg->n; i++)
    {
      bool v2 = cg->h[i].controllers[0] == '\0';
      cleanup_free char *path = v2 ? xstrdup (cg->h[i].path) : xasprintf ("%s/tasks", cg->h[i].path);
      int fd = open (path, v2 ? O_RDONLY | O_DIRECTORY | O_CLOEXEC : O_WRONLY | O_CLOEXEC);
      if (fd < 0)
        {
          shim_make_error (err, errno, "open `%s`", path);
          cgroup_join_close (j);
          return -1;
        }
      if (v2)
        j->v2_fd = fd;
      else
        j->v1_tasks[j->n_v1++] = fd;
    }
  return 0;
}

pid_t
cgroup_join_clone (struct cgroup_join *j, unsigned long flags)
{
  if (j->v2_fd >= 0)
    {
      struct clone_args args = { .flags = flags | CLONE_INTO_CGROUP, .exit_signal = SIGCHLD, .cgroup = (__u64) j->v2_fd };
      pid_t pid = (pid_t) syscall (SYS_clone3, &args, sizeof args);
      if (pid >= 0)
        return pid;
      /* Older kernels (ENOSYS, E2BIG, EINVAL), or a cgroup the kernel refuses: the parent's
         cgroup.procs write does it, or reports why it cannot. */
      j->v2_pending = true;
    }
  /* No new stack: the child continues on a copy of ours, as with fork. */
  return (pid_t) syscall (SYS_clone, flags | SIGCHLD, NULL, NULL, NULL, NULL);
}

int
cgroup_join_self (const struct cgroup_join *j, shim_error_t *err)
{
  for (size_t i = 0; i < j->n_v1; i++)
    if (write (j->v1_tasks[i], "0", 1) < 0)
      return shim_make_error (err, errno, "join the container's cgroup (v1 `tasks`)");
  return 0;
}

int
cgroup_join_finish (const struct cgroup_join *j, const struct cgroup *cg, pid_t pid, shim_error_t *err)
{
  if (!j->v2_pending || cg->v2_path == NULL)
    return 0;
  char buf[32];
  int n = snprintf (buf, sizeof buf, "%d", pid);
  cleanup_free char *procs = xasprintf ("%s/cgroup.procs", cg->v2_path);
  return write_file (procs, buf, (size_t) n, err);
}

void
cgroup_join_close (struct cgroup_join *j)
{
  for (size_t i = 0; i < j->n_v1; i++)
    close (j->v1_tasks[i]);
  free (j->v1_tasks);
  if (j->v2_fd >= 0)
    close (j->v2_fd);
  *j = (struct cgroup_join){ .v2_fd = -1 };
}

/* rmdir, retrying while the last processes finish leaving (EBUSY) for up to about a second. */
static int
remove_cgroup_dir (const char *path, shim_error_t *err)
{
  for (int attempt = 0;; attempt++)
    {
      if (rmdir (path) == 0 || errno == ENOENT)
        return 0;
      if (errno != EBUSY || attempt >= 100)
        return shim_make_error (err, errno, "remove cgroup `%s`", path);
      /* v1 has no notification for an emptied cgroup: exiting tasks leave within milliseconds. */
      struct timespec ts = { 0, 10 * 1000 * 1000 };
      nanosleep (&ts, NULL);
    }
}

static int
remove_children (const char *path, shim_error_t *err)
{
  DIR *d = opendir (path);
  if (d == NULL)
    return errno == ENOENT ? 0 : shim_make_error (err, errno, "open cgroup `%s`", path);
  struct dirent *de;
  int ret = 0;
  while ((de = readdir (d)) != NULL && ret == 0)
    {
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      cleanup_free char *child = xasprintf ("%s/%s", path, de->d_name);
      ret = remove_children (child, err);
      if (ret == 0)
        ret = remove_cgroup_dir (child, err);
    }
  closedir (d);
  return ret;
}

int
cgroup_destroy (const struct cgroup *cg, shim_error_t *err)
{
  int ret = 0;
  for (size_t i = 0; i < cg->n; i++)
    {
      shim_error_t e = NULL;
      if (remove_children (cg->h[i].path, &e) < 0 || remove_cgroup_dir (cg->h[i].path, &e) < 0)
        {
          if (ret == 0)
            {
              *err = e;
              ret = -1;
            }
          else
            shim_error_release (&e);
        }
    }
  return ret;
}

int
cgroup_freeze (const struct cgroup *cg, bool freeze, shim_error_t *err)
{
  const char *freezer = cgroup_controller_path (cg, "freezer");
  if (freezer)
    {
      cleanup_free char *state = xasprintf ("%s/freezer.state", freezer);
      const char *want = freeze ? "FROZEN" : "THAWED";
      if (write_file (state, want, strlen (want), err) < 0)
        return -1;
      /* v1 freezing is asynchronous (FREEZING) and has no notification: re-read until it settles. */
      for (int attempt = 0; attempt < 1000; attempt++)
        {
          cleanup_free char *now = NULL;
          if (read_file (state, &now, NULL, err) < 0)
            return -1;
          if (strncmp (now, want, strlen (want)) == 0)
            return 0;
          if (freeze && attempt % 50 == 49 && write_file (state, want, strlen (want), err) < 0)
            return -1;
          struct timespec ts = { 0, 1000 * 1000 };
          nanosleep (&ts, NULL);
        }
      return shim_make_error (err, ETIMEDOUT, "cgroup `%s` did not reach %s", freezer, want);
    }
  if (cg->v2_path == NULL)
    return shim_make_error (err, ENOTSUP, "no freezer: neither the v1 freezer nor cgroup v2 is mounted");
  cleanup_free char *file = xasprintf ("%s/cgroup.freeze", cg->v2_path);
  if (write_file (file, freeze ? "1" : "0", 1, err) < 0)
    return -1;
  cleanup_free char *events = xasprintf ("%s/cgroup.events", cg->v2_path);
  cleanup_close int fd = open (events, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return shim_make_error (err, errno, "open `%s`", events);
  for (;;)
    {
      char buf[512];
      ssize_t n = pread (fd, buf, sizeof buf - 1, 0);
      if (n < 0)
        return shim_make_error (err, errno, "read `%s`", events);
      buf[n] = 0;
      const char *f = strstr (buf, "frozen ");
      if (f && (f[7] == '1') == freeze)
        return 0;
      /* cgroup.events signals every change with POLLPRI. */
      struct pollfd pfd = { .fd = fd, .events = POLLPRI };
      int r = SHIM_RETRY (poll (&pfd, 1, 10000));
      if (r == 0)
        return shim_make_error (err, ETIMEDOUT, "cgroup `%s` did not %s", cg->v2_path, freeze ? "freeze" : "thaw");
      if (r < 0)
        return shim_make_error (err, errno, "poll `%s`", events);
    }
}

bool
cgroup_is_frozen (const struct cgroup *cg)
{
  const char *freezer = cgroup_controller_path (cg, "freezer");
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  if (freezer)
    {
      cleanup_free char *state = xasprintf ("%s/freezer.state", freezer);
      if (read_file (state, &text, NULL, &e) < 0)
        {
          shim_error_release (&e);
          return false;
        }
      return strncmp (text, "FROZEN", 6) == 0;
    }
  if (cg->v2_path == NULL)
    return false;
  cleanup_free char *file = xasprintf ("%s/cgroup.freeze", cg->v2_path);
  if (read_file (file, &text, NULL, &e) < 0)
    {
      shim_error_release (&e);
      return false;
    }
  return text[0] == '1';
}

static void
collect_pids (const char *dir, pid_t **out, size_t *n)
{
  cleanup_free char *procs = xasprintf ("%s/cgroup.procs", dir);
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  if (read_file (procs, &text, NULL, &e) == 0)
    {
      char *save = NULL;
      for (char *t = strtok_r (text, "\n", &save); t; t = strtok_r (NULL, "\n", &save))
        {
          pid_t pid = (pid_t) atoi (t);
          bool dup = false;
          for (size_t i = 0; i < *n && !dup; i++)
            dup = (*out)[i] == pid;
          if (pid <= 0 || dup)
            continue;
          *out = xrealloc (*out, (*n + 1) * sizeof **out);
          (*out)[(*n)++] = pid;
        }
    }
  shim_error_release (&e);
  DIR *d = opendir (dir);
  if (d == NULL)
    return;
  struct dirent *de;
  while ((de = readdir (d)) != NULL)
    {
      if (de->d_type != DT_DIR || strcmp (de->d_name, ".") == 0 || strcmp (de->d_name, "..") == 0)
        continue;
      cleanup_free char *child = xasprintf ("%s/%s", dir, de->d_name);
      collect_pids (child, out, n);
    }
  closedir (d);
}

int
cgroup_pids (const struct cgroup *cg, pid_t **out, size_t *n, shim_error_t *err)
{
  const char *dir = cg->v2_path;
  static const char *const prefer[] = { "pids", "freezer", "memory", "cpu", NULL };
  for (size_t i = 0; dir == NULL && prefer[i]; i++)
    dir = cgroup_controller_path (cg, prefer[i]);
  if (dir == NULL && cg->n)
    dir = cg->h[0].path;
  *out = NULL;
  *n = 0;
  if (dir == NULL)
    return shim_make_error (err, ENOENT, "the container has no cgroup");
  collect_pids (dir, out, n);
  return 0;
}

int
cgroup_signal_all (const struct cgroup *cg, int sig, shim_error_t *err)
{
  if (sig == SIGKILL && cg->v2_path)
    {
      cleanup_free char *kill_file = xasprintf ("%s/cgroup.kill", cg->v2_path);
      if (access (kill_file, W_OK) == 0)
        {
          shim_error_t e = NULL;
          if (write_file (kill_file, "1", 1, &e) == 0)
            return 0;
          shim_error_release (&e);
        }
    }
  cleanup_free pid_t *pids = NULL;
  size_t n;
  if (cgroup_pids (cg, &pids, &n, err) < 0)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (kill (pids[i], sig) < 0 && errno != ESRCH)
      return shim_make_error (err, errno, "signal %d to process %d", sig, pids[i]);
  return 0;
}

bool
cgroup_oom_killed (const struct cgroup *cg)
{
  const char *memory = cgroup_controller_path (cg, "memory");
  cleanup_free char *file = NULL;
  if (memory)
    file = xasprintf ("%s/memory.oom_control", memory);
  else if (cg->v2_path && cg->layout == CGROUP_LAYOUT_V2)
    file = xasprintf ("%s/memory.events", cg->v2_path);
  else
    return false;
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  if (read_file (file, &text, NULL, &e) < 0)
    {
      shim_error_release (&e);
      return false;
    }
  const char *k = strstr (text, "oom_kill ");
  return k && atoll (k + 9) > 0;
}

void
cgroup_write_json (struct strbuf *b, const struct cgroup *cg)
{
  strbuf_add (b, "{\"layout\":");
  const char *name = cgroup_layout_name (cg->layout);
  json_write_string (b, name, strlen (name));
  strbuf_add (b, ",\"paths\":{");
  for (size_t i = 0; i < cg->n; i++)
    {
      const char *key = *cg->h[i].controllers ? cg->h[i].controllers : "unified";
      if (i)
        strbuf_add (b, ",");
      json_write_string (b, key, strlen (key));
      strbuf_add (b, ":");
      json_write_string (b, cg->h[i].path, strlen (cg->h[i].path));
    }
  strbuf_add (b, "}}");
}

int
cgroup_from_json (const struct json_value *v, struct cgroup **out, shim_error_t *err)
{
  const struct json_value *layout = json_get (v, "layout"), *paths = json_get (v, "paths");
  if (layout == NULL || layout->type != JSON_STRING || paths == NULL || paths->type != JSON_OBJECT)
    return shim_make_error (err, EINVAL, "state: malformed cgroup record");
  struct cgroup *cg = xcalloc (1, sizeof *cg);
  cg->layout = strcmp (layout->string.s, "v1") == 0   ? CGROUP_LAYOUT_V1
               : strcmp (layout->string.s, "v2") == 0 ? CGROUP_LAYOUT_V2
                                                      : CGROUP_LAYOUT_HYBRID;
  for (size_t i = 0; i < paths->object.len; i++)
    {
      const struct json_value *p = paths->object.values[i];
      if (p->type != JSON_STRING)
        continue;
      bool unified = strcmp (paths->object.keys[i], "unified") == 0;
      add_hierarchy (cg, unified ? "" : paths->object.keys[i], xstrdup (p->string.s));
      if (unified)
        cg->v2_path = xstrdup (p->string.s);
    }
  *out = cg;
  return 0;
}

void
cgroup_free (struct cgroup *cg)
{
  if (cg == NULL)
    return;
  for (size_t i = 0; i < cg->n; i++)
    {
      free (cg->h[i].controllers);
      free (cg->h[i].path);
    }
  free (cg->h);
  free (cg->v2_path);
  free (cg->v2_mount);
  free (cg);
}
