/* A token bucket: at most `burst` at once, refilled at `rate_per_s`. The caller passes the
 * time (monotonic milliseconds) to every call, so tests step time by hand. Used for API keys
 * (POST /v1/tokens), log lines the network can trigger (log.h) and connect pacing. */
#ifndef HB_RATELIMIT_H
#define HB_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* Zero-initialized it holds nothing to limit: set rate_per_s and burst (hb_bucket_init). Not
 * thread-safe: one owner, or the owner's lock. */
struct hb_bucket {
    double rate_per_s; /* tokens added per second; <= 0: no limit at all */
    double burst;      /* most tokens held at once; a bucket starts full */
    double level;      /* tokens held at at_ms */
    int64_t at_ms;     /* when level was computed */
    bool started;      /* false until the first take: then full */
};

/* Sets the bucket to rate_per_s and burst; it starts full at its first use. */
void hb_bucket_init(struct hb_bucket *b, double rate_per_s, double burst);

/* Takes n tokens at now_ms when that many are there: true, or false and nothing taken. Always
 * true when rate_per_s <= 0. now_ms must not go backwards (an earlier time adds nothing). */
bool hb_bucket_take(struct hb_bucket *b, double n, int64_t now_ms);

/* Milliseconds from now_ms until n tokens are there (0: now), rounded up; nothing is taken.
 * -1 when n will never be there (n > burst). 0 when rate_per_s <= 0. */
int64_t hb_bucket_wait_ms(struct hb_bucket *b, double n, int64_t now_ms);

#endif
