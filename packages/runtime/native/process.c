#include "process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "caps.h"
#include "files.h"
#include "seccomp.h"

static const char *
env_get (char **env, const char *key)
{
  size_t n = strlen (key);
  for (char **e = env; e && *e; e++)
    if (strncmp (*e, key, n) == 0 && (*e)[n] == '=')
      return *e + n + 1;
  return NULL;
}

static bool
is_executable_file (const char *path, int *why)
{
  struct stat st;
  if (stat (path, &st) < 0)
    {
      *why = errno;
      return false;
    }
  if (S_ISDIR (st.st_mode) || !(st.st_mode & 0111))
    {
      *why = EACCES;
      return false;
    }
  return true;
}

int
process_find_executable (const struct spec_process *p, char **out, shim_error_t *err)
{
  const char *name = p->args[0];
  int why = 0;
  if (strchr (name, '/'))
    {
      if (is_executable_file (name, &why))
        {
          *out = xstrdup (name);
          return 0;
        }
      return shim_make_error_code (err, why == EACCES ? SHIM_CODE_EXEC_DENIED : SHIM_CODE_EXEC_NOT_FOUND, why,
                                   "exec: \"%s\"", name);
    }
  const char *path = env_get (p->env, "PATH");
  if (path == NULL)
    path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  cleanup_free char *copy = xstrdup (path);
  char *save = NULL;
  bool denied = false;
  for (char *dir = strtok_r (copy, ":", &save); dir; dir = strtok_r (NULL, ":", &save))
    {
      char *candidate = xasprintf ("%s/%s", *dir ? dir : ".", name);
      if (is_executable_file (candidate, &why))
        {
          *out = candidate;
          return 0;
        }
      denied = denied || why == EACCES;
      free (candidate);
    }
  if (denied)
    return shim_make_error_code (err, SHIM_CODE_EXEC_DENIED, EACCES, "exec: \"%s\"", name);
  return shim_make_error_code (err, SHIM_CODE_EXEC_NOT_FOUND, 0, "exec: \"%s\": executable file not found in $PATH",
                               name);
}

static char *
home_of (uid_t uid)
{
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  if (read_file ("/etc/passwd", &text, NULL, &e) < 0)
    {
      shim_error_release (&e);
      return xstrdup ("/");
    }
  char *save = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      char *f[7] = { 0 };
      int n = 0;
      for (char *p = line; n < 7; n++)
        {
          f[n] = p;
          p = strchr (p, ':');
          if (p == NULL)
            break;
          *p++ = 0;
        }
      if (n >= 5 && f[2] && (uid_t) strtoul (f[2], NULL, 10) == uid && f[5] && *f[5])
        return xstrdup (f[5]);
    }
  return xstrdup ("/");
}

char **
process_environment (const struct spec_process *p)
{
  if (env_get (p->env, "HOME"))
    return p->env;
  char **env = xcalloc (p->n_env + 2, sizeof *env);
  memcpy (env, p->env, p->n_env * sizeof *env);
  cleanup_free char *home = p->home ? xstrdup (p->home) : home_of (p->uid);
  env[p->n_env] = xasprintf ("HOME=%s", home);
  return env;
}

int
process_set_identity (const struct spec_process *p, const struct seccomp_program *seccomp, shim_error_t *err)
{
  /* Without no_new_privs, loading a filter needs CAP_SYS_ADMIN: do it while we still have it. */
  if (!p->no_new_privileges && seccomp_program_load (seccomp, err) < 0)
    return -1;
  if (p->has_caps && caps_drop_bounding (&p->caps, err) < 0)
    return -1;
  if (setgroups (p->n_additional_gids, p->additional_gids) < 0)
    {
      /* A user namespace whose setgroups is denied refuses even an empty list; nothing to drop then. */
      if (!(errno == EPERM && p->n_additional_gids == 0))
        return shim_make_error (err, errno, "setgroups (process.user.additionalGids)");
    }
  if (setresgid (p->gid, p->gid, p->gid) < 0)
    return shim_make_error (err, errno, "setresgid %u (process.user.gid)", p->gid);
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    return shim_make_error (err, errno, "prctl PR_SET_KEEPCAPS");
  if (setresuid (p->uid, p->uid, p->uid) < 0)
    return shim_make_error (err, errno, "setresuid %u (process.user.uid)", p->uid);
  if (p->has_caps && caps_apply (&p->caps, err) < 0)
    return -1;
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    return shim_make_error (err, errno, "prctl PR_SET_KEEPCAPS");
  umask (p->has_umask ? p->umask : 0022);
  if (chdir (p->cwd) < 0)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, errno, "chdir to process.cwd `%s`", p->cwd);
  return 0;
}

int
process_finish_security (const struct spec_process *p, const struct seccomp_program *seccomp, shim_error_t *err)
{
  if (p->no_new_privileges)
    {
      if (prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return shim_make_error (err, errno, "prctl PR_SET_NO_NEW_PRIVS");
      if (seccomp_program_load (seccomp, err) < 0)
        return -1;
    }
  return 0;
}

int
process_exec (const char *path, const struct spec_process *p, char **env, int preserve_fds, shim_error_t *err)
{
  struct sigaction dfl = { .sa_handler = SIG_DFL };
  for (int sig = 1; sig < NSIG; sig++)
    sigaction (sig, &dfl, NULL);
  sigset_t none;
  sigemptyset (&none);
  sigprocmask (SIG_SETMASK, &none, NULL);
  if (prctl (PR_SET_PDEATHSIG, 0, 0, 0, 0) < 0)
    return shim_make_error (err, errno, "clear the parent death signal");
  unsigned int first = 3 + (unsigned) (preserve_fds > 0 ? preserve_fds : 0);
  if (syscall (SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
    {
      for (int fd = (int) first; fd < 1024; fd++)
        fcntl (fd, F_SETFD, FD_CLOEXEC);
    }
  /* Preserved descriptors (--preserve-fds) must survive the exec. */
  for (int fd = 3; fd < (int) first; fd++)
    fcntl (fd, F_SETFD, 0);
  execve (path, p->args, env);
  int saved = errno;
  return shim_make_error_code (err,
                               saved == ENOENT || saved == ENOTDIR ? SHIM_CODE_EXEC_NOT_FOUND : SHIM_CODE_EXEC_DENIED,
                               saved, "exec: \"%s\"", p->args[0]);
}
