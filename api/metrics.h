/* hb-api's counters (atomics, bumped on the server threads) and their Prometheus text. */
#ifndef HB_API_METRICS_H
#define HB_API_METRICS_H

#include "input.h"
#include "plays.h"

#include <stdatomic.h>
#include <stdio.h>

/* Statuses counted one by one; others count as "other". */
#define API_STATUSES 12

struct api_metrics {
    atomic_ullong requests[API_ROUTE_COUNT][API_STATUSES + 1];
    atomic_ullong admissions, readmissions, evictions, releases, degraded, redis_errors;
    atomic_ullong refusals[HB_ADMIT_GROUP_LIMIT + 1];
    atomic_ullong bad[API_BAD_COUNT];
};

void api_metrics_request(struct api_metrics *m, enum api_route route, int status);

/* Writes every metric; stops_published/failed come from the stop publisher. */
void api_metrics_write(FILE *f, const struct api_metrics *m, unsigned long long stops_published,
                       unsigned long long stops_failed, bool control_connected);

#endif
