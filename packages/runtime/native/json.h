/* A small JSON reader (a tree of values) and writer, enough for config.json, process.json
   and the state files. Strings are NUL-terminated; a string holding U+0000 is refused. */
#ifndef BERTH_JSON_H
#define BERTH_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "error.h"

#define JSON_NULL 0
#define JSON_BOOL 1
#define JSON_NUMBER 2
#define JSON_STRING 3
#define JSON_ARRAY 4
#define JSON_OBJECT 5

struct json_value
{
  int type;
  union
  {
    bool boolean;
    struct
    {
      bool integer;  /* written without fraction or exponent, and within 64 bits */
      bool negative; /* the sign of an integer; magnitude holds its absolute value */
      uint64_t magnitude;
      double real;
    } number;
    struct
    {
      char *s;
      size_t len;
    } string;
    struct
    {
      struct json_value **items;
      size_t len;
    } array;
    struct
    {
      char **keys;
      struct json_value **values;
      size_t len;
    } object;
  };
};

/* Parses `len` bytes of `text`; `what` names the document in error messages ("config.json"). */
int json_parse (const char *text, size_t len, const char *what, struct json_value **out, shim_error_t *err);
void json_free (struct json_value *v);
/* The member `key` of an object (the last one when repeated), or NULL. */
struct json_value *json_get (const struct json_value *obj, const char *key);
const char *json_type_name (int type);

/* A growable byte buffer, the target of the writer. */
struct strbuf
{
  char *p;
  size_t len, cap;
};
void strbuf_addn (struct strbuf *b, const char *s, size_t n);
void strbuf_add (struct strbuf *b, const char *s);
void strbuf_addf (struct strbuf *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
/* Writes `s` as a JSON string literal. Invalid UTF-8 becomes U+FFFD, as Go's encoder does. */
void json_write_string (struct strbuf *b, const char *s, size_t n);
/* Writes a value back as compact JSON. */
void json_write_value (struct strbuf *b, const struct json_value *v);
/* RFC 3339 with nanoseconds in UTC, trailing zeros of the fraction trimmed (Go's RFC3339Nano). */
void format_rfc3339 (struct strbuf *b, const struct timespec *ts);

#endif
