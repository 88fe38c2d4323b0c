/* The end of a run as the user sees it: rates derived from the fleet's counters, the summary
 * log lines and the --json object. */
#ifndef HB_SIM_SUMMARY_H
#define HB_SIM_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fleet.h"

struct summary {
    /* Set by the caller. */
    size_t accounts;
    unsigned workers;
    size_t brokers, sources;
    uint64_t seed;
    int qos;
    size_t intervals; /* complete intervals in the truth */
    double hold_s;    /* --hold, 0: none */
    /* Set by summary_derive. */
    const struct fleet_result *r;
    double duration_s;
    double connect_all_s;      /* < 0: not every device connected */
    double connect_rate;       /* devices / connect_all_s, or < 0 */
    double hb_per_s;           /* over the run */
    double hb_per_s_connected; /* once every device had connected, or < 0 */
    double steady_s;           /* --hold: from the last connect to the end, or < 0 */
    double hb_per_s_steady;    /* --hold: published per second in the steady phase, or < 0 */
};

/* Derives the duration and rates from r, which must outlive s. */
void summary_derive(struct summary *s, const struct fleet_result *r);

/* Logs the summary lines (info, and warnings about failed connects and tokens);
 * device_intervals is the truth's count of (device, interval) pairs. */
void summary_log(const struct summary *s, size_t device_intervals);

/* Prints the summary as one JSON object on stdout. Returns false when it could not be built
 * or written. */
bool summary_print_json(const struct summary *s);

#endif
