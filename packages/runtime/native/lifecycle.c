#include "lifecycle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "container.h"
#include "files.h"
#include "json.h"
#include "spec.h"
#include "state.h"
#include "wrap.h"

static const struct
{
  const char *name;
  int sig;
} signals[] = {
  { "HUP", SIGHUP },       { "INT", SIGINT },       { "QUIT", SIGQUIT },   { "ILL", SIGILL },     { "TRAP", SIGTRAP },
  { "ABRT", SIGABRT },     { "IOT", SIGIOT },       { "BUS", SIGBUS },     { "FPE", SIGFPE },     { "KILL", SIGKILL },
  { "USR1", SIGUSR1 },     { "SEGV", SIGSEGV },     { "USR2", SIGUSR2 },   { "PIPE", SIGPIPE },   { "ALRM", SIGALRM },
  { "TERM", SIGTERM },     { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD },   { "CONT", SIGCONT },   { "STOP", SIGSTOP },
  { "TSTP", SIGTSTP },     { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU },   { "URG", SIGURG },     { "XCPU", SIGXCPU },
  { "XFSZ", SIGXFSZ },     { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF },   { "WINCH", SIGWINCH }, { "IO", SIGIO },
  { "POLL", SIGPOLL },     { "PWR", SIGPWR },       { "SYS", SIGSYS },
};

int
signal_from_name (const char *name)
{
  char *end;
  long n = strtol (name, &end, 10);
  if (*name && *end == 0)
    return n > 0 && n < NSIG ? (int) n : -1;
  if (strncasecmp (name, "SIG", 3) == 0)
    name += 3;
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
    if (strcasecmp (name, signals[i].name) == 0)
      return signals[i].sig;
  if (strncasecmp (name, "RTMIN", 5) == 0)
    {
      int off = name[5] == '+' ? atoi (name + 6) : 0;
      return SIGRTMIN + off <= SIGRTMAX ? SIGRTMIN + off : -1;
    }
  return -1;
}

static void
print_pretty (const char *json, size_t len)
{
  /* Re-indent compact JSON with two spaces, as runc's MarshalIndent prints it. */
  struct strbuf b = { 0 };
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < len; i++)
    {
      char c = json[i];
      if (in_string)
        {
          strbuf_addn (&b, &c, 1);
          if (c == '\\' && i + 1 < len)
            strbuf_addn (&b, &json[++i], 1);
          else if (c == '"')
            in_string = false;
          continue;
        }
      switch (c)
        {
        case '"':
          in_string = true;
          strbuf_addn (&b, &c, 1);
          break;
        case '{':
        case '[':
          strbuf_addn (&b, &c, 1);
          if (i + 1 < len && (json[i + 1] == '}' || json[i + 1] == ']'))
            {
              strbuf_addn (&b, &json[++i], 1);
              break;
            }
          depth++;
          strbuf_addf (&b, "\n%*s", depth * 2, "");
          break;
        case '}':
        case ']':
          depth--;
          strbuf_addf (&b, "\n%*s", depth * 2, "");
          strbuf_addn (&b, &c, 1);
          break;
        case ',':
          strbuf_addf (&b, ",\n%*s", depth * 2, "");
          break;
        case ':':
          strbuf_add (&b, ": ");
          break;
        default:
          strbuf_addn (&b, &c, 1);
        }
    }
  strbuf_add (&b, "\n");
  fwrite (b.p, 1, b.len, stdout);
  free (b.p);
}

int
command_state (const char *root, const char *id, shim_error_t *err)
{
  struct container_state *st;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  struct strbuf b = { 0 };
  int r = 0;
  if (st->oci_runtime)
    r = wrap_state_json (st, &b, err);
  else
    state_write_json (&b, st);
  if (r == 0)
    print_pretty (b.p, b.len);
  free (b.p);
  state_free (st);
  return r;
}

static int
pidfd_open_checked (const struct container_state *st, pid_t pid, unsigned long long start)
{
  int fd = (int) syscall (SYS_pidfd_open, pid, 0);
  if (fd < 0)
    return -1;
  /* Checked after opening: the pidfd pins the process, so the pid cannot be recycled under it. */
  char pstate;
  if (start && process_start_time (pid, &pstate) != start)
    {
      close (fd);
      errno = ESRCH;
      return -1;
    }
  (void) st;
  return fd;
}

int
command_kill (const char *root, const char *id, const char *signame, bool all, shim_error_t *err)
{
  int sig = signal_from_name (signame ? signame : "TERM");
  if (sig < 0)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "unknown signal `%s`", signame);
  struct container_state *st;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  const char *status = state_status (st);
  int ret = 0;
  if (strcmp (status, STATUS_STOPPED) == 0)
    ret = shim_make_error_code (err, SHIM_CODE_STATE, ESRCH, "container `%s` is not running", id);
  else if (all && st->cgroup)
    ret = cgroup_signal_all (st->cgroup, sig, err);
  else
    {
      cleanup_close int pfd = pidfd_open_checked (st, st->pid, st->start_time);
      if (pfd < 0 || syscall (SYS_pidfd_send_signal, pfd, sig, NULL, 0) < 0)
        {
          if (errno == ESRCH)
            ret = shim_make_error_code (err, SHIM_CODE_STATE, ESRCH, "container `%s` is not running", id);
          else
            ret = shim_make_error (err, errno, "signal %d to container `%s`", sig, id);
        }
    }
  state_free (st);
  return ret;
}

bool
wait_exit (pid_t pid, unsigned long long start, int timeout_ms)
{
  if (pid <= 0)
    return true;
  int fd = pidfd_open_checked (NULL, pid, start);
  if (fd < 0)
    return true;
  struct pollfd p = { .fd = fd, .events = POLLIN };
  int r = SHIM_RETRY (poll (&p, 1, timeout_ms));
  close (fd);
  return r > 0;
}

int
command_delete (const char *root, const char *id, bool force, shim_error_t *err)
{
  struct container_state *st;
  if (state_load (root, id, &st, err) < 0)
    {
      if ((*err)->code != SHIM_CODE_NOT_FOUND)
        return -1;
      /* A directory without state.json is what an interrupted create leaves: clean it. */
      cleanup_free char *dir = state_dir_of (root, id);
      shim_error_t e = NULL;
      bool existed = access (dir, F_OK) == 0;
      if (existed && remove_tree (dir, &e) < 0)
        shim_error_release (&e);
      if (force || existed)
        {
          shim_error_release (err);
          return 0;
        }
      return -1;
    }
  const char *status = state_status (st);
  if ((strcmp (status, STATUS_RUNNING) == 0 || strcmp (status, STATUS_PAUSED) == 0) && !force)
    {
      shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot delete container `%s` that is not stopped: %s", id, status);
      state_free (st);
      return -1;
    }
  if (strcmp (status, STATUS_STOPPED) != 0)
    {
      shim_error_t e = NULL;
      if (st->cgroup && cgroup_signal_all (st->cgroup, SIGKILL, &e) < 0)
        shim_error_release (&e);
      cleanup_close int pfd = pidfd_open_checked (st, st->pid, st->start_time);
      if (pfd >= 0)
        syscall (SYS_pidfd_send_signal, pfd, SIGKILL, NULL, 0);
      /* A frozen process cannot die until it is thawed. */
      if (strcmp (status, STATUS_PAUSED) == 0 && cgroup_freeze (st->cgroup, false, &e) < 0)
        shim_error_release (&e);
      if (!wait_exit (st->pid, st->start_time, 10000))
        {
          shim_make_error (err, ETIMEDOUT, "container `%s` did not exit after SIGKILL", id);
          state_free (st);
          return -1;
        }
    }
  /* Let the monitor record the exit and flush the log before the directory goes. */
  const struct json_value *mst = json_get (st->doc, "monitorStartTime");
  wait_exit (st->monitor_pid, mst && mst->type == JSON_NUMBER ? mst->number.magnitude : 0, 5000);
  shim_error_t e = NULL;
  cleanup_free char *cfg_path = xasprintf ("%s/config.json", st->dir);
  cleanup_free char *text = NULL;
  size_t len;
  struct spec *spec = NULL;
  if (read_file (cfg_path, &text, &len, &e) == 0 && spec_parse (text, len, "config.json", st->bundle, &spec, &e) == 0
      && spec->n_hooks[HOOK_POSTSTOP])
    {
      struct strbuf b = { 0 };
      state_write_json (&b, st);
      if (hooks_run (spec, HOOK_POSTSTOP, b.p, &e) < 0)
        {
          shim_log_error (e);
          shim_error_release (&e);
        }
      free (b.p);
    }
  shim_error_release (&e);
  int ret = 0;
  if (st->cgroup && cgroup_destroy (st->cgroup, err) < 0)
    ret = -1;
  if (st->attach_socket)
    unlink (st->attach_socket);
  if (ret == 0 && remove_tree (st->dir, err) < 0)
    ret = -1;
  state_free (st);
  return ret;
}

int
command_pause (const char *root, const char *id, bool pause, shim_error_t *err)
{
  struct container_state *st;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  const char *status = state_status (st);
  const char *want = pause ? STATUS_RUNNING : STATUS_PAUSED;
  int ret;
  if (strcmp (status, want) != 0)
    ret = shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot %s container `%s`: it is %s", pause ? "pause" : "resume",
                                id, status);
  else if (st->cgroup == NULL)
    ret = shim_make_error (err, ENOTSUP, "container `%s` has no cgroup to freeze", id);
  else
    ret = cgroup_freeze (st->cgroup, pause, err);
  state_free (st);
  return ret;
}

int
command_list (const char *root, bool json, bool quiet, shim_error_t *err)
{
  DIR *d = opendir (root);
  struct container_state **all = NULL;
  size_t n = 0;
  if (d)
    {
      struct dirent *de;
      while ((de = readdir (d)) != NULL)
        {
          if (de->d_name[0] == '.')
            continue;
          struct container_state *st;
          shim_error_t e = NULL;
          if (state_load (root, de->d_name, &st, &e) < 0)
            {
              shim_error_release (&e);
              continue;
            }
          all = xrealloc (all, (n + 1) * sizeof *all);
          all[n++] = st;
        }
      closedir (d);
    }
  else if (errno != ENOENT)
    return shim_make_error (err, errno, "open the state root `%s`", root);
  struct strbuf b = { 0 };
  if (quiet)
    for (size_t i = 0; i < n; i++)
      strbuf_addf (&b, "%s\n", all[i]->id);
  else if (json)
    {
      strbuf_add (&b, "[");
      for (size_t i = 0; i < n; i++)
        {
          if (i)
            strbuf_add (&b, ",");
          shim_error_t e = NULL;
          if (all[i]->oci_runtime && wrap_state_json (all[i], &b, &e) < 0)
            shim_error_release (&e);
          else if (!all[i]->oci_runtime)
            state_write_json (&b, all[i]);
        }
      strbuf_add (&b, "]\n");
    }
  else
    {
      size_t w_id = 2, w_bundle = 6;
      for (size_t i = 0; i < n; i++)
        {
          if (strlen (all[i]->id) > w_id)
            w_id = strlen (all[i]->id);
          if (all[i]->bundle && strlen (all[i]->bundle) > w_bundle)
            w_bundle = strlen (all[i]->bundle);
        }
      strbuf_addf (&b, "%-*s   %-10s %-10s %-*s   %-30s   %s\n", (int) w_id, "ID", "PID", "STATUS", (int) w_bundle, "BUNDLE",
                   "CREATED", "OWNER");
      for (size_t i = 0; i < n; i++)
        {
          const char *status = state_status (all[i]);
          strbuf_addf (&b, "%-*s   %-10d %-10s %-*s   %-30s   %s\n", (int) w_id, all[i]->id,
                       strcmp (status, STATUS_STOPPED) == 0 ? 0 : all[i]->pid, status, (int) w_bundle,
                       all[i]->bundle ? all[i]->bundle : "", all[i]->created ? all[i]->created : "",
                       all[i]->owner && *all[i]->owner ? all[i]->owner : "root");
        }
    }
  fwrite (b.p ? b.p : "", 1, b.len, stdout);
  free (b.p);
  for (size_t i = 0; i < n; i++)
    state_free (all[i]);
  free (all);
  return 0;
}

int
command_ps (const char *root, const char *id, bool json, char **ps_args, shim_error_t *err)
{
  struct container_state *st;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  cleanup_free pid_t *pids = NULL;
  size_t n = 0;
  if (st->cgroup && cgroup_pids (st->cgroup, &pids, &n, err) < 0)
    return -1;
  if (json)
    {
      struct strbuf b = { 0 };
      strbuf_add (&b, "[");
      for (size_t i = 0; i < n; i++)
        strbuf_addf (&b, "%s%d", i ? "," : "", pids[i]);
      strbuf_add (&b, "]\n");
      fwrite (b.p, 1, b.len, stdout);
      free (b.p);
      return 0;
    }
  /* Like runc: run the host's ps and keep the header and the lines of the container's pids. */
  int fds[2];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return shim_make_error (err, errno, "pipe");
  pid_t child = fork ();
  if (child < 0)
    return shim_make_error (err, errno, "fork");
  if (child == 0)
    {
      dup2 (fds[1], 1);
      size_t argc = 0;
      while (ps_args && ps_args[argc])
        argc++;
      char **argv = xcalloc (argc + 3, sizeof *argv);
      argv[0] = "ps";
      if (argc == 0)
        argv[1] = "-ef";
      for (size_t i = 0; i < argc; i++)
        argv[1 + i] = ps_args[i];
      execvp ("ps", argv);
      _exit (127);
    }
  close (fds[1]);
  struct strbuf out = { 0 };
  char buf[8192];
  ssize_t r;
  while ((r = SHIM_RETRY (read (fds[0], buf, sizeof buf))) > 0)
    strbuf_addn (&out, buf, (size_t) r);
  close (fds[0]);
  int status;
  SHIM_RETRY (waitpid (child, &status, 0));
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    return shim_make_error (err, 0, "ps failed (status %d)", WIFEXITED (status) ? WEXITSTATUS (status) : -1);
  char *save = NULL;
  char *header = strtok_r (out.p ? out.p : xstrdup (""), "\n", &save);
  if (header == NULL)
    return 0;
  /* The PID column: its position among the header's words. */
  int column = -1, k = 0;
  cleanup_free char *hcopy = xstrdup (header);
  char *hs = NULL;
  for (char *w = strtok_r (hcopy, " \t", &hs); w; w = strtok_r (NULL, " \t", &hs), k++)
    if (strcmp (w, "PID") == 0)
      column = k;
  if (column < 0)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "ps output has no PID column");
  printf ("%s\n", header);
  for (char *line = strtok_r (NULL, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      cleanup_free char *lcopy = xstrdup (line);
      char *ls = NULL, *w = strtok_r (lcopy, " \t", &ls);
      for (int i = 0; i < column && w; i++)
        w = strtok_r (NULL, " \t", &ls);
      if (w == NULL)
        continue;
      pid_t pid = (pid_t) atoi (w);
      for (size_t i = 0; i < n; i++)
        if (pids[i] == pid)
          {
            printf ("%s\n", line);
            break;
          }
    }
  free (out.p);
  return 0;
}
