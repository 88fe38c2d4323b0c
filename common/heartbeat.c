/* Validation of a heartbeat from the network. The topic is split without copying more than an
 * id's length; the payload is validated and its members read in one pass without allocating
 * (json.c's visitor), and only after its size is checked, so the cost of a hostile payload is
 * bounded by the configured maximum. */
#include "heartbeat.h"

#include "json.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
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

/* The whole number that is exactly value[0..len), or -1 when it is not one in [0, 2^53)
 * (1.5, 1e3, -1 and "7" are not sequence numbers). */
static int64_t whole_number(const char *value, size_t len)
{
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9' || v > (INT64_C(1) << 53) / 10)
            return -1;
        v = v * 10 + (value[i] - '0');
    }
    return len > 0 && v < (INT64_C(1) << 53) ? v : -1;
}

/* A JSON number in value[0..len) times scale, cut to a whole number, or -1 when it is not a
 * number, negative, or not below 2^53 after scaling. */
static int64_t scaled_number(const char *value, size_t len, double scale)
{
    /* A whole number below 2^53 is exact as a double, so this is what strtod would give. */
    if (len <= 15) {
        int64_t v = whole_number(value, len);
        if (v >= 0) {
            double d = (double)v * scale;
            return d < 9007199254740992.0 ? (int64_t)d : -1;
        }
    }
    char buf[64];
    if (len == 0 || len >= sizeof(buf) ||
        !(value[0] == '-' || (value[0] >= '0' && value[0] <= '9')))
        return -1;
    memcpy(buf, value, len);
    buf[len] = '\0';
    double d = strtod(buf, NULL) * scale;
    if (!isfinite(d) || d < 0 || d >= 9007199254740992.0)
        return -1;
    return (int64_t)d;
}

/* Copies the JSON string value[0..len) into media when it is an id without escapes; a string
 * that is not leaves "" (a later bad duplicate wins too: nothing half-trusted). */
static void take_media(const char *value, size_t len, char media[HB_ID_MAX + 1])
{
    if (len < 2 || value[0] != '"')
        return;
    const char *start = value + 1;
    size_t n = len - 2;
    if (memchr(start, '\\', n) == NULL && hb_id_valid(start, n)) {
        memcpy(media, start, n);
        media[n] = '\0';
    } else {
        media[0] = '\0';
    }
}

/* A name from the JSON string value[0..len) (or "unknown" when it is not one, or empty). */
static void take_name(const char *value, size_t len, char name[HB_AGENT_NAME_MAX + 1])
{
    size_t n = 0;
    for (size_t i = 1; value[0] == '"' && i + 1 < len && n < HB_AGENT_NAME_MAX; i++) {
        char c = value[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr(" ._-+()/", c) != NULL);
        if (c == '\\') /* the text is valid JSON: \uXXXX or a two-byte escape */
            i += value[i + 1] == 'u' ? 5 : 1;
        name[n++] = ok ? c : '_';
    }
    name[n] = '\0';
    if (n == 0)
        strcpy(name, "unknown");
}

/* The members read, and where: at the top level or inside the top-level "agent" object. */
enum member { OTHER, TS, SEQ, STARTED, STATE, MEDIA, BITRATE, PLAY, AGENT, OS, BROWSER, DEVICE };

static const struct {
    const char *name;
    size_t len;
    enum member id;
    bool in_agent;
} known[] = {
    {"ts", 2, TS, false},          {"seq", 3, SEQ, false},       {"started", 7, STARTED, false},
    {"state", 5, STATE, false},    {"mediaId", 7, MEDIA, false}, {"bitrate", 7, BITRATE, false},
    {"playTime", 8, PLAY, false},  {"agent", 5, AGENT, false},   {"os", 2, OS, true},
    {"browser", 7, BROWSER, true}, {"device", 6, DEVICE, true},
};

/* Which member m is. Keys are compared raw (an escaped key is another key), length first: this
 * runs for every member of every heartbeat on paho's receive thread. */
static enum member member_of(const struct hb_json_member *m)
{
    bool in_agent = m->parent != NULL;
    if (in_agent && !(m->parent_len == 7 && memcmp(m->parent, "\"agent\"", 7) == 0))
        return OTHER;
    const char *key = m->key + 1;
    size_t n = m->key_len - 2;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
        if (known[i].len == n && known[i].in_agent == in_agent &&
            memcmp(known[i].name, key, n) == 0)
            return known[i].id;
    }
    return OTHER;
}

/* What the visitor has taken so far: bitrate, playTime, agent and each name count once. */
struct reader {
    struct hb_payload *out;
    bool bitrate, play, agent, names[3];
};

static void visit_member(void *ctx, const struct hb_json_member *m)
{
    struct reader *r = ctx;
    struct hb_payload *p = r->out;
    const char *v = m->value;
    size_t n = m->value_len;
    enum member id = member_of(m);
    switch (id) {
    case TS:
        if (p->sent_ms < 0)
            p->sent_ms = hb_json_ts(v, n);
        break;
    case SEQ:
        p->seq = whole_number(v, n);
        break;
    case STARTED:
        p->started_ms = whole_number(v, n);
        break;
    case STATE:
        p->stopped = n == 9 && memcmp(v, "\"stopped\"", 9) == 0;
        break;
    case MEDIA:
        take_media(v, n, p->media);
        break;
    case BITRATE:
        if (!r->bitrate)
            p->agent.bitrate = scaled_number(v, n, 1.0);
        r->bitrate = true;
        break;
    case PLAY:
        if (!r->play)
            p->agent.play_ms = scaled_number(v, n, 1000.0);
        r->play = true;
        break;
    case AGENT:
        r->agent = true;
        break;
    case OS:
    case BROWSER:
    case DEVICE: {
        /* Only the first "agent" counts, and its members come before it is seen. */
        int i = id - OS;
        char *dst[3] = {p->agent.os, p->agent.browser, p->agent.device};
        if (!r->agent && !r->names[i])
            take_name(v, n, dst[i]);
        r->names[i] = true;
        break;
    }
    case OTHER:
        break;
    }
}

static void payload_absent(struct hb_payload *out)
{
    *out = (struct hb_payload){.sent_ms = -1, .seq = -1, .started_ms = -1};
    out->agent.bitrate = out->agent.play_ms = -1;
    strcpy(out->agent.os, "unknown");
    strcpy(out->agent.browser, "unknown");
    strcpy(out->agent.device, "unknown");
}

enum hb_reject hb_payload_read(const void *payload, size_t len, size_t max_len,
                               struct hb_payload *out)
{
    payload_absent(out);
    if (len == 0)
        return HB_OK;
    if (len > max_len)
        return HB_REJECT_OVERSIZE;
    struct reader r = {.out = out};
    enum hb_json_kind kind = hb_json_scan(payload, len, visit_member, &r);
    if (kind != HB_JSON_OBJECT)
        payload_absent(out);
    return kind == HB_JSON_OBJECT  ? HB_OK
           : kind == HB_JSON_OTHER ? HB_REJECT_NOT_OBJECT
                                   : HB_REJECT_NOT_JSON;
}
