/* `spec`: the default config.json, runc's template with Berth's hostname. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "files.h"
#include "json.h"
#include "lifecycle.h"

static const char template_head[] = "{\n"
                                    "  \"ociVersion\": \"1.0.2\",\n"
                                    "  \"process\": {\n"
                                    "    \"terminal\": true,\n"
                                    "    \"user\": { \"uid\": 0, \"gid\": 0 },\n"
                                    "    \"args\": [\"sh\"],\n"
                                    "    \"env\": [\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\", "
                                    "\"TERM=xterm\"],\n"
                                    "    \"cwd\": \"/\",\n"
                                    "    \"capabilities\": {\n"
                                    "      \"bounding\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
                                    "      \"effective\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
                                    "      \"permitted\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"],\n"
                                    "      \"ambient\": [\"CAP_AUDIT_WRITE\", \"CAP_KILL\", \"CAP_NET_BIND_SERVICE\"]\n"
                                    "    },\n"
                                    "    \"rlimits\": [{ \"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024 }],\n"
                                    "    \"noNewPrivileges\": true\n"
                                    "  },\n"
                                    "  \"root\": { \"path\": \"rootfs\", \"readonly\": true },\n"
                                    "  \"hostname\": \"berth\",\n"
                                    "  \"mounts\": [\n"
                                    "    { \"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\" },\n"
                                    "    { \"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\", "
                                    "\"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"] },\n"
                                    "    { \"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\", "
                                    "\"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", "
                                    "\"mode=0620\"%s] },\n"
                                    "    { \"destination\": \"/dev/shm\", \"type\": \"tmpfs\", \"source\": \"shm\", "
                                    "\"options\": [\"nosuid\", \"noexec\", \"nodev\", \"mode=1777\", \"size=65536k\"] },\n"
                                    "    { \"destination\": \"/dev/mqueue\", \"type\": \"mqueue\", \"source\": \"mqueue\", "
                                    "\"options\": [\"nosuid\", \"noexec\", \"nodev\"] },\n"
                                    "    { \"destination\": \"/sys\", \"type\": \"%s\", \"source\": \"%s\", "
                                    "\"options\": [%s\"nosuid\", \"noexec\", \"nodev\", \"ro\"] },\n"
                                    "    { \"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": "
                                    "\"cgroup\", \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"] }\n"
                                    "  ],\n"
                                    "  \"linux\": {\n";

static const char template_tail[]
    = "    \"maskedPaths\": [\"/proc/acpi\", \"/proc/asound\", \"/proc/kcore\", \"/proc/keys\", "
      "\"/proc/latency_stats\", \"/proc/timer_list\", \"/proc/timer_stats\", \"/proc/sched_debug\", \"/sys/firmware\", "
      "\"/proc/scsi\"],\n"
      "    \"readonlyPaths\": [\"/proc/bus\", \"/proc/fs\", \"/proc/irq\", \"/proc/sys\", \"/proc/sysrq-trigger\"]\n"
      "  }\n"
      "}\n";

int
command_spec (const char *bundle, bool rootless, shim_error_t *err)
{
  cleanup_free char *path = xasprintf ("%s/config.json", bundle);
  if (access (path, F_OK) == 0)
    return shim_make_error_code (err, SHIM_CODE_EXISTS, EEXIST, "`%s` exists; remove it first", path);
  struct strbuf b = { 0 };
  strbuf_addf (&b, template_head, rootless ? "" : ", \"gid=5\"", rootless ? "none" : "sysfs",
               rootless ? "/sys" : "sysfs", rootless ? "\"rbind\", " : "");
  if (rootless)
    strbuf_addf (&b,
                 "    \"uidMappings\": [{ \"containerID\": 0, \"hostID\": %u, \"size\": 1 }],\n"
                 "    \"gidMappings\": [{ \"containerID\": 0, \"hostID\": %u, \"size\": 1 }],\n"
                 "    \"namespaces\": [{ \"type\": \"pid\" }, { \"type\": \"ipc\" }, { \"type\": \"uts\" }, "
                 "{ \"type\": \"mount\" }, { \"type\": \"cgroup\" }, { \"type\": \"user\" }],\n",
                 getuid (), getgid ());
  else
    strbuf_add (&b, "    \"resources\": { \"devices\": [{ \"allow\": false, \"access\": \"rwm\" }] },\n"
                    "    \"namespaces\": [{ \"type\": \"pid\" }, { \"type\": \"network\" }, { \"type\": \"ipc\" }, "
                    "{ \"type\": \"uts\" }, { \"type\": \"mount\" }, { \"type\": \"cgroup\" }],\n");
  strbuf_add (&b, template_tail);
  int r = write_file_atomic (path, b.p, b.len, 0644, err);
  free (b.p);
  return r;
}
