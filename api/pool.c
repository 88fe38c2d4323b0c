/* hb-api's Redis clients: a mutex-guarded stack of idle cluster clients (common/rcluster; one
 * node for redis:// and unix://). Creating and connecting happen outside the lock, so a Redis
 * that does not answer delays only the requests that need it. */
#include "pool.h"

#include <string.h>

void api_pool_init(struct api_pool *p, const struct hb_redis_addr *addr, int timeout_ms)
{
    memset(p, 0, sizeof(*p));
    p->addr = *addr;
    p->timeout_ms = timeout_ms;
    pthread_mutex_init(&p->lock, NULL);
}

struct rcluster *api_pool_take(struct api_pool *p, char *err, size_t errlen)
{
    struct rcluster *c = NULL;
    pthread_mutex_lock(&p->lock);
    if (p->n_idle > 0)
        c = p->idle[--p->n_idle];
    pthread_mutex_unlock(&p->lock);
    if (c != NULL)
        return c;
    return rcluster_create(&p->addr, p->timeout_ms, err, errlen);
}

void api_pool_give(struct api_pool *p, struct rcluster *c, bool healthy)
{
    if (c == NULL)
        return;
    if (healthy) {
        pthread_mutex_lock(&p->lock);
        bool kept = p->n_idle < API_POOL_MAX;
        if (kept)
            p->idle[p->n_idle++] = c;
        pthread_mutex_unlock(&p->lock);
        if (kept)
            return;
    }
    rcluster_destroy(c);
}

void api_pool_finish(struct api_pool *p)
{
    for (size_t i = 0; i < p->n_idle; i++)
        rcluster_destroy(p->idle[i]);
    p->n_idle = 0;
    pthread_mutex_destroy(&p->lock);
}
