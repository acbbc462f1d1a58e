#include "update.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>

#include "cgroup.h"
#include "files.h"
#include "state.h"

void
resources_merge (struct spec_resources *into, struct spec_resources *from)
{
  /* runc: unlimited memory without a word about swap means unlimited swap as well (v1 would
     refuse a memory limit above the old memsw limit). */
  if (from->has_memory_limit && from->memory_limit == -1 && !from->has_memory_swap)
    {
      from->has_memory_swap = true;
      from->memory_swap = -1;
    }
#define TAKE_NONZERO(has, field)                                                                                       \
  if (from->has && from->field != 0)                                                                                   \
    {                                                                                                                  \
      into->has = true;                                                                                                \
      into->field = from->field;                                                                                       \
    }
  TAKE_NONZERO (has_memory_limit, memory_limit)
  TAKE_NONZERO (has_memory_reservation, memory_reservation)
  TAKE_NONZERO (has_memory_swap, memory_swap)
  TAKE_NONZERO (has_cpu_shares, cpu_shares)
  TAKE_NONZERO (has_cpu_quota, cpu_quota)
  TAKE_NONZERO (has_cpu_period, cpu_period)
  TAKE_NONZERO (has_pids_limit, pids_limit)
  TAKE_NONZERO (has_blkio_weight, blkio_weight)
#undef TAKE_NONZERO
  if (from->has_swappiness)
    {
      into->has_swappiness = true;
      into->swappiness = from->swappiness;
    }
  if (from->disable_oom_killer)
    into->disable_oom_killer = true;
  if (from->has_cpu_idle)
    {
      into->has_cpu_idle = true;
      into->cpu_idle = from->cpu_idle;
    }
  if (from->cpuset_cpus && *from->cpuset_cpus)
    into->cpuset_cpus = from->cpuset_cpus;
  if (from->cpuset_mems && *from->cpuset_mems)
    into->cpuset_mems = from->cpuset_mems;
#define TAKE_LIST(list, n)                                                                                             \
  if (from->n)                                                                                                         \
    {                                                                                                                  \
      into->list = from->list;                                                                                         \
      into->n = from->n;                                                                                               \
    }
  TAKE_LIST (throttle_read_bps, n_throttle_read_bps)
  TAKE_LIST (throttle_write_bps, n_throttle_write_bps)
  TAKE_LIST (throttle_read_iops, n_throttle_read_iops)
  TAKE_LIST (throttle_write_iops, n_throttle_write_iops)
#undef TAKE_LIST
  if (from->has_devices)
    shim_warning ("update: linux.resources.devices cannot be changed on a running container, ignored");
  for (size_t i = 0; i < from->n_unified; i++)
    {
      size_t j = 0;
      while (j < into->n_unified && strcmp (into->unified[j].key, from->unified[i].key) != 0)
        j++;
      if (j == into->n_unified)
        {
          into->unified = xrealloc (into->unified, (into->n_unified + 2) * sizeof *into->unified);
          into->unified[into->n_unified++] = from->unified[i];
        }
      else
        into->unified[j].value = from->unified[i].value;
    }
}

int
resources_check (const struct spec_resources *r, shim_error_t *err)
{
  if (r->has_memory_limit && r->memory_limit > 0 && r->has_memory_swap && r->memory_swap > 0
      && r->memory_swap < r->memory_limit)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "memory swap %lld is below the memory limit %lld: swap counts memory plus swap, "
                                 "update both together",
                                 (long long) r->memory_swap, (long long) r->memory_limit);
  if (r->has_memory_reservation && r->memory_reservation > 0 && r->has_memory_limit && r->memory_limit > 0
      && r->memory_reservation > r->memory_limit)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "memory reservation %lld is above the memory limit %lld",
                                 (long long) r->memory_reservation, (long long) r->memory_limit);
  if ((r->has_memory_limit && r->memory_limit < -1) || (r->has_memory_swap && r->memory_swap < -1)
      || (r->has_memory_reservation && r->memory_reservation < -1))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "memory values are bytes, or -1 for unlimited");
  if (r->has_cpu_period && r->cpu_period != 0 && (r->cpu_period < 1000 || r->cpu_period > 1000000))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "cpu period %llu is outside [1000, 1000000] microseconds",
                                 (unsigned long long) r->cpu_period);
  if (r->has_cpu_quota && (r->cpu_quota < -1 || (r->cpu_quota > 0 && r->cpu_quota < 1000)))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "cpu quota %lld is below 1000 microseconds (-1 removes the limit)",
                                 (long long) r->cpu_quota);
  if (r->has_cpu_idle && r->cpu_idle != 0 && r->cpu_idle != 1)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "cpu idle is 0 or 1, not %lld", (long long) r->cpu_idle);
  if (r->has_swappiness && r->swappiness > 100)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "memory swappiness %llu is above 100",
                                 (unsigned long long) r->swappiness);
  if (r->has_blkio_weight && (r->blkio_weight < 10 || r->blkio_weight > 1000))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "blkio weight %u is outside [10, 1000]",
                                 (unsigned) r->blkio_weight);
  return 0;
}

static void
comma (struct strbuf *b, bool *first)
{
  if (!*first)
    strbuf_add (b, ",");
  *first = false;
}

static void
write_throttle (struct strbuf *b, bool *first, const char *key, const struct spec_throttle *t, size_t n)
{
  if (n == 0)
    return;
  comma (b, first);
  strbuf_addf (b, "\"%s\":[", key);
  for (size_t i = 0; i < n; i++)
    strbuf_addf (b, "%s{\"major\":%lld,\"minor\":%lld,\"rate\":%llu}", i ? "," : "", (long long) t[i].major,
                 (long long) t[i].minor, (unsigned long long) t[i].rate);
  strbuf_add (b, "]");
}

void
resources_write_json (struct strbuf *b, const struct spec_resources *r)
{
  bool first = true, inner;
  strbuf_add (b, "{");
  if (r->has_memory_limit || r->has_memory_reservation || r->has_memory_swap || r->has_swappiness
      || r->disable_oom_killer)
    {
      comma (b, &first);
      strbuf_add (b, "\"memory\":{");
      inner = true;
      if (r->has_memory_limit)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"limit\":%lld", (long long) r->memory_limit);
        }
      if (r->has_memory_reservation)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"reservation\":%lld", (long long) r->memory_reservation);
        }
      if (r->has_memory_swap)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"swap\":%lld", (long long) r->memory_swap);
        }
      if (r->has_swappiness)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"swappiness\":%llu", (unsigned long long) r->swappiness);
        }
      if (r->disable_oom_killer)
        {
          comma (b, &inner);
          strbuf_add (b, "\"disableOOMKiller\":true");
        }
      strbuf_add (b, "}");
    }
  if (r->has_cpu_shares || r->has_cpu_quota || r->has_cpu_period || r->has_cpu_idle || (r->cpuset_cpus && *r->cpuset_cpus)
      || (r->cpuset_mems && *r->cpuset_mems))
    {
      comma (b, &first);
      strbuf_add (b, "\"cpu\":{");
      inner = true;
      if (r->has_cpu_shares)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"shares\":%llu", (unsigned long long) r->cpu_shares);
        }
      if (r->has_cpu_quota)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"quota\":%lld", (long long) r->cpu_quota);
        }
      if (r->has_cpu_period)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"period\":%llu", (unsigned long long) r->cpu_period);
        }
      if (r->has_cpu_idle)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"idle\":%lld", (long long) r->cpu_idle);
        }
      if (r->cpuset_cpus && *r->cpuset_cpus)
        {
          comma (b, &inner);
          strbuf_add (b, "\"cpus\":");
          json_write_string (b, r->cpuset_cpus, strlen (r->cpuset_cpus));
        }
      if (r->cpuset_mems && *r->cpuset_mems)
        {
          comma (b, &inner);
          strbuf_add (b, "\"mems\":");
          json_write_string (b, r->cpuset_mems, strlen (r->cpuset_mems));
        }
      strbuf_add (b, "}");
    }
  if (r->has_pids_limit)
    {
      comma (b, &first);
      strbuf_addf (b, "\"pids\":{\"limit\":%lld}", (long long) r->pids_limit);
    }
  if (r->has_blkio_weight || r->n_throttle_read_bps || r->n_throttle_write_bps || r->n_throttle_read_iops
      || r->n_throttle_write_iops)
    {
      comma (b, &first);
      strbuf_add (b, "\"blockIO\":{");
      inner = true;
      if (r->has_blkio_weight)
        {
          comma (b, &inner);
          strbuf_addf (b, "\"weight\":%u", (unsigned) r->blkio_weight);
        }
      write_throttle (b, &inner, "throttleReadBpsDevice", r->throttle_read_bps, r->n_throttle_read_bps);
      write_throttle (b, &inner, "throttleWriteBpsDevice", r->throttle_write_bps, r->n_throttle_write_bps);
      write_throttle (b, &inner, "throttleReadIOPSDevice", r->throttle_read_iops, r->n_throttle_read_iops);
      write_throttle (b, &inner, "throttleWriteIOPSDevice", r->throttle_write_iops, r->n_throttle_write_iops);
      strbuf_add (b, "}");
    }
  if (r->has_devices)
    {
      comma (b, &first);
      strbuf_add (b, "\"devices\":[");
      for (size_t i = 0; i < r->n_devices; i++)
        {
          const struct spec_device_rule *d = &r->devices[i];
          strbuf_addf (b, "%s{\"allow\":%s,\"type\":\"%c\"", i ? "," : "", d->allow ? "true" : "false", d->type);
          if (d->major >= 0)
            strbuf_addf (b, ",\"major\":%lld", (long long) d->major);
          if (d->minor >= 0)
            strbuf_addf (b, ",\"minor\":%lld", (long long) d->minor);
          strbuf_addf (b, ",\"access\":\"%s\"}", d->access);
        }
      strbuf_add (b, "]");
    }
  if (r->n_unified)
    {
      comma (b, &first);
      strbuf_add (b, "\"unified\":{");
      for (size_t i = 0; i < r->n_unified; i++)
        {
          if (i)
            strbuf_add (b, ",");
          json_write_string (b, r->unified[i].key, strlen (r->unified[i].key));
          strbuf_add (b, ":");
          json_write_string (b, r->unified[i].value, strlen (r->unified[i].value));
        }
      strbuf_add (b, "}");
    }
  strbuf_add (b, "}");
}

static int
read_update (const struct update_options *o, struct json_value **doc, struct spec_resources *out, shim_error_t *err)
{
  bool from_stdin = strcmp (o->resources_path, "-") == 0;
  const char *what = from_stdin ? "resources from stdin" : o->resources_path;
  cleanup_free char *text = NULL;
  size_t len;
  /* stdin may be a socket, which cannot be opened again by its /proc path. */
  int r = from_stdin ? read_fd (0, "stdin", &text, &len, err) : read_file (o->resources_path, &text, &len, err);
  if (r < 0)
    return shim_error_wrap (err, "update -r");
  if (json_parse (text, len, what, doc, err) < 0)
    {
      (*err)->code = SHIM_CODE_INVALID_SPEC;
      return -1;
    }
  return spec_parse_resources (*doc, what, out, err);
}

int
container_update (const struct update_options *o, shim_error_t *err)
{
  if (state_check_id (o->id, err) < 0)
    return -1;
  cleanup_free char *dir = state_dir_of (o->root, o->id);
  /* Two updates at once must not each merge into the same old record and lose one's values. */
  cleanup_close int lock = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (lock < 0)
    {
      if (errno == ENOENT)
        return shim_make_error_code (err, SHIM_CODE_NOT_FOUND, ENOENT, "container `%s` does not exist", o->id);
      return shim_make_error (err, errno, "open `%s`", dir);
    }
  if (SHIM_RETRY (flock (lock, LOCK_EX)) < 0)
    return shim_make_error (err, errno, "lock `%s`", dir);

  struct json_value *update_doc = NULL;
  struct spec_resources from;
  if (o->resources_path)
    {
      if (o->any_flag)
        shim_warning ("update: with -r the resources come from `%s`; the other options are ignored",
                      o->resources_path);
      if (read_update (o, &update_doc, &from, err) < 0)
        {
          json_free (update_doc);
          return -1;
        }
    }
  else
    from = o->flags;

  struct container_state *st = NULL;
  if (state_load (o->root, o->id, &st, err) < 0)
    {
      json_free (update_doc);
      return -1;
    }
  int ret = -1;
  struct spec_resources merged;
  memset (&merged, 0, sizeof merged);
  const struct json_value *recorded = json_get (st->doc, "resources");
  if (strcmp (state_status (st), STATUS_STOPPED) == 0)
    shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot update container `%s`: it is stopped", o->id);
  else if (st->cgroup == NULL)
    shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot update container `%s`: its state records no cgroup", o->id);
  else if (recorded && spec_parse_resources (recorded, "state.json", &merged, err) < 0)
    ;
  else
    {
      resources_merge (&merged, &from);
      struct strbuf json = { 0 };
      if (resources_check (&merged, err) == 0 && cgroup_update (st->cgroup, &merged, err) == 0)
        {
          resources_write_json (&json, &merged);
          ret = state_replace_field (st, "resources", json.p, err);
        }
      free (json.p);
    }
  state_free (st);
  json_free (update_doc);
  return ret;
}
