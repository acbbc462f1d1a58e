/*
 * berth-addon.node, the TypeScript driver's Node-API addon: starts programs without
 * node:child_process, and reads the wall clock in nanoseconds. It needs nothing newer than glibc
 * 2.17, so that it loads wherever Node 22 runs (glibc 2.28 and later).
 *
 * Node's child_process forks the whole Node process (its page tables grow with the heap) and
 * loads net, streams and dgram to do it: 4 to 6 ms of a daemonless `engine run`, whose runtime
 * commands need none of that (they print nothing; their errors go to a log file). posix_spawn
 * starts the program with vfork semantics, and the wait runs in libuv's thread pool.
 *
 * spawn(file, args, fds) -> { pid, exited }
 *   file   a path, or a name looked up in PATH
 *   args   argv, args[0] included
 *   fds    the child's fds 0..n-1: a descriptor of ours to give it, or -1 for /dev/null
 *   exited a promise of [code, signal]: the exit status, or null and the number of the signal
 *          that ended it
 * A program that cannot be started throws an Error with its errno (negative, as Node's).
 *
 * realtimeOffset() -> bigint
 *   CLOCK_REALTIME minus CLOCK_MONOTONIC (process.hrtime's clock) in nanoseconds, the realtime
 *   read between two monotonic reads and set against their middle.
 */
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_FDS 16

struct wait_job {
  pid_t pid;
  int status;
  napi_deferred deferred;
  napi_async_work work;
};

/* In libuv's thread pool: no thread of our own, whose pthread symbols would need glibc 2.34 where
   Node 22 runs from 2.28. */
static void wait_for_exit(napi_env env, void *data) {
  (void)env;
  struct wait_job *job = data;
  while (waitpid(job->pid, &job->status, 0) < 0 && errno == EINTR) {
  }
}

static void settle(napi_env env, napi_status status, void *data) {
  (void)status;
  struct wait_job *job = data;
  napi_value result, code, sig;
  napi_create_array_with_length(env, 2, &result);
  if (WIFEXITED(job->status)) {
    napi_create_int32(env, WEXITSTATUS(job->status), &code);
    napi_get_null(env, &sig);
  } else {
    napi_get_null(env, &code);
    napi_create_int32(env, WTERMSIG(job->status), &sig);
  }
  napi_set_element(env, result, 0, code);
  napi_set_element(env, result, 1, sig);
  napi_resolve_deferred(env, job->deferred, result);
  napi_delete_async_work(env, job->work);
  free(job);
}

/* A JS string as a malloc'd C string; NULL (with a pending TypeError) when it is not a string. */
static char *c_string(napi_env env, napi_value value) {
  size_t len;
  if (napi_get_value_string_utf8(env, value, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "spawn: expected a string");
    return NULL;
  }
  char *s = malloc(len + 1);
  if (s) napi_get_value_string_utf8(env, value, s, len + 1, &len);
  return s;
}

/* An Error with the errno as a number (`errno`, negative as Node's are); the TypeScript side
   names it (strerrorname_np would need glibc 2.32). */
static void throw_errno(napi_env env, int err, const char *file) {
  char message[4200];
  snprintf(message, sizeof message, "spawn %s: %s", file, strerror(err));
  napi_value msg, error, path, errno_value;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, NULL, msg, &error);
  napi_create_string_utf8(env, file, NAPI_AUTO_LENGTH, &path);
  napi_set_named_property(env, error, "path", path);
  napi_create_int32(env, -err, &errno_value);
  napi_set_named_property(env, error, "errno", errno_value);
  napi_throw(env, error);
}

static napi_value spawn_program(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  uint32_t nargs = 0, nfds = 0;
  bool is_array = false;
  if (argc < 3 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "spawn(file, args, fds): args and fds must be arrays");
    return NULL;
  }
  napi_get_array_length(env, argv[1], &nargs);
  napi_get_array_length(env, argv[2], &nfds);
  if (nfds > MAX_FDS) {
    napi_throw_range_error(env, NULL, "spawn: too many descriptors");
    return NULL;
  }

  napi_value result = NULL;
  int moved[MAX_FDS];
  uint32_t nmoved = 0;
  char *file = c_string(env, argv[0]);
  char **args = calloc(nargs + 1, sizeof *args);
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attr);
  if (!args) napi_throw_error(env, NULL, "spawn: out of memory");
  if (!file || !args) goto out;
  for (uint32_t i = 0; i < nargs; i++) {
    napi_value item;
    napi_get_element(env, argv[1], i, &item);
    if (!(args[i] = c_string(env, item))) goto out;
  }
  for (uint32_t i = 0; i < nfds; i++) {
    napi_value item;
    int32_t fd;
    napi_get_element(env, argv[2], i, &item);
    if (napi_get_value_int32(env, item, &fd) != napi_ok) {
      napi_throw_type_error(env, NULL, "spawn: fds must be numbers");
      goto out;
    }
    /* A descriptor below nfds could be replaced by another's dup2 before its own: moved up first. */
    if (fd >= 0 && fd < (int32_t)nfds && fd != (int32_t)i) {
      if ((fd = fcntl(fd, F_DUPFD_CLOEXEC, (int)nfds)) < 0) {
        throw_errno(env, errno, file);
        goto out;
      }
      moved[nmoved++] = fd;
    }
    /* glibc clears FD_CLOEXEC of a descriptor dup2'd onto itself (POSIX.1-2024). */
    if (fd < 0) posix_spawn_file_actions_addopen(&actions, (int)i, "/dev/null", O_RDWR, 0);
    else posix_spawn_file_actions_adddup2(&actions, fd, (int)i);
  }
  /* Node ignores SIGPIPE and libuv may block signals in its threads; a program starts with neither.
     Every bit is set by hand: sigfillset leaves out glibc's own two signals (32, 33), which
     posix_spawn would then leave ignored in the program, and ignored they survive its exec. */
  sigset_t all, none;
  memset(&all, 0xff, sizeof all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

  pid_t pid;
  int err = strchr(file, '/') ? posix_spawn(&pid, file, &actions, &attr, args, environ) : posix_spawnp(&pid, file, &actions, &attr, args, environ);
  if (err) {
    throw_errno(env, err, file);
    goto out;
  }

  struct wait_job *job = calloc(1, sizeof *job);
  if (!job) {
    /* Not left a zombie: waited for here, then reported. */
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    napi_throw_error(env, NULL, "spawn: out of memory");
    goto out;
  }
  napi_value promise, name, pid_value;
  job->pid = pid;
  napi_create_promise(env, &job->deferred, &promise);
  napi_create_string_utf8(env, "berth-addon:wait", NAPI_AUTO_LENGTH, &name);
  napi_create_async_work(env, NULL, name, wait_for_exit, settle, job, &job->work);
  napi_queue_async_work(env, job->work);
  napi_create_object(env, &result);
  napi_create_int32(env, pid, &pid_value);
  napi_set_named_property(env, result, "pid", pid_value);
  napi_set_named_property(env, result, "exited", promise);

out:
  for (uint32_t i = 0; i < nmoved; i++) close(moved[i]);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (args)
    for (uint32_t i = 0; i < nargs; i++) free(args[i]);
  free(args);
  free(file);
  return result;
}

static int64_t nanos(clockid_t clock) {
  struct timespec t;
  clock_gettime(clock, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static napi_value realtime_offset(napi_env env, napi_callback_info info) {
  (void)info;
  int64_t before = nanos(CLOCK_MONOTONIC);
  int64_t real = nanos(CLOCK_REALTIME);
  int64_t after = nanos(CLOCK_MONOTONIC);
  napi_value result;
  napi_create_bigint_int64(env, real - (before + (after - before) / 2), &result);
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, spawn_program, NULL, &fn);
  napi_set_named_property(env, exports, "spawn", fn);
  napi_create_function(env, "realtimeOffset", NAPI_AUTO_LENGTH, realtime_offset, NULL, &fn);
  napi_set_named_property(env, exports, "realtimeOffset", fn);
  return exports;
}
