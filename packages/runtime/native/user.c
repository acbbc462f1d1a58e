#include "user.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "files.h"

/* The largest id docker accepts. */
#define MAX_ID 2147483647UL

struct entry
{
  char *name;
  unsigned long id, gid; /* gid: passwd only */
  char *home;            /* passwd only */
  char *members;         /* group only: comma-separated */
};

struct table
{
  char *text; /* owns the strings of the entries */
  struct entry *e;
  size_t n;
};

static void
table_release (struct table *t)
{
  free (t->text);
  free (t->e);
}

static bool
parse_id_text (const char *s, unsigned long *out)
{
  if (s == NULL || *s == 0)
    return false;
  for (const char *c = s; *c; c++)
    if (*c < '0' || *c > '9')
      return false;
  errno = 0;
  *out = strtoul (s, NULL, 10);
  return errno == 0;
}

static char *
trim (char *s)
{
  while (*s == ' ' || *s == '\t' || *s == '\r')
    s++;
  size_t n = strlen (s);
  while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
    s[--n] = 0;
  return s;
}

/* /etc/passwd (7 fields, at least 4 used) or /etc/group (at least 3); a missing file is empty. */
static int
table_read (const char *path, bool passwd, struct table *t, shim_error_t *err)
{
  memset (t, 0, sizeof *t);
  size_t len;
  if (read_file (path, &t->text, &len, err) < 0)
    {
      if ((*err)->status != ENOENT)
        return -1;
      shim_error_release (err);
      return 0;
    }
  char *save = NULL;
  for (char *line = strtok_r (t->text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      line = trim (line);
      if (*line == 0 || *line == '#')
        continue;
      char *f[7] = { 0 };
      size_t n = 0;
      for (char *c = line; n < 7;)
        {
          f[n++] = c;
          c = strchr (c, ':');
          if (c == NULL)
            break;
          *c++ = 0;
        }
      struct entry e = { .name = f[0] };
      if (passwd)
        {
          if (n < 4 || !parse_id_text (f[2], &e.id) || !parse_id_text (f[3], &e.gid))
            continue;
          e.home = n > 5 && f[5] && *f[5] ? f[5] : "/";
        }
      else
        {
          if (n < 3 || !parse_id_text (f[2], &e.id))
            continue;
          e.members = n > 3 && f[3] ? f[3] : "";
        }
      t->e = xrealloc (t->e, (t->n + 1) * sizeof *t->e);
      t->e[t->n++] = e;
    }
  return 0;
}

static bool
has_member (const char *members, const char *name)
{
  size_t n = strlen (name);
  for (const char *p = members; p && *p;)
    {
      const char *end = strchr (p, ',');
      size_t len = end ? (size_t) (end - p) : strlen (p);
      if (len == n && strncmp (p, name, n) == 0)
        return true;
      p = end ? end + 1 : NULL;
    }
  return false;
}

static int
numeric (const char *text, bool *is, unsigned long *out, shim_error_t *err)
{
  *is = parse_id_text (text, out);
  if (*is && *out > MAX_ID)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0, "id %s is out of range (at most %lu)", text, MAX_ID);
  return 0;
}

static int
find_group (struct table *groups, bool *loaded, const char *name, unsigned long *gid, shim_error_t *err)
{
  bool is;
  if (numeric (name, &is, gid, err) < 0)
    return -1;
  if (is)
    return 0;
  if (!*loaded)
    {
      if (table_read ("/etc/group", false, groups, err) < 0)
        return -1;
      *loaded = true;
    }
  for (size_t i = 0; i < groups->n; i++)
    if (strcmp (groups->e[i].name, name) == 0)
      {
        *gid = groups->e[i].id;
        return 0;
      }
  return shim_make_error_code (err, SHIM_CODE_USER_NOT_FOUND, 0,
                               "unable to find group %s: no matching entries in group file", name);
}

static void
add_gid (gid_t **list, size_t *n, unsigned long gid)
{
  for (size_t i = 0; i < *n; i++)
    if ((*list)[i] == (gid_t) gid)
      return;
  *list = xrealloc (*list, (*n + 1) * sizeof **list);
  (*list)[(*n)++] = (gid_t) gid;
}

int
user_lookup (struct spec_process *p, const char *user, const char *group_add, shim_error_t *err)
{
  cleanup_free char *copy = xstrdup (user ? user : "");
  char *colon = strchr (copy, ':');
  const char *group_part = NULL;
  if (colon)
    {
      *colon = 0;
      group_part = colon + 1;
    }
  const char *user_part = copy;
  __attribute__ ((cleanup (table_release))) struct table passwd = { 0 };
  __attribute__ ((cleanup (table_release))) struct table groups = { 0 };
  bool groups_loaded = false;
  if (table_read ("/etc/passwd", true, &passwd, err) < 0)
    return -1;
  const struct entry *entry = NULL;
  unsigned long uid = 0;
  if (*user_part == 0)
    {
      for (size_t i = 0; i < passwd.n && !entry; i++)
        if (passwd.e[i].id == 0)
          entry = &passwd.e[i];
    }
  else
    {
      bool is;
      if (numeric (user_part, &is, &uid, err) < 0)
        return -1;
      for (size_t i = 0; i < passwd.n && !entry; i++)
        if (is ? passwd.e[i].id == uid : strcmp (passwd.e[i].name, user_part) == 0)
          entry = &passwd.e[i];
      if (!is && !entry)
        return shim_make_error_code (err, SHIM_CODE_USER_NOT_FOUND, 0,
                                     "unable to find user %s: no matching entries in passwd file", user_part);
      if (!is)
        uid = entry->id;
    }
  unsigned long gid = entry ? entry->gid : 0;
  if (group_part && *group_part && find_group (&groups, &groups_loaded, group_part, &gid, err) < 0)
    return -1;
  gid_t *extra = NULL;
  size_t n_extra = 0;
  /* As runc's GetExecUser: membership groups only when no group was named. */
  if (entry && (group_part == NULL || *group_part == 0))
    {
      if (!groups_loaded)
        {
          if (table_read ("/etc/group", false, &groups, err) < 0)
            return -1;
          groups_loaded = true;
        }
      for (size_t i = 0; i < groups.n; i++)
        if (groups.e[i].id != gid && has_member (groups.e[i].members, entry->name))
          add_gid (&extra, &n_extra, groups.e[i].id);
    }
  if (group_add && *group_add)
    {
      cleanup_free char *list = xstrdup (group_add);
      char *save = NULL;
      for (char *g = strtok_r (list, ",", &save); g; g = strtok_r (NULL, ",", &save))
        {
          unsigned long id;
          if (find_group (&groups, &groups_loaded, g, &id, err) < 0)
            {
              free (extra);
              return -1;
            }
          add_gid (&extra, &n_extra, id);
        }
    }
  p->uid = (uid_t) uid;
  p->gid = (gid_t) gid;
  p->additional_gids = extra;
  p->n_additional_gids = n_extra;
  p->home = xstrdup (entry ? entry->home : "/");
  return 0;
}
