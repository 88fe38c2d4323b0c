/* Strict JSON validation without building a tree. A recursive descent over the bytes with a
 * depth bound; the members of the top-level object and of the objects directly inside it are
 * handed to a visitor on the way, so a caller reads what it wants in the same pass.
 * Any byte sequence is safe input: every read checks the end first. */
#include "json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct scanner {
    const unsigned char *p, *end;
    hb_json_visit *visit;
    void *ctx;
};

static void skip_ws(struct scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence starting at a byte >= 0x80 (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF). */
static bool utf8_sequence(struct scanner *s)
{
    unsigned char c = *s->p;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return false;
    if ((size_t)(s->end - s->p) <= n)
        return false;
    if (s->p[1] < lo || s->p[1] > hi)
        return false;
    for (size_t i = 2; i <= n; i++) {
        if (s->p[i] < 0x80 || s->p[i] > 0xBF)
            return false;
    }
    s->p += n + 1;
    return true;
}

/* A string; s->p is at the opening quote. */
static bool string(struct scanner *s)
{
    s->p++;
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++s->p >= s->end)
                return false;
            c = *s->p;
            if (c == 'u') {
                if (s->end - s->p < 5)
                    return false;
                for (int i = 1; i <= 4; i++) {
                    if (!is_hex(s->p[i]))
                        return false;
                }
                s->p += 5;
            } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
                s->p++;
            } else {
                return false;
            }
        } else if (c >= 0x80) {
            if (!utf8_sequence(s))
                return false;
        } else {
            s->p++;
        }
    }
    return false;
}

static bool digits(struct scanner *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && is_digit(*s->p))
        s->p++;
    return s->p > start;
}

/* A number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool number(struct scanner *s)
{
    if (s->p < s->end && *s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return false;
    if (*s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    return true;
}

static bool literal(struct scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool value(struct scanner *s, int depth);

/* Whether the raw JSON string text[0..len) (quotes included) is exactly "word", unescaped. */
static bool raw_equals(const char *text, size_t len, const char *word)
{
    size_t n = strlen(word);
    return len == n + 2 && text[0] == '"' && memcmp(text + 1, word, n) == 0 && text[len - 1] == '"';
}

enum after { AFTER_BAD, AFTER_COMMA, AFTER_CLOSE };

/* After a member or an element: the closing bracket (consumed), or a comma (consumed, with the
 * space after it), or anything else, which is malformed. */
static enum after after_item(struct scanner *s, char close)
{
    skip_ws(s);
    if (s->p >= s->end)
        return AFTER_BAD;
    if (*s->p == close) {
        s->p++;
        return AFTER_CLOSE;
    }
    if (*s->p != ',')
        return AFTER_BAD;
    s->p++;
    skip_ws(s);
    return AFTER_COMMA;
}

/* An object; s->p is at '{'. The members of the top-level object (depth 1) and of an object
 * that is a top-level member's value (parent is that member's key) are visited. */
static bool object(struct scanner *s, int depth, const unsigned char *parent, size_t parent_len)
{
    bool visited = s->visit != NULL && (depth == 1 || parent != NULL);
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return true;
    }
    for (;;) {
        if (s->p >= s->end || *s->p != '"')
            return false;
        const unsigned char *key = s->p;
        if (!string(s))
            return false;
        size_t key_len = (size_t)(s->p - key);
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        const unsigned char *v = s->p;
        bool ok = depth == 1 && visited && v < s->end && *v == '{'
                      ? object(s, depth + 1, key, key_len)
                      : value(s, depth + 1);
        if (!ok)
            return false;
        if (visited) {
            struct hb_json_member m = {(const char *)parent, parent_len,
                                       (const char *)key,    key_len,
                                       (const char *)v,      (size_t)(s->p - v)};
            s->visit(s->ctx, &m);
        }
        enum after a = after_item(s, '}');
        if (a != AFTER_COMMA)
            return a == AFTER_CLOSE;
    }
}

static bool array(struct scanner *s, int depth)
{
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        return true;
    }
    for (;;) {
        if (!value(s, depth + 1))
            return false;
        enum after a = after_item(s, ']');
        if (a != AFTER_COMMA)
            return a == AFTER_CLOSE;
    }
}

static bool value(struct scanner *s, int depth)
{
    if (depth > HB_JSON_DEPTH_MAX || s->p >= s->end)
        return false;
    switch (*s->p) {
    case '{':
        return object(s, depth, NULL, 0);
    case '[':
        return array(s, depth);
    case '"':
        return string(s);
    case 't':
        return literal(s, "true");
    case 'f':
        return literal(s, "false");
    case 'n':
        return literal(s, "null");
    default:
        return number(s);
    }
}

enum hb_json_kind hb_json_scan(const char *text, size_t len, hb_json_visit *visit, void *ctx)
{
    struct scanner s = {(const unsigned char *)text, (const unsigned char *)text + len, visit, ctx};
    skip_ws(&s);
    if (s.p >= s.end)
        return HB_JSON_INVALID;
    bool is_object = *s.p == '{';
    bool ok = is_object ? object(&s, 1, NULL, 0) : value(&s, 1);
    skip_ws(&s);
    if (!ok || s.p != s.end)
        return HB_JSON_INVALID;
    return is_object ? HB_JSON_OBJECT : HB_JSON_OTHER;
}

int64_t hb_json_ts(const char *value, size_t len)
{
    if (len == 0 || len >= 32 || !(is_digit((unsigned char)value[0]) || value[0] == '-'))
        return -1;
    char buf[32];
    memcpy(buf, value, len);
    buf[len] = '\0';
    double d = strtod(buf, NULL);
    /* 1e15 ms is the year 33658: anything beyond is not a timestamp. */
    return d > 0 && d < 1e15 ? (int64_t)d : -1;
}

/* The first top-level "ts" that hb_json_ts reads. */
static void visit_ts(void *ctx, const struct hb_json_member *m)
{
    int64_t *ts = ctx;
    if (*ts < 0 && m->parent == NULL && raw_equals(m->key, m->key_len, "ts"))
        *ts = hb_json_ts(m->value, m->value_len);
}

enum hb_json_kind hb_json_check(const char *text, size_t len, int64_t *ts)
{
    *ts = -1;
    enum hb_json_kind kind = hb_json_scan(text, len, visit_ts, ts);
    if (kind != HB_JSON_OBJECT)
        *ts = -1;
    return kind;
}
