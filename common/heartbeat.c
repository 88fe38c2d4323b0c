/* Validation of a heartbeat from the network. The topic is split without copying more than an
 * id's length; the payload is validated without allocating (json.c) and only after its size is
 * checked, so the cost of a hostile payload is bounded by the configured maximum. */
#include "heartbeat.h"

#include "json.h"

#include <string.h>

static const char *const reject_names[HB_REJECT_COUNT] = {
    [HB_OK] = "ok",
    [HB_REJECT_BAD_TOPIC] = "bad_topic",
    [HB_REJECT_BAD_ID] = "bad_id",
    [HB_REJECT_OVERSIZE] = "oversize",
    [HB_REJECT_NOT_JSON] = "not_json",
    [HB_REJECT_NOT_OBJECT] = "not_object",
    [HB_REJECT_RETAINED] = "retained",
};

const char *hb_reject_name(enum hb_reject reason)
{
    if ((int)reason < 0 || reason >= HB_REJECT_COUNT)
        return "unknown";
    return reject_names[reason];
}

/* Copies the id topic[0..len) into dst when it is valid. */
static enum hb_reject take_id(char *dst, const char *src, size_t len)
{
    if (!hb_id_valid(src, len))
        return HB_REJECT_BAD_ID;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return HB_OK;
}

enum hb_reject hb_topic_parse(const char *prefix, const char *topic, size_t topic_len,
                              struct hb_heartbeat *out)
{
    out->account[0] = out->device[0] = '\0';
    out->sent_ms = -1;

    size_t plen = strlen(prefix);
    if (topic_len <= plen + 1 || memcmp(topic, prefix, plen) != 0 || topic[plen] != '/')
        return HB_REJECT_BAD_TOPIC;
    const char *account = topic + plen + 1;
    const char *end = topic + topic_len;
    const char *slash = memchr(account, '/', (size_t)(end - account));
    if (slash == NULL)
        return HB_REJECT_BAD_TOPIC;
    const char *device = slash + 1;
    if (memchr(device, '/', (size_t)(end - device)) != NULL)
        return HB_REJECT_BAD_TOPIC;

    enum hb_reject r = take_id(out->account, account, (size_t)(slash - account));
    if (r != HB_OK)
        return r;
    return take_id(out->device, device, (size_t)(end - device));
}

enum hb_reject hb_payload_check(const void *payload, size_t len, size_t max_len,
                                int64_t *sent_ms)
{
    *sent_ms = -1;
    if (len == 0)
        return HB_OK;
    if (len > max_len)
        return HB_REJECT_OVERSIZE;
    switch (hb_json_check(payload, len, sent_ms)) {
    case HB_JSON_OBJECT:
        return HB_OK;
    case HB_JSON_OTHER:
        return HB_REJECT_NOT_OBJECT;
    default:
        return HB_REJECT_NOT_JSON;
    }
}
