/* Messages between the runtime (parent) and the process it starts, over a SOCK_SEQPACKET pair:
   one message per step, so neither side ever sleeps or polls. */
#ifndef BERTH_SYNC_H
#define BERTH_SYNC_H

#include <sys/types.h>

#include "error.h"

#define SYNC_GO 1    /* parent -> child: ids mapped, go on */
#define SYNC_READY 2 /* child -> parent: set up, waiting for SYNC_START */
#define SYNC_START 3 /* parent -> child: exec the process now */
#define SYNC_ERROR 4 /* child -> parent: setup failed; status, code and msg say why */
#define SYNC_PTY 5   /* child -> parent: the pty master rides along as SCM_RIGHTS */
#define SYNC_PID 6   /* helper -> parent: the pid of the process it cloned */
#define SYNC_JOINED 7 /* child -> parent: in all its cgroups (cgroup_join_self) */

struct sync_msg
{
  int type;
  int status;
  int code;
  int pid;
  char msg[3072];
};

int sync_send (int fd, int type, int pid, shim_error_t *err);
/* Sends `passfd` along with the message (SCM_RIGHTS). */
int sync_send_fd (int fd, int type, int passfd, const char *text, shim_error_t *err);
/* Reports a child's error to the parent; used on the way out, so it cannot fail further. */
void sync_send_error (int fd, const shim_error_t e);
/* Receives one message; *passfd gets a passed descriptor or -1. Returns 0 at end of stream
   (the peer exec'd or exited), 1 with a message, negative on error. */
int sync_recv (int fd, struct sync_msg *msg, int *passfd, shim_error_t *err);
/* Waits for a message of `type`; a SYNC_ERROR turns into *err, end of stream into an error naming `what`. */
int sync_expect (int fd, int type, const char *what, shim_error_t *err);

#endif
