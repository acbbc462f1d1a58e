/* Pseudo-terminals: one opened inside the container's devpts, its master passed to the runtime
   or to a --console-socket, and the runtime's own terminal put into raw mode while it proxies. */
#ifndef BERTH_TERMINAL_H
#define BERTH_TERMINAL_H

#include <stdbool.h>
#include <termios.h>

#include "error.h"

/* Opens a new pty from /dev/ptmx of the current mount namespace; *slave_path gets "/dev/pts/N". */
int terminal_open (int *master, int *slave, char **slave_path, shim_error_t *err);
/* Makes the slave the controlling terminal and stdin/stdout/stderr of the calling process. */
int terminal_become_controlling (int slave, shim_error_t *err);
int terminal_set_size (int fd, unsigned short rows, unsigned short cols, shim_error_t *err);
/* Gives the terminal `to` the size of the terminal `from`; nothing when `from` is not a terminal. */
void terminal_copy_size (int from, int to);
/* Connects to a runc-style console socket and sends the master over it (SCM_RIGHTS). */
int terminal_send_to_socket (const char *socket_path, int master, const char *name, shim_error_t *err);
/* Raw mode for the runtime's own terminal while it relays a container's tty; restore undoes it. */
int terminal_make_raw (int fd, struct termios *saved, shim_error_t *err);
void terminal_restore (int fd, const struct termios *saved);

#endif
