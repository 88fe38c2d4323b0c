/* The read side. All queries of one call go out in one pipeline (one per node of a Redis
 * Cluster, the nodes in parallel: common/rcluster), so checking a thousand accounts costs one
 * round trip, not a thousand; the watermark that says whether the interval is complete rides
 * in the same pipeline. */
#include "check.h"

#include "ids.h"
#include "interval.h"
#include "key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Takes the device ids out of an HKEYS reply, sorted. */
static int take_ids(const redisReply *r, struct hb_check_result *res)
{
    res->devices = (long long)r->elements;
    if (r->elements == 0)
        return 0;
    res->device_ids = calloc(r->elements, sizeof(char *));
    if (res->device_ids == NULL)
        return -1;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_STRING)
            return -1;
        res->device_ids[i] = strndup(e->str, e->len);
        if (res->device_ids[i] == NULL)
            return -1;
        res->n_device_ids = i + 1;
    }
    qsort(res->device_ids, res->n_device_ids, sizeof(char *), compare_strings);
    return 0;
}

int hb_watermark_key(char *buf, size_t size, const char *group)
{
    size_t len = strlen(group);
    if (!hb_id_valid(group, len) || size < HB_WATERMARK_KEY_MAX) {
        if (size > 0)
            buf[0] = '\0';
        return -1;
    }
    return snprintf(buf, size, "hb:wm:{%s}", group);
}

bool hb_watermark_complete(const redisReply *r, int64_t end_ms, int64_t now_ms)
{
    for (size_t i = 0; i + 1 < r->elements; i += 2) {
        const redisReply *v = r->element[i + 1];
        long long wm, updated;
        if (v->type != REDIS_REPLY_STRING || sscanf(v->str, "%lld %lld", &wm, &updated) != 2)
            continue;
        if (updated < now_ms - HB_WATERMARK_STALE_MS)
            continue;
        if (wm < end_ms)
            return false;
    }
    return true;
}

/* Reads the accounts' keys of one interval, and with wm_key the watermark first, all in one
 * pipeline (one per node of a cluster). */
static int check_pipeline(struct rcluster *c, const char *const *accounts, size_t n,
                          int64_t interval_start_ms, int64_t interval_end_ms, const char *wm_key,
                          bool want_ids, struct hb_check_result *results, char *err, size_t errlen)
{
    memset(results, 0, n * sizeof(*results));
    for (size_t i = 0; i < n; i++)
        results[i].complete = true;
    long *index = calloc(n ? n : 1, sizeof(long)); /* command of account i, or -1 */
    if (index == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    rcluster_reset(c);
    int rc = 0;
    long wm = -1;
    if (wm_key != NULL) {
        const char *argv[] = {"HGETALL", wm_key};
        wm = rcluster_append(c, wm_key, strlen(wm_key), 2, argv, NULL);
        rc = wm < 0 ? -1 : 0;
    }
    char key[HB_KEY_MAX];
    for (size_t i = 0; i < n && rc == 0; i++) {
        index[i] = -1;
        int len = hb_key_format(key, sizeof(key), accounts[i], interval_start_ms);
        if (len < 0)
            continue;
        const char *argv[] = {want_ids ? "HKEYS" : "HLEN", key};
        index[i] = rcluster_append(c, key, (size_t)len, 2, argv, NULL);
        rc = index[i] < 0 ? -1 : 0;
    }
    if (rc < 0)
        snprintf(err, errlen, "out of memory");
    else
        rc = rcluster_exec(c, err, errlen);
    if (rc == 0 && wm >= 0) {
        const redisReply *r = rcluster_reply(c, (size_t)wm);
        bool complete = true;
        if (r->type == REDIS_REPLY_ARRAY) {
            complete = hb_watermark_complete(r, interval_end_ms, hb_now_ms());
        } else {
            snprintf(err, errlen, "watermark %s: %s", wm_key,
                     r->type == REDIS_REPLY_ERROR ? r->str : "not a hash");
            rc = -1;
        }
        for (size_t i = 0; i < n; i++)
            results[i].complete = complete;
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (index[i] < 0)
            continue;
        const redisReply *r = rcluster_reply(c, (size_t)index[i]);
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "redis: %s", r->str);
            rc = -1;
        } else if (!want_ids && r->type == REDIS_REPLY_INTEGER) {
            results[i].devices = r->integer;
        } else if (want_ids && r->type == REDIS_REPLY_ARRAY) {
            if (take_ids(r, &results[i]) < 0) {
                snprintf(err, errlen, "out of memory or bad reply");
                rc = -1;
            }
        } else {
            snprintf(err, errlen, "unexpected reply type %d", r->type);
            rc = -1;
        }
    }
    rcluster_reset(c);
    free(index);
    return rc;
}

int hb_check_interval(struct rcluster *c, const char *const *accounts, size_t n,
                      int64_t interval_start_ms, bool want_ids, struct hb_check_result *results,
                      char *err, size_t errlen)
{
    return check_pipeline(c, accounts, n, interval_start_ms, 0, NULL, want_ids, results, err,
                          errlen);
}

int hb_check_interval_group(struct rcluster *c, const char *const *accounts, size_t n,
                            int64_t interval_start_ms, int interval_s, const char *group,
                            bool want_ids, struct hb_check_result *results, char *err,
                            size_t errlen)
{
    char wm_key[HB_WATERMARK_KEY_MAX];
    if (hb_watermark_key(wm_key, sizeof(wm_key),
                         group != NULL ? group : HB_WATERMARK_GROUP_DEFAULT) < 0) {
        snprintf(err, errlen, "share group: not an id");
        return -1;
    }
    return check_pipeline(c, accounts, n, interval_start_ms,
                          interval_start_ms + (int64_t)interval_s * 1000, wm_key, want_ids, results,
                          err, errlen);
}

int hb_check_previous_group(struct rcluster *c, const char *const *accounts, size_t n,
                            int64_t at_ms, int interval_s, const char *group, bool want_ids,
                            struct hb_check_result *results, char *err, size_t errlen)
{
    int64_t start = hb_interval_previous(at_ms, (int64_t)interval_s * 1000);
    return hb_check_interval_group(c, accounts, n, start, interval_s, group, want_ids, results, err,
                                   errlen);
}

int hb_check_previous(struct rcluster *c, const char *const *accounts, size_t n, int64_t at_ms,
                      int interval_s, bool want_ids, struct hb_check_result *results, char *err,
                      size_t errlen)
{
    int64_t start = hb_interval_previous(at_ms, (int64_t)interval_s * 1000);
    return hb_check_interval(c, accounts, n, start, want_ids, results, err, errlen);
}

void hb_check_results_finish(struct hb_check_result *results, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < results[i].n_device_ids; j++)
            free(results[i].device_ids[j]);
        free(results[i].device_ids);
        results[i].device_ids = NULL;
        results[i].n_device_ids = 0;
    }
}
