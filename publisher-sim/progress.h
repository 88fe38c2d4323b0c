/* What the fleet shows while it runs: the workers' counters summed, and one progress line,
 * either compact for a terminal (rewritten in place) or key=value for a log. Pure functions. */
#ifndef HB_SIM_PROGRESS_H
#define HB_SIM_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"

/* Sums the counters of n workers into *total. Counts add up; start_ms is the earliest and
 * end_ms the earliest end (an interval is complete only if it is for every worker);
 * all_connected_ms is the latest, or 0 while any worker has a device that never connected;
 * interrupted when any was; connected_max is the sum of the workers' maxima (an upper bound:
 * their peaks need not coincide). */
void progress_sum(struct sim_stats *total, const struct sim_stats *parts, size_t n);

struct progress_view {
    double elapsed_s;
    size_t devices; /* planned */
    size_t connected;
    size_t connecting;
    uint64_t failed; /* connects that failed or were refused */
    uint64_t errors;
    uint64_t lost;
    double hb_per_s;
};

/* Writes one progress line (no newline) into buf, as snprintf does. terminal: short labels for
 * a line rewritten with \r; otherwise key=value pairs. */
int progress_format(char *buf, size_t size, const struct progress_view *v, bool terminal);

#endif
