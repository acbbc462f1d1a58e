/* File system access the other parts share: whole-file reads and writes, atomic replacement,
   directory creation and removal. */
#ifndef BERTH_FILES_H
#define BERTH_FILES_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "error.h"

/* Reads a whole file into memory, NUL-terminated. */
int read_file (const char *path, char **out, size_t *len, shim_error_t *err);
/* Reads what is left of an open descriptor (stdin, a pipe or a socket); `path` names it in errors. */
int read_fd (int fd, const char *path, char **out, size_t *len, shim_error_t *err);
/* Like read_file, relative to a directory fd. */
int read_file_at (int dirfd, const char *path, char **out, size_t *len, shim_error_t *err);
/* Writes `data` to an existing file (cgroup and proc files): one write, no truncation games. */
int write_file (const char *path, const char *data, size_t len, shim_error_t *err);
int write_file_at (int dirfd, const char *path, const char *data, size_t len, shim_error_t *err);
/* Replaces `path` atomically: a temporary file beside it, then rename. */
int write_file_atomic (const char *path, const char *data, size_t len, mode_t mode, shim_error_t *err);
/* mkdir -p; existing directories are fine. */
int mkdir_p (const char *path, mode_t mode, shim_error_t *err);
/* mkdir -p that adds to *created the number of directories it made. */
int mkdir_p_counted (const char *path, mode_t mode, int *created, shim_error_t *err);
/* rm -r of a directory tree that holds only our own state files (no mounts are crossed). */
int remove_tree (const char *path, shim_error_t *err);
/* Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), 0 if gone;
   *state receives the one-letter process state. Identifies a process across pid reuse. */
unsigned long long process_start_time (pid_t pid, char *state);
/* Writes the pid to `path` atomically (runc's --pid-file). */
int write_pid_file (const char *path, pid_t pid, shim_error_t *err);

#endif
