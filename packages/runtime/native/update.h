/* `update`: new resource limits for a created, running or paused container. They are merged into
   the limits the container has (recorded as `resources` in state.json, from linux.resources at
   create), written to its cgroups, and the merged set is recorded again, as runc keeps them in
   its state. */
#ifndef BERTH_UPDATE_H
#define BERTH_UPDATE_H

#include <stdbool.h>

#include "error.h"
#include "json.h"
#include "spec.h"

struct update_options
{
  const char *root;
  const char *id;
  const char *resources_path;    /* -r: an OCI linux.resources JSON file, "-" for stdin; flags are then ignored */
  struct spec_resources flags;   /* the values given as flags (has_* says which) */
  bool any_flag;
};

int container_update (const struct update_options *o, shim_error_t *err);

/* Overlays what `from` sets onto `into`, with runc's meaning of an update: a 0 (or an empty
   cpuset) leaves a value as it was, memory -1 without a swap value makes swap unlimited too,
   device rules are never changed. */
void resources_merge (struct spec_resources *into, struct spec_resources *from);
/* The ranges and relations the kernel would refuse half-way through (swap below memory, ...). */
int resources_check (const struct spec_resources *r, shim_error_t *err);
/* `r` as an OCI linux.resources object. */
void resources_write_json (struct strbuf *b, const struct spec_resources *r);

#endif
