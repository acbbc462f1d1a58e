/* linux.resources written to the v1 controllers (also the hybrid layout's controllers). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup.h"
#include "files.h"

static int
put (const char *dir, const char *file, const char *value, shim_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  return write_file (path, value, strlen (value), err);
}

static int
put_i64 (const char *dir, const char *file, long long value, shim_error_t *err)
{
  char buf[32];
  snprintf (buf, sizeof buf, "%lld", value);
  return put (dir, file, buf, err);
}

static int
need (const char *dir, const char *controller, const char *field, shim_error_t *err)
{
  if (dir)
    return 0;
  return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, ENOENT,
                               "%s: the cgroup v1 `%s` controller is not mounted", field, controller);
}

static bool
exists (const char *dir, const char *file)
{
  cleanup_free char *path = xasprintf ("%s/%s", dir, file);
  return access (path, F_OK) == 0;
}

int
cgroup_v1_cpuset_inherit (const char *path, int depth, shim_error_t *err)
{
  /* A new v1 cpuset starts with empty cpus and mems and admits no task; fill each created level from its parent. */
  cleanup_free char *p = xstrdup (path);
  char *levels[64];
  int n = 0;
  for (int i = 0; i < depth && n < 64; i++)
    {
      levels[n++] = xstrdup (p);
      char *slash = strrchr (p, '/');
      if (slash == NULL || slash == p)
        break;
      *slash = 0;
    }
  int ret = 0;
  for (int i = n - 1; i >= 0 && ret == 0; i--)
    {
      cleanup_free char *parent = xstrdup (levels[i]);
      char *slash = strrchr (parent, '/');
      if (slash)
        *slash = 0;
      static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
      for (int f = 0; f < 2 && ret == 0; f++)
        {
          cleanup_free char *mine = NULL, *theirs = NULL;
          cleanup_free char *mine_path = xasprintf ("%s/%s", levels[i], files[f]);
          cleanup_free char *their_path = xasprintf ("%s/%s", parent, files[f]);
          if (read_file (mine_path, &mine, NULL, err) < 0 || read_file (their_path, &theirs, NULL, err) < 0)
            ret = -1;
          else if (mine[0] == '\n' || mine[0] == 0)
            ret = write_file (mine_path, theirs, strlen (theirs), err);
        }
    }
  for (int i = 0; i < n; i++)
    free (levels[i]);
  return ret;
}

static void
device_rule (char *buf, size_t size, const struct spec_device_rule *d)
{
  if (d->type == 'a')
    {
      snprintf (buf, size, "a");
      return;
    }
  char major[24], minor[24];
  if (d->major < 0)
    strcpy (major, "*");
  else
    snprintf (major, sizeof major, "%lld", (long long) d->major);
  if (d->minor < 0)
    strcpy (minor, "*");
  else
    snprintf (minor, sizeof minor, "%lld", (long long) d->minor);
  snprintf (buf, size, "%c %s:%s %s", d->type, major, minor, d->access);
}

static int
throttle (const char *dir, const char *file, const struct spec_throttle *t, size_t n, shim_error_t *err)
{
  for (size_t i = 0; i < n; i++)
    {
      char buf[96];
      snprintf (buf, sizeof buf, "%lld:%lld %llu", (long long) t[i].major, (long long) t[i].minor,
                (unsigned long long) t[i].rate);
      if (put (dir, file, buf, err) < 0)
        return -1;
    }
  return 0;
}

int
cgroup_v1_apply (const struct cgroup *cg, const struct spec_resources *r, shim_error_t *err)
{
  const char *memory = cgroup_controller_path (cg, "memory");
  if ((r->has_memory_limit && r->memory_limit != 0) || (r->has_memory_swap && r->memory_swap != 0)
      || (r->has_memory_reservation && r->memory_reservation != 0) || r->has_swappiness || r->disable_oom_killer)
    {
      if (need (memory, "memory", "linux.resources.memory", err) < 0)
        return -1;
      bool set_limit = r->has_memory_limit && r->memory_limit != 0;
      bool set_swap = r->has_memory_swap && r->memory_swap != 0 && exists (memory, "memory.memsw.limit_in_bytes");
      if (r->has_memory_swap && r->memory_swap != 0 && r->memory_swap != -1 && !set_swap)
        return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, ENOENT,
                                     "linux.resources.memory.swap: this kernel has no swap accounting "
                                     "(memory.memsw.limit_in_bytes)");
      /* The kernel keeps memory <= memsw at every step: growing past the old memsw limit needs
         memsw first, shrinking needs memory first. */
      bool swap_first = false;
      if (set_limit && set_swap)
        {
          cleanup_free char *cur = NULL;
          cleanup_free char *path = xasprintf ("%s/memory.limit_in_bytes", memory);
          if (read_file (path, &cur, NULL, err) < 0)
            return -1;
          swap_first = r->memory_swap == -1 || strtoull (cur, NULL, 10) < (unsigned long long) r->memory_swap;
        }
      if (swap_first && put_i64 (memory, "memory.memsw.limit_in_bytes", r->memory_swap, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.swap");
      if (set_limit && put_i64 (memory, "memory.limit_in_bytes", r->memory_limit, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.limit");
      if (set_swap && !swap_first && put_i64 (memory, "memory.memsw.limit_in_bytes", r->memory_swap, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.swap");
      if (r->has_memory_reservation && r->memory_reservation != 0
          && put_i64 (memory, "memory.soft_limit_in_bytes", r->memory_reservation, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.reservation");
      if (r->has_swappiness && put_i64 (memory, "memory.swappiness", (long long) r->swappiness, err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.swappiness");
      if (r->disable_oom_killer && put (memory, "memory.oom_control", "1", err) < 0)
        return shim_error_wrap (err, "linux.resources.memory.disableOOMKiller");
    }
  const char *cpu = cgroup_controller_path (cg, "cpu");
  if ((r->has_cpu_shares && r->cpu_shares) || (r->has_cpu_period && r->cpu_period) || (r->has_cpu_quota && r->cpu_quota)
      || r->has_cpu_idle)
    {
      if (need (cpu, "cpu", "linux.resources.cpu", err) < 0)
        return -1;
      if (r->has_cpu_shares && r->cpu_shares && put_i64 (cpu, "cpu.shares", (long long) r->cpu_shares, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.shares");
      if (r->has_cpu_period && r->cpu_period && put_i64 (cpu, "cpu.cfs_period_us", (long long) r->cpu_period, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.period");
      if (r->has_cpu_quota && r->cpu_quota && put_i64 (cpu, "cpu.cfs_quota_us", r->cpu_quota, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.quota");
      if (r->has_cpu_idle && put_i64 (cpu, "cpu.idle", r->cpu_idle, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.idle");
    }
  const char *cpuset = cgroup_controller_path (cg, "cpuset");
  if ((r->cpuset_cpus && *r->cpuset_cpus) || (r->cpuset_mems && *r->cpuset_mems))
    {
      if (need (cpuset, "cpuset", "linux.resources.cpu.cpus", err) < 0)
        return -1;
      if (r->cpuset_cpus && *r->cpuset_cpus && put (cpuset, "cpuset.cpus", r->cpuset_cpus, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.cpus");
      if (r->cpuset_mems && *r->cpuset_mems && put (cpuset, "cpuset.mems", r->cpuset_mems, err) < 0)
        return shim_error_wrap (err, "linux.resources.cpu.mems");
    }
  if (r->has_pids_limit && r->pids_limit != 0)
    {
      const char *pids = cgroup_controller_path (cg, "pids");
      if (need (pids, "pids", "linux.resources.pids", err) < 0)
        return -1;
      int ret = r->pids_limit > 0 ? put_i64 (pids, "pids.max", r->pids_limit, err) : put (pids, "pids.max", "max", err);
      if (ret < 0)
        return shim_error_wrap (err, "linux.resources.pids.limit");
    }
  if (r->has_devices)
    {
      const char *devices = cgroup_controller_path (cg, "devices");
      if (need (devices, "devices", "linux.resources.devices", err) < 0)
        return -1;
      for (size_t i = 0; i < r->n_devices; i++)
        {
          char rule[96];
          device_rule (rule, sizeof rule, &r->devices[i]);
          if (put (devices, r->devices[i].allow ? "devices.allow" : "devices.deny", rule, err) < 0)
            return shim_error_wrap (err, "linux.resources.devices[%zu]", i);
        }
    }
  if (r->has_blkio_weight || r->n_throttle_read_bps || r->n_throttle_write_bps || r->n_throttle_read_iops
      || r->n_throttle_write_iops)
    {
      const char *blkio = cgroup_controller_path (cg, "blkio");
      if (need (blkio, "blkio", "linux.resources.blockIO", err) < 0)
        return -1;
      if (r->has_blkio_weight)
        {
          const char *file = exists (blkio, "blkio.weight") ? "blkio.weight" : "blkio.bfq.weight";
          if (!exists (blkio, file))
            return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, ENOENT,
                                         "config.json: linux.resources.blockIO.weight: the I/O scheduler of this "
                                         "kernel has no blkio weights");
          if (put_i64 (blkio, file, r->blkio_weight, err) < 0)
            return shim_error_wrap (err, "linux.resources.blockIO.weight");
        }
      if (throttle (blkio, "blkio.throttle.read_bps_device", r->throttle_read_bps, r->n_throttle_read_bps, err) < 0
          || throttle (blkio, "blkio.throttle.write_bps_device", r->throttle_write_bps, r->n_throttle_write_bps, err) < 0
          || throttle (blkio, "blkio.throttle.read_iops_device", r->throttle_read_iops, r->n_throttle_read_iops, err) < 0
          || throttle (blkio, "blkio.throttle.write_iops_device", r->throttle_write_iops, r->n_throttle_write_iops, err)
                 < 0)
        return shim_error_wrap (err, "linux.resources.blockIO");
    }
  return 0;
}
