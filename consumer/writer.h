/* The Redis writer: one thread that drains the queue in batches and writes each batch in one
 * pipeline (one per node of a Redis Cluster), probing an unreachable Redis every 200 ms while
 * the queue buffers. */
#ifndef HB_WRITER_H
#define HB_WRITER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "aggregates.h"
#include "batch.h"
#include "check.h"
#include "enforce.h"
#include "live.h"
#include "log.h"
#include "queue.h"
#include "rcluster.h"
#include "redis.h"
#include "seqtrack.h"
#include "stats.h"

struct writer_config {
    struct hb_redis_addr redis;
    int interval_s;
    size_t batch_size;       /* most heartbeats taken from the queue per batch */
    int flush_ms;            /* longest a heartbeat waits for its batch to fill */
    int drain_timeout_ms;    /* on shutdown, how long to keep retrying an unreachable Redis */
    const char *group;       /* share group whose watermark hash this consumer writes */
    const char *consumer_id; /* its field in that hash (the MQTT client id) */
    struct enforce *enforce; /* --enforce: borrowed, run after every written batch; or NULL */
    bool aggregates;         /* keep the dashboard's aggregates (consumer/aggregates.h) */
    struct live *live;       /* --live: borrowed, fed every heartbeat taken; or NULL */
};

struct writer {
    struct writer_config cfg;
    struct queue *queue;
    struct stats *stats;
    struct rcluster *rc; /* every node's connections; created at init, connects on first use */
    bool up;             /* the last probe or batch reached Redis */
    char script_sha[41];
    char wm_sha[41];
    struct batch batch;
    struct queue_entry *entries;
    /* Scratch for building one EVALSHA, grown as needed and reused for every key. */
    const char **argv;
    size_t *argvlen;
    char (*numbers)[24];
    size_t scratch_cap; /* entries in argv and argvlen; numbers holds half as many */
    /* The watermark (common/check.h): wm_ms is what this consumer can claim now, wm_written_ms
     * what Redis holds, written at wm_written_mono (monotonic ms). */
    char wm_key[HB_WATERMARK_KEY_MAX];
    int64_t wm_ms, wm_written_ms, wm_written_mono;
    int64_t last_taken_ms;       /* the latest receive time taken from the queue */
    int64_t oldest_unwritten_ms; /* receive time of the batch's first heartbeat; 0 when empty */
    struct seqtrack seqtrack;
    struct aggregates aggregates;       /* used when cfg.aggregates */
    unsigned long long dropped_at_stop; /* heartbeats dropped because Redis stayed down */
    struct hb_ratelimit connect_log;    /* failed connects: warned first, then every 5 s */
    pthread_t thread;
    bool started;
};

/* Prepares the writer; queue and stats are borrowed and must outlive it. */
bool writer_init(struct writer *w, const struct writer_config *cfg, struct queue *queue,
                 struct stats *stats);

/* Starts the thread. It runs until the queue is closed and drained (or the drain timeout
 * passes with Redis unreachable; what is left is counted as dropped). */
bool writer_start(struct writer *w);

/* Joins the thread (the caller closes the queue first) and frees everything. */
void writer_finish(struct writer *w);

#endif
