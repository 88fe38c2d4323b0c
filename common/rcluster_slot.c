/* The pure parts of the cluster client: key slots (CRC16 with hash tags), MOVED/ASK error
 * replies and CLUSTER SLOTS replies. Nothing here does I/O, so every rule is unit-tested;
 * replies from the network are validated field by field and refused whole when one is wrong. */
#include "rcluster.h"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

uint16_t rcluster_crc16(const char *buf, size_t len)
{
    /* Bitwise: keys are short and only their hash tag is hashed. */
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

int rcluster_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open != NULL) {
        size_t after = (size_t)(open - key) + 1;
        const char *close = memchr(open + 1, '}', len - after);
        if (close != NULL && close > open + 1)
            return rcluster_crc16(open + 1, (size_t)(close - open - 1)) & (RCLUSTER_SLOTS - 1);
    }
    return rcluster_crc16(key, len) & (RCLUSTER_SLOTS - 1);
}

/* "host:port" (host may be empty: from_host) into ep; false when malformed. */
static bool parse_endpoint(const char *s, size_t len, const char *from_host,
                           struct hb_redis_endpoint *ep)
{
    const char *colon = memrchr(s, ':', len);
    if (colon == NULL)
        return false;
    size_t host_len = (size_t)(colon - s);
    char digits[8];
    size_t plen = len - host_len - 1;
    long port;
    if (plen == 0 || plen >= sizeof(digits))
        return false;
    memcpy(digits, colon + 1, plen);
    digits[plen] = '\0';
    if (!hb_parse_long(digits, 1, 65535, &port))
        return false;
    if (host_len == 0) {
        size_t n = strlen(from_host);
        if (n == 0 || n >= sizeof(ep->host))
            return false;
        memcpy(ep->host, from_host, n + 1);
    } else {
        if (host_len >= sizeof(ep->host))
            return false;
        memcpy(ep->host, s, host_len);
        ep->host[host_len] = '\0';
    }
    ep->port = (int)port;
    return true;
}

enum rcluster_redirect_kind rcluster_redirect_parse(const char *msg, size_t len,
                                                    const char *from_host,
                                                    struct rcluster_redirect *out)
{
    enum rcluster_redirect_kind kind;
    size_t skip;
    if (len > 6 && memcmp(msg, "MOVED ", 6) == 0) {
        kind = RCLUSTER_MOVED;
        skip = 6;
    } else if (len > 4 && memcmp(msg, "ASK ", 4) == 0) {
        kind = RCLUSTER_ASK;
        skip = 4;
    } else {
        return RCLUSTER_NO_REDIRECT;
    }
    const char *slot_s = msg + skip;
    const char *space = memchr(slot_s, ' ', len - skip);
    if (space == NULL)
        return RCLUSTER_NO_REDIRECT;
    char digits[8];
    size_t dlen = (size_t)(space - slot_s);
    long slot;
    if (dlen == 0 || dlen >= sizeof(digits))
        return RCLUSTER_NO_REDIRECT;
    memcpy(digits, slot_s, dlen);
    digits[dlen] = '\0';
    if (!hb_parse_long(digits, 0, RCLUSTER_SLOTS - 1, &slot))
        return RCLUSTER_NO_REDIRECT;
    const char *ep = space + 1;
    struct rcluster_redirect r = {.kind = kind, .slot = (int)slot};
    if (!parse_endpoint(ep, (size_t)(msg + len - ep), from_host, &r.to))
        return RCLUSTER_NO_REDIRECT;
    *out = r;
    return kind;
}

static bool parse_int_element(const redisReply *e, long long min, long long max, int *out)
{
    if (e->type != REDIS_REPLY_INTEGER || e->integer < min || e->integer > max)
        return false;
    *out = (int)e->integer;
    return true;
}

/* One entry: [start, end, [host, port, id, ...], replicas...]. */
static bool parse_range(const redisReply *e, const char *from_host, struct rcluster_range *out)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
        return false;
    if (!parse_int_element(e->element[0], 0, RCLUSTER_SLOTS - 1, &out->start) ||
        !parse_int_element(e->element[1], 0, RCLUSTER_SLOTS - 1, &out->end) ||
        out->start > out->end)
        return false;
    const redisReply *m = e->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2 ||
        m->element[0]->type != REDIS_REPLY_STRING)
        return false;
    const redisReply *host = m->element[0];
    const char *h = host->len == 0 ? from_host : host->str;
    size_t hlen = host->len == 0 ? strlen(from_host) : host->len;
    if (hlen == 0 || hlen >= sizeof(out->master.host) || memchr(h, '\0', hlen) != NULL ||
        (hlen == 1 && h[0] == '?'))
        return false;
    memcpy(out->master.host, h, hlen);
    out->master.host[hlen] = '\0';
    return parse_int_element(m->element[1], 1, 65535, &out->master.port);
}

struct rcluster_range *rcluster_slots_parse(const redisReply *r, const char *from_host, size_t *n,
                                            char *err, size_t errlen)
{
    if (r->type != REDIS_REPLY_ARRAY) {
        snprintf(err, errlen, "CLUSTER SLOTS: not an array");
        return NULL;
    }
    struct rcluster_range *ranges = calloc(r->elements ? r->elements : 1, sizeof(*ranges));
    if (ranges == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < r->elements; i++) {
        if (!parse_range(r->element[i], from_host, &ranges[i])) {
            snprintf(err, errlen, "CLUSTER SLOTS: malformed entry %zu", i);
            free(ranges);
            return NULL;
        }
    }
    *n = r->elements;
    return ranges;
}
