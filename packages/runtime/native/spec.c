#include "spec.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "caps.h"
#include "files.h"
#include "seccomp.h"

#ifndef SECCOMP_FILTER_FLAG_LOG
#define SECCOMP_FILTER_FLAG_LOG (1UL << 1)
#endif
#ifndef SECCOMP_FILTER_FLAG_SPEC_ALLOW
#define SECCOMP_FILTER_FLAG_SPEC_ALLOW (1UL << 2)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif

/* The reading context: which document, and where errors go. Every helper takes the dotted path
   of the value it reads (`linux.namespaces[2].type`) so that errors can name it. */
struct rd
{
  const char *what;
  shim_error_t *err;
};

static int
bad (struct rd *rd, const char *path, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static int
bad (struct rd *rd, const char *path, const char *fmt, ...)
{
  char msg[512];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  return shim_make_error_code (rd->err, SHIM_CODE_INVALID_SPEC, 0, "%s: %s: %s", rd->what, path, msg);
}

static int
unsupported (struct rd *rd, const char *path, const char *why)
{
  return shim_make_error_code (rd->err, SHIM_CODE_INVALID_SPEC, EOPNOTSUPP, "%s: %s: %s", rd->what, path, why);
}

static char *
sub (const char *parent, const char *key)
{
  return *parent ? xasprintf ("%s.%s", parent, key) : xstrdup (key);
}

static char *
idx (const char *parent, size_t i)
{
  return xasprintf ("%s[%zu]", parent, i);
}

static int
want (struct rd *rd, const struct json_value *v, int type, const char *path)
{
  if (v->type != type)
    return bad (rd, path, "expected %s, got %s", json_type_name (type), json_type_name (v->type));
  return 0;
}

/* A member that is absent or null counts as not set, as Go's decoder treats it. */
static const struct json_value *
member (const struct json_value *obj, const char *key)
{
  const struct json_value *v = json_get (obj, key);
  return v && v->type != JSON_NULL ? v : NULL;
}

static int
get_string (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, bool required, char **out)
{
  cleanup_free char *path = sub (parent, key);
  const struct json_value *v = member (obj, key);
  *out = NULL;
  if (v == NULL)
    return required ? bad (rd, path, "required but missing") : 0;
  if (want (rd, v, JSON_STRING, path) < 0)
    return -1;
  *out = v->string.s;
  return 0;
}

static int
get_bool (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, bool *out)
{
  cleanup_free char *path = sub (parent, key);
  const struct json_value *v = member (obj, key);
  if (v == NULL)
    return 0;
  if (want (rd, v, JSON_BOOL, path) < 0)
    return -1;
  *out = v->boolean;
  return 0;
}

/* An integer in [min, max]; `has` tells whether it was present. */
static int
get_int (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, int64_t min, int64_t max,
         bool *has, int64_t *out)
{
  cleanup_free char *path = sub (parent, key);
  const struct json_value *v = member (obj, key);
  if (has)
    *has = false;
  if (v == NULL)
    return 0;
  if (want (rd, v, JSON_NUMBER, path) < 0)
    return -1;
  if (!v->number.integer)
    return bad (rd, path, "expected an integer");
  int64_t val;
  if (v->number.negative)
    {
      if (v->number.magnitude > (uint64_t) INT64_MAX + 1)
        return bad (rd, path, "out of range");
      val = (int64_t) (0 - v->number.magnitude);
    }
  else
    {
      if (v->number.magnitude > (uint64_t) INT64_MAX)
        return bad (rd, path, "out of range");
      val = (int64_t) v->number.magnitude;
    }
  if (val < min || val > max)
    return bad (rd, path, "%lld is out of range [%lld, %lld]", (long long) val, (long long) min, (long long) max);
  if (has)
    *has = true;
  *out = val;
  return 0;
}

static int
get_uint64 (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, bool *has,
            uint64_t *out)
{
  cleanup_free char *path = sub (parent, key);
  const struct json_value *v = member (obj, key);
  if (has)
    *has = false;
  if (v == NULL)
    return 0;
  if (want (rd, v, JSON_NUMBER, path) < 0)
    return -1;
  if (!v->number.integer || v->number.negative)
    return bad (rd, path, "expected a non-negative integer");
  if (has)
    *has = true;
  *out = v->number.magnitude;
  return 0;
}

static int
get_u32 (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, bool *has, uint32_t *out)
{
  int64_t v = 0;
  bool h = false;
  if (get_int (rd, obj, parent, key, 0, UINT32_MAX, &h, &v) < 0)
    return -1;
  if (has)
    *has = h;
  if (h)
    *out = (uint32_t) v;
  return 0;
}

/* A NULL-terminated array of the strings of an array member. */
static int
get_strings (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, char ***out, size_t *n)
{
  cleanup_free char *path = sub (parent, key);
  const struct json_value *v = member (obj, key);
  *out = NULL;
  *n = 0;
  if (v == NULL)
    return 0;
  if (want (rd, v, JSON_ARRAY, path) < 0)
    return -1;
  char **list = xcalloc (v->array.len + 1, sizeof *list);
  for (size_t i = 0; i < v->array.len; i++)
    {
      if (v->array.items[i]->type != JSON_STRING)
        {
          free (list);
          cleanup_free char *p = idx (path, i);
          return bad (rd, p, "expected string, got %s", json_type_name (v->array.items[i]->type));
        }
      list[i] = v->array.items[i]->string.s;
    }
  *out = list;
  *n = v->array.len;
  return 0;
}

static int
get_object (struct rd *rd, const struct json_value *obj, const char *parent, const char *key,
            const struct json_value **out)
{
  cleanup_free char *path = sub (parent, key);
  *out = member (obj, key);
  if (*out && want (rd, *out, JSON_OBJECT, path) < 0)
    return -1;
  return 0;
}

static int
get_array (struct rd *rd, const struct json_value *obj, const char *parent, const char *key,
           const struct json_value **out)
{
  cleanup_free char *path = sub (parent, key);
  *out = member (obj, key);
  if (*out && want (rd, *out, JSON_ARRAY, path) < 0)
    return -1;
  return 0;
}

/* A member berth-runtime cannot honour: refused when it carries anything. */
static int
refuse_if_set (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, const char *why)
{
  const struct json_value *v = member (obj, key);
  if (v == NULL)
    return 0;
  if ((v->type == JSON_ARRAY && v->array.len == 0) || (v->type == JSON_OBJECT && v->object.len == 0)
      || (v->type == JSON_STRING && v->string.len == 0))
    return 0;
  cleanup_free char *path = sub (parent, key);
  return unsupported (rd, path, why);
}

static int
parse_kv_object (struct rd *rd, const struct json_value *obj, const char *parent, const char *key, struct kv **out,
                 size_t *n)
{
  const struct json_value *v;
  *out = NULL;
  *n = 0;
  if (get_object (rd, obj, parent, key, &v) < 0)
    return -1;
  if (v == NULL)
    return 0;
  cleanup_free char *path = sub (parent, key);
  struct kv *list = xcalloc (v->object.len + 1, sizeof *list);
  for (size_t i = 0; i < v->object.len; i++)
    {
      if (v->object.values[i]->type != JSON_STRING)
        {
          free (list);
          return bad (rd, path, "value of `%s` must be a string", v->object.keys[i]);
        }
      list[i].key = v->object.keys[i];
      list[i].value = v->object.values[i]->string.s;
    }
  *out = list;
  *n = v->object.len;
  return 0;
}

struct mount_option
{
  const char *name;
  bool clear;
  unsigned long flag;
};

static const struct mount_option mount_flags[] = {
  { "ro", false, MS_RDONLY },
  { "rw", true, MS_RDONLY },
  { "nosuid", false, MS_NOSUID },
  { "suid", true, MS_NOSUID },
  { "nodev", false, MS_NODEV },
  { "dev", true, MS_NODEV },
  { "noexec", false, MS_NOEXEC },
  { "exec", true, MS_NOEXEC },
  { "sync", false, MS_SYNCHRONOUS },
  { "async", true, MS_SYNCHRONOUS },
  { "dirsync", false, MS_DIRSYNC },
  { "remount", false, MS_REMOUNT },
  { "mand", false, MS_MANDLOCK },
  { "nomand", true, MS_MANDLOCK },
  { "atime", true, MS_NOATIME },
  { "noatime", false, MS_NOATIME },
  { "diratime", true, MS_NODIRATIME },
  { "nodiratime", false, MS_NODIRATIME },
  { "relatime", false, MS_RELATIME },
  { "norelatime", true, MS_RELATIME },
  { "strictatime", false, MS_STRICTATIME },
  { "nostrictatime", true, MS_STRICTATIME },
  { "silent", false, MS_SILENT },
  { "loud", true, MS_SILENT },
};

static const struct mount_option propagation_flags[] = {
  { "private", false, MS_PRIVATE },
  { "rprivate", false, MS_PRIVATE | MS_REC },
  { "shared", false, MS_SHARED },
  { "rshared", false, MS_SHARED | MS_REC },
  { "slave", false, MS_SLAVE },
  { "rslave", false, MS_SLAVE | MS_REC },
  { "unbindable", false, MS_UNBINDABLE },
  { "runbindable", false, MS_UNBINDABLE | MS_REC },
};

int
spec_parse_mount_options (struct spec_mount *m, char **options, size_t n, const char *field, shim_error_t *err)
{
  struct strbuf data = { 0 };
  for (size_t i = 0; i < n; i++)
    {
      const char *o = options[i];
      bool known = false;
      if (strcmp (o, "bind") == 0 || strcmp (o, "rbind") == 0)
        {
          m->bind = true;
          m->recursive_bind = o[0] == 'r';
          continue;
        }
      for (size_t j = 0; j < sizeof mount_flags / sizeof mount_flags[0]; j++)
        if (strcmp (o, mount_flags[j].name) == 0)
          {
            if (mount_flags[j].clear)
              {
                m->flags &= ~mount_flags[j].flag;
                m->clear_flags |= mount_flags[j].flag;
              }
            else
              {
                m->flags |= mount_flags[j].flag;
                m->clear_flags &= ~mount_flags[j].flag;
              }
            known = true;
          }
      for (size_t j = 0; j < sizeof propagation_flags / sizeof propagation_flags[0]; j++)
        if (strcmp (o, propagation_flags[j].name) == 0)
          {
            m->propagation = propagation_flags[j].flag;
            known = true;
          }
      if (known)
        continue;
      if (strcmp (o, "tmpcopyup") == 0 || strncmp (o, "idmap", 5) == 0 || strncmp (o, "ridmap", 6) == 0
          || strcmp (o, "rro") == 0 || strncmp (o, "rr", 2) == 0 || strcmp (o, "copy-symlink") == 0)
        {
          free (data.p);
          return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, EOPNOTSUPP,
                                       "%s: mount option `%s` is not supported by berth-runtime", field, o);
        }
      if (data.len)
        strbuf_add (&data, ",");
      strbuf_add (&data, o);
    }
  m->readonly = (m->flags & MS_RDONLY) != 0;
  m->data = data.p;
  return 0;
}

static int
parse_mounts (struct rd *rd, const struct json_value *root, struct spec *s)
{
  const struct json_value *arr;
  if (get_array (rd, root, "", "mounts", &arr) < 0)
    return -1;
  if (arr == NULL)
    return 0;
  s->mounts = xcalloc (arr->array.len + 1, sizeof *s->mounts);
  s->n_mounts = arr->array.len;
  for (size_t i = 0; i < arr->array.len; i++)
    {
      const struct json_value *m = arr->array.items[i];
      cleanup_free char *path = idx ("mounts", i);
      struct spec_mount *sm = &s->mounts[i];
      if (want (rd, m, JSON_OBJECT, path) < 0)
        return -1;
      if (get_string (rd, m, path, "destination", true, &sm->destination) < 0
          || get_string (rd, m, path, "type", false, &sm->type) < 0
          || get_string (rd, m, path, "source", false, &sm->source) < 0)
        return -1;
      if (sm->destination[0] != '/')
        {
          cleanup_free char *p = sub (path, "destination");
          return bad (rd, p, "`%s` is not an absolute path", sm->destination);
        }
      if (refuse_if_set (rd, m, path, "uidMappings", "id-mapped mounts are not supported by berth-runtime") < 0
          || refuse_if_set (rd, m, path, "gidMappings", "id-mapped mounts are not supported by berth-runtime") < 0)
        return -1;
      char **options;
      size_t n_options;
      if (get_strings (rd, m, path, "options", &options, &n_options) < 0)
        return -1;
      cleanup_free char *opath = sub (path, "options");
      char *field = xasprintf ("%s: %s", rd->what, opath);
      int r = spec_parse_mount_options (sm, options, n_options, field, rd->err);
      free (field);
      free (options);
      if (r < 0)
        return r;
      if (sm->type && strcmp (sm->type, "bind") == 0)
        sm->bind = true;
      if (!sm->bind && (sm->type == NULL || *sm->type == 0))
        {
          cleanup_free char *p = sub (path, "type");
          return bad (rd, p, "required for a mount that is not a bind mount");
        }
      if (sm->bind && (sm->source == NULL || *sm->source == 0))
        {
          cleanup_free char *p = sub (path, "source");
          return bad (rd, p, "required for a bind mount");
        }
    }
  return 0;
}

static int
parse_caps (struct rd *rd, const struct json_value *obj, const char *parent, struct spec_process *p)
{
  static const char *const sets[] = { "bounding", "effective", "inheritable", "permitted", "ambient" };
  uint64_t *targets[] = { &p->caps.bounding, &p->caps.effective, &p->caps.inheritable, &p->caps.permitted,
                          &p->caps.ambient };
  const struct json_value *caps;
  if (get_object (rd, obj, parent, "capabilities", &caps) < 0)
    return -1;
  if (caps == NULL)
    return 0;
  p->has_caps = true;
  cleanup_free char *cpath = sub (parent, "capabilities");
  int last = cap_last ();
  for (size_t i = 0; i < 5; i++)
    {
      char **names;
      size_t n;
      if (get_strings (rd, caps, cpath, sets[i], &names, &n) < 0)
        return -1;
      for (size_t j = 0; j < n; j++)
        {
          int c = cap_from_name (names[j]);
          if (c < 0)
            {
              cleanup_free char *setpath = sub (cpath, sets[i]);
              cleanup_free char *p2 = idx (setpath, j);
              bad (rd, p2, "unknown capability `%s`", names[j]);
              free (names);
              return -1;
            }
          if (c > last)
            {
              shim_warning ("%s: %s.%s: capability %s is not known to this kernel, ignored", rd->what, cpath, sets[i],
                            names[j]);
              continue;
            }
          *targets[i] |= 1ULL << c;
        }
      free (names);
    }
  return 0;
}

static const struct
{
  const char *name;
  int resource;
} rlimit_names[] = {
  { "RLIMIT_AS", RLIMIT_AS },         { "RLIMIT_CORE", RLIMIT_CORE },           { "RLIMIT_CPU", RLIMIT_CPU },
  { "RLIMIT_DATA", RLIMIT_DATA },     { "RLIMIT_FSIZE", RLIMIT_FSIZE },         { "RLIMIT_LOCKS", RLIMIT_LOCKS },
  { "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK }, { "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
  { "RLIMIT_NOFILE", RLIMIT_NOFILE }, { "RLIMIT_NPROC", RLIMIT_NPROC },         { "RLIMIT_RSS", RLIMIT_RSS },
  { "RLIMIT_RTPRIO", RLIMIT_RTPRIO }, { "RLIMIT_RTTIME", RLIMIT_RTTIME },       { "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
  { "RLIMIT_STACK", RLIMIT_STACK },
};

int
spec_rlimit_from_name (const char *name)
{
  for (size_t i = 0; i < sizeof rlimit_names / sizeof rlimit_names[0]; i++)
    if (strcmp (name, rlimit_names[i].name) == 0)
      return rlimit_names[i].resource;
  return -1;
}

static int
parse_process_object (struct rd *rd, const struct json_value *obj, const char *parent, struct spec_process **out)
{
  struct spec_process *p = xcalloc (1, sizeof *p);
  *out = p;
  if (get_bool (rd, obj, parent, "terminal", &p->terminal) < 0)
    return -1;
  const struct json_value *console, *user;
  if (get_object (rd, obj, parent, "consoleSize", &console) < 0)
    return -1;
  if (console)
    {
      cleanup_free char *cpath = sub (parent, "consoleSize");
      int64_t h = 0, w = 0;
      if (get_int (rd, console, cpath, "height", 0, 65535, NULL, &h) < 0
          || get_int (rd, console, cpath, "width", 0, 65535, NULL, &w) < 0)
        return -1;
      p->console_height = (unsigned short) h;
      p->console_width = (unsigned short) w;
    }
  if (get_object (rd, obj, parent, "user", &user) < 0)
    return -1;
  if (user)
    {
      cleanup_free char *upath = sub (parent, "user");
      uint32_t uid = 0, gid = 0, umask = 0;
      bool has_umask = false;
      if (get_u32 (rd, user, upath, "uid", NULL, &uid) < 0 || get_u32 (rd, user, upath, "gid", NULL, &gid) < 0
          || get_u32 (rd, user, upath, "umask", &has_umask, &umask) < 0)
        return -1;
      p->uid = uid;
      p->gid = gid;
      p->has_umask = has_umask;
      p->umask = (mode_t) (umask & 07777);
      const struct json_value *gids;
      if (get_array (rd, user, upath, "additionalGids", &gids) < 0)
        return -1;
      if (gids)
        {
          p->additional_gids = xcalloc (gids->array.len + 1, sizeof *p->additional_gids);
          for (size_t i = 0; i < gids->array.len; i++)
            {
              const struct json_value *g = gids->array.items[i];
              cleanup_free char *gpath = xasprintf ("%s.additionalGids[%zu]", upath, i);
              if (g->type != JSON_NUMBER || !g->number.integer || g->number.negative || g->number.magnitude > UINT32_MAX)
                return bad (rd, gpath, "expected a group id");
              p->additional_gids[i] = (gid_t) g->number.magnitude;
            }
          p->n_additional_gids = gids->array.len;
        }
      if (refuse_if_set (rd, user, upath, "username", "only for Windows containers") < 0)
        return -1;
    }
  if (get_strings (rd, obj, parent, "args", &p->args, &p->n_args) < 0)
    return -1;
  if (p->n_args == 0)
    {
      cleanup_free char *apath = sub (parent, "args");
      return bad (rd, apath, "at least one argument (the program) is required");
    }
  if (get_strings (rd, obj, parent, "env", &p->env, &p->n_env) < 0)
    return -1;
  if (p->env == NULL)
    p->env = xcalloc (1, sizeof *p->env);
  for (size_t i = 0; i < p->n_env; i++)
    if (strchr (p->env[i], '=') == NULL)
      {
        cleanup_free char *epath = xasprintf ("%s%senv[%zu]", parent, *parent ? "." : "", i);
        return bad (rd, epath, "`%s` is not of the form KEY=value", p->env[i]);
      }
  if (get_string (rd, obj, parent, "cwd", true, &p->cwd) < 0)
    return -1;
  if (p->cwd[0] != '/')
    {
      cleanup_free char *cpath = sub (parent, "cwd");
      return bad (rd, cpath, "`%s` is not an absolute path", p->cwd);
    }
  if (parse_caps (rd, obj, parent, p) < 0)
    return -1;
  const struct json_value *rl;
  if (get_array (rd, obj, parent, "rlimits", &rl) < 0)
    return -1;
  if (rl)
    {
      p->rlimits = xcalloc (rl->array.len + 1, sizeof *p->rlimits);
      for (size_t i = 0; i < rl->array.len; i++)
        {
          cleanup_free char *base = sub (parent, "rlimits");
          cleanup_free char *rpath = idx (base, i);
          const struct json_value *r = rl->array.items[i];
          char *type;
          if (want (rd, r, JSON_OBJECT, rpath) < 0 || get_string (rd, r, rpath, "type", true, &type) < 0)
            return -1;
          int res = spec_rlimit_from_name (type);
          if (res < 0)
            {
              cleanup_free char *tpath = sub (rpath, "type");
              return bad (rd, tpath, "unknown resource limit `%s`", type);
            }
          for (size_t j = 0; j < i; j++)
            if (p->rlimits[j].resource == res)
              {
                cleanup_free char *tpath = sub (rpath, "type");
                return bad (rd, tpath, "`%s` is given twice", type);
              }
          p->rlimits[i].resource = res;
          if (get_uint64 (rd, r, rpath, "soft", NULL, &p->rlimits[i].soft) < 0
              || get_uint64 (rd, r, rpath, "hard", NULL, &p->rlimits[i].hard) < 0)
            return -1;
          if (p->rlimits[i].soft > p->rlimits[i].hard)
            return bad (rd, rpath, "soft limit is above the hard limit");
        }
      p->n_rlimits = rl->array.len;
    }
  if (get_bool (rd, obj, parent, "noNewPrivileges", &p->no_new_privileges) < 0)
    return -1;
  int64_t adj = 0;
  bool has_adj = false;
  if (get_int (rd, obj, parent, "oomScoreAdj", -1000, 1000, &has_adj, &adj) < 0)
    return -1;
  p->has_oom_score_adj = has_adj;
  p->oom_score_adj = (int) adj;
  if (get_string (rd, obj, parent, "apparmorProfile", false, &p->apparmor_profile) < 0)
    return -1;
  if (p->apparmor_profile && *p->apparmor_profile && access ("/sys/kernel/security/apparmor", F_OK) < 0)
    {
      cleanup_free char *ap = sub (parent, "apparmorProfile");
      return unsupported (rd, ap, "AppArmor is not enabled on this host");
    }
  if (refuse_if_set (rd, obj, parent, "selinuxLabel", "SELinux labels are not supported by berth-runtime") < 0
      || refuse_if_set (rd, obj, parent, "ioPriority", "I/O priorities are not supported by berth-runtime") < 0
      || refuse_if_set (rd, obj, parent, "scheduler", "scheduler policies are not supported by berth-runtime") < 0
      || refuse_if_set (rd, obj, parent, "execCPUAffinity", "exec CPU affinity is not supported by berth-runtime") < 0
      || refuse_if_set (rd, obj, parent, "commandLine", "only for Windows containers") < 0)
    return -1;
  return 0;
}

static const struct
{
  const char *name;
  int flag;
} namespace_types[] = {
  { "pid", CLONE_NEWPID }, { "network", CLONE_NEWNET },   { "mount", CLONE_NEWNS },     { "ipc", CLONE_NEWIPC },
  { "uts", CLONE_NEWUTS }, { "user", CLONE_NEWUSER },     { "cgroup", CLONE_NEWCGROUP },
};

const char *
spec_namespace_name (int flag)
{
  for (size_t i = 0; i < sizeof namespace_types / sizeof namespace_types[0]; i++)
    if (namespace_types[i].flag == flag)
      return namespace_types[i].name;
  return "?";
}

bool
spec_has_namespace (const struct spec *s, int flag)
{
  for (size_t i = 0; i < s->n_namespaces; i++)
    if (s->namespaces[i].flag == flag)
      return true;
  return false;
}

static int
parse_idmaps (struct rd *rd, const struct json_value *linux, const char *key, struct spec_idmap **out, size_t *n)
{
  const struct json_value *arr;
  if (get_array (rd, linux, "linux", key, &arr) < 0)
    return -1;
  if (arr == NULL)
    return 0;
  cleanup_free char *base = sub ("linux", key);
  *out = xcalloc (arr->array.len + 1, sizeof **out);
  *n = arr->array.len;
  for (size_t i = 0; i < arr->array.len; i++)
    {
      cleanup_free char *path = idx (base, i);
      const struct json_value *m = arr->array.items[i];
      if (want (rd, m, JSON_OBJECT, path) < 0)
        return -1;
      bool h1, h2, h3;
      if (get_u32 (rd, m, path, "containerID", &h1, &(*out)[i].container_id) < 0
          || get_u32 (rd, m, path, "hostID", &h2, &(*out)[i].host_id) < 0
          || get_u32 (rd, m, path, "size", &h3, &(*out)[i].size) < 0)
        return -1;
      if (!h1 || !h2 || !h3)
        return bad (rd, path, "containerID, hostID and size are required");
      if ((*out)[i].size == 0)
        return bad (rd, path, "size must be positive");
    }
  return 0;
}

static int
parse_device_number (struct rd *rd, const struct json_value *obj, const char *path, const char *key, bool required,
                     int64_t *out)
{
  bool has = false;
  *out = -1;
  if (get_int (rd, obj, path, key, -1, UINT32_MAX, &has, out) < 0)
    return -1;
  if (!has)
    {
      *out = -1;
      if (required)
        {
          cleanup_free char *p = sub (path, key);
          return bad (rd, p, "required but missing");
        }
    }
  return 0;
}

static int
parse_devices (struct rd *rd, const struct json_value *linux, struct spec *s)
{
  const struct json_value *arr;
  if (get_array (rd, linux, "linux", "devices", &arr) < 0)
    return -1;
  if (arr == NULL)
    return 0;
  s->devices = xcalloc (arr->array.len + 1, sizeof *s->devices);
  s->n_devices = arr->array.len;
  for (size_t i = 0; i < arr->array.len; i++)
    {
      cleanup_free char *path = idx ("linux.devices", i);
      const struct json_value *d = arr->array.items[i];
      struct spec_device *sd = &s->devices[i];
      char *type;
      if (want (rd, d, JSON_OBJECT, path) < 0 || get_string (rd, d, path, "path", true, &sd->path) < 0
          || get_string (rd, d, path, "type", true, &type) < 0)
        return -1;
      if (sd->path[0] != '/')
        {
          cleanup_free char *p = sub (path, "path");
          return bad (rd, p, "`%s` is not an absolute path", sd->path);
        }
      if (strlen (type) != 1 || strchr ("cbup", type[0]) == NULL)
        {
          cleanup_free char *p = sub (path, "type");
          return bad (rd, p, "unknown device type `%s` (want c, b, u or p)", type);
        }
      sd->type = type[0] == 'u' ? 'c' : type[0];
      bool need_numbers = sd->type != 'p';
      if (parse_device_number (rd, d, path, "major", need_numbers, &sd->major) < 0
          || parse_device_number (rd, d, path, "minor", need_numbers, &sd->minor) < 0)
        return -1;
      if (get_u32 (rd, d, path, "fileMode", &sd->has_file_mode, &sd->file_mode) < 0
          || get_u32 (rd, d, path, "uid", NULL, &sd->uid) < 0 || get_u32 (rd, d, path, "gid", NULL, &sd->gid) < 0)
        return -1;
    }
  return 0;
}

static int
parse_throttle (struct rd *rd, const struct json_value *blkio, const char *key, struct spec_throttle **out, size_t *n)
{
  const struct json_value *arr;
  if (get_array (rd, blkio, "linux.resources.blockIO", key, &arr) < 0)
    return -1;
  if (arr == NULL)
    return 0;
  cleanup_free char *base = sub ("linux.resources.blockIO", key);
  *out = xcalloc (arr->array.len + 1, sizeof **out);
  *n = arr->array.len;
  for (size_t i = 0; i < arr->array.len; i++)
    {
      cleanup_free char *path = idx (base, i);
      const struct json_value *t = arr->array.items[i];
      bool has;
      if (want (rd, t, JSON_OBJECT, path) < 0 || parse_device_number (rd, t, path, "major", true, &(*out)[i].major) < 0
          || parse_device_number (rd, t, path, "minor", true, &(*out)[i].minor) < 0
          || get_uint64 (rd, t, path, "rate", &has, &(*out)[i].rate) < 0)
        return -1;
    }
  return 0;
}

static int
parse_resources_object (struct rd *rd, const struct json_value *res, struct spec_resources *r)
{
  const struct json_value *mem, *cpu, *pids, *blkio, *devs;
  const char *rp = "linux.resources";
  if (want (rd, res, JSON_OBJECT, rp) < 0)
    return -1;
  if (get_object (rd, res, rp, "memory", &mem) < 0 || get_object (rd, res, rp, "cpu", &cpu) < 0
      || get_object (rd, res, rp, "pids", &pids) < 0 || get_object (rd, res, rp, "blockIO", &blkio) < 0
      || get_array (rd, res, rp, "devices", &devs) < 0)
    return -1;
  if (mem)
    {
      const char *mp = "linux.resources.memory";
      if (get_int (rd, mem, mp, "limit", -1, INT64_MAX, &r->has_memory_limit, &r->memory_limit) < 0
          || get_int (rd, mem, mp, "reservation", -1, INT64_MAX, &r->has_memory_reservation, &r->memory_reservation) < 0
          || get_int (rd, mem, mp, "swap", -1, INT64_MAX, &r->has_memory_swap, &r->memory_swap) < 0
          || get_uint64 (rd, mem, mp, "swappiness", &r->has_swappiness, &r->swappiness) < 0
          || get_bool (rd, mem, mp, "disableOOMKiller", &r->disable_oom_killer) < 0)
        return -1;
      if (r->has_swappiness && r->swappiness > 100)
        return bad (rd, "linux.resources.memory.swappiness", "%llu is above 100", (unsigned long long) r->swappiness);
      if (r->has_memory_limit && r->memory_limit > 0 && r->has_memory_swap && r->memory_swap > 0
          && r->memory_swap < r->memory_limit)
        return bad (rd, "linux.resources.memory.swap",
                    "must be at least linux.resources.memory.limit (it is memory plus swap)");
      /* kernel and kernelTCP are deprecated and ignored by runc as well. */
    }
  if (cpu)
    {
      const char *cp = "linux.resources.cpu";
      if (get_uint64 (rd, cpu, cp, "shares", &r->has_cpu_shares, &r->cpu_shares) < 0
          || get_int (rd, cpu, cp, "quota", -1, INT64_MAX, &r->has_cpu_quota, &r->cpu_quota) < 0
          || get_uint64 (rd, cpu, cp, "period", &r->has_cpu_period, &r->cpu_period) < 0
          || get_int (rd, cpu, cp, "idle", 0, 1, &r->has_cpu_idle, &r->cpu_idle) < 0
          || get_string (rd, cpu, cp, "cpus", false, &r->cpuset_cpus) < 0
          || get_string (rd, cpu, cp, "mems", false, &r->cpuset_mems) < 0)
        return -1;
      if (refuse_if_set (rd, cpu, cp, "realtimeRuntime", "real-time scheduling limits are not supported") < 0
          || refuse_if_set (rd, cpu, cp, "realtimePeriod", "real-time scheduling limits are not supported") < 0
          || refuse_if_set (rd, cpu, cp, "burst", "CPU burst is not supported by berth-runtime") < 0)
        return -1;
      if (r->has_cpu_period && r->cpu_period != 0 && (r->cpu_period < 1000 || r->cpu_period > 1000000))
        return bad (rd, "linux.resources.cpu.period", "%llu is outside [1000, 1000000] microseconds",
                    (unsigned long long) r->cpu_period);
      if (r->has_cpu_quota && r->cpu_quota > 0 && r->cpu_quota < 1000)
        return bad (rd, "linux.resources.cpu.quota", "%lld is below 1000 microseconds", (long long) r->cpu_quota);
    }
  if (pids)
    {
      bool has;
      if (get_int (rd, pids, "linux.resources.pids", "limit", INT64_MIN, INT64_MAX, &has, &r->pids_limit) < 0)
        return -1;
      r->has_pids_limit = has;
    }
  if (blkio)
    {
      const char *bp = "linux.resources.blockIO";
      uint64_t w = 0;
      bool has;
      if (get_uint64 (rd, blkio, bp, "weight", &has, &w) < 0)
        return -1;
      if (has && w != 0 && (w < 10 || w > 1000))
        return bad (rd, "linux.resources.blockIO.weight", "%llu is outside [10, 1000]", (unsigned long long) w);
      r->has_blkio_weight = has && w != 0;
      r->blkio_weight = (uint16_t) w;
      if (refuse_if_set (rd, blkio, bp, "leafWeight", "blkio leaf weights are not supported by berth-runtime") < 0
          || refuse_if_set (rd, blkio, bp, "weightDevice", "per-device blkio weights are not supported by berth-runtime")
                 < 0
          || parse_throttle (rd, blkio, "throttleReadBpsDevice", &r->throttle_read_bps, &r->n_throttle_read_bps) < 0
          || parse_throttle (rd, blkio, "throttleWriteBpsDevice", &r->throttle_write_bps, &r->n_throttle_write_bps) < 0
          || parse_throttle (rd, blkio, "throttleReadIOPSDevice", &r->throttle_read_iops, &r->n_throttle_read_iops) < 0
          || parse_throttle (rd, blkio, "throttleWriteIOPSDevice", &r->throttle_write_iops, &r->n_throttle_write_iops)
                 < 0)
        return -1;
    }
  if (devs)
    {
      r->has_devices = true;
      r->devices = xcalloc (devs->array.len + 1, sizeof *r->devices);
      r->n_devices = devs->array.len;
      for (size_t i = 0; i < devs->array.len; i++)
        {
          cleanup_free char *path = idx ("linux.resources.devices", i);
          const struct json_value *d = devs->array.items[i];
          struct spec_device_rule *rule = &r->devices[i];
          char *type = NULL, *access = NULL;
          if (want (rd, d, JSON_OBJECT, path) < 0 || get_bool (rd, d, path, "allow", &rule->allow) < 0
              || get_string (rd, d, path, "type", false, &type) < 0
              || get_string (rd, d, path, "access", false, &access) < 0
              || parse_device_number (rd, d, path, "major", false, &rule->major) < 0
              || parse_device_number (rd, d, path, "minor", false, &rule->minor) < 0)
            return -1;
          if (type == NULL || *type == 0)
            rule->type = 'a';
          else if (strlen (type) == 1 && strchr ("acb", type[0]))
            rule->type = type[0];
          else
            {
              cleanup_free char *p = sub (path, "type");
              return bad (rd, p, "unknown device type `%s` (want a, c or b)", type);
            }
          if (access == NULL || *access == 0)
            strcpy (rule->access, "rwm");
          else if (strlen (access) <= 3 && strspn (access, "rwm") == strlen (access))
            strcpy (rule->access, access);
          else
            {
              cleanup_free char *p = sub (path, "access");
              return bad (rd, p, "`%s` is not a combination of r, w and m", access);
            }
        }
    }
  if (refuse_if_set (rd, res, rp, "hugepageLimits", "hugepage limits are not supported by berth-runtime") < 0
      || refuse_if_set (rd, res, rp, "network", "network classes and priorities are not supported by berth-runtime") < 0
      || refuse_if_set (rd, res, rp, "rdma", "RDMA limits are not supported by berth-runtime") < 0)
    return -1;
  return parse_kv_object (rd, res, rp, "unified", &r->unified, &r->n_unified);
}

static int
parse_resources (struct rd *rd, const struct json_value *linux, struct spec_resources *r)
{
  const struct json_value *res;
  if (get_object (rd, linux, "linux", "resources", &res) < 0)
    return -1;
  return res ? parse_resources_object (rd, res, r) : 0;
}

int
spec_parse_resources (const struct json_value *res, const char *what, struct spec_resources *r, shim_error_t *err)
{
  struct rd rd = { .what = what, .err = err };
  memset (r, 0, sizeof *r);
  return parse_resources_object (&rd, res, r);
}

static const struct
{
  const char *name;
  int action;
} seccomp_actions[] = {
  { "SCMP_ACT_KILL", SECCOMP_ACTION_KILL_THREAD },
  { "SCMP_ACT_KILL_THREAD", SECCOMP_ACTION_KILL_THREAD },
  { "SCMP_ACT_KILL_PROCESS", SECCOMP_ACTION_KILL_PROCESS },
  { "SCMP_ACT_TRAP", SECCOMP_ACTION_TRAP },
  { "SCMP_ACT_ERRNO", SECCOMP_ACTION_ERRNO },
  { "SCMP_ACT_TRACE", SECCOMP_ACTION_TRACE },
  { "SCMP_ACT_ALLOW", SECCOMP_ACTION_ALLOW },
  { "SCMP_ACT_LOG", SECCOMP_ACTION_LOG },
};

static int
seccomp_action (struct rd *rd, const char *path, const char *name, int *out)
{
  for (size_t i = 0; i < sizeof seccomp_actions / sizeof seccomp_actions[0]; i++)
    if (strcmp (name, seccomp_actions[i].name) == 0)
      {
        *out = seccomp_actions[i].action;
        return 0;
      }
  if (strcmp (name, "SCMP_ACT_NOTIFY") == 0)
    return unsupported (rd, path, "SCMP_ACT_NOTIFY needs a seccomp agent, which berth-runtime does not support");
  return bad (rd, path, "unknown seccomp action `%s`", name);
}

static const struct
{
  const char *name;
  int op;
} seccomp_ops[] = {
  { "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT }, { "SCMP_CMP_LE", SCMP_CMP_LE },
  { "SCMP_CMP_EQ", SCMP_CMP_EQ }, { "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
  { "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

static int
parse_seccomp (struct rd *rd, const struct json_value *linux, struct spec *s)
{
  const struct json_value *sc;
  const char *sp = "linux.seccomp";
  if (get_object (rd, linux, "linux", "seccomp", &sc) < 0)
    return -1;
  if (sc == NULL)
    return 0;
  struct spec_seccomp *out = xcalloc (1, sizeof *out);
  s->seccomp = out;
  char *def;
  if (get_string (rd, sc, sp, "defaultAction", true, &def) < 0
      || seccomp_action (rd, "linux.seccomp.defaultAction", def, &out->default_action) < 0
      || get_u32 (rd, sc, sp, "defaultErrnoRet", &out->has_default_errno, &out->default_errno) < 0)
    return -1;
  if (get_strings (rd, sc, sp, "architectures", &out->architectures, &out->n_architectures) < 0)
    return -1;
  for (size_t i = 0; i < out->n_architectures; i++)
    if (seccomp_arch_token (out->architectures[i]) == 0)
      {
        cleanup_free char *p = idx ("linux.seccomp.architectures", i);
        return bad (rd, p, "unknown architecture `%s`", out->architectures[i]);
      }
  char **flags;
  size_t n_flags;
  if (get_strings (rd, sc, sp, "flags", &flags, &n_flags) < 0)
    return -1;
  for (size_t i = 0; i < n_flags; i++)
    {
      if (strcmp (flags[i], "SECCOMP_FILTER_FLAG_LOG") == 0)
        out->flags |= SECCOMP_FILTER_FLAG_LOG;
      else if (strcmp (flags[i], "SECCOMP_FILTER_FLAG_SPEC_ALLOW") == 0)
        out->flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW;
      else if (strcmp (flags[i], "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV") == 0)
        out->flags |= SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
      else
        {
          cleanup_free char *p = idx ("linux.seccomp.flags", i);
          bad (rd, p, "unknown seccomp flag `%s`", flags[i]);
          free (flags);
          return -1;
        }
    }
  free (flags);
  if (refuse_if_set (rd, sc, sp, "listenerPath", "seccomp agents are not supported by berth-runtime") < 0)
    return -1;
  const struct json_value *calls;
  if (get_array (rd, sc, sp, "syscalls", &calls) < 0)
    return -1;
  if (calls == NULL)
    return 0;
  out->rules = xcalloc (calls->array.len + 1, sizeof *out->rules);
  out->n_rules = calls->array.len;
  for (size_t i = 0; i < calls->array.len; i++)
    {
      cleanup_free char *path = idx ("linux.seccomp.syscalls", i);
      const struct json_value *c = calls->array.items[i];
      struct spec_seccomp_rule *rule = &out->rules[i];
      char *action;
      if (want (rd, c, JSON_OBJECT, path) < 0 || get_strings (rd, c, path, "names", &rule->names, &rule->n_names) < 0
          || get_string (rd, c, path, "action", true, &action) < 0)
        return -1;
      cleanup_free char *apath = sub (path, "action");
      if (seccomp_action (rd, apath, action, &rule->action) < 0
          || get_u32 (rd, c, path, "errnoRet", &rule->has_errno, &rule->errno_ret) < 0)
        return -1;
      if (rule->n_names == 0)
        {
          cleanup_free char *p = sub (path, "names");
          return bad (rd, p, "at least one syscall name is required");
        }
      const struct json_value *args;
      if (get_array (rd, c, path, "args", &args) < 0)
        return -1;
      if (args == NULL)
        continue;
      if (args->array.len > 6)
        {
          cleanup_free char *p = sub (path, "args");
          return bad (rd, p, "a syscall has at most 6 arguments");
        }
      rule->args = xcalloc (args->array.len + 1, sizeof *rule->args);
      rule->n_args = args->array.len;
      for (size_t j = 0; j < args->array.len; j++)
        {
          cleanup_free char *base = sub (path, "args");
          cleanup_free char *argp = idx (base, j);
          const struct json_value *a = args->array.items[j];
          int64_t index = 0;
          bool has_index;
          char *op;
          if (want (rd, a, JSON_OBJECT, argp) < 0 || get_int (rd, a, argp, "index", 0, 5, &has_index, &index) < 0
              || get_uint64 (rd, a, argp, "value", NULL, &rule->args[j].value) < 0
              || get_uint64 (rd, a, argp, "valueTwo", NULL, &rule->args[j].value_two) < 0
              || get_string (rd, a, argp, "op", true, &op) < 0)
            return -1;
          rule->args[j].index = (unsigned) index;
          rule->args[j].op = -1;
          for (size_t k = 0; k < sizeof seccomp_ops / sizeof seccomp_ops[0]; k++)
            if (strcmp (op, seccomp_ops[k].name) == 0)
              rule->args[j].op = seccomp_ops[k].op;
          if (rule->args[j].op < 0)
            {
              cleanup_free char *p = sub (argp, "op");
              return bad (rd, p, "unknown comparison `%s`", op);
            }
        }
    }
  return 0;
}

static int
parse_hooks (struct rd *rd, const struct json_value *root, struct spec *s)
{
  static const char *const kinds[HOOK_KINDS] = { "prestart", "createRuntime", "poststart", "poststop" };
  const struct json_value *hooks;
  if (get_object (rd, root, "", "hooks", &hooks) < 0)
    return -1;
  if (hooks == NULL)
    return 0;
  if (refuse_if_set (rd, hooks, "hooks", "createContainer",
                     "hooks that run inside the container's namespaces are not supported by berth-runtime") < 0
      || refuse_if_set (rd, hooks, "hooks", "startContainer",
                        "hooks that run inside the container's namespaces are not supported by berth-runtime") < 0)
    return -1;
  for (int k = 0; k < HOOK_KINDS; k++)
    {
      const struct json_value *arr;
      if (get_array (rd, hooks, "hooks", kinds[k], &arr) < 0)
        return -1;
      if (arr == NULL)
        continue;
      s->hooks[k] = xcalloc (arr->array.len + 1, sizeof *s->hooks[k]);
      s->n_hooks[k] = arr->array.len;
      for (size_t i = 0; i < arr->array.len; i++)
        {
          cleanup_free char *base = sub ("hooks", kinds[k]);
          cleanup_free char *path = idx (base, i);
          const struct json_value *h = arr->array.items[i];
          struct spec_hook *hook = &s->hooks[k][i];
          size_t n;
          int64_t timeout = 0;
          bool has_timeout;
          if (want (rd, h, JSON_OBJECT, path) < 0 || get_string (rd, h, path, "path", true, &hook->path) < 0
              || get_strings (rd, h, path, "args", &hook->args, &n) < 0
              || get_strings (rd, h, path, "env", &hook->env, &n) < 0
              || get_int (rd, h, path, "timeout", 1, INT32_MAX, &has_timeout, &timeout) < 0)
            return -1;
          if (hook->path[0] != '/')
            {
              cleanup_free char *p = sub (path, "path");
              return bad (rd, p, "`%s` is not an absolute path", hook->path);
            }
          if (hook->args == NULL)
            {
              hook->args = xcalloc (2, sizeof *hook->args);
              hook->args[0] = hook->path;
            }
          if (hook->env == NULL)
            hook->env = xcalloc (1, sizeof *hook->env);
          hook->timeout = (int) timeout;
        }
    }
  return 0;
}

/* Like runc, the device rules end with what every container needs (its default nodes, the pty
   devices, mknod of anything) and an allow for each node of linux.devices. */
static void
add_default_device_rules (struct spec *s)
{
  static const struct spec_device_rule defaults[] = {
    { true, 'c', -1, -1, "m" }, { true, 'b', -1, -1, "m" }, { true, 'c', 1, 3, "rwm" },  { true, 'c', 1, 8, "rwm" },
    { true, 'c', 1, 7, "rwm" }, { true, 'c', 5, 0, "rwm" }, { true, 'c', 1, 5, "rwm" },  { true, 'c', 1, 9, "rwm" },
    { true, 'c', 136, -1, "rwm" }, { true, 'c', 5, 2, "rwm" }, { true, 'c', 10, 200, "rwm" },
  };
  struct spec_resources *r = &s->resources;
  if (!r->has_devices)
    return;
  size_t n = r->n_devices + s->n_devices + sizeof defaults / sizeof defaults[0];
  r->devices = xrealloc (r->devices, (n + 1) * sizeof *r->devices);
  for (size_t i = 0; i < s->n_devices; i++)
    {
      struct spec_device_rule *d = &r->devices[r->n_devices++];
      d->allow = true;
      d->type = s->devices[i].type == 'b' ? 'b' : 'c';
      d->major = s->devices[i].major;
      d->minor = s->devices[i].minor;
      strcpy (d->access, "rwm");
    }
  for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
    r->devices[r->n_devices++] = defaults[i];
}

static bool
sysctl_allowed (const char *key, const struct spec *s, const char **needs)
{
  static const char *const ipc[] = { "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                                     "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced" };
  for (size_t i = 0; i < sizeof ipc / sizeof ipc[0]; i++)
    if (strcmp (key, ipc[i]) == 0)
      {
        *needs = "ipc";
        return spec_has_namespace (s, CLONE_NEWIPC);
      }
  if (strncmp (key, "fs.mqueue.", 10) == 0)
    {
      *needs = "ipc";
      return spec_has_namespace (s, CLONE_NEWIPC);
    }
  if (strncmp (key, "net.", 4) == 0)
    {
      *needs = "network";
      return spec_has_namespace (s, CLONE_NEWNET);
    }
  if (strcmp (key, "kernel.hostname") == 0 || strcmp (key, "kernel.domainname") == 0)
    {
      *needs = "uts";
      return spec_has_namespace (s, CLONE_NEWUTS);
    }
  *needs = NULL;
  return false;
}

static int
parse_linux (struct rd *rd, const struct json_value *root, struct spec *s)
{
  const struct json_value *linux;
  if (get_object (rd, root, "", "linux", &linux) < 0)
    return -1;
  if (linux == NULL)
    return 0;
  const struct json_value *ns;
  if (get_array (rd, linux, "linux", "namespaces", &ns) < 0)
    return -1;
  if (ns)
    {
      s->namespaces = xcalloc (ns->array.len + 1, sizeof *s->namespaces);
      s->n_namespaces = ns->array.len;
      for (size_t i = 0; i < ns->array.len; i++)
        {
          cleanup_free char *path = idx ("linux.namespaces", i);
          const struct json_value *n = ns->array.items[i];
          char *type;
          if (want (rd, n, JSON_OBJECT, path) < 0 || get_string (rd, n, path, "type", true, &type) < 0
              || get_string (rd, n, path, "path", false, &s->namespaces[i].path) < 0)
            return -1;
          cleanup_free char *tpath = sub (path, "type");
          if (strcmp (type, "time") == 0)
            return unsupported (rd, tpath, "time namespaces are not supported by berth-runtime");
          int flag = 0;
          for (size_t j = 0; j < sizeof namespace_types / sizeof namespace_types[0]; j++)
            if (strcmp (type, namespace_types[j].name) == 0)
              flag = namespace_types[j].flag;
          if (flag == 0)
            return bad (rd, tpath, "unknown namespace type `%s`", type);
          for (size_t j = 0; j < i; j++)
            if (s->namespaces[j].flag == flag)
              return bad (rd, tpath, "namespace type `%s` is given twice", type);
          s->namespaces[i].flag = flag;
          if (s->namespaces[i].path && *s->namespaces[i].path == 0)
            s->namespaces[i].path = NULL;
          if (s->namespaces[i].path == NULL)
            s->clone_flags |= flag;
        }
    }
  if (parse_idmaps (rd, linux, "uidMappings", &s->uid_mappings, &s->n_uid_mappings) < 0
      || parse_idmaps (rd, linux, "gidMappings", &s->gid_mappings, &s->n_gid_mappings) < 0)
    return -1;
  if ((s->clone_flags & CLONE_NEWUSER) && (s->n_uid_mappings == 0 || s->n_gid_mappings == 0))
    return bad (rd, "linux.uidMappings", "a new user namespace needs uidMappings and gidMappings");
  if (!spec_has_namespace (s, CLONE_NEWUSER) && (s->n_uid_mappings || s->n_gid_mappings))
    return bad (rd, "linux.uidMappings", "id mappings need a user namespace in linux.namespaces");
  if (parse_devices (rd, linux, s) < 0 || get_string (rd, linux, "linux", "cgroupsPath", false, &s->cgroups_path) < 0
      || parse_resources (rd, linux, &s->resources) < 0 || (add_default_device_rules (s), 0)
      || parse_kv_object (rd, linux, "linux", "sysctl", &s->sysctl, &s->n_sysctl) < 0 || parse_seccomp (rd, linux, s) < 0)
    return -1;
  for (size_t i = 0; i < s->n_sysctl; i++)
    {
      const char *needs;
      if (!sysctl_allowed (s->sysctl[i].key, s, &needs))
        {
          cleanup_free char *p = xasprintf ("linux.sysctl.%s", s->sysctl[i].key);
          if (needs)
            return bad (rd, p, "needs a private %s namespace", needs);
          return bad (rd, p, "is not namespaced: a container may not change it for the host");
        }
    }
  char *prop;
  if (get_string (rd, linux, "linux", "rootfsPropagation", false, &prop) < 0)
    return -1;
  if (prop && *prop)
    {
      for (size_t j = 0; j < sizeof propagation_flags / sizeof propagation_flags[0]; j++)
        if (strcmp (prop, propagation_flags[j].name) == 0)
          s->rootfs_propagation = propagation_flags[j].flag;
      if (s->rootfs_propagation == 0)
        return bad (rd, "linux.rootfsPropagation", "unknown propagation `%s`", prop);
    }
  if (get_strings (rd, linux, "linux", "maskedPaths", &s->masked_paths, &s->n_masked_paths) < 0
      || get_strings (rd, linux, "linux", "readonlyPaths", &s->readonly_paths, &s->n_readonly_paths) < 0)
    return -1;
  if (refuse_if_set (rd, linux, "linux", "intelRdt", "Intel RDT is not supported by berth-runtime") < 0
      || refuse_if_set (rd, linux, "linux", "personality", "personality domains are not supported by berth-runtime") < 0
      || refuse_if_set (rd, linux, "linux", "timeOffsets", "time namespaces are not supported by berth-runtime") < 0
      || refuse_if_set (rd, linux, "linux", "memoryPolicy", "memory policies are not supported by berth-runtime") < 0)
    return -1;
  /* mountLabel is an SELinux context; this host has no SELinux, so like runc we do not apply it. */
  return 0;
}

/* The Berth annotations: the rootfs mounts (a JSON array of {type, source, options, cwd}) and the
   user to look up in the container. */
static int
parse_berth_annotations (struct rd *rd, struct spec *s)
{
  const struct json_value *v = s->annotations ? member (s->annotations, ANNOTATION_ROOTFS_MOUNTS) : NULL;
  if (v)
    {
      char *what = xasprintf ("%s: annotations.%s", rd->what, ANNOTATION_ROOTFS_MOUNTS);
      struct rd inner = { .what = what, .err = rd->err };
      struct json_value *doc;
      /* Kept, as the config's own document is: the mounts' strings point into it. */
      if (json_parse (v->string.s, v->string.len, what, &doc, rd->err) < 0 || want (&inner, doc, JSON_ARRAY, "(top level)") < 0)
        return -1;
      if (doc->array.len == 0)
        return bad (&inner, "(top level)", "at least one mount is needed");
      s->rootfs_mounts = xcalloc (doc->array.len, sizeof *s->rootfs_mounts);
      s->n_rootfs_mounts = doc->array.len;
      for (size_t i = 0; i < doc->array.len; i++)
        {
          const struct json_value *m = doc->array.items[i];
          struct spec_mount *sm = &s->rootfs_mounts[i];
          cleanup_free char *path = idx ("", i);
          if (want (&inner, m, JSON_OBJECT, path) < 0 || get_string (&inner, m, path, "type", true, &sm->type) < 0
              || get_string (&inner, m, path, "source", true, &sm->source) < 0
              || get_string (&inner, m, path, "cwd", false, &sm->cwd) < 0)
            return -1;
          if (sm->cwd && sm->cwd[0] != '/')
            {
              cleanup_free char *p = sub (path, "cwd");
              return bad (&inner, p, "`%s` is not an absolute path", sm->cwd);
            }
          char **options;
          size_t n_options;
          if (get_strings (&inner, m, path, "options", &options, &n_options) < 0)
            return -1;
          cleanup_free char *field = xasprintf ("%s: %s.options", what, path);
          int r = spec_parse_mount_options (sm, options, n_options, field, rd->err);
          free (options);
          if (r < 0)
            return -1;
          if (strcmp (sm->type, "bind") == 0)
            sm->bind = true;
          if (sm->bind && sm->source[0] != '/')
            {
              cleanup_free char *p = sub (path, "source");
              return bad (&inner, p, "`%s` is not an absolute path", sm->source);
            }
        }
    }
  const struct json_value *user = s->annotations ? member (s->annotations, ANNOTATION_USER) : NULL;
  const struct json_value *groups = s->annotations ? member (s->annotations, ANNOTATION_GROUP_ADD) : NULL;
  s->user_lookup = user ? user->string.s : NULL;
  s->group_add_lookup = groups ? groups->string.s : NULL;
  return 0;
}

int
spec_parse (const char *text, size_t len, const char *what, const char *bundle, struct spec **out, shim_error_t *err)
{
  struct rd rd = { .what = what, .err = err };
  struct json_value *doc;
  *out = NULL;
  if (json_parse (text, len, what, &doc, err) < 0)
    return -1;
  struct spec *s = xcalloc (1, sizeof *s);
  s->doc = doc;
  s->bundle = xstrdup (bundle);
  *out = s;
  if (want (&rd, doc, JSON_OBJECT, "(top level)") < 0)
    return -1;
  if (get_string (&rd, doc, "", "ociVersion", true, &s->oci_version) < 0)
    return -1;
  if (strncmp (s->oci_version, "1.", 2) != 0)
    return bad (&rd, "ociVersion", "version `%s` is not supported (want 1.x)", s->oci_version);
  const struct json_value *root, *process;
  if (get_object (&rd, doc, "", "root", &root) < 0)
    return -1;
  if (root == NULL)
    return bad (&rd, "root", "required but missing");
  char *root_path;
  if (get_string (&rd, root, "root", "path", true, &root_path) < 0
      || get_bool (&rd, root, "root", "readonly", &s->root_readonly) < 0)
    return -1;
  if (*root_path == 0)
    return bad (&rd, "root.path", "must not be empty");
  if (root_path[0] == '/')
    s->root_path = xstrdup (root_path);
  else
    s->root_path = xasprintf ("%s/%s", bundle, root_path);
  if (get_object (&rd, doc, "", "process", &process) < 0)
    return -1;
  if (process && parse_process_object (&rd, process, "process", &s->process) < 0)
    return -1;
  if (get_string (&rd, doc, "", "hostname", false, &s->hostname) < 0
      || get_string (&rd, doc, "", "domainname", false, &s->domainname) < 0)
    return -1;
  const struct json_value *ann;
  if (get_object (&rd, doc, "", "annotations", &ann) < 0)
    return -1;
  if (ann)
    for (size_t i = 0; i < ann->object.len; i++)
      if (ann->object.values[i]->type != JSON_STRING)
        return bad (&rd, "annotations", "value of `%s` must be a string", ann->object.keys[i]);
  s->annotations = (struct json_value *) ann;
  if (parse_berth_annotations (&rd, s) < 0)
    return -1;
  if (parse_mounts (&rd, doc, s) < 0 || parse_linux (&rd, doc, s) < 0 || parse_hooks (&rd, doc, s) < 0)
    return -1;
  if ((s->hostname && *s->hostname) && !spec_has_namespace (s, CLONE_NEWUTS))
    return bad (&rd, "hostname", "setting a hostname needs a private uts namespace");
  if ((s->domainname && *s->domainname) && !spec_has_namespace (s, CLONE_NEWUTS))
    return bad (&rd, "domainname", "setting a domain name needs a private uts namespace");
  if (refuse_if_set (&rd, doc, "", "windows", "Windows containers are not supported") < 0
      || refuse_if_set (&rd, doc, "", "solaris", "Solaris containers are not supported") < 0
      || refuse_if_set (&rd, doc, "", "vm", "virtual-machine containers are not supported") < 0)
    return -1;
  return 0;
}

int
spec_load (const char *bundle, struct spec **out, shim_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/config.json", bundle);
  cleanup_free char *text = NULL;
  size_t len;
  if (read_file (path, &text, &len, err) < 0)
    {
      if ((*err)->status == ENOENT)
        (*err)->code = SHIM_CODE_INVALID_SPEC;
      return -1;
    }
  if (spec_parse (text, len, "config.json", bundle, out, err) < 0)
    return -1;
  struct stat st;
  if (stat ((*out)->root_path, &st) < 0)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, errno, "config.json: root.path: rootfs `%s`",
                                 (*out)->root_path);
  if (!S_ISDIR (st.st_mode))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, ENOTDIR, "config.json: root.path: rootfs `%s`",
                                 (*out)->root_path);
  if ((*out)->process == NULL)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "config.json: process: required to create a container");
  return 0;
}

int
spec_parse_process (const char *text, size_t len, const char *what, struct spec_process **out, shim_error_t *err)
{
  struct rd rd = { .what = what, .err = err };
  struct json_value *doc;
  if (json_parse (text, len, what, &doc, err) < 0)
    return -1;
  if (want (&rd, doc, JSON_OBJECT, "(top level)") < 0)
    return -1;
  /* The document is kept: the process's strings point into it for the life of the command. */
  return parse_process_object (&rd, doc, "", out);
}
