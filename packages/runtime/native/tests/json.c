/* The JSON reader and writer: values, escapes, numbers at the 64-bit edges, and errors that say where. */
#include "check.h"
#include "json.h"

static struct json_value *
parse_ok (const char *text)
{
  struct json_value *v = NULL;
  shim_error_t err = NULL;
  if (json_parse (text, strlen (text), "test", &v, &err) < 0)
    {
      fprintf (stderr, "unexpected error: %s\n", err->msg);
      exit (1);
    }
  return v;
}

static const char *
parse_err (const char *text)
{
  struct json_value *v = NULL;
  shim_error_t err = NULL;
  CHECK (json_parse (text, strlen (text), "test", &v, &err) < 0);
  CHECK (err->code == SHIM_CODE_INVALID_SPEC);
  return err->msg;
}

int
main (void)
{
  struct json_value *v = parse_ok (" {\"a\": [1, -2, 3.5, true, false, null], \"b\": \"x\\u00e9\\n\\ud83d\\ude00\", \"a\": 7} ");
  CHECK (v->type == JSON_OBJECT);
  /* The last of a repeated key wins, as in Go. */
  CHECK (json_get (v, "a")->type == JSON_NUMBER && json_get (v, "a")->number.magnitude == 7);
  CHECK_STR (json_get (v, "b")->string.s, "x\xc3\xa9\n\xf0\x9f\x98\x80");
  json_free (v);

  v = parse_ok ("[18446744073709551615, -9223372036854775808, 18446744073709551616, 1e3]");
  CHECK (v->array.items[0]->number.integer && v->array.items[0]->number.magnitude == UINT64_MAX);
  CHECK (v->array.items[1]->number.integer && v->array.items[1]->number.negative);
  CHECK (v->array.items[1]->number.magnitude == (uint64_t) INT64_MAX + 1);
  CHECK (!v->array.items[2]->number.integer); /* too big for 64 bits */
  CHECK (!v->array.items[3]->number.integer && v->array.items[3]->number.real == 1000);
  json_free (v);

  CHECK (strstr (parse_err ("{\"a\": 1,\n \"b\" 2}"), "line 2 column 6") != NULL);
  CHECK (strstr (parse_err ("[1, 2"), "expected ',' or ']'") != NULL || strstr (parse_err ("[1, 2"), "end of input"));
  CHECK (strstr (parse_err ("\"a\\u0000b\""), "\\u0000") != NULL);
  CHECK (strstr (parse_err ("01"), "leading zero") != NULL);
  CHECK (strstr (parse_err ("{} x"), "trailing data") != NULL);
  CHECK (strstr (parse_err ("\"tab\there\""), "control character") != NULL);
  char deep[1000];
  memset (deep, '[', sizeof deep - 1);
  deep[sizeof deep - 1] = 0;
  CHECK (strstr (parse_err (deep), "nesting deeper") != NULL);

  struct strbuf b = { 0 };
  json_write_string (&b, "a\"b\\c\n\x01\xff\xc3\xa9", 10);
  CHECK_STR (b.p, "\"a\\\"b\\\\c\\n\\u0001\\ufffd\xc3\xa9\"");
  free (b.p);
  b = (struct strbuf){ 0 };
  struct timespec ts = { .tv_sec = 0, .tv_nsec = 120000000 };
  format_rfc3339 (&b, &ts);
  CHECK_STR (b.p, "1970-01-01T00:00:00.12Z");
  free (b.p);
  return 0;
}
