/* The one error convention of the shim, after crun's: a function that can fail takes a
   shim_error_t *err, returns a negative value and fills *err with an errno and a message. */
#ifndef BERTH_ERROR_H
#define BERTH_ERROR_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Categories the TypeScript driver maps to typed errors; printed as the `code` of a JSON error. */
#define SHIM_CODE_RUNTIME 0
#define SHIM_CODE_USAGE 1
#define SHIM_CODE_INVALID_SPEC 2
#define SHIM_CODE_EXISTS 3
#define SHIM_CODE_NOT_FOUND 4
#define SHIM_CODE_STATE 5
#define SHIM_CODE_EXEC_NOT_FOUND 6
#define SHIM_CODE_EXEC_DENIED 7
#define SHIM_CODE_UNSUPPORTED 8
#define SHIM_CODE_USER_NOT_FOUND 9

struct shim_error
{
  int status; /* errno, or 0 when there is none */
  int code;   /* SHIM_CODE_* */
  char *msg;
};
typedef struct shim_error *shim_error_t;

int shim_make_error (shim_error_t *err, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
int shim_make_error_code (shim_error_t *err, int code, int status, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));
/* Prefixes the message of an existing error with more context ("creating cgroup: ..."). */
int shim_error_wrap (shim_error_t *err, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
void shim_error_release (shim_error_t *err);
const char *shim_code_name (int code);

/* Where and how errors and warnings are written (the global --log and --log-format). */
void shim_log_init (const char *path, bool json);
void shim_log_error (const shim_error_t err);
/* The monitor lets go of the caller's log once create has reported. */
void shim_log_close (void);
void shim_warning (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
/* A one-line rendering of the error: "message: strerror". Static storage, overwritten by the next call. */
const char *shim_error_text (const shim_error_t err);

/* Retries a call interrupted by a signal. */
#define SHIM_RETRY(expr)                                                                                               \
  ({                                                                                                                   \
    __typeof__ (expr) _r;                                                                                              \
    do                                                                                                                 \
      _r = (expr);                                                                                                     \
    while (_r < 0 && errno == EINTR);                                                                                  \
    _r;                                                                                                                \
  })

static inline void
cleanup_freep (void *p)
{
  free (*(void **) p);
}
static inline void
cleanup_closep (int *fd)
{
  if (*fd >= 0)
    close (*fd);
}
static inline void
cleanup_filep (FILE **f)
{
  if (*f)
    fclose (*f);
}
#define cleanup_free __attribute__ ((cleanup (cleanup_freep)))
#define cleanup_close __attribute__ ((cleanup (cleanup_closep)))
#define cleanup_file __attribute__ ((cleanup (cleanup_filep)))

/* Allocation failure ends the process: there is nothing sensible left to do. */
void *xmalloc (size_t n);
void *xcalloc (size_t n, size_t size);
void *xrealloc (void *p, size_t n);
char *xstrdup (const char *s);
char *xasprintf (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));

#endif
