/* Leveled logging to stderr, one line per call with a UTC timestamp. Each line is formatted in
 * full before one write, so lines from several threads never interleave. The log limiter is a
 * token bucket of ratelimit.c behind a spin lock. */
#include "log.h"

#include "interval.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = HB_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void hb_log_set_level(enum hb_log_level level)
{
    atomic_store(&log_level, (int)level);
}

bool hb_log_level_parse(const char *name, enum hb_log_level *out)
{
    for (int i = 0; i <= HB_LOG_DEBUG; i++) {
        if (strcasecmp(name, level_names[i]) == 0) {
            *out = (enum hb_log_level)i;
            return true;
        }
    }
    return false;
}

void hb_log(enum hb_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&log_level))
        return;
    char line[1024];
    int64_t now = hb_now_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n = (int)strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    n += snprintf(line + n, sizeof(line) - (size_t)n, ".%03dZ %s ", (int)(now % 1000),
                  level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    /* stderr is unbuffered; a failed log write has nowhere to be reported. */
    if (write(STDERR_FILENO, line, len) < 0)
        return;
}

void hb_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

bool hb_ratelimit_allow_at(struct hb_ratelimit *rl, int64_t now_ms, long *suppressed_out)
{
    /* The critical section is a few arithmetic operations: spinning costs less than a mutex
     * would, and a zeroed struct needs no set-up. */
    while (atomic_exchange_explicit(&rl->busy, true, memory_order_acquire))
        ;
    if (!rl->bucket.started)
        hb_bucket_init(&rl->bucket,
                       rl->window_ms > 0 ? rl->burst * 1000.0 / (double)rl->window_ms : 0,
                       rl->burst);
    bool allowed = hb_bucket_take(&rl->bucket, 1, now_ms);
    if (allowed) {
        *suppressed_out = rl->suppressed;
        rl->suppressed = 0;
    } else {
        rl->suppressed++;
        *suppressed_out = 0;
    }
    atomic_store_explicit(&rl->busy, false, memory_order_release);
    return allowed;
}

bool hb_ratelimit_allow(struct hb_ratelimit *rl, long *suppressed_out)
{
    return hb_ratelimit_allow_at(rl, hb_monotonic_ms(), suppressed_out);
}
