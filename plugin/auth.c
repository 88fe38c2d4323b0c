/* Token authentication and authorization for mosquitto. Every decision denies unless a verified
 * token allows it; anything a client sends (client id, username, password, topic) is untrusted
 * input that is checked, never assumed well-formed, and never echoed unescaped into the log. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>

#include "acl.h"
#include "auth.h"
#include "ids.h"
#include "jwtverify.h"

#define LOG_BURST 20
#define LOG_WINDOW_MS 10000
#define SCAN_INTERVAL_MS 1000
#define KICKS_PER_SCAN 64

static const char *const reason_names[HB_AUTH_REASON_COUNT - HB_TOKEN_ERROR_COUNT] = {
    [HB_AUTH_NO_PASSWORD - HB_TOKEN_ERROR_COUNT] = "no_password",
    [HB_AUTH_OVERSIZED - HB_TOKEN_ERROR_COUNT] = "oversized",
    [HB_AUTH_BAD_CLIENT_ID - HB_TOKEN_ERROR_COUNT] = "bad_client_id",
    [HB_AUTH_DEVICE_MISMATCH - HB_TOKEN_ERROR_COUNT] = "device_mismatch",
    [HB_AUTH_CLIENT_ID_TAKEN - HB_TOKEN_ERROR_COUNT] = "client_id_taken",
    [HB_AUTH_NO_MEMORY - HB_TOKEN_ERROR_COUNT] = "out_of_memory",
    [HB_AUTH_NO_SESSION - HB_TOKEN_ERROR_COUNT] = "no_session",
    [HB_AUTH_TOKEN_EXPIRED - HB_TOKEN_ERROR_COUNT] = "token_expired",
    [HB_AUTH_RETAINED - HB_TOKEN_ERROR_COUNT] = "retained",
    [HB_AUTH_NOT_OWN_TOPIC - HB_TOKEN_ERROR_COUNT] = "not_own_topic",
    [HB_AUTH_ACL - HB_TOKEN_ERROR_COUNT] = "acl",
    [HB_AUTH_REVOKED - HB_TOKEN_ERROR_COUNT] = "revoked",
};

const char *hb_auth_reason_name(int reason)
{
    if (reason >= 0 && reason < HB_TOKEN_ERROR_COUNT)
        return hb_token_error_name((enum hb_token_error)reason);
    if (reason >= HB_TOKEN_ERROR_COUNT && reason < HB_AUTH_REASON_COUNT)
        return reason_names[reason - HB_TOKEN_ERROR_COUNT];
    return "unknown";
}

/* s (possibly NULL, hostile) as at most 64 printable ASCII bytes for a log line. */
static const char *printable(const char *s, char *buf, size_t len)
{
    if (s == NULL)
        return "(none)";
    size_t o = 0, i = 0;
    for (; s[i] != '\0' && i < 64 && o + 1 < len; i++)
        buf[o++] = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'' ? s[i] : '?';
    if (s[i] != '\0' && o + 4 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

static void log_limited(struct hb_auth *a, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Lines the network can trigger at will go through here: at most LOG_BURST per window. */
static void log_limited(struct hb_auth *a, int level, const char *fmt, ...)
{
    long suppressed = 0;
    if (!hb_ratelimit_allow(&a->log_limit, &suppressed))
        return;
    if (suppressed > 0)
        mosquitto_log_printf(level, "hb_auth: %ld similar messages suppressed", suppressed);
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    mosquitto_log_printf(level, "%s", line);
}

struct hb_auth *hb_auth_create(struct hb_auth_options *opt)
{
    struct hb_auth *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        hb_auth_options_finish(opt);
        return NULL;
    }
    a->opt = *opt;
    memset(opt, 0, sizeof(*opt));
    hb_sessions_init(&a->sessions);
    a->log_limit.burst = LOG_BURST;
    a->log_limit.window_ms = LOG_WINDOW_MS;
    return a;
}

/* "name=count ..." of the non-zero counters, for the summary at shutdown. */
static void format_counts(const unsigned long *counts, char *buf, size_t len)
{
    size_t o = 0;
    buf[0] = '\0';
    for (int r = 1; r < HB_AUTH_REASON_COUNT && o < len; r++) {
        if (counts[r] == 0)
            continue;
        int w = snprintf(buf + o, len - o, " %s=%lu", hb_auth_reason_name(r), counts[r]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (buf[0] == '\0')
        snprintf(buf, len, " none");
}

void hb_auth_destroy(struct hb_auth *a)
{
    if (a == NULL)
        return;
    char refused[512], denied[512];
    format_counts(a->refused, refused, sizeof(refused));
    format_counts(a->denied, denied, sizeof(denied));
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "hb_auth: accepted=%lu kicked_expired=%lu kicked_revoked=%lu; "
                         "refused:%s; denied:%s",
                         a->accepted, a->kicked, a->kicked_revoked, refused, denied);
    hb_sessions_finish(&a->sessions);
    hb_auth_options_finish(&a->opt);
    free(a);
}

static bool refuse(struct hb_auth *a, const struct mosquitto *client, const char *client_id,
                   int reason, const char *kid)
{
    char idbuf[80], kidbuf[80];
    a->refused[reason]++;
    /* A refused connection never gets to use a session; one left under this (re-used) client
     * pointer would be stale. */
    hb_sessions_forget(&a->sessions, client);
    const char *address = mosquitto_client_address(client);
    log_limited(a, MOSQ_LOG_NOTICE, "hb_auth: refused client '%s' from %s: %s%s%s",
                printable(client_id, idbuf, sizeof(idbuf)), address ? address : "?",
                hb_auth_reason_name(reason), kid ? " kid=" : "",
                kid ? printable(kid, kidbuf, sizeof(kidbuf)) : "");
    return false;
}

static bool same_principal(const struct hb_token_claims *x, const struct hb_token_claims *y)
{
    return x->role == y->role && strcmp(x->sub, y->sub) == 0;
}

bool hb_auth_connect(struct hb_auth *a, const struct mosquitto *client, const char *client_id,
                     const char *username, const char *password, int64_t now_s)
{
    (void)username; /* carries no authority: the token alone decides */
    if (client_id == NULL || !hb_id_valid(client_id, strnlen(client_id, HB_ID_MAX + 1)))
        return refuse(a, client, client_id, HB_AUTH_BAD_CLIENT_ID, NULL);
    if (password == NULL || password[0] == '\0')
        return refuse(a, client, client_id, HB_AUTH_NO_PASSWORD, NULL);
    size_t len = strnlen(password, a->opt.max_token_bytes + 1);
    if (len > a->opt.max_token_bytes)
        return refuse(a, client, client_id, HB_AUTH_OVERSIZED, NULL);

    struct hb_token_claims claims;
    enum hb_token_error e = hb_token_verify(&a->opt.ring, password, len, now_s, &claims);
    if (e != HB_TOKEN_OK)
        return refuse(a, client, client_id, (int)e, NULL);
    if (claims.device[0] != '\0' && strcmp(claims.device, client_id) != 0)
        return refuse(a, client, client_id, HB_AUTH_DEVICE_MISMATCH, claims.kid);
    if (hb_revoked_has(&a->opt.revoked, &claims))
        return refuse(a, client, client_id, HB_AUTH_REVOKED, claims.kid);

    /* Client ids are global in the broker: a connection with a taken id disconnects the holder.
     * Within one account that is the point (a shared token cannot hide devices); across
     * accounts it would let anyone with any token cut off another account's device or the
     * consumer, so the id stays with its current holder. */
    struct hb_session *holder = hb_sessions_holder(&a->sessions, client_id);
    if (holder != NULL && holder->online && holder->client != (const void *)client &&
        now_s < holder->claims.exp && !same_principal(&holder->claims, &claims))
        return refuse(a, client, client_id, HB_AUTH_CLIENT_ID_TAKEN, claims.kid);

    if (hb_sessions_login(&a->sessions, client, client_id, &claims) == NULL)
        return refuse(a, client, client_id, HB_AUTH_NO_MEMORY, claims.kid);
    a->accepted++;
    char idbuf[80];
    mosquitto_log_printf(MOSQ_LOG_INFO,
                         "hb_auth: client '%s' accepted: %s '%s', kid %s, expires in %lld s",
                         printable(client_id, idbuf, sizeof(idbuf)),
                         claims.role == HB_ROLE_CONSUMER ? "consumer" : "account", claims.sub,
                         claims.kid, (long long)(claims.exp - now_s));
    return true;
}

static const char *access_name(enum hb_auth_access access)
{
    switch (access) {
    case HB_ACCESS_READ:
        return "read";
    case HB_ACCESS_WRITE:
        return "publish";
    case HB_ACCESS_SUBSCRIBE:
        return "subscribe";
    case HB_ACCESS_UNSUBSCRIBE:
        return "unsubscribe";
    }
    return "?";
}

static bool deny(struct hb_auth *a, const char *client_id, enum hb_auth_access access,
                 const char *topic, int reason)
{
    a->denied[reason]++;
    /* A subscriber's reads are checked per message; a denied read is expected (a filter wider
     * than the token) and would flood the log. */
    if (access != HB_ACCESS_READ) {
        char idbuf[80], topicbuf[80];
        log_limited(a, MOSQ_LOG_NOTICE, "hb_auth: denied %s of '%s' to client '%s': %s",
                    access_name(access), printable(topic, topicbuf, sizeof(topicbuf)),
                    printable(client_id, idbuf, sizeof(idbuf)), hb_auth_reason_name(reason));
    }
    return false;
}

/* Heartbeat topics <prefix>/<account>/<device>: a device token publishes there only as its own
 * account and client id, whatever its acl claim says, so a mis-minted claim cannot count
 * heartbeats for another account. */
static bool own_heartbeat_topic(const struct hb_auth *a, const struct hb_session *s,
                                const char *topic)
{
    size_t plen = strlen(a->opt.topic_prefix);
    if (s->claims.role != HB_ROLE_DEVICE || strncmp(topic, a->opt.topic_prefix, plen) != 0 ||
        topic[plen] != '/')
        return true;
    const char *account = topic + plen + 1;
    size_t alen = strlen(s->claims.sub);
    return strncmp(account, s->claims.sub, alen) == 0 && account[alen] == '/' &&
           strcmp(account + alen + 1, s->id) == 0;
}

bool hb_auth_access(struct hb_auth *a, const struct mosquitto *client, const char *client_id,
                    const char *username, enum hb_auth_access access, const char *topic,
                    bool retain, int64_t now_s)
{
    struct hb_session *s = hb_sessions_find(&a->sessions, client);
    if (s == NULL || client_id == NULL || strcmp(s->id, client_id) != 0 || topic == NULL)
        return deny(a, client_id, access, topic, HB_AUTH_NO_SESSION);
    if (s->revoked)
        return deny(a, client_id, access, topic, HB_AUTH_REVOKED);
    if (now_s >= s->claims.exp)
        return deny(a, client_id, access, topic, HB_AUTH_TOKEN_EXPIRED);

    bool allowed;
    switch (access) {
    case HB_ACCESS_UNSUBSCRIBE:
        return true; /* dropping a subscription never grants anything */
    case HB_ACCESS_WRITE:
        /* Retained only where the token's rule says "retain": true (the live counts). */
        if (retain &&
            !hb_acl_allows_retained(&s->claims, client_id, username, HB_ACL_PUBLISH, topic))
            return deny(a, client_id, access, topic, HB_AUTH_RETAINED);
        if (!own_heartbeat_topic(a, s, topic))
            return deny(a, client_id, access, topic, HB_AUTH_NOT_OWN_TOPIC);
        allowed = hb_acl_allows(&s->claims, client_id, username, HB_ACL_PUBLISH, topic);
        break;
    case HB_ACCESS_SUBSCRIBE:
        allowed = hb_acl_allows(&s->claims, client_id, username, HB_ACL_SUBSCRIBE, topic);
        break;
    case HB_ACCESS_READ:
        /* A retained heartbeat is old news replayed; none should exist, none is delivered. A
         * retained message is delivered only where the subscribe rule says "retain": true (a
         * device's live count). */
        if (retain && !hb_acl_allows_retained(&s->claims, client_id, username, HB_ACL_READ, topic))
            return deny(a, client_id, access, topic, HB_AUTH_RETAINED);
        allowed = hb_acl_allows(&s->claims, client_id, username, HB_ACL_READ, topic);
        break;
    default:
        allowed = false;
    }
    return allowed ? true : deny(a, client_id, access, topic, HB_AUTH_ACL);
}

void hb_auth_disconnect(struct hb_auth *a, const struct mosquitto *client, int64_t now_s)
{
    hb_sessions_logout(&a->sessions, client, now_s);
}

/* Re-reads the revocation list when it changed and marks every session it now revokes; the
 * expiry scan then kicks them. */
static void refresh_revoked(struct hb_auth *a)
{
    char err[512];
    int rc = hb_revoked_refresh(&a->opt.revoked, err, sizeof(err));
    if (rc < 0) {
        log_limited(a, MOSQ_LOG_WARNING, "hb_auth: revocation list not reloaded: %s", err);
        return;
    }
    if (rc == 0)
        return;
    size_t marked = 0;
    struct hb_session *e, *tmp;
    HASH_ITER(hh_client, a->sessions.by_client, e, tmp)
    {
        if (!e->revoked && hb_revoked_has(&a->opt.revoked, &e->claims)) {
            e->revoked = true;
            marked++;
        }
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "hb_auth: revocation list %s loaded: %zu entries, %zu connected "
                         "client(s) revoked",
                         a->opt.revoked.path, a->opt.revoked.n, marked);
}

void hb_auth_tick(struct hb_auth *a, int64_t now_ms, int64_t now_s)
{
    if (!a->rescan && a->last_scan_ms != 0 && now_ms - a->last_scan_ms < SCAN_INTERVAL_MS)
        return;
    a->last_scan_ms = now_ms;
    refresh_revoked(a);
    char ids[KICKS_PER_SCAN][HB_ID_MAX + 1];
    bool revoked[KICKS_PER_SCAN];
    size_t n = hb_sessions_expire(&a->sessions, now_s, ids, KICKS_PER_SCAN, &a->rescan);
    for (size_t i = 0; i < n; i++) {
        const struct hb_session *holder = hb_sessions_holder(&a->sessions, ids[i]);
        revoked[i] = holder != NULL && holder->revoked;
    }
    /* Kicking runs the disconnect callback, which changes the sessions: not while iterating. */
    for (size_t i = 0; i < n; i++) {
        int rc = mosquitto_kick_client_by_clientid(ids[i], false);
        if (revoked[i])
            a->kicked_revoked++;
        else
            a->kicked++;
        log_limited(a, MOSQ_LOG_NOTICE, "hb_auth: token of client '%s' %s, %s", ids[i],
                    revoked[i] ? "revoked" : "expired",
                    rc == MOSQ_ERR_SUCCESS ? "disconnected" : "client not found");
    }
}
