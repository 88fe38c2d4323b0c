/* Enforcement at ingest. A batch's notes are sorted by account and device so each device is
 * reported once (its last heartbeat wins) and each account is one touch script; all scripts of
 * a batch go out as one pipeline and their replies are read in order, so a batch costs one
 * round trip whatever the number of accounts. Stops are fire-and-forget on the publisher's
 * thread: a device that ignores one is refused again at its next heartbeat. */
#include "enforce.h"

#include <stdlib.h>
#include <string.h>

bool enforce_init(struct enforce *e, const struct enforce_config *cfg, struct stats *stats)
{
    memset(e, 0, sizeof(*e));
    e->plays = cfg->plays;
    e->stats = stats;
    e->capacity = cfg->capacity;
    e->error_log.burst = 3;
    e->error_log.window_ms = 10000;
    e->notes = calloc(cfg->capacity ? cfg->capacity : 1, sizeof(*e->notes));
    e->reports = calloc(cfg->capacity ? cfg->capacity : 1, sizeof(*e->reports));
    if (e->notes == NULL || e->reports == NULL) {
        HB_ERROR("enforce: out of memory");
        enforce_finish(e);
        return false;
    }
    char err[256];
    e->control = hb_control_create(&cfg->control, err, sizeof(err));
    if (e->control == NULL) {
        HB_ERROR("enforce: stop publisher: %s", err);
        enforce_finish(e);
        return false;
    }
    atomic_store(&stats->enforcing, true);
    return true;
}

void enforce_finish(struct enforce *e)
{
    hb_control_destroy(e->control);
    free(e->notes);
    free(e->reports);
    memset(e, 0, sizeof(*e));
}

void enforce_note(struct enforce *e, const struct queue_entry *q)
{
    if (e->n_notes == e->capacity) {
        atomic_fetch_add(&e->stats->enforce_errors, 1);
        return;
    }
    struct enforce_note *n = &e->notes[e->n_notes];
    memcpy(n->account, q->account, sizeof(n->account));
    memcpy(n->device, q->device, sizeof(n->device));
    n->started_ms = q->started_ms;
    n->stopped = q->stopped;
    n->order = e->n_notes++;
}

static int note_cmp(const void *a, const void *b)
{
    const struct enforce_note *x = a, *y = b;
    int c = strcmp(x->account, y->account);
    if (c == 0)
        c = strcmp(x->device, y->device);
    if (c == 0)
        c = x->order < y->order ? -1 : x->order > y->order;
    return c;
}

/* One touch script: reports[first .. first + n) of one account. */
struct chunk {
    const char *account;
    size_t first, n;
    long index; /* of its command in the pipeline, or -1 when it could not be queued */
};

/* Sorts the notes and turns them into reports, one per device, chunked per account (at most
 * HB_PLAYS_TOUCH_MAX each). Returns the number of chunks written to chunks. */
static size_t plan(struct enforce *e, struct chunk *chunks)
{
    qsort(e->notes, e->n_notes, sizeof(*e->notes), note_cmp);
    size_t n_reports = 0, n_chunks = 0;
    for (size_t i = 0; i < e->n_notes; i++) {
        const struct enforce_note *n = &e->notes[i];
        const struct enforce_note *next = i + 1 < e->n_notes ? &e->notes[i + 1] : NULL;
        if (next != NULL && strcmp(next->account, n->account) == 0 &&
            strcmp(next->device, n->device) == 0)
            continue; /* a later heartbeat of the same device follows */
        struct chunk *c = n_chunks > 0 ? &chunks[n_chunks - 1] : NULL;
        if (c == NULL || strcmp(c->account, n->account) != 0 || c->n == HB_PLAYS_TOUCH_MAX) {
            c = &chunks[n_chunks++];
            *c = (struct chunk){.account = n->account, .first = n_reports, .index = -1};
        }
        e->reports[n_reports++] = (struct hb_touch_report){
            .device = n->device,
            .stopped = n->stopped,
            .start_ms = n->started_ms > 0 ? n->started_ms : 0,
        };
        c->n++;
    }
    return n_chunks;
}

static void log_error(struct enforce *e, const char *account, const char *err)
{
    long suppressed;
    atomic_fetch_add(&e->stats->enforce_errors, 1);
    if (hb_ratelimit_allow(&e->error_log, &suppressed))
        HB_WARN("enforce: account %s: %s (%ld similar suppressed)", account, err, suppressed);
}

/* Counts what one touch did and sends its stops. */
static void apply(struct enforce *e, const char *account, const struct hb_touch_result *r)
{
    struct stats *s = e->stats;
    atomic_fetch_add(&s->plays_refreshed, r->n_refreshed);
    atomic_fetch_add(&s->plays_released, r->n_released);
    atomic_fetch_add(&s->plays_admitted, r->n_admitted);
    for (size_t i = 0; i < r->n_stop; i++) {
        int why = r->stop_reason[i] == HB_ADMIT_GROUP_LIMIT ? STATS_STOP_GROUP : STATS_STOP_ACCOUNT;
        atomic_fetch_add(&s->plays_refused[why], 1);
        if (hb_control_stop(e->control, account, r->stop[i],
                            hb_admit_decision_name(r->stop_reason[i])))
            atomic_fetch_add(&s->stops_sent[why], 1);
        else
            atomic_fetch_add(&s->stops_failed, 1);
    }
    for (size_t i = 0; i < r->n_released; i++)
        HB_DEBUG("enforce: %s/%s stopped: slot released", account, r->released[i]);
}

/* Appends the touch of every chunk to c, execs once (one pipeline per node; rcluster loads the
 * registered script where a node lacks it), then reads and applies each reply. False when some
 * were not delivered: the writer then treats Redis as down. */
static bool round_trip(struct enforce *e, struct rcluster *c, struct chunk *chunks, size_t n)
{
    char err[256];
    rcluster_reset(c);
    bool sent_any = false;
    for (size_t i = 0; i < n; i++) {
        struct chunk *k = &chunks[i];
        /* Redis's own clock (0): every instance and consumer agrees on "now". */
        k->index = hb_plays_touch_append(c, &e->plays, k->account, e->reports + k->first, k->n, 0,
                                         err, sizeof(err));
        if (k->index < 0)
            log_error(e, k->account, err);
        else
            sent_any = true;
    }
    bool delivered = true;
    if (sent_any && rcluster_exec(c, err, sizeof(err)) != 0)
        delivered = false;
    for (size_t i = 0; sent_any && i < n; i++) {
        struct chunk *k = &chunks[i];
        if (k->index < 0)
            continue;
        struct hb_touch_result r;
        int rc =
            hb_plays_touch_read(c, k->index, e->reports + k->first, k->n, &r, err, sizeof(err));
        if (rc == 0) {
            apply(e, k->account, &r);
            hb_touch_result_finish(&r);
        } else {
            log_error(e, k->account, err);
        }
    }
    rcluster_reset(c);
    return delivered;
}

bool enforce_flush(struct enforce *e, struct rcluster *c)
{
    atomic_store(&e->stats->control_up, hb_control_connected(e->control));
    if (e->n_notes == 0 || c == NULL)
        return true;
    struct chunk *chunks = calloc(e->n_notes, sizeof(*chunks));
    bool ok = true;
    if (chunks == NULL)
        log_error(e, "*", "out of memory");
    else
        ok = round_trip(e, c, chunks, plan(e, chunks));
    free(chunks);
    e->n_notes = 0;
    return ok;
}
