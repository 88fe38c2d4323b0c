/* The bounded hand-off between paho's receive thread and the Redis writer. */
#ifndef HB_QUEUE_H
#define HB_QUEUE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heartbeat.h"
#include "ids.h"

/* One accepted heartbeat, already binned by the time it arrived. */
struct queue_entry {
    int64_t interval_start; /* Unix ms */
    int64_t received_ms;    /* Unix ms, the time the bin was taken from */
    int64_t seq;            /* the payload's "seq", or -1 when absent */
    int64_t started_ms;     /* the payload's "started", or -1 when absent */
    bool stopped;           /* the payload's "state" is "stopped" */
    struct hb_agent agent;  /* the dashboard's members; only used with aggregates on */
    char account[HB_ID_MAX + 1];
    char device[HB_ID_MAX + 1];
    char media[HB_ID_MAX + 1]; /* the payload's "mediaId", or "" (live counts) */
};

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct queue_entry *ring;
    size_t capacity, head, count;
    size_t wake_at; /* the writer wants a signal once count reaches this */
    bool closed;
};

/* Allocates a ring of capacity entries. Returns false (after reporting) on failure. */
bool queue_init(struct queue *q, size_t capacity);
void queue_finish(struct queue *q);

/* Copies e into the queue. Returns false when the queue is full or closed; the caller counts
 * the drop. Never blocks beyond the short lock. */
bool queue_push(struct queue *q, const struct queue_entry *e);

/* Waits until max entries are queued, wait_ms passed, or the queue is closed, then moves up to
 * max entries into out. Returns how many; 0 with *closed set means closed and empty. */
size_t queue_pop(struct queue *q, struct queue_entry *out, size_t max, int wait_ms, bool *closed);

/* After close, pushes fail and a waiting queue_pop returns at once. */
void queue_close(struct queue *q);

size_t queue_length(struct queue *q);

/* Waits up to wait_ms for the queue to be closed; returns whether it is. */
bool queue_wait_closed(struct queue *q, int wait_ms);

#endif
