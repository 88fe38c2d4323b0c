/* hb-api's request routing: path, method, API key, the key's token bucket (POST /v1/tokens),
 * content type and body are all checked here, in that order, before an endpoint runs; every refusal
 * is counted by reason and every answer by endpoint and status. /healthz, /metrics and the JWKS
 * need no API key. */
#include "api.h"

#include "interval.h"
#include "log.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct hb_ratelimit bad_log = {.burst = 10, .window_ms = 10000};

/* hb-tokend's reply: every refusal of the body's content is "bad_request", with a reason. */
static void reply_reason(struct api *a, struct hb_httpd_request *req, enum api_bad bad,
                         const char *field)
{
    bool content = bad == API_BAD_MALFORMED_JSON || bad == API_BAD_NUL ||
                   bad == API_BAD_UNKNOWN_FIELD || bad == API_BAD_MISSING_FIELD ||
                   bad == API_BAD_INVALID_FIELD;
    char buf[160];
    const char *reason =
        api_tokens_reason(&a->tokens, bad, field, req->body, req->len, buf, sizeof(buf));
    cJSON *body = cJSON_CreateObject();
    if (body != NULL) {
        cJSON_AddStringToObject(body, "error", content ? "bad_request" : api_bad_name(bad));
        if (reason != NULL)
            cJSON_AddStringToObject(body, "reason", reason);
    }
    hb_httpd_reply_json(req, api_bad_status(bad), body);
}

void api_refuse(struct api *a, struct hb_httpd_request *req, enum api_bad bad, const char *field)
{
    atomic_fetch_add(&a->metrics.bad[bad < API_BAD_COUNT ? bad : API_BAD_NONE], 1);
    long suppressed = 0;
    if (hb_ratelimit_allow(&bad_log, &suppressed))
        HB_INFO("refused %s request: %s%s%s (%ld similar suppressed)", req->method,
                api_bad_name(bad), field ? " field=" : "",
                field && hb_id_valid(field, strlen(field)) ? field : (field ? "?" : ""),
                suppressed);
    if (a->set.reasons)
        reply_reason(a, req, bad, field);
    else
        hb_httpd_reply_error(req, api_bad_status(bad), api_bad_name(bad), field);
}

void api_unavailable(struct api *a, struct hb_httpd_request *req, const char *why)
{
    atomic_fetch_add(&a->metrics.redis_errors, 1);
    long suppressed = 0;
    if (hb_ratelimit_allow(&bad_log, &suppressed))
        HB_WARN("redis unavailable: %s", why);
    hb_httpd_reply_error(req, MHD_HTTP_SERVICE_UNAVAILABLE, "redis_unavailable", NULL);
}

char *api_mint_device(struct api *a, const char *account, const char *device, const char *media,
                      long ttl, int64_t *expires_at)
{
    int64_t now = hb_now_ms() / 1000;
    char live[HB_ACL_TOPIC_MAX];
    if (media != NULL && media[0] != '\0')
        snprintf(live, sizeof(live), "%s/%s", API_LIVE_PREFIX, media);
    struct hb_token_request tr = {
        .role = HB_ROLE_DEVICE,
        .account = account,
        .device = device,
        .topic_prefix = a->set.topic_prefix,
        .now_s = now,
        .ttl_s = ttl,
        .control_prefix = device ? a->set.control_prefix : NULL,
        .subscribe_topic = media != NULL && media[0] != '\0' ? live : NULL,
    };
    char err[256];
    char *token = hb_token_mint(a->key, &tr, err, sizeof(err));
    if (token == NULL)
        HB_ERROR("cannot mint a token for account %s: %s", account, err);
    *expires_at = now + ttl;
    return token;
}

void api_stop(struct api *a, const char *account, const char *device, const char *reason)
{
    if (a->control != NULL)
        hb_control_stop(a->control, account, device, reason);
}

static void healthz(struct api *a, struct hb_httpd_request *req)
{
    cJSON *body = cJSON_CreateObject();
    if (body != NULL) {
        cJSON_AddStringToObject(body, "status", "ok");
        if (a->control != NULL)
            cJSON_AddBoolToObject(body, "control_connected", hb_control_connected(a->control));
    }
    hb_httpd_reply_json(req, MHD_HTTP_OK, body);
}

static void metrics(struct api *a, struct hb_httpd_request *req)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (f == NULL) {
        hb_httpd_reply_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    api_metrics_write(f, &a->metrics, a->control ? hb_control_published(a->control) : 0,
                      a->control ? hb_control_failed(a->control) : 0,
                      a->control && hb_control_connected(a->control));
    fclose(f);
    hb_httpd_reply_text(req, MHD_HTTP_OK, "text/plain; version=0.0.4", text, len);
    free(text);
}

/* The index of the API key the request presents, or -1. */
static int api_key_of(struct api *a, struct hb_httpd_request *req)
{
    const char *auth = hb_httpd_header(req, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return -1;
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    return api_keys_find(a->api_keys, key, strlen(key));
}

static bool json_content_type(struct hb_httpd_request *req)
{
    const char *type = hb_httpd_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0)
        return false;
    return type[16] == '\0' || type[16] == ';' || type[16] == ' ';
}

static bool method_is(const struct hb_httpd_request *req, const char *want)
{
    return strcmp(req->method, want) == 0 ||
           (strcmp(want, "GET") == 0 && strcmp(req->method, "HEAD") == 0);
}

/* Everything before the endpoint; returns the parsed body (NULL for bodiless routes) or
 * false after refusing. */
static bool admit_request(struct api *a, struct hb_httpd_request *req, struct api_path *path,
                          cJSON **body)
{
    const char *field = NULL;
    *body = NULL;
    enum api_bad bad = api_path_parse(req->path, path, &field);
    if (a->set.tokens_only && path->route != API_ROUTE_HEALTHZ && path->route != API_ROUTE_TOKENS) {
        path->route = API_ROUTE_NONE;
        bad = API_BAD_NOT_FOUND;
    }
    if (bad == API_BAD_NOT_FOUND) {
        api_refuse(a, req, bad, NULL);
        return false;
    }
    const char *method = api_route_method(path->route);
    if (!method_is(req, method)) {
        req->allow = strcmp(method, "GET") == 0 ? "GET, HEAD" : method;
        api_refuse(a, req, API_BAD_METHOD, NULL);
        return false;
    }
    if (path->route == API_ROUTE_HEALTHZ || path->route == API_ROUTE_METRICS ||
        path->route == API_ROUTE_JWKS)
        return true;
    int key = api_key_of(a, req);
    if (key < 0) {
        api_refuse(a, req, API_BAD_UNAUTHORIZED, NULL);
        return false;
    }
    if (path->route == API_ROUTE_TOKENS && !api_tokens_take(&a->tokens, key, &req->retry_after_s)) {
        api_refuse(a, req, API_BAD_RATE_LIMITED, NULL);
        return false;
    }
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return false;
    }
    snprintf(req->log_account, sizeof(req->log_account), "%s", path->account);
    bool wants_body = path->route == API_ROUTE_PLAYS || path->route == API_ROUTE_TOKENS ||
                      path->route == API_ROUTE_ACCOUNT_LIMITS;
    if (!wants_body)
        return true;
    *body = api_request_json(a, req);
    return *body != NULL;
}

cJSON *api_request_json(struct api *a, struct hb_httpd_request *req)
{
    const char *field = NULL;
    cJSON *body = NULL;
    if (!json_content_type(req)) {
        api_refuse(a, req, API_BAD_MEDIA_TYPE, "Content-Type");
        return NULL;
    }
    if (req->too_large) {
        api_refuse(a, req, API_BAD_TOO_LARGE, "body");
        return NULL;
    }
    enum api_bad bad = api_json_parse(req->body, req->len, &body, &field);
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return NULL;
    }
    return body;
}

/* The routes outside the API, when enabled: the demo backend under /demo/, and pages for any
 * other GET or HEAD that is not an API path. API_ROUTE_NONE: the API's own routing decides. */
static enum api_route page_route(const struct api *a, const struct hb_httpd_request *req)
{
    if (a->set.demo && strncmp(req->path, "/demo/", 6) == 0)
        return API_ROUTE_DEMO;
    if (a->set.web_root == NULL || !method_is(req, "GET") || strncmp(req->path, "/v1/", 4) == 0)
        return API_ROUTE_NONE;
    struct api_path path;
    const char *field = NULL;
    return api_path_parse(req->path, &path, &field) == API_BAD_NOT_FOUND ? API_ROUTE_WEB
                                                                         : API_ROUTE_NONE;
}

void api_handle(void *ud, struct hb_httpd_request *req)
{
    struct api *a = ud;
    enum api_route page = page_route(a, req);
    if (page != API_ROUTE_NONE) {
        if (page == API_ROUTE_DEMO)
            api_demo_handle(a, req);
        else
            api_web_get(a, req);
        api_metrics_request(&a->metrics, page, req->status);
        return;
    }
    struct api_path path;
    cJSON *body = NULL;
    if (admit_request(a, req, &path, &body)) {
        switch (path.route) {
        case API_ROUTE_HEALTHZ:
            healthz(a, req);
            break;
        case API_ROUTE_METRICS:
            metrics(a, req);
            break;
        case API_ROUTE_PLAYS:
            api_plays_post(a, req, body);
            break;
        case API_ROUTE_PLAY:
            api_play_delete(a, req, &path);
            break;
        case API_ROUTE_ACCOUNT:
            api_account_get(a, req, &path);
            break;
        case API_ROUTE_ACCOUNT_LIMITS:
            api_limits_put(a, req, &path, body);
            break;
        case API_ROUTE_TOKENS:
            api_tokens_post(a, req, body);
            break;
        case API_ROUTE_JWKS:
            api_jwks_get(a, req);
            break;
        default:
            api_refuse(a, req, API_BAD_NOT_FOUND, NULL);
        }
    }
    cJSON_Delete(body);
    api_metrics_request(&a->metrics, path.route, req->status);
}
