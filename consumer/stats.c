/* Counters and their one-line form. Latency is a fixed 1 ms histogram, so percentiles need no
 * samples kept and no lock on the hot path. */
#include "stats.h"

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
    int n = snprintf(buf, size,
                     "stats received=%llu accepted=%llu written=%llu rejected=%llu",
                     atomic_load(&s->received), atomic_load(&s->accepted), written, rejected);
    for (int r = HB_OK + 1; r < HB_REJECT_COUNT && n > 0 && (size_t)n < size; r++)
        n += snprintf(buf + n, size - (size_t)n, " %s=%llu", hb_reject_name((enum hb_reject)r),
                      atomic_load(&s->rejected[r]));
    if (n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n,
                 " dropped=%llu expired=%llu redis_errors=%llu batches=%llu batch_avg=%.1f "
                 "batch_max=%llu queued=%zu latency_p50_ms=%ld latency_p99_ms=%ld",
                 atomic_load(&s->dropped), atomic_load(&s->expired),
                 atomic_load(&s->redis_errors), batches,
                 batches ? (double)written / (double)batches : 0.0, atomic_load(&s->batch_max),
                 queue_len, percentile(s, 0.50), percentile(s, 0.99));
}
