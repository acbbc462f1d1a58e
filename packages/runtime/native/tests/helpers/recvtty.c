/* A console-socket receiver for tests (runc's contrib/recvtty, reduced): listens on a unix
   socket, takes one pty master over SCM_RIGHTS, writes its stdin to it and what it reads from it
   to stdout until the pty closes. Usage: recvtty SOCKET */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int
main (int argc, char **argv)
{
  if (argc != 2)
    {
      fprintf (stderr, "usage: recvtty SOCKET\n");
      return 2;
    }
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  snprintf (addr.sun_path, sizeof addr.sun_path, "%s", argv[1]);
  int ls = socket (AF_UNIX, SOCK_STREAM, 0);
  unlink (argv[1]);
  if (ls < 0 || bind (ls, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (ls, 1) < 0)
    {
      perror ("listen");
      return 1;
    }
  /* Tell the test we are listening. */
  printf ("listening\n");
  fflush (stdout);
  int c = accept (ls, NULL, NULL);
  char name[256] = { 0 };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctrl;
  struct iovec iov = { .iov_base = name, .iov_len = sizeof name - 1 };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf };
  if (c < 0 || recvmsg (c, &mh, 0) < 0)
    {
      perror ("recvmsg");
      return 1;
    }
  struct cmsghdr *cm = CMSG_FIRSTHDR (&mh);
  if (cm == NULL || cm->cmsg_type != SCM_RIGHTS)
    {
      fprintf (stderr, "no descriptor received\n");
      return 1;
    }
  int master;
  memcpy (&master, CMSG_DATA (cm), sizeof master);
  printf ("got %s\n", name);
  fflush (stdout);
  struct pollfd p[2] = { { .fd = master, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
  char buf[4096];
  for (;;)
    {
      if (poll (p, 2, -1) < 0 && errno != EINTR)
        return 1;
      if (p[0].revents)
        {
          ssize_t n = read (master, buf, sizeof buf);
          if (n <= 0)
            return 0;
          if (write (1, buf, (size_t) n) < 0)
            return 1;
        }
      if (p[1].revents)
        {
          ssize_t n = read (0, buf, sizeof buf);
          if (n <= 0)
            p[1].fd = -1;
          else if (write (master, buf, (size_t) n) < 0)
            return 1;
        }
    }
}
