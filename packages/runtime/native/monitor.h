/* The monitor: the parent of a container's process while it runs. It reaps it, relays its
   output to the json-file log, to attached clients and (in the foreground) to our own stdio,
   feeds its stdin, forwards signals and resizes its tty.

   Attach protocol (a unix stream socket, --attach-socket): every message in both directions is
   an 8-byte header [type, 0, 0, 0, length as big-endian u32] followed by `length` bytes, the
   framing of Docker's multiplexed streams. From the monitor: 1 stdout, 2 stderr (with a tty
   all output is type 1), 3 exit (payload: the exit code as a big-endian i32; sent last, then the
   socket closes). From a client: 0 stdin data, 4 close stdin, 5 resize (payload: rows and columns
   as big-endian u16). Output goes to every client attached at that moment; nothing is replayed
   (the log keeps the history).

   The json-file log rotates as docker's json-file driver does (max-size, max-file, compress):
   before a record is written to a log that holds max-size bytes or more, <log>.N-1 goes,
   <log>.K becomes <log>.K+1, <log> becomes <log>.1 and a new <log> is started. With max-file 1
   the log starts over (as a new file, so that a reader following it sees the change). With
   compress a child process gzips <log>.1 into <log>.1.gz; the next rotation waits for it. */
#ifndef BERTH_MONITOR_H
#define BERTH_MONITOR_H

#include <stdbool.h>
#include <sys/types.h>

#include "error.h"

#define ATTACH_STDIN 0
#define ATTACH_STDOUT 1
#define ATTACH_STDERR 2
#define ATTACH_EXIT 3
#define ATTACH_CLOSE_STDIN 4
#define ATTACH_RESIZE 5

struct monitor_options
{
  pid_t pid;             /* the process whose exit ends the loop */
  int signal_fd;         /* signalfd with SIGCHLD and the forwarded signals */
  bool forward_signals;  /* relay SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1/2 to pid */
  int sync_fd;           /* the init's sync socket until it execs, or -1 */
  int fifo_fd;           /* exec.fifo (create: a byte there means `start`), or -1 */
  const char *fifo_path; /* to reopen it when a writer leaves without writing */
  int out_fd, err_fd;    /* the process's output (with a tty: out_fd is the master), or -1 */
  int in_fd;             /* the process's stdin (pipe or master), or -1 */
  bool tty;
  int log_fd;    /* json-file log, or -1 */
  const char *log_path;   /* its path, to rotate it */
  long long log_max_size; /* rotate once the log holds this many bytes; 0: never */
  int log_max_files;      /* files kept, the live one included (<log>, <log>.1, ...); 1 truncates */
  bool log_compress;      /* gzip rotated files (<log>.1.gz, ...) */
  int listen_fd;      /* attach socket, or -1 */
  int first_client_fd; /* a client accepted before the loop started, or -1 */
  bool stdin_once;
  /* create --start-on-attach: the first attach client starts the process, as `start` does
     (then on_start runs, with on_start_ctx). */
  bool start_on_attach;
  void (*on_start) (void *ctx);
  void *on_start_ctx;
  /* Called once the process has exited and its output is in the log, before the clients get
     the exit: whoever is told of the exit then finds it recorded. */
  void (*on_exit) (void *ctx, int wait_status);
  void *on_exit_ctx;
  bool local;     /* also relay our own stdin/stdout/stderr */
  bool local_tty; /* our stdin is a terminal: SIGWINCH resizes the container's */
};

/* True when this build can gzip rotated logs (it was linked with zlib). */
bool monitor_can_compress (void);
/* zlib's version, when linked with it. */
const char *monitor_zlib_version (void);
/* Runs until the process has exited and its output is drained; *wait_status is waitpid's. */
int monitor_run (const struct monitor_options *o, int *wait_status, shim_error_t *err);
/* monitor_run for a process with a terminal (master), or none (-1): with o->local_tty this
   process's own terminal is in raw mode, and the container's sized like it, while it is relayed. */
int monitor_run_attached (const struct monitor_options *o, int master, int *wait_status, shim_error_t *err);
/* Creates the listening attach socket at `path` (removing a stale one). */
int monitor_listen (const char *path, int *out, shim_error_t *err);
/* Blocks the signals the monitor handles and returns a signalfd for them. */
int monitor_signalfd (bool forward, bool winch, int *out, shim_error_t *err);

#endif
