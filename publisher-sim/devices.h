/* The devices one simulator drives: each device's eight-state machine (idle, queued,
 * connecting, connected, draining, disconnecting, backoff, done), its libmosquitto client and
 * its socket's registration in the loop's epoll set. The loop (sim.c) owns the clock, signals
 * and connect pacing, and calls in here when a device's timer, socket or connect slot is due. */
#ifndef HB_SIM_DEVICES_H
#define HB_SIM_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "rng.h"
#include "sim.h"
#include "timers.h"
#include "truth.h"

struct device; /* private to devices.c */

/* The loop reads running, stats, n_open and queue_len; everything else belongs to devices.c. */
struct devices {
    const struct sim_config *cfg; /* the simulator's; borrowed */
    struct device *dev;           /* [cfg->n_devices] */
    struct timers timers;         /* each device's next action, by index */
    size_t *queue;                /* ring of devices waiting for a connect slot */
    size_t queue_head, queue_len;
    int epfd;            /* the loop's epoll set; borrowed */
    struct rng rng;      /* jitter, guard-band spread and backoff draws */
    struct truth *truth; /* borrowed for the run */
    struct hb_ratelimit log_limit;
    bool running;           /* publishing; false once the run's end began */
    size_t n_open;          /* devices holding a client */
    struct sim_stats stats; /* all counters but interrupted, which is the loop's */
};

/* Prepares cfg->n_devices devices, all done and without a client, whose sockets will go into
 * epfd. cfg and epfd must outlive ds. Returns false (after reporting why) when out of memory;
 * ds is then safe to pass to devices_finish. */
bool devices_init(struct devices *ds, const struct sim_config *cfg, int epfd);

/* Frees every client (its socket leaves the epoll set first) and the devices. */
void devices_finish(struct devices *ds);

/* Starts the run [start_ms, end_ms): every device waits for its window's start. Publishes are
 * recorded in truth (borrowed until the run is over). */
void devices_start(struct devices *ds, int64_t start_ms, int64_t end_ms, struct truth *truth);

/* Acts on every device whose timer is due at now. */
void devices_run_timers(struct devices *ds, int64_t now);

/* The earliest pending device timer; false when none is pending. */
bool devices_next_timer(const struct devices *ds, int64_t *when);

/* Readiness (epoll events) on device id's socket. */
void devices_io(struct devices *ds, size_t id, uint32_t events);

/* Connects the next queued device still waiting, dropping from the queue the ones that
 * stopped. True when a connect was started (it used a connect slot); false when the queue
 * ran empty. */
bool devices_connect_next(struct devices *ds, int64_t now);

/* Keepalive for device id, if it has a connection: PINGREQ when due, and noticing a silent
 * broker. */
void devices_keepalive(struct devices *ds, size_t id);

/* Ends publishing at now: running becomes false, stats.end_ms moves to now if that is
 * earlier, and every device drains its QoS 1 acknowledgements and disconnects (or just stops,
 * if it was not connected). Does nothing once running is false. */
void devices_stop_all(struct devices *ds, int64_t now);

/* Cuts off every device still holding a client (their unacknowledged publishes count as
 * lost). Returns how many there were. */
size_t devices_cut_off(struct devices *ds);

#endif
