#include "monitor.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_ZLIB
#include <zlib.h>
#endif

#include "json.h"
#include "sync.h"
#include "terminal.h"

#define MAX_CLIENTS 64
#define CLIENT_BACKLOG (16u << 20) /* a client this far behind is dropped rather than stall the container */
#define LOG_LINE_MAX (16u << 10)   /* docker splits longer lines into partial records */
#define MAX_FRAME (1u << 20)

struct client
{
  int fd;
  struct strbuf in;
  struct strbuf out;
  size_t out_off;
  bool sent_stdin;
};

struct loop
{
  const struct monitor_options *o;
  int out_fd, err_fd, in_fd, sync_fd, fifo_fd, listen_fd;
  bool local_in; /* still reading our own stdin */
  struct client clients[MAX_CLIENTS];
  size_t n_clients;
  struct strbuf stdin_buf;
  size_t stdin_off;
  bool close_stdin_when_drained;
  struct strbuf pending[3]; /* partial log lines per stream */
  bool exited;
  int status;
  int log_fd;
  long long log_size;
  pid_t compress_pid; /* the child gzipping <log>.1, or 0 */
};

static void
set_nonblock (int fd)
{
  int fl = fcntl (fd, F_GETFL);
  if (fl >= 0)
    fcntl (fd, F_SETFL, fl | O_NONBLOCK);
}

static void
write_all (int fd, const char *p, size_t n)
{
  while (n > 0)
    {
      ssize_t w = write (fd, p, n);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            {
              struct pollfd pfd = { .fd = fd, .events = POLLOUT };
              poll (&pfd, 1, 1000);
              continue;
            }
          return;
        }
      p += w;
      n -= (size_t) w;
    }
}

bool
monitor_can_compress (void)
{
#ifdef HAVE_ZLIB
  return true;
#else
  return false;
#endif
}

const char *
monitor_zlib_version (void)
{
#ifdef HAVE_ZLIB
  return zlibVersion ();
#else
  return "";
#endif
}

#ifdef HAVE_ZLIB
/* In a child: <log>.1 to <log>.1.gz (through a temporary name, so a reader never opens half a
   file), then <log>.1 goes. */
static void __attribute__ ((noreturn)) compress_rotated (const char *log_path)
{
  syscall (SYS_close_range, 3U, ~0U, 0U);
  char *src = xasprintf ("%s.1", log_path);
  char *dst = xasprintf ("%s.1.gz", log_path);
  char *tmp = xasprintf ("%s.1.gz.tmp", log_path);
  int in = open (src, O_RDONLY | O_CLOEXEC);
  int fd = in < 0 ? -1 : open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  gzFile out = fd < 0 ? NULL : gzdopen (fd, "wb");
  bool ok = out != NULL;
  char buf[65536];
  ssize_t n;
  while (ok && (n = read (in, buf, sizeof buf)) != 0)
    ok = n > 0 ? gzwrite (out, buf, (unsigned) n) == (int) n : errno == EINTR;
  if (out && gzclose (out) != Z_OK)
    ok = false;
  if (ok && rename (tmp, dst) == 0)
    unlink (src);
  else
    unlink (tmp);
  _exit (ok ? 0 : 1);
}
#endif

static void
log_rotate (struct loop *l)
{
  const struct monitor_options *o = l->o;
  if (l->compress_pid > 0)
    {
      /* The previous <log>.1 must be compressed before it moves to <log>.2.gz. */
      SHIM_RETRY (waitpid (l->compress_pid, NULL, 0));
      l->compress_pid = 0;
    }
  close (l->log_fd);
  l->log_fd = -1;
  if (o->log_max_files > 1)
    {
      const char *ext = o->log_compress ? ".gz" : "";
      cleanup_free char *last = xasprintf ("%s.%d%s", o->log_path, o->log_max_files - 1, ext);
      unlink (last);
      for (int i = o->log_max_files - 1; i > 1; i--)
        {
          cleanup_free char *to = xasprintf ("%s.%d%s", o->log_path, i, ext);
          cleanup_free char *from = xasprintf ("%s.%d%s", o->log_path, i - 1, ext);
          rename (from, to);
        }
      cleanup_free char *first = xasprintf ("%s.1", o->log_path);
      rename (o->log_path, first);
    }
  else
    unlink (o->log_path);
  l->log_fd = open (o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  l->log_size = 0;
#ifdef HAVE_ZLIB
  if (o->log_compress && o->log_max_files > 1)
    {
      pid_t pid = fork ();
      if (pid == 0)
        compress_rotated (o->log_path);
      l->compress_pid = pid > 0 ? pid : 0;
    }
#endif
}

static void
log_write (struct loop *l, const char *p, size_t n)
{
  if (l->o->log_max_size > 0 && l->log_size >= l->o->log_max_size && l->o->log_path)
    log_rotate (l);
  if (l->log_fd < 0)
    return;
  write_all (l->log_fd, p, n);
  l->log_size += (long long) n;
}

static void
log_record (struct loop *l, int stream, const char *line, size_t n)
{
  struct strbuf b = { 0 };
  struct timespec now;
  clock_gettime (CLOCK_REALTIME, &now);
  strbuf_add (&b, "{\"log\":");
  json_write_string (&b, line, n);
  strbuf_add (&b, stream == ATTACH_STDERR ? ",\"stream\":\"stderr\",\"time\":\"" : ",\"stream\":\"stdout\",\"time\":\"");
  format_rfc3339 (&b, &now);
  strbuf_add (&b, "\"}\n");
  log_write (l, b.p, b.len);
  free (b.p);
}

static void
log_output (struct loop *l, int stream, const char *data, size_t n)
{
  struct strbuf *p = &l->pending[stream];
  strbuf_addn (p, data, n);
  size_t start = 0;
  for (size_t i = 0; i < p->len; i++)
    if (p->p[i] == '\n' || i - start + 1 >= LOG_LINE_MAX)
      {
        log_record (l, stream, p->p + start, i - start + 1);
        start = i + 1;
      }
  memmove (p->p, p->p + start, p->len - start);
  p->len -= start;
}

static void
drop_client (struct loop *l, size_t i)
{
  close (l->clients[i].fd);
  free (l->clients[i].in.p);
  free (l->clients[i].out.p);
  l->clients[i] = l->clients[--l->n_clients];
}

static void
frame (struct strbuf *b, int type, const char *data, size_t n)
{
  unsigned char h[8] = { (unsigned char) type, 0, 0, 0, (unsigned char) (n >> 24), (unsigned char) (n >> 16),
                         (unsigned char) (n >> 8), (unsigned char) n };
  strbuf_addn (b, (const char *) h, 8);
  strbuf_addn (b, data, n);
}

static void
broadcast (struct loop *l, int type, const char *data, size_t n)
{
  for (size_t i = 0; i < l->n_clients;)
    {
      struct client *c = &l->clients[i];
      if (c->out.len - c->out_off > CLIENT_BACKLOG)
        {
          drop_client (l, i);
          continue;
        }
      frame (&c->out, type, data, n);
      i++;
    }
}

static void
output (struct loop *l, int stream, const char *data, size_t n)
{
  if (l->log_fd >= 0)
    log_output (l, stream, data, n);
  broadcast (l, stream, data, n);
  if (l->o->local)
    write_all (stream == ATTACH_STDERR ? 2 : 1, data, n);
}

/* Reads what is there; returns false at end of stream. */
static bool
pump_output (struct loop *l, int *fd, int stream)
{
  char buf[65536];
  ssize_t n = read (*fd, buf, sizeof buf);
  if (n > 0)
    {
      output (l, stream, buf, (size_t) n);
      return true;
    }
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return true;
  /* EOF, or EIO from a pty master once the last slave is closed. */
  if (*fd != l->in_fd)
    close (*fd);
  *fd = -1;
  return false;
}

static void
close_stdin (struct loop *l)
{
  if (l->in_fd < 0)
    return;
  if (l->stdin_buf.len > l->stdin_off)
    {
      l->close_stdin_when_drained = true;
      return;
    }
  /* A tty has no end of input to signal by closing (the master also carries output). */
  if (!l->o->tty)
    {
      close (l->in_fd);
      l->in_fd = -1;
    }
}

static void
queue_stdin (struct loop *l, const char *data, size_t n)
{
  if (l->in_fd < 0)
    return;
  strbuf_addn (&l->stdin_buf, data, n);
}

static void
resize (struct loop *l, unsigned short rows, unsigned short cols)
{
  if (!l->o->tty || l->out_fd < 0)
    return;
  struct winsize ws = { .ws_row = rows, .ws_col = cols };
  ioctl (l->out_fd, TIOCSWINSZ, &ws);
}

/* Parses complete frames from a client; returns false when the client must go. */
static bool
client_frames (struct loop *l, struct client *c)
{
  size_t off = 0;
  while (c->in.len - off >= 8)
    {
      const unsigned char *h = (const unsigned char *) c->in.p + off;
      uint32_t len = ((uint32_t) h[4] << 24) | ((uint32_t) h[5] << 16) | ((uint32_t) h[6] << 8) | h[7];
      if (len > MAX_FRAME)
        return false;
      if (c->in.len - off < 8 + (size_t) len)
        break;
      const char *payload = c->in.p + off + 8;
      switch (h[0])
        {
        case ATTACH_STDIN:
          c->sent_stdin = true;
          queue_stdin (l, payload, len);
          break;
        case ATTACH_CLOSE_STDIN:
          close_stdin (l);
          break;
        case ATTACH_RESIZE:
          if (len >= 4)
            {
              const unsigned char *p = (const unsigned char *) payload;
              resize (l, (unsigned short) ((p[0] << 8) | p[1]), (unsigned short) ((p[2] << 8) | p[3]));
            }
          break;
        default:
          return false;
        }
      off += 8 + len;
    }
  memmove (c->in.p, c->in.p + off, c->in.len - off);
  c->in.len -= off;
  return true;
}

static void
client_readable (struct loop *l, size_t i)
{
  struct client *c = &l->clients[i];
  char buf[65536];
  ssize_t n = read (c->fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0)
    {
      bool closes = l->o->stdin_once && c->sent_stdin;
      drop_client (l, i);
      if (closes)
        close_stdin (l);
      return;
    }
  strbuf_addn (&c->in, buf, (size_t) n);
  if (!client_frames (l, c))
    drop_client (l, i);
}

static bool
client_flush (struct loop *l, size_t i)
{
  struct client *c = &l->clients[i];
  while (c->out.len > c->out_off)
    {
      ssize_t w = send (c->fd, c->out.p + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            return true;
          drop_client (l, i);
          return false;
        }
      c->out_off += (size_t) w;
    }
  c->out.len = c->out_off = 0;
  return true;
}

static void
add_client (struct loop *l, int fd)
{
  if (l->n_clients == MAX_CLIENTS)
    {
      close (fd);
      return;
    }
  struct client *c = &l->clients[l->n_clients++];
  memset (c, 0, sizeof *c);
  c->fd = fd;
}

static void
send_start (struct loop *l)
{
  shim_error_t e = NULL;
  if (l->sync_fd >= 0 && sync_send (l->sync_fd, SYNC_START, 0, &e) < 0)
    shim_error_release (&e);
}

static void
accept_client (struct loop *l)
{
  int fd = accept4 (l->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0)
    return;
  add_client (l, fd);
  if (l->o->start_on_attach && l->fifo_fd >= 0)
    {
      /* What `start` does: the fifo goes first, so that `state` says running from now on. */
      unlink (l->o->fifo_path);
      close (l->fifo_fd);
      l->fifo_fd = -1;
      send_start (l);
      if (l->o->on_start)
        l->o->on_start (l->o->on_start_ctx);
    }
}

static void
flush_stdin (struct loop *l)
{
  while (l->in_fd >= 0 && l->stdin_buf.len > l->stdin_off)
    {
      ssize_t w = write (l->in_fd, l->stdin_buf.p + l->stdin_off, l->stdin_buf.len - l->stdin_off);
      if (w < 0)
        {
          if (errno == EINTR)
            continue;
          if (errno == EAGAIN)
            return;
          /* The process closed its stdin: drop what it will never read. */
          if (!l->o->tty)
            {
              close (l->in_fd);
              l->in_fd = -1;
            }
          l->stdin_buf.len = l->stdin_off = 0;
          return;
        }
      l->stdin_off += (size_t) w;
    }
  l->stdin_buf.len = l->stdin_off = 0;
  if (l->close_stdin_when_drained)
    {
      l->close_stdin_when_drained = false;
      close_stdin (l);
    }
}

static void
reap (struct loop *l)
{
  for (;;)
    {
      int status;
      pid_t p = waitpid (-1, &status, WNOHANG);
      if (p <= 0)
        return;
      if (p == l->compress_pid)
        l->compress_pid = 0;
      if (p == l->o->pid)
        {
          l->exited = true;
          l->status = status;
        }
    }
}

static void
handle_signal (struct loop *l)
{
  struct signalfd_siginfo si;
  while (read (l->o->signal_fd, &si, sizeof si) == (ssize_t) sizeof si)
    {
      int sig = (int) si.ssi_signo;
      if (sig == SIGCHLD)
        reap (l);
      else if (sig == SIGWINCH)
        {
          struct winsize ws;
          if (l->o->local_tty && ioctl (0, TIOCGWINSZ, &ws) == 0)
            resize (l, ws.ws_row, ws.ws_col);
        }
      else if (l->o->forward_signals && !l->exited)
        kill (l->o->pid, sig);
    }
}

static void
handle_sync (struct loop *l)
{
  struct sync_msg m;
  shim_error_t e = NULL;
  int r = sync_recv (l->sync_fd, &m, NULL, &e);
  if (r > 0 && m.type == SYNC_ERROR)
    {
      /* The process failed between `start` and exec: its error is the container's last words. */
      char *text = xasprintf ("berth-runtime: %s%s%s\n", m.msg, m.status ? ": " : "", m.status ? strerror (m.status) : "");
      output (l, ATTACH_STDERR, text, strlen (text));
      free (text);
      return;
    }
  shim_error_release (&e);
  if (r <= 0)
    {
      close (l->sync_fd);
      l->sync_fd = -1;
    }
}

static void
handle_fifo (struct loop *l)
{
  char c;
  ssize_t n = read (l->fifo_fd, &c, 1);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  close (l->fifo_fd);
  l->fifo_fd = -1;
  if (n == 1)
    {
      send_start (l);
      return;
    }
  /* A writer came and went without a byte: wait for the next one. */
  if (l->o->fifo_path)
    l->fifo_fd = open (l->o->fifo_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
}

static void
local_stdin (struct loop *l)
{
  char buf[65536];
  ssize_t n = read (0, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return;
  if (n <= 0)
    {
      l->local_in = false;
      close_stdin (l);
      return;
    }
  queue_stdin (l, buf, (size_t) n);
}

/* After the exit frame: a socket closed with unread input resets the connection, and a client
   whose write then fails may drop the output and the exit it had not read yet. So the clients
   get end of stream and are read until they close too (bounded: one that does not is let go). */
static void
linger_clients (struct loop *l)
{
  struct timespec start, now;
  clock_gettime (CLOCK_MONOTONIC, &start);
  size_t open_clients = l->n_clients;
  bool done[MAX_CLIENTS] = { false };
  while (open_clients > 0)
    {
      struct pollfd pfd[MAX_CLIENTS];
      for (size_t i = 0; i < l->n_clients; i++)
        pfd[i] = (struct pollfd) { .fd = done[i] ? -1 : l->clients[i].fd, .events = POLLIN };
      clock_gettime (CLOCK_MONOTONIC, &now);
      long elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      if (elapsed >= 1000 || poll (pfd, l->n_clients, (int) (1000 - elapsed)) <= 0)
        return;
      for (size_t i = 0; i < l->n_clients; i++)
        {
          if (done[i] || pfd[i].revents == 0)
            continue;
          char buf[4096];
          ssize_t n = read (l->clients[i].fd, buf, sizeof buf);
          if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            {
              done[i] = true;
              open_clients--;
            }
        }
    }
}

int
monitor_run (const struct monitor_options *o, int *wait_status, shim_error_t *err)
{
  struct loop l = { .o = o,
                    .out_fd = o->out_fd,
                    .err_fd = o->err_fd,
                    .in_fd = o->in_fd,
                    .sync_fd = o->sync_fd,
                    .fifo_fd = o->fifo_fd,
                    .listen_fd = o->listen_fd,
                    .local_in = o->local && o->in_fd >= 0,
                    .log_fd = o->log_fd };
  struct stat log_st;
  if (l.log_fd >= 0 && fstat (l.log_fd, &log_st) == 0)
    l.log_size = log_st.st_size;
  int fds[] = { l.out_fd, l.err_fd, l.in_fd };
  for (size_t i = 0; i < 3; i++)
    if (fds[i] >= 0)
      set_nonblock (fds[i]);
  if (l.local_in)
    set_nonblock (0);
  if (o->first_client_fd >= 0)
    {
      set_nonblock (o->first_client_fd);
      add_client (&l, o->first_client_fd);
    }
  /* Catch an exit that happened before we started listening for SIGCHLD. */
  reap (&l);
  for (;;)
    {
      struct pollfd pfd[8 + MAX_CLIENTS];
      int kind[8 + MAX_CLIENTS];
      nfds_t n = 0;
#define WATCH(fd_, ev_, k_)                                                                                            \
  do                                                                                                                   \
    {                                                                                                                  \
      pfd[n].fd = (fd_);                                                                                               \
      pfd[n].events = (ev_);                                                                                           \
      pfd[n].revents = 0;                                                                                              \
      kind[n++] = (k_);                                                                                                \
    }                                                                                                                  \
  while (0)
      bool draining = l.exited;
      if (!draining)
        WATCH (o->signal_fd, POLLIN, -1);
      if (l.out_fd >= 0)
        WATCH (l.out_fd, POLLIN, -2);
      if (l.err_fd >= 0)
        WATCH (l.err_fd, POLLIN, -3);
      if (!draining)
        {
          if (l.sync_fd >= 0)
            WATCH (l.sync_fd, POLLIN, -4);
          if (l.fifo_fd >= 0)
            WATCH (l.fifo_fd, POLLIN, -5);
          if (l.listen_fd >= 0)
            WATCH (l.listen_fd, POLLIN, -6);
          /* Stop taking stdin while a backlog is waiting: that is the backpressure. */
          bool stdin_room = l.stdin_buf.len - l.stdin_off < (1u << 20);
          if (l.local_in && l.in_fd >= 0 && stdin_room)
            WATCH (0, POLLIN, -7);
          if (l.in_fd >= 0 && l.stdin_buf.len > l.stdin_off)
            WATCH (l.in_fd, POLLOUT, -8);
          for (size_t i = 0; i < l.n_clients; i++)
            WATCH (l.clients[i].fd, (short) ((stdin_room ? POLLIN : 0) | (l.clients[i].out.len > l.clients[i].out_off ? POLLOUT : 0)),
                   (int) i);
        }
#undef WATCH
      if (draining && l.out_fd < 0 && l.err_fd < 0)
        break;
      /* Once the process is gone, take only what is already buffered: with the host's pid
         namespace a leftover child could hold the pipes open forever. */
      int r = poll (pfd, n, draining ? 0 : -1);
      if (r < 0)
        {
          if (errno == EINTR)
            continue;
          return shim_make_error (err, errno, "monitor: poll");
        }
      if (r == 0 && draining)
        break;
      /* Clients are handled last and from the end, as dropping one moves another into its slot. */
      for (nfds_t i = 0; i < n; i++)
        {
          if (pfd[i].revents == 0 || kind[i] >= 0)
            continue;
          short ev = pfd[i].revents;
          switch (kind[i])
            {
            case -1:
              handle_signal (&l);
              break;
            case -2:
              pump_output (&l, &l.out_fd, ATTACH_STDOUT);
              break;
            case -3:
              pump_output (&l, &l.err_fd, ATTACH_STDERR);
              break;
            case -4:
              handle_sync (&l);
              break;
            case -5:
              handle_fifo (&l);
              break;
            case -6:
              accept_client (&l);
              break;
            case -7:
              local_stdin (&l);
              break;
            case -8:
              (void) ev;
              flush_stdin (&l);
              break;
            }
        }
      for (nfds_t i = n; i > 0; i--)
        {
          if (kind[i - 1] < 0 || pfd[i - 1].revents == 0)
            continue;
          size_t ci = (size_t) kind[i - 1];
          if (ci >= l.n_clients || l.clients[ci].fd != pfd[i - 1].fd)
            continue;
          if (pfd[i - 1].revents & POLLOUT)
            if (!client_flush (&l, ci))
              continue;
          if (pfd[i - 1].revents & (POLLIN | POLLHUP | POLLERR))
            client_readable (&l, ci);
        }
      for (size_t i = l.n_clients; i > 0; i--)
        if (l.clients[i - 1].out.len > l.clients[i - 1].out_off)
          client_flush (&l, i - 1);
      if (l.stdin_buf.len > l.stdin_off)
        flush_stdin (&l);
    }

  for (int s = 1; s <= 2; s++)
    if (l.log_fd >= 0 && l.pending[s].len)
      log_record (&l, s, l.pending[s].p, l.pending[s].len);
  if (o->on_exit)
    o->on_exit (o->on_exit_ctx, l.status);
  int code = WIFEXITED (l.status) ? WEXITSTATUS (l.status) : 128 + WTERMSIG (l.status);
  unsigned char be[4] = { (unsigned char) (code >> 24), (unsigned char) (code >> 16), (unsigned char) (code >> 8),
                          (unsigned char) code };
  broadcast (&l, ATTACH_EXIT, (const char *) be, 4);
  for (size_t i = 0; i < l.n_clients; i++)
    {
      struct client *c = &l.clients[i];
      write_all (c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
      shutdown (c->fd, SHUT_WR);
    }
  linger_clients (&l);
  for (size_t i = l.n_clients; i > 0; i--)
    drop_client (&l, i - 1);
  if (l.in_fd >= 0 && l.in_fd != l.out_fd)
    close (l.in_fd);
  if (l.out_fd >= 0)
    close (l.out_fd);
  if (l.err_fd >= 0)
    close (l.err_fd);
  if (l.sync_fd >= 0)
    close (l.sync_fd);
  if (l.fifo_fd >= 0)
    close (l.fifo_fd);
  if (l.log_fd >= 0 && l.log_fd != o->log_fd)
    close (l.log_fd);
  for (int s = 0; s < 3; s++)
    free (l.pending[s].p);
  free (l.stdin_buf.p);
  *wait_status = l.status;
  return 0;
}

int
monitor_listen (const char *path, int *out, shim_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path)
    return shim_make_error_code (err, SHIM_CODE_USAGE, ENAMETOOLONG, "--attach-socket `%s`", path);
  strcpy (addr.sun_path, path);
  int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return shim_make_error (err, errno, "socket");
  struct stat st;
  if (lstat (path, &st) == 0 && S_ISSOCK (st.st_mode))
    unlink (path);
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, 16) < 0)
    {
      int saved = errno;
      close (fd);
      return shim_make_error (err, saved, "listen on the attach socket `%s`", path);
    }
  chmod (path, 0600);
  *out = fd;
  return 0;
}

int
monitor_signalfd (bool forward, bool winch, int *out, shim_error_t *err)
{
  sigset_t set;
  sigemptyset (&set);
  sigaddset (&set, SIGCHLD);
  if (forward)
    {
      static const int forwarded[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2 };
      for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset (&set, forwarded[i]);
    }
  if (winch)
    sigaddset (&set, SIGWINCH);
  if (sigprocmask (SIG_BLOCK, &set, NULL) < 0)
    return shim_make_error (err, errno, "block signals");
  int fd = signalfd (-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (fd < 0)
    return shim_make_error (err, errno, "signalfd");
  *out = fd;
  return 0;
}

int
monitor_run_attached (const struct monitor_options *o, int master, int *wait_status, shim_error_t *err)
{
  struct termios saved;
  bool raw = false;
  if (o->local_tty)
    {
      terminal_copy_size (0, master);
      raw = terminal_make_raw (0, &saved, NULL) == 0;
    }
  int r = monitor_run (o, wait_status, err);
  if (raw)
    terminal_restore (0, &saved);
  return r;
}
