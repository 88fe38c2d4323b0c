/* The project's one rate limiter, a token bucket with the time passed in: the level is brought
 * up to date lazily at each call from the time elapsed since the last, so an idle bucket costs
 * nothing and no timer or thread is needed. */
#include "ratelimit.h"

#include <math.h>

/* A level this close below n counts as n: the refill is computed in floating point, where
 * "30 s at 1/60 per s" can come out a hair under 0.5. */
#define LEVEL_EPSILON 1e-9

void hb_bucket_init(struct hb_bucket *b, double rate_per_s, double burst)
{
    *b = (struct hb_bucket){.rate_per_s = rate_per_s, .burst = burst};
}

/* Brings the level to now_ms. */
static void refill(struct hb_bucket *b, int64_t now_ms)
{
    if (!b->started) {
        b->level = b->burst;
        b->started = true;
    } else if (now_ms > b->at_ms) {
        b->level += (double)(now_ms - b->at_ms) / 1000.0 * b->rate_per_s;
        if (b->level > b->burst)
            b->level = b->burst;
    } else {
        return; /* the same or an earlier time: keep at_ms, so no time is counted twice */
    }
    b->at_ms = now_ms;
}

bool hb_bucket_take(struct hb_bucket *b, double n, int64_t now_ms)
{
    if (b->rate_per_s <= 0)
        return true;
    refill(b, now_ms);
    if (b->level + LEVEL_EPSILON < n)
        return false;
    b->level = b->level > n ? b->level - n : 0;
    return true;
}

int64_t hb_bucket_wait_ms(struct hb_bucket *b, double n, int64_t now_ms)
{
    if (b->rate_per_s <= 0)
        return 0;
    if (n > b->burst)
        return -1;
    refill(b, now_ms);
    if (b->level + LEVEL_EPSILON >= n)
        return 0;
    return (int64_t)ceil((n - b->level) * 1000.0 / b->rate_per_s);
}
