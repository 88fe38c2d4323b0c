/* Leveled logging to stderr, one line per call with a UTC timestamp. Each line is formatted in
 * full before one write, so lines from several threads never interleave. */
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

bool hb_ratelimit_allow(struct hb_ratelimit *rl, long *suppressed_out)
{
    int64_t now = hb_now_ms();
    int64_t start = atomic_load(&rl->window_start);
    if (now - start >= rl->window_ms &&
        atomic_compare_exchange_strong(&rl->window_start, &start, now))
        atomic_store(&rl->used, 0);
    if (atomic_fetch_add(&rl->used, 1) < rl->burst) {
        *suppressed_out = atomic_exchange(&rl->suppressed, 0);
        return true;
    }
    atomic_fetch_add(&rl->suppressed, 1);
    *suppressed_out = 0;
    return false;
}
