#include "error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>

#include "json.h"

static const char *const code_names[] = {
  [SHIM_CODE_RUNTIME] = "ERR_RUNTIME",
  [SHIM_CODE_USAGE] = "ERR_USAGE",
  [SHIM_CODE_INVALID_SPEC] = "ERR_INVALID_SPEC",
  [SHIM_CODE_EXISTS] = "ERR_CONTAINER_EXISTS",
  [SHIM_CODE_NOT_FOUND] = "ERR_CONTAINER_NOT_FOUND",
  [SHIM_CODE_STATE] = "ERR_CONTAINER_STATE",
  [SHIM_CODE_EXEC_NOT_FOUND] = "ERR_EXEC_NOT_FOUND",
  [SHIM_CODE_EXEC_DENIED] = "ERR_EXEC_DENIED",
  [SHIM_CODE_UNSUPPORTED] = "ERR_UNSUPPORTED",
  [SHIM_CODE_USER_NOT_FOUND] = "ERR_USER_NOT_FOUND",
};

static int log_fd = -1;
static bool log_json;

void *
xmalloc (size_t n)
{
  void *p = malloc (n ? n : 1);
  if (p == NULL)
    {
      static const char msg[] = "berth-runtime: out of memory\n";
      if (write (2, msg, sizeof msg - 1) < 0)
        _exit (1);
      _exit (1);
    }
  return p;
}

void *
xcalloc (size_t n, size_t size)
{
  void *p = calloc (n ? n : 1, size ? size : 1);
  if (p == NULL)
    return xmalloc ((size_t) -1 / 2);
  return p;
}

void *
xrealloc (void *p, size_t n)
{
  void *q = realloc (p, n ? n : 1);
  if (q == NULL)
    return xmalloc ((size_t) -1 / 2);
  return q;
}

char *
xstrdup (const char *s)
{
  size_t n = strlen (s) + 1;
  char *p = xmalloc (n);
  memcpy (p, s, n);
  return p;
}

char *
xasprintf (const char *fmt, ...)
{
  char *out = NULL;
  va_list ap;
  va_start (ap, fmt);
  int n = vasprintf (&out, fmt, ap);
  va_end (ap);
  if (n < 0)
    return xmalloc ((size_t) -1 / 2);
  return out;
}

static int
make_error_v (shim_error_t *err, int code, int status, const char *fmt, va_list ap)
{
  struct shim_error *e = xcalloc (1, sizeof *e);
  e->status = status;
  e->code = code;
  if (vasprintf (&e->msg, fmt, ap) < 0)
    e->msg = xstrdup ("(message lost)");
  if (err)
    {
      if (*err)
        shim_error_release (err);
      *err = e;
    }
  else
    {
      free (e->msg);
      free (e);
    }
  return -1;
}

int
shim_make_error (shim_error_t *err, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = make_error_v (err, SHIM_CODE_RUNTIME, status, fmt, ap);
  va_end (ap);
  return r;
}

int
shim_make_error_code (shim_error_t *err, int code, int status, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  int r = make_error_v (err, code, status, fmt, ap);
  va_end (ap);
  return r;
}

int
shim_error_wrap (shim_error_t *err, const char *fmt, ...)
{
  if (err == NULL || *err == NULL)
    return -1;
  char *prefix = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&prefix, fmt, ap) < 0)
    prefix = NULL;
  va_end (ap);
  if (prefix)
    {
      char *msg = xasprintf ("%s: %s", prefix, (*err)->msg);
      free (prefix);
      free ((*err)->msg);
      (*err)->msg = msg;
    }
  return -1;
}

void
shim_error_release (shim_error_t *err)
{
  if (err == NULL || *err == NULL)
    return;
  free ((*err)->msg);
  free (*err);
  *err = NULL;
}

const char *
shim_code_name (int code)
{
  if (code < 0 || (size_t) code >= sizeof code_names / sizeof code_names[0] || code_names[code] == NULL)
    return code_names[SHIM_CODE_RUNTIME];
  return code_names[code];
}

void
shim_log_init (const char *path, bool json)
{
  log_json = json;
  if (log_fd >= 0)
    close (log_fd);
  log_fd = -1;
  if (path && *path)
    {
      log_fd = open (path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
      /* /proc/self/fd/N of a socket cannot be opened (ENXIO): take the descriptor itself. */
      int n;
      char tail;
      if (log_fd < 0 && errno == ENXIO
          && (sscanf (path, "/proc/self/fd/%d%c", &n, &tail) == 1 || sscanf (path, "/dev/fd/%d%c", &n, &tail) == 1))
        log_fd = fcntl (n, F_DUPFD_CLOEXEC, 3);
    }
}

const char *
shim_error_text (const shim_error_t err)
{
  static char buf[8192];
  if (err->status)
    snprintf (buf, sizeof buf, "%s: %s", err->msg, strerror (err->status));
  else
    snprintf (buf, sizeof buf, "%s", err->msg);
  return buf;
}

static void
emit (const char *level, int code, int status, const char *text)
{
  if (log_json)
    {
      struct strbuf b = { 0 };
      struct timespec ts;
      clock_gettime (CLOCK_REALTIME, &ts);
      strbuf_add (&b, "{\"level\":");
      json_write_string (&b, level, strlen (level));
      strbuf_add (&b, ",\"msg\":");
      json_write_string (&b, text, strlen (text));
      if (code >= 0)
        {
          strbuf_add (&b, ",\"code\":");
          json_write_string (&b, shim_code_name (code), strlen (shim_code_name (code)));
          strbuf_addf (&b, ",\"errno\":%d", status);
        }
      strbuf_add (&b, ",\"time\":\"");
      format_rfc3339 (&b, &ts);
      strbuf_add (&b, "\"}\n");
      if (log_fd >= 0)
        {
          if (write (log_fd, b.p, b.len) < 0)
            errno = 0;
        }
      else if (write (2, b.p, b.len) < 0)
        errno = 0;
      free (b.p);
      return;
    }
  char *line = xasprintf ("berth-runtime: %s%s\n", strcmp (level, "warning") == 0 ? "warning: " : "", text);
  if (write (2, line, strlen (line)) < 0)
    errno = 0;
  if (log_fd >= 0 && write (log_fd, line, strlen (line)) < 0)
    errno = 0;
  free (line);
}

void
shim_log_close (void)
{
  if (log_fd >= 0)
    close (log_fd);
  log_fd = -1;
}

void
shim_log_error (const shim_error_t err)
{
  emit ("error", err->code, err->status, shim_error_text (err));
}

void
shim_warning (const char *fmt, ...)
{
  char *msg = NULL;
  va_list ap;
  va_start (ap, fmt);
  if (vasprintf (&msg, fmt, ap) < 0)
    msg = NULL;
  va_end (ap);
  if (msg)
    emit ("warning", -1, 0, msg);
  free (msg);
}
