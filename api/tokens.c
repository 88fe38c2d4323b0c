/* POST /v1/tokens: {"account", "device"?, "ttl"?} with an API key gives {"token", "expires_at",
 * "kid"}; hb-api serves it and hb-tokend is hb-api with only this route. Ids are checked by the
 * same input rules as every other endpoint, so "acctA\u0000evil" is refused instead of minting
 * for "acctA". The per-key buckets are shared by every server thread under one mutex. */
#include "api.h"

#include "interval.h"
#include "log.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void api_tokens_init(struct api_tokens *t, long default_ttl, long max_ttl, double rate_per_s,
                     double burst)
{
    t->default_ttl = default_ttl;
    t->max_ttl = max_ttl;
    pthread_mutex_init(&t->lock, NULL);
    for (size_t i = 0; i < API_KEYS_MAX; i++)
        hb_bucket_init(&t->buckets[i], rate_per_s, burst);
}

void api_tokens_finish(struct api_tokens *t)
{
    pthread_mutex_destroy(&t->lock);
}

bool api_tokens_rate_check(double rate_per_s, double burst, double *effective)
{
    if (burst > 0 && burst < 1) {
        HB_ERROR("--burst %g: a key must be able to mint at least one token", burst);
        return false;
    }
    *effective = burst > 0 ? burst : (rate_per_s * 2 > 1 ? rate_per_s * 2 : 1);
    return true;
}

bool api_tokens_take(struct api_tokens *t, int key, long *retry_after_s)
{
    struct hb_bucket *b = &t->buckets[key];
    int64_t now = hb_monotonic_ms();
    pthread_mutex_lock(&t->lock);
    bool ok = hb_bucket_take(b, 1, now);
    int64_t wait_ms = ok ? 0 : hb_bucket_wait_ms(b, 1, now);
    pthread_mutex_unlock(&t->lock);
    *retry_after_s = (long)((wait_ms + 999) / 1000);
    if (!ok && *retry_after_s < 1)
        *retry_after_s = 1;
    return ok;
}

/* A field name fit for a reason: at most 39 bytes, anything outside a safe set as '?'. */
static void name_copy(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; s[i] && i + 1 < outlen; i++) {
        char c = s[i];
        bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("/._-:~", c) != NULL;
        out[i] = safe ? c : '?';
    }
    out[i] = '\0';
}

static bool is_id_field(const char *field)
{
    return field && (strcmp(field, "account") == 0 || strcmp(field, "device") == 0);
}

const char *api_tokens_reason(const struct api_tokens *t, enum api_bad bad, const char *field,
                              const char *body, size_t len, char *buf, size_t buflen)
{
    char name[40];
    switch (bad) {
    case API_BAD_MEDIA_TYPE:
        return "Content-Type must be application/json";
    case API_BAD_TOO_LARGE:
        snprintf(buf, buflen, "the body must be at most %d bytes", API_BODY_MAX);
        return buf;
    case API_BAD_RATE_LIMITED:
        return "this API key asks for tokens faster than --rate-limit allows";
    case API_BAD_MALFORMED_JSON: {
        cJSON *json = memchr(body, '\0', len) == NULL
                          ? cJSON_ParseWithLengthOpts(body, len + 1, NULL, true)
                          : NULL;
        cJSON_Delete(json);
        return json ? "the body must be a JSON object" : "the body is not JSON";
    }
    case API_BAD_UNKNOWN_FIELD:
        name_copy(name, sizeof(name), field ? field : "");
        snprintf(buf, buflen, "unknown field '%s'", name);
        return buf;
    case API_BAD_MISSING_FIELD:
        snprintf(buf, buflen, "%s is required", field ? field : "account");
        return buf;
    case API_BAD_NUL:
    case API_BAD_INVALID_FIELD:
        if (is_id_field(field)) {
            snprintf(buf, buflen, "%s must be 1-64 bytes of A-Z a-z 0-9 . _ - :", field);
            return buf;
        }
        if (bad == API_BAD_NUL)
            return "a string must not hold \\u0000";
        snprintf(buf, buflen, "ttl must be whole seconds in 1..%ld", t->max_ttl);
        return buf;
    default:
        return NULL;
    }
}

void api_tokens_post(struct api *a, struct hb_httpd_request *req, cJSON *body)
{
    static const char *const fields[] = {"account", "device", "ttl", NULL};
    char account[HB_ID_MAX + 1], device[HB_ID_MAX + 1];
    long ttl = 0;
    const char *field = NULL;
    enum api_bad bad = api_json_only(body, fields, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "account", true, account, &field);
    /* A valid account is safe to log, also when another field is refused. */
    if (bad == API_BAD_NONE)
        snprintf(req->log_account, sizeof(req->log_account), "%s", account);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "device", false, device, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_long(body, "ttl", false, 1, a->tokens.max_ttl, a->tokens.default_ttl, &ttl,
                            &field);
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return;
    }
    int64_t expires_at = 0;
    char *token = api_mint_device(a, account, device[0] ? device : NULL, NULL, ttl, &expires_at);
    if (token == NULL) {
        hb_httpd_reply_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddStringToObject(out, "token", token);
        cJSON_AddNumberToObject(out, "expires_at", (double)expires_at);
        cJSON_AddStringToObject(out, "kid", a->key->kid);
    }
    memset(token, 0, strlen(token));
    free(token);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}
