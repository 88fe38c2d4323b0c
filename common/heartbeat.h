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
};

/* Splits topic[0..topic_len) of the form <prefix>/<account>/<device> into out->account and
 * out->device (NUL-terminated). Returns HB_REJECT_BAD_TOPIC when the shape or prefix is wrong,
 * HB_REJECT_BAD_ID when a part is outside the id alphabet. */
enum hb_reject hb_topic_parse(const char *prefix, const char *topic, size_t topic_len,
                              struct hb_heartbeat *out);

/* Longest os/browser/device name kept from a payload's "agent"; longer ones are cut. */
#define HB_AGENT_NAME_MAX 32

/* What a payload says about the audience, for the dashboard. Absent or unusable members: -1 and
 * "unknown". */
struct hb_agent {
    int64_t bitrate;                /* "bitrate", kbit/s, a whole number >= 0 (fractions are cut) */
    int64_t play_ms;                /* "playTime" (seconds, may have a fraction) in ms */
    char os[HB_AGENT_NAME_MAX + 1]; /* "agent": {"os", "browser", "device"} */
    char browser[HB_AGENT_NAME_MAX + 1];
    char device[HB_AGENT_NAME_MAX + 1];
};

/* The members of a payload the consumer reads. Unknown members are ignored, so senders can add
 * fields without breaking older consumers. */
struct hb_payload {
    int64_t sent_ms;    /* the first top-level "ts" that is a number in (0, 1e15): the sender's
                           Unix ms, truncated; -1 when there is none */
    int64_t seq;        /* "seq": the device's heartbeat number, a whole number in [0, 2^53); -1 */
    int64_t started_ms; /* "started": when the device began playing, Unix ms in [0, 2^53), or -1 */
    bool stopped;       /* "state" is exactly "stopped": the device ends its play */
    /* "mediaId" when it is a string that is an id (hb_id_valid, no escapes): what the device
     * plays; "" otherwise. It names a topic (live counts), so nothing else is accepted. */
    char media[HB_ID_MAX + 1];
    struct hb_agent agent;
};

/* Checks payload[0..len): empty, or a JSON object of at most max_len bytes, and reads the members
 * above in the same pass. For seq, started, state and mediaId a later duplicate wins; for bitrate,
 * playTime and agent (and each of agent's names) the first one does, valid or not. Names keep
 * only letters, digits, space and "._-+()/" (others, and each escape sequence, become '_'), so a
 * name is always safe as part of a hash field. On a rejection *out holds the absent values.
 * Never allocates and never reads outside payload[0..len). */
enum hb_reject hb_payload_read(const void *payload, size_t len, size_t max_len,
                               struct hb_payload *out);

#endif
