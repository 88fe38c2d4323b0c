/* Fuzz target for a heartbeat as it arrives: hb_topic_parse and hb_payload_check. Input: the
 * first byte is the topic's length n, the next n bytes the topic, the rest the payload. The
 * topic's verdict is checked against the README's contract restated here by counting slashes,
 * not by the parser's own steps. */
#include "heartbeat.h"

#include "fuzz.h"

#define PREFIX "hb"

/* The contract: "hb/<account>/<device>" with exactly two slashes is accepted when both parts
 * are ids (else bad_id); any other shape is bad_topic. */
static enum hb_reject expected_topic(const char *topic, size_t len, size_t *second_slash)
{
    size_t slashes = 0;
    for (size_t i = 0; i < len; i++) {
        if (topic[i] == '/' && ++slashes == 2)
            *second_slash = i;
    }
    if (len < sizeof(PREFIX) || memcmp(topic, PREFIX "/", sizeof(PREFIX)) != 0 || slashes != 2)
        return HB_REJECT_BAD_TOPIC;
    const char *account = topic + sizeof(PREFIX);
    const char *device = topic + *second_slash + 1;
    bool ids = hb_id_valid(account, (size_t)(device - 1 - account)) &&
               hb_id_valid(device, (size_t)(topic + len - device));
    return ids ? HB_OK : HB_REJECT_BAD_ID;
}

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

static void check_topic(const char *topic, size_t len)
{
    struct hb_heartbeat hb;
    memset(&hb, 0x5a, sizeof(hb));
    size_t second_slash = 0;
    enum hb_reject r = hb_topic_parse(PREFIX, topic, len, &hb);
    FUZZ_ASSERT(r == expected_topic(topic, len, &second_slash));
    FUZZ_ASSERT(hb.sent_ms == -1);
    FUZZ_ASSERT(terminated(hb.account, sizeof(hb.account)));
    FUZZ_ASSERT(terminated(hb.device, sizeof(hb.device)));
    if (r == HB_REJECT_BAD_TOPIC)
        FUZZ_ASSERT(hb.account[0] == '\0' && hb.device[0] == '\0');
    if (r != HB_OK)
        return;
    FUZZ_ASSERT(hb_id_valid(hb.account, strlen(hb.account)));
    FUZZ_ASSERT(hb_id_valid(hb.device, strlen(hb.device)));
    char again[sizeof(PREFIX) + sizeof(hb.account) + sizeof(hb.device)];
    int n = snprintf(again, sizeof(again), PREFIX "/%s/%s", hb.account, hb.device);
    FUZZ_ASSERT(n > 0 && (size_t)n == len && memcmp(again, topic, len) == 0);
}

static void check_payload(const uint8_t *payload, size_t len)
{
    int64_t ts = INT64_MIN; /* must be written */
    enum hb_reject r = hb_payload_check(payload, len, HB_PAYLOAD_MAX_DEFAULT, &ts);
    if (len == 0)
        FUZZ_ASSERT(r == HB_OK);
    else if (len > HB_PAYLOAD_MAX_DEFAULT)
        FUZZ_ASSERT(r == HB_REJECT_OVERSIZE);
    else
        FUZZ_ASSERT(r == HB_OK || r == HB_REJECT_NOT_JSON || r == HB_REJECT_NOT_OBJECT);
    /* A ts in (0, 1e15) is truncated to whole milliseconds: 0.5 is stored as 0. */
    if (r == HB_OK)
        FUZZ_ASSERT(ts >= -1 && ts < INT64_C(1000000000000000));
    else
        FUZZ_ASSERT(ts == -1);
    FUZZ_ASSERT(strcmp(hb_reject_name(r), "unknown") != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t topic_len = data[0] < size - 1 ? data[0] : size - 1;
    /* Its own buffer, so a read past the topic's end is caught instead of reading the payload. */
    char *topic = malloc(topic_len > 0 ? topic_len : 1);
    if (topic == NULL)
        abort();
    memcpy(topic, data + 1, topic_len);
    check_topic(topic, topic_len);
    free(topic);
    check_payload(data + 1 + topic_len, size - 1 - topic_len);
    return 0;
}
