/* The consumer's counters, updated lock-free from paho's thread and the writer, and printed as
 * one "key=value" line that operators grep and tests parse. */
#ifndef HB_STATS_H
#define HB_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "heartbeat.h"

#define STATS_LATENCY_BUCKETS 1002 /* 0..1000 ms, then one bucket for everything slower */

/* Why a device was refused at ingest, as in its stop. */
enum { STATS_STOP_ACCOUNT, STATS_STOP_GROUP, STATS_STOP_REASONS };

struct stats {
    atomic_ullong received;                  /* every message that arrived */
    atomic_ullong accepted;                  /* valid heartbeats handed to the writer */
    atomic_ullong rejected[HB_REJECT_COUNT]; /* per reason; [HB_OK] unused */
    atomic_ullong dropped;                   /* valid, but the buffer was full or never written */
    atomic_ullong expired;      /* valid, but its key's life ended before Redis was back */
    atomic_ullong written;      /* heartbeats acknowledged by Redis */
    atomic_ullong redis_errors; /* failed connects, lost connections, error replies */
    atomic_ullong batches;
    atomic_ullong batch_max;
    atomic_ullong latency_ms[STATS_LATENCY_BUCKETS]; /* receive time minus the payload's ts */
    atomic_ullong latency_sum_ms;                    /* of the samples above, as counted (capped) */
    atomic_bool redis_up; /* the writer holds a working Redis connection */
    /* End-to-end loss (consumer/seqtrack.h), counted by the writer. */
    atomic_ullong lost;                /* heartbeats missing from devices' seq numbers */
    atomic_ullong seq_restarts;        /* devices seen starting their numbering again */
    atomic_ullong seq_evicted;         /* devices forgotten to keep the table bounded */
    atomic_ullong seq_devices;         /* devices tracked now */
    atomic_bool loss_tracking;         /* alone in the share group, so gaps are loss */
    _Atomic int64_t last_loss_mono_ms; /* when loss was last seen; 0 never */
    /* Falling behind: the oldest heartbeat's age when its batch was written, and the highest
     * payload latency of the current STATS_RECENT_MS window. */
    _Atomic int64_t write_lag_ms;
    _Atomic int64_t recent_window_ms, recent_latency_max_ms;
    /* Enforcement at ingest (consumer/enforce.h), counted by the writer. */
    atomic_bool enforcing;         /* --enforce is on */
    atomic_bool control_up;        /* the stop publisher is connected */
    atomic_ullong plays_refreshed; /* admitted devices whose last_seen moved */
    atomic_ullong plays_released;  /* slots freed by a "state":"stopped" heartbeat */
    atomic_ullong plays_admitted;  /* devices admitted on their heartbeat */
    atomic_ullong plays_refused[STATS_STOP_REASONS]; /* heartbeats of devices without room */
    atomic_ullong stops_sent[STATS_STOP_REASONS];    /* stops handed to the publisher */
    atomic_ullong stops_failed;                      /* stops lost: publisher not connected */
    atomic_ullong enforce_errors; /* touch scripts that failed; notes over capacity */
};

/* Health thresholds: loss seen in the last STATS_RECENT_MS makes /healthz degraded, as does a
 * consumer behind by more than STATS_BEHIND_MS (write lag or payload latency) or with its
 * buffer more than half full. */
#define STATS_RECENT_MS 10000
#define STATS_BEHIND_MS 2000

void stats_init(struct stats *s);

void stats_reject(struct stats *s, enum hb_reject reason);
void stats_latency(struct stats *s, int64_t latency_ms);
void stats_batch(struct stats *s, unsigned long long heartbeats);

/* Counts n heartbeats lost (n > 0) and remembers when. */
void stats_lost(struct stats *s, unsigned long long n);

/* Appends one line per health problem about loss or lag to f, given the buffer fill; returns
 * how many. Reads only atomics. */
int stats_health_problems(const struct stats *s, size_t queue_len, size_t queue_capacity, FILE *f);

/* Formats the one-line summary ("stats received=... ") into buf; queue_len is the buffer fill. */
void stats_format(const struct stats *s, size_t queue_len, char *buf, size_t size);

#endif
