/*
 * metrics_prom.h - the Prometheus text exposition (format 0.0.4) of a snapshot:
 * what hostd serves at /metrics (docs/http-api.md lists every family).
 */
#ifndef OBS_METRICS_PROM_H
#define OBS_METRICS_PROM_H

#include <stddef.h>

#include "measure/snapshot.h"

/* Renders the snapshot (NULL: no pipeline yet, only hostd's own
 * families) into a malloc'd, NUL-terminated buffer (*out, length *len).
 * Separate from the server so tests and benchmarks can call it directly.
 * Returns 0 or OBS_ENOMEM. */
int metrics_render(const obs_snapshot *snap, char **out, size_t *len);

#endif /* OBS_METRICS_PROM_H */
