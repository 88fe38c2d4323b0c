/* hb-api's shared state and the endpoints' entry points. One struct api, set up by main and
 * read-only afterwards (counters and the pool have their own synchronisation), is passed to
 * every endpoint on whichever server thread runs it. */
#ifndef HB_API_API_H
#define HB_API_API_H

#include "../token/apikeys.h"
#include "control.h"
#include "httpd.h"
#include "input.h"
#include "keyring.h"
#include "metrics.h"
#include "mint.h"
#include "plays.h"
#include "pool.h"
#include "token.h"
#include "tokens.h"

#include <signal.h>
#include <stdbool.h>

#define API_BODY_MAX 4096
#define API_TOKEN_MAX_TTL 86400
#define API_LIVE_PREFIX "live/media" /* live viewer counts: retained on live/media/<media> */

struct api_settings {
    const char *topic_prefix, *control_prefix;
    int interval_s;
    long heartbeat_s;
    long token_ttl;
    bool fail_open;
    bool tokens_only; /* hb-tokend: /healthz and POST /v1/tokens, nothing else */
    bool reasons;     /* hb-tokend's refusals: {"error", "reason"} instead of {"error", "field"} */
    struct hb_plays_config plays;
    const char *web_root;      /* --web-root, or NULL: no pages */
    const char *demo_mqtt_url; /* told to the demo pages */
    bool demo;                 /* --demo-backend */
    bool dashboard;            /* --dashboard or --demo-backend: /dashboard is served */
};

struct api {
    struct api_settings set;
    const struct hb_key *key;
    const struct api_keys *api_keys;
    struct api_pool pool;
    struct hb_control *control; /* NULL without --broker */
    struct api_metrics metrics;
    struct api_tokens tokens; /* POST /v1/tokens: lifetimes and the per-key buckets */
    const char *jwks;         /* GET /.well-known/jwks.json, built at startup (api/jwks.h) */
    size_t jwks_len;
};

/* Loads the signing key (it must be able to sign) and the API keys; false after reporting,
 * with nothing left to finish. */
bool api_keys_setup(struct hb_key *key, struct api_keys *api_keys, const char *key_file,
                    const char *kid, const char *api_key_file);

/* Blocks SIGINT and SIGTERM in this thread and the ones it starts (main sigwaits for them) and
 * ignores SIGPIPE. False after reporting. */
bool api_block_signals(sigset_t *stop);

/* Serves a on addr with api_handle (0 connections or threads: httpd's defaults). NULL after
 * reporting "cannot listen on <listen>". */
struct hb_httpd *api_serve(struct api *a, const char *listen, const struct sockaddr *addr,
                           unsigned max_connections, unsigned threads);

/* The httpd handler: routes, authenticates, counts, and calls the endpoints below. */
void api_handle(void *ud, struct hb_httpd_request *req);

/* Refuses a request for its input: counts the reason and replies with its status, as
 * {"error", "field"} (hb-api) or {"error", "reason"} (hb-tokend, set.reasons). */
void api_refuse(struct api *a, struct hb_httpd_request *req, enum api_bad bad, const char *field);

/* A Redis failure: counted, 503 {"error":"redis_unavailable"}. */
void api_unavailable(struct api *a, struct hb_httpd_request *req, const char *why);

/* Parses the JSON body of req after checking its content type and size; NULL after refusing
 * (counted). The caller deletes the tree. */
cJSON *api_request_json(struct api *a, struct hb_httpd_request *req);

/* Mints a device token for account/device (device may be NULL) with ttl, allowed its control
 * topic when a control prefix is set and device is not NULL; with a media (may be NULL or ""),
 * the token may also subscribe to API_LIVE_PREFIX/<media>. NULL after logging. */
char *api_mint_device(struct api *a, const char *account, const char *device, const char *media,
                      long ttl, int64_t *expires_at);

/* Publishes a stop when a broker is configured (else counted as nothing to do). */
void api_stop(struct api *a, const char *account, const char *device, const char *reason);

/* The active devices as [{"device","since","last_seen","group","media"}] (seconds; null for
 * an absent group or media). NULL when out of memory. */
cJSON *api_active_json(const struct hb_admission *ad);

/* Endpoints: each queues exactly one reply. path holds the ids the route named. */
void api_plays_post(struct api *a, struct hb_httpd_request *req, cJSON *body);
void api_play_delete(struct api *a, struct hb_httpd_request *req, const struct api_path *path);
void api_account_get(struct api *a, struct hb_httpd_request *req, const struct api_path *path);
void api_limits_put(struct api *a, struct hb_httpd_request *req, const struct api_path *path,
                    cJSON *body);
void api_tokens_post(struct api *a, struct hb_httpd_request *req, cJSON *body);
void api_jwks_get(struct api *a, struct hb_httpd_request *req);

/* web.c: false with a reason when root holds no device page (public/index.html); warns when
 * mqtt.js is not installed (node_modules/mqtt/dist/mqtt.min.js). */
bool api_web_check(const char *root, char *err, size_t errlen);
/* web.c: a GET or HEAD of a page or static file under --web-root; 404 for anything else. */
void api_web_get(struct api *a, struct hb_httpd_request *req);
/* dashboard.c: GET /dashboard/data, the aggregates of common/dash.h as JSON (set.dashboard). */
void api_dashboard_data(struct api *a, struct hb_httpd_request *req);
/* demo.c: /demo/... (only with --demo-backend): the page's stand-in backend. */
void api_demo_handle(struct api *a, struct hb_httpd_request *req);

#endif
