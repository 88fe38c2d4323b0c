/* The device simulator's engine: one epoll loop drives one MQTT connection per simulated
 * device (libmosquitto, non-blocking, no library threads), publishes heartbeats on schedule
 * and records each accepted publish in the truth. A run drives one slice of the plan, so each
 * worker process of a fleet runs one of these on its own devices. */
#ifndef HB_SIM_SIM_H
#define HB_SIM_SIM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admission.h"
#include "keyring.h"
#include "mint.h"
#include "options.h"
#include "payload.h"
#include "plan.h"
#include "token.h"
#include "truth.h"

struct sim_stats {
    size_t devices;
    size_t connected;         /* now */
    size_t connecting;        /* now: waiting for a connect slot or for CONNACK */
    size_t connected_max;     /* most connected at once */
    size_t ever_connected;    /* devices that were accepted (CONNACK) at least once */
    uint64_t connects;        /* CONNACKs accepted, reconnects included */
    uint64_t published;       /* publishes the library accepted on a connected client */
    uint64_t acked;           /* QoS 1 PUBACKs */
    uint64_t errors;          /* all of the below, and failed publishes */
    uint64_t connect_failed;  /* connects that failed before CONNACK: TCP errors, timeouts */
    uint64_t refused;         /* CONNACKs refusing the device (bad credentials, server busy) */
    uint64_t dropped;         /* connections lost after CONNACK */
    uint64_t token_errors;    /* tokens that could not be minted */
    uint64_t lost;            /* QoS 1 publishes never acknowledged */
    uint64_t skipped;         /* heartbeats not sent because too many were unacknowledged */
    int64_t start_ms;         /* the run's start */
    int64_t end_ms;           /* when publishing stopped: start + duration, or the signal */
    int64_t all_connected_ms; /* when the last device was accepted for the first time; 0
                                 while some device never was */
    int64_t steady_ms;        /* --hold: when this simulator was told the run's end, the
                                 start of its steady phase; 0: never */
    uint64_t steady_sent;     /* published at steady_ms */
    size_t steady_held;       /* fewest connected at once from steady_ms to the end */
    bool interrupted;         /* a signal ended the run */
};

/* Called from the loop about every report_ms with the counters so far. Returning false ends
 * the run at once, without waiting for devices to disconnect (whoever reads the reports is
 * gone). */
typedef bool (*sim_report_fn)(void *ctx, const struct sim_stats *st);

/* --api: devices play households (see devices.c). */
struct sim_house {
    struct admission_api api;
    const char *control_prefix; /* stops arrive on <prefix>/<account>/<device> */
    double vanish;              /* fraction of admitted devices that end without a stop */
    int plays_fd;               /* the plays truth (playlog.h), or -1 */
};

struct sim_config {
    const struct plan *plan;
    size_t first_device, n_devices; /* this simulator drives plan devices [first, first + n) */
    const struct options_broker *brokers;
    size_t n_brokers; /* devices are spread round-robin by plan index */
    const char (*sources)[OPTIONS_ADDR_MAX];
    size_t n_sources; /* 0: the kernel picks; else bound round-robin by plan index */
    const char *topic_prefix;
    const char *username;     /* NULL: each device uses its account id */
    const char *password;     /* NULL: none (ignored when key is set) */
    const struct hb_key *key; /* non-NULL: each connect mints a device token as the password */
    const char *ca_file;      /* TLS brokers: CA certificates (PEM); NULL: the system's */
    int64_t token_ttl_s;
    const struct payload_template *payload;
    const struct sim_house *house; /* NULL: no --api, devices connect unasked */
    int qos;                       /* 0 or 1 */
    double heartbeat_s;
    double jitter;
    int64_t interval_ms;
    int64_t guard_ms; /* schedule_guard_fits(interval_ms, guard_ms) */
    int64_t duration_ms;
    double connect_rate; /* new connections per second, this simulator alone */
    int keepalive_s;
    uint64_t seed;           /* for the run's own draws: jitter and backoff */
    const sigset_t *signals; /* already blocked by the caller: SIGTERM or SIGINT end the run
                                gracefully, SIGUSR1 also stops waiting for devices. May be
                                NULL */
    sim_report_fn report;    /* may be NULL */
    void *report_ctx;
    int64_t report_ms;
};

struct sim;

/* Sets up a simulator for cfg (copied; the plan, brokers, key, template and strings it points
 * to must outlive the simulator). Nothing connects before sim_run. Returns NULL (after
 * reporting why) on failure. */
struct sim *sim_create(const struct sim_config *cfg);

/* SIGUSR2 sent with sigqueue(), its int the run's end in ms after start_ms, ends the run then
 * (--hold: a fleet's parent sends it once every device of every worker has connected); the
 * steady phase's counters (steady_ms...) start when it arrives. Block it like the others. */
#define SIM_HOLD_SIGNAL SIGUSR2

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
