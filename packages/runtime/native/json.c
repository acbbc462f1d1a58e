#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#define MAX_DEPTH 200

struct parser
{
  const char *p, *start, *end;
  const char *what;
  int depth;
  shim_error_t *err;
};

static int
fail (struct parser *ps, const char *fmt, ...)
{
  size_t line = 1, col = 1;
  for (const char *c = ps->start; c < ps->p; c++)
    {
      if (*c == '\n')
        {
          line++;
          col = 1;
        }
      else
        col++;
    }
  char msg[256];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  return shim_make_error_code (ps->err, SHIM_CODE_INVALID_SPEC, 0, "%s: invalid JSON at line %zu column %zu: %s", ps->what,
                               line, col, msg);
}

static void
skip_ws (struct parser *ps)
{
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r'))
    ps->p++;
}

static struct json_value *
new_value (int type)
{
  struct json_value *v = xcalloc (1, sizeof *v);
  v->type = type;
  return v;
}

static int parse_value (struct parser *ps, struct json_value **out);

static void
put_utf8 (struct strbuf *b, uint32_t cp)
{
  char c[4];
  size_t n;
  if (cp < 0x80)
    {
      c[0] = (char) cp;
      n = 1;
    }
  else if (cp < 0x800)
    {
      c[0] = (char) (0xC0 | (cp >> 6));
      c[1] = (char) (0x80 | (cp & 0x3F));
      n = 2;
    }
  else if (cp < 0x10000)
    {
      c[0] = (char) (0xE0 | (cp >> 12));
      c[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
      c[2] = (char) (0x80 | (cp & 0x3F));
      n = 3;
    }
  else
    {
      c[0] = (char) (0xF0 | (cp >> 18));
      c[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
      c[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
      c[3] = (char) (0x80 | (cp & 0x3F));
      n = 4;
    }
  strbuf_addn (b, c, n);
}

static int
hex4 (struct parser *ps, uint32_t *out)
{
  if (ps->end - ps->p < 4)
    return fail (ps, "truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++)
    {
      char c = *ps->p++;
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= (uint32_t) (c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= (uint32_t) (c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= (uint32_t) (c - 'A' + 10);
      else
        return fail (ps, "invalid hex digit in \\u escape");
    }
  *out = v;
  return 0;
}

static int
parse_string (struct parser *ps, char **out, size_t *outlen)
{
  struct strbuf b = { 0 };
  ps->p++;
  for (;;)
    {
      if (ps->p >= ps->end)
        {
          free (b.p);
          return fail (ps, "unterminated string");
        }
      unsigned char c = (unsigned char) *ps->p;
      if (c == '"')
        {
          ps->p++;
          break;
        }
      if (c < 0x20)
        {
          free (b.p);
          return fail (ps, "control character in string");
        }
      if (c != '\\')
        {
          const char *run = ps->p;
          while (ps->p < ps->end && *ps->p != '"' && *ps->p != '\\' && (unsigned char) *ps->p >= 0x20)
            ps->p++;
          strbuf_addn (&b, run, (size_t) (ps->p - run));
          continue;
        }
      ps->p++;
      if (ps->p >= ps->end)
        {
          free (b.p);
          return fail (ps, "unterminated escape");
        }
      char e = *ps->p++;
      switch (e)
        {
        case '"':
        case '\\':
        case '/':
          strbuf_addn (&b, &e, 1);
          break;
        case 'b':
          strbuf_addn (&b, "\b", 1);
          break;
        case 'f':
          strbuf_addn (&b, "\f", 1);
          break;
        case 'n':
          strbuf_addn (&b, "\n", 1);
          break;
        case 'r':
          strbuf_addn (&b, "\r", 1);
          break;
        case 't':
          strbuf_addn (&b, "\t", 1);
          break;
        case 'u':
          {
            uint32_t cp;
            if (hex4 (ps, &cp) < 0)
              {
                free (b.p);
                return -1;
              }
            if (cp >= 0xD800 && cp <= 0xDBFF)
              {
                uint32_t lo;
                if (ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u')
                  {
                    ps->p += 2;
                    if (hex4 (ps, &lo) < 0)
                      {
                        free (b.p);
                        return -1;
                      }
                    if (lo >= 0xDC00 && lo <= 0xDFFF)
                      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    else
                      {
                        put_utf8 (&b, 0xFFFD);
                        cp = lo;
                      }
                  }
                else
                  cp = 0xFFFD;
              }
            else if (cp >= 0xDC00 && cp <= 0xDFFF)
              cp = 0xFFFD;
            if (cp == 0)
              {
                free (b.p);
                return fail (ps, "\\u0000 in a string is not supported");
              }
            put_utf8 (&b, cp);
            break;
          }
        default:
          free (b.p);
          return fail (ps, "invalid escape \\%c", e);
        }
    }
  strbuf_addn (&b, "", 0);
  *out = b.p;
  *outlen = b.len;
  return 0;
}

static int
parse_number (struct parser *ps, struct json_value **out)
{
  const char *s = ps->p;
  bool neg = false, integer = true, overflow = false;
  uint64_t mag = 0;
  if (ps->p < ps->end && *ps->p == '-')
    {
      neg = true;
      ps->p++;
    }
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
    return fail (ps, "invalid number");
  if (*ps->p == '0' && ps->p + 1 < ps->end && ps->p[1] >= '0' && ps->p[1] <= '9')
    return fail (ps, "leading zero in number");
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
    {
      unsigned d = (unsigned) (*ps->p - '0');
      if (mag > (UINT64_MAX - d) / 10)
        overflow = true;
      else
        mag = mag * 10 + d;
      ps->p++;
    }
  if (ps->p < ps->end && *ps->p == '.')
    {
      integer = false;
      ps->p++;
      if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail (ps, "invalid fraction in number");
      while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E'))
    {
      integer = false;
      ps->p++;
      if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-'))
        ps->p++;
      if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9')
        return fail (ps, "invalid exponent in number");
      while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9')
        ps->p++;
    }
  char tmp[64];
  size_t n = (size_t) (ps->p - s);
  struct json_value *v = new_value (JSON_NUMBER);
  if (n < sizeof tmp)
    {
      memcpy (tmp, s, n);
      tmp[n] = 0;
      v->number.real = strtod (tmp, NULL);
    }
  else
    v->number.real = neg ? -HUGE_VAL : HUGE_VAL;
  v->number.integer = integer && !overflow;
  v->number.negative = neg && mag != 0;
  v->number.magnitude = mag;
  *out = v;
  return 0;
}

static bool
literal (struct parser *ps, const char *word)
{
  size_t n = strlen (word);
  if ((size_t) (ps->end - ps->p) >= n && memcmp (ps->p, word, n) == 0)
    {
      ps->p += n;
      return true;
    }
  return false;
}

static int
parse_array (struct parser *ps, struct json_value **out)
{
  struct json_value *v = new_value (JSON_ARRAY);
  size_t cap = 0;
  ps->p++;
  skip_ws (ps);
  if (ps->p < ps->end && *ps->p == ']')
    {
      ps->p++;
      *out = v;
      return 0;
    }
  for (;;)
    {
      struct json_value *item = NULL;
      if (parse_value (ps, &item) < 0)
        {
          json_free (v);
          return -1;
        }
      if (v->array.len == cap)
        {
          cap = cap ? cap * 2 : 4;
          v->array.items = xrealloc (v->array.items, cap * sizeof *v->array.items);
        }
      v->array.items[v->array.len++] = item;
      skip_ws (ps);
      if (ps->p < ps->end && *ps->p == ',')
        {
          ps->p++;
          continue;
        }
      if (ps->p < ps->end && *ps->p == ']')
        {
          ps->p++;
          break;
        }
      json_free (v);
      return fail (ps, "expected ',' or ']' in array");
    }
  *out = v;
  return 0;
}

static int
parse_object (struct parser *ps, struct json_value **out)
{
  struct json_value *v = new_value (JSON_OBJECT);
  size_t cap = 0;
  ps->p++;
  skip_ws (ps);
  if (ps->p < ps->end && *ps->p == '}')
    {
      ps->p++;
      *out = v;
      return 0;
    }
  for (;;)
    {
      skip_ws (ps);
      if (ps->p >= ps->end || *ps->p != '"')
        {
          json_free (v);
          return fail (ps, "expected a string key in object");
        }
      char *key;
      size_t klen;
      if (parse_string (ps, &key, &klen) < 0)
        {
          json_free (v);
          return -1;
        }
      skip_ws (ps);
      if (ps->p >= ps->end || *ps->p != ':')
        {
          free (key);
          json_free (v);
          return fail (ps, "expected ':' after object key");
        }
      ps->p++;
      struct json_value *item = NULL;
      if (parse_value (ps, &item) < 0)
        {
          free (key);
          json_free (v);
          return -1;
        }
      if (v->object.len == cap)
        {
          cap = cap ? cap * 2 : 8;
          v->object.keys = xrealloc (v->object.keys, cap * sizeof *v->object.keys);
          v->object.values = xrealloc (v->object.values, cap * sizeof *v->object.values);
        }
      v->object.keys[v->object.len] = key;
      v->object.values[v->object.len++] = item;
      skip_ws (ps);
      if (ps->p < ps->end && *ps->p == ',')
        {
          ps->p++;
          continue;
        }
      if (ps->p < ps->end && *ps->p == '}')
        {
          ps->p++;
          break;
        }
      json_free (v);
      return fail (ps, "expected ',' or '}' in object");
    }
  *out = v;
  return 0;
}

static int
parse_value (struct parser *ps, struct json_value **out)
{
  skip_ws (ps);
  if (ps->p >= ps->end)
    return fail (ps, "unexpected end of input");
  if (++ps->depth > MAX_DEPTH)
    return fail (ps, "nesting deeper than %d", MAX_DEPTH);
  int r = 0;
  switch (*ps->p)
    {
    case '{':
      r = parse_object (ps, out);
      break;
    case '[':
      r = parse_array (ps, out);
      break;
    case '"':
      {
        struct json_value *v = new_value (JSON_STRING);
        if (parse_string (ps, &v->string.s, &v->string.len) < 0)
          {
            free (v);
            r = -1;
          }
        else
          *out = v;
        break;
      }
    case 't':
      if (!literal (ps, "true"))
        return fail (ps, "invalid literal");
      *out = new_value (JSON_BOOL);
      (*out)->boolean = true;
      break;
    case 'f':
      if (!literal (ps, "false"))
        return fail (ps, "invalid literal");
      *out = new_value (JSON_BOOL);
      break;
    case 'n':
      if (!literal (ps, "null"))
        return fail (ps, "invalid literal");
      *out = new_value (JSON_NULL);
      break;
    default:
      if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
        r = parse_number (ps, out);
      else
        r = fail (ps, "unexpected character '%c'", *ps->p);
    }
  ps->depth--;
  return r;
}

int
json_parse (const char *text, size_t len, const char *what, struct json_value **out, shim_error_t *err)
{
  struct parser ps = { .p = text, .start = text, .end = text + len, .what = what, .err = err };
  *out = NULL;
  if (parse_value (&ps, out) < 0)
    return -1;
  skip_ws (&ps);
  if (ps.p != ps.end)
    {
      json_free (*out);
      *out = NULL;
      return fail (&ps, "trailing data after the document");
    }
  return 0;
}

void
json_free (struct json_value *v)
{
  if (v == NULL)
    return;
  switch (v->type)
    {
    case JSON_STRING:
      free (v->string.s);
      break;
    case JSON_ARRAY:
      for (size_t i = 0; i < v->array.len; i++)
        json_free (v->array.items[i]);
      free (v->array.items);
      break;
    case JSON_OBJECT:
      for (size_t i = 0; i < v->object.len; i++)
        {
          free (v->object.keys[i]);
          json_free (v->object.values[i]);
        }
      free (v->object.keys);
      free (v->object.values);
      break;
    default:
      break;
    }
  free (v);
}

struct json_value *
json_get (const struct json_value *obj, const char *key)
{
  if (obj == NULL || obj->type != JSON_OBJECT)
    return NULL;
  for (size_t i = obj->object.len; i > 0; i--)
    if (strcmp (obj->object.keys[i - 1], key) == 0)
      return obj->object.values[i - 1];
  return NULL;
}

const char *
json_type_name (int type)
{
  switch (type)
    {
    case JSON_NULL:
      return "null";
    case JSON_BOOL:
      return "boolean";
    case JSON_NUMBER:
      return "number";
    case JSON_STRING:
      return "string";
    case JSON_ARRAY:
      return "array";
    default:
      return "object";
    }
}

void
strbuf_addn (struct strbuf *b, const char *s, size_t n)
{
  if (b->len + n + 1 > b->cap)
    {
      size_t cap = b->cap ? b->cap : 64;
      while (cap < b->len + n + 1)
        cap *= 2;
      b->p = xrealloc (b->p, cap);
      b->cap = cap;
    }
  if (n)
    memcpy (b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void
strbuf_add (struct strbuf *b, const char *s)
{
  strbuf_addn (b, s, strlen (s));
}

void
strbuf_addf (struct strbuf *b, const char *fmt, ...)
{
  char small[256];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (small, sizeof small, fmt, ap);
  va_end (ap);
  if (n < 0)
    return;
  if ((size_t) n < sizeof small)
    {
      strbuf_addn (b, small, (size_t) n);
      return;
    }
  char *big = xmalloc ((size_t) n + 1);
  va_start (ap, fmt);
  vsnprintf (big, (size_t) n + 1, fmt, ap);
  va_end (ap);
  strbuf_addn (b, big, (size_t) n);
  free (big);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t
utf8_seq (const unsigned char *s, size_t n)
{
  unsigned char c = s[0];
  size_t len;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if ((c & 0xE0) == 0xC0)
    {
      len = 2;
      cp = c & 0x1F;
    }
  else if ((c & 0xF0) == 0xE0)
    {
      len = 3;
      cp = c & 0x0F;
    }
  else if ((c & 0xF8) == 0xF0)
    {
      len = 4;
      cp = c & 0x07;
    }
  else
    return 0;
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++)
    {
      if ((s[i] & 0xC0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i] & 0x3F);
    }
  if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))
      || (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return len;
}

void
json_write_string (struct strbuf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *) s;
  strbuf_addn (b, "\"", 1);
  size_t i = 0;
  while (i < n)
    {
      size_t run = i;
      while (run < n && u[run] >= 0x20 && u[run] < 0x80 && u[run] != '"' && u[run] != '\\')
        run++;
      if (run > i)
        {
          strbuf_addn (b, s + i, run - i);
          i = run;
          continue;
        }
      unsigned char c = u[i];
      if (c >= 0x80)
        {
          size_t len = utf8_seq (u + i, n - i);
          if (len == 0)
            {
              strbuf_add (b, "\\ufffd");
              i++;
            }
          else
            {
              strbuf_addn (b, s + i, len);
              i += len;
            }
          continue;
        }
      switch (c)
        {
        case '"':
          strbuf_add (b, "\\\"");
          break;
        case '\\':
          strbuf_add (b, "\\\\");
          break;
        case '\n':
          strbuf_add (b, "\\n");
          break;
        case '\r':
          strbuf_add (b, "\\r");
          break;
        case '\t':
          strbuf_add (b, "\\t");
          break;
        default:
          {
            char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
            strbuf_addn (b, esc, 6);
          }
        }
      i++;
    }
  strbuf_addn (b, "\"", 1);
}

void
json_write_value (struct strbuf *b, const struct json_value *v)
{
  switch (v->type)
    {
    case JSON_NULL:
      strbuf_add (b, "null");
      break;
    case JSON_BOOL:
      strbuf_add (b, v->boolean ? "true" : "false");
      break;
    case JSON_NUMBER:
      if (v->number.integer)
        strbuf_addf (b, "%s%llu", v->number.negative ? "-" : "", (unsigned long long) v->number.magnitude);
      else
        strbuf_addf (b, "%.17g", v->number.real);
      break;
    case JSON_STRING:
      json_write_string (b, v->string.s, v->string.len);
      break;
    case JSON_ARRAY:
      strbuf_add (b, "[");
      for (size_t i = 0; i < v->array.len; i++)
        {
          if (i)
            strbuf_add (b, ",");
          json_write_value (b, v->array.items[i]);
        }
      strbuf_add (b, "]");
      break;
    default:
      strbuf_add (b, "{");
      for (size_t i = 0; i < v->object.len; i++)
        {
          if (i)
            strbuf_add (b, ",");
          json_write_string (b, v->object.keys[i], strlen (v->object.keys[i]));
          strbuf_add (b, ":");
          json_write_value (b, v->object.values[i]);
        }
      strbuf_add (b, "}");
    }
}

void
format_rfc3339 (struct strbuf *b, const struct timespec *ts)
{
  struct tm tm;
  gmtime_r (&ts->tv_sec, &tm);
  strbuf_addf (b, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
               tm.tm_sec);
  long ns = ts->tv_nsec;
  if (ns > 0)
    {
      char frac[24];
      snprintf (frac, sizeof frac, ".%09ld", ns % 1000000000L);
      size_t n = strlen (frac);
      while (n > 1 && frac[n - 1] == '0')
        n--;
      strbuf_addn (b, frac, n);
    }
  strbuf_add (b, "Z");
}
