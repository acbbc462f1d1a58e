#include "caps.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

static const char *const cap_names[] = {
  "CHOWN",           "DAC_OVERRIDE",    "DAC_READ_SEARCH", "FOWNER",         "FSETID",
  "KILL",            "SETGID",          "SETUID",          "SETPCAP",        "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE", "NET_BROADCAST",  "NET_ADMIN",       "NET_RAW",        "IPC_LOCK",
  "IPC_OWNER",       "SYS_MODULE",      "SYS_RAWIO",       "SYS_CHROOT",     "SYS_PTRACE",
  "SYS_PACCT",       "SYS_ADMIN",       "SYS_BOOT",        "SYS_NICE",       "SYS_RESOURCE",
  "SYS_TIME",        "SYS_TTY_CONFIG",  "MKNOD",           "LEASE",          "AUDIT_WRITE",
  "AUDIT_CONTROL",   "SETFCAP",         "MAC_OVERRIDE",    "MAC_ADMIN",      "SYSLOG",
  "WAKE_ALARM",      "BLOCK_SUSPEND",   "AUDIT_READ",      "PERFMON",        "BPF",
  "CHECKPOINT_RESTORE",
};

int
cap_from_name (const char *name)
{
  if (strncasecmp (name, "CAP_", 4) == 0)
    name += 4;
  for (size_t i = 0; i < sizeof cap_names / sizeof cap_names[0]; i++)
    if (strcasecmp (name, cap_names[i]) == 0)
      return (int) i;
  return -1;
}

int
cap_last (void)
{
  static int last = -1;
  if (last >= 0)
    return last;
  char buf[16] = { 0 };
  int fd = open ("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
  if (fd >= 0)
    {
      if (read (fd, buf, sizeof buf - 1) > 0)
        last = atoi (buf);
      close (fd);
    }
  if (last <= 0)
    last = CAP_LAST_CAP;
  return last;
}

int
caps_drop_bounding (const struct spec_caps *caps, shim_error_t *err)
{
  int last = cap_last ();
  for (int c = 0; c <= last; c++)
    {
      if (caps->bounding & (1ULL << c))
        continue;
      if (prctl (PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
        return shim_make_error (err, errno, "drop CAP_%s from the bounding set", c < 41 ? cap_names[c] : "?");
    }
  return 0;
}

int
caps_apply (const struct spec_caps *caps, shim_error_t *err)
{
  struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2];
  memset (data, 0, sizeof data);
  data[0].effective = (uint32_t) caps->effective;
  data[1].effective = (uint32_t) (caps->effective >> 32);
  data[0].permitted = (uint32_t) caps->permitted;
  data[1].permitted = (uint32_t) (caps->permitted >> 32);
  data[0].inheritable = (uint32_t) caps->inheritable;
  data[1].inheritable = (uint32_t) (caps->inheritable >> 32);
  if (syscall (SYS_capset, &hdr, data) < 0)
    return shim_make_error (err, errno, "capset");
  if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
    return shim_make_error (err, errno, "clear the ambient capabilities");
  int last = cap_last ();
  for (int c = 0; c <= last; c++)
    {
      uint64_t bit = 1ULL << c;
      /* The kernel admits an ambient capability only if it is also permitted and inheritable;
         specs (runc's own template) list ambient ones that are not, which runc skips too. */
      if (!(caps->ambient & bit) || !(caps->permitted & bit) || !(caps->inheritable & bit))
        continue;
      if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) < 0)
        return shim_make_error (err, errno, "raise the ambient capability CAP_%s", cap_names[c]);
    }
  return 0;
}
