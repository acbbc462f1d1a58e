#include "wrap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "files.h"
#include "json.h"
#include "lifecycle.h"
#include "monitor.h"
#include "sync.h"
#include "terminal.h"

/* Where a wrapped container's runtime is and how it is called. */
struct target
{
  const char *runtime;
  const char *root;
  char **args;
  size_t n_args;
  const char *dir; /* our state directory, for the runtime's log */
};

static volatile pid_t forward_to;

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

static void
forward_signal (int sig)
{
  if (forward_to > 0)
    kill (forward_to, sig);
}

/* The last error a runtime wrote to its JSON log (runc's logrus and crun alike). */
static char *
runtime_error_message (const char *log_path)
{
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  if (read_file (log_path, &text, NULL, &e) < 0)
    {
      shim_error_release (&e);
      return NULL;
    }
  char *found = NULL, *save = NULL;
  for (char *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    {
      struct json_value *v = NULL;
      if (json_parse (line, strlen (line), "runtime log", &v, &e) < 0)
        {
          shim_error_release (&e);
          continue;
        }
      const struct json_value *level = json_get (v, "level"), *msg = json_get (v, "msg");
      if (level && level->type == JSON_STRING && msg && msg->type == JSON_STRING
          && (strcmp (level->string.s, "error") == 0 || strcmp (level->string.s, "fatal") == 0))
        {
          free (found);
          found = xstrdup (msg->string.s);
        }
      json_free (v);
    }
  return found;
}

/* Runs the runtime with `args` (NULL-terminated), stdio `in`, `out`, `errfd` (-1: ours) and
   the `pass_fds` descriptors after them (--preserve-fds); the rest of ours it does not get (a
   created container would hold them until it starts). *status gets its exit status; a failure
   to run it at all is an error. With `forward`, the signals a foreground caller gets go on to
   it. *message gets its last logged error, if any. */
static int
runtime_call_passing (const struct target *t, const char *const *args, int in, int out, int errfd, int pass_fds,
                      bool forward, int *status, char **message, shim_error_t *err)
{
  size_t n = 0;
  while (args[n])
    n++;
  cleanup_free char *log_path = xasprintf ("%s/runtime-%d.log", t->dir, getpid ());
  const char **argv = xcalloc (n + t->n_args + 8, sizeof *argv);
  size_t k = 0;
  argv[k++] = t->runtime;
  argv[k++] = "--root";
  argv[k++] = t->root;
  for (size_t i = 0; i < t->n_args; i++)
    argv[k++] = t->args[i];
  argv[k++] = "--log";
  argv[k++] = log_path;
  argv[k++] = "--log-format";
  argv[k++] = "json";
  for (size_t i = 0; i < n; i++)
    argv[k++] = args[i];
  pid_t pid = fork ();
  if (pid < 0)
    {
      free (argv);
      return shim_make_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      if ((in >= 0 && dup2 (in, 0) < 0) || (out >= 0 && dup2 (out, 1) < 0) || (errfd >= 0 && dup2 (errfd, 2) < 0))
        _exit (127);
      syscall (SYS_close_range, 3U + (unsigned) pass_fds, ~0U, 0U);
      execvp (t->runtime, (char *const *) argv);
      _exit (127);
    }
  free (argv);
  struct sigaction sa = { .sa_handler = forward_signal }, old[6];
  static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
  if (forward)
    {
      forward_to = pid;
      for (size_t i = 0; i < 6; i++)
        sigaction (forwarded[i], &sa, &old[i]);
    }
  int ws = 0;
  pid_t r = SHIM_RETRY (waitpid (pid, &ws, 0));
  if (forward)
    {
      forward_to = 0;
      for (size_t i = 0; i < 6; i++)
        sigaction (forwarded[i], &old[i], NULL);
    }
  if (r < 0)
    return shim_make_error (err, errno, "wait for %s", t->runtime);
  *status = WIFEXITED (ws) ? WEXITSTATUS (ws) : 128 + WTERMSIG (ws);
  if (message)
    *message = runtime_error_message (log_path);
  unlink (log_path);
  if (*status == 127 && WIFEXITED (ws) && message && *message == NULL)
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, ENOENT, "cannot run the OCI runtime `%s`", t->runtime);
  return 0;
}

static int
runtime_call (const struct target *t, const char *const *args, int in, int out, int errfd, bool forward, int *status,
              char **message, shim_error_t *err)
{
  return runtime_call_passing (t, args, in, out, errfd, 0, forward, status, message, err);
}

/* Runs a runtime command that must succeed; its failure becomes an error naming it. */
static int
runtime_must (const struct target *t, const char *const *args, int in, int out, int errfd, shim_error_t *err)
{
  int status = 0;
  cleanup_free char *message = NULL;
  if (runtime_call (t, args, in, out, errfd, false, &status, &message, err) < 0)
    return -1;
  if (status != 0)
    return shim_make_error (err, 0, "%s %s: %s", t->runtime, args[0], message ? message : "failed");
  return 0;
}

static void
target_of (const struct container_state *st, struct target *t)
{
  t->runtime = st->oci_runtime;
  t->root = st->oci_runtime_root;
  t->args = st->oci_runtime_args;
  t->n_args = st->n_oci_runtime_args;
  t->dir = st->dir;
}

/* The runtime's own state of the container (its JSON object), or NULL when it has none. */
static struct json_value *
runtime_state (const struct target *t, const char *id, shim_error_t *err)
{
  int fds[2];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    {
      shim_make_error (err, errno, "pipe");
      return NULL;
    }
  const char *args[] = { "state", id, NULL };
  int status = 0;
  cleanup_free char *message = NULL;
  int r = runtime_call (t, args, -1, fds[1], -1, false, &status, &message, err);
  close (fds[1]);
  cleanup_free char *text = NULL;
  size_t len = 0;
  shim_error_t e = NULL;
  if (read_fd (fds[0], "runtime state", &text, &len, &e) < 0)
    shim_error_release (&e);
  close (fds[0]);
  struct json_value *v = NULL;
  if (r < 0 || status != 0 || text == NULL || json_parse (text, len, "runtime state", &v, &e) < 0)
    {
      shim_error_release (&e);
      return NULL;
    }
  return v;
}

int
wrap_state_json (const struct container_state *st, struct strbuf *b, shim_error_t *err)
{
  struct target t;
  target_of (st, &t);
  struct json_value *rs = runtime_state (&t, st->id, err);
  if (*err)
    return -1;
  /* Our record of the exit comes first; while the monitor finishes the log, the container is
     still running, whatever the runtime says. */
  const char *ours = state_status (st);
  const struct json_value *theirs = json_get (rs, "status");
  const char *status = ours;
  if (!st->has_exit && strcmp (ours, STATUS_STOPPED) != 0 && theirs && theirs->type == JSON_STRING
      && strcmp (theirs->string.s, STATUS_STOPPED) != 0)
    status = theirs->string.s;
  bool stopped = strcmp (status, STATUS_STOPPED) == 0;
  strbuf_add (b, "{");
  bool first = true;
  for (size_t i = 0; rs && rs->type == JSON_OBJECT && i < rs->object.len; i++)
    {
      const char *k = rs->object.keys[i];
      if (strcmp (k, "status") == 0 || strcmp (k, "pid") == 0)
        continue;
      if (!first)
        strbuf_add (b, ",");
      first = false;
      json_write_string (b, k, strlen (k));
      strbuf_add (b, ":");
      json_write_value (b, rs->object.values[i]);
    }
  if (rs == NULL)
    {
      strbuf_add (b, "\"ociVersion\":\"1.0.2\",\"id\":");
      json_write_string (b, st->id, strlen (st->id));
      strbuf_add (b, ",\"bundle\":");
      json_write_string (b, st->bundle ? st->bundle : "", st->bundle ? strlen (st->bundle) : 0);
      first = false;
    }
  strbuf_addf (b, "%s\"pid\":%d,\"status\":\"%s\"", first ? "" : ",", stopped ? 0 : st->pid, status);
  strbuf_addf (b, ",\"monitorPid\":%d", st->monitor_pid);
  strbuf_add (b, ",\"ociRuntime\":");
  json_write_string (b, st->oci_runtime, strlen (st->oci_runtime));
  if (st->log_path)
    {
      strbuf_add (b, ",\"logPath\":");
      json_write_string (b, st->log_path, strlen (st->log_path));
    }
  if (st->attach_socket)
    {
      strbuf_add (b, ",\"attachSocket\":");
      json_write_string (b, st->attach_socket, strlen (st->attach_socket));
    }
  if (st->has_exit)
    {
      strbuf_addf (b, ",\"exitCode\":%d", st->exit_code);
      if (st->exit_signal)
        strbuf_addf (b, ",\"exitSignal\":%d", st->exit_signal);
      strbuf_add (b, ",\"finished\":");
      json_write_string (b, st->finished ? st->finished : "", st->finished ? strlen (st->finished) : 0);
      strbuf_addf (b, ",\"oomKilled\":%s", st->oom_killed ? "true" : "false");
    }
  strbuf_add (b, "}");
  json_free (rs);
  return 0;
}

static int
delete_wrapped (const struct container_state *st, const struct target *t, bool force, shim_error_t *err)
{
  const char *status = state_status (st);
  if (!force && (strcmp (status, STATUS_RUNNING) == 0 || strcmp (status, STATUS_PAUSED) == 0))
    return shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot delete container `%s` that is not stopped: %s", st->id,
                                 status);
  const char *args[] = { "delete", force ? "--force" : st->id, force ? st->id : NULL, NULL };
  int rstatus = 0;
  cleanup_free char *message = NULL;
  if (runtime_call (t, args, -1, -1, -1, false, &rstatus, &message, err) < 0)
    return -1;
  /* A runtime that no longer knows the container is fine: ours is what is left to remove. */
  cleanup_free char *theirs = xasprintf ("%s/%s", t->root, st->id);
  if (rstatus != 0 && access (theirs, F_OK) == 0)
    return shim_make_error (err, 0, "%s delete: %s", t->runtime, message ? message : "failed");
  /* Let the monitor record the exit and flush the log before the directory goes. */
  wait_exit (st->monitor_pid, st->monitor_start_time, 5000);
  if (st->attach_socket)
    unlink (st->attach_socket);
  return remove_tree (st->dir, err);
}

int
wrap_command (const struct container_state *st, const char *cmd, char **args, int *exit_code, shim_error_t *err)
{
  struct target t;
  target_of (st, &t);
  *exit_code = 0;
  if (strcmp (cmd, "exec-attach") == 0)
    {
      const char *socket = NULL;
      for (char **a = args; *a && !socket; a++)
        if (strcmp (*a, "--attach-socket") == 0 && a[1])
          socket = a[1];
        else if (strncmp (*a, "--attach-socket=", 16) == 0)
          socket = *a + 16;
      if (socket == NULL)
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "exec: --attach-socket needs a path");
      return wrap_exec_attach (st, args, socket, exit_code, err);
    }
  if (strcmp (cmd, "delete") == 0)
    {
      bool force = false;
      for (char **a = args; *a; a++)
        force = force || strcmp (*a, "--force") == 0 || strcmp (*a, "-f") == 0;
      return delete_wrapped (st, &t, force, err);
    }
  /* What our own containers refuse with a typed error, refused the same way before the runtime
     words it its own way. */
  struct strbuf b = { 0 };
  if (wrap_state_json (st, &b, err) < 0)
    return -1;
  struct json_value *merged = NULL;
  if (json_parse (b.p, b.len, "state", &merged, err) < 0)
    {
      free (b.p);
      return -1;
    }
  free (b.p);
  const char *status = json_get (merged, "status")->string.s;
  const char *refuse = NULL;
  if (strcmp (cmd, "start") == 0 && strcmp (status, STATUS_CREATED) != 0)
    refuse = "start";
  else if ((strcmp (cmd, "kill") == 0 || strcmp (cmd, "update") == 0) && strcmp (status, STATUS_STOPPED) == 0)
    refuse = cmd;
  else if (strcmp (cmd, "pause") == 0 && strcmp (status, STATUS_RUNNING) != 0)
    refuse = "pause";
  else if (strcmp (cmd, "resume") == 0 && strcmp (status, STATUS_PAUSED) != 0)
    refuse = "resume";
  else if (strcmp (cmd, "exec") == 0 && strcmp (status, STATUS_RUNNING) != 0 && strcmp (status, STATUS_CREATED) != 0)
    refuse = "exec in";
  if (refuse)
    {
      shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot %s container `%s`: it is %s", refuse, st->id, status);
      json_free (merged);
      return -1;
    }
  json_free (merged);
  size_t n = 0;
  while (args[n])
    n++;
  const char **full = xcalloc (n + 2, sizeof *full);
  full[0] = cmd;
  for (size_t i = 0; i < n; i++)
    full[i + 1] = args[i];
  /* exec --preserve-fds N hands N of our descriptors after stdio on to the process. */
  int pass_fds = 0;
  for (size_t i = 0; strcmp (cmd, "exec") == 0 && i < n; i++)
    if (strcmp (args[i], "--preserve-fds") == 0 && i + 1 < n)
      pass_fds = atoi (args[i + 1]);
    else if (strncmp (args[i], "--preserve-fds=", 15) == 0)
      pass_fds = atoi (args[i] + 15);
  int status_code = 0;
  cleanup_free char *message = NULL;
  int r = runtime_call_passing (&t, full, -1, -1, -1, pass_fds, strcmp (cmd, "exec") == 0, &status_code, &message, err);
  free (full);
  if (r < 0)
    return -1;
  /* exec exits with the process's status; the runtime's own failure is in its log. */
  if (strcmp (cmd, "exec") == 0 && message == NULL)
    {
      *exit_code = status_code;
      return 0;
    }
  if (status_code != 0)
    return shim_make_error (err, 0, "%s %s: %s", t.runtime, cmd, message ? message : "failed");
  return 0;
}

static int
receive_master (int listen_fd, int *master, shim_error_t *err)
{
  cleanup_close int c = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0)
    return shim_make_error (err, errno, "the runtime sent no pty to the console socket");
  char name[256];
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctrl;
  struct iovec iov = { .iov_base = name, .iov_len = sizeof name };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf };
  if (SHIM_RETRY (recvmsg (c, &mh, MSG_CMSG_CLOEXEC)) < 0)
    return shim_make_error (err, errno, "receive the pty master");
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
  if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
    return shim_make_error (err, EPROTO, "the runtime sent no pty master");
  memcpy (master, CMSG_DATA (cm), sizeof *master);
  return 0;
}

int
wrap_exec_attach (const struct container_state *st, char **args, const char *attach_socket, int *exit_code,
                  shim_error_t *err)
{
  struct target t;
  target_of (st, &t);
  *exit_code = 0;
  const char *status = state_status (st);
  if (strcmp (status, STATUS_RUNNING) != 0)
    return shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot exec in container `%s`: it is %s", st->id, status);
  size_t n = 0;
  bool tty = false;
  const char *process_path = NULL;
  for (; args[n]; n++)
    {
      tty = tty || strcmp (args[n], "-t") == 0 || strcmp (args[n], "--tty") == 0;
      if ((strcmp (args[n], "-p") == 0 || strcmp (args[n], "--process") == 0) && args[n + 1])
        process_path = args[n + 1];
    }
  if (!tty && process_path)
    {
      cleanup_free char *text = NULL;
      size_t len;
      struct json_value *doc = NULL;
      shim_error_t e = NULL;
      if (read_file (process_path, &text, &len, &e) == 0 && json_parse (text, len, process_path, &doc, &e) == 0)
        {
          const struct json_value *term = json_get (doc, "terminal");
          tty = term && term->type == JSON_BOOL && term->boolean;
        }
      shim_error_release (&e);
      json_free (doc);
    }
  cleanup_free char *pid_file = xasprintf ("%s/exec-%d.pid", st->dir, getpid ());
  cleanup_free char *console = xasprintf ("%s/exec-%d.sock", st->dir, getpid ());
  /* The runtime's own options, less ours: it detaches and we adopt the process it starts. */
  const char **full = xcalloc (n + 8, sizeof *full);
  size_t k = 0;
  full[k++] = "exec";
  full[k++] = "--detach";
  full[k++] = "--pid-file";
  full[k++] = pid_file;
  if (tty)
    {
      full[k++] = "--console-socket";
      full[k++] = console;
    }
  /* Options up to the container id (the command after it is the process's own). */
  static const char *const with_value[] = { "-p", "--process", "--console-socket", "--pid-file", "--cwd", "-e",
                                            "--env", "-u", "--user", "-c", "--cap", "-g", "--additional-gids",
                                            "--preserve-fds", NULL };
  size_t i = 0;
  while (i < n && args[i][0] == '-' && strcmp (args[i], "--") != 0)
    {
      bool value = false;
      for (size_t j = 0; with_value[j]; j++)
        value = value || strcmp (args[i], with_value[j]) == 0;
      if (strcmp (args[i], "--attach-socket") == 0)
        i += 2;
      else if (strncmp (args[i], "--attach-socket=", 16) == 0 || strcmp (args[i], "-d") == 0
               || strcmp (args[i], "--detach") == 0)
        i++;
      else
        {
          full[k++] = args[i++];
          if (value && i < n)
            full[k++] = args[i++];
        }
    }
  while (i < n)
    full[k++] = args[i++];
  full[k] = NULL;
  int console_fd = -1, listen_fd = -1, first_client = -1, signal_fd = -1, master = -1;
  int child_stdio[3] = { -1, -1, -1 }, parent_stdio[3] = { -1, -1, -1 };
  int ret = -1, ws = 0;
  pid_t pid = 0;
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    {
      shim_make_error (err, errno, "become a subreaper");
      goto out;
    }
  if (tty ? monitor_listen (console, &console_fd, err) < 0 : 0)
    goto out;
  for (int i = 0; !tty && i < 3; i++)
    {
      int fds[2];
      if (pipe2 (fds, O_CLOEXEC) < 0)
        {
          shim_make_error (err, errno, "pipe");
          goto out;
        }
      child_stdio[i] = i == 0 ? fds[0] : fds[1];
      parent_stdio[i] = i == 0 ? fds[1] : fds[0];
    }
  if (monitor_listen (attach_socket, &listen_fd, err) < 0 || monitor_signalfd (true, false, &signal_fd, err) < 0)
    goto out;
  {
    /* Blocking: the process starts with its first client, so nothing it writes is lost. */
    int fl = fcntl (listen_fd, F_GETFL);
    fcntl (listen_fd, F_SETFL, fl & ~O_NONBLOCK);
    first_client = SHIM_RETRY (accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC));
    fcntl (listen_fd, F_SETFL, fl);
    if (first_client < 0)
      {
        shim_make_error (err, errno, "accept on the attach socket `%s`", attach_socket);
        goto out;
      }
  }
  if (runtime_must (&t, full, child_stdio[0], child_stdio[1], child_stdio[2], err) < 0)
    goto out;
  for (int i = 0; i < 3; i++)
    close_fd (&child_stdio[i]);
  {
    cleanup_free char *pid_text = NULL;
    if (read_file (pid_file, &pid_text, NULL, err) < 0)
      goto out;
    pid = (pid_t) atoi (pid_text);
  }
  if (tty && receive_master (console_fd, &master, err) < 0)
    goto out;
  {
    struct monitor_options mo = { .pid = pid,
                                  .signal_fd = signal_fd,
                                  .forward_signals = true,
                                  .sync_fd = -1,
                                  .fifo_fd = -1,
                                  .out_fd = tty ? master : parent_stdio[1],
                                  .err_fd = tty ? -1 : parent_stdio[2],
                                  .in_fd = tty ? master : parent_stdio[0],
                                  .tty = tty,
                                  .log_fd = -1,
                                  .listen_fd = listen_fd,
                                  .first_client_fd = first_client };
    first_client = -1;
    master = parent_stdio[0] = parent_stdio[1] = parent_stdio[2] = -1;
    if (monitor_run (&mo, &ws, err) < 0)
      goto out;
    *exit_code = WIFEXITED (ws) ? WEXITSTATUS (ws) : 128 + WTERMSIG (ws);
    ret = 0;
  }
out:
  if (ret < 0 && pid > 0)
    kill (pid, SIGKILL);
  for (int i = 0; i < 3; i++)
    {
      close_fd (&child_stdio[i]);
      close_fd (&parent_stdio[i]);
    }
  close_fd (&console_fd);
  close_fd (&first_client);
  close_fd (&master);
  if (listen_fd >= 0)
    unlink (attach_socket);
  unlink (console);
  unlink (pid_file);
  free (full);
  return ret;
}

/* What the monitor of a wrapped container holds while it starts it. */
struct wrapped
{
  const struct container_options *o;
  struct target t;
  char *state_dir;
  bool terminal, monitored;
  int stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w;
  int console_fd;
  char *console_path;
  int master, log_fd, listen_fd, signal_fd;
  pid_t pid;
  bool runtime_created;
  struct cgroup *cgroup; /* for the OOM record only */
};

/* The cgroup the container's init is in, from /proc (v1: its memory cgroup's path, which
   runc and crun give every controller), so that the exit can say whether it was an OOM kill. */
static struct cgroup *
cgroup_of (pid_t pid)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/cgroup", pid);
  cleanup_free char *text = NULL;
  shim_error_t e = NULL;
  struct cgroup_env env;
  struct cgroup *cg = NULL;
  if (read_file (path, &text, NULL, &e) < 0 || cgroup_env_load (&env, &e) < 0)
    {
      shim_error_release (&e);
      return NULL;
    }
  const char *want = env.layout == CGROUP_LAYOUT_V2 ? "0::" : ":memory:";
  char *line = strstr (text, want);
  if (line)
    {
      line += strlen (want);
      line[strcspn (line, "\n")] = 0;
      if (cgroup_resolve (&env, line, "x", &cg, &e) < 0)
        shim_error_release (&e);
    }
  cgroup_env_release (&env);
  return cg;
}

static int
setup_io (struct wrapped *W, bool foreground, shim_error_t *err)
{
  const struct container_options *o = W->o;
  W->monitored = (o->log_path || o->attach_socket || foreground) && !o->console_socket;
  if (W->monitored && W->terminal)
    {
      W->console_path = xasprintf ("%s/console.sock", W->state_dir);
      if (monitor_listen (W->console_path, &W->console_fd, err) < 0)
        return -1;
    }
  else if (W->monitored)
    {
      int fds[2];
      if (pipe2 (fds, O_CLOEXEC) < 0)
        return shim_make_error (err, errno, "pipe");
      W->stdout_r = fds[0];
      W->stdout_w = fds[1];
      if (pipe2 (fds, O_CLOEXEC) < 0)
        return shim_make_error (err, errno, "pipe");
      W->stderr_r = fds[0];
      W->stderr_w = fds[1];
      if (o->open_stdin || foreground)
        {
          if (pipe2 (fds, O_CLOEXEC) < 0)
            return shim_make_error (err, errno, "pipe");
          W->stdin_r = fds[0];
          W->stdin_w = fds[1];
        }
      else if ((W->stdin_r = open ("/dev/null", O_RDONLY | O_CLOEXEC)) < 0)
        return shim_make_error (err, errno, "open /dev/null");
    }
  if (o->log_path && (W->log_fd = open (o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0)
    return shim_make_error (err, errno, "open the log `%s`", o->log_path);
  if (o->attach_socket && monitor_listen (o->attach_socket, &W->listen_fd, err) < 0)
    return -1;
  return 0;
}

static int
write_wrapped_state (struct wrapped *W, shim_error_t *err)
{
  struct container_state st = { 0 };
  struct strbuf created = { 0 };
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  format_rfc3339 (&created, &now);
  st.dir = W->state_dir;
  st.id = (char *) W->o->id;
  st.pid = W->pid;
  st.start_time = process_start_time (W->pid, NULL);
  st.bundle = (char *) W->o->bundle;
  st.created = created.p;
  st.owner = "";
  st.monitor_pid = getpid ();
  st.monitor_start_time = process_start_time (getpid (), NULL);
  st.log_path = (char *) W->o->log_path;
  st.attach_socket = (char *) W->o->attach_socket;
  st.oci_runtime = (char *) W->t.runtime;
  st.oci_runtime_root = (char *) W->t.root;
  st.oci_runtime_args = W->t.args;
  st.n_oci_runtime_args = W->t.n_args;
  int r = state_write (&st, NULL, err);
  free (created.p);
  return r;
}

/* In the monitor: from `<runtime> create` to a process running (run) or waiting (create). */
static int
launch (struct wrapped *W, bool foreground, shim_error_t *err)
{
  const struct container_options *o = W->o;
  /* The container's init is the runtime's child: once the runtime exits, it becomes ours. */
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return shim_make_error (err, errno, "become a subreaper");
  if (setup_io (W, foreground, err) < 0)
    return -1;
  if (monitor_signalfd (foreground, foreground && W->terminal && isatty (0), &W->signal_fd, err) < 0)
    return -1;
  cleanup_free char *pid_file = xasprintf ("%s/pid", W->state_dir);
  char preserve[16];
  snprintf (preserve, sizeof preserve, "%d", o->preserve_fds);
  const char *args[16];
  size_t k = 0;
  args[k++] = "create";
  args[k++] = "--bundle";
  args[k++] = o->bundle;
  args[k++] = "--pid-file";
  args[k++] = pid_file;
  if (o->console_socket || W->console_path)
    {
      args[k++] = "--console-socket";
      args[k++] = o->console_socket ? o->console_socket : W->console_path;
    }
  if (o->no_pivot)
    args[k++] = "--no-pivot";
  if (o->preserve_fds > 0)
    {
      args[k++] = "--preserve-fds";
      args[k++] = preserve;
    }
  args[k++] = o->id;
  args[k] = NULL;
  int status = 0;
  cleanup_free char *message = NULL;
  if (runtime_call_passing (&W->t, args, W->stdin_r, W->stdout_w, W->stderr_w, o->preserve_fds, false, &status, &message,
                            err)
      < 0)
    return -1;
  if (status != 0)
    return shim_make_error (err, 0, "%s create: %s", W->t.runtime, message ? message : "failed");
  W->runtime_created = true;
  close_fd (&W->stdin_r);
  close_fd (&W->stdout_w);
  close_fd (&W->stderr_w);
  cleanup_free char *pid_text = NULL;
  if (read_file (pid_file, &pid_text, NULL, err) < 0)
    return shim_error_wrap (err, "%s create wrote no pid", W->t.runtime);
  W->pid = (pid_t) atoi (pid_text);
  if (W->pid <= 0)
    return shim_make_error (err, EINVAL, "%s create wrote the pid `%s`", W->t.runtime, pid_text);
  if (W->console_fd >= 0)
    {
      if (receive_master (W->console_fd, &W->master, err) < 0)
        return -1;
      close_fd (&W->console_fd);
      unlink (W->console_path);
      /* Sized before the process starts: the monitor only sizes it once the process runs. */
      if (foreground)
        terminal_copy_size (0, W->master);
    }
  W->cgroup = cgroup_of (W->pid);
  if (write_wrapped_state (W, err) < 0)
    return -1;
  if (!o->create_only)
    {
      const char *start[] = { "start", o->id, NULL };
      if (runtime_must (&W->t, start, -1, -1, -1, err) < 0)
        return -1;
    }
  return 0;
}

static void
cleanup (struct wrapped *W)
{
  if (W->runtime_created)
    {
      const char *args[] = { "delete", "--force", W->o->id, NULL };
      shim_error_t e = NULL;
      int status;
      if (runtime_call (&W->t, args, -1, -1, -1, false, &status, NULL, &e) < 0)
        shim_error_release (&e);
    }
  shim_error_t e = NULL;
  if (remove_tree (W->state_dir, &e) < 0)
    shim_error_release (&e);
  if (W->o->attach_socket && W->listen_fd >= 0)
    unlink (W->o->attach_socket);
}

static void
record_exit (void *ctx, int wait_status)
{
  struct wrapped *W = ctx;
  shim_error_t e = NULL;
  bool oom = W->cgroup && cgroup_oom_killed (W->cgroup);
  if (state_write_exit (W->state_dir, NULL, wait_status, oom, &e) < 0)
    shim_error_release (&e);
}

static int
monitor (struct wrapped *W, bool local, int *wait_status, shim_error_t *err)
{
  bool tty = W->master >= 0;
  struct monitor_options mo = {
    .pid = W->pid,
    .signal_fd = W->signal_fd,
    .sync_fd = -1,
    .fifo_fd = -1,
    .out_fd = tty ? W->master : W->stdout_r,
    .err_fd = tty ? -1 : W->stderr_r,
    .in_fd = tty ? W->master : W->stdin_w,
    .tty = tty,
    .log_fd = W->log_fd,
    .listen_fd = W->listen_fd,
  };
  container_monitor_options (&mo, W->o, local, W->monitored, record_exit, W);
  return monitor_run_attached (&mo, W->master, wait_status, err);
}


static int
read_terminal (const char *bundle, bool *terminal, shim_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/config.json", bundle);
  cleanup_free char *text = NULL;
  size_t len;
  struct json_value *doc = NULL;
  if (read_file (path, &text, &len, err) < 0)
    {
      (*err)->code = SHIM_CODE_INVALID_SPEC;
      return -1;
    }
  if (json_parse (text, len, "config.json", &doc, err) < 0)
    {
      (*err)->code = SHIM_CODE_INVALID_SPEC;
      return -1;
    }
  const struct json_value *t = json_get (json_get (doc, "process"), "terminal");
  *terminal = t && t->type == JSON_BOOL && t->boolean;
  json_free (doc);
  return 0;
}

int
wrap_start (const struct container_options *o, int *exit_code, shim_error_t *err)
{
  struct wrapped W = { .o = o, .stdin_r = -1, .stdin_w = -1, .stdout_r = -1, .stdout_w = -1, .stderr_r = -1,
                       .stderr_w = -1, .console_fd = -1, .master = -1, .log_fd = -1, .listen_fd = -1, .signal_fd = -1 };
  *exit_code = 0;
  W.t.runtime = o->oci_runtime;
  W.t.root = o->oci_runtime_root;
  W.t.args = o->oci_runtime_args;
  W.t.n_args = o->n_oci_runtime_args;
  if (state_check_id (o->id, err) < 0 || read_terminal (o->bundle, &W.terminal, err) < 0)
    return -1;
  bool detached = o->create_only || o->detach;
  if (W.terminal && detached && !o->console_socket && !o->attach_socket)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0,
                                 "cannot allocate a tty for a detached container without --console-socket or "
                                 "--attach-socket");
  if (state_create_dir (o->root, o->id, err) < 0)
    return -1;
  W.state_dir = state_dir_of (o->root, o->id);
  W.t.dir = W.state_dir;

  if (!detached)
    {
      signal (SIGPIPE, SIG_IGN);
      int status = 0;
      if (launch (&W, true, err) < 0 || (o->pid_file && write_pid_file (o->pid_file, W.pid, err) < 0)
          || monitor (&W, true, &status, err) < 0)
        {
          cleanup (&W);
          return -1;
        }
      *exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
      if (!o->keep)
        cleanup (&W);
      return 0;
    }

  /* Detached: the monitor stays behind and reports once the container is created (or not). */
  int report[2];
  if (pipe2 (report, O_CLOEXEC) < 0)
    {
      cleanup (&W);
      return shim_make_error (err, errno, "pipe");
    }
  pid_t child = fork ();
  if (child < 0)
    {
      cleanup (&W);
      return shim_make_error (err, errno, "fork the monitor");
    }
  if (child > 0)
    {
      close (report[1]);
      struct sync_msg m;
      ssize_t n = SHIM_RETRY (read (report[0], &m, sizeof m));
      close (report[0]);
      int ws;
      if (n < (ssize_t) offsetof (struct sync_msg, msg))
        return shim_make_error (err, EPIPE, "the monitor of `%s` exited during create", o->id);
      if (m.type == SYNC_ERROR)
        {
          SHIM_RETRY (waitpid (child, &ws, 0));
          return shim_make_error_code (err, m.code, m.status, "%s", m.msg);
        }
      if (o->pid_file && write_pid_file (o->pid_file, m.pid, err) < 0)
        return -1;
      return 0;
    }
  close (report[0]);
  setsid ();
  struct sync_msg m;
  memset (&m, 0, sizeof m);
  if (launch (&W, false, err) < 0)
    {
      m.type = SYNC_ERROR;
      m.status = (*err)->status;
      m.code = (*err)->code;
      snprintf (m.msg, sizeof m.msg, "%s", (*err)->msg);
      cleanup (&W);
      if (write (report[1], &m, sizeof m) < 0)
        _exit (1);
      _exit (1);
    }
  m.type = SYNC_READY;
  m.pid = W.pid;
  if (write (report[1], &m, sizeof m) < 0)
    _exit (1);
  close (report[1]);
  shim_log_close ();
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0)
    {
      dup2 (null, 0);
      dup2 (null, 1);
      dup2 (null, 2);
      close (null);
    }
  {
    int keep[] = { W.stdout_r, W.stderr_r, W.stdin_w, W.master, W.log_fd, W.listen_fd, W.signal_fd };
    close_fds_except (keep, sizeof keep / sizeof keep[0], 3);
  }
  int status = 0;
  shim_error_t e = NULL;
  if (monitor (&W, false, &status, &e) < 0)
    shim_error_release (&e);
  if (o->attach_socket)
    unlink (o->attach_socket);
  _exit (0);
}
