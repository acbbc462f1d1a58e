#include "exec.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "caps.h"
#include "files.h"
#include "monitor.h"
#include "namespaces.h"
#include "process.h"
#include "seccomp.h"
#include "spec.h"
#include "state.h"
#include "sync.h"
#include "terminal.h"
#include "user.h"

static int
parse_id (const char *text, const char *what, unsigned *out, shim_error_t *err)
{
  char *end;
  errno = 0;
  unsigned long v = strtoul (text, &end, 10);
  if (errno || *end || end == text || v > UINT32_MAX)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: `%s` is not a numeric id", what, text);
  *out = (unsigned) v;
  return 0;
}

/* The process to run: --process, or the container's process with the command line's changes. */
static int
build_process (const struct exec_options *o, const struct spec *container, struct spec_process **out,
               shim_error_t *err)
{
  if (o->process_path)
    {
      cleanup_free char *text = NULL;
      size_t len;
      if (read_file (o->process_path, &text, &len, err) < 0)
        return -1;
      if (spec_parse_process (text, len, o->process_path, out, err) < 0)
        return -1;
      text = NULL; /* the parsed process points into its document, which is kept */
      if (o->tty)
        (*out)->terminal = true;
      return 0;
    }
  if (o->args == NULL || o->args[0] == NULL)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "exec needs a command or --process");
  struct spec_process *p = xcalloc (1, sizeof *p);
  *p = *container->process;
  size_t n = 0;
  while (o->args[n])
    n++;
  p->args = o->args;
  p->n_args = n;
  p->terminal = o->tty;
  if (o->cwd)
    p->cwd = (char *) o->cwd;
  if (o->n_env)
    {
      char **env = xcalloc (p->n_env + o->n_env + 1, sizeof *env);
      size_t k = 0;
      for (size_t i = 0; i < p->n_env; i++)
        {
          size_t klen = strcspn (p->env[i], "=");
          bool replaced = false;
          for (size_t j = 0; j < o->n_env && !replaced; j++)
            replaced = strncmp (o->env[j], p->env[i], klen) == 0 && o->env[j][klen] == '=';
          if (!replaced)
            env[k++] = p->env[i];
        }
      for (size_t j = 0; j < o->n_env; j++)
        {
          if (strchr (o->env[j], '=') == NULL)
            return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--env `%s` is not of the form KEY=value", o->env[j]);
          env[k++] = o->env[j];
        }
      p->env = env;
      p->n_env = k;
    }
  if (o->user)
    {
      cleanup_free char *copy = xstrdup (o->user);
      char *colon = strchr (copy, ':');
      if (colon)
        *colon++ = 0;
      unsigned uid, gid = 0;
      if (parse_id (copy, "--user", &uid, err) < 0 || (colon && parse_id (colon, "--user", &gid, err) < 0))
        return -1;
      p->uid = uid;
      p->gid = colon ? gid : 0;
    }
  if (o->n_additional_gids)
    {
      p->additional_gids = xcalloc (o->n_additional_gids, sizeof *p->additional_gids);
      for (size_t i = 0; i < o->n_additional_gids; i++)
        {
          unsigned g;
          if (parse_id (o->additional_gids[i], "--additional-gids", &g, err) < 0)
            return -1;
          p->additional_gids[i] = g;
        }
      p->n_additional_gids = o->n_additional_gids;
    }
  for (size_t i = 0; i < o->n_caps; i++)
    {
      int c = cap_from_name (o->caps[i]);
      if (c < 0)
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--cap: unknown capability `%s`", o->caps[i]);
      uint64_t bit = 1ULL << c;
      p->has_caps = true;
      p->caps.bounding |= bit;
      p->caps.effective |= bit;
      p->caps.permitted |= bit;
      p->caps.inheritable |= bit;
      p->caps.ambient |= bit;
    }
  if (o->no_new_privs)
    p->no_new_privileges = true;
  *out = p;
  return 0;
}

static void __attribute__ ((noreturn))
exec_child (int sync, const struct ns_set *ns, int rootfd, struct spec_process *p, const struct spec *container,
            bool lookup_user, const struct seccomp_program *seccomp, int preserve_fds, const int stdio[3],
            const struct cgroup_join *join)
{
  shim_error_t err = NULL;
  cleanup_free char *exe = NULL;
  char **env;
  prctl (PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  if (cgroup_join_self (join, &err) < 0 || sync_send (sync, SYNC_JOINED, 0, &err) < 0)
    goto fail;
  if (sync_expect (sync, SYNC_GO, "waiting for the runtime", &err) < 0)
    goto fail;
  for (int i = 0; i < 3; i++)
    if (stdio[i] >= 0 && dup2 (stdio[i], i) < 0)
      {
        shim_make_error (&err, errno, "set up stdio");
        goto fail;
      }
  if (ns_enter (ns, &err) < 0)
    goto fail;
  /* The root of the container's mount namespace, also where it was chrooted (no pivot_root). */
  if (fchdir (rootfd) < 0 || chroot (".") < 0 || chdir ("/") < 0)
    {
      shim_make_error (&err, errno, "enter the container's root");
      goto fail;
    }
  close (rootfd);
  /* The container's own user, as its init looked it up, when the command names none. */
  if (lookup_user && user_lookup (p, container->user_lookup, container->group_add_lookup, &err) < 0)
    goto fail;
  if (p->terminal)
    {
      int master, slave;
      cleanup_free char *slave_path = NULL;
      if (terminal_open (&master, &slave, &slave_path, &err) < 0)
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
  env = process_environment (p);
  if (process_find_executable (p, &exe, &err) < 0 || process_set_identity (p, seccomp, &err) < 0
      || process_finish_security (p, seccomp, &err) < 0)
    goto fail;
  process_exec (exe, p, env, preserve_fds, &err);
fail:
  sync_send_error (sync, err);
  _exit (err && err->code == SHIM_CODE_EXEC_NOT_FOUND ? 127 : 126);
}

int
container_exec (const struct exec_options *o, int *exit_code, shim_error_t *err)
{
  struct container_state *st = NULL;
  struct spec *container = NULL;
  struct spec_process *p = NULL;
  *exit_code = 0;
  if (state_load (o->root, o->id, &st, err) < 0)
    return -1;
  const char *status = state_status (st);
  if (strcmp (status, STATUS_RUNNING) != 0 && strcmp (status, STATUS_CREATED) != 0)
    return shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot exec in container `%s`: it is %s", o->id, status);
  {
    cleanup_free char *path = xasprintf ("%s/config.json", st->dir);
    cleanup_free char *text = NULL;
    size_t len;
    if (read_file (path, &text, &len, err) < 0
        || spec_parse (text, len, "config.json", st->bundle ? st->bundle : "/", &container, err) < 0)
      return -1;
  }
  if (build_process (o, container, &p, err) < 0)
    return -1;
  if (p->terminal && o->detach && !o->console_socket)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "cannot allocate a tty for a detached exec without --console-socket");
  if (!p->terminal && o->console_socket)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--console-socket needs a tty (-t)");
  if (o->attach_socket && (o->detach || o->console_socket))
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--attach-socket serves the process itself: not with -d or --console-socket");
  /* With an attach socket, the process's stdio are our pipes (or its pty), relayed to the clients. */
  int child_stdio[3] = { -1, -1, -1 }, parent_stdio[3] = { -1, -1, -1 };
  int listen_fd = -1, first_client = -1;
  if (o->attach_socket)
    {
      if (!p->terminal)
        for (int i = 0; i < 3; i++)
          {
            int fds[2];
            if (pipe2 (fds, O_CLOEXEC) < 0)
              return shim_make_error (err, errno, "pipe");
            child_stdio[i] = i == 0 ? fds[0] : fds[1];
            parent_stdio[i] = i == 0 ? fds[1] : fds[0];
          }
      if (monitor_listen (o->attach_socket, &listen_fd, err) < 0)
        return -1;
    }

  struct ns_set ns;
  if (ns_open_process (st->pid, &ns, err) < 0)
    return -1;
  char rootpath[64];
  snprintf (rootpath, sizeof rootpath, "/proc/%d/root", st->pid);
  cleanup_close int rootfd = open (rootpath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    return shim_make_error (err, errno, "open %s", rootpath);
  /* The process must still be the container's: a recycled pid would send us elsewhere. */
  if (!state_process_alive (st))
    return shim_make_error_code (err, SHIM_CODE_STATE, 0, "cannot exec in container `%s`: it has stopped", o->id);
  /* Our next child is born in the container's pid namespace; we stay where we are. */
  if (ns.pid >= 0 && setns (ns.pid, CLONE_NEWPID) < 0)
    return shim_make_error (err, errno, "join the container's pid namespace for the new process");
  int sp[2];
  if (socketpair (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
    return shim_make_error (err, errno, "socketpair");
  int signal_fd = -1;
  bool local_tty = p->terminal && !o->console_socket && !o->attach_socket && isatty (0);
  if (!o->detach && monitor_signalfd (true, local_tty, &signal_fd, err) < 0)
    return -1;
  signal (SIGPIPE, SIG_IGN);
  struct seccomp_program seccomp;
  {
    cleanup_free char *cache = xasprintf ("%s/.seccomp", o->root);
    if (seccomp_program_prepare (container, cache, &seccomp, err) < 0)
      return -1;
  }
  struct cgroup_join join;
  if (cgroup_join_open (st->cgroup, &join, err) < 0)
    {
      seccomp_program_release (&seccomp);
      return -1;
    }
  pid_t pid = cgroup_join_clone (&join, 0);
  if (pid < 0)
    {
      seccomp_program_release (&seccomp);
      cgroup_join_close (&join);
      return shim_make_error (err, errno, "fork");
    }
  if (pid == 0)
    {
      close (sp[0]);
      bool lookup_user = !o->process_path && !o->user && !o->n_additional_gids
                         && (container->user_lookup || container->group_add_lookup);
      exec_child (sp[1], &ns, rootfd, p, container, lookup_user, &seccomp, o->preserve_fds, child_stdio, &join);
    }
  seccomp_program_release (&seccomp);
  close (sp[1]);
  for (int i = 0; i < 3; i++)
    if (child_stdio[i] >= 0)
      close (child_stdio[i]);
  ns_close (&ns);
  int sync = sp[0];
  int master = -1;
  int ret = 0;
  {
    int r = st->cgroup ? cgroup_join_finish (&join, st->cgroup, pid, err) : 0;
    cgroup_join_close (&join);
    if (r < 0 || sync_expect (sync, SYNC_JOINED, "the process joining the container's cgroups", err) < 0)
      goto fail;
  }
  for (size_t i = 0; i < p->n_rlimits; i++)
    {
      struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
      if (prlimit (pid, (__rlimit_resource_t) p->rlimits[i].resource, &rl, NULL) < 0)
        {
          shim_make_error (err, errno, "process.rlimits[%zu]", i);
          goto fail;
        }
    }
  if (listen_fd >= 0)
    {
      /* Blocking: the process waits for its first client, so nothing it writes is lost. */
      int fl = fcntl (listen_fd, F_GETFL);
      fcntl (listen_fd, F_SETFL, fl & ~O_NONBLOCK);
      first_client = SHIM_RETRY (accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC));
      fcntl (listen_fd, F_SETFL, fl);
      if (first_client < 0)
        {
          shim_make_error (err, errno, "accept on the attach socket `%s`", o->attach_socket);
          goto fail;
        }
    }
  if (sync_send (sync, SYNC_GO, 0, err) < 0)
    goto fail;
  for (;;)
    {
      struct sync_msg m;
      int fd = -1;
      int got = sync_recv (sync, &m, &fd, err);
      if (got < 0)
        goto fail;
      if (got == 0)
        break;
      if (m.type == SYNC_ERROR)
        {
          shim_make_error_code (err, m.code, m.status, "%s", m.msg);
          goto fail;
        }
      if (m.type == SYNC_PTY && fd >= 0)
        {
          if (o->console_socket)
            {
              int r = terminal_send_to_socket (o->console_socket, fd, m.msg, err);
              close (fd);
              if (r < 0)
                goto fail;
            }
          else
            master = fd;
        }
    }
  close (sync);
  sync = -1;
  if (o->pid_file && write_pid_file (o->pid_file, pid, err) < 0)
    goto fail;
  if (o->detach)
    return 0;
  {
    struct monitor_options mo = { .pid = pid,
                                  .signal_fd = signal_fd,
                                  .forward_signals = true,
                                  .sync_fd = -1,
                                  .fifo_fd = -1,
                                  .out_fd = master >= 0 ? master : parent_stdio[1],
                                  .err_fd = master >= 0 ? -1 : parent_stdio[2],
                                  .in_fd = master >= 0 ? master : parent_stdio[0],
                                  .tty = master >= 0,
                                  .log_fd = -1,
                                  .listen_fd = listen_fd,
                                  .first_client_fd = first_client,
                                  .local = master >= 0 && listen_fd < 0,
                                  .local_tty = local_tty };
    int status = 0;
    ret = monitor_run_attached (&mo, master, &status, err);
    *exit_code = WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
    if (o->attach_socket)
      unlink (o->attach_socket);
  }
  return ret;

fail:
  if (o->attach_socket && listen_fd >= 0)
    unlink (o->attach_socket);
  kill (pid, SIGKILL);
  SHIM_RETRY (waitpid (pid, NULL, 0));
  if (sync >= 0)
    close (sync);
  return -1;
}
