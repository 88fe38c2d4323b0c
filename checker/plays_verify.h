/* hb-check --verify-plays: proves the admission invariant on a simulator's plays truth
 * (hb-sim --plays-truth) — no account above its limit once the grace period is over, and
 * every refusal and eviction as the policy says. */
#ifndef HB_CHECK_PLAYS_VERIFY_H
#define HB_CHECK_PLAYS_VERIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "plays.h"

/* How long the service may lag the truth: grace_ms for a device that vanished (its slot
 * frees when its heartbeats stop, up to a grace period later) and for an evicted device to
 * obey its stop; lag_ms for a stop heartbeat to reach the service. */
struct plays_verify_config {
    enum hb_play_policy policy;
    int64_t grace_ms;
    int64_t lag_ms;
};

/* The default lag_ms: a stop heartbeat goes through the broker and the consumer's batch. */
#define PLAYS_VERIFY_LAG_MS 2000

struct plays_verify_report {
    long events, admitted, refused, evicted, stopped, released, vanished;
    long violations, bad_lines;
};

/* Reads the events of in (JSON Lines, any order: they are sorted by time, stably) and checks
 * them; each violation and bad line is printed as one line on out. Returns true when there
 * were neither; rep gets the counts either way. Runs in memory proportional to the file. */
bool plays_verify(FILE *in, const struct plays_verify_config *cfg, FILE *out,
                  struct plays_verify_report *rep);

/* hb-check's --verify-plays FILE ("-": stdin): runs plays_verify, prints a summary line on
 * stdout. Returns 0 when the invariant holds, 1 on a violation, a bad line or no event, 2 when
 * the file cannot be opened. */
int plays_verify_file(const char *path, const struct plays_verify_config *cfg);

#endif
