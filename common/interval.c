/* Interval arithmetic on Unix milliseconds. Floor division, so times before the epoch (and a
 * wrong clock) still land in the interval that contains them. */
#include "interval.h"

#include <time.h>

int64_t hb_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hb_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hb_interval_start(int64_t t_ms, int64_t interval_ms)
{
    int64_t r = t_ms % interval_ms;
    if (r < 0)
        r += interval_ms;
    return t_ms - r;
}

int64_t hb_interval_previous(int64_t t_ms, int64_t interval_ms)
{
    return hb_interval_start(t_ms, interval_ms) - interval_ms;
}

int64_t hb_interval_ttl_ms(int64_t start_ms, int64_t interval_ms, int64_t now_ms)
{
    int64_t ttl = start_ms + 2 * interval_ms - now_ms;
    return ttl > 2 * interval_ms ? 2 * interval_ms : ttl;
}
