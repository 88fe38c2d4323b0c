/* The simulator's event loop: one epoll set holds every device's MQTT socket, a timer heap
 * every device's next action, and libmosquitto is driven by hand (EPOLLOUT only while it wants
 * to write). Callbacks only record; state changes happen in device_settle() after the library
 * call returns. A dropped connection destroys its client, so the library can never resend an
 * old heartbeat later, into another interval. Tokens are minted at each connect, so a
 * reconnect presents a fresh one and nothing is held per idle device. */
#include "sim.h"

#include "interval.h"
#include "log.h"
#include "schedule.h"
#include "timers.h"
#include "token.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <mosquitto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define SIM_CONNECT_TIMEOUT_MS 10000 /* CONNECT sent, no CONNACK: give up and retry */
#define SIM_DRAIN_MS 3000            /* at a stop, longest wait for outstanding PUBACKs */
#define SIM_DISCONNECT_MS 2000       /* DISCONNECT queued, socket still open: give up */
#define SIM_RUN_DRAIN_MS 5000        /* at the end of the run, longest wait for all devices */
#define SIM_BACKOFF_MIN_MS 500
#define SIM_BACKOFF_MAX_MS 15000
#define SIM_INFLIGHT_MAX 16 /* QoS 1 publishes unacknowledged before heartbeats are skipped */
#define SIM_EVENTS 512
#define SIM_TICK_MS 1000
#define SIM_SIGNAL_TAG UINT64_MAX

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
    struct sim *sim;        /* the owner, for library callbacks (userdata is the device) */
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
};

struct sim {
    struct sim_config cfg;
    struct device *dev; /* [cfg.n_devices] */
    struct timers timers;
    size_t *queue; /* ring of devices waiting for a connect slot */
    size_t queue_head, queue_len;
    int epfd;
    int sigfd;
    struct rng rng;
    struct truth *truth;
    struct hb_ratelimit log_limit;

    double tokens; /* connect slots available now */
    double burst;
    int64_t tokens_at;

    bool running; /* publishing; false once the run's end began */
    int64_t start_ms, end_ms, drain_deadline;
    int64_t next_report, next_misc;
    size_t sweep_next; /* the keepalive sweep's position */

    size_t n_open;       /* devices holding a client */
    size_t n_connected;  /* CONNECTED or DRAINING */
    size_t n_connecting; /* QUEUED or CONNECTING */
    size_t connected_max;
    size_t ever_connected;
    int64_t all_connected_ms;
    uint64_t connects, published, acked, errors, lost, skipped;
    uint64_t connect_failed, refused, dropped, token_errors;
    bool interrupted;
};

/* Rate-limited log line about one device: the network can make every device fail at once. */
static void device_log(struct sim *s, enum hb_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void device_log(struct sim *s, enum hb_log_level level, const char *fmt, ...)
{
    long suppressed;
    if (!hb_ratelimit_allow(&s->log_limit, &suppressed))
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

static size_t index_of(const struct sim *s, const struct device *d)
{
    return (size_t)(d - s->dev);
}

static const char *device_id(const struct sim *s, const struct device *d)
{
    return s->cfg.plan->devices[s->cfg.first_device + index_of(s, d)];
}

static const struct plan_device *device_plan(const struct sim *s, const struct device *d)
{
    return &s->cfg.plan->device[s->cfg.first_device + index_of(s, d)];
}

static const char *device_account(const struct sim *s, const struct device *d)
{
    return s->cfg.plan->accounts[device_plan(s, d)->account];
}

/* When the device must stop: its window end, or the run's end, whichever is first. */
static int64_t device_stop_at(const struct sim *s, const struct device *d)
{
    int64_t stop = s->start_ms + device_plan(s, d)->stop_ms;
    return stop < s->end_ms ? stop : s->end_ms;
}

static const char *rc_text(int rc)
{
    return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

static void set_state(struct sim *s, struct device *d, enum device_state state)
{
    bool was_connected = d->state == DEV_CONNECTED || d->state == DEV_DRAINING;
    bool was_connecting = d->state == DEV_QUEUED || d->state == DEV_CONNECTING;
    bool is_connected = state == DEV_CONNECTED || state == DEV_DRAINING;
    bool is_connecting = state == DEV_QUEUED || state == DEV_CONNECTING;
    s->n_connected += (size_t)is_connected - (size_t)was_connected;
    s->n_connecting += (size_t)is_connecting - (size_t)was_connecting;
    if (s->n_connected > s->connected_max)
        s->connected_max = s->n_connected;
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

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
    struct device *d = obj;
    /* QoS 0 reports a publish once it is written; only QoS 1 acknowledgements count. */
    if (d->sim->cfg.qos == 0 || d->outstanding == 0)
        return;
    d->outstanding--;
    d->sim->acked++;
}

/* ---- connection lifecycle ---- */

/* Frees the device's client. The socket must already be out of epoll (d->fd == -1).
 * Unacknowledged QoS 1 publishes become lost. */
static void release(struct sim *s, struct device *d)
{
    if (d->outstanding > 0) {
        s->lost += d->outstanding;
        device_log(s, HB_LOG_WARN,
                   "%s: %u QoS 1 heartbeat(s) unacknowledged when the "
                   "connection ended",
                   device_id(s, d), d->outstanding);
        d->outstanding = 0;
    }
    if (d->mosq != NULL) {
        mosquitto_destroy(d->mosq);
        d->mosq = NULL;
        s->n_open--;
    }
    d->connack = d->refused = false;
}

/* Takes the socket out of epoll, unless the library has already closed it (then the kernel
 * dropped it from the set, and its number may not be ours any more). */
static void unregister(struct sim *s, struct device *d)
{
    if (d->fd < 0)
        return;
    if (d->mosq != NULL && mosquitto_socket(d->mosq) == d->fd &&
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, d->fd, NULL) < 0)
        HB_WARN("%s: epoll_ctl(DEL, %d): %s", device_id(s, d), d->fd, strerror(errno));
    d->fd = -1;
}

static void finish_device(struct sim *s, struct device *d)
{
    timers_cancel(&s->timers, index_of(s, d));
    set_state(s, d, DEV_DONE);
}

/* After a failure: try again after a backoff if the device's window is still open. */
static void retry_or_finish(struct sim *s, struct device *d, int64_t now)
{
    if (!s->running || now >= device_stop_at(s, d)) {
        finish_device(s, d);
        return;
    }
    unsigned shift = d->attempts < 8 ? d->attempts : 8;
    int64_t backoff = (int64_t)SIM_BACKOFF_MIN_MS << shift;
    if (backoff > SIM_BACKOFF_MAX_MS)
        backoff = SIM_BACKOFF_MAX_MS;
    /* Spread retries over [backoff/2, backoff) so devices dropped together do not return
     * together. */
    backoff = backoff / 2 + (int64_t)(rng_unit(&s->rng) * (double)(backoff / 2));
    d->attempts++;
    set_state(s, d, DEV_BACKOFF);
    timers_set(&s->timers, index_of(s, d), now + backoff);
}

/* The connection is over, for the reason given (the library closed it, or we gave up on it).
 * A device that was disconnecting on purpose is done; any other ending is an error. */
static void device_lost(struct sim *s, struct device *d, const char *why)
{
    enum device_state was = d->state;
    bool refused = d->refused;
    unregister(s, d);
    release(s, d);
    if (was == DEV_DISCONNECTING) {
        finish_device(s, d);
        return;
    }
    s->errors++;
    if (was != DEV_CONNECTING)
        s->dropped++;
    else if (refused)
        s->refused++;
    else
        s->connect_failed++;
    device_log(s, HB_LOG_WARN, "%s: %s: %s", device_id(s, d),
               was == DEV_CONNECTING ? "connect failed" : "connection lost", why);
    retry_or_finish(s, d, hb_now_ms());
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

static void start_disconnect(struct sim *s, struct device *d, int64_t now)
{
    set_state(s, d, DEV_DISCONNECTING);
    timers_set(&s->timers, index_of(s, d), now + SIM_DISCONNECT_MS);
    int rc = mosquitto_disconnect(d->mosq);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
        HB_DEBUG("%s: disconnect: %s", device_id(s, d), rc_text(rc));
}

/* Registers or updates the socket's events: always EPOLLIN, EPOLLOUT while the library has
 * something to write. Returns false when epoll refused (the device is then lost). */
static bool sync_events(struct sim *s, struct device *d, int fd)
{
    uint32_t want = EPOLLIN | (mosquitto_want_write(d->mosq) ? EPOLLOUT : 0u);
    struct epoll_event ev = {.events = want, .data.u64 = index_of(s, d)};
    if (d->fd != fd) {
        /* A new socket. A different number registered before was closed by the library
         * and so has already left the set. */
        d->fd = -1;
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            HB_ERROR("%s: epoll_ctl(ADD, %d): %s", device_id(s, d), fd, strerror(errno));
            return false;
        }
        d->fd = fd;
        d->events = want;
    } else if (want != d->events) {
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0) {
            HB_ERROR("%s: epoll_ctl(MOD, %d): %s", device_id(s, d), fd, strerror(errno));
            return false;
        }
        d->events = want;
    }
    return true;
}

/* Called after every library call on d: acts on what the callbacks recorded and brings the
 * epoll registration in line with the client's socket. */
static void device_settle(struct sim *s, struct device *d)
{
    while (d->mosq != NULL) {
        int fd = mosquitto_socket(d->mosq);
        if (fd < 0) {
            d->fd = -1; /* closed by the library, so already out of the epoll set */
            device_lost(s, d, closed_reason(d));
            return;
        }
        int64_t now = hb_now_ms();
        if (d->refused) {
            device_lost(s, d, closed_reason(d));
            return;
        }
        if (d->connack) {
            d->connack = false;
            if (d->state == DEV_CONNECTING) {
                set_state(s, d, DEV_CONNECTED);
                s->connects++;
                if (!d->ever) {
                    d->ever = true;
                    if (++s->ever_connected == s->cfg.n_devices)
                        s->all_connected_ms = now;
                }
                d->attempts = 0;
                d->since_ms = now;
                /* The first heartbeat goes right away (the guard band permitting). */
                timers_set(&s->timers, index_of(s, d), now);
            }
        }
        if (d->state == DEV_DRAINING && d->outstanding == 0) {
            start_disconnect(s, d, now);
            continue; /* the DISCONNECT is usually written, and the socket closed, at once */
        }
        if (!sync_events(s, d, fd))
            device_lost(s, d, "epoll refused the socket");
        return;
    }
}

/* TLS to the broker: its certificate must chain to cfg.ca_file (or the system's CAs) and
 * name the host connected to (libmosquitto checks the name unless told to be insecure). Each
 * client builds its own SSL context, so TLS costs memory and connect time per device. */
static int set_tls(struct sim *s, struct device *d)
{
    if (s->cfg.ca_file != NULL)
        return mosquitto_tls_set(d->mosq, s->cfg.ca_file, NULL, NULL, NULL, NULL);
    return mosquitto_int_option(d->mosq, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
}

/* Sets the client's credentials: the configured ones, or a token minted now for this device
 * (pinned to its id, the client id) with the account as user name. False when no token could
 * be minted (counted and logged). */
static bool set_credentials(struct sim *s, struct device *d)
{
    const char *username = s->cfg.username ? s->cfg.username : device_account(s, d);
    if (s->cfg.key == NULL)
        return mosquitto_username_pw_set(d->mosq, username, s->cfg.password) == MOSQ_ERR_SUCCESS;
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE,
        .account = device_account(s, d),
        .device = device_id(s, d),
        .topic_prefix = s->cfg.topic_prefix,
        .now_s = hb_now_ms() / 1000,
        .ttl_s = s->cfg.token_ttl_s,
    };
    char err[256];
    char *token = hb_token_mint(s->cfg.key, &req, err, sizeof(err));
    if (token == NULL) {
        s->token_errors++;
        device_log(s, HB_LOG_ERROR, "%s: cannot mint a token: %s", device_id(s, d), err);
        return false;
    }
    int rc = mosquitto_username_pw_set(d->mosq, username, token); /* copies both */
    free(token);
    return rc == MOSQ_ERR_SUCCESS;
}

static void device_connect(struct sim *s, struct device *d)
{
    size_t global = s->cfg.first_device + index_of(s, d);
    const struct options_broker *b = &s->cfg.brokers[global % s->cfg.n_brokers];
    const char *source = s->cfg.n_sources ? s->cfg.sources[global % s->cfg.n_sources] : NULL;

    set_state(s, d, DEV_CONNECTING);
    timers_set(&s->timers, index_of(s, d), hb_now_ms() + SIM_CONNECT_TIMEOUT_MS);
    d->connack = d->refused = false;
    d->reason = 0;
    d->mosq = mosquitto_new(device_id(s, d), true, d);
    if (d->mosq == NULL) {
        device_log(s, HB_LOG_ERROR, "%s: mosquitto_new: %s", device_id(s, d), strerror(errno));
        s->errors++;
        s->connect_failed++;
        retry_or_finish(s, d, hb_now_ms());
        return;
    }
    s->n_open++;
    mosquitto_connect_callback_set(d->mosq, on_connect);
    mosquitto_disconnect_callback_set(d->mosq, on_disconnect);
    mosquitto_publish_callback_set(d->mosq, on_publish);
    if (!set_credentials(s, d)) {
        /* Another attempt mints again; a key that cannot sign fails every time, and the
         * count says so. */
        device_lost(s, d, "no credentials");
        return;
    }
    int rc = mosquitto_int_option(d->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    if (rc == MOSQ_ERR_SUCCESS && b->tls)
        rc = set_tls(s, d);
    if (rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_connect_bind_async(d->mosq, b->host, b->port, s->cfg.keepalive_s, source);
    if (rc != MOSQ_ERR_SUCCESS) {
        char why[400];
        snprintf(why, sizeof(why), "%s:%d%s%s: %s", b->host, b->port, source ? " from " : "",
                 source ? source : "", rc_text(rc));
        /* A socket may exist that epoll never saw (d->fd is -1); destroying the client
         * closes it. */
        device_lost(s, d, why);
        return;
    }
    device_settle(s, d);
}

/* Ends the device's activity: its window closed or the run is ending. */
static void device_stop(struct sim *s, struct device *d, int64_t now)
{
    switch (d->state) {
    case DEV_IDLE:
    case DEV_QUEUED:
    case DEV_BACKOFF:
        finish_device(s, d);
        break;
    case DEV_CONNECTING:
        /* Not an error: the device simply stopped trying. */
        unregister(s, d);
        release(s, d);
        finish_device(s, d);
        break;
    case DEV_CONNECTED:
        set_state(s, d, DEV_DRAINING);
        timers_set(&s->timers, index_of(s, d), now + SIM_DRAIN_MS);
        device_settle(s, d);
        break;
    case DEV_DRAINING:
    case DEV_DISCONNECTING:
    case DEV_DONE:
        break;
    }
}

static void enqueue(struct sim *s, struct device *d)
{
    set_state(s, d, DEV_QUEUED);
    /* A device is queued at most once at a time, so the ring of n_devices never overflows. */
    s->queue[(s->queue_head + s->queue_len) % s->cfg.n_devices] = index_of(s, d);
    s->queue_len++;
}

static void device_heartbeat(struct sim *s, struct device *d)
{
    /* Fresh time: the guard decision and the truth must use the moment of sending. */
    int64_t now = hb_now_ms();
    int64_t stop = device_stop_at(s, d);
    if (!s->running || now >= stop) {
        device_stop(s, d, now);
        return;
    }
    int64_t at = schedule_guard(now, s->cfg.interval_ms, s->cfg.guard_ms);
    if (at > now) {
        /* Spread over the band's width: 200,000 devices with a 1 s guard would otherwise send
         * 40 % of a 5 s period's heartbeats in the same millisecond. */
        at = schedule_spread(at, s->cfg.interval_ms, s->cfg.guard_ms, rng_unit(&s->rng));
        timers_set(&s->timers, index_of(s, d), at < stop ? at : stop);
        return;
    }
    if (s->cfg.qos > 0 && d->outstanding >= SIM_INFLIGHT_MAX) {
        /* Sending now would only queue behind unacknowledged ones, and a late send could
         * cross a boundary; skip this beat instead. */
        s->skipped++;
        device_log(s, HB_LOG_WARN, "%s: %u heartbeats unacknowledged; skipping one",
                   device_id(s, d), d->outstanding);
    } else if (mosquitto_want_write(d->mosq)) {
        /* Earlier packets are still unwritten (a full socket buffer): this one would leave
         * later than the time the truth gives it. */
        s->skipped++;
        device_log(s, HB_LOG_WARN, "%s: socket backlog; skipping a heartbeat", device_id(s, d));
    } else {
        char topic[256], payload[PAYLOAD_MAX];
        int tlen = snprintf(topic, sizeof(topic), "%s/%s/%s", s->cfg.topic_prefix,
                            device_account(s, d), device_id(s, d));
        const struct plan_device *pd = device_plan(s, d);
        struct payload_values v = {
            .ts_ms = now,
            .device = device_id(s, d),
            .account = device_account(s, d),
            .bitrate = pd->bitrate,
            .media = pd->media,
            .play_ms = now - d->since_ms,
            .seq = d->seq,
        };
        plan_agent(pd, &v.os, &v.browser, &v.model);
        int plen = payload_render(s->cfg.payload, &v, payload, sizeof(payload));
        if (tlen < 0 || (size_t)tlen >= sizeof(topic) || plen < 0) {
            HB_ERROR("%s: topic or payload too long", device_id(s, d));
            s->errors++;
        } else {
            int rc = mosquitto_publish(d->mosq, NULL, topic, plen, payload, s->cfg.qos, false);
            if (rc != MOSQ_ERR_SUCCESS) {
                char why[160];
                snprintf(why, sizeof(why), "publish: %s", rc_text(rc));
                device_lost(s, d, why);
                return;
            }
            s->published++;
            d->seq++;
            if (s->cfg.qos > 0)
                d->outstanding++;
            truth_record(s->truth, s->cfg.first_device + index_of(s, d), now);
        }
    }
    int64_t next =
        schedule_next(now, s->cfg.heartbeat_s, s->cfg.jitter, 2.0 * rng_unit(&s->rng) - 1.0);
    timers_set(&s->timers, index_of(s, d), next < stop ? next : stop);
    device_settle(s, d);
}

/* A device's timer fired. */
static void device_timer(struct sim *s, struct device *d, int64_t now)
{
    switch (d->state) {
    case DEV_IDLE:
    case DEV_BACKOFF:
        if (s->running && now < device_stop_at(s, d))
            enqueue(s, d);
        else
            finish_device(s, d);
        break;
    case DEV_CONNECTING:
        device_lost(s, d, "no CONNACK in time");
        break;
    case DEV_CONNECTED:
        device_heartbeat(s, d);
        break;
    case DEV_DRAINING:
        /* The acknowledgements did not come; they count as lost when the client goes. */
        start_disconnect(s, d, now);
        device_settle(s, d);
        break;
    case DEV_DISCONNECTING:
        device_lost(s, d, "disconnect did not complete");
        break;
    case DEV_QUEUED:
    case DEV_DONE:
        break;
    }
}

/* Readiness on a device's socket. */
static void device_io(struct sim *s, struct device *d, uint32_t events)
{
    if (d->mosq == NULL || d->fd < 0)
        return;
    if ((events & (EPOLLERR | EPOLLHUP)) && d->state == DEV_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(d->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        device_lost(s, d, err ? strerror(err) : "connection closed");
        return;
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
        device_lost(s, d, "socket error or hang-up");
        return;
    }
    device_settle(s, d);
}

/* Starts queued connects as the rate allows (a token bucket refilled by elapsed time). */
static void pump_connects(struct sim *s, int64_t now)
{
    s->tokens += s->cfg.connect_rate * (double)(now - s->tokens_at) / 1000.0;
    if (s->tokens > s->burst)
        s->tokens = s->burst;
    s->tokens_at = now;
    while (s->queue_len > 0 && s->tokens >= 1.0) {
        struct device *d = &s->dev[s->queue[s->queue_head]];
        s->queue_head = (s->queue_head + 1) % s->cfg.n_devices;
        s->queue_len--;
        if (d->state != DEV_QUEUED)
            continue; /* stopped while waiting */
        if (!s->running || now >= device_stop_at(s, d)) {
            finish_device(s, d);
            continue;
        }
        s->tokens -= 1.0;
        device_connect(s, d);
    }
}

/* Keepalive (PINGREQ, and noticing a silent broker) for the open connections. Each tick
 * takes the next slice, so every device is visited once per keepalive / 4: a PINGREQ then
 * leaves within 1.25 keepalives of the last packet, before the broker's limit of 1.5. */
static void sweep_keepalive(struct sim *s)
{
    size_t n = s->cfg.n_devices;
    if (n == 0)
        return;
    int64_t period_ms = (int64_t)s->cfg.keepalive_s * 1000 / 4;
    size_t slice =
        period_ms > SIM_TICK_MS ? (size_t)((n * SIM_TICK_MS + period_ms - 1) / period_ms) : n;
    for (size_t k = 0; k < slice && k < n; k++) {
        struct device *d = &s->dev[s->sweep_next];
        s->sweep_next = (s->sweep_next + 1) % n;
        if (d->mosq == NULL || (d->state != DEV_CONNECTED && d->state != DEV_DRAINING))
            continue;
        mosquitto_loop_misc(d->mosq);
        device_settle(s, d);
    }
}

/* Stops publishing: from now on every device drains and disconnects. */
static void begin_end(struct sim *s, int64_t now)
{
    if (!s->running)
        return;
    s->running = false;
    if (now < s->end_ms)
        s->end_ms = now;
    s->drain_deadline = now + SIM_RUN_DRAIN_MS;
    for (size_t i = 0; i < s->cfg.n_devices; i++)
        device_stop(s, &s->dev[i], now);
}

/* SIGTERM and SIGINT end the run gracefully (again: nothing more to do); SIGUSR1 also stops
 * waiting for devices to disconnect. A fleet's parent turns a user's second signal into
 * SIGUSR1, so a terminal's SIGINT reaching a worker too does not count twice. */
static void handle_signal(struct sim *s, int64_t now)
{
    struct signalfd_siginfo si;
    ssize_t n;
    while ((n = read(s->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
        if (s->running) {
            HB_DEBUG("hb-sim: %s: ending the run early", strsignal((int)si.ssi_signo));
            s->interrupted = true;
            begin_end(s, now);
        }
        if (si.ssi_signo == SIGUSR1)
            s->drain_deadline = now;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        HB_WARN("hb-sim: reading signals: %s", strerror(errno));
}

/* Milliseconds epoll may sleep: until the next timer, report, connect slot or deadline. */
static int wait_ms(const struct sim *s, int64_t now)
{
    if (!s->running && s->n_open == 0)
        return 0; /* the run is over: do not sleep until the next tick */
    int64_t next = s->next_misc;
    if (s->cfg.report != NULL && s->next_report < next)
        next = s->next_report;
    struct timers_entry e;
    if (timers_peek(&s->timers, &e) && e.when < next)
        next = e.when;
    int64_t deadline = s->running ? s->end_ms : s->drain_deadline;
    if (deadline < next)
        next = deadline;
    if (s->queue_len > 0) {
        int64_t slot = now + (int64_t)ceil((1.0 - s->tokens) * 1000.0 / s->cfg.connect_rate);
        if (slot < next)
            next = slot;
    }
    int64_t ms = next - now;
    return ms < 0 ? 0 : ms > SIM_TICK_MS ? SIM_TICK_MS : (int)ms;
}

/* Hands the counters to the report callback; false when it asked to stop. */
static bool report(struct sim *s)
{
    struct sim_stats st;
    sim_get_stats(s, &st);
    return s->cfg.report(s->cfg.report_ctx, &st);
}

int sim_run(struct sim *s, int64_t start_ms, struct truth *truth)
{
    s->truth = truth;
    s->start_ms = start_ms;
    s->end_ms = start_ms + s->cfg.duration_ms;
    s->running = true;
    s->tokens = s->burst;
    s->tokens_at = start_ms;
    s->next_report = start_ms + s->cfg.report_ms;
    s->next_misc = start_ms + SIM_TICK_MS;
    if (s->cfg.n_devices == 0)
        s->all_connected_ms = start_ms; /* vacuously: nobody is left to connect */
    for (size_t i = 0; i < s->cfg.n_devices; i++) {
        set_state(s, &s->dev[i], DEV_IDLE);
        timers_set(&s->timers, i, start_ms + device_plan(s, &s->dev[i])->start_ms);
    }

    int rc = 0;
    struct epoll_event events[SIM_EVENTS];
    for (;;) {
        int64_t now = hb_now_ms();
        if (s->running && now >= s->end_ms)
            begin_end(s, s->end_ms);
        if (!s->running && (s->n_open == 0 || now >= s->drain_deadline))
            break;
        pump_connects(s, now);
        struct timers_entry e;
        while (timers_pop_due(&s->timers, now, &e))
            device_timer(s, &s->dev[e.id], now);
        if (now >= s->next_misc) {
            sweep_keepalive(s);
            s->next_misc = now + SIM_TICK_MS;
        }
        if (s->cfg.report != NULL && now >= s->next_report) {
            if (!report(s)) {
                /* Nobody reads the results any more: stop without waiting for anyone. */
                begin_end(s, now);
                s->drain_deadline = now;
            }
            while (s->next_report <= now)
                s->next_report += s->cfg.report_ms;
        }
        int n = epoll_wait(s->epfd, events, SIM_EVENTS, wait_ms(s, hb_now_ms()));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            HB_ERROR("hb-sim: epoll_wait: %s", strerror(errno));
            rc = -1;
            break;
        }
        for (int i = 0; i < n; i++) {
            if (events[i].data.u64 == SIM_SIGNAL_TAG)
                handle_signal(s, hb_now_ms());
            else
                device_io(s, &s->dev[events[i].data.u64], events[i].events);
        }
    }
    if (s->running) /* the loop failed: still end the run consistently */
        begin_end(s, hb_now_ms());
    /* Whatever did not finish in time is cut off; its unacknowledged publishes are lost. */
    size_t cut = 0;
    for (size_t i = 0; i < s->cfg.n_devices; i++) {
        struct device *d = &s->dev[i];
        if (d->mosq == NULL)
            continue;
        cut++;
        unregister(s, d);
        release(s, d);
        finish_device(s, d);
    }
    if (cut > 0)
        HB_WARN("hb-sim: %zu device(s) had not disconnected when the wait ended; cut off", cut);
    return rc;
}

void sim_get_stats(const struct sim *s, struct sim_stats *out)
{
    *out = (struct sim_stats){
        .devices = s->cfg.n_devices,
        .connected = s->n_connected,
        .connecting = s->n_connecting,
        .connected_max = s->connected_max,
        .ever_connected = s->ever_connected,
        .connects = s->connects,
        .published = s->published,
        .acked = s->acked,
        .errors = s->errors,
        .connect_failed = s->connect_failed,
        .refused = s->refused,
        .dropped = s->dropped,
        .token_errors = s->token_errors,
        .lost = s->lost,
        .skipped = s->skipped,
        .start_ms = s->start_ms,
        .end_ms = s->end_ms,
        .all_connected_ms = s->all_connected_ms,
        .interrupted = s->interrupted,
    };
}

struct sim *sim_create(const struct sim_config *cfg)
{
    if (cfg->n_brokers == 0 || cfg->first_device + cfg->n_devices > cfg->plan->n_devices ||
        !schedule_guard_fits(cfg->interval_ms, cfg->guard_ms) || cfg->connect_rate <= 0 ||
        cfg->payload == NULL || (cfg->report != NULL && cfg->report_ms <= 0)) {
        HB_ERROR("hb-sim: invalid simulator configuration");
        return NULL;
    }
    struct sim *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        HB_ERROR("hb-sim: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->epfd = -1;
    s->sigfd = -1;
    rng_seed(&s->rng, cfg->seed);
    s->log_limit.burst = 20;
    s->log_limit.window_ms = 10000;
    /* 5 ms worth of connects at once at most: a burst larger than a broker's listen backlog
     * (mosquitto: 100) loses SYNs, and each lost one costs the device a 1 s retransmission. */
    s->burst = cfg->connect_rate / 200.0 > 1.0 ? cfg->connect_rate / 200.0 : 1.0;

    s->dev = calloc(cfg->n_devices + 1, sizeof(*s->dev));
    s->queue = calloc(cfg->n_devices + 1, sizeof(*s->queue));
    if (s->dev == NULL || s->queue == NULL) {
        HB_ERROR("hb-sim: out of memory for %zu devices", cfg->n_devices);
        goto fail;
    }
    for (size_t i = 0; i < cfg->n_devices; i++) {
        s->dev[i].sim = s;
        s->dev[i].fd = -1;
        s->dev[i].state = DEV_DONE;
    }
    if (!timers_init(&s->timers, cfg->n_devices))
        goto fail;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        HB_ERROR("hb-sim: epoll_create1: %s", strerror(errno));
        goto fail;
    }
    if (cfg->signals != NULL) {
        s->sigfd = signalfd(-1, cfg->signals, SFD_NONBLOCK | SFD_CLOEXEC);
        if (s->sigfd < 0) {
            HB_ERROR("hb-sim: signalfd: %s", strerror(errno));
            goto fail;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SIM_SIGNAL_TAG};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->sigfd, &ev) < 0) {
            HB_ERROR("hb-sim: epoll_ctl(ADD, signalfd): %s", strerror(errno));
            goto fail;
        }
    }
    return s;
fail:
    sim_destroy(s);
    return NULL;
}

void sim_destroy(struct sim *s)
{
    if (s == NULL)
        return;
    if (s->dev != NULL) {
        for (size_t i = 0; i < s->cfg.n_devices; i++) {
            struct device *d = &s->dev[i];
            if (d->mosq != NULL) {
                unregister(s, d);
                release(s, d);
            }
        }
    }
    if (s->sigfd >= 0 && close(s->sigfd) < 0)
        HB_WARN("hb-sim: close(signalfd): %s", strerror(errno));
    if (s->epfd >= 0 && close(s->epfd) < 0)
        HB_WARN("hb-sim: close(epoll): %s", strerror(errno));
    timers_finish(&s->timers);
    free(s->queue);
    free(s->dev);
    free(s);
}
