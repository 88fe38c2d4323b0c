/* The read side: how many distinct devices each account had in one interval, read for many
 * accounts in one pipelined round trip. The checker program and any program that links the
 * library use this. The handle is an opaque struct rcluster (rcluster_create from any --redis
 * URI: redis://, unix:// or redis-cluster://); it connects on first use and reconnects itself. */
#ifndef HB_CHECK_H
#define HB_CHECK_H

#include "rcluster.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The watermark: each consumer keeps one field in the hash hb:wm:{<share group>}, named after its
 * client id, valued "<watermark ms> <updated ms>": every heartbeat it received before the
 * watermark (its receive clock, Unix ms) has been written to Redis or counted lost, and it
 * wrote the field at <updated>. It rewrites the field at least every second while it runs and
 * deletes it when it stops with nothing held. An interval [start, end) is complete when every
 * field updated within HB_WATERMARK_STALE_MS has a watermark >= end; older fields belong to
 * consumers gone (killed, or cut off from Redis) and are ignored, as is a missing hash. */
#define HB_WATERMARK_KEY_MAX (6 + 64 + 2)
#define HB_WATERMARK_STALE_MS 5000
#define HB_WATERMARK_GROUP_DEFAULT "hb-consumers"

/* Writes "hb:wm:{<group>}" into buf; returns its length, or -1 when group is not an id (1-64
 * characters of the id alphabet) or buf (at least HB_WATERMARK_KEY_MAX) is too small. */
int hb_watermark_key(char *buf, size_t size, const char *group);

/* Whether the watermark fields in the HGETALL reply r (alternating names and values) make the
 * interval ending at end_ms complete at now_ms, by the rule above. A malformed value cannot be
 * dated, so it is ignored like a stale one. */
bool hb_watermark_complete(const redisReply *r, int64_t end_ms, int64_t now_ms);

struct hb_check_result {
    long long devices; /* distinct devices; 0 when the key does not exist */
    bool complete;     /* with a group: the interval is complete (see above); else true */
    char **device_ids; /* with want_ids: the devices, sorted; else NULL */
    size_t n_device_ids;
};

/* For each of the n accounts, reads the hash of the interval starting at interval_start_ms
 * (HLEN, or HKEYS when want_ids) in one pipeline, and fills results[0..n). Invalid account ids
 * count 0 devices without a query. Returns 0, or -1 with a reason in err (no node answered after
 * the redirections and retries rcluster_exec does, or a protocol error; results are then
 * undefined but safe to pass to hb_check_results_finish). Forgets anything queued on c. Every
 * result's complete flag is true: this call reads no watermark. */
int hb_check_interval(struct rcluster *c, const char *const *accounts, size_t n,
                      int64_t interval_start_ms, bool want_ids, struct hb_check_result *results,
                      char *err, size_t errlen);

/* Same, for the last complete interval at at_ms (hb_interval_previous). */
int hb_check_previous(struct rcluster *c, const char *const *accounts, size_t n, int64_t at_ms,
                      int interval_s, bool want_ids, struct hb_check_result *results, char *err,
                      size_t errlen);

/* Like hb_check_previous, and reads the watermark of the share group in the same pipeline
 * (one HGETALL more) to fill each result's complete flag. group NULL means
 * HB_WATERMARK_GROUP_DEFAULT. */
int hb_check_previous_group(struct rcluster *c, const char *const *accounts, size_t n,
                            int64_t at_ms, int interval_s, const char *group, bool want_ids,
                            struct hb_check_result *results, char *err, size_t errlen);

/* Like hb_check_interval, with the complete flag as hb_check_previous_group fills it. */
int hb_check_interval_group(struct rcluster *c, const char *const *accounts, size_t n,
                            int64_t interval_start_ms, int interval_s, const char *group,
                            bool want_ids, struct hb_check_result *results, char *err,
                            size_t errlen);

/* Frees what hb_check_interval allocated in results[0..n); the array itself stays. */
void hb_check_results_finish(struct hb_check_result *results, size_t n);

#endif
