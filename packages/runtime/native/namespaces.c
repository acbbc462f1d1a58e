#include "namespaces.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "files.h"

static int
join_one (const char *path, int flag, shim_error_t *err)
{
  cleanup_close int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, errno, "linux.namespaces: open %s namespace `%s`",
                                 spec_namespace_name (flag), path);
  if (setns (fd, flag) < 0)
    return shim_make_error (err, errno, "join the %s namespace `%s`", spec_namespace_name (flag), path);
  return 0;
}

int
ns_loopback_up (shim_error_t *err)
{
  cleanup_close int fd = socket (AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return shim_make_error (err, errno, "bring up lo: socket");
  struct ifreq ifr;
  memset (&ifr, 0, sizeof ifr);
  strcpy (ifr.ifr_name, "lo");
  if (ioctl (fd, SIOCGIFFLAGS, &ifr) < 0)
    return shim_make_error (err, errno, "bring up lo: read its flags");
  if (ifr.ifr_flags & IFF_UP)
    return 0;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl (fd, SIOCSIFFLAGS, &ifr) < 0)
    return shim_make_error (err, errno, "bring up lo");
  return 0;
}

int
ns_join_paths (const struct spec *s, shim_error_t *err)
{
  for (size_t i = 0; i < s->n_namespaces; i++)
    if (s->namespaces[i].path && s->namespaces[i].flag == CLONE_NEWUSER
        && join_one (s->namespaces[i].path, CLONE_NEWUSER, err) < 0)
      return -1;
  for (size_t i = 0; i < s->n_namespaces; i++)
    if (s->namespaces[i].path && s->namespaces[i].flag != CLONE_NEWUSER
        && join_one (s->namespaces[i].path, s->namespaces[i].flag, err) < 0)
      return -1;
  return 0;
}

static int
write_map (pid_t pid, const char *file, const struct spec_idmap *m, size_t n, shim_error_t *err)
{
  struct strbuf b = { 0 };
  for (size_t i = 0; i < n; i++)
    strbuf_addf (&b, "%u %u %u\n", m[i].container_id, m[i].host_id, m[i].size);
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/%s", pid, file);
  int r = write_file (path, b.p, b.len, err);
  free (b.p);
  if (r < 0)
    return shim_error_wrap (err, "linux.%s", strcmp (file, "uid_map") == 0 ? "uidMappings" : "gidMappings");
  return 0;
}

int
ns_write_id_maps (pid_t pid, const struct spec *s, shim_error_t *err)
{
  if (write_map (pid, "uid_map", s->uid_mappings, s->n_uid_mappings, err) < 0)
    return -1;
  return write_map (pid, "gid_map", s->gid_mappings, s->n_gid_mappings, err);
}

static int
open_if_different (pid_t pid, const char *name, int *out, shim_error_t *err)
{
  char theirs[64], ours[64];
  struct stat a, b;
  snprintf (theirs, sizeof theirs, "/proc/%d/ns/%s", pid, name);
  snprintf (ours, sizeof ours, "/proc/self/ns/%s", name);
  *out = -1;
  if (stat (theirs, &a) < 0)
    {
      if (errno == ENOENT && strcmp (name, "cgroup") == 0)
        return 0;
      return shim_make_error (err, errno, "stat %s", theirs);
    }
  if (stat (ours, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
    return 0;
  *out = open (theirs, O_RDONLY | O_CLOEXEC);
  if (*out < 0)
    return shim_make_error (err, errno, "open %s", theirs);
  return 0;
}

int
ns_open_process (pid_t pid, struct ns_set *ns, shim_error_t *err)
{
  ns->user = ns->mnt = ns->pid = ns->net = ns->ipc = ns->uts = ns->cgroup = -1;
  if (open_if_different (pid, "user", &ns->user, err) < 0 || open_if_different (pid, "mnt", &ns->mnt, err) < 0
      || open_if_different (pid, "pid", &ns->pid, err) < 0 || open_if_different (pid, "net", &ns->net, err) < 0
      || open_if_different (pid, "ipc", &ns->ipc, err) < 0 || open_if_different (pid, "uts", &ns->uts, err) < 0
      || open_if_different (pid, "cgroup", &ns->cgroup, err) < 0)
    {
      ns_close (ns);
      return -1;
    }
  return 0;
}

void
ns_close (struct ns_set *ns)
{
  int *all[] = { &ns->user, &ns->mnt, &ns->pid, &ns->net, &ns->ipc, &ns->uts, &ns->cgroup };
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (*all[i] >= 0)
      {
        close (*all[i]);
        *all[i] = -1;
      }
}

int
ns_enter (const struct ns_set *ns, shim_error_t *err)
{
  /* The user namespace first: it grants the capabilities to join the others. The mount
     namespace last but one, the cgroup namespace after it (its root follows our cgroup). */
  const struct
  {
    int fd, flag;
  } order[] = {
    { ns->user, CLONE_NEWUSER }, { ns->ipc, CLONE_NEWIPC }, { ns->uts, CLONE_NEWUTS },
    { ns->net, CLONE_NEWNET },   { ns->mnt, CLONE_NEWNS },  { ns->cgroup, CLONE_NEWCGROUP },
  };
  for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
    if (order[i].fd >= 0 && setns (order[i].fd, order[i].flag) < 0)
      return shim_make_error (err, errno, "join the container's %s namespace", spec_namespace_name (order[i].flag));
  return 0;
}
