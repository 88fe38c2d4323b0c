/* Counters and their one-line form. Latency is a fixed 1 ms histogram, so percentiles need no
 * samples kept and no lock on the hot path. */
#include "stats.h"

#include "interval.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void stats_init(struct stats *s)
{
    memset(s, 0, sizeof(*s));
}

void stats_reject(struct stats *s, enum hb_reject reason)
{
    if (reason > HB_OK && reason < HB_REJECT_COUNT)
        atomic_fetch_add_explicit(&s->rejected[reason], 1, memory_order_relaxed);
}

void stats_latency(struct stats *s, int64_t latency_ms)
{
    /* The window's maximum: a racy reset only loses a sample of the window's first moment. */
    int64_t now = hb_monotonic_ms();
    if (now - atomic_load(&s->recent_window_ms) >= STATS_RECENT_MS) {
        atomic_store(&s->recent_window_ms, now);
        atomic_store(&s->recent_latency_max_ms, 0);
    }
    int64_t max = atomic_load(&s->recent_latency_max_ms);
    while (latency_ms > max &&
           !atomic_compare_exchange_weak(&s->recent_latency_max_ms, &max, latency_ms))
        ;
    if (latency_ms < 0)
        latency_ms = 0;
    if (latency_ms > STATS_LATENCY_BUCKETS - 1)
        latency_ms = STATS_LATENCY_BUCKETS - 1;
    atomic_fetch_add_explicit(&s->latency_ms[latency_ms], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&s->latency_sum_ms, (unsigned long long)latency_ms,
                              memory_order_relaxed);
}

void stats_batch(struct stats *s, unsigned long long heartbeats)
{
    atomic_fetch_add_explicit(&s->batches, 1, memory_order_relaxed);
    unsigned long long max = atomic_load(&s->batch_max);
    while (heartbeats > max && !atomic_compare_exchange_weak(&s->batch_max, &max, heartbeats))
        ;
}

void stats_lost(struct stats *s, unsigned long long n)
{
    atomic_fetch_add(&s->lost, n);
    atomic_store(&s->last_loss_mono_ms, hb_monotonic_ms());
}

int stats_health_problems(const struct stats *s, size_t queue_len, size_t queue_capacity, FILE *f)
{
    int n = 0;
    int64_t now = hb_monotonic_ms();
    int64_t last_loss = atomic_load(&s->last_loss_mono_ms);
    if (last_loss != 0 && now - last_loss < STATS_RECENT_MS) {
        fprintf(f, "heartbeats lost: %llu in total, the last %lld ms ago\n", atomic_load(&s->lost),
                (long long)(now - last_loss));
        n++;
    }
    if (queue_len * 2 > queue_capacity) {
        fprintf(f, "falling behind: buffer %zu of %zu\n", queue_len, queue_capacity);
        n++;
    }
    int64_t lag = atomic_load(&s->write_lag_ms);
    if (lag > STATS_BEHIND_MS) {
        fprintf(f, "falling behind: heartbeats written %lld ms after they arrived\n",
                (long long)lag);
        n++;
    }
    bool recent = now - atomic_load(&s->recent_window_ms) < STATS_RECENT_MS;
    int64_t latency = atomic_load(&s->recent_latency_max_ms);
    if (recent && latency > STATS_BEHIND_MS) {
        fprintf(f, "falling behind: heartbeats arrive up to %lld ms after they were sent\n",
                (long long)latency);
        n++;
    }
    return n;
}

/* The nearest-rank percentile q of the latency samples, or -1 without samples. */
static long percentile(const struct stats *s, double q)
{
    unsigned long long total = 0;
    for (int i = 0; i < STATS_LATENCY_BUCKETS; i++)
        total += atomic_load(&s->latency_ms[i]);
    if (total == 0)
        return -1;
    unsigned long long rank = (unsigned long long)ceil(q * (double)total);
    if (rank == 0)
        rank = 1;
    unsigned long long seen = 0;
    for (int i = 0; i < STATS_LATENCY_BUCKETS; i++) {
        seen += atomic_load(&s->latency_ms[i]);
        if (seen >= rank)
            return i;
    }
    return STATS_LATENCY_BUCKETS - 1;
}

void stats_format(const struct stats *s, size_t queue_len, char *buf, size_t size)
{
    unsigned long long rejected = 0;
    for (int r = HB_OK + 1; r < HB_REJECT_COUNT; r++)
        rejected += atomic_load(&s->rejected[r]);
    unsigned long long batches = atomic_load(&s->batches);
    unsigned long long written = atomic_load(&s->written);
    int n = snprintf(buf, size, "stats received=%llu accepted=%llu written=%llu rejected=%llu",
                     atomic_load(&s->received), atomic_load(&s->accepted), written, rejected);
    for (int r = HB_OK + 1; r < HB_REJECT_COUNT && n > 0 && (size_t)n < size; r++)
        n += snprintf(buf + n, size - (size_t)n, " %s=%llu", hb_reject_name((enum hb_reject)r),
                      atomic_load(&s->rejected[r]));
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n,
                 " dropped=%llu expired=%llu lost=%llu redis_errors=%llu batches=%llu "
                 "batch_avg=%.1f batch_max=%llu queued=%zu latency_p50_ms=%ld "
                 "latency_p99_ms=%ld",
                 atomic_load(&s->dropped), atomic_load(&s->expired), atomic_load(&s->lost),
                 atomic_load(&s->redis_errors), batches,
                 batches ? (double)written / (double)batches : 0.0, atomic_load(&s->batch_max),
                 queue_len, percentile(s, 0.50), percentile(s, 0.99));
    n = (int)strlen(buf);
    if (atomic_load(&s->enforcing) && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n,
                 " refreshed=%llu released=%llu admitted=%llu refused=%llu stops_sent=%llu "
                 "stops_failed=%llu enforce_errors=%llu",
                 atomic_load(&s->plays_refreshed), atomic_load(&s->plays_released),
                 atomic_load(&s->plays_admitted),
                 atomic_load(&s->plays_refused[STATS_STOP_ACCOUNT]) +
                     atomic_load(&s->plays_refused[STATS_STOP_GROUP]),
                 atomic_load(&s->stops_sent[STATS_STOP_ACCOUNT]) +
                     atomic_load(&s->stops_sent[STATS_STOP_GROUP]),
                 atomic_load(&s->stops_failed), atomic_load(&s->enforce_errors));
}
