/* A small pool of Redis clients shared by hb-api's server threads: a thread takes one for a
 * request and gives it back, or drops it after an error so the next request starts afresh. */
#ifndef HB_API_POOL_H
#define HB_API_POOL_H

#include "rcluster.h"
#include "redis.h"

#include <pthread.h>
#include <stdbool.h>

#define API_POOL_MAX 16

struct api_pool {
    struct hb_redis_addr addr;
    int timeout_ms;
    pthread_mutex_t lock;
    struct rcluster *idle[API_POOL_MAX];
    size_t n_idle;
};

/* Sets up an empty pool (nothing connects yet). */
void api_pool_init(struct api_pool *p, const struct hb_redis_addr *addr, int timeout_ms);

/* An idle client, or a new one (it connects on first use); NULL with the reason in err when
 * out of memory. */
struct rcluster *api_pool_take(struct api_pool *p, char *err, size_t errlen);

/* Gives c back when healthy, frees it otherwise (or when the pool is full). NULL is a no-op. */
void api_pool_give(struct api_pool *p, struct rcluster *c, bool healthy);

/* Frees every idle connection. */
void api_pool_finish(struct api_pool *p);

#endif
