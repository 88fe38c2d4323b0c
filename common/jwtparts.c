/* Unverified reading of a compact JWT's parts: strict base64url (canonical, unpadded, no NUL
 * byte) and JSON objects without duplicate member names, so that the verifier and libjwt can
 * never disagree about what a header or claims set says. Nothing here trusts a token. The
 * encoder (for the minter and JWKs) is the decoder's counterpart, so neither needs libcrypto. */
#include "jwtparts.h"

#include "token.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

bool hb_jwt_b64url_char(unsigned char c)
{
    return b64url_value(c) >= 0;
}

size_t hb_jwt_b64url_len(size_t n)
{
    return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

size_t hb_jwt_b64url_encode(const void *in, size_t n, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const unsigned char *b = in;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        size_t left = n - i;
        uint32_t v = (uint32_t)b[i] << 16;
        if (left > 1)
            v |= (uint32_t)b[i + 1] << 8;
        if (left > 2)
            v |= b[i + 2];
        out[o++] = alphabet[(v >> 18) & 63];
        out[o++] = alphabet[(v >> 12) & 63];
        if (left > 1)
            out[o++] = alphabet[(v >> 6) & 63];
        if (left > 2)
            out[o++] = alphabet[v & 63];
    }
    out[o] = '\0';
    return o;
}

/* Decodes unpadded base64url s[0..n) into a malloc'd NUL-terminated buffer. NULL when the text
 * is not canonical base64url or the bytes contain a NUL (no JSON text does). */
static char *b64url_decode_text(const char *s, size_t n)
{
    if (n == 0 || n % 4 == 1)
        return NULL;
    char *out = malloc(n / 4 * 3 + 3);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o] = (char)((acc >> bits) & 0xff);
            if (out[o++] == '\0')
                goto bad;
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) /* leftover bits must be zero */
        goto bad;
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

cJSON *hb_jwt_part_object(const char *s, size_t n, int members_max)
{
    char *text = b64url_decode_text(s, n);
    if (text == NULL)
        return NULL;
    cJSON *obj = cJSON_ParseWithOpts(text, NULL, true);
    free(text);
    if (obj == NULL)
        return NULL;
    int count = 0;
    bool ok = cJSON_IsObject(obj);
    for (const cJSON *a = ok ? obj->child : NULL; ok && a != NULL; a = a->next) {
        ok = ++count <= members_max && a->string != NULL;
        for (const cJSON *b = obj->child; ok && b != a; b = b->next)
            ok = strcmp(a->string, b->string) != 0;
    }
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

int hb_jwt_numeric_date(const cJSON *obj, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > (double)HB_JWT_TIME_MAX || floor(v->valuedouble) != v->valuedouble)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 1;
}

bool hb_token_peek_exp(const char *token, size_t len, int64_t *exp_s)
{
    if (len > HB_TOKEN_MAX)
        return false;
    const char *dot1 = memchr(token, '.', len);
    const char *end = token + len;
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (dot2 == NULL)
        return false;
    cJSON *claims =
        hb_jwt_part_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), HB_JWT_CLAIM_MEMBERS_MAX);
    if (claims == NULL)
        return false;
    bool ok = hb_jwt_numeric_date(claims, "exp", exp_s) == 1;
    cJSON_Delete(claims);
    return ok;
}
