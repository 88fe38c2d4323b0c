/* Redis connection settings from a URI, and a connect helper shared by the consumer and the
 * checker: redis://[[user]:password@]host[:port][/db] or unix:///path/to/socket[?db=N], or
 * redis-cluster://[[user]:password@]host[:port][,host[:port]...] (seed nodes; see rcluster.h). */
#ifndef HB_REDIS_H
#define HB_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#define HB_REDIS_SEEDS_MAX 16

/* One TCP node of a cluster. */
struct hb_redis_endpoint {
    char host[256];
    int port;
};

struct hb_redis_addr {
    char host[256]; /* host name or address; empty when unix socket */
    int port;
    char path[108]; /* unix socket path, or empty */
    char user[128];
    char password[256];
    int db;
    bool cluster; /* redis-cluster://: host and port are the first of seeds; db is 0 */
    size_t n_seeds;
    struct hb_redis_endpoint seeds[HB_REDIS_SEEDS_MAX];
};

/* Parses uri into out. Returns false and writes a reason into err when it is malformed. */
bool hb_redis_uri_parse(const char *uri, struct hb_redis_addr *out, char *err, size_t errlen);

/* Connects, authenticates and selects the database, with connect and command timeouts of
 * timeout_ms. Returns a ready context the caller frees with redisFree, or NULL with a reason in
 * err. Never logs the password. Refuses a cluster address: one connection cannot serve it
 * (rcluster_create can). */
redisContext *hb_redis_connect(const struct hb_redis_addr *addr, int timeout_ms, char *err,
                               size_t errlen);

#endif
