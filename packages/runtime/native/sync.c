#include "sync.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static int
send_msg (int fd, const struct sync_msg *m, int passfd, shim_error_t *err)
{
  struct iovec iov = { .iov_base = (void *) m, .iov_len = sizeof *m };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctrl;
  if (passfd >= 0)
    {
      memset (&ctrl, 0, sizeof ctrl);
      mh.msg_control = ctrl.buf;
      mh.msg_controllen = sizeof ctrl.buf;
      struct cmsghdr *c = CMSG_FIRSTHDR (&mh);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN (sizeof (int));
      memcpy (CMSG_DATA (c), &passfd, sizeof (int));
    }
  if (SHIM_RETRY (sendmsg (fd, &mh, MSG_NOSIGNAL)) < 0)
    return shim_make_error (err, errno, "sync: send message %d", m->type);
  return 0;
}

int
sync_send (int fd, int type, int pid, shim_error_t *err)
{
  struct sync_msg m;
  memset (&m, 0, sizeof m);
  m.type = type;
  m.pid = pid;
  return send_msg (fd, &m, -1, err);
}

int
sync_send_fd (int fd, int type, int passfd, const char *text, shim_error_t *err)
{
  struct sync_msg m;
  memset (&m, 0, sizeof m);
  m.type = type;
  if (text)
    snprintf (m.msg, sizeof m.msg, "%s", text);
  return send_msg (fd, &m, passfd, err);
}

void
sync_send_error (int fd, const shim_error_t e)
{
  struct sync_msg m;
  memset (&m, 0, sizeof m);
  m.type = SYNC_ERROR;
  m.status = e->status;
  m.code = e->code;
  snprintf (m.msg, sizeof m.msg, "%s", e->msg);
  send_msg (fd, &m, -1, NULL);
}

int
sync_recv (int fd, struct sync_msg *m, int *passfd, shim_error_t *err)
{
  union
  {
    char buf[CMSG_SPACE (sizeof (int))];
    struct cmsghdr align;
  } ctrl;
  struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
  struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctrl.buf, .msg_controllen = sizeof ctrl.buf };
  if (passfd)
    *passfd = -1;
  ssize_t n = SHIM_RETRY (recvmsg (fd, &mh, MSG_CMSG_CLOEXEC));
  if (n < 0)
    {
      if (errno == ECONNRESET)
        return 0;
      return shim_make_error (err, errno, "sync: receive");
    }
  if (n == 0)
    return 0;
  if ((size_t) n < offsetof (struct sync_msg, msg))
    return shim_make_error (err, EPROTO, "sync: short message");
  m->msg[sizeof m->msg - 1] = 0;
  for (struct cmsghdr *c = CMSG_FIRSTHDR (&mh); c; c = CMSG_NXTHDR (&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
      {
        int got;
        memcpy (&got, CMSG_DATA (c), sizeof got);
        if (passfd)
          *passfd = got;
        else
          close (got);
      }
  return 1;
}

int
sync_expect (int fd, int type, const char *what, shim_error_t *err)
{
  struct sync_msg m;
  int r = sync_recv (fd, &m, NULL, err);
  if (r < 0)
    return r;
  if (r == 0)
    return shim_make_error (err, EPIPE, "%s: the other side exited", what);
  if (m.type == SYNC_ERROR)
    return shim_make_error_code (err, m.code, m.status, "%s", m.msg);
  if (m.type != type)
    return shim_make_error (err, EPROTO, "%s: unexpected message %d (want %d)", what, m.type, type);
  return 0;
}
