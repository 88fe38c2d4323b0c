/* Payload templates. Compiling splits the text into literal runs and placeholders once, so the
 * publishing path never scans for braces; values are inserted as they are (no JSON escaping),
 * which is safe because every value is a number, an id or a string from the agent table. */
#include "payload.h"

#include "heartbeat.h"
#include "ids.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char payload_default_template[] =
    "{\"ts\":{{ts}},\"seq\":{{seq}},\"mediaId\":\"{{media}}\",\"bitrate\":{{bitrate}},"
    "\"playTime\":{{play_time}},\"agent\":{\"os\":\"{{os}}\",\"browser\":\"{{browser}}\","
    "\"device\":\"{{model}}\"}}";

enum payload_field {
    FIELD_TEXT,
    FIELD_TS,
    FIELD_DEVICE,
    FIELD_ACCOUNT,
    FIELD_BITRATE,
    FIELD_MEDIA,
    FIELD_PLAY_TIME,
    FIELD_OS,
    FIELD_BROWSER,
    FIELD_MODEL,
    FIELD_SEQ,
};

struct payload_part {
    enum payload_field field;
    size_t offset, len; /* FIELD_TEXT: the run text[offset, offset + len) */
};

static const struct {
    const char *name;
    enum payload_field field;
} names[] = {
    {"ts", FIELD_TS},           {"device", FIELD_DEVICE},   {"account", FIELD_ACCOUNT},
    {"bitrate", FIELD_BITRATE}, {"media", FIELD_MEDIA},     {"play_time", FIELD_PLAY_TIME},
    {"os", FIELD_OS},           {"browser", FIELD_BROWSER}, {"model", FIELD_MODEL},
    {"seq", FIELD_SEQ},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool push(struct payload_template *t, size_t *cap, enum payload_field field, size_t offset,
                 size_t len)
{
    if (field == FIELD_TEXT && len == 0)
        return true;
    if (t->n_parts == *cap) {
        size_t n = *cap ? *cap * 2 : 16;
        struct payload_part *p = realloc(t->parts, n * sizeof(*p));
        if (p == NULL)
            return false;
        t->parts = p;
        *cap = n;
    }
    t->parts[t->n_parts++] = (struct payload_part){field, offset, len};
    return true;
}

bool payload_compile(struct payload_template *t, const char *text, size_t len, char *err,
                     size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (memchr(text, '\0', len) != NULL) {
        snprintf(err, errlen, "the template contains a NUL byte");
        return false;
    }
    t->text = malloc(len + 1);
    if (t->text == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memcpy(t->text, text, len);
    t->text[len] = '\0';

    size_t cap = 0, run = 0, i = 0;
    while (i < len) {
        if (!(text[i] == '{' && i + 1 < len && text[i + 1] == '{')) {
            i++;
            continue;
        }
        const char *close = strstr(t->text + i + 2, "}}");
        size_t name_len = close ? (size_t)(close - (t->text + i + 2)) : 0;
        size_t k = 0;
        while (close && k < COUNT(names) &&
               !(strlen(names[k].name) == name_len &&
                 memcmp(names[k].name, t->text + i + 2, name_len) == 0))
            k++;
        if (close == NULL || k == COUNT(names)) {
            size_t show = close ? name_len : 0;
            snprintf(err, errlen,
                     "unknown placeholder '{{%.*s}}' at byte %zu (known: ts device account "
                     "bitrate media play_time os browser model seq)",
                     (int)(show > 40 ? 40 : show), t->text + i + 2, i);
            payload_finish(t);
            return false;
        }
        if (!push(t, &cap, FIELD_TEXT, run, i - run) || !push(t, &cap, names[k].field, 0, 0)) {
            snprintf(err, errlen, "out of memory");
            payload_finish(t);
            return false;
        }
        i += 2 + name_len + 2;
        run = i;
    }
    if (!push(t, &cap, FIELD_TEXT, run, len - run)) {
        snprintf(err, errlen, "out of memory");
        payload_finish(t);
        return false;
    }
    return true;
}

void payload_finish(struct payload_template *t)
{
    free(t->text);
    free(t->parts);
    memset(t, 0, sizeof(*t));
}

/* Appends src[0..n) at *pos; false when it would not leave room for the NUL. */
static bool append(char *buf, size_t size, size_t *pos, const char *src, size_t n)
{
    if (n >= size - *pos)
        return false;
    memcpy(buf + *pos, src, n);
    *pos += n;
    return true;
}

int payload_render(const struct payload_template *t, const struct payload_values *v, char *buf,
                   size_t size)
{
    if (size == 0)
        return -1;
    size_t pos = 0;
    for (size_t i = 0; i < t->n_parts; i++) {
        const struct payload_part *p = &t->parts[i];
        char num[48];
        int n = 0;
        const char *s = NULL;
        switch (p->field) {
        case FIELD_TEXT:
            if (!append(buf, size, &pos, t->text + p->offset, p->len))
                return -1;
            continue;
        case FIELD_TS:
            n = snprintf(num, sizeof(num), "%" PRId64, v->ts_ms);
            break;
        case FIELD_BITRATE:
            n = snprintf(num, sizeof(num), "%u", v->bitrate);
            break;
        case FIELD_MEDIA:
            n = snprintf(num, sizeof(num), "m-%04u", v->media);
            break;
        case FIELD_PLAY_TIME: {
            int64_t ms = v->play_ms > 0 ? v->play_ms : 0;
            n = snprintf(num, sizeof(num), "%" PRId64 ".%" PRId64, ms / 1000, (ms % 1000) / 100);
            break;
        }
        case FIELD_SEQ:
            n = snprintf(num, sizeof(num), "%" PRIu64, v->seq);
            break;
        case FIELD_DEVICE:
            s = v->device;
            break;
        case FIELD_ACCOUNT:
            s = v->account;
            break;
        case FIELD_OS:
            s = v->os;
            break;
        case FIELD_BROWSER:
            s = v->browser;
            break;
        case FIELD_MODEL:
            s = v->model;
            break;
        }
        if (s != NULL) {
            if (!append(buf, size, &pos, s, strlen(s)))
                return -1;
        } else if (n < 0 || !append(buf, size, &pos, num, (size_t)n)) {
            return -1;
        }
    }
    buf[pos] = '\0';
    return (int)pos;
}

static bool has_field(const struct payload_template *t, enum payload_field f)
{
    for (size_t i = 0; i < t->n_parts; i++)
        if (t->parts[i].field == f)
            return true;
    return false;
}

bool payload_check(const struct payload_template *t, size_t *longest, char *err, size_t errlen)
{
    /* The longest value of each placeholder: ids at their limit, a 13-digit time, 30 days of
     * play, and the agent table's longest strings are shorter than these. */
    char id[HB_ID_MAX + 1];
    memset(id, 'x', HB_ID_MAX);
    id[HB_ID_MAX] = '\0';
    const struct payload_values v = {
        .ts_ms = INT64_C(9999999999999),
        .device = id,
        .account = id,
        .bitrate = 4294967295u,
        .media = 4294967295u,
        .play_ms = INT64_C(30) * 86400 * 1000,
        .os = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        .browser = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        .model = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        .seq = UINT64_C(9999999999),
    };
    char buf[PAYLOAD_MAX];
    int n = payload_render(t, &v, buf, sizeof(buf));
    if (n < 0) {
        snprintf(err, errlen, "a rendered payload can exceed %d bytes", PAYLOAD_MAX - 1);
        return false;
    }
    struct hb_payload read;
    enum hb_reject r = hb_payload_read(buf, (size_t)n, PAYLOAD_MAX, &read);
    if (r != HB_OK) {
        snprintf(err, errlen, "the rendered payload is rejected by the consumer as %s: %.200s",
                 hb_reject_name(r), buf);
        return false;
    }
    if (has_field(t, FIELD_TS) && read.sent_ms != v.ts_ms) {
        snprintf(err, errlen,
                 "{{ts}} must be the value of a top-level \"ts\" field (the "
                 "consumer reads it to measure latency)");
        return false;
    }
    *longest = (size_t)n;
    return true;
}

bool payload_load(struct payload_template *t, const char *path, size_t *longest, char *err,
                  size_t errlen)
{
    memset(t, 0, sizeof(*t));
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    char *text = malloc(PAYLOAD_TEMPLATE_MAX + 1);
    if (text == NULL) {
        fclose(f);
        snprintf(err, errlen, "out of memory");
        return false;
    }
    size_t len = fread(text, 1, PAYLOAD_TEMPLATE_MAX + 1, f);
    bool read_error = ferror(f);
    fclose(f);
    bool ok = false;
    if (read_error) {
        snprintf(err, errlen, "%s: read error", path);
    } else if (len > PAYLOAD_TEMPLATE_MAX) {
        snprintf(err, errlen, "%s: longer than %d bytes", path, PAYLOAD_TEMPLATE_MAX);
    } else {
        while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' ' ||
                           text[len - 1] == '\t'))
            len--;
        char why[400];
        if (!payload_compile(t, text, len, why, sizeof(why)))
            snprintf(err, errlen, "%s: %s", path, why);
        else if (!payload_check(t, longest, why, sizeof(why)))
            snprintf(err, errlen, "%s: %s", path, why);
        else
            ok = true;
        if (!ok)
            payload_finish(t);
    }
    free(text);
    return ok;
}

int payload_add_members(char *buf, size_t len, size_t size, const char *members)
{
    size_t close = len;
    while (close > 0 && strchr(" \t\r\n", buf[close - 1]) != NULL)
        close--;
    if (close < 2 || buf[close - 1] != '}')
        return -1;
    close--;
    size_t before = close;
    while (before > 0 && strchr(" \t\r\n", buf[before - 1]) != NULL)
        before--;
    bool empty = before > 0 && buf[before - 1] == '{';
    size_t mlen = strlen(members), add = mlen + (empty ? 0 : 1);
    if (len + add >= size)
        return -1;
    memmove(buf + close + add, buf + close, len - close + 1);
    if (!empty)
        buf[close++] = ',';
    memcpy(buf + close, members, mlen);
    return (int)(len + add);
}
