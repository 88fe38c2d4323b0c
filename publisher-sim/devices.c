/* The device state machine. Every libmosquitto call that can touch a device's socket runs in
 * a step passed to device_drive(), which then settles the device: acts on what the callbacks
 * recorded (they only record) and re-registers the socket with epoll. A dropped connection
 * destroys its client, so no old heartbeat is resent later. With --api a device asks hb-api
 * first, listens on its control topic, and ends with a stop heartbeat (or vanishes). Over 500
 * lines on purpose: the eight states' transitions call each other and read best as one. */
#include "devices.h"

#include "ids.h"
#include "interval.h"
#include "keyring.h"
#include "mint.h"
#include "playlog.h"
#include "schedule.h"
#include "token.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <mosquitto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#define DEVICE_CONNECT_TIMEOUT_MS 10000 /* CONNECT sent, no CONNACK: give up and retry */
#define DEVICE_DRAIN_MS 3000            /* at a stop, longest wait for outstanding PUBACKs */
#define DEVICE_DISCONNECT_MS 2000       /* DISCONNECT queued, socket still open: give up */
#define DEVICE_BACKOFF_MIN_MS 500
#define DEVICE_BACKOFF_MAX_MS 15000
#define DEVICE_INFLIGHT_MAX 16 /* QoS 1 publishes unacknowledged before heartbeats are skipped */

enum device_state {
    DEV_IDLE,          /* before its window: timer at the window start */
    DEV_QUEUED,        /* waiting for a connect slot; no timer */
    DEV_CONNECTING,    /* CONNECT on its way; timer: connect timeout */
    DEV_CONNECTED,     /* timer: next heartbeat or the window end */
    DEV_DRAINING,      /* stopping, waiting for PUBACKs; timer: drain deadline */
    DEV_DISCONNECTING, /* DISCONNECT queued; timer: disconnect deadline */
    DEV_BACKOFF,       /* connection failed; timer: next attempt */
    DEV_DONE,          /* window over; no timer */
};

struct device {
    struct devices *set;    /* the owner, for library callbacks (userdata is the device) */
    struct mosquitto *mosq; /* NULL unless connecting, connected or disconnecting */
    int fd;                 /* the socket registered with epoll, or -1 */
    uint32_t events;        /* the events registered for fd */
    enum device_state state;
    bool connack;         /* callback: CONNACK accepted, not handled yet */
    bool refused;         /* callback: CONNACK refused */
    int reason;           /* callback: last CONNACK or disconnect code, for messages */
    bool ever;            /* accepted at least once */
    unsigned attempts;    /* failed connects since the last CONNACK */
    unsigned outstanding; /* QoS 1 publishes not acknowledged yet */
    uint32_t seq;         /* heartbeats sent, for {{seq}} */
    int64_t since_ms;     /* when the current connection was accepted */
    /* --api only */
    char *token;          /* from hb-api's answer, owned; NULL: not admitted */
    int64_t started_ms;   /* when it was admitted: "started" of every payload */
    bool vanisher;        /* ends by closing its socket, without a stop heartbeat */
    bool stop_pending;    /* callback: a stop arrived on the control topic */
    bool stopped;         /* obeyed a stop: never connects again */
    char stop_reason[32]; /* the stop's reason, an id */
};

/* One step of a device that calls libmosquitto on its client, with what must be recorded
 * before anything else happens. Returns false, with the reason in why, when the connection
 * must be given up. */
typedef bool (*device_step_fn)(struct devices *ds, struct device *d, void *arg, char *why,
                               size_t why_len);

static void device_settle(struct devices *ds, struct device *d);
static void device_lost(struct devices *ds, struct device *d, const char *why);

/* Rate-limited log line about one device: the network can make every device fail at once. */
static void device_log(struct devices *ds, enum hb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void device_log(struct devices *ds, enum hb_log_level level, const char *fmt, ...)
{
    long suppressed;
    if (!hb_ratelimit_allow(&ds->log_limit, &suppressed))
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (suppressed > 0)
        hb_log(level, "%s (%ld similar messages suppressed)", line, suppressed);
    else
        hb_log(level, "%s", line);
}

static size_t index_of(const struct devices *ds, const struct device *d)
{
    return (size_t)(d - ds->dev);
}

static const char *device_id(const struct devices *ds, const struct device *d)
{
    return ds->cfg->plan->devices[ds->cfg->first_device + index_of(ds, d)];
}

static const struct plan_device *device_plan(const struct devices *ds, const struct device *d)
{
    return &ds->cfg->plan->device[ds->cfg->first_device + index_of(ds, d)];
}

static const char *device_account(const struct devices *ds, const struct device *d)
{
    return ds->cfg->plan->accounts[device_plan(ds, d)->account];
}

/* When the device must stop: its window end, or the run's end, whichever is first. */
static int64_t device_stop_at(const struct devices *ds, const struct device *d)
{
    int64_t stop = ds->stats.start_ms + device_plan(ds, d)->stop_ms;
    return stop < ds->stats.end_ms ? stop : ds->stats.end_ms;
}

static const char *rc_text(int rc)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

static void set_state(struct devices *ds, struct device *d, enum device_state state)
{
    struct sim_stats *st = &ds->stats;
    bool was_connected = d->state == DEV_CONNECTED || d->state == DEV_DRAINING;
    bool was_connecting = d->state == DEV_QUEUED || d->state == DEV_CONNECTING;
    bool is_connected = state == DEV_CONNECTED || state == DEV_DRAINING;
    bool is_connecting = state == DEV_QUEUED || state == DEV_CONNECTING;
    st->connected += (size_t)is_connected - (size_t)was_connected;
    st->connecting += (size_t)is_connecting - (size_t)was_connecting;
    if (st->connected > st->connected_max)
        st->connected_max = st->connected;
    d->state = state;
}

/* ---- library callbacks: record only ---- */

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
    struct device *d = obj;
    d->reason = rc;
    if (rc == 0)
        d->connack = true;
    else
        d->refused = true;
}

static void on_disconnect(struct mosquitto *m, void *obj, int rc)
{
    struct device *d = obj;
    d->reason = rc;
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
    struct device *d = obj;
    cJSON *j = cJSON_ParseWithLength(msg->payload, (size_t)msg->payloadlen);
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(j, "action");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
    if (cJSON_IsString(action) && strcmp(action->valuestring, "stop") == 0) {
        bool named = cJSON_IsString(reason) &&
                     strlen(reason->valuestring) < sizeof(d->stop_reason) &&
                     hb_id_valid(reason->valuestring, strlen(reason->valuestring));
        snprintf(d->stop_reason, sizeof(d->stop_reason), "%s",
                 named ? reason->valuestring : "unnamed");
        d->stop_pending = true;
    }
    cJSON_Delete(j);
}

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct device *d = obj;
    /* QoS 0 reports a publish once it is written; only QoS 1 acknowledgements count. */
    if (d->set->cfg->qos == 0 || d->outstanding == 0)
        return;
    d->outstanding--;
    d->set->stats.acked++;
}

/* ---- the socket's registration ---- */

/* Frees the device's client. The socket must already be out of epoll (d->fd == -1).
 * Unacknowledged QoS 1 publishes become lost. */
static void release(struct devices *ds, struct device *d)
{
    if (d->outstanding > 0) {
        ds->stats.lost += d->outstanding;
        device_log(ds, HB_LOG_WARN,
                   "%s: %u QoS 1 heartbeat(s) unacknowledged when the "
                   "connection ended",
                   device_id(ds, d), d->outstanding);
        d->outstanding = 0;
    }
    if (d->mosq != NULL) {
        mosquitto_destroy(d->mosq);
        d->mosq = NULL;
        ds->n_open--;
    }
    d->connack = d->refused = false;
}

/* Takes the socket out of epoll, unless the library has already closed it (then the kernel
 * dropped it from the set, and its number may not be ours any more). */
static void unregister(struct devices *ds, struct device *d)
{
    if (d->fd < 0)
        return;
    if (d->mosq != NULL && mosquitto_socket(d->mosq) == d->fd &&
        epoll_ctl(ds->epfd, EPOLL_CTL_DEL, d->fd, NULL) < 0)
        HB_WARN("%s: epoll_ctl(DEL, %d): %s", device_id(ds, d), d->fd, strerror(errno));
    d->fd = -1;
}

/* Registers or updates the socket's events: always EPOLLIN, EPOLLOUT while the library has
 * something to write. Returns false when epoll refused (the device is then lost). */
static bool sync_events(struct devices *ds, struct device *d, int fd)
{
    uint32_t want = EPOLLIN | (mosquitto_want_write(d->mosq) ? EPOLLOUT : 0u);
    struct epoll_event ev = {.events = want, .data.u64 = index_of(ds, d)};
    if (d->fd != fd) {
        /* A new socket. A different number registered before was closed by the library
         * and so has already left the set. */
        d->fd = -1;
        if (epoll_ctl(ds->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            HB_ERROR("%s: epoll_ctl(ADD, %d): %s", device_id(ds, d), fd, strerror(errno));
            return false;
        }
        d->fd = fd;
        d->events = want;
    } else if (want != d->events) {
        if (epoll_ctl(ds->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
            HB_ERROR("%s: epoll_ctl(MOD, %d): %s", device_id(ds, d), fd, strerror(errno));
            return false;
        }
        d->events = want;
    }
    return true;
}

/* The one way the machine calls libmosquitto on a device's client: runs step, then loses the
 * device for the reason step gave, or settles it. Only mosquitto_new and the callback setters
 * (no socket yet), the queries mosquitto_socket and mosquitto_want_write, and
 * mosquitto_destroy (after unregister) are called outside a step. */
static void device_drive(struct devices *ds, struct device *d, device_step_fn step, void *arg)
{
    char why[400];
    if (!step(ds, d, arg, why, sizeof(why))) {
        device_lost(ds, d, why);
        return;
    }
    device_settle(ds, d);
}

/* ---- connection lifecycle ---- */

static void finish_device(struct devices *ds, struct device *d)
{
    timers_cancel(&ds->timers, index_of(ds, d));
    set_state(ds, d, DEV_DONE);
}

/* After a failure: try again after a backoff if the device's window is still open. */
static void retry_or_finish(struct devices *ds, struct device *d, int64_t now)
{
    if (!ds->running || now >= device_stop_at(ds, d) || d->stopped) {
        finish_device(ds, d);
        return;
    }
    unsigned shift = d->attempts < 8 ? d->attempts : 8;
    int64_t backoff = (int64_t)DEVICE_BACKOFF_MIN_MS << shift;
    if (backoff > DEVICE_BACKOFF_MAX_MS)
        backoff = DEVICE_BACKOFF_MAX_MS;
    /* Spread retries over [backoff/2, backoff) so devices dropped together do not return
     * together. */
    backoff = backoff / 2 + (int64_t)(rng_unit(&ds->rng) * (double)(backoff / 2));
    d->attempts++;
    set_state(ds, d, DEV_BACKOFF);
    timers_set(&ds->timers, index_of(ds, d), now + backoff);
}

/* The connection is over, for the reason given (the library closed it, or we gave up on it).
 * A device that was disconnecting on purpose is done; any other ending is an error. */
static void device_lost(struct devices *ds, struct device *d, const char *why)
{
    enum device_state was = d->state;
    bool refused = d->refused;
    unregister(ds, d);
    release(ds, d);
    if (was == DEV_DISCONNECTING) {
        finish_device(ds, d);
        return;
    }
    ds->stats.errors++;
    if (was != DEV_CONNECTING)
        ds->stats.dropped++;
    else if (refused)
        ds->stats.refused++;
    else
        ds->stats.connect_failed++;
    device_log(ds, HB_LOG_WARN, "%s: %s: %s", device_id(ds, d),
               was == DEV_CONNECTING ? "connect failed" : "connection lost", why);
    retry_or_finish(ds, d, hb_now_ms());
}

/* Why the library ended a connection, from the last code its callbacks reported. */
static const char *closed_reason(const struct device *d)
{
    if (d->refused)
        return mosquitto_connack_string(d->reason);
    if (d->reason == MOSQ_ERR_SUCCESS)
        return "closed";
    return mosquitto_strerror(d->reason);
}

/* Step: queues a DISCONNECT; the device then waits for the socket to close. arg: int64_t now. */
static bool step_disconnect(struct devices *ds, struct device *d, void *arg, char *why,
                            size_t why_len)
{
    int64_t now = *(const int64_t *)arg;
    set_state(ds, d, DEV_DISCONNECTING);
    timers_set(&ds->timers, index_of(ds, d), now + DEVICE_DISCONNECT_MS);
    int rc = mosquitto_disconnect(d->mosq);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
        HB_DEBUG("%s: disconnect: %s", device_id(ds, d), rc_text(rc));
    return true;
}

/* Step: subscribes to the device's control topic (--api), right after CONNACK. */
static bool step_subscribe(struct devices *ds, struct device *d, void *arg, char *why,
                           size_t why_len)
{
    char topic[256];
    snprintf(topic, sizeof(topic), "%s/%s/%s", ds->cfg->house->control_prefix,
             device_account(ds, d), device_id(ds, d));
    int rc = mosquitto_subscribe(d->mosq, NULL, topic, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(why, why_len, "subscribe %s: %s", topic, rc_text(rc));
        return false;
    }
    return true;
}

/* Acts on what the callbacks recorded during the last library call on d and brings the epoll
 * registration in line with the client's socket. Only device_drive calls it after a library
 * call; elsewhere it runs after a state change that may call for a DISCONNECT. */
static void device_settle(struct devices *ds, struct device *d)
{
    if (d->mosq == NULL)
        return;
    int fd = mosquitto_socket(d->mosq);
    if (fd < 0) {
        d->fd = -1; /* closed by the library, so already out of the epoll set */
        device_lost(ds, d, closed_reason(d));
        return;
    }
    int64_t now = hb_now_ms();
    if (d->refused) {
        device_lost(ds, d, closed_reason(d));
        return;
    }
    if (d->connack) {
        d->connack = false;
        if (d->state == DEV_CONNECTING) {
            set_state(ds, d, DEV_CONNECTED);
            ds->stats.connects++;
            if (!d->ever) {
                d->ever = true;
                if (++ds->stats.ever_connected == ds->cfg->n_devices)
                    ds->stats.all_connected_ms = now;
            }
            d->attempts = 0;
            d->since_ms = now;
            /* The first heartbeat goes right away (the guard band permitting). */
            timers_set(&ds->timers, index_of(ds, d), now);
            if (ds->cfg->house != NULL) {
                device_drive(ds, d, step_subscribe, NULL); /* settles again inside */
                return;
            }
        }
    }
    if (d->stop_pending && d->state == DEV_CONNECTED) {
        /* Obeyed at once: the service already gave the slot away, so no stop heartbeat. */
        char members[64];
        snprintf(members, sizeof(members), "\"reason\":\"%s\"", d->stop_reason);
        playlog_event(ds->cfg->house->plays_fd, now, "stopped", device_account(ds, d),
                      device_id(ds, d), members);
        d->stopped = true;
        set_state(ds, d, DEV_DRAINING);
        timers_set(&ds->timers, index_of(ds, d), now + DEVICE_DRAIN_MS);
    }
    d->stop_pending = false;
    if (d->state == DEV_DRAINING && d->outstanding == 0 && d->vanisher && !d->stopped) {
        /* Acknowledged, so the truth holds; then the socket just closes: no DISCONNECT, no
         * stop heartbeat. */
        playlog_event(ds->cfg->house->plays_fd, now, "vanished", device_account(ds, d),
                      device_id(ds, d), NULL);
        unregister(ds, d);
        release(ds, d);
        finish_device(ds, d);
        return;
    }
    if (d->state == DEV_DRAINING && d->outstanding == 0) {
        /* The DISCONNECT is usually written, and the socket closed, at once: settled again
         * inside. */
        device_drive(ds, d, step_disconnect, &now);
        return;
    }
    if (!sync_events(ds, d, fd))
        device_lost(ds, d, "epoll refused the socket");
}

/* TLS to the broker: its certificate must chain to cfg.ca_file (or the system's CAs) and
 * name the host connected to (libmosquitto checks the name unless told to be insecure). Each
 * client builds its own SSL context, so TLS costs memory and connect time per device. */
static int set_tls(struct devices *ds, struct device *d)
{
    if (ds->cfg->ca_file != NULL)
        return mosquitto_tls_set(d->mosq, ds->cfg->ca_file, NULL, NULL, NULL, NULL);
    return mosquitto_int_option(d->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
}

/* Sets the client's credentials: the configured ones, or a token minted now for this device
 * (pinned to its id, the client id) with the account as user name. False when no token could
 * be minted (counted and logged). */
static bool set_credentials(struct devices *ds, struct device *d)
{
    const char *username = ds->cfg->username ? ds->cfg->username : device_account(ds, d);
    if (d->token != NULL)
        return mosquitto_username_pw_set(d->mosq, username, d->token) == MOSQ_ERR_SUCCESS;
    if (ds->cfg->key == NULL)
        return mosquitto_username_pw_set(d->mosq, username, ds->cfg->password) == MOSQ_ERR_SUCCESS;
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE,
        .account = device_account(ds, d),
        .device = device_id(ds, d),
        .topic_prefix = ds->cfg->topic_prefix,
        .now_s = hb_now_ms() / 1000,
        .ttl_s = ds->cfg->token_ttl_s,
    };
    char err[256];
    char *token = hb_token_mint(ds->cfg->key, &req, err, sizeof(err));
    if (token == NULL) {
        ds->stats.token_errors++;
        device_log(ds, HB_LOG_ERROR, "%s: cannot mint a token: %s", device_id(ds, d), err);
        return false;
    }
    int rc = mosquitto_username_pw_set(d->mosq, username, token); /* copies both */
    free(token);
    return rc == MOSQ_ERR_SUCCESS;
}

/* Step: credentials, socket options and the non-blocking connect to the device's broker. */
static bool step_connect(struct devices *ds, struct device *d, void *arg, char *why, size_t why_len)
{
    size_t global = ds->cfg->first_device + index_of(ds, d);
    const struct options_broker *b = &ds->cfg->brokers[global % ds->cfg->n_brokers];
    const char *source = ds->cfg->n_sources ? ds->cfg->sources[global % ds->cfg->n_sources] : NULL;
    if (!set_credentials(ds, d)) {
        /* Another attempt mints again; a key that cannot sign fails every time, and the
         * count says so. */
        snprintf(why, why_len, "no credentials");
        return false;
    }
    int rc = mosquitto_int_option(d->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc == MOSQ_ERR_SUCCESS && b->tls)
        rc = set_tls(ds, d);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect_bind_async(d->mosq, b->host, b->port, ds->cfg->keepalive_s, source);
    if (rc != MOSQ_ERR_SUCCESS) {
        /* A socket may exist that epoll never saw (d->fd is -1); destroying the client
         * closes it. */
        snprintf(why, why_len, "%s:%d%s%s: %s", b->host, b->port, source ? " from " : "",
                 source ? source : "", rc_text(rc));
        return false;
    }
    return true;
}

static void device_connect(struct devices *ds, struct device *d)
{
    set_state(ds, d, DEV_CONNECTING);
    timers_set(&ds->timers, index_of(ds, d), hb_now_ms() + DEVICE_CONNECT_TIMEOUT_MS);
    d->connack = d->refused = false;
    d->reason = 0;
    d->mosq = mosquitto_new(device_id(ds, d), true, d);
    if (d->mosq == NULL) {
        device_log(ds, HB_LOG_ERROR, "%s: mosquitto_new: %s", device_id(ds, d), strerror(errno));
        ds->stats.errors++;
        ds->stats.connect_failed++;
        retry_or_finish(ds, d, hb_now_ms());
        return;
    }
    ds->n_open++;
    mosquitto_connect_callback_set(d->mosq, on_connect);
    mosquitto_disconnect_callback_set(d->mosq, on_disconnect);
    mosquitto_publish_callback_set(d->mosq, on_publish);
    mosquitto_message_callback_set(d->mosq, on_message);
    device_drive(ds, d, step_connect, NULL);
}

/* Ends the device's activity: its window closed or the run is ending. */
static bool device_send_stop(struct devices *ds, struct device *d, int64_t now);

static void device_stop(struct devices *ds, struct device *d, int64_t now)
{
    switch (d->state) {
    case DEV_IDLE:
    case DEV_QUEUED:
    case DEV_BACKOFF:
        finish_device(ds, d);
        break;
    case DEV_CONNECTING:
        /* Not an error: the device simply stopped trying. */
        unregister(ds, d);
        release(ds, d);
        finish_device(ds, d);
        break;
    case DEV_CONNECTED:
        if (ds->cfg->house != NULL && !d->vanisher && !device_send_stop(ds, d, now))
            break;
        set_state(ds, d, DEV_DRAINING);
        timers_set(&ds->timers, index_of(ds, d), now + DEVICE_DRAIN_MS);
        device_settle(ds, d); /* disconnects at once when nothing is outstanding */
        break;
    case DEV_DRAINING:
    case DEV_DISCONNECTING:
    case DEV_DONE:
        break;
    }
}

static void enqueue(struct devices *ds, struct device *d)
{
    set_state(ds, d, DEV_QUEUED);
    /* A device is queued at most once at a time, so the ring of n_devices never overflows. */
    ds->queue[(ds->queue_head + ds->queue_len) % ds->cfg->n_devices] = index_of(ds, d);
    ds->queue_len++;
}

/* Publishes one heartbeat: the topic and payload rendered at the moment of sending, which is
 * also the moment the truth records. */
static bool publish_heartbeat(struct devices *ds, struct device *d, int64_t now, bool stop,
                              char *why, size_t why_len)
{
    char topic[256], payload[PAYLOAD_MAX];
    int tlen = snprintf(topic, sizeof(topic), "%s/%s/%s", ds->cfg->topic_prefix,
                        device_account(ds, d), device_id(ds, d));
    const struct plan_device *pd = device_plan(ds, d);
    struct payload_values v = {
        .ts_ms = now,
        .device = device_id(ds, d),
        .account = device_account(ds, d),
        .bitrate = pd->bitrate,
        .media = pd->media,
        .play_ms = now - d->since_ms,
        .seq = d->seq,
    };
    plan_agent(pd, &v.os, &v.browser, &v.model);
    int plen = payload_render(ds->cfg->payload, &v, payload, sizeof(payload));
    if (plen >= 0 && ds->cfg->house != NULL) {
        char members[64];
        snprintf(members, sizeof(members), "\"started\":%" PRId64 "%s", d->started_ms,
                 stop ? ",\"state\":\"stopped\"" : "");
        plen = payload_add_members(payload, (size_t)plen, sizeof(payload), members);
    }
    if (tlen < 0 || (size_t)tlen >= sizeof(topic) || plen < 0) {
        HB_ERROR("%s: topic or payload too long", device_id(ds, d));
        ds->stats.errors++;
        return true;
    }
    int rc = mosquitto_publish(d->mosq, NULL, topic, plen, payload, ds->cfg->qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        snprintf(why, why_len, "publish: %s", rc_text(rc));
        return false;
    }
    ds->stats.published++;
    d->seq++;
    if (ds->cfg->qos > 0)
        d->outstanding++;
    truth_record(ds->truth, ds->cfg->first_device + index_of(ds, d), now);
    if (stop)
        playlog_event(ds->cfg->house->plays_fd, now, "released", device_account(ds, d),
                      device_id(ds, d), NULL);
    return true;
}

/* Step (--api): the explicit stop heartbeat (arg: int64_t now), sent whatever is pending. */
static bool step_stop_heartbeat(struct devices *ds, struct device *d, void *arg, char *why,
                                size_t why_len)
{
    return publish_heartbeat(ds, d, *(const int64_t *)arg, true, why, why_len);
}

/* --api: sends the stop heartbeat, outside the guard band like any counted heartbeat. False
 * while the band lasts (the timer is set for its end) or when the device was lost. */
static bool device_send_stop(struct devices *ds, struct device *d, int64_t now)
{
    int64_t at = schedule_guard(now, ds->cfg->interval_ms, ds->cfg->guard_ms);
    if (at > now) {
        timers_set(&ds->timers, index_of(ds, d), at);
        return false;
    }
    device_drive(ds, d, step_stop_heartbeat, &now);
    return d->state == DEV_CONNECTED;
}

/* --api: asks hb-api whether the device may play (blocking, bounded by the client's timeout).
 * True when admitted (the token kept); otherwise the device is done: refused (recorded in the
 * plays truth) or the service failed (counted as an error and logged). */
static bool device_admit(struct devices *ds, struct device *d)
{
    const struct sim_house *h = ds->cfg->house;
    struct admission_answer a;
    char err[512], members[4096];
    bool ok =
        admission_request(&h->api, device_account(ds, d), device_id(ds, d), &a, err, sizeof(err));
    int64_t now = hb_now_ms();
    int n = -1;
    if (ok && a.allow)
        n = snprintf(members, sizeof(members), "\"limit\":%ld,\"evicted\":%s", a.limit, a.ids);
    else if (ok)
        n = snprintf(members, sizeof(members), "\"reason\":\"%s\",\"limit\":%ld,\"active\":%s",
                     a.reason, a.limit, a.ids);
    if (ok && (n < 0 || (size_t)n >= sizeof(members))) {
        snprintf(err, sizeof(err), "the answer lists too many devices");
        ok = false;
    }
    if (!ok) {
        ds->stats.errors++;
        device_log(ds, HB_LOG_ERROR, "%s: admission: %s", device_id(ds, d), err);
    } else {
        playlog_event(h->plays_fd, now, a.allow ? "admitted" : "refused", device_account(ds, d),
                      device_id(ds, d), members);
    }
    if (ok && a.allow) {
        d->token = a.token;
        a.token = NULL;
        d->started_ms = now;
        d->vanisher = rng_unit(&ds->rng) < h->vanish;
    } else {
        finish_device(ds, d);
    }
    admission_answer_finish(&a);
    return d->token != NULL;
}

/* Step: a heartbeat is due and allowed now (arg: int64_t now): sends it, or skips it when it
 * could not leave at once, then sets the timer for the next one. */
static bool step_heartbeat(struct devices *ds, struct device *d, void *arg, char *why,
                           size_t why_len)
{
    int64_t now = *(const int64_t *)arg;
    if (ds->cfg->qos > 0 && d->outstanding >= DEVICE_INFLIGHT_MAX) {
        /* Sending now would only queue behind unacknowledged ones, and a late send could
         * cross a boundary; skip this beat instead. */
        ds->stats.skipped++;
        device_log(ds, HB_LOG_WARN, "%s: %u heartbeats unacknowledged; skipping one",
                   device_id(ds, d), d->outstanding);
    } else if (mosquitto_want_write(d->mosq)) {
        /* Earlier packets are still unwritten (a full socket buffer): this one would leave
         * later than the time the truth gives it. */
        ds->stats.skipped++;
        device_log(ds, HB_LOG_WARN, "%s: socket backlog; skipping a heartbeat", device_id(ds, d));
    } else if (!publish_heartbeat(ds, d, now, false, why, why_len)) {
        return false;
    }
    int64_t stop = device_stop_at(ds, d);
    int64_t next =
        schedule_next(now, ds->cfg->heartbeat_s, ds->cfg->jitter, 2.0 * rng_unit(&ds->rng) - 1.0);
    timers_set(&ds->timers, index_of(ds, d), next < stop ? next : stop);
    return true;
}

static void device_heartbeat(struct devices *ds, struct device *d)
{
    /* Fresh time: the guard decision and the truth must use the moment of sending. */
    int64_t now = hb_now_ms();
    int64_t stop = device_stop_at(ds, d);
    if (!ds->running || now >= stop) {
        device_stop(ds, d, now);
        return;
    }
    int64_t at = schedule_guard(now, ds->cfg->interval_ms, ds->cfg->guard_ms);
    if (at > now) {
        /* Spread over the band's width: 200,000 devices with a 1 s guard would otherwise send
         * 40 % of a 5 s period's heartbeats in the same millisecond. */
        at = schedule_spread(at, ds->cfg->interval_ms, ds->cfg->guard_ms, rng_unit(&ds->rng));
        timers_set(&ds->timers, index_of(ds, d), at < stop ? at : stop);
        return;
    }
    device_drive(ds, d, step_heartbeat, &now);
}

/* A device's timer fired. */
static void device_timer(struct devices *ds, struct device *d, int64_t now)
{
    switch (d->state) {
    case DEV_IDLE:
    case DEV_BACKOFF:
        if (ds->running && now < device_stop_at(ds, d)) {
            if (ds->cfg->house == NULL || d->token != NULL || device_admit(ds, d))
                enqueue(ds, d);
        } else
            finish_device(ds, d);
        break;
    case DEV_CONNECTING:
        device_lost(ds, d, "no CONNACK in time");
        break;
    case DEV_CONNECTED:
        device_heartbeat(ds, d);
        break;
    case DEV_DRAINING:
        /* The acknowledgements did not come; they count as lost when the client goes. */
        device_drive(ds, d, step_disconnect, &now);
        break;
    case DEV_DISCONNECTING:
        device_lost(ds, d, "disconnect did not complete");
        break;
    case DEV_QUEUED:
    case DEV_DONE:
        break;
    }
}

/* Step: readiness on the socket (arg: the uint32_t epoll events). */
static bool step_io(struct devices *ds, struct device *d, void *arg, char *why, size_t why_len)
{
    uint32_t events = *(const uint32_t *)arg;
    if ((events & (EPOLLERR | EPOLLHUP)) && d->state == DEV_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        snprintf(why, why_len, "%s", err ? strerror(err) : "connection closed");
        return false;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        mosquitto_loop_read(d->mosq, 1);
        /* On hang-up, read what is left (PUBACKs count) until the library sees the end. */
        for (int i = 0; (events & (EPOLLERR | EPOLLHUP)) && i < 64 && d->mosq &&
                        mosquitto_socket(d->mosq) >= 0;
             i++)
            mosquitto_loop_read(d->mosq, 1);
    }
    if ((events & EPOLLOUT) && d->mosq && mosquitto_socket(d->mosq) >= 0)
        mosquitto_loop_write(d->mosq, 1);
    if ((events & (EPOLLERR | EPOLLHUP)) && d->mosq && mosquitto_socket(d->mosq) >= 0) {
        snprintf(why, why_len, "socket error or hang-up");
        return false;
    }
    return true;
}

/* Step: keepalive (PINGREQ when due, and noticing a silent broker). */
static bool step_misc(struct devices *ds, struct device *d, void *arg, char *why, size_t why_len)
{
    mosquitto_loop_misc(d->mosq);
    return true;
}

/* ---- what the loop calls ---- */

bool devices_init(struct devices *ds, const struct sim_config *cfg, int epfd)
{
    memset(ds, 0, sizeof(*ds));
    ds->cfg = cfg;
    ds->epfd = epfd;
    ds->stats.devices = cfg->n_devices;
    rng_seed(&ds->rng, cfg->seed);
    ds->log_limit.burst = 20;
    ds->log_limit.window_ms = 10000;
    ds->dev = calloc(cfg->n_devices + 1, sizeof(*ds->dev));
    ds->queue = calloc(cfg->n_devices + 1, sizeof(*ds->queue));
    if (ds->dev == NULL || ds->queue == NULL) {
        HB_ERROR("hb-sim: out of memory for %zu devices", cfg->n_devices);
        return false;
    }
    for (size_t i = 0; i < cfg->n_devices; i++) {
        ds->dev[i].set = ds;
        ds->dev[i].fd = -1;
        ds->dev[i].state = DEV_DONE;
    }
    return timers_init(&ds->timers, cfg->n_devices);
}

void devices_finish(struct devices *ds)
{
    if (ds->dev != NULL) {
        for (size_t i = 0; i < ds->cfg->n_devices; i++) {
            struct device *d = &ds->dev[i];
            if (d->mosq != NULL) {
                unregister(ds, d);
                release(ds, d);
            }
            free(d->token);
        }
    }
    timers_finish(&ds->timers);
    free(ds->queue);
    free(ds->dev);
    ds->queue = NULL;
    ds->dev = NULL;
}

void devices_start(struct devices *ds, int64_t start_ms, int64_t end_ms, struct truth *truth)
{
    ds->truth = truth;
    ds->stats.start_ms = start_ms;
    ds->stats.end_ms = end_ms;
    ds->running = true;
    if (ds->cfg->n_devices == 0)
        ds->stats.all_connected_ms = start_ms; /* vacuously: nobody is left to connect */
    for (size_t i = 0; i < ds->cfg->n_devices; i++) {
        set_state(ds, &ds->dev[i], DEV_IDLE);
        timers_set(&ds->timers, i, start_ms + device_plan(ds, &ds->dev[i])->start_ms);
    }
}

void devices_run_timers(struct devices *ds, int64_t now)
{
    struct timers_entry e;
    while (timers_pop_due(&ds->timers, now, &e))
        device_timer(ds, &ds->dev[e.id], now);
}

bool devices_next_timer(const struct devices *ds, int64_t *when)
{
    struct timers_entry e;
    if (!timers_peek(&ds->timers, &e))
        return false;
    *when = e.when;
    return true;
}

void devices_io(struct devices *ds, size_t id, uint32_t events)
{
    struct device *d = &ds->dev[id];
    if (d->mosq == NULL || d->fd < 0)
        return;
    device_drive(ds, d, step_io, &events);
}

bool devices_connect_next(struct devices *ds, int64_t now)
{
    while (ds->queue_len > 0) {
        struct device *d = &ds->dev[ds->queue[ds->queue_head]];
        ds->queue_head = (ds->queue_head + 1) % ds->cfg->n_devices;
        ds->queue_len--;
        if (d->state != DEV_QUEUED)
            continue; /* stopped while waiting */
        if (!ds->running || now >= device_stop_at(ds, d)) {
            finish_device(ds, d);
            continue;
        }
        device_connect(ds, d);
        return true;
    }
    return false;
}

void devices_keepalive(struct devices *ds, size_t id)
{
    struct device *d = &ds->dev[id];
    if (d->mosq == NULL || (d->state != DEV_CONNECTED && d->state != DEV_DRAINING))
        return;
    device_drive(ds, d, step_misc, NULL);
}

void devices_stop_all(struct devices *ds, int64_t now)
{
    if (!ds->running)
        return;
    ds->running = false;
    if (now < ds->stats.end_ms)
        ds->stats.end_ms = now;
    for (size_t i = 0; i < ds->cfg->n_devices; i++)
        device_stop(ds, &ds->dev[i], now);
}

size_t devices_cut_off(struct devices *ds)
{
    size_t cut = 0;
    for (size_t i = 0; i < ds->cfg->n_devices; i++) {
        struct device *d = &ds->dev[i];
        if (d->mosq == NULL)
            continue;
        cut++;
        unregister(ds, d);
        release(ds, d);
        finish_device(ds, d);
    }
    return cut;
}
