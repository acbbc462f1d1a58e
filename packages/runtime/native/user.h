/* docker's --user and --group-add, looked up in the container's /etc/passwd and /etc/group as the
   engine would look them up in the image (runc's GetExecUser rules), once the container's root
   is in place: the rootfs may be mounted where only the container sees it. */
#ifndef BERTH_USER_H
#define BERTH_USER_H

#include "error.h"
#include "spec.h"

/* Sets the process's uid, gid, additional gids and home from `user` (`name`, `uid`, `uid:gid`,
   `name:group`, ...; empty is root) and the comma-separated `group_add` (NULL for none). A name
   that is not in the files is ERR_USER_NOT_FOUND; a numeric uid without an entry is allowed. */
int user_lookup (struct spec_process *p, const char *user, const char *group_add, shim_error_t *err);

#endif
