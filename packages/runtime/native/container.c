#include "container.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "cgroup.h"
#include "files.h"
#include "monitor.h"
#include "mounts.h"
#include "namespaces.h"
#include "process.h"
#include "seccomp.h"
#include "spec.h"
#include "state.h"
#include "sync.h"
#include "terminal.h"
#include "user.h"
#include "wrap.h"

/* What the parent and the container's init share: set up before the clone, read by both. */
struct launch
{
  const struct container_options *o;
  struct spec *spec;
  struct cgroup *cgroup;
  struct cgroup_join join;
  char *state_dir;
  bool state_dir_created;
  int sync_parent, sync_child;
  /* stdio of the process: -1 means inherit ours */
  int stdin_r, stdin_w, stdout_r, stdout_w, stderr_r, stderr_w;
  int master; /* pty master, once received */
  int fifo_fd;
  char *fifo_path;
  int log_fd, listen_fd, signal_fd;
  pid_t pid;
  bool monitored; /* our loop owns the process's stdio */
  struct seccomp_program seccomp; /* compiled before the clone, loaded by the init */
};

static void
close_fd (int *fd)
{
  if (*fd >= 0)
    close (*fd);
  *fd = -1;
}

/* The container's init, in its new namespaces. Never returns. */
static void __attribute__ ((noreturn)) container_init (struct launch *L)
{
  shim_error_t err = NULL;
  const struct spec *s = L->spec;
  const struct spec_process *p = s->process;
  int sync = L->sync_child;
  cleanup_free char *exe = NULL;
  char **env;

  /* Dies with the runtime until it execs: nothing half-built outlives a failed create. */
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (cgroup_join_self (&L->join, &err) < 0 || sync_send (sync, SYNC_JOINED, 0, &err) < 0)
    goto fail;
  {
    /* Only what the process is meant to have: a created container may wait long for `start`. */
    int keep[] = { sync, L->stdin_r, L->stdout_w, L->stderr_w };
    shim_log_close ();
    close_fds_except (keep, sizeof keep / sizeof keep[0], 3 + (L->o->preserve_fds > 0 ? L->o->preserve_fds : 0));
  }
  if (sync_expect (sync, SYNC_GO, "waiting for the runtime", &err) < 0)
    goto fail;
  if (s->clone_flags & CLONE_NEWUSER)
    {
      /* Become the namespace's root (if root is mapped) to set up mounts with its privileges. */
      if (setresgid (0, 0, 0) < 0 && errno != EINVAL)
        {
          shim_make_error (&err, errno, "setresgid 0 in the user namespace");
          goto fail;
        }
      if (setresuid (0, 0, 0) < 0 && errno != EINVAL)
        {
          shim_make_error (&err, errno, "setresuid 0 in the user namespace");
          goto fail;
        }
    }
  if ((s->clone_flags & CLONE_NEWNET) && ns_loopback_up (&err) < 0)
    goto fail;
  /* The cgroup namespace's root is the cgroup we are in when it is made: after the runtime moved us. */
  if ((s->clone_flags & CLONE_NEWCGROUP) && unshare (CLONE_NEWCGROUP) < 0)
    {
      shim_make_error (&err, errno, "create the cgroup namespace");
      goto fail;
    }
  if (s->hostname && *s->hostname && sethostname (s->hostname, strlen (s->hostname)) < 0)
    {
      shim_make_error (&err, errno, "sethostname `%s`", s->hostname);
      goto fail;
    }
  if (s->domainname && *s->domainname && setdomainname (s->domainname, strlen (s->domainname)) < 0)
    {
      shim_make_error (&err, errno, "setdomainname `%s`", s->domainname);
      goto fail;
    }
  if ((L->stdin_r >= 0 && dup2 (L->stdin_r, 0) < 0) || (L->stdout_w >= 0 && dup2 (L->stdout_w, 1) < 0)
      || (L->stderr_w >= 0 && dup2 (L->stderr_w, 2) < 0))
    {
      shim_make_error (&err, errno, "set up stdio");
      goto fail;
    }
  struct rootfs_options ro = { .spec = s,
                               .cgroup = L->cgroup,
                               .no_pivot = L->o->no_pivot,
                               .user_namespace = spec_has_namespace (s, CLONE_NEWUSER) };
  if (rootfs_prepare (&ro, &err) < 0)
    goto fail;
  if ((s->user_lookup || s->group_add_lookup) && user_lookup (L->spec->process, s->user_lookup, s->group_add_lookup, &err) < 0)
    goto fail;
  if (p->terminal)
    {
      int master, slave;
      cleanup_free char *slave_path = NULL;
      if (access ("/dev/ptmx", F_OK) < 0)
        {
          shim_make_error_code (&err, SHIM_CODE_INVALID_SPEC, errno,
                                "process.terminal needs /dev/pts (a devpts mount) and /dev/ptmx in the container");
          goto fail;
        }
      if (terminal_open (&master, &slave, &slave_path, &err) < 0 || rootfs_bind_console (slave_path, &err) < 0)
        goto fail;
      if (p->console_height && p->console_width
          && terminal_set_size (master, p->console_height, p->console_width, &err) < 0)
        goto fail;
      if (sync_send_fd (sync, SYNC_PTY, master, slave_path, &err) < 0)
        goto fail;
      close (master);
      if (terminal_become_controlling (slave, &err) < 0)
        goto fail;
      close (slave);
    }
  for (size_t i = 0; i < s->n_sysctl; i++)
    {
      cleanup_free char *path = xasprintf ("/proc/sys/%s", s->sysctl[i].key);
      for (char *c = path + 10; *c; c++)
        if (*c == '.')
          *c = '/';
      if (write_file (path, s->sysctl[i].value, strlen (s->sysctl[i].value), &err) < 0)
        {
          shim_error_wrap (&err, "linux.sysctl.%s", s->sysctl[i].key);
          goto fail;
        }
    }
  /* Like runc, a missing working directory is created (before the root may turn read-only). */
  if (access (p->cwd, F_OK) < 0 && mkdir_p (p->cwd, 0755, &err) < 0)
    goto fail;
  if (rootfs_finalize (s, &err) < 0)
    goto fail;
  env = process_environment (p);
  if (process_find_executable (p, &exe, &err) < 0)
    goto fail;
  if (process_set_identity (p, &L->seccomp, &err) < 0)
    goto fail;
  if (L->o->create_only)
    {
      if (sync_send (sync, SYNC_READY, 0, &err) < 0 || sync_expect (sync, SYNC_START, "waiting for start", &err) < 0)
        goto fail;
    }
  if (process_finish_security (p, &L->seccomp, &err) < 0)
    goto fail;
  process_exec (exe, p, env, L->o->preserve_fds, &err);
fail:
  sync_send_error (sync, err);
  _exit (err && err->code == SHIM_CODE_EXEC_NOT_FOUND ? 127 : 126);
}

/* Clones the init. With namespace paths, a helper joins them first (a new user namespace could
   not join namespaces owned by the host's, and a pid namespace only applies to children). */
static int
spawn_init (struct launch *L, shim_error_t *err)
{
  const struct spec *s = L->spec;
  int flags = s->clone_flags & ~CLONE_NEWCGROUP;
  bool paths = false;
  for (size_t i = 0; i < s->n_namespaces; i++)
    paths = paths || s->namespaces[i].path;
  if (!paths)
    {
      L->pid = cgroup_join_clone (&L->join, (unsigned long) flags);
      if (L->pid < 0)
        return shim_make_error (err, errno, "clone the container process");
      if (L->pid == 0)
        {
          close (L->sync_parent);
          container_init (L);
        }
      if (cgroup_join_finish (&L->join, L->cgroup, L->pid, err) < 0)
        return -1;
      return sync_expect (L->sync_parent, SYNC_JOINED, "the container process joining its cgroups", err);
    }
  /* The init is cloned with CLONE_PARENT: our child, not the helper's, so the helper leaving does
     not fire the parent-death signal the init sets until it execs (it did: the init was SIGKILLed
     whenever the helper exited after the init's prctl). Subreaper for whatever else it leaves. */
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    return shim_make_error (err, errno, "become a subreaper");
  pid_t helper = fork ();
  if (helper < 0)
    return shim_make_error (err, errno, "fork");
  if (helper == 0)
    {
      shim_error_t e = NULL;
      close (L->sync_parent);
      prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
      if (ns_join_paths (s, &e) < 0)
        {
          sync_send_error (L->sync_child, e);
          _exit (1);
        }
      pid_t pid = cgroup_join_clone (&L->join, (unsigned long) (flags | CLONE_PARENT));
      if (pid < 0)
        {
          shim_make_error (&e, errno, "clone the container process");
          sync_send_error (L->sync_child, e);
          _exit (1);
        }
      if (pid == 0)
        container_init (L);
      if (cgroup_join_finish (&L->join, L->cgroup, pid, &e) < 0)
        {
          sync_send_error (L->sync_child, e);
          _exit (1);
        }
      if (sync_send (L->sync_child, SYNC_PID, pid, &e) < 0)
        _exit (1);
      _exit (0);
    }
  /* The helper's pid and the init's SYNC_JOINED share the socket, in either order. */
  bool joined = false;
  int r = 1;
  L->pid = 0;
  while (r > 0 && !(joined && L->pid > 0))
    {
      struct sync_msg m;
      r = sync_recv (L->sync_parent, &m, NULL, err);
      if (r == 0)
        r = shim_make_error (err, EPIPE, "the namespace helper or the container process exited");
      else if (r > 0 && m.type == SYNC_ERROR)
        r = shim_make_error_code (err, m.code, m.status, "%s", m.msg);
      else if (r > 0 && m.type == SYNC_PID)
        L->pid = m.pid;
      else if (r > 0 && m.type == SYNC_JOINED)
        joined = true;
      else if (r > 0)
        r = shim_make_error (err, EPROTO, "unexpected message %d from the namespace helper", m.type);
    }
  int hs;
  SHIM_RETRY (waitpid (helper, &hs, 0));
  return r < 0 ? -1 : 0;
}

static char *
now_rfc3339 (void)
{
  struct strbuf b = { 0 };
  struct timespec ts;
  clock_gettime (CLOCK_REALTIME, &ts);
  format_rfc3339 (&b, &ts);
  return b.p;
}

static char *
hook_state (const struct launch *L, const char *status)
{
  struct strbuf b = { 0 };
  strbuf_add (&b, "{\"ociVersion\":\"1.0.2\",\"id\":");
  json_write_string (&b, L->o->id, strlen (L->o->id));
  strbuf_addf (&b, ",\"status\":\"%s\",\"pid\":%d,\"bundle\":", status, L->pid);
  json_write_string (&b, L->o->bundle, strlen (L->o->bundle));
  strbuf_add (&b, ",\"annotations\":");
  if (L->spec->annotations)
    json_write_value (&b, L->spec->annotations);
  else
    strbuf_add (&b, "{}");
  strbuf_add (&b, "}");
  return b.p;
}

int
hooks_run (const struct spec *s, int kind, const char *state_json, shim_error_t *err)
{
  static const char *const names[] = { "prestart", "createRuntime", "poststart", "poststop" };
  for (size_t i = 0; i < s->n_hooks[kind]; i++)
    {
      const struct spec_hook *h = &s->hooks[kind][i];
      int in[2];
      if (pipe2 (in, O_CLOEXEC) < 0)
        return shim_make_error (err, errno, "pipe");
      pid_t pid = fork ();
      if (pid < 0)
        {
          close (in[0]);
          close (in[1]);
          return shim_make_error (err, errno, "fork hook");
        }
      if (pid == 0)
        {
          sigset_t none;
          sigemptyset (&none);
          sigprocmask (SIG_SETMASK, &none, NULL);
          dup2 (in[0], 0);
          execve (h->path, h->args, h->env);
          _exit (127);
        }
      close (in[0]);
      if (write (in[1], state_json, strlen (state_json)) < 0 && errno != EPIPE)
        shim_warning ("hooks.%s[%zu]: could not write the state: %s", names[kind], i, strerror (errno));
      close (in[1]);
      /* A hook's timeout is enforced with a pidfd, so waiting needs no polling loop. */
      int pfd = (int) syscall (SYS_pidfd_open, pid, 0);
      if (pfd >= 0 && h->timeout > 0)
        {
          struct pollfd p = { .fd = pfd, .events = POLLIN };
          if (SHIM_RETRY (poll (&p, 1, h->timeout * 1000)) == 0)
            {
              kill (pid, SIGKILL);
              SHIM_RETRY (waitpid (pid, NULL, 0));
              close (pfd);
              return shim_make_error (err, ETIMEDOUT, "hooks.%s[%zu] (%s) timed out after %d s", names[kind], i,
                                      h->path, h->timeout);
            }
        }
      if (pfd >= 0)
        close (pfd);
      int status;
      if (SHIM_RETRY (waitpid (pid, &status, 0)) < 0)
        return shim_make_error (err, errno, "wait for hooks.%s[%zu]", names[kind], i);
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        return shim_make_error (err, 0, "hooks.%s[%zu] (%s) failed with status %d", names[kind], i, h->path,
                                WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status));
    }
  return 0;
}

static int
set_rlimits (pid_t pid, const struct spec_process *p, shim_error_t *err)
{
  /* From the parent: in the host's user namespace raising a hard limit is allowed. */
  for (size_t i = 0; i < p->n_rlimits; i++)
    {
      struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
      if (prlimit (pid, (__rlimit_resource_t) p->rlimits[i].resource, &rl, NULL) < 0)
        return shim_make_error (err, errno, "process.rlimits[%zu]: setrlimit", i);
    }
  return 0;
}

static int
setup_stdio (struct launch *L, shim_error_t *err)
{
  const struct container_options *o = L->o;
  const struct spec_process *p = L->spec->process;
  L->stdin_r = L->stdin_w = L->stdout_r = L->stdout_w = L->stderr_r = L->stderr_w = -1;
  L->monitored = (o->log_path || o->attach_socket) && !(p->terminal && o->console_socket);
  /* A foreground tty without a console socket is relayed through our own terminal. */
  if (p->terminal && !o->console_socket && !o->create_only && !o->detach)
    L->monitored = true;
  if (!L->monitored || p->terminal)
    return 0;
  int fds[2];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return shim_make_error (err, errno, "pipe");
  L->stdout_r = fds[0];
  L->stdout_w = fds[1];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return shim_make_error (err, errno, "pipe");
  L->stderr_r = fds[0];
  L->stderr_w = fds[1];
  bool want_stdin = o->open_stdin || (!o->create_only && !o->detach);
  if (want_stdin)
    {
      if (pipe2 (fds, O_CLOEXEC) < 0)
        return shim_make_error (err, errno, "pipe");
      L->stdin_r = fds[0];
      L->stdin_w = fds[1];
    }
  else
    {
      L->stdin_r = open ("/dev/null", O_RDONLY | O_CLOEXEC);
      if (L->stdin_r < 0)
        return shim_make_error (err, errno, "open /dev/null");
    }
  return 0;
}

static void
launch_cleanup (struct launch *L)
{
  seccomp_program_release (&L->seccomp);
  if (L->pid > 0)
    {
      kill (L->pid, SIGKILL);
      SHIM_RETRY (waitpid (L->pid, NULL, 0));
      L->pid = 0;
    }
  if (L->cgroup)
    {
      shim_error_t e = NULL;
      if (cgroup_destroy (L->cgroup, &e) < 0)
        {
          shim_log_error (e);
          shim_error_release (&e);
        }
    }
  if (L->state_dir_created)
    {
      shim_error_t e = NULL;
      if (remove_tree (L->state_dir, &e) < 0)
        shim_error_release (&e);
    }
  if (L->o->attach_socket && L->listen_fd >= 0)
    unlink (L->o->attach_socket);
}

/* A container whose process has ended and was reaped: what is left in its cgroup (without a pid
   namespace of its own, the init's children outlive it) is killed, as containerd's shim does,
   then its poststop hooks, then what `delete` removes (cgroups, state directory, attach socket). */
static void
delete_ended (struct launch *L)
{
  shim_error_t left = NULL;
  if (L->cgroup && cgroup_signal_all (L->cgroup, SIGKILL, &left) < 0)
    shim_error_release (&left);
  if (L->spec->n_hooks[HOOK_POSTSTOP])
    {
      shim_error_t e = NULL;
      cleanup_free char *state = hook_state (L, "stopped");
      if (hooks_run (L->spec, HOOK_POSTSTOP, state, &e) < 0)
        {
          shim_log_error (e);
          shim_error_release (&e);
        }
    }
  launch_cleanup (L);
}

static int
write_state (struct launch *L, shim_error_t *err)
{
  struct container_state st = { 0 };
  cleanup_free char *created = now_rfc3339 ();
  st.dir = L->state_dir;
  st.id = (char *) L->o->id;
  st.pid = L->pid;
  st.start_time = process_start_time (L->pid, NULL);
  st.bundle = (char *) L->o->bundle;
  st.rootfs = L->spec->root_path;
  st.created = created;
  st.owner = "";
  st.monitor_pid = getpid ();
  st.monitor_start_time = process_start_time (getpid (), NULL);
  st.log_path = (char *) L->o->log_path;
  st.attach_socket = (char *) L->o->attach_socket;
  st.cgroup = L->cgroup;
  const struct json_value *res = json_get (json_get (L->spec->doc, "linux"), "resources");
  st.resources = res && res->type == JSON_OBJECT ? res : NULL;
  return state_write (&st, L->spec->annotations, err);
}

/* From the clone to the process waiting for `start` (create) or running (run). */
static int
launch (struct launch *L, shim_error_t *err)
{
  const struct container_options *o = L->o;
  const struct spec *s = L->spec;
  struct cgroup_env env;
  if (cgroup_env_load (&env, err) < 0)
    return -1;
  int r = cgroup_resolve (&env, s->cgroups_path, o->id, &L->cgroup, err);
  cgroup_env_release (&env);
  if (r < 0)
    return -1;
  if (cgroup_create (L->cgroup, &s->resources, err) < 0)
    {
      cgroup_free (L->cgroup);
      L->cgroup = NULL;
      return -1;
    }
  if (setup_stdio (L, err) < 0)
    return -1;
  if (o->log_path)
    {
      L->log_fd = open (o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
      if (L->log_fd < 0)
        return shim_make_error (err, errno, "open the log `%s`", o->log_path);
    }
  if (o->attach_socket && monitor_listen (o->attach_socket, &L->listen_fd, err) < 0)
    return -1;
  if (o->create_only)
    {
      L->fifo_path = xasprintf ("%s/exec.fifo", L->state_dir);
      if (mkfifo (L->fifo_path, 0600) < 0)
        return shim_make_error (err, errno, "mkfifo `%s`", L->fifo_path);
      L->fifo_fd = open (L->fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      if (L->fifo_fd < 0)
        return shim_make_error (err, errno, "open `%s`", L->fifo_path);
    }
  int sp[2];
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    return shim_make_error (err, errno, "socketpair");
  L->sync_parent = sp[0];
  L->sync_child = sp[1];
  bool foreground = !o->create_only && !o->detach;
  if (monitor_signalfd (foreground, foreground && s->process->terminal && isatty (0), &L->signal_fd, err) < 0)
    return -1;
  {
    cleanup_free char *cache = xasprintf ("%s/.seccomp", o->root);
    if (seccomp_program_prepare (s, cache, &L->seccomp, err) < 0)
      return -1;
  }
  if (cgroup_join_open (L->cgroup, &L->join, err) < 0)
    return -1;
  r = spawn_init (L, err);
  cgroup_join_close (&L->join);
  if (r < 0)
    return -1;
  seccomp_program_release (&L->seccomp);
  close_fd (&L->sync_child);
  close_fd (&L->stdin_r);
  close_fd (&L->stdout_w);
  close_fd (&L->stderr_w);

  if ((s->clone_flags & CLONE_NEWUSER) && ns_write_id_maps (L->pid, s, err) < 0)
    return -1;
  if (s->process->has_oom_score_adj)
    {
      char path[64], val[16];
      snprintf (path, sizeof path, "/proc/%d/oom_score_adj", L->pid);
      snprintf (val, sizeof val, "%d", s->process->oom_score_adj);
      if (write_file (path, val, strlen (val), err) < 0)
        return shim_error_wrap (err, "process.oomScoreAdj");
    }
  if (set_rlimits (L->pid, s->process, err) < 0)
    return -1;
  if (s->n_hooks[HOOK_PRESTART] || s->n_hooks[HOOK_CREATE_RUNTIME])
    {
      cleanup_free char *state = hook_state (L, "creating");
      if (hooks_run (s, HOOK_PRESTART, state, err) < 0 || hooks_run (s, HOOK_CREATE_RUNTIME, state, err) < 0)
        return -1;
    }
  if (sync_send (L->sync_parent, SYNC_GO, 0, err) < 0)
    return -1;
  /* Until the init is ready (create) or has exec'd (run): a pty may arrive, an error may. */
  for (;;)
    {
      struct sync_msg m;
      int fd = -1;
      int got = sync_recv (L->sync_parent, &m, &fd, err);
      if (got < 0)
        return -1;
      if (got == 0)
        {
          if (o->create_only)
            return shim_make_error (err, EPIPE, "the container process exited during setup");
          break;
        }
      if (m.type == SYNC_ERROR)
        return shim_make_error_code (err, m.code, m.status, "%s", m.msg);
      if (m.type == SYNC_PTY)
        {
          if (fd < 0)
            return shim_make_error (err, EPROTO, "the container sent no pty");
          if (o->console_socket)
            {
              int r2 = terminal_send_to_socket (o->console_socket, fd, m.msg, err);
              close (fd);
              if (r2 < 0)
                return -1;
            }
          else
            L->master = fd;
          continue;
        }
      if (m.type == SYNC_READY && o->create_only)
        break;
      return shim_make_error (err, EPROTO, "unexpected message %d from the container process", m.type);
    }
  if (write_state (L, err) < 0)
    return -1;
  if (!o->create_only && s->n_hooks[HOOK_POSTSTART])
    {
      cleanup_free char *state = hook_state (L, "running");
      if (hooks_run (s, HOOK_POSTSTART, state, err) < 0)
        return -1;
    }
  return 0;
}

static void
record_exit (void *ctx, int wait_status)
{
  struct launch *L = ctx;
  shim_error_t e = NULL;
  bool oom = L->cgroup && cgroup_oom_killed (L->cgroup);
  /* No new attach once the container has exited; clients already connected keep their
     connection. Gone before the exit is recorded, so `stopped` implies no attach socket. */
  if (L->o->attach_socket)
    unlink (L->o->attach_socket);
  if (state_write_exit (L->state_dir, L->o->exit_file, wait_status, oom, &e) < 0)
    shim_error_release (&e);
}

/* A created container that its first attach client started: the poststart hooks `start` runs. */
static void
started_by_attach (void *ctx)
{
  struct launch *L = ctx;
  if (L->spec->n_hooks[HOOK_POSTSTART] == 0)
    return;
  shim_error_t e = NULL;
  cleanup_free char *state = hook_state (L, "running");
  if (hooks_run (L->spec, HOOK_POSTSTART, state, &e) < 0)
    {
      shim_log_error (e);
      shim_error_release (&e);
    }
}

void
container_monitor_options (struct monitor_options *mo, const struct container_options *o, bool local, bool monitored,
                           void (*record_exit) (void *ctx, int wait_status), void *ctx)
{
  mo->forward_signals = local;
  mo->log_path = o->log_path;
  mo->log_max_size = o->log_max_size;
  mo->log_max_files = o->log_max_files > 0 ? o->log_max_files : 1;
  mo->log_compress = o->log_compress;
  mo->first_client_fd = -1;
  mo->stdin_once = o->stdin_once;
  /* A foreground run deletes the container at the end, unless it keeps it (--keep). */
  mo->on_exit = !local || o->keep ? record_exit : NULL;
  mo->on_exit_ctx = ctx;
  mo->local = local && monitored;
  mo->local_tty = local && mo->tty && isatty (0);
}

static int
monitor_loop (struct launch *L, bool local, int *wait_status, shim_error_t *err)
{
  const struct spec_process *p = L->spec->process;
  bool tty = p->terminal && L->master >= 0;
  struct monitor_options mo = {
    .pid = L->pid,
    .signal_fd = L->signal_fd,
    .sync_fd = L->o->create_only ? L->sync_parent : -1,
    .fifo_fd = L->fifo_fd,
    .fifo_path = L->fifo_path,
    .out_fd = tty ? L->master : L->stdout_r,
    .err_fd = tty ? -1 : L->stderr_r,
    .in_fd = tty ? L->master : L->stdin_w,
    .tty = tty,
    .log_fd = L->log_fd,
    .listen_fd = L->listen_fd,
  };
  container_monitor_options (&mo, L->o, local, L->monitored, record_exit, L);
  mo.start_on_attach = L->o->start_on_attach;
  mo.on_start = started_by_attach;
  mo.on_start_ctx = L;
  if (!L->o->create_only)
    close_fd (&L->sync_parent);
  int r = monitor_run_attached (&mo, L->master, wait_status, err);
  L->master = L->stdout_r = L->stderr_r = L->stdin_w = L->fifo_fd = -1;
  if (L->o->create_only)
    L->sync_parent = -1;
  return r;
}


void
close_fds_except (const int *keep, size_t n_keep, int first_closed)
{
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    return;
  int self = dirfd (d);
  struct dirent *de;
  int doomed[1024];
  size_t n = 0;
  while ((de = readdir (d)) != NULL && n < sizeof doomed / sizeof doomed[0])
    {
      int fd = atoi (de->d_name);
      if (de->d_name[0] == '.' || fd < first_closed || fd == self)
        continue;
      bool ours = false;
      for (size_t i = 0; i < n_keep; i++)
        ours = ours || keep[i] == fd;
      if (!ours)
        doomed[n++] = fd;
    }
  closedir (d);
  for (size_t i = 0; i < n; i++)
    close (doomed[i]);
}

static void
close_inherited_fds (const struct launch *L)
{
  int keep[] = { L->sync_parent, L->stdout_r, L->stderr_r, L->stdin_w, L->master,
                 L->fifo_fd,     L->log_fd,   L->listen_fd, L->signal_fd };
  close_fds_except (keep, sizeof keep / sizeof keep[0], 3);
}

static void
detach_stdio (void)
{
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0)
    return;
  dup2 (null, 0);
  dup2 (null, 1);
  dup2 (null, 2);
  close (null);
}

int
container_start (const struct container_options *o, int *exit_code, shim_error_t *err)
{
  struct launch L = { .o = o, .sync_parent = -1, .sync_child = -1, .master = -1, .fifo_fd = -1, .log_fd = -1,
                      .listen_fd = -1, .signal_fd = -1 };
  *exit_code = 0;
  if (o->oci_runtime)
    return wrap_start (o, exit_code, err);
  if (state_check_id (o->id, err) < 0)
    return -1;
  if (spec_load (o->bundle, &L.spec, err) < 0)
    return -1;
  const struct spec_process *p = L.spec->process;
  bool detached = o->create_only || o->detach;
  if (p->terminal && detached && !o->console_socket && !o->attach_socket)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0,
                                 "cannot allocate a tty for a detached container without --console-socket or "
                                 "--attach-socket");
  if (!p->terminal && o->console_socket)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--console-socket needs process.terminal to be true");
  if (!spec_has_namespace (L.spec, CLONE_NEWNS))
    return shim_make_error_code (err, SHIM_CODE_INVALID_SPEC, 0,
                                 "config.json: linux.namespaces: a mount namespace is required");
  if (state_create_dir (o->root, o->id, err) < 0)
    return -1;
  L.state_dir = state_dir_of (o->root, o->id);
  L.state_dir_created = true;
  {
    /* exec reads the container's settings (namespaces, seccomp, capabilities) from this copy. */
    cleanup_free char *src = xasprintf ("%s/config.json", o->bundle);
    cleanup_free char *dst = xasprintf ("%s/config.json", L.state_dir);
    cleanup_free char *text = NULL;
    size_t len;
    if (read_file (src, &text, &len, err) < 0 || write_file_atomic (dst, text, len, 0600, err) < 0)
      {
        launch_cleanup (&L);
        return -1;
      }
  }

  if (!detached)
    {
      /* Foreground run: this process is the monitor. SIGPIPE from a closed stdout must not kill it. */
      signal (SIGPIPE, SIG_IGN);
      if (launch (&L, err) < 0)
        {
          launch_cleanup (&L);
          return -1;
        }
      if (o->pid_file && write_pid_file (o->pid_file, L.pid, err) < 0)
        {
          launch_cleanup (&L);
          return -1;
        }
      int status = 0;
      if (monitor_loop (&L, true, &status, err) < 0)
        {
          launch_cleanup (&L);
          return -1;
        }
      L.pid = 0;
      *exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
      if (!o->keep)
        delete_ended (&L);
      return 0;
    }

  /* Detached: a monitor process stays behind as the container's parent. It reports back over a
     pipe once the container is created (or failed), so the caller exits with the real result. */
  int report[2];
  if (pipe2 (report, O_CLOEXEC) < 0)
    {
      launch_cleanup (&L);
      return shim_make_error (err, errno, "pipe");
    }
  pid_t monitor = fork ();
  if (monitor < 0)
    {
      launch_cleanup (&L);
      return shim_make_error (err, errno, "fork the monitor");
    }
  if (monitor > 0)
    {
      close (report[1]);
      struct sync_msg m;
      ssize_t n = SHIM_RETRY (read (report[0], &m, sizeof m));
      close (report[0]);
      if (n < (ssize_t) offsetof (struct sync_msg, msg))
        return shim_make_error (err, EPIPE, "the monitor of `%s` exited during create", o->id);
      if (m.type == SYNC_ERROR)
        return shim_make_error_code (err, m.code, m.status, "%s", m.msg);
      if (o->pid_file && write_pid_file (o->pid_file, m.pid, err) < 0)
        return -1;
      return 0;
    }

  close (report[0]);
  setsid ();
  if (launch (&L, err) < 0)
    {
      struct sync_msg m;
      memset (&m, 0, sizeof m);
      m.type = SYNC_ERROR;
      m.status = (*err)->status;
      m.code = (*err)->code;
      snprintf (m.msg, sizeof m.msg, "%s", (*err)->msg);
      launch_cleanup (&L);
      if (write (report[1], &m, sizeof m) < 0)
        _exit (1);
      _exit (1);
    }
  {
    struct sync_msg m;
    memset (&m, 0, sizeof m);
    m.type = SYNC_READY;
    m.pid = L.pid;
    if (write (report[1], &m, sizeof m) < 0)
      _exit (1);
    close (report[1]);
  }
  /* The caller may be waiting for our stdout, stderr and log to close. */
  shim_log_close ();
  detach_stdio ();
  close_inherited_fds (&L);
  int status = 0;
  shim_error_t e = NULL;
  if (monitor_loop (&L, false, &status, &e) < 0)
    shim_error_release (&e);
  else if (o->delete_on_exit)
    {
      /* The exit is in --exit-file; the caller need not run `delete`. */
      L.pid = 0;
      delete_ended (&L);
    }
  if (o->attach_socket)
    unlink (o->attach_socket);
  _exit (0);
}

int
container_release (const char *root, const char *id, shim_error_t *err)
{
  struct container_state *st = NULL;
  if (state_load (root, id, &st, err) < 0)
    return -1;
  const char *status = state_status (st);
  if (strcmp (status, STATUS_CREATED) != 0)
    {
      shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot start container `%s`: it is %s, not created", id, status);
      state_free (st);
      return -1;
    }
  cleanup_free char *fifo = xasprintf ("%s/exec.fifo", st->dir);
  cleanup_free char *config = xasprintf ("%s/config.json", st->dir);
  cleanup_free char *text = NULL;
  size_t len;
  struct spec *s = NULL;
  if (read_file (config, &text, &len, err) < 0 || spec_parse (text, len, "config.json", st->bundle ? st->bundle : "/", &s, err) < 0)
    {
      state_free (st);
      return -1;
    }
  /* Non-blocking: with no reader (the monitor is gone) this fails at once instead of hanging. */
  cleanup_close int fd = open (fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    {
      int saved = errno;
      state_free (st);
      if (saved == ENXIO)
        return shim_make_error_code (err, SHIM_CODE_STATE, saved, "cannot start container `%s`: its monitor is gone", id);
      return shim_make_error (err, saved, "open `%s`", fifo);
    }
  /* Removing the fifo first makes `state` report running as soon as we return. */
  if (unlink (fifo) < 0 || SHIM_RETRY (write (fd, "0", 1)) != 1)
    {
      state_free (st);
      return shim_make_error (err, errno, "signal start through `%s`", fifo);
    }
  int ret = 0;
  /* poststart hooks run once the process has been told to go, as runc runs them in `start`. */
  if (s->n_hooks[HOOK_POSTSTART])
    {
      struct strbuf state_json = { 0 };
      state_write_json (&state_json, st);
      ret = hooks_run (s, HOOK_POSTSTART, state_json.p, err);
      free (state_json.p);
    }
  state_free (st);
  return ret;
}
