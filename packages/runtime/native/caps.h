/* Linux capabilities by name, and applying the spec's five sets with capset(2) and prctl(2). */
#ifndef BERTH_CAPS_H
#define BERTH_CAPS_H

#include <stdint.h>

#include "error.h"
#include "spec.h"

/* The number of "CAP_SYS_ADMIN" (the "CAP_" prefix is optional), or -1. */
int cap_from_name (const char *name);
/* The highest capability this kernel knows (/proc/sys/kernel/cap_last_cap). */
int cap_last (void);
/* Drops from the bounding set every capability not in caps->bounding. Needs CAP_SETPCAP. */
int caps_drop_bounding (const struct spec_caps *caps, shim_error_t *err);
/* Sets effective, permitted and inheritable, then raises the ambient set. Call after setuid. */
int caps_apply (const struct spec_caps *caps, shim_error_t *err);

#endif
