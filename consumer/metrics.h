/* hb-consumer's HTTP endpoint for operators: GET /metrics (Prometheus text format) and
 * GET /healthz (200 when every broker is subscribed and Redis is up, else 503 with why). */
#ifndef HB_METRICS_H
#define HB_METRICS_H

#include <stdbool.h>
#include <sys/socket.h>

#include "live.h"
#include "queue.h"
#include "stats.h"
#include "subscriber.h"

struct metrics_sources {
    struct stats *stats;
    struct queue *queue;
    struct subscriber *subscriber;
    struct live *live; /* --live, or NULL */
};

struct metrics {
    struct metrics_sources src;
    struct hb_httpd *httpd;
};

/* Starts serving on addr on the HTTP glue's threads. Everything in src is borrowed and read
 * only (atomics), so a scrape never blocks paho's thread or the writer. False (after
 * reporting) when it cannot listen. */
bool metrics_start(struct metrics *m, const struct metrics_sources *src,
                   const struct sockaddr *addr);

/* The port listened on (useful with port 0), or 0. */
unsigned metrics_port(const struct metrics *m);

/* Stops serving and waits for the server thread. A metrics that never started is a no-op. */
void metrics_stop(struct metrics *m);

#endif
