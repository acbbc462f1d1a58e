/* A few assertions for the C unit tests: exit 0 pass, 77 skip, 1 fail (crun's convention). */
#ifndef BERTH_CHECK_H
#define BERTH_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                                    \
  do                                                                                                                   \
    {                                                                                                                  \
      if (!(cond))                                                                                                     \
        {                                                                                                              \
          fprintf (stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                    \
          exit (1);                                                                                                    \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define CHECK_STR(a, b)                                                                                                \
  do                                                                                                                   \
    {                                                                                                                  \
      const char *a_ = (a), *b_ = (b);                                                                                 \
      if (a_ == NULL || b_ == NULL || strcmp (a_, b_) != 0)                                                            \
        {                                                                                                              \
          fprintf (stderr, "%s:%d: `%s` != `%s`\n", __FILE__, __LINE__, a_ ? a_ : "(null)", b_ ? b_ : "(null)");       \
          exit (1);                                                                                                    \
        }                                                                                                              \
    }                                                                                                                  \
  while (0)

#define SKIP(why)                                                                                                      \
  do                                                                                                                   \
    {                                                                                                                  \
      fprintf (stderr, "skipped: %s\n", why);                                                                          \
      exit (77);                                                                                                       \
    }                                                                                                                  \
  while (0)

#endif
