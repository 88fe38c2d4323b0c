/* Strict JSON validation without building a tree. A recursive descent over the bytes with a
 * depth bound; the one value the consumer wants (the top-level "ts") is read on the way.
 * Any byte sequence is safe input: every read checks the end first. */
#include "json.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct scanner {
    const unsigned char *p, *end;
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

/* An object; s->p is at '{'. At the top level (ts != NULL) the "ts" member is read. */
static bool object(struct scanner *s, int depth, int64_t *ts)
{
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
        bool is_ts = ts != NULL && *ts < 0 && s->p - key == 4 && memcmp(key, "\"ts\"", 4) == 0;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return false;
        s->p++;
        skip_ws(s);
        const unsigned char *v = s->p;
        if (!value(s, depth + 1))
            return false;
        if (is_ts && (is_digit(*v) || *v == '-') && s->p - v < 32) {
            char buf[32];
            memcpy(buf, v, (size_t)(s->p - v));
            buf[s->p - v] = '\0';
            double d = strtod(buf, NULL);
            /* 1e15 ms is the year 33658: anything beyond is not a timestamp. */
            if (d > 0 && d < 1e15)
                *ts = (int64_t)d;
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
        return object(s, depth, NULL);
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

enum hb_json_kind hb_json_check(const char *text, size_t len, int64_t *ts)
{
    struct scanner s = {(const unsigned char *)text, (const unsigned char *)text + len};
    *ts = -1;
    skip_ws(&s);
    if (s.p >= s.end)
        return HB_JSON_INVALID;
    bool is_object = *s.p == '{';
    bool ok = is_object ? object(&s, 1, ts) : value(&s, 1);
    skip_ws(&s);
    if (!ok || s.p != s.end) {
        *ts = -1;
        return HB_JSON_INVALID;
    }
    return is_object ? HB_JSON_OBJECT : HB_JSON_OTHER;
}
