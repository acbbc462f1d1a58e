/* berth-runtime: an OCI runtime with runc's command line, plus a monitor per container that
   keeps its log and serves attach. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "container.h"
#include "error.h"
#include "exec.h"
#include "exec-exit.h"
#include "init.h"
#include "lifecycle.h"
#include "monitor.h"
#include "state.h"
#include "update.h"
#include "wrap.h"

#ifndef BERTH_VERSION
#define BERTH_VERSION "0.1.0"
#endif

static const char usage_text[]
    = "usage: berth-runtime [global options] <command> [command options] [arguments]\n"
      "\n"
      "An OCI runtime with runc's command line. Each created container keeps a monitor process as\n"
      "its parent: it reaps it, records its exit, writes its json-file log and serves attach.\n"
      "\n"
      "commands:\n"
      "  create   create a container from a bundle; it waits for `start`\n"
      "  start    run the process of a created container\n"
      "  run      create and start; waits for the process unless -d\n"
      "  exec     run a new process in a running container\n"
      "  state    print the state of a container as JSON\n"
      "  kill     send a signal (default SIGTERM) to the container's process\n"
      "  delete   remove a stopped container (--force kills a running one)\n"
      "  list     list containers (--format table|json, -q)\n"
      "  ps       list the container's processes (--format table|json)\n"
      "  pause    freeze every process of the container\n"
      "  resume   thaw a paused container\n"
      "  init     run a command as a container's pid 1: forward signals, reap zombies (also as docker-init)\n"
      "  update   change the resource limits of a container\n"
      "  spec     write a default config.json\n"
      "\n"
      "global options:\n"
      "  --root DIR          state directory (default /run/berth/runtime)\n"
      "  --log FILE          write errors and warnings to FILE\n"
      "  --log-format FMT    text (default) or json\n"
      "  --version, --help\n"
      "\n"
      "create and run:\n"
      "  -b, --bundle DIR       the bundle (default: the current directory)\n"
      "  --console-socket PATH  send the pty master of a terminal container there\n"
      "  --pid-file PATH        write the container's pid there\n"
      "  -d, --detach           (run) leave the container running under its monitor\n"
      "  --no-pivot             move and chroot instead of pivot_root\n"
      "  --keep                 (run) keep the container after it exits\n"
      "  --preserve-fds N       pass N descriptors after stdio on\n"
      "  --log-path PATH        Berth: write stdout and stderr to PATH in docker's json-file format\n"
      "  --attach-socket PATH   Berth: serve attach on this unix socket\n"
      "  --open-stdin           Berth: give the process a stdin fed by attach clients\n"
      "  --stdin-once           Berth: close that stdin when the first writer detaches\n"
      "  --start-on-attach      Berth: (create) the first attach client starts the process, as `start`\n"
      "  --exit-file PATH       Berth: (create, run -d) the monitor also records the exit there\n"
      "  --delete-on-exit       Berth: (create, run -d, with --exit-file) the monitor then deletes the container\n"
      "  --log-max-size SIZE    Berth: rotate the log at SIZE (docker's max-size: 10m = 10000000 bytes)\n"
      "  --log-max-file N       Berth: keep N files, the live one included (docker's max-file, default 1)\n"
      "  --log-compress         Berth: gzip the rotated files (docker's compress)\n"
      "  --oci-runtime PATH     Berth: run the container with runc or crun under our monitor (conmon's role)\n"
      "  --oci-runtime-root DIR Berth: that runtime's --root (default /run/runc, /run/crun)\n"
      "  --oci-runtime-arg ARG  Berth: another global option for that runtime (repeatable)\n"
      "\n"
      "exec [options] <id> <command> [args...]:\n"
      "  -p, --process FILE  a process.json; -t, --tty; -d, --detach; --console-socket; --pid-file;\n"
      "  --cwd DIR; -e, --env K=V; -u, --user UID[:GID]; -c, --cap CAP; -g, --additional-gids GID;\n"
      "  --no-new-privs; --preserve-fds N;\n"
      "  --attach-socket PATH  Berth: serve the process's stdio there (starts when the first client connects)\n"
      "  --exit-file PATH      Berth: with -d and --pid-file, a monitor records the process's exit there\n"
      "\n"
      "update [options] <id>:\n"
      "  -r, --resources FILE  an OCI linux.resources JSON file, - for stdin (the other options are then ignored)\n"
      "  --memory, --memory-reservation, --memory-swap BYTES  with an optional unit (64m, 1g), -1 for unlimited\n"
      "  --cpu-shares N; --cpu-quota USECS (-1 unlimited); --cpu-period USECS; --cpu-idle 0|1;\n"
      "  --cpuset-cpus LIST; --cpuset-mems LIST; --pids-limit N (-1 unlimited); --blkio-weight 10..1000\n";

struct args
{
  int argc;
  char **argv;
  int i;
  char **cmd_args; /* what follows the command name, for a runtime we hand the command to */
};

/* The value of an option: "--name=value", "--name value" or "-x value". */
static const char *
take_value (struct args *a, const char *arg, shim_error_t *err)
{
  const char *eq = strchr (arg, '=');
  if (arg[1] == '-' && eq)
    return eq + 1;
  if (a->i + 1 >= a->argc)
    {
      shim_make_error_code (err, SHIM_CODE_USAGE, 0, "option %s needs a value", arg);
      return NULL;
    }
  return a->argv[++a->i];
}

static bool
is_opt (const char *arg, const char *name)
{
  size_t n = strlen (name);
  return strncmp (arg, name, n) == 0 && (arg[n] == 0 || (arg[n] == '=' && name[1] == '-'));
}

static char **
push (char **list, size_t *n, const char *value)
{
  list = xrealloc (list, (*n + 2) * sizeof *list);
  list[(*n)++] = (char *) value;
  list[*n] = NULL;
  return list;
}

static char *
absolute (const char *path)
{
  char resolved[PATH_MAX];
  if (realpath (path, resolved))
    return xstrdup (resolved);
  if (path[0] == '/')
    return xstrdup (path);
  char cwd[PATH_MAX];
  if (getcwd (cwd, sizeof cwd) == NULL)
    return xstrdup (path);
  return xasprintf ("%s/%s", cwd, path);
}

static int
parse_count (const char *v, int *out, shim_error_t *err)
{
  char *end;
  long n = strtol (v, &end, 10);
  if (*end || n < 0 || n > 1000)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "`%s` is not a valid count", v);
  *out = (int) n;
  return 0;
}

static int
need_id (char **pos, size_t n, size_t want, const char *cmd, shim_error_t *err)
{
  if (n < want)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: missing container id", cmd);
  (void) pos;
  return 0;
}

/* Bytes as docker reads them: a number with an optional unit (b, k, m, g, t, p; "kb", "KiB"
   alike), binary as units.RAMInBytes for memory, decimal as units.FromHumanSize for a log's
   max-size; -1 where `minus_one` allows unlimited. */
static int
parse_bytes (const char *opt, const char *v, bool minus_one, bool decimal, int64_t *out, shim_error_t *err)
{
  if (minus_one && strcmp (v, "-1") == 0)
    {
      *out = -1;
      return 0;
    }
  char *end;
  errno = 0;
  double n = strtod (v, &end);
  if (end == v || errno || n < 0 || v[0] == '-')
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: `%s` is not a size in bytes (like 64m or 1g)", opt, v);
  while (*end == ' ')
    end++;
  static const char units[] = "bkmgtp";
  double mult = 1;
  if (*end)
    {
      const char *u = strchr (units, *end | 0x20);
      if (u == NULL)
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: unknown unit in `%s` (b, k, m, g, t or p)", opt, v);
      for (const char *x = units; x < u; x++)
        mult *= decimal ? 1000 : 1024;
      end++;
      if ((*end | 0x20) == 'i' && u != units)
        end++;
      if ((*end | 0x20) == 'b' && u != units)
        end++;
    }
  if (*end || n * mult > 9.2e18)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: `%s` is not a size in bytes (like 64m or 1g)", opt, v);
  *out = (int64_t) (n * mult);
  return 0;
}

static int
parse_int (const char *opt, const char *v, int64_t min, int64_t *out, shim_error_t *err)
{
  char *end;
  errno = 0;
  long long n = strtoll (v, &end, 10);
  if (*v == 0 || *end || errno || n < min)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: `%s` is not a valid number", opt, v);
  *out = n;
  return 0;
}

static int
cmd_create_run (struct args *a, const char *root, const char *cmd, int *exit_code, shim_error_t *err)
{
  struct container_options o = { .root = root, .create_only = strcmp (cmd, "create") == 0 };
  const char *bundle = ".";
  char **pos = NULL;
  size_t n = 0;
  for (a->i++; a->i < a->argc; a->i++)
    {
      const char *arg = a->argv[a->i];
      const char *v;
      if (strcmp (arg, "--") == 0)
        {
          for (a->i++; a->i < a->argc; a->i++)
            pos = push (pos, &n, a->argv[a->i]);
          break;
        }
      if (arg[0] != '-')
        pos = push (pos, &n, arg);
      else if (is_opt (arg, "--bundle") || is_opt (arg, "-b"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          bundle = v;
        }
      else if (is_opt (arg, "--console-socket"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.console_socket = absolute (v);
        }
      else if (is_opt (arg, "--pid-file"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.pid_file = absolute (v);
        }
      else if (is_opt (arg, "--log-path"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.log_path = absolute (v);
        }
      else if (is_opt (arg, "--attach-socket"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.attach_socket = absolute (v);
        }
      else if (is_opt (arg, "--log-max-size"))
        {
          int64_t size;
          if ((v = take_value (a, arg, err)) == NULL || parse_bytes ("--log-max-size", v, false, true, &size, err) < 0)
            return -1;
          if (size <= 0)
            return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--log-max-size: max-size must be a positive number");
          o.log_max_size = size;
        }
      else if (is_opt (arg, "--log-max-file"))
        {
          int64_t files;
          if ((v = take_value (a, arg, err)) == NULL || parse_int ("--log-max-file", v, INT64_MIN, &files, err) < 0)
            return -1;
          if (files < 1 || files > 1000000)
            return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--log-max-file: max-file cannot be less than 1");
          o.log_max_files = (int) files;
        }
      else if (strcmp (arg, "--log-compress") == 0)
        o.log_compress = true;
      else if (is_opt (arg, "--oci-runtime"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.oci_runtime = v;
        }
      else if (is_opt (arg, "--oci-runtime-root"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.oci_runtime_root = absolute (v);
        }
      else if (is_opt (arg, "--oci-runtime-arg"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.oci_runtime_args = push (o.oci_runtime_args, &o.n_oci_runtime_args, v);
        }
      else if (is_opt (arg, "--preserve-fds"))
        {
          if ((v = take_value (a, arg, err)) == NULL || parse_count (v, &o.preserve_fds, err) < 0)
            return -1;
        }
      else if (strcmp (arg, "-d") == 0 || strcmp (arg, "--detach") == 0)
        o.detach = true;
      else if (strcmp (arg, "--no-pivot") == 0)
        o.no_pivot = true;
      else if (strcmp (arg, "--keep") == 0)
        o.keep = true;
      else if (strcmp (arg, "--open-stdin") == 0)
        o.open_stdin = true;
      else if (strcmp (arg, "--stdin-once") == 0)
        o.stdin_once = true;
      else if (strcmp (arg, "--start-on-attach") == 0)
        o.start_on_attach = true;
      else if (strcmp (arg, "--delete-on-exit") == 0)
        o.delete_on_exit = true;
      else if (is_opt (arg, "--exit-file"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.exit_file = absolute (v);
        }
      else if (strcmp (arg, "--no-new-keyring") == 0 || strcmp (arg, "--no-subreaper") == 0)
        ; /* runc options with nothing to do here: berth-runtime never joins a session keyring */
      else
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: unknown option %s", cmd, arg);
    }
  if (need_id (pos, n, 1, cmd, err) < 0)
    return -1;
  if (o.create_only && o.detach)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "create: -d is implied");
  if ((o.exit_file || o.delete_on_exit) && ((!o.create_only && !o.detach) || o.oci_runtime))
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: --exit-file and --delete-on-exit are for create and run -d, without --oci-runtime", cmd);
  if (o.delete_on_exit && !o.exit_file)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: --delete-on-exit needs --exit-file (where the exit is kept)", cmd);
  if (o.start_on_attach && (!o.create_only || !o.attach_socket || o.oci_runtime))
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0,
                                 "%s: --start-on-attach is for create with --attach-socket, without --oci-runtime", cmd);
  if ((o.log_max_size || o.log_max_files || o.log_compress) && !o.log_path)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: --log-max-size, --log-max-file and --log-compress need --log-path", cmd);
  if (o.log_compress && (o.log_max_files < 2 || o.log_max_size == 0))
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0,
                                 "%s: compress cannot be true when max-file is less than 2 or max-size is not set", cmd);
  if ((o.oci_runtime_root || o.n_oci_runtime_args) && !o.oci_runtime)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: --oci-runtime-root and --oci-runtime-arg need --oci-runtime", cmd);
  if (o.oci_runtime && !o.oci_runtime_root)
    {
      /* Where runc and crun keep their state when run as root. */
      const char *base = strrchr (o.oci_runtime, '/');
      o.oci_runtime_root = strcmp (base ? base + 1 : o.oci_runtime, "crun") == 0 ? "/run/crun" : "/run/runc";
    }
  if (o.log_compress && !monitor_can_compress ())
    return shim_make_error_code (err, SHIM_CODE_UNSUPPORTED, ENOTSUP,
                                 "%s: --log-compress: this berth-runtime was built without zlib", cmd);
  o.id = pos[0];
  o.bundle = absolute (bundle);
  return container_start (&o, exit_code, err);
}

/* A container that another runtime runs under our monitor: the command goes to that runtime
   (*done). Anything else, a missing container included, is left to our own command. */
static int
wrapped_command (const char *root, const char *id, const char *cmd, char **args, int *exit_code, bool *done,
                 shim_error_t *err)
{
  struct container_state *st = NULL;
  shim_error_t e = NULL;
  *done = false;
  if (state_check_id (id, &e) < 0 || state_load (root, id, &st, &e) < 0)
    {
      shim_error_release (&e);
      return 0;
    }
  int r = 0;
  if (st->oci_runtime)
    {
      *done = true;
      r = wrap_command (st, cmd, args, exit_code, err);
    }
  state_free (st);
  return r;
}

/* What `exec -d --exit-file` starts in its monitor: the exec as it runs without that option. */
struct recorded_exec
{
  const char *root;
  struct exec_options *o;
  char **args; /* for a wrapped runtime: ours without --exit-file */
  int exit_code;
};

static int
start_recorded_exec (void *ctx, shim_error_t *err)
{
  struct recorded_exec *x = ctx;
  bool done;
  if (wrapped_command (x->root, x->o->id, "exec", x->args, &x->exit_code, &done, err) < 0)
    return -1;
  return done ? 0 : container_exec (x->o, &x->exit_code, err);
}

static int
cmd_exec (struct args *a, const char *root, int *exit_code, shim_error_t *err)
{
  struct exec_options o = { .root = root };
  const char *exit_file = NULL;
  for (a->i++; a->i < a->argc; a->i++)
    {
      const char *arg = a->argv[a->i];
      const char *v;
      if (strcmp (arg, "--") == 0)
        {
          a->i++;
          break;
        }
      if (arg[0] != '-')
        break;
      if (is_opt (arg, "--process") || is_opt (arg, "-p"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.process_path = v;
        }
      else if (is_opt (arg, "--console-socket"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.console_socket = absolute (v);
        }
      else if (is_opt (arg, "--pid-file"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.pid_file = absolute (v);
        }
      else if (is_opt (arg, "--attach-socket"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.attach_socket = absolute (v);
        }
      else if (is_opt (arg, "--cwd"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.cwd = v;
        }
      else if (is_opt (arg, "--exit-file"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          exit_file = absolute (v);
        }
      else if (is_opt (arg, "--env") || is_opt (arg, "-e"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.env = push (o.env, &o.n_env, v);
        }
      else if (is_opt (arg, "--user") || is_opt (arg, "-u"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.user = v;
        }
      else if (is_opt (arg, "--cap") || is_opt (arg, "-c"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.caps = push (o.caps, &o.n_caps, v);
        }
      else if (is_opt (arg, "--additional-gids") || is_opt (arg, "-g"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.additional_gids = push (o.additional_gids, &o.n_additional_gids, v);
        }
      else if (is_opt (arg, "--preserve-fds"))
        {
          if ((v = take_value (a, arg, err)) == NULL || parse_count (v, &o.preserve_fds, err) < 0)
            return -1;
        }
      else if (strcmp (arg, "-t") == 0 || strcmp (arg, "--tty") == 0)
        o.tty = true;
      else if (strcmp (arg, "-d") == 0 || strcmp (arg, "--detach") == 0)
        o.detach = true;
      else if (strcmp (arg, "-dt") == 0 || strcmp (arg, "-td") == 0)
        o.tty = o.detach = true;
      else if (strcmp (arg, "--no-new-privs") == 0)
        o.no_new_privs = true;
      else
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "exec: unknown option %s", arg);
    }
  if (a->i >= a->argc)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "exec: missing container id");
  size_t options = (size_t) (&a->argv[a->i] - a->cmd_args);
  o.id = a->argv[a->i++];
  if (a->i < a->argc)
    o.args = &a->argv[a->i];
  if (exit_file)
    {
      if (!o.detach || !o.pid_file)
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "exec: --exit-file needs --detach and --pid-file");
      size_t n = 0;
      while (a->cmd_args[n])
        n++;
      char **args = xcalloc (n + 1, sizeof *args);
      for (size_t i = 0, k = 0; i < n; i++)
        if (i < options && strcmp (a->cmd_args[i], "--exit-file") == 0)
          i++;
        else if (!(i < options && strncmp (a->cmd_args[i], "--exit-file=", 12) == 0))
          args[k++] = a->cmd_args[i];
      struct recorded_exec x = { .root = root, .o = &o, .args = args };
      int r = exec_recording_exit (exit_file, o.pid_file, start_recorded_exec, &x, err);
      free (args);
      return r;
    }
  bool done;
  if (wrapped_command (root, o.id, o.attach_socket ? "exec-attach" : "exec", a->cmd_args, exit_code, &done, err) < 0)
    return -1;
  if (done)
    return 0;
  return container_exec (&o, exit_code, err);
}

static int
cmd_update (struct args *a, const char *root, shim_error_t *err)
{
  struct update_options o = { .root = root };
  struct spec_resources *r = &o.flags;
  char **pos = NULL;
  size_t n = 0;
  for (a->i++; a->i < a->argc; a->i++)
    {
      const char *arg = a->argv[a->i];
      const char *v;
      int64_t x;
      if (arg[0] != '-' || strcmp (arg, "-") == 0)
        {
          pos = push (pos, &n, arg);
          continue;
        }
      if (is_opt (arg, "--resources") || is_opt (arg, "-r"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          o.resources_path = v;
          continue;
        }
      if ((v = take_value (a, arg, err)) == NULL)
        return -1;
      o.any_flag = true;
      if (is_opt (arg, "--memory") || is_opt (arg, "-m"))
        {
          if (parse_bytes ("--memory", v, true, false, &r->memory_limit, err) < 0)
            return -1;
          r->has_memory_limit = true;
        }
      else if (is_opt (arg, "--memory-reservation"))
        {
          if (parse_bytes ("--memory-reservation", v, true, false, &r->memory_reservation, err) < 0)
            return -1;
          r->has_memory_reservation = true;
        }
      else if (is_opt (arg, "--memory-swap"))
        {
          if (parse_bytes ("--memory-swap", v, true, false, &r->memory_swap, err) < 0)
            return -1;
          r->has_memory_swap = true;
        }
      else if (is_opt (arg, "--cpu-share") || is_opt (arg, "--cpu-shares"))
        {
          if (parse_int (arg, v, 0, &x, err) < 0)
            return -1;
          r->has_cpu_shares = true;
          r->cpu_shares = (uint64_t) x;
        }
      else if (is_opt (arg, "--cpu-quota"))
        {
          if (parse_int ("--cpu-quota", v, -1, &r->cpu_quota, err) < 0)
            return -1;
          r->has_cpu_quota = true;
        }
      else if (is_opt (arg, "--cpu-period"))
        {
          if (parse_int ("--cpu-period", v, 0, &x, err) < 0)
            return -1;
          r->has_cpu_period = true;
          r->cpu_period = (uint64_t) x;
        }
      else if (is_opt (arg, "--cpu-idle"))
        {
          if (parse_int ("--cpu-idle", v, 0, &r->cpu_idle, err) < 0)
            return -1;
          r->has_cpu_idle = true;
        }
      else if (is_opt (arg, "--cpuset-cpus"))
        r->cpuset_cpus = (char *) v;
      else if (is_opt (arg, "--cpuset-mems"))
        r->cpuset_mems = (char *) v;
      else if (is_opt (arg, "--pids-limit"))
        {
          if (parse_int ("--pids-limit", v, INT64_MIN, &r->pids_limit, err) < 0)
            return -1;
          r->has_pids_limit = true;
        }
      else if (is_opt (arg, "--blkio-weight"))
        {
          if (parse_int ("--blkio-weight", v, 0, &x, err) < 0)
            return -1;
          if (x > 1000)
            return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "--blkio-weight: %lld is outside [10, 1000]", (long long) x);
          r->has_blkio_weight = x != 0;
          r->blkio_weight = (uint16_t) x;
        }
      else if (is_opt (arg, "--kernel-memory") || is_opt (arg, "--kernel-memory-tcp"))
        shim_warning ("update: %s is obsolete and ignored", arg);
      else if (is_opt (arg, "--cpu-rt-period") || is_opt (arg, "--cpu-rt-runtime") || is_opt (arg, "--cpu-burst"))
        return shim_make_error_code (err, SHIM_CODE_UNSUPPORTED, EOPNOTSUPP, "update: %s is not supported by berth-runtime", arg);
      else if (is_opt (arg, "--l3-cache-schema") || is_opt (arg, "--mem-bw-schema"))
        return shim_make_error_code (err, SHIM_CODE_UNSUPPORTED, EOPNOTSUPP, "update: %s: Intel RDT is not supported by berth-runtime", arg);
      else
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "update: unknown option %s", arg);
    }
  if (n != 1)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, n ? "update: expects one container id" : "update: missing container id");
  o.id = pos[0];
  bool done;
  int code;
  if (wrapped_command (root, o.id, "update", a->cmd_args, &code, &done, err) < 0 || done)
    return done && *err == NULL ? 0 : -1;
  return container_update (&o, err);
}

/* The commands whose options are only flags and --format. */
static int
cmd_simple (struct args *a, const char *root, const char *cmd, shim_error_t *err)
{
  bool force = false, all = false, json = false, quiet = false, rootless = false;
  const char *bundle = ".";
  char **pos = NULL;
  size_t n = 0;
  char **rest = NULL;
  static const char *const known[] = { "list", "spec", "state", "start", "kill", "delete", "pause", "resume", "ps", NULL };
  bool found = false;
  for (size_t i = 0; known[i] && !found; i++)
    found = strcmp (cmd, known[i]) == 0;
  if (!found)
    return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "unknown command `%s` (see --help)", cmd);
  for (a->i++; a->i < a->argc; a->i++)
    {
      const char *arg = a->argv[a->i];
      const char *v;
      if (strcmp (arg, "--") == 0)
        {
          rest = &a->argv[a->i + 1];
          break;
        }
      if (arg[0] != '-' || (strcmp (cmd, "kill") == 0 && n == 1 && arg[1] != '-' && arg[1] != 'a'))
        pos = push (pos, &n, arg);
      else if (strcmp (arg, "-f") == 0 && strcmp (cmd, "delete") == 0)
        force = true;
      else if (strcmp (arg, "--force") == 0)
        force = true;
      else if (strcmp (arg, "-a") == 0 || strcmp (arg, "--all") == 0)
        all = true;
      else if (strcmp (arg, "-q") == 0 || strcmp (arg, "--quiet") == 0)
        quiet = true;
      else if (strcmp (arg, "--rootless") == 0)
        rootless = true;
      else if (is_opt (arg, "--format") || is_opt (arg, "-f"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          if (strcmp (v, "json") != 0 && strcmp (v, "table") != 0)
            return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: unknown format `%s` (table or json)", cmd, v);
          json = strcmp (v, "json") == 0;
        }
      else if (is_opt (arg, "--bundle") || is_opt (arg, "-b"))
        {
          if ((v = take_value (a, arg, err)) == NULL)
            return -1;
          bundle = v;
        }
      else if (strcmp (cmd, "ps") == 0 && n == 1)
        {
          rest = &a->argv[a->i];
          break;
        }
      else
        return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "%s: unknown option %s", cmd, arg);
    }
  if (strcmp (cmd, "list") == 0)
    return command_list (root, json, quiet, err);
  if (strcmp (cmd, "spec") == 0)
    return command_spec (bundle, rootless, err);
  if (need_id (pos, n, 1, cmd, err) < 0)
    return -1;
  if (strcmp (cmd, "state") != 0)
    {
      bool done;
      int code;
      if (wrapped_command (root, pos[0], cmd, a->cmd_args, &code, &done, err) < 0 || done)
        return done && *err == NULL ? 0 : -1;
    }
  if (strcmp (cmd, "state") == 0)
    return command_state (root, pos[0], err);
  if (strcmp (cmd, "start") == 0)
    return container_release (root, pos[0], err);
  if (strcmp (cmd, "kill") == 0)
    return command_kill (root, pos[0], n > 1 ? pos[1] : NULL, all, err);
  if (strcmp (cmd, "delete") == 0)
    return command_delete (root, pos[0], force, err);
  if (strcmp (cmd, "pause") == 0 || strcmp (cmd, "resume") == 0)
    return command_pause (root, pos[0], strcmp (cmd, "pause") == 0, err);
  if (strcmp (cmd, "ps") == 0)
    return command_ps (root, pos[0], json, rest ? rest : (n > 1 ? &pos[1] : NULL), err);
  return shim_make_error_code (err, SHIM_CODE_USAGE, 0, "unknown command `%s`", cmd);
}

int
main (int argc, char **argv)
{
  struct args a = { .argc = argc, .argv = argv, .i = 1 };
  shim_error_t err = NULL;
  const char *root = "/run/berth/runtime";
  const char *log_path = NULL;
  bool log_json = false;
  int exit_code = 0;
  /* `--init` mounts this binary as /sbin/docker-init and runs it under that name. */
  const char *self = strrchr (argv[0], '/');
  if (strcmp (self ? self + 1 : argv[0], "docker-init") == 0)
    return init_main (argc - 1, argv + 1);
  for (; a.i < argc && argv[a.i][0] == '-'; a.i++)
    {
      const char *arg = argv[a.i];
      const char *v;
      if (strcmp (arg, "--version") == 0 || strcmp (arg, "-v") == 0)
        {
          printf ("berth-runtime version %s\nspec: 1.0.2\n", BERTH_VERSION);
          /* Like runc's libseccomp line: what this build can do (gzip rotated logs). */
          if (monitor_can_compress ())
            printf ("zlib: %s\n", monitor_zlib_version ());
          return 0;
        }
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          fputs (usage_text, stdout);
          return 0;
        }
      if (is_opt (arg, "--root"))
        {
          if ((v = take_value (&a, arg, &err)) == NULL)
            goto fail;
          root = absolute (v);
        }
      else if (is_opt (arg, "--log"))
        {
          if ((v = take_value (&a, arg, &err)) == NULL)
            goto fail;
          log_path = v;
        }
      else if (is_opt (arg, "--log-format"))
        {
          if ((v = take_value (&a, arg, &err)) == NULL)
            goto fail;
          if (strcmp (v, "json") != 0 && strcmp (v, "text") != 0)
            {
              shim_make_error_code (&err, SHIM_CODE_USAGE, 0, "--log-format: `%s` is not text or json", v);
              goto fail;
            }
          log_json = strcmp (v, "json") == 0;
        }
      else if (strcmp (arg, "--debug") == 0 || is_opt (arg, "--rootless") || is_opt (arg, "--criu"))
        ; /* accepted for runc compatibility */
      else if (strcmp (arg, "--systemd-cgroup") == 0)
        {
          shim_make_error_code (&err, SHIM_CODE_USAGE, 0,
                                "--systemd-cgroup: berth-runtime manages cgroups through the file system only");
          goto fail;
        }
      else
        {
          shim_make_error_code (&err, SHIM_CODE_USAGE, 0, "unknown global option %s", arg);
          goto fail;
        }
    }
  shim_log_init (log_path, log_json);
  if (a.i >= argc)
    {
      fputs (usage_text, stderr);
      return 2;
    }
  const char *cmd = argv[a.i];
  a.cmd_args = &argv[a.i + 1];
  int r;
  if (strcmp (cmd, "create") == 0 || strcmp (cmd, "run") == 0)
    r = cmd_create_run (&a, root, cmd, &exit_code, &err);
  else if (strcmp (cmd, "exec") == 0)
    r = cmd_exec (&a, root, &exit_code, &err);
  else if (strcmp (cmd, "init") == 0)
    return init_main (argc - a.i - 1, &argv[a.i + 1]);
  else if (strcmp (cmd, "update") == 0)
    r = cmd_update (&a, root, &err);
  else if (strcmp (cmd, "help") == 0)
    {
      fputs (usage_text, stdout);
      return 0;
    }
  else
    r = cmd_simple (&a, root, cmd, &err);
  if (r < 0)
    goto fail;
  fflush (stdout);
  return exit_code;

fail:
  shim_log_init (log_path, log_json);
  shim_log_error (err);
  return err->code == SHIM_CODE_USAGE ? 2 : 1;
}
