/* Whether a run fits this machine, decided before anything starts: how many worker processes
 * the open-file limit calls for, and whether the ephemeral ports suffice. Pure arithmetic, so
 * every message telling the user what to change is unit-tested. */
#ifndef HB_SIM_CAPACITY_H
#define HB_SIM_CAPACITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Descriptors a worker keeps for itself (stdio, epoll, signalfd, its pipe, libraries). */
#define CAPACITY_RESERVED_FDS 64

struct capacity_input {
    size_t devices;
    unsigned workers;            /* requested; 0 = choose */
    unsigned workers_max;        /* most worker processes allowed */
    uint64_t fd_limit;           /* the soft open-file limit workers get (after raising) */
    uint64_t fd_hard;            /* the hard limit, for the advice */
    unsigned fds_per_connection; /* 1, or 3 with libmosquitto's socket pair */
    size_t n_brokers;            /* broker addresses, devices spread round-robin */
    size_t n_sources;            /* bound source addresses; 0: the kernel picks */
    unsigned ports;              /* ephemeral ports (ip_local_port_range); 0: unknown */
};

struct capacity_plan {
    unsigned workers;
    size_t per_worker;     /* most devices in one worker */
    size_t per_worker_max; /* most the open-file limit lets one worker hold */
    size_t per_port_pool;  /* most connections drawing on one pool of ephemeral ports */
};

/* Plans the workers. Returns false, with what to change in problem, when the devices cannot
 * fit: requested workers that would exceed the open-file limit, or more devices than
 * workers_max workers can hold. */
bool capacity_plan(const struct capacity_input *in, struct capacity_plan *out, char *problem,
                   size_t len);

/* Checks the ephemeral ports for a plan. Without source addresses each (source, broker
 * address) pair has its own ports, so the pool is per broker; with bound source addresses
 * the kernel picks a port at bind time, so each address's ports are shared by all brokers.
 * Returns false, with what to change in problem, when some pool would hold more than half its
 * ports: Linux tries one parity first, and past that half connecting slows to a crawl. */
bool capacity_ports(const struct capacity_input *in, const struct capacity_plan *plan,
                    char *problem, size_t len);

#endif
