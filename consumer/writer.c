/* The Redis writer. Each key of a batch is written by one EVALSHA of a small script that does
 * the HINCRBYs and the PEXPIRE together: Redis runs a script atomically (and logs it to the AOF
 * as one transaction), so a key never exists without its TTL, even if Redis dies mid-batch.
 * The batch goes out through common/rcluster, one pipeline per node (one node for redis:// and
 * unix://), which follows MOVED/ASK and failovers. Keys leave the batch as their replies say
 * written; the rest stays and is retried as soon as a probe finds Redis again. A retried key
 * can count a heartbeat twice in its field value, never a device that was not there. Just
 * over 500 lines: the watermark and the reconnect probe share the batch loop's state. */
#include "writer.h"

#include "interval.h"
#include "log.h"
#include "seqtrack.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS[1] = key, ARGV[1] = TTL in ms, then device/count pairs. */
static const char write_script[] =
    "local ttl = tonumber(ARGV[1])\n"
    "for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "return 1\n";

/* While Redis is unreachable it is probed every PROBE_MS: a refused connect costs a few
 * microseconds, and buffered heartbeats must reach Redis while their keys still live, not
 * after a grown backoff. The warning is rate-limited instead (first, then every 5 s). */
#define PROBE_MS 200
#define IDLE_PING_MS 2000

/* The watermark is rewritten at least every WM_REFRESH_MS, and at once when it passes an
 * interval boundary. An idle consumer claims "now - WM_GUARD_MS": the guard covers a heartbeat
 * whose receive time paho's thread has taken but which is not in the queue yet. */
#define WM_REFRESH_MS 1000
#define WM_GUARD_MS 100
#define WM_KEY_TTL_MS 3600000 /* the hash outlives its last consumer by an hour */

/* KEYS[1] = watermark hash, ARGV = field, value, TTL in ms, the time before which fields are
 * forgotten, the time from which a field is fresh. Past 32 fields the stale ones are cleaned
 * away. Returns the fresh fields: the live consumers of the group, this one included. */
static const char watermark_script[] =
    "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])\n"
    "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    "if redis.call('HLEN', KEYS[1]) > 32 then\n"
    "  local all = redis.call('HGETALL', KEYS[1])\n"
    "  for i = 1, #all, 2 do\n"
    "    local updated = tonumber(string.match(all[i + 1], ' (%d+)'))\n"
    "    if updated == nil or updated < tonumber(ARGV[4]) then\n"
    "      redis.call('HDEL', KEYS[1], all[i])\n"
    "    end\n"
    "  end\n"
    "end\n"
    "local fresh = 0\n"
    "local all = redis.call('HGETALL', KEYS[1])\n"
    "for i = 2, #all, 2 do\n"
    "  local updated = tonumber(string.match(all[i], ' (%d+)'))\n"
    "  if updated ~= nil and updated >= tonumber(ARGV[5]) then fresh = fresh + 1 end\n"
    "end\n"
    "return fresh\n";

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Marks Redis down: the next batch first probes it (rcluster_refresh) and rewrites the
 * watermark. The connections themselves are rcluster's to drop and reopen. */
static void disconnect(struct writer *w)
{
    atomic_store(&w->stats->redis_up, false);
    w->up = false;
}

/* Gaps in a device's seq are loss only when this consumer gets all of its heartbeats: alone in
 * the share group. With peers the broker spreads each device's heartbeats over them, so the
 * tracker pauses, and starts afresh (forgetting what it saw) when the consumer is alone again. */
static void track_loss(struct writer *w, bool alone)
{
    if (alone && !atomic_load(&w->stats->loss_tracking)) {
        seqtrack_reset(&w->seqtrack);
        HB_INFO("loss tracking: alone in share group %s, counting seq gaps", w->cfg.group);
    } else if (!alone && atomic_load(&w->stats->loss_tracking)) {
        HB_INFO("loss tracking: share group %s has peers; seq gaps not counted", w->cfg.group);
    }
    atomic_store(&w->stats->loss_tracking, alone);
}

/* Takes one heartbeat from the queue into the batch, noting its receive time and seq. */
static void take_entry(struct writer *w, const struct queue_entry *e)
{
    if (e->received_ms > w->last_taken_ms)
        w->last_taken_ms = e->received_ms;
    if (w->oldest_unwritten_ms == 0)
        w->oldest_unwritten_ms = e->received_ms;
    if (atomic_load(&w->stats->loss_tracking) && e->seq >= 0) {
        long long lost =
            seqtrack_note(&w->seqtrack, e->account, e->device, e->seq, hb_monotonic_ms());
        if (lost > 0)
            stats_lost(w->stats, (unsigned long long)lost);
        atomic_store(&w->stats->seq_devices, w->seqtrack.used);
        atomic_store(&w->stats->seq_restarts, w->seqtrack.restarts);
        atomic_store(&w->stats->seq_evicted, w->seqtrack.evicted);
    }
    if (w->cfg.enforce != NULL)
        enforce_note(w->cfg.enforce, e);
    if (w->cfg.aggregates)
        aggregates_note(&w->aggregates, e);
    if (w->cfg.live != NULL)
        live_note(w->cfg.live, e);
    if (!batch_add(&w->batch, e)) {
        HB_ERROR("writer: out of memory; dropping a heartbeat");
        atomic_fetch_add(&w->stats->dropped, 1);
    }
}

/* Writes the watermark field; false (logged, counted, disconnected) when Redis failed. */
static bool watermark_write(struct writer *w)
{
    int64_t now = hb_now_ms();
    char value[48], ttl[24], forget[24], fresh[24];
    snprintf(value, sizeof(value), "%lld %lld", (long long)w->wm_ms, (long long)now);
    snprintf(ttl, sizeof(ttl), "%d", WM_KEY_TTL_MS);
    snprintf(forget, sizeof(forget), "%lld", (long long)(now - WM_KEY_TTL_MS));
    snprintf(fresh, sizeof(fresh), "%lld", (long long)(now - HB_WATERMARK_STALE_MS));
    const char *argv[] = {"EVALSHA", w->wm_sha, "1",    w->wm_key, w->cfg.consumer_id,
                          value,     ttl,       forget, fresh};
    char err[256];
    redisReply *r =
        rcluster_command(w->rc, w->wm_key, strlen(w->wm_key), 9, argv, NULL, err, sizeof(err));
    bool ok = r != NULL && r->type == REDIS_REPLY_INTEGER;
    if (!ok) {
        HB_WARN("redis: watermark: %s",
                r == NULL ? err : (r->type == REDIS_REPLY_ERROR ? r->str : "?"));
        atomic_fetch_add(&w->stats->redis_errors, 1);
    } else {
        track_loss(w, r->integer <= 1);
    }
    freeReplyObject(r);
    if (!ok) {
        disconnect(w);
        return false;
    }
    w->wm_written_ms = w->wm_ms;
    w->wm_written_mono = hb_monotonic_ms();
    return true;
}

/* With the batch empty: advances the watermark to what is now written or counted, and writes
 * it when it passed an interval boundary or WM_REFRESH_MS went by. The queue is FIFO and
 * filled by paho's one receive thread, so what is still queued was received at or after the
 * last receive time taken out. */
static void watermark_advance(struct writer *w)
{
    int64_t now = hb_now_ms();
    int64_t wm = queue_length(w->queue) == 0 ? now - WM_GUARD_MS : w->last_taken_ms - 1;
    if (wm > w->wm_ms)
        w->wm_ms = wm;
    if (!w->up)
        return;
    int64_t interval_ms = (int64_t)w->cfg.interval_s * 1000;
    bool crossed =
        hb_interval_start(w->wm_ms, interval_ms) > hb_interval_start(w->wm_written_ms, interval_ms);
    if (crossed || hb_monotonic_ms() - w->wm_written_mono >= WM_REFRESH_MS)
        watermark_write(w);
}

/* Probes Redis (PING, or the slot map of a cluster; rcluster loads the scripts on each node
 * before its first command); false (logged, counted) when it is not reachable. */
static bool connect_redis(struct writer *w)
{
    char err[256];
    if (rcluster_refresh(w->rc, err, sizeof(err)) != 0) {
        atomic_fetch_add(&w->stats->redis_errors, 1);
        long suppressed;
        if (hb_ratelimit_allow(&w->connect_log, &suppressed))
            HB_WARN("redis: %s; buffering (%zu queued; %ld more failed probes)", err,
                    queue_length(w->queue), suppressed);
        return false;
    }
    HB_INFO("redis: connected");
    w->up = true;
    atomic_store(&w->stats->redis_up, true);
    /* Say at once that this consumer is back and how far it got, before the buffered batch
     * goes out: a reader must not take the old, stale field for a consumer gone. */
    return watermark_write(w);
}

/* Replies after which the same write is worth retrying. */
static bool transient_error(const char *msg)
{
    static const char *const prefixes[] = {"NOSCRIPT", "LOADING",    "BUSY",     "OOM",
                                           "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"};
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            return true;
    }
    return false;
}

/* Makes room for argc arguments in the scratch arrays. */
static bool reserve_scratch(struct writer *w, size_t argc)
{
    if (argc <= w->scratch_cap)
        return true;
    size_t cap = argc < 64 ? 64 : argc * 2;
    const char **argv = realloc(w->argv, cap * sizeof(*argv));
    if (argv != NULL)
        w->argv = argv;
    size_t *argvlen = realloc(w->argvlen, cap * sizeof(*argvlen));
    if (argvlen != NULL)
        w->argvlen = argvlen;
    char(*numbers)[24] = realloc(w->numbers, (cap / 2 + 1) * sizeof(*numbers));
    if (numbers != NULL)
        w->numbers = numbers;
    if (argv == NULL || argvlen == NULL || numbers == NULL)
        return false;
    w->scratch_cap = cap;
    return true;
}

/* Decimal digits of v (>= 0) into buf; returns the length. snprintf showed up in profiles
 * here: this runs once per device and key of every batch. */
static size_t format_count(char *buf, long long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long long u = v < 0 ? 0 : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    buf[n] = '\0';
    return n;
}

static void set_arg(struct writer *w, size_t i, const char *s, size_t len)
{
    w->argv[i] = s;
    w->argvlen[i] = len;
}

/* Queues one EVALSHA for key k, or drops k when its life already ended. Returns 1 when a
 * command was queued, 0 when k was dropped, -1 on failure. */
static int append_key(struct writer *w, struct batch_key *k, int64_t now)
{
    int64_t interval_ms = (int64_t)w->cfg.interval_s * 1000;
    int64_t ttl = hb_interval_ttl_ms(k->interval_start, interval_ms, now);
    if (ttl <= 0) {
        atomic_fetch_add(&w->stats->expired, (unsigned long long)k->heartbeats);
        return 0;
    }
    size_t argc = 5 + 2 * k->n_devices;
    if (!reserve_scratch(w, argc))
        return -1;
    set_arg(w, 0, "EVALSHA", 7);
    set_arg(w, 1, w->script_sha, 40);
    set_arg(w, 2, "1", 1);
    set_arg(w, 3, k->key, strlen(k->key));
    set_arg(w, 4, w->numbers[0], format_count(w->numbers[0], ttl));
    size_t i = 5, j = 1;
    for (struct batch_device *d = k->devices; d != NULL; d = d->hh.next, j++) {
        set_arg(w, i++, d->device, strlen(d->device));
        set_arg(w, i++, w->numbers[j], format_count(w->numbers[j], d->count));
    }
    return rcluster_append(w->rc, k->key, strlen(k->key), (int)argc, w->argv, w->argvlen) >= 0 ? 1
                                                                                               : -1;
}

/* Writes the batch. Keys confirmed by Redis (or dropped for good) leave the batch. Returns
 * false when some node could not be reached or a transient error asks for a retry. */
static bool write_batch(struct writer *w)
{
    int64_t now = hb_now_ms();
    size_t n_sent = 0;
    struct batch_key **sent = malloc(w->batch.n_keys * sizeof(*sent) + 1);
    if (sent == NULL) {
        HB_ERROR("writer: out of memory");
        return false;
    }
    rcluster_reset(w->rc);
    struct batch_key *k, *tmp;
    HASH_ITER(hh, w->batch.keys, k, tmp)
    {
        int rc = append_key(w, k, now);
        if (rc < 0) {
            HB_ERROR("writer: cannot queue command: out of memory");
            break;
        }
        if (rc == 0)
            batch_remove(&w->batch, k);
        else
            sent[n_sent++] = k;
    }

    char err[256];
    bool ok = rcluster_exec(w->rc, err, sizeof(err)) == 0;
    if (!ok) {
        HB_WARN("redis: %s", err);
        atomic_fetch_add(&w->stats->redis_errors, 1);
    }
    unsigned long long written = 0;
    for (size_t i = 0; i < n_sent; i++) {
        const redisReply *r = rcluster_reply(w->rc, i);
        if (r == NULL)
            continue; /* not delivered: stays in the batch */
        if (r->type == REDIS_REPLY_ERROR) {
            atomic_fetch_add(&w->stats->redis_errors, 1);
            if (transient_error(r->str)) {
                HB_WARN("redis: %s; will retry", r->str);
                ok = false;
            } else {
                HB_ERROR("redis: %s: %s; dropping %lld heartbeats of this key", sent[i]->key,
                         r->str, sent[i]->heartbeats);
                atomic_fetch_add(&w->stats->dropped, (unsigned long long)sent[i]->heartbeats);
                batch_remove(&w->batch, sent[i]);
            }
        } else {
            written += (unsigned long long)sent[i]->heartbeats;
            batch_remove(&w->batch, sent[i]);
        }
    }
    rcluster_reset(w->rc);
    free(sent);
    if (written > 0) {
        atomic_fetch_add(&w->stats->written, written);
        stats_batch(w->stats, written);
    }
    if (!ok || w->batch.n_keys > 0) {
        /* Probe before the next try, and say where this consumer is first thing after. */
        disconnect(w);
        return false;
    }
    return true;
}

/* While no heartbeat arrives, keeps the connection known to work (a PING every IDLE_PING_MS)
 * or probes it every PROBE_MS, so redis_up, /healthz and the log tell the truth on a quiet
 * consumer too, and the first heartbeat after a quiet spell finds a connection ready. */
static void idle_check(struct writer *w, int64_t *next_ms)
{
    int64_t now = hb_monotonic_ms();
    if (now < *next_ms)
        return;
    if (!w->up) {
        *next_ms = now + (connect_redis(w) ? IDLE_PING_MS : PROBE_MS);
        return;
    }
    char err[256];
    if (rcluster_refresh(w->rc, err, sizeof(err)) != 0) {
        HB_WARN("redis: probe failed: %s", err);
        atomic_fetch_add(&w->stats->redis_errors, 1);
        disconnect(w);
    }
    *next_ms = now + IDLE_PING_MS;
}

/* On a clean stop with nothing held, this consumer's field goes: it is behind on nothing. */
static void watermark_remove(struct writer *w)
{
    if (!w->up)
        return;
    const char *argv[] = {"HDEL", w->wm_key, w->cfg.consumer_id};
    char err[256];
    redisReply *r =
        rcluster_command(w->rc, w->wm_key, strlen(w->wm_key), 3, argv, NULL, err, sizeof(err));
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        HB_WARN("redis: cannot remove the watermark of %s", w->cfg.consumer_id);
    freeReplyObject(r);
}

/* Counts everything still held as dropped: the batch and what is left in the queue. */
static void drop_all(struct writer *w)
{
    unsigned long long lost = (unsigned long long)w->batch.heartbeats;
    batch_finish(&w->batch);
    bool drained = false;
    while (!drained)
        lost += queue_pop(w->queue, w->entries, w->cfg.batch_size, 0, &drained);
    HB_ERROR("writer: Redis still unreachable at shutdown; dropping %llu heartbeats", lost);
    atomic_fetch_add(&w->stats->dropped, lost);
    w->dropped_at_stop = lost;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    bool drained = false;     /* the queue is closed and empty */
    bool stopping = false;    /* the queue is closed: the drain timeout runs */
    int64_t stop_at = 0;      /* monotonic ms when stopping began */
    int64_t idle_next_ms = 0; /* connect right away, before the first heartbeat */

    for (;;) {
        if (w->batch.n_keys == 0) {
            if (drained)
                break;
            size_t n =
                queue_pop(w->queue, w->entries, w->cfg.batch_size, w->cfg.flush_ms, &drained);
            if (n == 0 && !drained && !stopping) {
                idle_check(w, &idle_next_ms);
                watermark_advance(w);
                if (w->cfg.enforce != NULL)
                    enforce_flush(w->cfg.enforce, NULL); /* no notes: the gauge only */
            }
            for (size_t i = 0; i < n; i++)
                take_entry(w, &w->entries[i]);
            if (w->cfg.live != NULL)
                live_tick(w->cfg.live, hb_now_ms());
            if (drained && !stopping) {
                stopping = true;
                stop_at = hb_monotonic_ms();
            }
            continue;
        }
        if ((w->up || connect_redis(w)) && write_batch(w)) {
            atomic_store(&w->stats->write_lag_ms, hb_now_ms() - w->oldest_unwritten_ms);
            w->oldest_unwritten_ms = 0;
            if (w->cfg.enforce != NULL && !enforce_flush(w->cfg.enforce, w->rc))
                disconnect(w);
            if (w->cfg.aggregates)
                aggregates_flush(&w->aggregates, w->rc); /* best effort: logged, not retried */
            watermark_advance(w);
            continue;
        }
        /* Redis is unreachable: probe again soon, waking early if shutdown begins. */
        if (!stopping && queue_wait_closed(w->queue, PROBE_MS)) {
            stopping = true;
            stop_at = hb_monotonic_ms();
        }
        if (stopping) {
            int64_t left = w->cfg.drain_timeout_ms - (hb_monotonic_ms() - stop_at);
            if (left <= 0) {
                drop_all(w);
                break;
            }
            sleep_ms(PROBE_MS < left ? PROBE_MS : (int)left);
        }
    }
    watermark_remove(w);
    disconnect(w);
    return NULL;
}

bool writer_init(struct writer *w, const struct writer_config *cfg, struct queue *queue,
                 struct stats *stats)
{
    memset(w, 0, sizeof(*w));
    w->cfg = *cfg;
    w->queue = queue;
    w->stats = stats;
    if (hb_watermark_key(w->wm_key, sizeof(w->wm_key), cfg->group) < 0) {
        HB_ERROR("writer: share group '%s' cannot name a watermark", cfg->group);
        return false;
    }
    w->wm_ms = hb_now_ms() - WM_GUARD_MS;
    atomic_store(&stats->loss_tracking, false); /* until the watermark hash says alone */
    w->connect_log.burst = 1;
    w->connect_log.window_ms = 5000;
    batch_init(&w->batch);
    char err[256], touch_sha[41];
    w->rc = rcluster_create(&cfg->redis, 2000, err, sizeof(err));
    if (w->rc == NULL ||
        !rcluster_script_add(w->rc, write_script, w->script_sha, err, sizeof(err)) ||
        !rcluster_script_add(w->rc, watermark_script, w->wm_sha, err, sizeof(err)) ||
        (cfg->enforce != NULL &&
         !rcluster_script_add(w->rc, hb_plays_touch_script(), touch_sha, err, sizeof(err)))) {
        HB_ERROR("writer: %s", err);
        writer_finish(w); /* nothing started: frees what was set up */
        return false;
    }
    w->entries = calloc(cfg->batch_size, sizeof(*w->entries));
    if (cfg->aggregates &&
        !aggregates_init(&w->aggregates, cfg->interval_s, cfg->batch_size, w->rc)) {
        writer_finish(w);
        return false;
    }
    if (w->entries == NULL || !seqtrack_init(&w->seqtrack)) {
        HB_ERROR("writer: cannot allocate a batch of %zu: %s", cfg->batch_size, strerror(errno));
        writer_finish(w);
        return false;
    }
    return true;
}

bool writer_start(struct writer *w)
{
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        HB_ERROR("writer: cannot start thread: %s", strerror(rc));
        return false;
    }
    w->started = true;
    return true;
}

void writer_finish(struct writer *w)
{
    if (w->started)
        pthread_join(w->thread, NULL);
    w->started = false;
    batch_finish(&w->batch);
    free(w->entries);
    w->entries = NULL;
    seqtrack_finish(&w->seqtrack);
    aggregates_finish(&w->aggregates);
    free(w->argv);
    free(w->argvlen);
    free(w->numbers);
    w->argv = NULL;
    w->argvlen = NULL;
    w->numbers = NULL;
    w->scratch_cap = 0;
    disconnect(w);
    rcluster_destroy(w->rc);
    w->rc = NULL;
}
