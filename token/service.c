/* hb-tokend's request handling on libmicrohttpd. Everything that can be refused from the
 * headers alone (path, method, API key, content type, declared length) is refused before any
 * body is read; a body is buffered up to SERVICE_BODY_MAX and then validated field by field.
 * The access log names method, path, status and account, never the API key or a token. */
#include "service.h"

#include "ids.h"
#include "interval.h"
#include "log.h"
#include "mint.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define CONNECTION_TIMEOUT_S 10
#define LOG_FIELD_MAX 80

/* One request's state, from its first callback to its completion. */
struct request {
    char method[16];
    char path[LOG_FIELD_MAX + 1];
    char account[HB_ID_MAX + 1];
    int status;
    long retry_after_s; /* with a 429 */
    bool too_large;
    size_t len;
    char body[SERVICE_BODY_MAX + 1];
};

/* Copies s for the log: at most max bytes, anything outside a safe set replaced by '?', so
 * the network cannot forge log lines. */
static void log_copy(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < outlen; i++) {
        char c = s[i];
        bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("/._-:~", c) != NULL;
        out[i] = safe ? c : '?';
    }
    out[i] = '\0';
}

static enum MHD_Result respond(struct MHD_Connection *c, struct request *r, int status, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        text = strdup("{\"error\":\"internal\"}");
        if (text == NULL)
            return MHD_NO;
    }
    size_t len = strlen(text);
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_COPY);
    /* The text may hold a token: wipe it rather than leave it in freed memory. */
    memset(text, 0, len);
    cJSON_free(text);
    if (resp == NULL)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == MHD_HTTP_TOO_MANY_REQUESTS && r->retry_after_s > 0) {
        char seconds[24];
        snprintf(seconds, sizeof(seconds), "%ld", r->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                strcmp(r->path, "/healthz") == 0 ? "GET, HEAD" : "POST");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret == MHD_YES)
        r->status = status;
    return ret;
}

static enum MHD_Result respond_error(struct MHD_Connection *c, struct request *r, int status,
                                     const char *error, const char *reason)
{
    cJSON *body = cJSON_CreateObject();
    if (body != NULL) {
        cJSON_AddStringToObject(body, "error", error);
        if (reason != NULL)
            cJSON_AddStringToObject(body, "reason", reason);
    }
    return respond(c, r, status, body);
}

/* The index of the API key the request presents, or -1. */
static int api_key_of(const struct service *s, struct MHD_Connection *c)
{
    const char *auth =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (auth == NULL || strncasecmp(auth, "Bearer ", 7) != 0)
        return -1;
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    return api_keys_find(s->cfg.api_keys, key, strlen(key));
}

/* Takes one token from the key's bucket. False with the seconds until one is there. */
static bool bucket_take(struct service *s, int key, long *retry_after_s)
{
    struct hb_bucket *b = &s->buckets[key];
    int64_t now = hb_monotonic_ms();
    if (hb_bucket_take(b, 1, now))
        return true;
    *retry_after_s = (long)((hb_bucket_wait_ms(b, 1, now) + 999) / 1000);
    if (*retry_after_s < 1)
        *retry_after_s = 1;
    return false;
}

static bool json_content_type(struct MHD_Connection *c)
{
    const char *type =
        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (type == NULL || strncasecmp(type, "application/json", 16) != 0)
        return false;
    return type[16] == '\0' || type[16] == ';' || type[16] == ' ';
}

/* The declared body length, or -1 when none was declared (chunked). */
static long long declared_length(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL)
        return -1;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return end != v && *end == '\0' && n >= 0 ? n : -1;
}

/* First call of a request: refuses what the headers already show. Returns MHD_YES with no
 * response queued when the body should be read. */
static enum MHD_Result route(struct service *s, struct MHD_Connection *c, struct request *r,
                             const char *method)
{
    if (strcmp(r->path, "/healthz") == 0) {
        if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
            return respond_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL);
        cJSON *body = cJSON_CreateObject();
        if (body != NULL)
            cJSON_AddStringToObject(body, "status", "ok");
        return respond(c, r, MHD_HTTP_OK, body);
    }
    if (strcmp(r->path, "/v1/tokens") != 0)
        return respond_error(c, r, MHD_HTTP_NOT_FOUND, "not_found", NULL);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return respond_error(c, r, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", NULL);
    int key = api_key_of(s, c);
    if (key < 0)
        return respond_error(c, r, MHD_HTTP_UNAUTHORIZED, "unauthorized", NULL);
    long retry_after;
    if (!bucket_take(s, key, &retry_after)) {
        r->retry_after_s = retry_after;
        return respond_error(c, r, MHD_HTTP_TOO_MANY_REQUESTS, "rate_limited",
                             "this API key asks for tokens faster than --rate-limit allows");
    }
    if (!json_content_type(c))
        return respond_error(c, r, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type",
                             "Content-Type must be application/json");
    if (declared_length(c) > SERVICE_BODY_MAX)
        return respond_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "the body must be at most 4096 bytes");
    return MHD_YES;
}

/* Validates a request body; fills the request fields or returns a reason. */
static const char *parse_body(const struct service *s, const cJSON *body, const char **account,
                              const char **device, long *ttl, char *reason, size_t reasonlen)
{
    if (!cJSON_IsObject(body))
        return "the body must be a JSON object";
    const cJSON *item;
    cJSON_ArrayForEach(item, body)
    {
        if (strcmp(item->string, "account") != 0 && strcmp(item->string, "device") != 0 &&
            strcmp(item->string, "ttl") != 0) {
            char name[40];
            log_copy(name, sizeof(name), item->string);
            snprintf(reason, reasonlen, "unknown field '%s'", name);
            return reason;
        }
    }
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "account");
    if (a == NULL)
        return "account is required";
    if (!cJSON_IsString(a) || !hb_id_valid(a->valuestring, strlen(a->valuestring)))
        return "account must be 1-64 bytes of A-Z a-z 0-9 . _ - :";
    *account = a->valuestring;
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(body, "device");
    *device = NULL;
    if (d != NULL && !cJSON_IsNull(d)) {
        if (!cJSON_IsString(d) || !hb_id_valid(d->valuestring, strlen(d->valuestring)))
            return "device must be 1-64 bytes of A-Z a-z 0-9 . _ - :";
        *device = d->valuestring;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "ttl");
    *ttl = s->cfg.default_ttl;
    if (t != NULL && !cJSON_IsNull(t)) {
        if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) || t->valuedouble < 1 ||
            t->valuedouble > (double)s->cfg.max_ttl || floor(t->valuedouble) != t->valuedouble) {
            snprintf(reason, reasonlen, "ttl must be whole seconds in 1..%ld", s->cfg.max_ttl);
            return reason;
        }
        *ttl = (long)t->valuedouble;
    }
    return NULL;
}

static enum MHD_Result mint(struct service *s, struct MHD_Connection *c, struct request *r)
{
    if (r->too_large)
        return respond_error(c, r, MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                             "the body must be at most 4096 bytes");
    r->body[r->len] = '\0';
    cJSON *body = strlen(r->body) == r->len ? cJSON_ParseWithOpts(r->body, NULL, true) : NULL;
    if (body == NULL)
        return respond_error(c, r, MHD_HTTP_BAD_REQUEST, "bad_request", "the body is not JSON");
    const char *account = NULL, *device = NULL;
    long ttl = 0;
    char why[160];
    const char *reason = parse_body(s, body, &account, &device, &ttl, why, sizeof(why));
    if (account != NULL) /* valid, so safe to log, also when another field is refused */
        snprintf(r->account, sizeof(r->account), "%s", account);
    if (reason != NULL) {
        cJSON_Delete(body);
        return respond_error(c, r, MHD_HTTP_BAD_REQUEST, "bad_request", reason);
    }
    int64_t now = hb_now_ms() / 1000;
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE,
        .account = account,
        .device = device,
        .topic_prefix = s->cfg.topic_prefix,
        .now_s = now,
        .ttl_s = ttl,
    };
    char err[256];
    char *token = hb_token_mint(s->cfg.key, &req, err, sizeof(err));
    cJSON_Delete(body);
    if (token == NULL) {
        HB_ERROR("cannot mint a token for account %s: %s", r->account, err);
        return respond_error(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", NULL);
    }
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddStringToObject(out, "token", token);
        cJSON_AddNumberToObject(out, "expires_at", (double)(now + ttl));
        cJSON_AddStringToObject(out, "kid", s->cfg.key->kid);
    }
    memset(token, 0, strlen(token));
    free(token);
    return respond(c, r, MHD_HTTP_OK, out);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct service *s = cls;
    struct request *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            HB_ERROR("out of memory for a request");
            return MHD_NO;
        }
        *con_cls = r;
        log_copy(r->method, sizeof(r->method), method);
        log_copy(r->path, sizeof(r->path), url);
        /* Compare the real path, not the log copy: a truncated copy could match a route. */
        if (strlen(url) > LOG_FIELD_MAX)
            return respond_error(c, r, MHD_HTTP_NOT_FOUND, "not_found", NULL);
        return route(s, c, r, method);
    }
    if (*upload_data_size > 0) {
        if (!r->too_large && *upload_data_size <= SERVICE_BODY_MAX - r->len) {
            memcpy(r->body + r->len, upload_data, *upload_data_size);
            r->len += *upload_data_size;
        } else {
            r->too_large = true; /* keep reading (and dropping) until the end, then 413 */
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return mint(s, c, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct request *r = *con_cls;
    if (r == NULL)
        return;
    HB_INFO("access method=%s path=%s status=%d account=%s", r->method, r->path, r->status,
            r->account[0] ? r->account : "-");
    /* The body may carry nothing secret, but wipe it anyway: it is request data. */
    memset(r, 0, sizeof(*r));
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    HB_WARN("libmicrohttpd: %s", line);
}

bool service_start(struct service *s, const struct service_config *cfg, const struct sockaddr *addr)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    for (size_t i = 0; i < API_KEYS_MAX; i++)
        hb_bucket_init(&s->buckets[i], cfg->rate_per_s, cfg->burst);
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    if (addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first, so that no message of option parsing bypasses it. */
    s->daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, s, MHD_OPTION_EXTERNAL_LOGGER,
                                 mhd_log, NULL, MHD_OPTION_SOCK_ADDR, addr,
                                 MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
                                 MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT_S,
                                 MHD_OPTION_NOTIFY_COMPLETED, completed, s, MHD_OPTION_END);
    return s->daemon != NULL;
}

unsigned service_port(const struct service *s)
{
    const union MHD_DaemonInfo *info =
        s->daemon ? MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return info ? info->port : 0;
}

void service_stop(struct service *s)
{
    if (s->daemon != NULL)
        MHD_stop_daemon(s->daemon);
    s->daemon = NULL;
}
