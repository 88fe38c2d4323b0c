/* The dashboard's Redis keys and the per-minute event counters hb-api adds to, with the one
 * script that adds them (the payload members it counts are read in heartbeat.c). */
#include "dash.h"

#include "interval.h"

#include <stdio.h>
#include <string.h>

int hb_dash_key(char *buf, size_t len, enum hb_dash_kind kind, int64_t start_ms)
{
    int n = snprintf(buf, len, "hb:dash:{hbdash}:%c:%lld", (char)kind, (long long)start_ms);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* KEYS = events hash, full hash; ARGV = ttl ms, admitted, refused, evicted, account or "". */
static const char event_script[] =
    "local ttl = tonumber(ARGV[1])\n"
    "local names = {'admissions', 'refusals', 'evictions'}\n"
    "for i = 1, 3 do\n"
    "  local n = tonumber(ARGV[i + 1])\n"
    "  if n > 0 then redis.call('HINCRBY', KEYS[1], names[i], n) end\n"
    "end\n"
    "redis.call('PEXPIRE', KEYS[1], ttl)\n"
    "if ARGV[5] ~= '' then\n"
    "  redis.call('HSET', KEYS[2], ARGV[5], 1)\n"
    "  redis.call('PEXPIRE', KEYS[2], ttl)\n"
    "end\n"
    "return 1\n";

bool hb_dash_event_add(struct rcluster *c, const struct hb_dash_event *ev, int64_t now_ms,
                       char *err, size_t errlen)
{
    int64_t minute = hb_interval_start(now_ms, HB_DASH_MINUTE_MS);
    char events[HB_DASH_KEY_MAX], full[HB_DASH_KEY_MAX], ttl[24], a[16], r[16], e[16];
    hb_dash_key(events, sizeof(events), HB_DASH_EVENTS, minute);
    hb_dash_key(full, sizeof(full), HB_DASH_FULL, minute);
    snprintf(ttl, sizeof(ttl), "%d", HB_DASH_MINUTE_TTL_MS);
    snprintf(a, sizeof(a), "%d", ev->admitted);
    snprintf(r, sizeof(r), "%d", ev->refused);
    snprintf(e, sizeof(e), "%d", ev->evicted);
    const char *argv[] = {
        "EVAL", event_script, "2", events, full, ttl, a, r, e, ev->at_limit ? ev->account : ""};
    redisReply *rep = rcluster_command(c, events, strlen(events), 10, argv, NULL, err, errlen);
    bool ok = rep != NULL && rep->type == REDIS_REPLY_INTEGER;
    if (rep != NULL && !ok)
        snprintf(err, errlen, "%s", rep->type == REDIS_REPLY_ERROR ? rep->str : "unexpected reply");
    freeReplyObject(rep);
    return ok;
}
