/* The connect pacer: a token bucket that lets new connections start at a steady rate, with a
 * small burst after a quiet spell. Time is passed in, so the pacer never reads a clock. */
#ifndef HB_SIM_PACER_H
#define HB_SIM_PACER_H

#include <stdbool.h>
#include <stdint.h>

struct pacer {
    double rate_per_s; /* slots earned per second, > 0 */
    double burst;      /* most slots held at once, >= 1 */
    double level;      /* slots available at at_ms */
    int64_t at_ms;
};

/* Starts full (burst slots) at now_ms. rate_per_s > 0, burst >= 1. */
void pacer_init(struct pacer *p, double rate_per_s, double burst, int64_t now_ms);

/* Adds the slots earned since the last call (up to the burst); true when one is available.
 * Calling it again with the same now_ms changes nothing. */
bool pacer_ready(struct pacer *p, int64_t now_ms);

/* Uses one slot. Call only after pacer_ready returned true. */
void pacer_take(struct pacer *p);

/* When the next slot is there, from the level at the last pacer_ready: at or before now_ms
 * when one is available already. */
int64_t pacer_next_ms(const struct pacer *p, int64_t now_ms);

#endif
