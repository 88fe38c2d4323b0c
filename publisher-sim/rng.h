/* A small seeded pseudo-random generator (splitmix64). Every random choice of the simulator
 * draws from one of these, so a seed reproduces the same accounts, devices and windows. */
#ifndef HB_SIM_RNG_H
#define HB_SIM_RNG_H

#include <stdint.h>

struct rng {
    uint64_t state;
};

/* Starts the sequence of seed; any value is fine, 0 included. */
void rng_seed(struct rng *r, uint64_t seed);

/* The next 64 random bits. */
uint64_t rng_next(struct rng *r);

/* Uniform in [0, 1), with 53 random bits. */
double rng_unit(struct rng *r);

/* Uniform in [lo, hi] (inclusive); lo when hi <= lo. */
uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi);

#endif
