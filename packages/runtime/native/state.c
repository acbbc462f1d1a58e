#include "state.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "files.h"

int
state_check_id (const char *id, shim_error_t *err)
{
  if (id == NULL || *id == 0)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "container id cannot be empty");
  /* A leading dot is refused as runc refuses it; such names in the root are the runtime's own (.seccomp). */
  if (id[0] == '.' || strlen (id) > 1024)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "invalid container id `%s`", id);
  for (const char *c = id; *c; c++)
    if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' || *c == '+'
          || *c == '-' || *c == '.'))
      return shim_make_error_code (err, SHIM_CODE_USAGE, 0,
                                   "invalid container id `%s`: use letters, digits, '_', '+', '-' and '.'", id);
  return 0;
}

char *
state_dir_of (const char *root, const char *id)
{
  return xasprintf ("%s/%s", root, id);
}

int
state_create_dir (const char *root, const char *id, shim_error_t *err)
{
  if (mkdir_p (root, 0711, err) < 0)
    return -1;
  cleanup_free char *dir = state_dir_of (root, id);
  if (mkdir (dir, 0711) < 0)
    {
      if (errno == EEXIST)
        return shim_make_error_code (err, SHIM_CODE_EXISTS, EEXIST, "container `%s` already exists", id);
      return shim_make_error (err, errno, "create the state directory `%s`", dir);
    }
  return 0;
}

static void
add_string_field (struct strbuf *b, const char *key, const char *value)
{
  strbuf_addf (b, ",\"%s\":", key);
  json_write_string (b, value ? value : "", value ? strlen (value) : 0);
}

int
state_write (const struct container_state *st, const struct json_value *annotations, shim_error_t *err)
{
  struct strbuf b = { 0 };
  strbuf_add (&b, "{\"ociVersion\":\"1.0.2\"");
  add_string_field (&b, "id", st->id);
  strbuf_addf (&b, ",\"pid\":%d,\"pidStartTime\":%llu", st->pid, st->start_time);
  add_string_field (&b, "bundle", st->bundle);
  add_string_field (&b, "rootfs", st->rootfs);
  add_string_field (&b, "created", st->created);
  add_string_field (&b, "owner", st->owner);
  strbuf_add (&b, ",\"annotations\":");
  if (annotations)
    json_write_value (&b, annotations);
  else
    strbuf_add (&b, "{}");
  strbuf_addf (&b, ",\"monitorPid\":%d,\"monitorStartTime\":%llu", st->monitor_pid, st->monitor_start_time);
  if (st->log_path)
    add_string_field (&b, "logPath", st->log_path);
  if (st->attach_socket)
    add_string_field (&b, "attachSocket", st->attach_socket);
  if (st->cgroup)
    {
      strbuf_add (&b, ",\"cgroup\":");
      cgroup_write_json (&b, st->cgroup);
    }
  if (st->resources)
    {
      strbuf_add (&b, ",\"resources\":");
      json_write_value (&b, st->resources);
    }
  if (st->oci_runtime)
    {
      add_string_field (&b, "ociRuntime", st->oci_runtime);
      if (st->oci_runtime_root)
        add_string_field (&b, "ociRuntimeRoot", st->oci_runtime_root);
      strbuf_add (&b, ",\"ociRuntimeArgs\":[");
      for (size_t i = 0; i < st->n_oci_runtime_args; i++)
        {
          if (i)
            strbuf_add (&b, ",");
          json_write_string (&b, st->oci_runtime_args[i], strlen (st->oci_runtime_args[i]));
        }
      strbuf_add (&b, "]");
    }
  strbuf_add (&b, "}\n");
  cleanup_free char *path = xasprintf ("%s/state.json", st->dir);
  int r = write_file_atomic (path, b.p, b.len, 0600, err);
  free (b.p);
  return r;
}

static char *
dup_string (const struct json_value *obj, const char *key)
{
  const struct json_value *v = json_get (obj, key);
  return v && v->type == JSON_STRING ? xstrdup (v->string.s) : NULL;
}

static long long
get_number (const struct json_value *obj, const char *key)
{
  const struct json_value *v = json_get (obj, key);
  if (v == NULL || v->type != JSON_NUMBER || !v->number.integer)
    return 0;
  return v->number.negative ? -(long long) v->number.magnitude : (long long) v->number.magnitude;
}

int
state_load (const char *root, const char *id, struct container_state **out, shim_error_t *err)
{
  if (state_check_id (id, err) < 0)
    return -1;
  cleanup_free char *dir = state_dir_of (root, id);
  cleanup_free char *path = xasprintf ("%s/state.json", dir);
  cleanup_free char *text = NULL;
  size_t len;
  if (read_file (path, &text, &len, err) < 0)
    {
      if ((*err)->status == ENOENT)
        return shim_make_error_code (err, SHIM_CODE_NOT_FOUND, ENOENT, "container `%s` does not exist", id);
      return -1;
    }
  struct json_value *doc;
  if (json_parse (text, len, path, &doc, err) < 0)
    return -1;
  struct container_state *st = xcalloc (1, sizeof *st);
  st->doc = doc;
  st->dir = xstrdup (dir);
  st->id = xstrdup (id);
  st->pid = (pid_t) get_number (doc, "pid");
  st->start_time = (unsigned long long) get_number (doc, "pidStartTime");
  st->bundle = dup_string (doc, "bundle");
  st->rootfs = dup_string (doc, "rootfs");
  st->created = dup_string (doc, "created");
  st->owner = dup_string (doc, "owner");
  st->annotations = json_get (doc, "annotations");
  st->monitor_pid = (pid_t) get_number (doc, "monitorPid");
  st->monitor_start_time = (unsigned long long) get_number (doc, "monitorStartTime");
  st->log_path = dup_string (doc, "logPath");
  st->attach_socket = dup_string (doc, "attachSocket");
  st->resources = json_get (doc, "resources");
  st->oci_runtime = dup_string (doc, "ociRuntime");
  st->oci_runtime_root = dup_string (doc, "ociRuntimeRoot");
  const struct json_value *oargs = json_get (doc, "ociRuntimeArgs");
  if (oargs && oargs->type == JSON_ARRAY)
    {
      st->oci_runtime_args = xcalloc (oargs->array.len + 1, sizeof *st->oci_runtime_args);
      for (size_t i = 0; i < oargs->array.len; i++)
        if (oargs->array.items[i]->type == JSON_STRING)
          st->oci_runtime_args[st->n_oci_runtime_args++] = xstrdup (oargs->array.items[i]->string.s);
    }
  const struct json_value *cg = json_get (doc, "cgroup");
  if (cg && cgroup_from_json (cg, &st->cgroup, err) < 0)
    {
      state_free (st);
      return -1;
    }
  cleanup_free char *exit_path = xasprintf ("%s/exit.json", dir);
  cleanup_free char *exit_text = NULL;
  shim_error_t e = NULL;
  if (read_file (exit_path, &exit_text, &len, &e) == 0 && json_parse (exit_text, len, exit_path, &st->exit_doc, &e) == 0)
    {
      st->has_exit = true;
      st->exit_code = (int) get_number (st->exit_doc, "exitCode");
      st->exit_signal = (int) get_number (st->exit_doc, "signal");
      st->finished = dup_string (st->exit_doc, "finished");
      const struct json_value *oom = json_get (st->exit_doc, "oomKilled");
      st->oom_killed = oom && oom->type == JSON_BOOL && oom->boolean;
    }
  shim_error_release (&e);
  *out = st;
  return 0;
}

void
state_free (struct container_state *st)
{
  if (st == NULL)
    return;
  free (st->dir);
  free (st->id);
  free (st->bundle);
  free (st->rootfs);
  free (st->created);
  free (st->owner);
  free (st->log_path);
  free (st->attach_socket);
  free (st->finished);
  free (st->oci_runtime);
  free (st->oci_runtime_root);
  for (size_t i = 0; i < st->n_oci_runtime_args; i++)
    free (st->oci_runtime_args[i]);
  free (st->oci_runtime_args);
  cgroup_free (st->cgroup);
  json_free (st->doc);
  json_free (st->exit_doc);
  free (st);
}

bool
state_process_alive (const struct container_state *st)
{
  if (st->pid <= 0)
    return false;
  char pstate = 0;
  unsigned long long start = process_start_time (st->pid, &pstate);
  if (start == 0 || (st->start_time && start != st->start_time))
    return false;
  return pstate != 'Z' && pstate != 'X';
}

/* The monitor outlives the process by the time it takes to drain its output into the log and
   record the exit; until then the container is not stopped yet, so that whoever waits for the
   stop finds the whole log and the exit code. */
static bool
monitor_finishing (const struct container_state *st)
{
  if (st->monitor_pid <= 0 || st->monitor_start_time == 0)
    return false;
  char pstate = 0;
  return process_start_time (st->monitor_pid, &pstate) == st->monitor_start_time && pstate != 'Z' && pstate != 'X';
}

const char *
state_status (const struct container_state *st)
{
  if (st->has_exit)
    return STATUS_STOPPED;
  if (!state_process_alive (st))
    return monitor_finishing (st) ? STATUS_RUNNING : STATUS_STOPPED;
  /* Another runtime keeps its exec.fifo in its own state directory, as runc and crun do. */
  cleanup_free char *fifo = st->oci_runtime ? xasprintf ("%s/%s/exec.fifo", st->oci_runtime_root ? st->oci_runtime_root : "/run/runc", st->id)
                                            : xasprintf ("%s/exec.fifo", st->dir);
  if (access (fifo, F_OK) == 0)
    return STATUS_CREATED;
  if (st->cgroup && cgroup_is_frozen (st->cgroup))
    return STATUS_PAUSED;
  return STATUS_RUNNING;
}

void
state_write_json (struct strbuf *b, const struct container_state *st)
{
  const char *status = state_status (st);
  bool stopped = strcmp (status, STATUS_STOPPED) == 0;
  strbuf_add (b, "{\"ociVersion\":\"1.0.2\"");
  add_string_field (b, "id", st->id);
  strbuf_addf (b, ",\"pid\":%d", stopped ? 0 : st->pid);
  add_string_field (b, "status", status);
  add_string_field (b, "bundle", st->bundle);
  add_string_field (b, "rootfs", st->rootfs);
  add_string_field (b, "created", st->created);
  add_string_field (b, "owner", st->owner);
  strbuf_add (b, ",\"annotations\":");
  if (st->annotations)
    json_write_value (b, st->annotations);
  else
    strbuf_add (b, "{}");
  if (st->monitor_pid > 0)
    strbuf_addf (b, ",\"monitorPid\":%d", st->monitor_pid);
  if (st->log_path)
    add_string_field (b, "logPath", st->log_path);
  if (st->attach_socket)
    add_string_field (b, "attachSocket", st->attach_socket);
  if (st->cgroup)
    {
      strbuf_add (b, ",\"cgroup\":");
      cgroup_write_json (b, st->cgroup);
    }
  if (st->resources)
    {
      strbuf_add (b, ",\"resources\":");
      json_write_value (b, st->resources);
    }
  if (st->has_exit)
    {
      strbuf_addf (b, ",\"exitCode\":%d", st->exit_code);
      if (st->exit_signal)
        strbuf_addf (b, ",\"exitSignal\":%d", st->exit_signal);
      add_string_field (b, "finished", st->finished);
      strbuf_addf (b, ",\"oomKilled\":%s", st->oom_killed ? "true" : "false");
    }
  strbuf_add (b, "}");
}

int
state_replace_field (const struct container_state *st, const char *key, const char *json, shim_error_t *err)
{
  struct strbuf b = { 0 };
  strbuf_add (&b, "{");
  for (size_t i = 0; i < st->doc->object.len; i++)
    {
      const char *k = st->doc->object.keys[i];
      if (strcmp (k, key) == 0)
        continue;
      json_write_string (&b, k, strlen (k));
      strbuf_add (&b, ":");
      json_write_value (&b, st->doc->object.values[i]);
      strbuf_add (&b, ",");
    }
  json_write_string (&b, key, strlen (key));
  strbuf_add (&b, ":");
  strbuf_add (&b, json);
  strbuf_add (&b, "}\n");
  cleanup_free char *path = xasprintf ("%s/state.json", st->dir);
  int r = write_file_atomic (path, b.p, b.len, 0600, err);
  free (b.p);
  return r;
}

int
state_write_exit (const char *dir, const char *also, int wait_status, bool oom_killed, shim_error_t *err)
{
  struct strbuf b = { 0 };
  int code = WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status);
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  strbuf_addf (&b, "{\"exitCode\":%d", code);
  if (WIFSIGNALED (wait_status))
    strbuf_addf (&b, ",\"signal\":%d", WTERMSIG (wait_status));
  strbuf_add (&b, ",\"finished\":\"");
  format_rfc3339 (&b, &now);
  strbuf_addf (&b, "\",\"oomKilled\":%s}\n", oom_killed ? "true" : "false");
  cleanup_free char *path = xasprintf ("%s/exit.json", dir);
  int r = write_file_atomic (path, b.p, b.len, 0600, err);
  if (r == 0 && also)
    r = write_file_atomic (also, b.p, b.len, 0600, err);
  free (b.p);
  return r;
}
