/* The dashboard's aggregates (common/dash.h), kept by the writer as heartbeats arrive: it
 * notes every heartbeat it takes, and after each written batch sends one script per interval
 * and minute of the batch that counts distinct viewers, their agents, play time and bitrate. */
#ifndef HB_AGGREGATES_H
#define HB_AGGREGATES_H

#include "dash.h"
#include "log.h"
#include "queue.h"
#include "rcluster.h"
#include "stats.h"

#include <stdbool.h>
#include <stddef.h>

/* One heartbeat as the aggregates need it. */
struct aggregates_note {
    int64_t interval_start, minute_start;
    size_t order; /* arrival order inside the batch */
    bool stopped;
    char id[2 * HB_ID_MAX + 2]; /* account/device */
    struct hb_agent agent;
};

struct aggregates {
    int64_t interval_ms;
    size_t capacity;
    struct aggregates_note *notes;
    size_t n_notes;
    char sha[41];
    /* Scratch for one script's arguments, 9 per note plus the header. */
    const char **argv;
    size_t *argvlen;
    char (*numbers)[24];
    unsigned long long errors; /* scripts not taken (logged, rate-limited) */
    struct hb_ratelimit error_log;
};

/* Allocates room for capacity notes (the writer's batch size) and registers the script on c.
 * False after reporting. */
bool aggregates_init(struct aggregates *a, int interval_s, size_t capacity, struct rcluster *c);

/* Frees everything; safe on a zeroed struct. */
void aggregates_finish(struct aggregates *a);

/* Notes (copies) e. Past capacity the heartbeat is not counted (counted as an error). */
void aggregates_note(struct aggregates *a, const struct queue_entry *e);

/* Sends the noted heartbeats' scripts on c in one pipeline and forgets the notes whatever
 * happened. Returns false when some script was not delivered; aggregates are best effort, so
 * the writer only logs it (they are not retried: a count may then miss a device). */
bool aggregates_flush(struct aggregates *a, struct rcluster *c);

#endif
