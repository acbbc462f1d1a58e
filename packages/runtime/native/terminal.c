#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

int
terminal_open (int *master, int *slave, char **slave_path, shim_error_t *err)
{
  int m = open ("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0)
    return shim_make_error (err, errno, "open /dev/ptmx");
  int unlock = 0, n = 0;
  if (ioctl (m, TIOCSPTLCK, &unlock) < 0 || ioctl (m, TIOCGPTN, &n) < 0)
    {
      int saved = errno;
      close (m);
      return shim_make_error (err, saved, "unlock the pty");
    }
  /* TIOCGPTPEER opens the peer through the master, immune to a path swapped under /dev/pts. */
  int s = ioctl (m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (s < 0)
    {
      char path[64];
      snprintf (path, sizeof path, "/dev/pts/%d", n);
      s = open (path, O_RDWR | O_NOCTTY | O_CLOEXEC);
    }
  if (s < 0)
    {
      int saved = errno;
      close (m);
      return shim_make_error (err, saved, "open the pty peer /dev/pts/%d", n);
    }
  *master = m;
  *slave = s;
  *slave_path = xasprintf ("/dev/pts/%d", n);
  return 0;
}

int
terminal_become_controlling (int slave, shim_error_t *err)
{
  if (setsid () < 0)
    return shim_make_error (err, errno, "setsid");
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    return shim_make_error (err, errno, "make the pty the controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (dup2 (slave, fd) < 0)
      return shim_make_error (err, errno, "dup the pty onto fd %d", fd);
  return 0;
}

int
terminal_set_size (int fd, unsigned short rows, unsigned short cols, shim_error_t *err)
{
  struct winsize ws = { .ws_row = rows, .ws_col = cols };
  if (ioctl (fd, TIOCSWINSZ, &ws) < 0)
    return shim_make_error (err, errno, "set the terminal size");
  return 0;
}

void
terminal_copy_size (int from, int to)
{
  struct winsize ws;
  if (ioctl (from, TIOCGWINSZ, &ws) == 0)
    terminal_set_size (to, ws.ws_row, ws.ws_col, NULL);
}

int
terminal_send_to_socket (const char *socket_path, int master, const char *name, shim_error_t *err)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (socket_path) >= sizeof addr.sun_path)
    return shim_make_error_code (err, SHIM_CODE_USAGE, ENAMETOOLONG, "--console-socket `%s`", socket_path);
  strcpy (addr.sun_path, socket_path);
  cleanup_close int fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return shim_make_error (err, errno, "socket");
  if (connect (fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    return shim_make_error (err, errno, "connect to the console socket `%s`", socket_path);
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctrl;
  memset (&ctrl, 0, sizeof ctrl);
  struct iovec iov = { .iov_base = (void *) name, .iov_len = strlen (name) };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf };
  struct cmsghdr *c = CMSG_FIRSTHDR (&mh);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (c), &master, sizeof (int));
  if (SHIM_RETRY (sendmsg (fd, &mh, MSG_NOSIGNAL)) < 0)
    return shim_make_error (err, errno, "send the pty master to `%s`", socket_path);
  return 0;
}

int
terminal_make_raw (int fd, struct termios *saved, shim_error_t *err)
{
  if (tcgetattr (fd, saved) < 0)
    return shim_make_error (err, errno, "tcgetattr");
  struct termios raw = *saved;
  cfmakeraw (&raw);
  /* Keep output post-processing off too, like `docker run -t`: the container's tty does it. */
  if (tcsetattr (fd, TCSANOW, &raw) < 0)
    return shim_make_error (err, errno, "tcsetattr");
  return 0;
}

void
terminal_restore (int fd, const struct termios *saved)
{
  tcsetattr (fd, TCSANOW, saved);
}
