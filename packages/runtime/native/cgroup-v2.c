/* linux.resources written to a cgroup v2 (unified) directory. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgroup.h"
#include "files.h"

static int
put (const char *dir, const char *file, const char *value, shim_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  if (write_file (path, value, strlen (value), err) < 0)
    {
      if ((*err)->status == ENOENT)
        {
          char controller[32];
          size_t n = strcspn (file, ".");
          snprintf (controller, sizeof controller, "%.*s", (int) n, file);
          return shim_make_error (err, ENOENT, "cgroup v2 controller `%s` is not enabled for `%s`", controller, dir);
        }
      return -1;
    }
  return 0;
}

unsigned long long
cgroup_v2_cpu_weight (unsigned long long shares)
{
  if (shares == 0)
    return 0;
  if (shares < 2)
    shares = 2;
  if (shares > 262144)
    shares = 262144;
  return 1 + ((shares - 2) * 9999) / 262142;
}

int
cgroup_v2_enable_controllers (const char *mountpoint, const char *path, shim_error_t *err)
{
  /* Every ancestor between the mount and the leaf must delegate the controllers downwards. */
  size_t mlen = strlen (mountpoint);
  if (strncmp (path, mountpoint, mlen) != 0)
    return shim_make_error (err, EINVAL, "cgroup `%s` is not under `%s`", path, mountpoint);
  cleanup_free char *available = NULL;
  cleanup_free char *root_controllers = xasprintf ("%s/cgroup.controllers", mountpoint);
  if (read_file (root_controllers, &available, NULL, err) < 0)
    return -1;
  struct strbuf want = { 0 };
  char *save = NULL;
  for (char *t = strtok_r (available, " \n", &save); t; t = strtok_r (NULL, " \n", &save))
    {
      if (want.len)
        strbuf_add (&want, " ");
      strbuf_addf (&want, "+%s", t);
    }
  if (want.len == 0)
    return 0;
  cleanup_free char *dir = xstrdup (mountpoint);
  const char *rest = path + mlen;
  int ret = 0;
  /* Each ancestor from the mount down to the leaf's parent; the leaf keeps its controllers for its processes. */
  while (*rest == '/')
    {
      cleanup_free char *control = xasprintf ("%s/cgroup.subtree_control", dir);
      if (write_file (control, want.p, want.len, err) < 0)
        {
          /* Enabling all at once fails if one is unavailable here; fall back to one at a time. */
          shim_error_release (err);
          cleanup_free char *copy = xstrdup (want.p);
          char *s2 = NULL;
          for (char *t = strtok_r (copy, " ", &s2); t; t = strtok_r (NULL, " ", &s2))
            {
              shim_error_t e = NULL;
              if (write_file (control, t, strlen (t), &e) < 0)
                shim_error_release (&e);
            }
        }
      const char *next = strchr (rest + 1, '/');
      if (next == NULL)
        break;
      char *grown = xasprintf ("%s%.*s", dir, (int) (next - rest), rest);
      free (dir);
      dir = grown;
      rest = next;
    }
  free (want.p);
  return ret;
}

static int
io_throttle (const char *dir, const char *key, const struct spec_throttle *t, size_t n, shim_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      char buf[96];
      snprintf (buf, sizeof buf, "%lld:%lld %s=%llu", (long long) t[i].major, (long long) t[i].minor, key,
                (unsigned long long) t[i].rate);
      if (put (dir, "io.max", buf, err) < 0)
        return -1;
    }
  return 0;
}

int
cgroup_v2_apply (const char *path, const struct spec_resources *r, shim_error_t *err)
{
  char buf[64];
  if (r->has_memory_limit && r->memory_limit != 0)
    {
      if (r->memory_limit < 0)
        snprintf (buf, sizeof buf, "max");
      else
        snprintf (buf, sizeof buf, "%lld", (long long) r->memory_limit);
      if (put (path, "memory.max", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.limit");
    }
  if (r->has_memory_swap && r->memory_swap != 0)
    {
      /* The spec's swap is memory plus swap (v1's memsw); v2 limits swap alone. */
      if (r->memory_swap == -1)
        snprintf (buf, sizeof buf, "max");
      else if (r->has_memory_limit && r->memory_limit > 0)
        snprintf (buf, sizeof buf, "%lld", (long long) (r->memory_swap - r->memory_limit));
      else
        return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                     "config.json: linux.resources.memory.swap: on cgroup v2 a swap limit needs a "
                                     "memory limit");
      if (put (path, "memory.swap.max", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.swap");
    }
  if (r->has_memory_reservation && r->memory_reservation != 0)
    {
      if (r->memory_reservation < 0)
        snprintf (buf, sizeof buf, "max");
      else
        snprintf (buf, sizeof buf, "%lld", (long long) r->memory_reservation);
      if (put (path, "memory.low", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.reservation");
    }
  if (r->has_swappiness)
    shim_warning ("linux.resources.memory.swappiness has no cgroup v2 equivalent, ignored");
  if (r->disable_oom_killer)
    shim_warning ("linux.resources.memory.disableOOMKiller has no cgroup v2 equivalent, ignored");
  if (r->has_cpu_shares && r->cpu_shares)
    {
      snprintf (buf, sizeof buf, "%llu", cgroup_v2_cpu_weight (r->cpu_shares));
      if (put (path, "cpu.weight", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.shares");
    }
  if ((r->has_cpu_quota && r->cpu_quota) || (r->has_cpu_period && r->cpu_period))
    {
      unsigned long long period = r->has_cpu_period && r->cpu_period ? r->cpu_period : 100000;
      if (r->has_cpu_quota && r->cpu_quota > 0)
        snprintf (buf, sizeof buf, "%lld %llu", (long long) r->cpu_quota, period);
      else
        snprintf (buf, sizeof buf, "max %llu", period);
      if (put (path, "cpu.max", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.quota");
    }
  if (r->has_cpu_idle)
    {
      snprintf (buf, sizeof buf, "%lld", (long long) r->cpu_idle);
      if (put (path, "cpu.idle", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.idle");
    }
  if (r->cpuset_cpus && *r->cpuset_cpus && put (path, "cpuset.cpus", r->cpuset_cpus, err) < 0)
    return shim_error_wrap (err, "linux.resources.cpu.cpus");
  if (r->cpuset_mems && *r->cpuset_mems && put (path, "cpuset.mems", r->cpuset_mems, err) < 0)
    return shim_error_wrap (err, "linux.resources.cpu.mems");
  if (r->has_pids_limit && r->pids_limit != 0)
    {
      if (r->pids_limit > 0)
        snprintf (buf, sizeof buf, "%lld", (long long) r->pids_limit);
      else
        snprintf (buf, sizeof buf, "max");
      if (put (path, "pids.max", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.pids.limit");
    }
  if (r->has_blkio_weight)
    {
      /* blkio's 10..1000 onto io.weight's 1..10000, as runc maps it. */
      snprintf (buf, sizeof buf, "default %u", 1 + ((unsigned) r->blkio_weight - 10) * 9999 / 990);
      if (put (path, "io.weight", buf, err) < 0)
        return shim_error_wrap (err, "linux.resources.blockIO.weight");
    }
  if (io_throttle (path, "rbps", r->throttle_read_bps, r->n_throttle_read_bps, err) < 0
      || io_throttle (path, "wbps", r->throttle_write_bps, r->n_throttle_write_bps, err) < 0
      || io_throttle (path, "riops", r->throttle_read_iops, r->n_throttle_read_iops, err) < 0
      || io_throttle (path, "wiops", r->throttle_write_iops, r->n_throttle_write_iops, err) < 0)
    return shim_error_wrap (err, "linux.resources.blockIO");
  if (r->has_devices && r->n_devices)
    {
      int ret = cgroup_v2_device_filter (path, r->devices, r->n_devices, err);
      if (ret < 0)
        return shim_error_wrap (err, "linux.resources.devices");
    }
  for (size_t i = 0; i < r->n_unified; i++)
    {
      const char *key = r->unified[i].key;
      if (strchr (key, '/') || strcmp (key, "..") == 0 || strcmp (key, ".") == 0)
        return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                     "config.json: linux.resources.unified: `%s` is not a cgroup file name", key);
      if (put (path, key, r->unified[i].value, err) < 0)
        return shim_error_wrap (err, "linux.resources.unified.%s", key);
    }
  return 0;
}
