/* libmicrohttpd glue: one internal polling thread per pool slot (epoll), each connection's body
 * buffered up to a cap, then one handler call. The fix for idle connections stalling others is
 * the pool plus a connection limit far above "a few dozen" with an idle timeout: libmicrohttpd
 * stops accepting at its limit, so a small limit let idle sockets lock everyone out. */
#include "httpd.h"

#include "log.h"

#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PATH_MAX_LEN 256

struct hb_httpd {
    struct hb_httpd_config cfg;
    struct MHD_Daemon *daemon;
};

struct request {
    struct hb_httpd_request pub;
    char method[16];
    char path[PATH_MAX_LEN + 1];
    bool bad_path;
    size_t cap, len;
    char *body;
};

const char *hb_httpd_header(const struct hb_httpd_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

static bool queue(struct hb_httpd_request *req, int status, struct MHD_Response *resp,
                  const char *content_type)
{
    if (resp == NULL)
        return false;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            req->cache ? req->cache : "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED && req->allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (status == MHD_HTTP_TOO_MANY_REQUESTS && req->retry_after_s > 0) {
        char seconds[24];
        snprintf(seconds, sizeof(seconds), "%ld", req->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, seconds);
    }
    enum MHD_Result ret = MHD_queue_response(req->conn, (unsigned)status, resp);
    MHD_destroy_response(resp);
    if (ret != MHD_YES)
        return false;
    req->status = status;
    return true;
}

bool hb_httpd_reply_text(struct hb_httpd_request *req, int status, const char *content_type,
                         const char *text, size_t len)
{
    if (req->status != 0)
        return false;
    return queue(req, status,
                 MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY),
                 content_type);
}

bool hb_httpd_reply_json(struct hb_httpd_request *req, int status, cJSON *body)
{
    char *text = body ? cJSON_PrintUnformatted(body) : NULL;
    cJSON_Delete(body);
    if (text == NULL) {
        static const char internal[] = "{\"error\":\"internal\"}";
        return hb_httpd_reply_text(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/json",
                                   internal, sizeof(internal) - 1);
    }
    size_t len = strlen(text);
    bool ok = hb_httpd_reply_text(req, status, "application/json", text, len);
    memset(text, 0, len);
    cJSON_free(text);
    return ok;
}

bool hb_httpd_reply_error(struct hb_httpd_request *req, int status, const char *error,
                          const char *field)
{
    cJSON *body = cJSON_CreateObject();
    if (body != NULL) {
        cJSON_AddStringToObject(body, "error", error);
        if (field != NULL)
            cJSON_AddStringToObject(body, "field", field);
    }
    return hb_httpd_reply_json(req, status, body);
}

/* Copies s for the log, anything outside a safe set replaced by '?'. */
static void log_copy(char *out, size_t outlen, const char *s)
{
    size_t i = 0;
    for (; s && s[i] && i + 1 < outlen; i++) {
        char c = s[i];
        bool safe = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("/._-:~{}", c) != NULL;
        out[i] = safe ? c : '?';
    }
    out[i] = '\0';
}

/* The declared body length, or -1. */
static long long declared_length(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (v == NULL)
        return -1;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return end != v && *end == '\0' && n >= 0 ? n : -1;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **con_cls)
{
    struct hb_httpd *h = cls;
    struct request *r = *con_cls;
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
            HB_ERROR("out of memory for a request");
            return MHD_NO;
        }
        *con_cls = r;
        r->pub.conn = c;
        snprintf(r->method, sizeof(r->method), "%s", method);
        r->bad_path = strlen(url) > PATH_MAX_LEN;
        snprintf(r->path, sizeof(r->path), "%s", r->bad_path ? "" : url);
        r->pub.method = r->method;
        r->pub.path = r->path;
        long long declared = declared_length(c);
        if (declared > (long long)h->cfg.body_max)
            r->pub.too_large = true; /* refused by the handler without reading a byte */
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->pub.too_large || n > h->cfg.body_max - r->len) {
            r->pub.too_large = true; /* drain, keep nothing */
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->len + n + 1 < 1024 ? 1024 : r->len + n + 1;
            char *body = realloc(r->body, cap);
            if (body == NULL)
                return MHD_NO;
            r->body = body;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->pub.status != 0)
        return MHD_YES;
    if (r->bad_path)
        return hb_httpd_reply_error(&r->pub, MHD_HTTP_NOT_FOUND, "not_found", "path") ? MHD_YES
                                                                                      : MHD_NO;
    if (r->pub.too_large) {
        r->len = 0;
    }
    r->pub.body = r->body && r->len ? r->body : "";
    if (r->body)
        r->body[r->len] = '\0';
    r->pub.len = r->len;
    h->cfg.handler(h->cfg.ud, &r->pub);
    if (r->pub.status == 0 && !hb_httpd_reply_json(&r->pub, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL))
        return MHD_NO;
    return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    struct hb_httpd *h = cls;
    struct request *r = *con_cls;
    if (r == NULL)
        return;
    if (h->cfg.access_log) {
        char method[16], path[PATH_MAX_LEN + 1];
        log_copy(method, sizeof(method), r->method);
        log_copy(path, sizeof(path), r->path);
        HB_INFO("access method=%s path=%s status=%d account=%s", method, path, r->pub.status,
                r->pub.log_account[0] ? r->pub.log_account : "-");
    }
    if (r->body) {
        memset(r->body, 0, r->cap);
        free(r->body);
    }
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

struct hb_httpd *hb_httpd_start(const struct hb_httpd_config *cfg, const struct sockaddr *addr)
{
    struct hb_httpd *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        HB_ERROR("out of memory");
        return NULL;
    }
    h->cfg = *cfg;
    if (h->cfg.max_connections == 0)
        h->cfg.max_connections = HB_HTTPD_CONNECTIONS_DEFAULT;
    if (h->cfg.timeout_s == 0)
        h->cfg.timeout_s = HB_HTTPD_TIMEOUT_DEFAULT;
    if (h->cfg.threads == 0)
        h->cfg.threads = HB_HTTPD_THREADS_DEFAULT;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
    if (addr->sa_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, handle, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_CONNECTION_LIMIT, h->cfg.max_connections,
        MHD_OPTION_CONNECTION_TIMEOUT, h->cfg.timeout_s, MHD_OPTION_THREAD_POOL_SIZE,
        h->cfg.threads, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024U, MHD_OPTION_NOTIFY_COMPLETED,
        completed, h, MHD_OPTION_END);
    if (h->daemon == NULL) {
        HB_ERROR("libmicrohttpd could not start");
        free(h);
        return NULL;
    }
    return h;
}

unsigned hb_httpd_port(const struct hb_httpd *h)
{
    const union MHD_DaemonInfo *info =
        h && h->daemon ? MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    return info ? info->port : 0;
}

void hb_httpd_stop(struct hb_httpd *h)
{
    if (h == NULL)
        return;
    MHD_stop_daemon(h->daemon);
    free(h);
}
