/* The simulator's event loop: one epoll set holds every device's MQTT socket and a signalfd;
 * each turn paces connects, fires due device timers, sweeps keepalives and reports, then
 * sleeps until the next of those. What a device does is devices.c's job; the loop only decides
 * when, and how the run ends: a drain bounded in time, then whatever is left is cut off. */
#include "sim.h"

#include "devices.h"
#include "interval.h"
#include "log.h"
#include "ratelimit.h"
#include "schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define SIM_RUN_DRAIN_MS 5000 /* at the end of the run, longest wait for all devices */
#define SIM_EVENTS 512
#define SIM_TICK_MS 1000
#define SIM_SIGNAL_TAG UINT64_MAX

struct sim {
    struct sim_config cfg;
    struct devices devices;
    int epfd;
    int sigfd;
    struct hb_bucket pacer; /* connect slots: --connect-rate, in bursts of `burst` */
    double burst;
    int64_t drain_deadline;
    int64_t next_report, next_misc;
    size_t sweep_next; /* the keepalive sweep's position */
    bool interrupted;
};

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
        size_t id = s->sweep_next;
        s->sweep_next = (s->sweep_next + 1) % n;
        devices_keepalive(&s->devices, id);
    }
}

/* Starts queued connects as the pacer allows: a slot is taken only when a connect started. */
static void pump_connects(struct sim *s, int64_t now)
{
    while (hb_bucket_wait_ms(&s->pacer, 1, now) == 0 && devices_connect_next(&s->devices, now))
        hb_bucket_take(&s->pacer, 1, now);
}

/* Stops publishing: from now on every device drains and disconnects. */
static void begin_end(struct sim *s, int64_t now)
{
    if (!s->devices.running)
        return;
    s->drain_deadline = now + SIM_RUN_DRAIN_MS;
    devices_stop_all(&s->devices, now);
}

/* --hold: the fleet's parent says when the run ends; from now on the devices are in their
 * steady phase, and its counters start. Only the first such message counts. */
static void hold_until(struct sim *s, int64_t now, int64_t end_ms)
{
    struct sim_stats *st = &s->devices.stats;
    if (!s->devices.running || st->steady_ms != 0)
        return;
    st->steady_ms = now;
    st->steady_sent = st->published;
    st->steady_held = st->connected;
    if (end_ms < st->end_ms)
        st->end_ms = end_ms;
}

/* SIGTERM and SIGINT end the run gracefully (again: nothing more to do); SIGUSR1 also stops
 * waiting for devices to disconnect. A fleet's parent turns a user's second signal into
 * SIGUSR1, so a terminal's SIGINT reaching a worker too does not count twice. */
static void handle_signal(struct sim *s, int64_t now)
{
    struct signalfd_siginfo si;
    ssize_t n;
    while ((n = read(s->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIM_HOLD_SIGNAL) {
            hold_until(s, now, s->devices.stats.start_ms + si.ssi_int);
            continue;
        }
        if (s->devices.running) {
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
static int wait_ms(struct sim *s, int64_t now)
{
    const struct devices *ds = &s->devices;
    if (!ds->running && ds->n_open == 0)
        return 0; /* the run is over: do not sleep until the next tick */
    int64_t next = s->next_misc;
    if (s->cfg.report != NULL && s->next_report < next)
        next = s->next_report;
    int64_t timer;
    if (devices_next_timer(ds, &timer) && timer < next)
        next = timer;
    int64_t deadline = ds->running ? ds->stats.end_ms : s->drain_deadline;
    if (deadline < next)
        next = deadline;
    if (ds->queue_len > 0) {
        int64_t slot = now + hb_bucket_wait_ms(&s->pacer, 1, now);
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
    hb_bucket_init(&s->pacer, s->cfg.connect_rate, s->burst);
    s->next_report = start_ms + s->cfg.report_ms;
    s->next_misc = start_ms + SIM_TICK_MS;
    devices_start(&s->devices, start_ms, start_ms + s->cfg.duration_ms, truth);

    int rc = 0;
    struct epoll_event events[SIM_EVENTS];
    for (;;) {
        int64_t now = hb_now_ms();
        if (s->devices.running && now >= s->devices.stats.end_ms)
            begin_end(s, s->devices.stats.end_ms);
        if (!s->devices.running && (s->devices.n_open == 0 || now >= s->drain_deadline))
            break;
        pump_connects(s, now);
        devices_run_timers(&s->devices, now);
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
                devices_io(&s->devices, (size_t)events[i].data.u64, events[i].events);
        }
        struct sim_stats *st = &s->devices.stats;
        if (st->steady_ms != 0 && s->devices.running && st->connected < st->steady_held)
            st->steady_held = st->connected;
    }
    if (s->devices.running) /* the loop failed: still end the run consistently */
        begin_end(s, hb_now_ms());
    /* Whatever did not finish in time is cut off; its unacknowledged publishes are lost. */
    size_t cut = devices_cut_off(&s->devices);
    if (cut > 0)
        HB_WARN("hb-sim: %zu device(s) had not disconnected when the wait ended; cut off", cut);
    return rc;
}

void sim_get_stats(const struct sim *s, struct sim_stats *out)
{
    *out = s->devices.stats;
    out->interrupted = s->interrupted;
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
    /* 5 ms worth of connects at once at most: a burst larger than a broker's listen backlog
     * (mosquitto: 100) loses SYNs, and each lost one costs the device a 1 s retransmission. */
    s->burst = cfg->connect_rate / 200.0 > 1.0 ? cfg->connect_rate / 200.0 : 1.0;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        HB_ERROR("hb-sim: epoll_create1: %s", strerror(errno));
        goto fail;
    }
    if (!devices_init(&s->devices, &s->cfg, s->epfd))
        goto fail;
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
    devices_finish(&s->devices); /* before the epoll set closes: sockets leave it first */
    if (s->sigfd >= 0 && close(s->sigfd) < 0)
        HB_WARN("hb-sim: close(signalfd): %s", strerror(errno));
    if (s->epfd >= 0 && close(s->epfd) < 0)
        HB_WARN("hb-sim: close(epoll): %s", strerror(errno));
    free(s);
}
