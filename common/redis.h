/* Redis connection settings from a URI, and a connect helper shared by the consumer and the
 * checker: redis://[[user]:password@]host[:port][/db] or unix:///path/to/socket[?db=N]. */
#ifndef HB_REDIS_H
#define HB_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

struct hb_redis_addr {
    char host[256]; /* host name or address; empty when unix socket */
    int port;
    char path[108]; /* unix socket path, or empty */
    char user[128];
    char password[256];
    int db;
};

/* Parses uri into out. Returns false and writes a reason into err when it is malformed. */
bool hb_redis_uri_parse(const char *uri, struct hb_redis_addr *out, char *err, size_t errlen);

/* Connects, authenticates and selects the database, with connect and command timeouts of
 * timeout_ms. Returns a ready context the caller frees with redisFree, or NULL with a reason in
 * err. Never logs the password. */
redisContext *hb_redis_connect(const struct hb_redis_addr *addr, int timeout_ms, char *err,
                               size_t errlen);

#endif
