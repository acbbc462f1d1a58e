/* cgroup logic that cannot run for real on a hybrid host: v2 path resolution, controller
   delegation, resource files and their update, against a temporary directory standing in for /sys/fs/cgroup.
   The eBPF device filter does run for real, on the hybrid host's unified hierarchy. */
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cgroup.h"
#include "check.h"
#include "files.h"
#include "update.h"

static char *
slurp (const char *dir, const char *file)
{
  char *path = xasprintf ("%s/%s", dir, file);
  char *text = NULL;
  shim_error_t err = NULL;
  if (read_file (path, &text, NULL, &err) < 0)
    return xstrdup ("(missing)");
  size_t n = strlen (text);
  while (n && text[n - 1] == '\n')
    text[--n] = 0;
  return text;
}

static void
touch (const char *dir, const char *file, const char *content)
{
  char *path = xasprintf ("%s/%s", dir, file);
  shim_error_t err = NULL;
  CHECK (write_file_atomic (path, content, strlen (content), 0644, &err) == 0);
}

static void
v2_files (void)
{
  char tmpl[] = "/tmp/berth-cgtest-XXXXXX";
  char *root = mkdtemp (tmpl);
  CHECK (root);
  /* A fake unified mount: root/cg, with the runtime itself in /user.slice/me. */
  char *mnt = xasprintf ("%s/cg", root);
  shim_error_t err = NULL;
  CHECK (mkdir_p (mnt, 0755, &err) == 0);
  touch (mnt, "cgroup.controllers", "cpu memory pids io\n");
  touch (mnt, "cgroup.subtree_control", "");
  char *mountinfo = xasprintf ("30 1 0:26 / %s rw,nosuid - cgroup2 cgroup2 rw\n", mnt);
  struct cgroup_env env = { .layout = CGROUP_LAYOUT_V2, .mountinfo = mountinfo, .self_cgroup = "0::/user.slice/me\n" };

  struct cgroup *cg = NULL;
  CHECK (cgroup_resolve (&env, "/berth/c1", "c1", &cg, &err) == 0);
  char *want = xasprintf ("%s/berth/c1", mnt);
  CHECK_STR (cg->v2_path, want);
  CHECK (cg->n == 1);
  cgroup_free (cg);
  /* Relative paths nest under our own cgroup; ".." cannot climb out of the hierarchy. */
  CHECK (cgroup_resolve (&env, "sub/../../../x", "c1", &cg, &err) == 0);
  CHECK_STR (cg->v2_path, xasprintf ("%s/user.slice/me/x", mnt));
  cgroup_free (cg);
  CHECK (cgroup_resolve (&env, "", "c2", &cg, &err) == 0);
  CHECK_STR (cg->v2_path, xasprintf ("%s/user.slice/me/c2", mnt));
  cgroup_free (cg);
  CHECK (cgroup_resolve (&env, "system.slice:docker:x", "c1", &cg, &err) < 0);
  CHECK (strstr (err->msg, "systemd") != NULL);
  shim_error_release (&err);

  /* Delegation writes every available controller into each ancestor, not the leaf. */
  char *leafdir = xasprintf ("%s/berth/c1", mnt);
  CHECK (mkdir_p (leafdir, 0755, &err) == 0);
  char *mid = xasprintf ("%s/berth", mnt);
  touch (mid, "cgroup.subtree_control", "");
  CHECK (cgroup_v2_enable_controllers (mnt, leafdir, &err) == 0);
  CHECK_STR (slurp (mnt, "cgroup.subtree_control"), "+cpu +memory +pids +io");
  CHECK_STR (slurp (mid, "cgroup.subtree_control"), "+cpu +memory +pids +io");

  const char *files[] = { "memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "pids.max",
                          "cpuset.cpus", "io.weight", "memory.high" };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
    touch (leafdir, files[i], "");
  struct kv unified[] = { { "memory.high", "5000000" } };
  struct spec_resources r = { .has_memory_limit = true, .memory_limit = 64 << 20, .has_memory_swap = true,
                              .memory_swap = 96 << 20, .has_memory_reservation = true, .memory_reservation = 32 << 20,
                              .has_cpu_shares = true, .cpu_shares = 1024, .has_cpu_quota = true, .cpu_quota = 50000,
                              .has_cpu_period = true, .cpu_period = 100000, .has_pids_limit = true, .pids_limit = -1,
                              .cpuset_cpus = "0", .has_blkio_weight = true, .blkio_weight = 500,
                              .unified = unified, .n_unified = 1 };
  CHECK (cgroup_v2_apply (leafdir, &r, &err) == 0);
  CHECK_STR (slurp (leafdir, "memory.max"), "67108864");
  CHECK_STR (slurp (leafdir, "memory.swap.max"), "33554432"); /* swap alone: 96M - 64M */
  CHECK_STR (slurp (leafdir, "memory.low"), "33554432");
  CHECK_STR (slurp (leafdir, "cpu.weight"), "39"); /* 1024 shares, as runc converts them */
  CHECK_STR (slurp (leafdir, "cpu.max"), "50000 100000");
  CHECK_STR (slurp (leafdir, "pids.max"), "max");
  CHECK_STR (slurp (leafdir, "cpuset.cpus"), "0");
  CHECK_STR (slurp (leafdir, "io.weight"), "default 4950"); /* runc: 1 + (w - 10) * 9999 / 990 */
  CHECK_STR (slurp (leafdir, "memory.high"), "5000000");
  CHECK (cgroup_v2_cpu_weight (2) == 1 && cgroup_v2_cpu_weight (262144) == 10000);

  /* A controller that is not enabled (no file) is an error naming it. */
  struct spec_resources hugetlb_less = { .unified = (struct kv[]){ { "hugetlb.2MB.max", "1" } }, .n_unified = 1 };
  CHECK (cgroup_v2_apply (leafdir, &hugetlb_less, &err) < 0);
  CHECK (strstr (err->msg, "`hugetlb` is not enabled") != NULL);
  shim_error_release (&err);
  remove_tree (root, &err);
}

/* `update` on v2: merged with the recorded limits, so values that depend on each other (cpu.max
   holds quota and period, memory.swap.max is swap minus memory) come out right when only one
   changes; device rules are left alone; the merged record survives a JSON round trip. */
static void
v2_update (void)
{
  char tmpl[] = "/tmp/berth-cgupdate-XXXXXX";
  char *leaf = mkdtemp (tmpl);
  CHECK (leaf);
  shim_error_t err = NULL;
  const char *files[] = { "memory.max", "memory.swap.max", "memory.low", "cpu.weight", "cpu.max", "pids.max",
                          "cpuset.cpus", "memory.high" };
  /* Plain files are not truncated by a write as cgroup files are: empty them before each update. */
#define RESET_FILES()                                                                                                  \
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)                                                          \
  touch (leaf, files[i], "")
  RESET_FILES ();
  struct cgroup cg = { .layout = CGROUP_LAYOUT_V2, .v2_path = leaf };
  struct spec_device_rule rules[] = { { false, 'a', -1, -1, "rwm" } };
  struct spec_resources current = { .has_memory_limit = true, .memory_limit = 64 << 20, .has_memory_swap = true,
                                    .memory_swap = 128 << 20, .has_cpu_quota = true, .cpu_quota = 50000,
                                    .has_cpu_period = true, .cpu_period = 100000, .has_pids_limit = true,
                                    .pids_limit = 20, .has_devices = true, .devices = rules, .n_devices = 1 };

  struct spec_resources period_only = { .has_cpu_period = true, .cpu_period = 200000 };
  resources_merge (&current, &period_only);
  CHECK (resources_check (&current, &err) == 0);
  /* A device program cannot be attached to a plain directory: reaching it would fail here. */
  CHECK (cgroup_update (&cg, &current, &err) == 0);
  CHECK_STR (slurp (leaf, "cpu.max"), "50000 200000");
  CHECK_STR (slurp (leaf, "memory.swap.max"), "67108864");

  struct spec_resources memory_down = { .has_memory_limit = true, .memory_limit = 32 << 20, .has_pids_limit = true,
                                        .pids_limit = 0, .cpuset_cpus = "" };
  resources_merge (&current, &memory_down);
  RESET_FILES ();
  CHECK (cgroup_update (&cg, &current, &err) == 0);
  CHECK_STR (slurp (leaf, "memory.max"), "33554432");
  CHECK_STR (slurp (leaf, "memory.swap.max"), "100663296"); /* 128M total - 32M */
  CHECK_STR (slurp (leaf, "pids.max"), "20");              /* 0 leaves it as it was */

  /* -1 lifts memory, and swap with it; -1 lifts the quota and the pids limit. */
  struct spec_resources unlimited = { .has_memory_limit = true, .memory_limit = -1, .has_cpu_quota = true,
                                      .cpu_quota = -1, .has_pids_limit = true, .pids_limit = -1,
                                      .unified = (struct kv[]){ { "memory.high", "9000000" } }, .n_unified = 1 };
  resources_merge (&current, &unlimited);
  RESET_FILES ();
  CHECK (cgroup_update (&cg, &current, &err) == 0);
  CHECK_STR (slurp (leaf, "memory.max"), "max");
  CHECK_STR (slurp (leaf, "memory.swap.max"), "max");
  CHECK_STR (slurp (leaf, "cpu.max"), "max 200000");
  CHECK_STR (slurp (leaf, "pids.max"), "max");
  CHECK_STR (slurp (leaf, "memory.high"), "9000000");

  /* What the kernel would refuse half-way is refused before anything is written. */
  struct spec_resources swap_below = { .has_memory_limit = true, .memory_limit = 64 << 20, .has_memory_swap = true,
                                       .memory_swap = 32 << 20 };
  struct spec_resources copy = current;
  resources_merge (&copy, &swap_below);
  CHECK (resources_check (&copy, &err) < 0);
  CHECK (strstr (err->msg, "below the memory limit") != NULL);
  shim_error_release (&err);

  struct strbuf json = { 0 };
  resources_write_json (&json, &current);
  CHECK_STR (json.p, "{\"memory\":{\"limit\":-1,\"swap\":-1},\"cpu\":{\"quota\":-1,\"period\":200000},"
                     "\"pids\":{\"limit\":-1},\"devices\":[{\"allow\":false,\"type\":\"a\",\"access\":\"rwm\"}],"
                     "\"unified\":{\"memory.high\":\"9000000\"}}");
  struct json_value *doc = NULL;
  struct spec_resources back;
  CHECK (json_parse (json.p, json.len, "record", &doc, &err) == 0);
  CHECK (spec_parse_resources (doc, "record", &back, &err) == 0);
  struct strbuf again = { 0 };
  resources_write_json (&again, &back);
  CHECK_STR (again.p, json.p);
#undef RESET_FILES
  remove_tree (leaf, &err);
}

/* Denies /dev/null (c 1:3) to a child moved into a fresh v2 cgroup, and checks /dev/zero stays open. */
static void
device_filter (void)
{
  struct cgroup_env env;
  shim_error_t err = NULL;
  if (geteuid () != 0)
    SKIP ("the device filter test needs root");
  if (cgroup_env_load (&env, &err) < 0 || env.layout == CGROUP_LAYOUT_V1)
    SKIP ("no cgroup v2 hierarchy to attach a device program to");
  char name[64];
  snprintf (name, sizeof name, "/berth-devtest-%d", getpid ());
  struct cgroup *cg = NULL;
  CHECK (cgroup_resolve (&env, name, "x", &cg, &err) == 0);
  CHECK (mkdir (cg->v2_path, 0755) == 0);
  struct spec_device_rule rules[] = { { true, 'a', -1, -1, "rwm" }, { false, 'c', 1, 3, "rw" } };
  int r = cgroup_v2_device_filter (cg->v2_path, rules, 2, &err);
  if (r < 0)
    {
      rmdir (cg->v2_path);
      fprintf (stderr, "%s\n", shim_error_text (err));
      exit (1);
    }
  pid_t pid = fork ();
  if (pid == 0)
    {
      char procs[4200];
      snprintf (procs, sizeof procs, "%s/cgroup.procs", cg->v2_path);
      if (write_file (procs, "0", 1, &err) < 0)
        _exit (10);
      int null_fd = open ("/dev/null", O_RDWR);
      int null_errno = errno;
      int zero_fd = open ("/dev/zero", O_RDONLY);
      _exit (null_fd < 0 && null_errno == EPERM && zero_fd >= 0 ? 0 : 11);
    }
  int status;
  waitpid (pid, &status, 0);
  rmdir (cg->v2_path);
  CHECK (WIFEXITED (status) && WEXITSTATUS (status) == 0);
}

int
main (void)
{
  v2_files ();
  v2_update ();
  device_filter ();
  return 0;
}
