/* Redis URIs and connecting. Parsing fills a fresh struct and reports the first problem; the
 * connect helper does AUTH and SELECT so callers get a context that is ready for commands. */
#include "redis.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies src[0..len) into dst[size] with a NUL; false when it does not fit. */
static bool copy_part(char *dst, size_t size, const char *src, size_t len)
{
    if (len >= size)
        return false;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return true;
}

static bool parse_db(const char *s, int *db, char *err, size_t errlen)
{
    long v;
    if (!hb_parse_long(s, 0, 1000000, &v)) {
        snprintf(err, errlen, "database must be a number, got '%s'", s);
        return false;
    }
    *db = (int)v;
    return true;
}

static bool parse_unix(const char *rest, struct hb_redis_addr *out, char *err, size_t errlen)
{
    const char *q = strchr(rest, '?');
    size_t len = q ? (size_t)(q - rest) : strlen(rest);
    if (len == 0 || rest[0] != '/' || !copy_part(out->path, sizeof(out->path), rest, len)) {
        snprintf(err, errlen, "unix socket path must be absolute and short");
        return false;
    }
    if (q != NULL) {
        if (strncmp(q, "?db=", 4) != 0) {
            snprintf(err, errlen, "only ?db=N is understood after a socket path");
            return false;
        }
        return parse_db(q + 4, &out->db, err, errlen);
    }
    return true;
}

static bool parse_userinfo(const char *s, size_t len, struct hb_redis_addr *out, char *err,
                           size_t errlen)
{
    /* redis://secret@host is the common short form for a password alone. */
    const char *colon = memchr(s, ':', len);
    size_t ulen = colon ? (size_t)(colon - s) : 0;
    const char *pass = colon ? colon + 1 : s;
    if (!copy_part(out->user, sizeof(out->user), s, ulen) ||
        !copy_part(out->password, sizeof(out->password), pass, len - (size_t)(pass - s))) {
        snprintf(err, errlen, "user name or password too long");
        return false;
    }
    return true;
}

/* Parses host[:port] of length len into host and port (6379 when absent). */
static bool parse_hostport(const char *s, size_t len, char *host, size_t host_size, int *port,
                           char *err, size_t errlen)
{
    const char *colon = memrchr(s, ':', len);
    size_t host_len = colon ? (size_t)(colon - s) : len;
    if (host_len == 0 || !copy_part(host, host_size, s, host_len)) {
        snprintf(err, errlen, "missing or too long host");
        return false;
    }
    *port = 6379;
    if (colon != NULL) {
        char digits[8];
        long v;
        size_t plen = len - host_len - 1;
        if (!copy_part(digits, sizeof(digits), colon + 1, plen) ||
            !hb_parse_long(digits, 1, 65535, &v)) {
            snprintf(err, errlen, "port must be 1..65535");
            return false;
        }
        *port = (int)v;
    }
    return true;
}

/* Splits [userinfo@]rest at the last '@' before end; returns where the hosts begin. */
static const char *skip_userinfo(const char *rest, size_t auth_len, struct hb_redis_addr *out,
                                 char *err, size_t errlen)
{
    const char *at = memrchr(rest, '@', auth_len);
    if (at == NULL)
        return rest;
    if (!parse_userinfo(rest, (size_t)(at - rest), out, err, errlen))
        return NULL;
    return at + 1;
}

static bool parse_tcp(const char *rest, struct hb_redis_addr *out, char *err, size_t errlen)
{
    const char *slash = strchr(rest, '/');
    size_t auth_len = slash ? (size_t)(slash - rest) : strlen(rest);
    const char *host = skip_userinfo(rest, auth_len, out, err, errlen);
    if (host == NULL || !parse_hostport(host, (size_t)(rest + auth_len - host), out->host,
                                        sizeof(out->host), &out->port, err, errlen))
        return false;
    if (slash != NULL && slash[1] != '\0')
        return parse_db(slash + 1, &out->db, err, errlen);
    return true;
}

/* Seed nodes, comma-separated; a cluster has one database, so no /db. */
static bool parse_cluster(const char *rest, struct hb_redis_addr *out, char *err, size_t errlen)
{
    if (strchr(rest, '/') != NULL || strchr(rest, '?') != NULL) {
        snprintf(err, errlen, "a cluster has database 0 only: no /db or options after the nodes");
        return false;
    }
    size_t len = strlen(rest);
    const char *p = skip_userinfo(rest, len, out, err, errlen);
    if (p == NULL)
        return false;
    const char *end = rest + len;
    for (;;) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        if (out->n_seeds == HB_REDIS_SEEDS_MAX) {
            snprintf(err, errlen, "at most %d seed nodes", HB_REDIS_SEEDS_MAX);
            return false;
        }
        struct hb_redis_endpoint *e = &out->seeds[out->n_seeds];
        if (!parse_hostport(p, (size_t)(stop - p), e->host, sizeof(e->host), &e->port, err, errlen))
            return false;
        out->n_seeds++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    out->cluster = true;
    memcpy(out->host, out->seeds[0].host, sizeof(out->host));
    out->port = out->seeds[0].port;
    return true;
}

bool hb_redis_uri_parse(const char *uri, struct hb_redis_addr *out, char *err, size_t errlen)
{
    struct hb_redis_addr parsed;
    memset(&parsed, 0, sizeof(parsed));
    bool ok;
    if (strncmp(uri, "redis://", 8) == 0)
        ok = parse_tcp(uri + 8, &parsed, err, errlen);
    else if (strncmp(uri, "unix://", 7) == 0)
        ok = parse_unix(uri + 7, &parsed, err, errlen);
    else if (strncmp(uri, "redis-cluster://", 16) == 0)
        ok = parse_cluster(uri + 16, &parsed, err, errlen);
    else {
        snprintf(err, errlen,
                 "expected redis://host:port, unix:///path or redis-cluster://host:port,...");
        ok = false;
    }
    if (ok)
        *out = parsed;
    return ok;
}

/* Runs one command whose reply must not be an error. */
static bool run_ok(redisContext *c, char *err, size_t errlen, const char *what, int argc,
                   const char **argv)
{
    redisReply *r = redisCommandArgv(c, argc, argv, NULL);
    if (r == NULL) {
        snprintf(err, errlen, "%s: %s", what, c->errstr);
        return false;
    }
    bool ok = r->type != REDIS_REPLY_ERROR;
    if (!ok)
        snprintf(err, errlen, "%s refused: %s", what, r->str);
    freeReplyObject(r);
    return ok;
}

redisContext *hb_redis_connect(const struct hb_redis_addr *addr, int timeout_ms, char *err,
                               size_t errlen)
{
    if (addr->cluster) {
        snprintf(err, errlen, "redis-cluster:// needs the cluster client, not one connection");
        return NULL;
    }
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    redisContext *c = addr->path[0] ? redisConnectUnixWithTimeout(addr->path, tv)
                                    : redisConnectWithTimeout(addr->host, addr->port, tv);
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (c->err) {
        if (addr->path[0])
            snprintf(err, errlen, "connect %s: %s", addr->path, c->errstr);
        else
            snprintf(err, errlen, "connect %s:%d: %s", addr->host, addr->port, c->errstr);
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, errlen, "set timeout: %s", c->errstr);
        redisFree(c);
        return NULL;
    }
    if (addr->password[0]) {
        const char *with_user[3] = {"AUTH", addr->user, addr->password};
        const char *password_only[2] = {"AUTH", addr->password};
        bool ok = addr->user[0] ? run_ok(c, err, errlen, "AUTH", 3, with_user)
                                : run_ok(c, err, errlen, "AUTH", 2, password_only);
        if (!ok)
            goto fail;
    }
    if (addr->db != 0) {
        char db[16];
        snprintf(db, sizeof(db), "%d", addr->db);
        const char *argv[2] = {"SELECT", db};
        if (!run_ok(c, err, errlen, "SELECT", 2, argv))
            goto fail;
    }
    return c;
fail:
    redisFree(c);
    return NULL;
}
