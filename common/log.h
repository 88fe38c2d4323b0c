/* Logging to stderr with a level, and a rate limiter for messages the network can trigger at
 * will (rejected input), so a flood of bad input cannot flood the log. */
#ifndef HB_LOG_H
#define HB_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ratelimit.h"

enum hb_log_level { HB_LOG_ERROR, HB_LOG_WARN, HB_LOG_INFO, HB_LOG_DEBUG };

/* Messages above this level are dropped. Default HB_LOG_INFO; HB_LOG_LEVEL=debug etc. */
void hb_log_set_level(enum hb_log_level level);
/* Parses "error", "warn", "info" or "debug"; false for anything else. */
bool hb_log_level_parse(const char *name, enum hb_log_level *out);

void hb_log(enum hb_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes a reason into a caller's error buffer err[0..errlen), cut to fit; the functions that
 * return false "with a reason in err" use it. err NULL or errlen 0 is a no-op. */
void hb_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* At most `burst` messages at once and, on average, `burst` per `window_ms`: a token bucket
 * (ratelimit.h) refilled at burst per window. The next message allowed after suppressed ones
 * learns how many were suppressed. Thread-safe. Zero-initialize, then set burst and
 * window_ms; the rest is private. */
struct hb_ratelimit {
    int burst;
    int64_t window_ms;
    atomic_bool busy; /* a spin lock around the rest: zero-initialized means unlocked */
    struct hb_bucket bucket;
    long suppressed;
};

/* True when the caller may log now. *suppressed_out gets the count suppressed since the last
 * allowed message (0 if none). */
bool hb_ratelimit_allow(struct hb_ratelimit *rl, long *suppressed_out);
/* The same at monotonic time now_ms (hb_ratelimit_allow passes hb_monotonic_ms()); for tests. */
bool hb_ratelimit_allow_at(struct hb_ratelimit *rl, int64_t now_ms, long *suppressed_out);

#define HB_ERROR(...) hb_log(HB_LOG_ERROR, __VA_ARGS__)
#define HB_WARN(...) hb_log(HB_LOG_WARN, __VA_ARGS__)
#define HB_INFO(...) hb_log(HB_LOG_INFO, __VA_ARGS__)
#define HB_DEBUG(...) hb_log(HB_LOG_DEBUG, __VA_ARGS__)

#endif
