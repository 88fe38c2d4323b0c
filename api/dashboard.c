/* GET /dashboard/data: the consumer's and hb-api's aggregates (common/dash.h) as one JSON
 * object. It reads a fixed number of keys in one pipeline — two interval hashes, and the events
 * and limit hashes of the last DASH_MINUTES minutes — so its cost does not grow with the number
 * of devices: the counters were kept as heartbeats arrived. */
#include "api.h"

#include "dash.h"
#include "interval.h"
#include "log.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#define DASH_MINUTES 10

/* The integer value of field in a HGETALL reply, or 0. */
static long long field_of(const redisReply *h, const char *field)
{
    for (size_t i = 0; h != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2)
        if (strcmp(h->element[i]->str, field) == 0)
            return strtoll(h->element[i + 1]->str, NULL, 10);
    return 0;
}

/* {name: count} of the fields "<dim>:<name>" of an interval's viewers hash. */
static cJSON *breakdown(const redisReply *h, const char *dim)
{
    cJSON *out = cJSON_CreateObject();
    size_t n = strlen(dim);
    for (size_t i = 0; out != NULL && h->type == REDIS_REPLY_ARRAY && i + 1 < h->elements; i += 2) {
        const char *f = h->element[i]->str;
        if (strncmp(f, dim, n) == 0 && f[n] == ':')
            cJSON_AddNumberToObject(out, f + n + 1,
                                    (double)strtoll(h->element[i + 1]->str, NULL, 10));
    }
    return out;
}

static cJSON *viewers_json(const redisReply *h, int64_t start)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return NULL;
    long long play_n = field_of(h, "play_n"), br_n = field_of(h, "bitrate_n");
    cJSON_AddNumberToObject(o, "interval_start", (double)start);
    cJSON_AddNumberToObject(o, "viewers_total", (double)field_of(h, "viewers"));
    cJSON_AddNumberToObject(o, "viewers_active", (double)field_of(h, "active"));
    if (play_n > 0)
        cJSON_AddNumberToObject(o, "play_time_avg", field_of(h, "play_ms_sum") / 1000.0 / play_n);
    else
        cJSON_AddNullToObject(o, "play_time_avg");
    if (br_n > 0) {
        cJSON_AddNumberToObject(o, "bitrate_min", (double)field_of(h, "bitrate_min"));
        cJSON_AddNumberToObject(o, "bitrate_max", (double)field_of(h, "bitrate_max"));
        cJSON_AddNumberToObject(o, "bitrate_avg", (double)field_of(h, "bitrate_sum") / br_n);
    } else {
        cJSON_AddNullToObject(o, "bitrate_min");
        cJSON_AddNullToObject(o, "bitrate_max");
        cJSON_AddNullToObject(o, "bitrate_avg");
    }
    static const char *const dims[] = {"device", "os", "browser"};
    cJSON *capped = cJSON_AddObjectToObject(o, "other_folded");
    for (size_t i = 0; i < 3; i++) {
        cJSON_AddItemToObject(o, dims[i], breakdown(h, dims[i]));
        char f[32];
        snprintf(f, sizeof(f), "capped:%s", dims[i]);
        cJSON_AddNumberToObject(capped, dims[i], (double)field_of(h, f));
    }
    return o;
}

void api_dashboard_data(struct api *a, struct hb_httpd_request *req)
{
    int64_t now = hb_now_ms(), interval_ms = (int64_t)a->set.interval_s * 1000;
    int64_t cur = hb_interval_start(now, interval_ms), prev = cur - interval_ms;
    int64_t minute = hb_interval_start(now, HB_DASH_MINUTE_MS);
    char err[256];
    struct rcluster *c = api_pool_take(&a->pool, err, sizeof(err));
    if (c == NULL) {
        api_unavailable(a, req, err);
        return;
    }
    rcluster_reset(c);
    bool queued = true;
    int64_t starts[2] = {prev, cur};
    for (size_t i = 0; i < 2 + 2 * DASH_MINUTES; i++) {
        char key[HB_DASH_KEY_MAX];
        bool events = i >= 2 && i % 2 == 0;
        if (i < 2)
            hb_dash_key(key, sizeof(key), HB_DASH_VIEWERS, starts[i]);
        else
            hb_dash_key(key, sizeof(key), events ? HB_DASH_EVENTS : HB_DASH_FULL,
                        minute - (int64_t)((i - 2) / 2) * HB_DASH_MINUTE_MS);
        const char *argv[] = {i < 2 || events ? "HGETALL" : "HLEN", key};
        queued = queued && rcluster_append(c, key, strlen(key), 2, argv, NULL) >= 0;
    }
    bool ok = queued && rcluster_exec(c, err, sizeof(err)) == 0;
    for (size_t i = 0; ok && i < 2 + 2 * DASH_MINUTES; i++) {
        const redisReply *r = rcluster_reply(c, i);
        ok = r != NULL && r->type != REDIS_REPLY_ERROR;
        if (!ok)
            snprintf(err, sizeof(err), "%s", r != NULL ? r->str : "no reply");
    }
    if (!ok) {
        rcluster_reset(c);
        api_pool_give(&a->pool, c, false);
        api_unavailable(a, req, queued ? err : "out of memory");
        return;
    }
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddNumberToObject(out, "now", (double)now);
        cJSON_AddNumberToObject(out, "interval_s", a->set.interval_s);
        /* The last complete interval: every device's heartbeat of it is in. */
        cJSON_AddItemToObject(out, "viewers", viewers_json(rcluster_reply(c, 0), prev));
        cJSON_AddItemToObject(out, "current", viewers_json(rcluster_reply(c, 1), cur));
        cJSON *mins = cJSON_AddArrayToObject(out, "minutes"); /* newest (running) first */
        static const char *const names[] = {"admissions", "refusals", "evictions", "stops"};
        for (size_t m = 0; mins != NULL && m < DASH_MINUTES; m++) {
            const redisReply *ev = rcluster_reply(c, 2 + 2 * m);
            cJSON *o = cJSON_CreateObject();
            if (o == NULL)
                break;
            cJSON_AddItemToArray(mins, o);
            cJSON_AddNumberToObject(o, "start", (double)(minute - (int64_t)m * HB_DASH_MINUTE_MS));
            for (size_t k = 0; k < 4; k++)
                cJSON_AddNumberToObject(o, names[k], (double)field_of(ev, names[k]));
            cJSON_AddNumberToObject(o, "accounts_at_limit",
                                    (double)rcluster_reply(c, 3 + 2 * m)->integer);
        }
    }
    rcluster_reset(c);
    api_pool_give(&a->pool, c, true);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}
