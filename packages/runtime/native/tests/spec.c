/* config.json validation: every refusal names the field it is about. */
#include <sched.h>
#include <sys/mount.h>

#include "check.h"
#include "spec.h"

static const char *
refused (const char *linux_json, const char *process_extra)
{
  char text[4096];
  snprintf (text, sizeof text,
            "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
            "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"%s},\"linux\":%s}",
            process_extra, linux_json);
  struct spec *s = NULL;
  shim_error_t err = NULL;
  CHECK (spec_parse (text, strlen (text), "config.json", "/b", &s, &err) < 0);
  CHECK (err->code == SHIM_CODE_INVALID_SPEC);
  return err->msg;
}

int
main (void)
{
  const char *ok = "{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\",\"readonly\":true},\"hostname\":\"h\","
                   "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\",\"env\":[\"A=1\"],\"user\":{\"uid\":1,\"gid\":2},"
                   "\"capabilities\":{\"bounding\":[\"CAP_KILL\",\"CHOWN\"]},"
                   "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"soft\":10,\"hard\":20}]},"
                   "\"mounts\":[{\"destination\":\"/tmp\",\"type\":\"tmpfs\",\"options\":[\"ro\",\"nosuid\",\"size=1m\",\"rslave\"]}],"
                   "\"linux\":{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"uts\"},{\"type\":\"network\",\"path\":\"/x\"}],"
                   "\"resources\":{\"memory\":{\"limit\":1048576},\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]}}}";
  struct spec *s = NULL;
  shim_error_t err = NULL;
  CHECK (spec_parse (ok, strlen (ok), "config.json", "/b", &s, &err) == 0);
  CHECK_STR (s->root_path, "/b/rootfs");
  CHECK (s->root_readonly);
  CHECK (s->process->uid == 1 && s->process->gid == 2);
  CHECK (s->process->caps.bounding == ((1ULL << 5) | (1ULL << 0)));
  CHECK (s->process->n_rlimits == 1 && s->process->rlimits[0].hard == 20);
  CHECK (s->mounts[0].readonly && (s->mounts[0].flags & MS_NOSUID));
  CHECK (s->mounts[0].propagation == (MS_SLAVE | MS_REC));
  CHECK_STR (s->mounts[0].data, "size=1m");
  /* A namespace with a path is joined, not created. */
  CHECK (s->clone_flags == (CLONE_NEWNS | CLONE_NEWUTS));
  CHECK (s->resources.has_memory_limit && s->resources.memory_limit == 1048576);
  /* The default device rules follow the spec's deny-all. */
  CHECK (s->resources.n_devices > 1 && !s->resources.devices[0].allow && s->resources.devices[1].allow);

  CHECK (strstr (refused ("{\"namespaces\":[{\"type\":\"mount\"},{\"type\":\"bogus\"}]}", ""),
                 "linux.namespaces[1].type: unknown namespace type `bogus`"));
  CHECK (strstr (refused ("{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"pid\"}]}", ""), "given twice"));
  CHECK (strstr (refused ("{\"namespaces\":[{\"type\":\"user\"}]}", ""), "linux.uidMappings"));
  CHECK (strstr (refused ("{}", ",\"capabilities\":{\"effective\":[\"CAP_FLY\"]}"),
                 "process.capabilities.effective[0]: unknown capability `CAP_FLY`"));
  CHECK (strstr (refused ("{\"resources\":{\"memory\":{\"limit\":\"1g\"}}}", ""),
                 "linux.resources.memory.limit: expected number, got string"));
  CHECK (strstr (refused ("{\"sysctl\":{\"kernel.panic\":\"1\"}}", ""), "linux.sysctl.kernel.panic"));
  CHECK (strstr (refused ("{\"namespaces\":[{\"type\":\"mount\"}],\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"}}", ""),
                 "private network namespace"));
  CHECK (strstr (refused ("{\"seccomp\":{\"defaultAction\":\"SCMP_ACT_NOPE\"}}", ""), "linux.seccomp.defaultAction"));
  CHECK (strstr (refused ("{\"resources\":{\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":1}]}}", ""),
                 "linux.resources.hugepageLimits"));
  CHECK (strstr (refused ("{}", ",\"cwd\":\"relative\""), "process.cwd"));
  return 0;
}
