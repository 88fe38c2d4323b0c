/* The device simulator's engine: one epoll loop drives one MQTT connection per simulated
 * device (libmosquitto, non-blocking, no library threads), publishes heartbeats on schedule
 * and records each accepted publish in the truth. A run is self-contained, so a later
 * multi-process mode can give each worker process its own slice of the plan. */
#ifndef HB_SIM_SIM_H
#define HB_SIM_SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "options.h"
#include "plan.h"
#include "truth.h"

struct sim_config {
    const struct plan *plan;
    size_t first_device, n_devices; /* this simulator drives plan devices [first, first + n) */
    const struct options_broker *brokers;
    size_t n_brokers; /* devices are spread round-robin by plan index */
    const char *topic_prefix;
    const char *username; /* NULL: each device uses its account id */
    const char *password; /* NULL: none */
    int qos;              /* 0 or 1 */
    double heartbeat_s;
    double jitter;
    int64_t interval_ms;
    int64_t guard_ms; /* schedule_guard_fits(interval_ms, guard_ms) */
    int64_t duration_ms;
    double connect_rate; /* new connections per second */
    int keepalive_s;
    bool progress;           /* a progress line on stderr every second */
    uint64_t seed;           /* for the run's own draws: jitter and backoff */
    const sigset_t *signals; /* already blocked by the caller; end the run early. May be NULL */
};

struct sim_stats {
    size_t devices;
    size_t connected;     /* now */
    size_t connecting;    /* now: waiting for a connect slot or for CONNACK */
    size_t connected_max; /* most connected at once */
    uint64_t published;   /* publishes the library accepted on a connected client */
    uint64_t acked;       /* QoS 1 PUBACKs */
    uint64_t errors;      /* failed connects, dropped connections, failed publishes */
    uint64_t lost;        /* QoS 1 publishes never acknowledged */
    uint64_t skipped;     /* heartbeats not sent because too many were unacknowledged */
    int64_t start_ms;     /* the run's start */
    int64_t end_ms;       /* when publishing stopped: start + duration, or the signal */
    bool interrupted;     /* a signal ended the run */
};

struct sim;

/* Sets up a simulator for cfg (copied; the plan, brokers and strings it points to must
 * outlive the simulator). Nothing connects before sim_run. Raises the soft open-file limit to
 * the hard one and warns when the devices may not fit (each connection holds three file
 * descriptors: its socket and libmosquitto's wake-up socket pair). Returns NULL (after
 * reporting why) on failure. */
struct sim *sim_create(const struct sim_config *cfg);

/* Runs from start_ms (Unix ms, normally now) for the configured duration or until a signal:
 * devices connect at the configured rate, publish, reconnect with backoff when dropped, and
 * at the end wait for outstanding QoS 1 acknowledgements and disconnect cleanly, bounded by a
 * few seconds. Every publish the library accepted is recorded in truth (borrowed) at its send
 * time. Returns 0, or -1 when the loop itself failed (reported). Call once. */
int sim_run(struct sim *s, int64_t start_ms, struct truth *truth);

/* The counters so far (final ones after sim_run returned). */
void sim_get_stats(const struct sim *s, struct sim_stats *out);

/* Disconnects whatever is still connected and frees the simulator; NULL is a no-op. */
void sim_destroy(struct sim *s);

#endif
