#include "init.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

/* Signals the kernel sends a process for its own faults: never ours to forward. */
static bool
synchronous (int sig)
{
  return sig == SIGFPE || sig == SIGILL || sig == SIGSEGV || sig == SIGBUS || sig == SIGABRT || sig == SIGTRAP
         || sig == SIGSYS;
}

static void __attribute__ ((noreturn))
run_command (char **cmd, const sigset_t *original)
{
  /* Its own process group, in the terminal's foreground when there is one: ctrl-c reaches it
     (and whatever it starts) as it would without an init in between. */
  setpgid (0, 0);
  if (isatty (STDIN_FILENO))
    tcsetpgrp (STDIN_FILENO, getpgrp ());
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      signal (sig, SIG_DFL);
  sigprocmask (SIG_SETMASK, original, NULL);
  execvp (cmd[0], cmd);
  int saved = errno;
  fprintf (stderr, "berth-init: exec %s failed: %s\n", cmd[0], strerror (saved));
  _exit (saved == ENOENT ? 127 : 126);
}

int
init_main (int argc, char **argv)
{
  int first = argc > 0 && strcmp (argv[0], "--") == 0 ? 1 : 0;
  if (first >= argc)
    {
      fputs ("usage: berth-runtime init [--] COMMAND [ARG...]\n", stderr);
      return 2;
    }
  /* Outside pid 1 (a container without its own pid namespace), orphans still come to us. */
  if (getpid () != 1)
    prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  sigset_t all, original;
  sigfillset (&all);
  sigprocmask (SIG_BLOCK, &all, &original);
  /* Handing the terminal's foreground to the child must not stop us. */
  signal (SIGTTIN, SIG_IGN);
  signal (SIGTTOU, SIG_IGN);
  pid_t child = fork ();
  if (child < 0)
    {
      fprintf (stderr, "berth-init: fork: %s\n", strerror (errno));
      return 1;
    }
  if (child == 0)
    run_command (&argv[first], &original);
  for (;;)
    {
      siginfo_t info;
      int sig = sigwaitinfo (&all, &info);
      if (sig < 0)
        {
          if (errno == EINTR)
            continue;
          fprintf (stderr, "berth-init: waiting for signals: %s\n", strerror (errno));
          return 1;
        }
      if (sig != SIGCHLD)
        {
          if (!synchronous (sig) && kill (child, sig) < 0 && errno != ESRCH)
            fprintf (stderr, "berth-init: forwarding signal %d: %s\n", sig, strerror (errno));
          continue;
        }
      /* Every child that has ended: the command, and orphans that were handed to us. */
      for (;;)
        {
          int status;
          pid_t done = waitpid (-1, &status, WNOHANG);
          if (done <= 0)
            break;
          if (done == child)
            return WIFEXITED (status) ? WEXITSTATUS (status) : 128 + WTERMSIG (status);
        }
    }
}
