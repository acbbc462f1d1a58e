#include "exec-exit.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "files.h"
#include "json.h"

/* What the monitor tells the command: whether the process runs, or why it does not. */
struct start_report
{
  int32_t ok;
  int32_t code;
  int32_t status;
};

static void
send_report (int fd, const shim_error_t e)
{
  struct start_report r = { .ok = e == NULL, .code = e ? e->code : 0, .status = e ? e->status : 0 };
  if (SHIM_RETRY (write (fd, &r, sizeof r)) == (ssize_t) sizeof r && e && e->msg)
    SHIM_RETRY (write (fd, e->msg, strnlen (e->msg, 4000)));
  close (fd);
}

/* The command's side: the monitor's report, as this command's own result. */
static int
await_report (int fd, pid_t monitor, shim_error_t *err)
{
  struct start_report r;
  char msg[4001];
  ssize_t n = SHIM_RETRY (read (fd, &r, sizeof r));
  ssize_t m = n == (ssize_t) sizeof r && !r.ok ? SHIM_RETRY (read (fd, msg, sizeof msg - 1)) : 0;
  close (fd);
  if (n != (ssize_t) sizeof r)
    {
      int status = 0;
      SHIM_RETRY (waitpid (monitor, &status, 0));
      return shim_make_error (err, 0, "the exec monitor ended before the process started (wait status %d)", status);
    }
  /* The monitor went on alone: it is in a session of its own and reaped by init. */
  SHIM_RETRY (waitpid (monitor, NULL, WNOHANG));
  if (r.ok)
    return 0;
  msg[m > 0 ? m : 0] = 0;
  return shim_make_error_code (err, r.code, r.status, "%s", msg);
}

static int
record_exit (const char *exit_file, int wait_status, shim_error_t *err)
{
  struct strbuf b = { 0 };
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  strbuf_addf (&b, "{\"exitCode\":%d", WIFEXITED (wait_status) ? WEXITSTATUS (wait_status) : 128 + WTERMSIG (wait_status));
  if (WIFSIGNALED (wait_status))
    strbuf_addf (&b, ",\"signal\":%d", WTERMSIG (wait_status));
  strbuf_add (&b, ",\"finished\":\"");
  format_rfc3339 (&b, &now);
  strbuf_add (&b, "\"}\n");
  int r = write_file_atomic (exit_file, b.p, b.len, 0600, err);
  free (b.p);
  return r;
}

static void __attribute__ ((noreturn))
run_monitor (int report, const char *exit_file, const char *pid_file, exec_start_fn start, void *ctx)
{
  shim_error_t e = NULL;
  setsid ();
  /* A wrapped runtime's exec leaves its process to the nearest subreaper: us. */
  if (prctl (PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
    {
      shim_make_error (&e, errno, "become a subreaper");
      send_report (report, e);
      _exit (1);
    }
  pid_t pid = 0;
  if (start (ctx, &e) == 0)
    {
      cleanup_free char *text = NULL;
      if (read_file (pid_file, &text, NULL, &e) == 0 && (pid = (pid_t) atoi (text)) <= 0)
        shim_make_error (&e, 0, "no process id in `%s`", pid_file);
    }
  send_report (report, e);
  if (e)
    _exit (1);
  /* Nothing of the caller's stays open here (its pipes, its log): it sees the command end. */
  int null = open ("/dev/null", O_RDWR | O_CLOEXEC);
  for (int i = 0; i < 3 && null >= 0; i++)
    dup2 (null, i);
  shim_log_close ();
  syscall (SYS_close_range, 3U, ~0U, 0U);
  if (chdir ("/") < 0)
    _exit (1);
  int status = 0;
  for (;;)
    {
      pid_t got = SHIM_RETRY (waitpid (-1, &status, 0));
      if (got == pid)
        break;
      /* A runtime's own processes, and ECHILD: the process is gone without us seeing it. */
      if (got < 0)
        _exit (1);
    }
  _exit (record_exit (exit_file, status, &e) < 0 ? 1 : 0);
}

int
exec_recording_exit (const char *exit_file, const char *pid_file, exec_start_fn start, void *ctx, shim_error_t *err)
{
  int fds[2];
  if (pipe2 (fds, O_CLOEXEC) < 0)
    return shim_make_error (err, errno, "pipe");
  pid_t monitor = fork ();
  if (monitor < 0)
    {
      close (fds[0]);
      close (fds[1]);
      return shim_make_error (err, errno, "fork the exec monitor");
    }
  if (monitor == 0)
    {
      close (fds[0]);
      run_monitor (fds[1], exit_file, pid_file, start, ctx);
    }
  close (fds[1]);
  return await_report (fds[0], monitor, err);
}
