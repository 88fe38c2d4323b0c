/* Fuzz target for a heartbeat as it arrives: hb_topic_parse and hb_payload_read. Input: the
 * first byte is the topic's length n, the next n bytes the topic, the rest the payload. The
 * topic's verdict is checked against the README's contract restated here by counting slashes,
 * not by the parser's own steps; the payload's dashboard members against cJSON, which read them
 * before the one-pass reader did. */
#include "heartbeat.h"

#include "fuzz.h"

#include <cjson/cJSON.h>
#include <math.h>

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

/* The oracle: a name as cJSON decodes it, kept as the reader keeps it. */
static void oracle_name(char *dst, const cJSON *v)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    size_t n = 0;
    for (; s != NULL && s[n] != '\0' && n < HB_AGENT_NAME_MAX; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr(" ._-+()/", c) != NULL;
        dst[n] = ok ? c : '_';
    }
    dst[n] = '\0';
    if (n == 0)
        strcpy(dst, "unknown");
}

static int64_t oracle_number(const cJSON *v, double scale)
{
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble * scale) || v->valuedouble < 0 ||
        v->valuedouble * scale >= 9007199254740992.0)
        return -1;
    return (int64_t)(v->valuedouble * scale);
}

/* The first member named key (cJSON finds the first), or NULL. */
static const cJSON *member(const cJSON *obj, const char *key)
{
    return cJSON_IsObject(obj) ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
}

/* Whether cJSON reads the payload as the reader does: no escapes (the reader keeps names raw)
 * and no number token cJSON would cut (it copies at most 63 bytes of one). */
static bool comparable(const uint8_t *payload, size_t len)
{
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (payload[i] == '\\')
            return false;
        run = payload[i] != '\0' && strchr("0123456789+-.eE", payload[i]) != NULL ? run + 1 : 0;
        if (run >= 63)
            return false;
    }
    return true;
}

static void check_agent(const uint8_t *payload, size_t len, const struct hb_payload *p)
{
    char *copy = fuzz_strndup(payload, len);
    cJSON *root = cJSON_ParseWithLengthOpts(copy, len + 1, NULL, true);
    FUZZ_ASSERT(cJSON_IsObject(root));
    const cJSON *agent = member(root, "agent");
    FUZZ_ASSERT(p->agent.bitrate == oracle_number(member(root, "bitrate"), 1.0));
    FUZZ_ASSERT(p->agent.play_ms == oracle_number(member(root, "playTime"), 1000.0));
    char name[HB_AGENT_NAME_MAX + 1];
    oracle_name(name, member(agent, "os"));
    FUZZ_ASSERT(strcmp(p->agent.os, name) == 0);
    oracle_name(name, member(agent, "browser"));
    FUZZ_ASSERT(strcmp(p->agent.browser, name) == 0);
    oracle_name(name, member(agent, "device"));
    FUZZ_ASSERT(strcmp(p->agent.device, name) == 0);
    cJSON_Delete(root);
    free(copy);
}

static void check_payload(const uint8_t *payload, size_t len)
{
    struct hb_payload p;
    memset(&p, 0x5a, sizeof(p)); /* every member must be written */
    enum hb_reject r = hb_payload_read(payload, len, HB_PAYLOAD_MAX_DEFAULT, &p);
    if (len == 0)
        FUZZ_ASSERT(r == HB_OK);
    else if (len > HB_PAYLOAD_MAX_DEFAULT)
        FUZZ_ASSERT(r == HB_REJECT_OVERSIZE);
    else
        FUZZ_ASSERT(r == HB_OK || r == HB_REJECT_NOT_JSON || r == HB_REJECT_NOT_OBJECT);
    /* A ts in (0, 1e15) is truncated to whole milliseconds: 0.5 is stored as 0. */
    if (r == HB_OK)
        FUZZ_ASSERT(p.sent_ms >= -1 && p.sent_ms < INT64_C(1000000000000000));
    FUZZ_ASSERT(p.seq >= -1 && p.seq < (INT64_C(1) << 53));
    FUZZ_ASSERT(p.started_ms >= -1 && p.started_ms < (INT64_C(1) << 53));
    FUZZ_ASSERT(terminated(p.media, sizeof(p.media)));
    FUZZ_ASSERT(p.media[0] == '\0' || hb_id_valid(p.media, strlen(p.media)));
    FUZZ_ASSERT(p.agent.bitrate >= -1 && p.agent.play_ms >= -1);
    const char *names[] = {p.agent.os, p.agent.browser, p.agent.device};
    for (int i = 0; i < 3; i++) {
        FUZZ_ASSERT(terminated(names[i], HB_AGENT_NAME_MAX + 1));
        FUZZ_ASSERT(strlen(names[i]) > 0);
        FUZZ_ASSERT(strspn(names[i], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                     "0123456789 ._-+()/") == strlen(names[i]));
    }
    if (r != HB_OK || len == 0) {
        FUZZ_ASSERT(p.sent_ms == -1 && p.seq == -1 && p.started_ms == -1 && !p.stopped);
        FUZZ_ASSERT(p.media[0] == '\0' && p.agent.bitrate == -1 && p.agent.play_ms == -1);
        FUZZ_ASSERT(strcmp(p.agent.os, "unknown") == 0);
    } else if (comparable(payload, len)) {
        check_agent(payload, len, &p);
    }
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
