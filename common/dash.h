/* The dashboard's aggregates in Redis: their key names and the per-minute event counters hb-api
 * adds to (the audience members of a heartbeat are read with the rest of its payload, struct
 * hb_agent in heartbeat.h). Every key carries the hash tag {hbdash}, so the dashboard reads one
 * slot of a Redis Cluster and a script may touch several of its keys. */
#ifndef HB_DASH_H
#define HB_DASH_H

#include "rcluster.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HB_DASH_KEY_MAX 64
#define HB_DASH_NAMES_CAP 32 /* distinct names per dimension and interval; then "other" */
#define HB_DASH_MINUTE_MS 60000
#define HB_DASH_MINUTE_TTL_MS 3600000 /* minute buckets live an hour */

/* Keys (all with the tag {hbdash}):
 *   hb:dash:{hbdash}:v:<interval start ms>  viewers of an interval: counters (hash)
 *   hb:dash:{hbdash}:s:<interval start ms>  devices seen in it: "account/device" -> state
 *   hb:dash:{hbdash}:e:<minute start ms>    events of a minute: admissions, refusals, ...
 *   hb:dash:{hbdash}:f:<minute start ms>    accounts at or over their limit in that minute */
enum hb_dash_kind {
    HB_DASH_VIEWERS = 'v',
    HB_DASH_SEEN = 's',
    HB_DASH_EVENTS = 'e',
    HB_DASH_FULL = 'f'
};

/* Writes the key of kind for the bucket starting at start_ms into buf; returns its length, or
 * -1 when buf (at least HB_DASH_KEY_MAX is enough) is too small. */
int hb_dash_key(char *buf, size_t len, enum hb_dash_kind kind, int64_t start_ms);

/* What one admission did, for the current minute's counters. */
struct hb_dash_event {
    const char *account;
    int admitted, refused, evicted;
    bool at_limit; /* the account is at or over its limit after the decision */
};

/* Adds ev to the current minute's bucket on c in one round trip (one script). Returns false
 * with a reason in err when Redis did not take it; the caller counts, nothing else depends on
 * it. now_ms is the caller's clock. */
bool hb_dash_event_add(struct rcluster *c, const struct hb_dash_event *ev, int64_t now_ms,
                       char *err, size_t errlen);

#endif
