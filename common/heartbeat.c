/* Validation of a heartbeat from the network. The topic is split without copying more than an
 * id's length; the payload is validated without allocating (json.c) and only after its size is
 * checked, so the cost of a hostile payload is bounded by the configured maximum. */
#include "heartbeat.h"

#include "json.h"

#include <stdbool.h>
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
    out->seq = -1;

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

enum hb_reject hb_payload_check(const void *payload, size_t len, size_t max_len, int64_t *sent_ms)
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

/* Past the string starting at text[i] (a '"'); the text is valid JSON, so it is terminated. */
static size_t skip_string(const char *text, size_t i, size_t len)
{
    for (i++; i < len && text[i] != '"'; i++) {
        if (text[i] == '\\')
            i++;
    }
    return i + 1;
}

/* The whole number at text[i..len), or -1 when it is not one in [0, 2^53). */
static int64_t whole_number(const char *text, size_t i, size_t len)
{
    int64_t v = 0;
    size_t start = i;
    for (; i < len && text[i] >= '0' && text[i] <= '9'; i++) {
        if (v > (INT64_C(1) << 53) / 10)
            return -1;
        v = v * 10 + (text[i] - '0');
    }
    if (i == start || v >= (INT64_C(1) << 53))
        return -1;
    /* 1.5 or 1e3 is not a sequence number. */
    if (i < len && (text[i] == '.' || text[i] == 'e' || text[i] == 'E'))
        return -1;
    return v;
}

/* Whether text[i..len) is the JSON string "stopped" (exactly, no escapes). */
static bool is_stopped(const char *text, size_t i, size_t len)
{
    return len - i >= 9 && memcmp(text + i, "\"stopped\"", 9) == 0;
}

/* Copies the JSON string at text[i..len) into media when it is an id without escapes. */
static void take_media(const char *text, size_t i, size_t len, char media[HB_ID_MAX + 1])
{
    if (i >= len || text[i] != '"')
        return;
    const char *start = text + i + 1;
    const char *end = memchr(start, '"', len - i - 1);
    if (end != NULL && hb_id_valid(start, (size_t)(end - start))) {
        memcpy(media, start, (size_t)(end - start));
        media[end - start] = '\0';
    } else {
        media[0] = '\0'; /* a later bad duplicate wins too: nothing half-trusted */
    }
}

void hb_payload_members(const void *payload, size_t len, struct hb_payload_members *out)
{
    out->seq = -1;
    out->started_ms = -1;
    out->stopped = false;
    out->media[0] = '\0';
    /* A second pass over text hb_json_check validated: only strings and nesting matter. */
    const char *text = payload;
    int depth = 0;
    size_t i = 0;
    while (i < len) {
        char ch = text[i];
        if (ch == '{' || ch == '[') {
            depth++;
            i++;
        } else if (ch == '}' || ch == ']') {
            depth--;
            i++;
        } else if (ch == '"') {
            size_t end = skip_string(text, i, len);
            enum { OTHER, SEQ, STARTED, STATE, MEDIA } member = OTHER;
            if (depth == 1 && end - i == 5 && memcmp(text + i, "\"seq\"", 5) == 0)
                member = SEQ;
            else if (depth == 1 && end - i == 9 && memcmp(text + i, "\"started\"", 9) == 0)
                member = STARTED;
            else if (depth == 1 && end - i == 7 && memcmp(text + i, "\"state\"", 7) == 0)
                member = STATE;
            else if (depth == 1 && end - i == 9 && memcmp(text + i, "\"mediaId\"", 9) == 0)
                member = MEDIA;
            i = end;
            while (i < len && memchr(" \t\r\n", text[i], 4) != NULL)
                i++;
            /* A key is followed by ':'; a string value is not. */
            if (member != OTHER && i < len && text[i] == ':') {
                i++;
                while (i < len && memchr(" \t\r\n", text[i], 4) != NULL)
                    i++;
                if (member == SEQ)
                    out->seq = whole_number(text, i, len);
                else if (member == STARTED)
                    out->started_ms = whole_number(text, i, len);
                else if (member == STATE)
                    out->stopped = is_stopped(text, i, len);
                else
                    take_media(text, i, len, out->media);
            }
        } else {
            i++;
        }
    }
}

int64_t hb_payload_seq(const void *payload, size_t len)
{
    struct hb_payload_members m;
    hb_payload_members(payload, len, &m);
    return m.seq;
}
