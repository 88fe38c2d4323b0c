/* When a simulated device does things: heartbeat times with jitter and the guard band around
 * interval boundaries, the range of complete intervals of a run, and each device's active
 * window. Pure functions of their arguments (and of the generator they are handed). */
#ifndef HB_SIM_SCHEDULE_H
#define HB_SIM_SCHEDULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rng.h"

/* True when a guard of guard_ms fits interval_ms: the bands [b - guard, b + guard) of two
 * consecutive boundaries must leave room between them (2 * guard < interval). */
bool schedule_guard_fits(int64_t interval_ms, int64_t guard_ms);

/* The time a heartbeat due at due_ms may be sent: due_ms itself when it lies outside every
 * band [boundary - guard_ms, boundary + guard_ms), else boundary + guard_ms of the boundary
 * whose band holds it. Boundaries are Unix-epoch multiples of interval_ms. Never earlier than
 * due_ms. Requires schedule_guard_fits(interval_ms, guard_ms). */
int64_t schedule_guard(int64_t due_ms, int64_t interval_ms, int64_t guard_ms);

/* Where a heartbeat postponed out of a band goes: at_ms (a boundary + guard_ms, from
 * schedule_guard) plus u (in [0, 1), drawn by the caller) times 2 * guard_ms, the width of the
 * band it left, so the heartbeats due in a band do not all leave at one instant. Never past
 * the next band (at most interval - 2 * guard - 1 later). Requires schedule_guard_fits. */
int64_t schedule_spread(int64_t at_ms, int64_t interval_ms, int64_t guard_ms, double u);

/* The next heartbeat after one sent at sent_ms: sent_ms + period * (1 + jitter * u), with u in
 * [-1, 1] (the caller draws it), rounded to a millisecond and at least 1 ms after sent_ms. The
 * guard band is not applied here. */
int64_t schedule_next(int64_t sent_ms, double period_s, double jitter, double u);

/* The complete intervals of a run from start_ms to end_ms: those [s, s + interval) with
 * start_ms <= s and s + interval <= end_ms. Stores the first one's start in *first_ms (also
 * when there are none) and returns how many there are (0 when end_ms <= start_ms). */
size_t schedule_complete(int64_t start_ms, int64_t end_ms, int64_t interval_ms, int64_t *first_ms);

/* A device's active window, in milliseconds after the run start: it connects at start_ms and
 * disconnects at stop_ms (start_ms < stop_ms <= duration_ms). */
struct schedule_window {
    int64_t start_ms;
    int64_t stop_ms;
};

/* Draws a device's window from r. With probability churn the device churns: it starts late,
 * stops early, or both (equally likely), at uniform times that keep it active for at least
 * min(1 s, duration / 10). Otherwise it is active for the whole run [0, duration_ms).
 * Requires duration_ms > 0 and 0 <= churn <= 1. */
struct schedule_window schedule_window(struct rng *r, double churn, int64_t duration_ms);

#endif
