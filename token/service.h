/* The HTTP side of hb-tokend: POST /v1/tokens mints a device token for a backend service that
 * presents an API key, at most rate_per_s per key (a token bucket; 429 with Retry-After beyond
 * it); GET /healthz answers 200. libmicrohttpd runs it on one internal polling
 * thread with a bounded number of connections. */
#ifndef HB_TOKEN_SERVICE_H
#define HB_TOKEN_SERVICE_H

#include "apikeys.h"
#include "keyring.h"
#include "ratelimit.h"

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define SERVICE_BODY_MAX 4096

struct service_config {
    const struct hb_key *key; /* signs; must can_sign */
    const struct api_keys *api_keys;
    const char *topic_prefix;
    long default_ttl, max_ttl; /* seconds; default_ttl <= max_ttl */
    unsigned max_connections;
    double rate_per_s; /* tokens each API key may mint per second; 0: no limit */
    double burst;      /* and at once, after a quiet spell (>= 1 when rate_per_s > 0) */
};

struct service {
    struct service_config cfg;
    struct MHD_Daemon *daemon;
    /* Touched only on libmicrohttpd's single internal thread. */
    struct hb_bucket buckets[API_KEYS_MAX]; /* one per API key */
};

/* Starts listening on addr and serving on libmicrohttpd's thread. cfg and everything it
 * points to must outlive the service. Returns false after reporting why. */
bool service_start(struct service *s, const struct service_config *cfg,
                   const struct sockaddr *addr);

/* The port actually listened on (useful with port 0), or 0 when unknown. */
unsigned service_port(const struct service *s);

/* Closes the listener and every connection, waits for the service thread. */
void service_stop(struct service *s);

#endif
