/* The dashboard's aggregates, written after each batch. Distinct viewers are exact: a hash of
 * the devices seen in an interval holds each one's last state, play time and bitrate, so the
 * counters (viewers, active, sums, per-name counts) change by deltas and reading them costs
 * O(number of counters), never O(devices). One script per interval and minute of a batch, all
 * in one pipeline on the {hbdash} slot. */
#include "aggregates.h"

#include "interval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOTE_ARGS 7
#define HEAD_ARGS 9     /* EVALSHA sha 3 keys... ttl cap minute-ttl */
#define CHUNK_NOTES 512 /* notes per script: a script blocks Redis while it runs */

/* KEYS = viewers hash, seen hash, minute events hash. ARGV = interval keys' TTL ms, names cap,
 * minute TTL ms, then per heartbeat: id, state (1 playing, 0 stopped), play ms, bitrate (-1:
 * absent, the device's last value stays), os, browser, device. */
static const char script[] =
    "local v, s, e = KEYS[1], KEYS[2], KEYS[3]\n"
    "local cap, stops = tonumber(ARGV[2]), 0\n"
    "local dims = {'os', 'browser', 'device'}\n"
    "local function add(f, n) if n ~= 0 then redis.call('HINCRBY', v, f, n) end end\n"
    "for i = 4, #ARGV, 7 do\n"
    "  local id, st = ARGV[i], tonumber(ARGV[i + 1])\n"
    "  local pm, br = tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])\n"
    "  local old = redis.call('HGET', s, id)\n"
    "  local ost, opm, obr = 0, -1, -1\n"
    "  if old then\n"
    "    local a, b, c = string.match(old, '^(%d) (%-?%d+) (%-?%d+)$')\n"
    "    ost, opm, obr = tonumber(a), tonumber(b), tonumber(c)\n"
    "  else\n"
    "    add('viewers', 1)\n"
    "    for j = 1, 3 do\n"
    "      local f = dims[j] .. ':' .. ARGV[i + 3 + j]\n"
    "      if redis.call('HEXISTS', v, f) == 0 then\n"
    "        if tonumber(redis.call('HGET', v, 'names:' .. dims[j]) or '0') < cap then\n"
    "          add('names:' .. dims[j], 1)\n"
    "        else\n"
    "          f = dims[j] .. ':other'\n"
    "          add('capped:' .. dims[j], 1)\n"
    "        end\n"
    "      end\n"
    "      add(f, 1)\n"
    "    end\n"
    "  end\n"
    "  if br >= 0 then\n"
    "    local mn, mx = tonumber(redis.call('HGET', v, 'bitrate_min') or '-1'),\n"
    "                   tonumber(redis.call('HGET', v, 'bitrate_max') or '-1')\n"
    "    if mn < 0 or br < mn then redis.call('HSET', v, 'bitrate_min', br) end\n"
    "    if br > mx then redis.call('HSET', v, 'bitrate_max', br) end\n"
    "  else br = obr end\n"
    "  if pm < 0 then pm = opm end\n"
    "  if opm >= 0 then add('play_ms_sum', -opm); add('play_n', -1) end\n"
    "  if pm >= 0 then add('play_ms_sum', pm); add('play_n', 1) end\n"
    "  if obr >= 0 then add('bitrate_sum', -obr); add('bitrate_n', -1) end\n"
    "  if br >= 0 then add('bitrate_sum', br); add('bitrate_n', 1) end\n"
    "  add('active', st - ost)\n"
    "  if st == 0 and (not old or ost == 1) then stops = stops + 1 end\n"
    "  redis.call('HSET', s, id, st .. ' ' .. pm .. ' ' .. br)\n"
    "end\n"
    "redis.call('PEXPIRE', v, ARGV[1])\n"
    "redis.call('PEXPIRE', s, ARGV[1])\n"
    "if stops > 0 then\n"
    "  redis.call('HINCRBY', e, 'stops', stops)\n"
    "  redis.call('PEXPIRE', e, ARGV[3])\n"
    "end\n"
    "return 1\n";

bool aggregates_init(struct aggregates *a, int interval_s, size_t capacity, struct rcluster *c)
{
    memset(a, 0, sizeof(*a));
    a->interval_ms = (int64_t)interval_s * 1000;
    a->capacity = capacity ? capacity : 1;
    a->error_log.burst = 3;
    a->error_log.window_ms = 10000;
    size_t args = HEAD_ARGS + NOTE_ARGS * CHUNK_NOTES;
    a->notes = calloc(a->capacity, sizeof(*a->notes));
    a->argv = calloc(args, sizeof(*a->argv));
    a->argvlen = calloc(args, sizeof(*a->argvlen));
    a->numbers = calloc(3 + 2 * CHUNK_NOTES, sizeof(*a->numbers));
    char err[256] = "out of memory";
    if (a->notes == NULL || a->argv == NULL || a->argvlen == NULL || a->numbers == NULL ||
        !rcluster_script_add(c, script, a->sha, err, sizeof(err))) {
        HB_ERROR("aggregates: %s", err);
        aggregates_finish(a);
        return false;
    }
    return true;
}

void aggregates_finish(struct aggregates *a)
{
    free(a->notes);
    free(a->argv);
    free(a->argvlen);
    free(a->numbers);
    memset(a, 0, sizeof(*a));
}

void aggregates_note(struct aggregates *a, const struct queue_entry *e)
{
    if (a->n_notes == a->capacity) {
        a->errors++;
        return;
    }
    struct aggregates_note *n = &a->notes[a->n_notes];
    n->interval_start = e->interval_start;
    n->minute_start = hb_interval_start(e->received_ms, HB_DASH_MINUTE_MS);
    n->order = a->n_notes++;
    n->stopped = e->stopped;
    snprintf(n->id, sizeof(n->id), "%s/%s", e->account, e->device);
    n->agent = e->agent;
}

static int note_cmp(const void *x, const void *y)
{
    const struct aggregates_note *p = x, *q = y;
    if (p->interval_start != q->interval_start)
        return p->interval_start < q->interval_start ? -1 : 1;
    if (p->minute_start != q->minute_start)
        return p->minute_start < q->minute_start ? -1 : 1;
    return p->order < q->order ? -1 : p->order > q->order;
}

static void set_arg(struct aggregates *a, size_t i, const char *s)
{
    a->argv[i] = s;
    a->argvlen[i] = strlen(s);
}

static const char *number(struct aggregates *a, size_t i, long long v)
{
    snprintf(a->numbers[i], sizeof(a->numbers[i]), "%lld", v);
    return a->numbers[i];
}

/* Queues the script for notes[first .. first + n), all of one interval and minute. Returns 1
 * when queued, 0 when the interval is over (nobody reads it any more), -1 when out of memory. */
static int append_chunk(struct aggregates *a, struct rcluster *c, size_t first, size_t n)
{
    const struct aggregates_note *head = &a->notes[first];
    char v[HB_DASH_KEY_MAX], s[HB_DASH_KEY_MAX], e[HB_DASH_KEY_MAX];
    hb_dash_key(v, sizeof(v), HB_DASH_VIEWERS, head->interval_start);
    hb_dash_key(s, sizeof(s), HB_DASH_SEEN, head->interval_start);
    hb_dash_key(e, sizeof(e), HB_DASH_EVENTS, head->minute_start);
    /* The interval's keys live as long as the writer's bins: to the end of the next one. */
    long long ttl = head->interval_start + 2 * a->interval_ms - hb_now_ms();
    if (ttl <= 0)
        return 0;
    set_arg(a, 0, "EVALSHA");
    set_arg(a, 1, a->sha);
    set_arg(a, 2, "3");
    set_arg(a, 3, v);
    set_arg(a, 4, s);
    set_arg(a, 5, e);
    set_arg(a, 6, number(a, 0, ttl));
    set_arg(a, 7, number(a, 1, HB_DASH_NAMES_CAP));
    set_arg(a, 8, number(a, 2, HB_DASH_MINUTE_TTL_MS));
    size_t i = HEAD_ARGS;
    for (size_t k = 0; k < n; k++) {
        const struct aggregates_note *note = &a->notes[first + k];
        set_arg(a, i++, note->id);
        set_arg(a, i++, note->stopped ? "0" : "1");
        set_arg(a, i++, number(a, 3 + 2 * k, note->agent.play_ms));
        set_arg(a, i++, number(a, 4 + 2 * k, note->agent.bitrate));
        set_arg(a, i++, note->agent.os);
        set_arg(a, i++, note->agent.browser);
        set_arg(a, i++, note->agent.device);
    }
    return rcluster_append(c, v, strlen(v), (int)i, a->argv, a->argvlen) >= 0 ? 1 : -1;
}

static void log_error(struct aggregates *a, const char *err)
{
    long suppressed;
    a->errors++;
    if (hb_ratelimit_allow(&a->error_log, &suppressed))
        HB_WARN("aggregates: %s (%ld similar suppressed)", err, suppressed);
}

bool aggregates_flush(struct aggregates *a, struct rcluster *c)
{
    if (a->n_notes == 0)
        return true;
    qsort(a->notes, a->n_notes, sizeof(*a->notes), note_cmp);
    rcluster_reset(c);
    size_t queued = 0;
    for (size_t first = 0; first < a->n_notes;) {
        size_t n = 1;
        while (first + n < a->n_notes && n < CHUNK_NOTES &&
               a->notes[first + n].interval_start == a->notes[first].interval_start &&
               a->notes[first + n].minute_start == a->notes[first].minute_start)
            n++;
        int rc = append_chunk(a, c, first, n);
        if (rc > 0)
            queued++;
        else if (rc < 0)
            log_error(a, "cannot queue a script: out of memory");
        first += n;
    }
    a->n_notes = 0;
    char err[256];
    bool delivered = queued == 0 || rcluster_exec(c, err, sizeof(err)) == 0;
    if (!delivered)
        log_error(a, err);
    for (size_t i = 0; i < queued; i++) {
        const redisReply *r = rcluster_reply(c, i);
        if (r != NULL && r->type == REDIS_REPLY_ERROR)
            log_error(a, r->str);
    }
    rcluster_reset(c);
    return delivered;
}
