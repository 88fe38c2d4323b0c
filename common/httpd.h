/* The HTTP glue of the programs that serve JSON (hb-api): libmicrohttpd on a small pool of
 * threads with epoll, a generous connection limit and an idle timeout, so a few dozen idle or
 * slow connections never keep other callers waiting. A request reaches the handler once, with
 * its whole body (at most body_max bytes; a larger one is drained and flagged, never kept). */
#ifndef HB_HTTPD_H
#define HB_HTTPD_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HB_HTTPD_CONNECTIONS_DEFAULT 1024
#define HB_HTTPD_TIMEOUT_DEFAULT 10 /* seconds a connection may stay idle */
#define HB_HTTPD_THREADS_DEFAULT 4

struct hb_httpd_request {
    const char *method;
    const char *path; /* the URL path as received (no query string) */
    const char *body; /* NUL-terminated copy of the body; len bytes (may hold NULs) */
    size_t len;
    bool too_large;       /* the body was over body_max: body is empty */
    int status;           /* the status queued, 0 until then */
    char log_account[65]; /* an id the handler may set, for the access log */
    const char *allow;    /* the handler may set: the Allow header of a 405 */
    long retry_after_s;   /* the handler may set: the Retry-After header of a 429 (> 0) */
    const char *cache;    /* the handler may set: Cache-Control of any reply (NULL: no-store) */
    struct MHD_Connection *conn;
};

/* Called once per request with the whole body, on one of the server's threads (several at
 * once). It must queue exactly one reply with hb_httpd_reply_*; when it queues none the client
 * gets a 500. */
typedef void (*hb_httpd_handler)(void *ud, struct hb_httpd_request *req);

struct hb_httpd_config {
    unsigned max_connections; /* 0: HB_HTTPD_CONNECTIONS_DEFAULT */
    unsigned timeout_s;       /* 0: HB_HTTPD_TIMEOUT_DEFAULT */
    unsigned threads;         /* 0: HB_HTTPD_THREADS_DEFAULT */
    size_t body_max;          /* largest body accepted, bytes */
    hb_httpd_handler handler;
    void *ud;
    bool access_log; /* one line per request: method, path, status, account */
};

struct hb_httpd;

/* Listens on addr and serves. NULL after reporting why. cfg is copied. */
struct hb_httpd *hb_httpd_start(const struct hb_httpd_config *cfg, const struct sockaddr *addr);

/* The port listened on, or 0. */
unsigned hb_httpd_port(const struct hb_httpd *h);

/* Closes the listener and every connection, waits for the threads. NULL is a no-op. */
void hb_httpd_stop(struct hb_httpd *h);

/* A request header, or NULL. */
const char *hb_httpd_header(const struct hb_httpd_request *req, const char *name);

/* Queues body (owned, deleted here; NULL sends 500 "internal") as application/json with
 * Cache-Control: no-store; 401 adds WWW-Authenticate: Bearer, 405 the request's allow and 429
 * its retry_after_s. The serialized text is wiped (it may hold a token). True when queued. */
bool hb_httpd_reply_json(struct hb_httpd_request *req, int status, cJSON *body);

/* {"error": error, "field": field} (field omitted when NULL). */
bool hb_httpd_reply_error(struct hb_httpd_request *req, int status, const char *error,
                          const char *field);

/* text[0..len) with content_type; text is copied. */
bool hb_httpd_reply_text(struct hb_httpd_request *req, int status, const char *content_type,
                         const char *text, size_t len);

#endif
