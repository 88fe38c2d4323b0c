/* The connect pacer's token bucket. The level is refilled only in pacer_ready, from the time
 * the caller passes, so a loop refills once per turn and its sleep is computed from that. */
#include "pacer.h"

#include <math.h>

void pacer_init(struct pacer *p, double rate_per_s, double burst, int64_t now_ms)
{
    *p = (struct pacer){.rate_per_s = rate_per_s, .burst = burst, .level = burst, .at_ms = now_ms};
}

bool pacer_ready(struct pacer *p, int64_t now_ms)
{
    p->level += p->rate_per_s * (double)(now_ms - p->at_ms) / 1000.0;
    if (p->level > p->burst)
        p->level = p->burst;
    p->at_ms = now_ms;
    return p->level >= 1.0;
}

void pacer_take(struct pacer *p)
{
    p->level -= 1.0;
}

int64_t pacer_next_ms(const struct pacer *p, int64_t now_ms)
{
    return now_ms + (int64_t)ceil((1.0 - p->level) * 1000.0 / p->rate_per_s);
}
