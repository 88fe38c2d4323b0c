/* A run spread over worker processes: the parent forks one worker per slice of the plan's
 * devices (each a simulator with its own epoll loop and descriptor budget), shows their
 * progress as one, and merges their truths. The connect rate is shared out, so the ramp is
 * the same whatever the number of workers. */
#ifndef HB_SIM_FLEET_H
#define HB_SIM_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "truth.h"

struct fleet_config {
    /* What every worker shares (plan, brokers, sources, credentials, payload, timing).
     * first_device, n_devices, connect_rate, seed, signals and the report callback are set
     * per worker. */
    struct sim_config sim;
    unsigned workers;    /* >= 1 */
    double connect_rate; /* all workers together */
    uint64_t seed;       /* workers' seeds are drawn from it */
    double progress_s;   /* seconds between progress lines; <= 0: none */
    int64_t hold_ms;     /* > 0: the run ends this long after the last device of all
                            connected (--hold); the workers are told the end then */
    bool terminal;       /* rewrite one line on stderr instead of printing lines */
};

struct fleet_result {
    struct sim_stats total;    /* the workers' final counters, summed (see progress_sum) */
    size_t connected_peak;     /* most devices connected at once, over the workers' reports */
    uint64_t rss_kib;          /* parent's and workers' resident memory at that peak */
    uint64_t pss_kib;          /* the same as proportional set size (shared pages once) */
    uint32_t fds;              /* workers' descriptors when each had connected all its
                                  devices (0: some never did) */
    uint64_t published_at_all; /* heartbeats published when every device had connected */
    unsigned workers_failed;   /* workers that died or ended without their final report */
};

/* Runs the fleet from start_ms to the end of the run (cfg->sim.duration_ms) or a signal in
 * signals (blocked by the caller; SIGINT/SIGTERM end the run gracefully, a second one stops
 * waiting for devices). Every worker's truth is merged into truth (the caller's, for the
 * whole plan). Fills *out. Returns 0 when every worker finished and reported, -1 otherwise
 * (reported; the truth is then incomplete). Call with stdio flushed: it forks. */
int fleet_run(const struct fleet_config *cfg, const sigset_t *signals, int64_t start_ms,
              struct truth *truth, struct fleet_result *out);

#endif
