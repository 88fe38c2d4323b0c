/* The consumer's counters, updated lock-free from paho's thread and the writer, and printed as
 * one "key=value" line that operators grep and tests parse. */
#ifndef HB_STATS_H
#define HB_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heartbeat.h"

#define STATS_LATENCY_BUCKETS 1002 /* 0..1000 ms, then one bucket for everything slower */

struct stats {
    atomic_ullong received;                  /* every message that arrived */
    atomic_ullong accepted;                  /* valid heartbeats handed to the writer */
    atomic_ullong rejected[HB_REJECT_COUNT]; /* per reason; [HB_OK] unused */
    atomic_ullong dropped;                   /* valid, but the buffer was full or never written */
    atomic_ullong expired;                   /* valid, but its key's life ended before Redis was back */
    atomic_ullong written;                   /* heartbeats acknowledged by Redis */
    atomic_ullong redis_errors;              /* failed connects, lost connections, error replies */
    atomic_ullong batches;
    atomic_ullong batch_max;
    atomic_ullong latency_ms[STATS_LATENCY_BUCKETS]; /* receive time minus the payload's ts */
    atomic_ullong latency_sum_ms;            /* of the samples above, as counted (capped) */
    atomic_bool redis_up;                    /* the writer holds a working Redis connection */
};

void stats_init(struct stats *s);

void stats_reject(struct stats *s, enum hb_reject reason);
void stats_latency(struct stats *s, int64_t latency_ms);
void stats_batch(struct stats *s, unsigned long long heartbeats);

/* Formats the one-line summary ("stats received=... ") into buf; queue_len is the buffer fill. */
void stats_format(const struct stats *s, size_t queue_len, char *buf, size_t size);

#endif
