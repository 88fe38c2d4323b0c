/* Fuzz target for the heartbeat JSON validator (common/json.c), with cJSON as a differential
 * oracle. The two differ by design: the validator refuses raw control bytes, invalid UTF-8, a
 * byte-order mark, lenient numbers (01, 1.) and nesting deeper than HB_JSON_DEPTH_MAX, which
 * cJSON lets by (it even reads \u escapes with bad hex digits, as U+0000), and cJSON refuses
 * unpaired UTF-16 surrogate escapes, which the validator lets by. Each direction is compared
 * only on inputs outside those differences. */
#include "json.h"

#include "fuzz.h"

#include <cjson/cJSON.h>
#include <regex.h>

/* hb_json_check stores a ts from a number in (0, 1e15) only, truncated to whole milliseconds
 * (so 0.5 is stored as 0). */
#define TS_LIMIT 1e15
/* The validator reads ts from a number token shorter than this. */
#define TS_TOKEN_MAX 32

/* What the comparison needs to know about a text, from one pass that tracks strings only. */
struct shape {
    bool plain;          /* printable ASCII, and JSON's whitespace outside strings */
    bool escapes;        /* a backslash inside a string */
    bool surrogates;     /* a \uD... escape (U+D000..U+DFFF, surrogates among them) */
    bool bad_hex;        /* a \u escape without four hex digits */
    bool strict_numbers; /* every number token matches RFC 8259's grammar */
    int depth;           /* deepest [ { nesting outside strings */
    size_t longest_number;
};

/* RFC 8259 section 6, as a regular expression. */
static bool rfc_number(const char *token)
{
    static regex_t re;
    static bool compiled;
    if (!compiled) {
        if (regcomp(&re, "^-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?$",
                    REG_EXTENDED | REG_NOSUB) != 0)
            abort();
        compiled = true;
    }
    return regexec(&re, token, 0, NULL, 0) == 0;
}

/* A number token starts with - or a digit and runs over the bytes cJSON reads into a number. */
static size_t number_token(const char *t, size_t at, size_t len)
{
    size_t end = at;
    while (end < len && t[end] != '\0' && strchr("0123456789+-.eE", t[end]) != NULL)
        end++;
    return end - at;
}

static bool hex4(const char *p)
{
    for (int k = 0; k < 4; k++) {
        if (p[k] == '\0' || strchr("0123456789abcdefABCDEF", p[k]) == NULL)
            return false;
    }
    return true;
}

static void shape_of(const char *t, size_t len, struct shape *sh)
{
    *sh = (struct shape){.plain = true, .strict_numbers = true};
    bool in_string = false;
    int depth = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        bool whitespace = !in_string && (c == '\t' || c == '\n' || c == '\r');
        if ((c < 0x20 || c > 0x7e) && !whitespace)
            sh->plain = false;
        if (in_string) {
            if (c == '\\') {
                sh->escapes = true;
                if (i + 1 < len && t[i + 1] == 'u') {
                    sh->surrogates |= i + 2 < len && (t[i + 2] == 'd' || t[i + 2] == 'D');
                    sh->bad_hex |= i + 5 >= len || !hex4(t + i + 2);
                }
                i++;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > sh->depth)
                sh->depth = depth;
        } else if (c == ']' || c == '}') {
            depth -= depth > 0;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t n = number_token(t, i, len);
            char token[64];
            if (n >= sizeof(token))
                sh->strict_numbers = false;
            else {
                memcpy(token, t + i, n);
                token[n] = '\0';
                sh->strict_numbers = sh->strict_numbers && rfc_number(token);
            }
            if (n > sh->longest_number)
                sh->longest_number = n;
            i += n - 1;
        }
    }
}

static enum hb_json_kind cjson_kind(const cJSON *root)
{
    return root == NULL ? HB_JSON_INVALID : cJSON_IsObject(root) ? HB_JSON_OBJECT : HB_JSON_OTHER;
}

/* The first top-level "ts" that is a number in (0, TS_LIMIT), as the validator defines it. */
static int64_t cjson_ts(const cJSON *root)
{
    for (const cJSON *m = root->child; m != NULL; m = m->next) {
        if (strcmp(m->string, "ts") == 0 && cJSON_IsNumber(m) && m->valuedouble > 0 &&
            m->valuedouble < TS_LIMIT)
            return (int64_t)m->valuedouble;
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    int64_t ts = INT64_MIN; /* must be written */
    enum hb_json_kind ours = hb_json_check(text, size, &ts);
    FUZZ_ASSERT(ours == HB_JSON_INVALID || ours == HB_JSON_OBJECT || ours == HB_JSON_OTHER);
    if (ours == HB_JSON_OBJECT)
        FUZZ_ASSERT(ts >= -1 && ts < TS_LIMIT);
    else
        FUZZ_ASSERT(ts == -1);
    /* No JSON token holds a NUL byte, and a raw one is not allowed in a string. */
    if (memchr(text, '\0', size) != NULL) {
        FUZZ_ASSERT(ours == HB_JSON_INVALID);
        return 0;
    }

    char *copy = fuzz_strndup(text, size);
    /* The length includes the NUL: cJSON requires it to end the text. */
    cJSON *root = cJSON_ParseWithLengthOpts(copy, size + 1, NULL, true);
    enum hb_json_kind theirs = cjson_kind(root);
    struct shape sh;
    shape_of(text, size, &sh);
    /* Whatever the validator accepts is JSON of the same kind. */
    if (ours != HB_JSON_INVALID && !sh.surrogates)
        FUZZ_ASSERT(theirs == ours);
    /* cJSON's JSON is the validator's too, outside the documented differences (a scalar inside
     * HB_JSON_DEPTH_MAX brackets is one level too deep, hence the - 1). */
    if (theirs != HB_JSON_INVALID && sh.plain && !sh.bad_hex && sh.strict_numbers &&
        sh.depth <= HB_JSON_DEPTH_MAX - 1)
        FUZZ_ASSERT(ours == theirs);
    /* Without escapes a key is its bytes, so "ts" is the same member for both. */
    if (ours == HB_JSON_OBJECT && theirs == HB_JSON_OBJECT && !sh.escapes &&
        sh.longest_number < TS_TOKEN_MAX)
        FUZZ_ASSERT(ts == cjson_ts(root));
    cJSON_Delete(root);
    free(copy);
    return 0;
}
