/* Route and body checks of hb-api, pure functions. The \u0000 check walks the raw text with
 * the JSON string grammar (an escape is two characters, so "\\u0000" is text, not a NUL)
 * before cJSON ever sees it, because after parsing the NUL is indistinguishable from the end. */
#include "input.h"

#include <math.h>
#include <string.h>

static const char *const route_names[API_ROUTE_COUNT] = {
    [API_ROUTE_NONE] = "other",
    [API_ROUTE_HEALTHZ] = "healthz",
    [API_ROUTE_METRICS] = "metrics",
    [API_ROUTE_PLAYS] = "plays_post",
    [API_ROUTE_PLAY] = "plays_delete",
    [API_ROUTE_ACCOUNT] = "accounts_get",
    [API_ROUTE_ACCOUNT_LIMITS] = "limits_put",
    [API_ROUTE_TOKENS] = "tokens_post",
    [API_ROUTE_WEB] = "web",
    [API_ROUTE_DEMO] = "demo",
    [API_ROUTE_JWKS] = "jwks",
};

const char *api_route_name(enum api_route r)
{
    return r < API_ROUTE_COUNT ? route_names[r] : "other";
}

const char *api_route_method(enum api_route r)
{
    switch (r) {
    case API_ROUTE_PLAYS:
    case API_ROUTE_TOKENS:
        return "POST";
    case API_ROUTE_PLAY:
        return "DELETE";
    case API_ROUTE_ACCOUNT_LIMITS:
        return "PUT";
    default:
        return "GET";
    }
}

static const char *const bad_names[API_BAD_COUNT] = {
    [API_BAD_NONE] = "none",
    [API_BAD_NOT_FOUND] = "not_found",
    [API_BAD_METHOD] = "method_not_allowed",
    [API_BAD_UNAUTHORIZED] = "unauthorized",
    [API_BAD_MEDIA_TYPE] = "unsupported_media_type",
    [API_BAD_TOO_LARGE] = "payload_too_large",
    [API_BAD_MALFORMED_JSON] = "malformed_json",
    [API_BAD_NUL] = "nul_in_string",
    [API_BAD_UNKNOWN_FIELD] = "unknown_field",
    [API_BAD_MISSING_FIELD] = "missing_field",
    [API_BAD_INVALID_FIELD] = "invalid_field",
    [API_BAD_RATE_LIMITED] = "rate_limited",
};

const char *api_bad_name(enum api_bad b)
{
    return b < API_BAD_COUNT ? bad_names[b] : "?";
}

int api_bad_status(enum api_bad b)
{
    switch (b) {
    case API_BAD_NONE:
        return 200;
    case API_BAD_NOT_FOUND:
        return 404;
    case API_BAD_METHOD:
        return 405;
    case API_BAD_UNAUTHORIZED:
        return 401;
    case API_BAD_MEDIA_TYPE:
        return 415;
    case API_BAD_TOO_LARGE:
        return 413;
    case API_BAD_RATE_LIMITED:
        return 429;
    default:
        return 400;
    }
}

/* Copies the next path segment (up to '/' or the end) into out when it is an id; *rest
 * points after it. */
static bool segment(const char **rest, char out[HB_ID_MAX + 1])
{
    const char *s = *rest;
    size_t n = strcspn(s, "/");
    *rest = s + n;
    if (!hb_id_valid(s, n))
        return false;
    memcpy(out, s, n);
    out[n] = '\0';
    return true;
}

enum api_bad api_path_parse(const char *path, struct api_path *out, const char **field)
{
    memset(out, 0, sizeof(*out));
    *field = NULL;
    static const struct {
        const char *path;
        enum api_route route;
    } fixed[] = {{"/healthz", API_ROUTE_HEALTHZ},
                 {"/metrics", API_ROUTE_METRICS},
                 {"/v1/plays", API_ROUTE_PLAYS},
                 {"/v1/tokens", API_ROUTE_TOKENS},
                 {"/.well-known/jwks.json", API_ROUTE_JWKS}};
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (strcmp(path, fixed[i].path) == 0) {
            out->route = fixed[i].route;
            return API_BAD_NONE;
        }
    }
    const char *rest;
    if (strncmp(path, "/v1/plays/", 10) == 0) {
        rest = path + 10;
        out->route = API_ROUTE_PLAY;
        /* two segments, nothing after */
        const char *slash = strchr(rest, '/');
        if (slash == NULL || strchr(slash + 1, '/') != NULL)
            return out->route = API_ROUTE_NONE, API_BAD_NOT_FOUND;
        if (!segment(&rest, out->account))
            return *field = "account", API_BAD_INVALID_FIELD;
        rest++;
        if (!segment(&rest, out->device))
            return *field = "device", API_BAD_INVALID_FIELD;
        return API_BAD_NONE;
    }
    if (strncmp(path, "/v1/accounts/", 13) == 0) {
        rest = path + 13;
        const char *slash = strchr(rest, '/');
        if (slash == NULL)
            out->route = API_ROUTE_ACCOUNT;
        else if (strcmp(slash, "/limits") == 0)
            out->route = API_ROUTE_ACCOUNT_LIMITS;
        else
            return API_BAD_NOT_FOUND;
        if (!segment(&rest, out->account))
            return *field = "account", API_BAD_INVALID_FIELD;
        return API_BAD_NONE;
    }
    return API_BAD_NOT_FOUND;
}

static bool hex4_is_zero(const char *s, size_t left)
{
    return left >= 4 && memcmp(s, "0000", 4) == 0;
}

/* Finds a \u0000 escape inside a string; *field is the last member name seen before it. Only
 * well-formed text matters: malformed JSON is refused by the parser anyway. */
static bool has_nul_escape(const char *body, size_t len, char *name, size_t namelen,
                           const char **field)
{
    const char *last_key = NULL;
    size_t last_key_len = 0;
    for (size_t i = 0; i < len; i++) {
        if (body[i] != '"')
            continue;
        size_t start = ++i;
        bool nul = false;
        for (; i < len && body[i] != '"'; i++) {
            if (body[i] != '\\')
                continue;
            i++;
            if (i < len && body[i] == 'u' && hex4_is_zero(body + i + 1, len - i - 1))
                nul = true;
        }
        size_t end = i;
        size_t j = end + 1;
        while (j < len && strchr(" \t\r\n", body[j]) != NULL)
            j++;
        bool is_key = j < len && body[j] == ':';
        if (nul) {
            const char *k = is_key ? NULL : last_key;
            size_t kl = is_key ? 0 : last_key_len;
            if (k != NULL && kl < namelen && hb_id_valid(k, kl)) {
                memcpy(name, k, kl);
                name[kl] = '\0';
                *field = name;
            }
            return true;
        }
        if (is_key) {
            last_key = body + start;
            last_key_len = end - start;
        }
    }
    return false;
}

enum api_bad api_json_parse(const char *body, size_t len, cJSON **out, const char **field)
{
    static _Thread_local char name[HB_ID_MAX + 1];
    *out = NULL;
    *field = NULL;
    if (memchr(body, '\0', len) != NULL)
        return API_BAD_MALFORMED_JSON;
    if (has_nul_escape(body, len, name, sizeof(name), field))
        return API_BAD_NUL;
    /* body[len] is a NUL: cJSON's "null terminated" check wants to see it inside the length. */
    cJSON *json = cJSON_ParseWithLengthOpts(body, len + 1, NULL, true);
    if (json == NULL)
        return API_BAD_MALFORMED_JSON;
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        return API_BAD_MALFORMED_JSON;
    }
    *out = json;
    return API_BAD_NONE;
}

enum api_bad api_json_only(const cJSON *obj, const char *const *allowed, const char **field)
{
    const cJSON *item;
    cJSON_ArrayForEach(item, obj)
    {
        bool known = false;
        for (size_t i = 0; allowed[i] != NULL && !known; i++)
            known = strcmp(item->string, allowed[i]) == 0;
        if (!known) {
            *field = item->string;
            return API_BAD_UNKNOWN_FIELD;
        }
    }
    return API_BAD_NONE;
}

enum api_bad api_json_id(const cJSON *obj, const char *name, bool required, char *out,
                         const char **field)
{
    out[0] = '\0';
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (v == NULL || cJSON_IsNull(v)) {
        if (!required)
            return API_BAD_NONE;
        *field = name;
        return API_BAD_MISSING_FIELD;
    }
    if (!cJSON_IsString(v) || !hb_id_valid(v->valuestring, strlen(v->valuestring))) {
        *field = name;
        return API_BAD_INVALID_FIELD;
    }
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return API_BAD_NONE;
}

enum api_bad api_json_long(const cJSON *obj, const char *name, bool required, long min, long max,
                           long dflt, long *out, const char **field)
{
    *out = dflt;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    if (v == NULL || cJSON_IsNull(v)) {
        if (!required)
            return API_BAD_NONE;
        *field = name;
        return API_BAD_MISSING_FIELD;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) ||
        floor(v->valuedouble) != v->valuedouble || v->valuedouble < (double)min ||
        v->valuedouble > (double)max) {
        *field = name;
        return API_BAD_INVALID_FIELD;
    }
    *out = (long)v->valuedouble;
    return API_BAD_NONE;
}
