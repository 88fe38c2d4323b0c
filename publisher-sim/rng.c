/* splitmix64: a 64-bit counter stepped by the golden-ratio constant and mixed by two
 * multiply-xorshift rounds. Not cryptographic; chosen because one word of state makes
 * per-worker generators trivial to derive from the run's seed. */
#include "rng.h"

void rng_seed(struct rng *r, uint64_t seed)
{
    r->state = seed;
}

uint64_t rng_next(struct rng *r)
{
    uint64_t z = (r->state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

double rng_unit(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t rng_range(struct rng *r, uint64_t lo, uint64_t hi)
{
    if (hi <= lo)
        return lo;
    uint64_t span = hi - lo + 1;
    if (span == 0) /* the whole 64-bit range */
        return rng_next(r);
    /* Rejection keeps the draw unbiased: discard the top partial block of the 2^64 range. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % span;
    uint64_t x;
    do {
        x = rng_next(r);
    } while (x >= limit);
    return lo + x % span;
}
