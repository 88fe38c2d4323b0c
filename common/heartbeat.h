/* Validation of one heartbeat as it arrives from the network: the topic names the account and
 * device, the payload is empty or a small JSON object. Nothing here allocates beyond the JSON
 * parse, and nothing trusts the payload for identity. */
#ifndef HB_HEARTBEAT_H
#define HB_HEARTBEAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"

/* Default largest payload accepted, in bytes. */
#define HB_PAYLOAD_MAX_DEFAULT 1024

/* Why a message was rejected. HB_OK is not a rejection. The order is the order of the
 * counters in stats lines; names are stable (tests and dashboards read them). */
enum hb_reject {
    HB_OK = 0,
    HB_REJECT_BAD_TOPIC,  /* not <prefix>/<account>/<device> */
    HB_REJECT_BAD_ID,     /* account or device outside the id alphabet or length */
    HB_REJECT_OVERSIZE,   /* payload longer than the configured maximum */
    HB_REJECT_NOT_JSON,   /* payload is not valid JSON */
    HB_REJECT_NOT_OBJECT, /* payload is JSON but not an object */
    HB_REJECT_RETAINED,   /* delivered from the broker's retained store: old, not live */
    HB_REJECT_COUNT
};

/* Stable lower-case name of a reason ("bad_topic", ...); "ok" for HB_OK. */
const char *hb_reject_name(enum hb_reject reason);

struct hb_heartbeat {
    char account[HB_ID_MAX + 1];
    char device[HB_ID_MAX + 1];
    int64_t sent_ms; /* the payload's "ts" (sender's Unix ms), or -1 when absent or unusable */
    int64_t seq;     /* the payload's "seq" (hb_payload_seq), or -1 */
};

/* Splits topic[0..topic_len) of the form <prefix>/<account>/<device> into out->account and
 * out->device (NUL-terminated). Returns HB_REJECT_BAD_TOPIC when the shape or prefix is wrong,
 * HB_REJECT_BAD_ID when a part is outside the id alphabet. out->sent_ms and out->seq are set
 * to -1. */
enum hb_reject hb_topic_parse(const char *prefix, const char *topic, size_t topic_len,
                              struct hb_heartbeat *out);

/* Checks payload[0..len): empty, or a JSON object of at most max_len bytes. On HB_OK stores the
 * numeric "ts" field in *sent_ms (or -1 when absent, not a number or out of range).
 * Unknown fields are ignored, so senders can add fields without breaking older consumers. */
enum hb_reject hb_payload_check(const void *payload, size_t len, size_t max_len, int64_t *sent_ms);

/* The top-level member "seq" of a payload that hb_payload_check accepted: the device's
 * heartbeat sequence number, a whole number in [0, 2^53). Returns -1 when the payload is empty,
 * has no such member, or its value is anything else. Reads only payload[0..len). */
int64_t hb_payload_seq(const void *payload, size_t len);

/* The top-level members the consumer reads from a payload hb_payload_check accepted. */
struct hb_payload_members {
    int64_t seq;        /* "seq" as hb_payload_seq, or -1 */
    int64_t started_ms; /* "started": when the device began playing, Unix ms in [0, 2^53), or -1 */
    bool stopped;       /* "state" is exactly "stopped": the device ends its play */
    /* "mediaId" when it is a string that is an id (hb_id_valid, no escapes): what the device
     * plays; "" otherwise. It names a topic (live counts), so nothing else is accepted. */
    char media[HB_ID_MAX + 1];
};

/* Reads seq, started, state and mediaId in one pass over payload[0..len) (a later duplicate member
 * wins); anything unusable leaves the member at its "absent" value. Reads nothing else. */
void hb_payload_members(const void *payload, size_t len, struct hb_payload_members *out);

#endif
