/* Heartbeat timing. The guard band is the exactness device: a heartbeat is never sent within
 * guard_ms of an interval boundary, so one sent at t is received in the interval holding t
 * whenever delivery takes less than guard_ms; the truth file relies on nothing else. */
#include "schedule.h"

#include "interval.h"

#include <math.h>

bool schedule_guard_fits(int64_t interval_ms, int64_t guard_ms)
{
    return interval_ms > 0 && guard_ms >= 0 && 2 * guard_ms < interval_ms;
}

int64_t schedule_guard(int64_t due_ms, int64_t interval_ms, int64_t guard_ms)
{
    int64_t start = hb_interval_start(due_ms, interval_ms);
    int64_t offset = due_ms - start;
    if (offset < guard_ms) /* just after the boundary at start */
        return start + guard_ms;
    if (offset >= interval_ms - guard_ms) /* just before the next boundary */
        return start + interval_ms + guard_ms;
    return due_ms;
}

int64_t schedule_spread(int64_t at_ms, int64_t interval_ms, int64_t guard_ms, double u)
{
    int64_t width = 2 * guard_ms;
    if (width > interval_ms - 2 * guard_ms - 1)
        width = interval_ms - 2 * guard_ms - 1;
    if (width <= 0 || u <= 0)
        return at_ms;
    int64_t d = (int64_t)(u * (double)width);
    return at_ms + (d < width ? d : width - 1);
}

int64_t schedule_next(int64_t sent_ms, double period_s, double jitter, double u)
{
    double delay_ms = period_s * 1000.0 * (1.0 + jitter * u);
    int64_t delay = (int64_t)llround(delay_ms);
    return sent_ms + (delay < 1 ? 1 : delay);
}

size_t schedule_complete(int64_t start_ms, int64_t end_ms, int64_t interval_ms, int64_t *first_ms)
{
    int64_t first = hb_interval_start(start_ms, interval_ms);
    if (first < start_ms)
        first += interval_ms;
    *first_ms = first;
    int64_t last_end = hb_interval_start(end_ms, interval_ms);
    if (end_ms <= start_ms || last_end <= first)
        return 0;
    return (size_t)((last_end - first) / interval_ms);
}

/* Uniform time in [lo, hi], in whole milliseconds. */
static int64_t uniform_ms(struct rng *r, int64_t lo, int64_t hi)
{
    return hi <= lo ? lo : (int64_t)rng_range(r, (uint64_t)lo, (uint64_t)hi);
}

struct schedule_window schedule_window(struct rng *r, double churn, int64_t duration_ms)
{
    struct schedule_window w = {0, duration_ms};
    /* Draw the same number of values for every device, so one device's choice does not shift
     * the draws of the devices after it. */
    double pick = rng_unit(r);
    uint64_t mode = rng_range(r, 0, 2);
    uint64_t a = rng_next(r), b = rng_next(r);
    if (pick >= churn)
        return w;
    int64_t min_active = duration_ms / 10 < 1000 ? duration_ms / 10 : 1000;
    if (min_active < 1)
        min_active = 1;
    int64_t room = duration_ms - min_active; /* latest start, or earliest stop */
    struct rng ra = {a}, rb = {b};
    switch (mode) {
    case 0: /* starts late */
        w.start_ms = uniform_ms(&ra, 1, room);
        break;
    case 1: /* stops early */
        w.stop_ms = uniform_ms(&rb, min_active, duration_ms - 1);
        break;
    default: /* both */
        w.start_ms = uniform_ms(&ra, 1, room);
        w.stop_ms = uniform_ms(&rb, w.start_ms + min_active, duration_ms - 1);
        break;
    }
    if (w.start_ms < 0)
        w.start_ms = 0;
    if (w.stop_ms > duration_ms)
        w.stop_ms = duration_ms;
    if (w.stop_ms <= w.start_ms)
        w.stop_ms = w.start_ms + 1 <= duration_ms ? w.start_ms + 1 : duration_ms;
    return w;
}
