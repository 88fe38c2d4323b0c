/* Enforcement at ingest (--enforce): the writer notes every heartbeat it takes, and after each
 * written batch runs the admission touch (common/plays.h) for every account of the batch in
 * one pipeline, then publishes a stop to every refused device. */
#ifndef HB_ENFORCE_H
#define HB_ENFORCE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "control.h"
#include "log.h"
#include "plays.h"
#include "queue.h"
#include "stats.h"

struct enforce_config {
    struct hb_plays_config plays;     /* default limit and policy, grace period */
    struct hb_control_config control; /* where stops go, with which credentials */
    size_t capacity; /* most heartbeats noted between two flushes (the batch size) */
};

/* One heartbeat as enforcement needs it. */
struct enforce_note {
    char account[HB_ID_MAX + 1];
    char device[HB_ID_MAX + 1];
    int64_t started_ms;
    bool stopped;
    size_t order; /* arrival order inside the batch: the last report of a device wins */
};

struct enforce {
    struct hb_plays_config plays;
    struct hb_control *control;
    struct stats *stats;
    struct enforce_note *notes;
    size_t n_notes, capacity;
    struct hb_touch_report *reports; /* scratch, capacity entries */
    struct hb_ratelimit error_log;
};

/* Starts the stop publisher (connecting in the background) and allocates the notes. stats is
 * borrowed. False after reporting why. */
bool enforce_init(struct enforce *e, const struct enforce_config *cfg, struct stats *stats);

/* Stops the publisher and frees everything; safe on a zeroed struct. */
void enforce_finish(struct enforce *e);

/* Notes one heartbeat of the batch being built. Past capacity the heartbeat is not enforced
 * (counted as an enforcement error); its device is seen again at its next heartbeat. */
void enforce_note(struct enforce *e, const struct queue_entry *q);

/* Runs the touch of every noted account on c (one pipeline per node; c must have the touch
 * script registered, hb_plays_touch_script), publishes the stops and counts everything; the
 * notes are then forgotten, whatever happened. With no notes it only refreshes the publisher's
 * gauge (c may then be NULL). Returns false only when some touch was not delivered (the caller
 * treats Redis as down); error replies are counted and logged (rate-limited). */
bool enforce_flush(struct enforce *e, struct rcluster *c);

#endif
