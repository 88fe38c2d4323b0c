/* The dashboard's Redis keys and the payload members it counts. The payload is parsed with
 * cJSON only when the dashboard's aggregates are on: a 1 KiB object costs a few microseconds,
 * paid on the receive thread, and the members are nested (agent) where a flat scan is not. */
#include "dash.h"

#include "interval.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

int hb_dash_key(char *buf, size_t len, enum hb_dash_kind kind, int64_t start_ms)
{
    int n = snprintf(buf, len, "hb:dash:{hbdash}:%c:%lld", (char)kind, (long long)start_ms);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

static void name_copy(char *dst, const cJSON *v)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    size_t n = 0;
    for (; s != NULL && s[n] != '\0' && n < HB_DASH_NAME_MAX; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr(" ._-+()/", c) != NULL);
        dst[n] = ok ? c : '_';
    }
    dst[n] = '\0';
    if (n == 0)
        strcpy(dst, "unknown");
}

static int64_t number_of(const cJSON *v, double scale)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble * scale >= 9007199254740992.0)
        return -1;
    return (int64_t)(v->valuedouble * scale);
}

void hb_dash_agent_parse(const void *payload, size_t len, struct hb_dash_agent *out)
{
    cJSON *root = len > 0 ? cJSON_ParseWithLength(payload, len) : NULL;
    const cJSON *obj = cJSON_IsObject(root) ? root : NULL;
    const cJSON *agent = cJSON_GetObjectItemCaseSensitive(obj, "agent");
    if (!cJSON_IsObject(agent))
        agent = NULL;
    out->bitrate = number_of(cJSON_GetObjectItemCaseSensitive(obj, "bitrate"), 1.0);
    out->play_ms = number_of(cJSON_GetObjectItemCaseSensitive(obj, "playTime"), 1000.0);
    name_copy(out->os, cJSON_GetObjectItemCaseSensitive(agent, "os"));
    name_copy(out->browser, cJSON_GetObjectItemCaseSensitive(agent, "browser"));
    name_copy(out->device, cJSON_GetObjectItemCaseSensitive(agent, "device"));
    cJSON_Delete(root);
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
