/* hb-sim: simulated devices publishing MQTT heartbeats, and the exact truth of what they
 * sent. main only wires the stages: options, population (plan), payload and key, fitting the
 * run to the machine (capacity), the fleet of worker processes, truth and summary; each is
 * torn down in reverse order. Exit status 1 also when QoS 1 heartbeats went unacknowledged,
 * because the truth may then list devices the consumer never saw. */
#include "capacity.h"
#include "fleet.h"
#include "interval.h"
#include "log.h"
#include "nopair.h"
#include "options.h"
#include "payload.h"
#include "plan.h"
#include "schedule.h"
#include "token.h"
#include "truth.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t default_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 32;
    return x % (OPTIONS_SEED_MAX + 1);
}

/* Raises the soft open-file limit to the hard one (workers inherit it). */
static void raise_fd_limit(uint64_t *soft, uint64_t *hard)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        HB_WARN("hb-sim: getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
        *soft = *hard = 1024;
        return;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            HB_WARN("hb-sim: raising the open-file limit from %ju: %s", (uintmax_t)old,
                    strerror(errno));
            rl.rlim_cur = old;
        }
    }
    *soft = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX / 2 : (uint64_t)rl.rlim_cur;
    *hard = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX / 2 : (uint64_t)rl.rlim_max;
}

/* Descriptors one client holds: 1 when libmosquitto's socket pair is refused (nopair.c), 3
 * when the interposition is not in effect. */
static unsigned fds_per_connection(void)
{
    unsigned long before = nopair_refused();
    struct mosquitto *m = mosquitto_new(NULL, true, NULL);
    if (m == NULL)
        return 3;
    mosquitto_destroy(m);
    return nopair_refused() > before ? 1 : 3;
}

/* Ephemeral ports per (source, destination) pair, from the kernel's range; 0 if unknown. */
static unsigned ephemeral_ports(void)
{
    FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (f == NULL)
        return 0;
    unsigned lo = 0, hi = 0;
    int n = fscanf(f, "%u %u", &lo, &hi);
    fclose(f);
    return n == 2 && hi >= lo ? hi - lo + 1 : 0;
}

/* Checks that every source address can be bound here, so a typo fails before the run. */
static bool check_sources(const struct options *o)
{
    for (size_t i = 0; i < o->n_sources; i++) {
        struct sockaddr_storage ss;
        memset(&ss, 0, sizeof(ss));
        socklen_t len;
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        if (inet_pton(AF_INET, o->sources[i], &a4->sin_addr) == 1) {
            a4->sin_family = AF_INET;
            len = sizeof(*a4);
        } else if (inet_pton(AF_INET6, o->sources[i], &a6->sin6_addr) == 1) {
            a6->sin6_family = AF_INET6;
            len = sizeof(*a6);
        } else {
            HB_ERROR("--source-address %s: not an address", o->sources[i]);
            return false;
        }
        int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            HB_ERROR("--source-address %s: socket: %s", o->sources[i], strerror(errno));
            return false;
        }
        int rc = bind(fd, (struct sockaddr *)&ss, len);
        int err = errno;
        close(fd);
        if (rc < 0) {
            HB_ERROR("--source-address %s: cannot bind: %s%s", o->sources[i], strerror(err),
                     err == EADDRNOTAVAIL ? " (not an address of this machine)" : "");
            return false;
        }
    }
    return true;
}

/* The run's summary derived from the fleet's counters. */
struct summary {
    const struct fleet_result *r;
    size_t accounts;
    unsigned workers;
    size_t brokers, sources;
    uint64_t seed;
    int qos;
    size_t intervals;
    double duration_s;
    double connect_all_s;      /* < 0: not every device connected */
    double connect_rate;       /* devices / connect_all_s, or < 0 */
    double hb_per_s;           /* over the run */
    double hb_per_s_connected; /* once every device had connected, or < 0 */
};

static void summarize(struct summary *s, const struct fleet_result *r)
{
    const struct sim_stats *t = &r->total;
    s->r = r;
    s->duration_s = (double)(t->end_ms - t->start_ms) / 1000.0;
    s->connect_all_s = -1;
    s->connect_rate = -1;
    s->hb_per_s_connected = -1;
    if (t->all_connected_ms != 0 && t->devices > 0) {
        s->connect_all_s = (double)(t->all_connected_ms - t->start_ms) / 1000.0;
        if (s->connect_all_s > 0)
            s->connect_rate = (double)t->devices / s->connect_all_s;
        double rest = (double)(t->end_ms - t->all_connected_ms) / 1000.0;
        if (rest > 1 && r->published_at_all > 0)
            s->hb_per_s_connected = (double)(t->published - r->published_at_all) / rest;
    }
    s->hb_per_s = s->duration_s > 0 ? (double)t->published / s->duration_s : 0;
}

static bool add_number_or_null(cJSON *o, const char *name, double v)
{
    return v < 0 ? cJSON_AddNullToObject(o, name) != NULL
                 : cJSON_AddNumberToObject(o, name, v) != NULL;
}

static double round1(double v)
{
    return v < 0 ? v : round(v * 10.0) / 10.0;
}

/* Prints the summary object on stdout. Returns false when it could not be built or written. */
static bool print_json(const struct summary *s)
{
    const struct fleet_result *r = s->r;
    const struct sim_stats *t = &r->total;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return false;
    double peak = (double)r->connected_peak;
    bool ok =
        cJSON_AddNumberToObject(o, "devices", (double)t->devices) &&
        cJSON_AddNumberToObject(o, "accounts", (double)s->accounts) &&
        cJSON_AddNumberToObject(o, "workers", s->workers) &&
        cJSON_AddNumberToObject(o, "brokers", (double)s->brokers) &&
        cJSON_AddNumberToObject(o, "source_addresses", (double)s->sources) &&
        cJSON_AddNumberToObject(o, "connected_max", peak) &&
        cJSON_AddNumberToObject(o, "ever_connected", (double)t->ever_connected) &&
        cJSON_AddNumberToObject(o, "connects", (double)t->connects) &&
        cJSON_AddNumberToObject(o, "published", (double)t->published) &&
        cJSON_AddNumberToObject(o, "acked", (double)t->acked) &&
        cJSON_AddNumberToObject(o, "errors", (double)t->errors) &&
        cJSON_AddNumberToObject(o, "connect_failed", (double)t->connect_failed) &&
        cJSON_AddNumberToObject(o, "refused", (double)t->refused) &&
        cJSON_AddNumberToObject(o, "dropped", (double)t->dropped) &&
        cJSON_AddNumberToObject(o, "token_errors", (double)t->token_errors) &&
        cJSON_AddNumberToObject(o, "lost", (double)t->lost) &&
        cJSON_AddNumberToObject(o, "skipped", (double)t->skipped) &&
        cJSON_AddNumberToObject(o, "duration_s", s->duration_s) &&
        add_number_or_null(o, "time_to_connect_all_s", round1(s->connect_all_s)) &&
        add_number_or_null(o, "connect_rate", round1(s->connect_rate)) &&
        cJSON_AddNumberToObject(o, "heartbeats_per_s", round1(s->hb_per_s)) &&
        add_number_or_null(o, "heartbeats_per_s_all_connected", round1(s->hb_per_s_connected)) &&
        cJSON_AddNumberToObject(o, "rss_kib", (double)r->rss_kib) &&
        cJSON_AddNumberToObject(o, "pss_kib", (double)r->pss_kib) &&
        add_number_or_null(o, "memory_per_connection_bytes",
                           peak > 0 && r->pss_kib > 0 ? round((double)r->pss_kib * 1024 / peak)
                                                      : -1) &&
        add_number_or_null(o, "fds_per_connection",
                           r->fds > 0 && t->devices > 0
                               ? round((double)r->fds / (double)t->devices * 100) / 100
                               : -1) &&
        cJSON_AddNumberToObject(o, "workers_failed", r->workers_failed) &&
        cJSON_AddNumberToObject(o, "seed", (double)s->seed) &&
        cJSON_AddNumberToObject(o, "qos", s->qos) &&
        cJSON_AddNumberToObject(o, "intervals", (double)s->intervals) &&
        cJSON_AddNumberToObject(o, "start_ms", (double)t->start_ms) &&
        cJSON_AddNumberToObject(o, "end_ms", (double)t->end_ms) &&
        cJSON_AddBoolToObject(o, "interrupted", t->interrupted);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return false;
    ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
    cJSON_free(text);
    return ok;
}

static void print_summary(const struct summary *s, size_t device_intervals)
{
    const struct fleet_result *r = s->r;
    const struct sim_stats *t = &r->total;
    HB_INFO("hb-sim: done after %.1fs%s: devices=%zu accounts=%zu workers=%u connected_max=%zu "
            "published=%" PRIu64 " acked=%" PRIu64 " errors=%" PRIu64 " lost=%" PRIu64
            " skipped=%" PRIu64 " intervals=%zu device_intervals=%zu seed=%" PRIu64,
            s->duration_s, t->interrupted ? " (interrupted)" : "", t->devices, s->accounts,
            s->workers, r->connected_peak, t->published, t->acked, t->errors, t->lost, t->skipped,
            s->intervals, device_intervals, s->seed);
    if (s->connect_all_s >= 0)
        HB_INFO("hb-sim: every device had connected after %.1fs (%.0f connections/s)",
                s->connect_all_s, s->connect_rate);
    if (s->hb_per_s_connected >= 0)
        HB_INFO("hb-sim: %.0f heartbeats/s once every device had connected", s->hb_per_s_connected);
    if (r->connected_peak > 0 && r->pss_kib > 0)
        HB_INFO("hb-sim: %zu devices connected at the peak; memory %.0f bytes per connection "
                "(Pss %" PRIu64 " KiB, RSS %" PRIu64 " KiB over the parent and workers)",
                r->connected_peak, (double)r->pss_kib * 1024 / (double)r->connected_peak,
                r->pss_kib, r->rss_kib);
    if (t->connect_failed > 0 || t->refused > 0 || t->dropped > 0)
        HB_WARN("hb-sim: %" PRIu64 " connect(s) failed, %" PRIu64 " refused by a broker, %" PRIu64
                " connection(s) dropped. Refused: check the credentials (--key/--kid against the "
                "broker's keys) or the broker's max_connections; failed or dropped: check each "
                "broker's open-file limit (ulimit -n: it holds at most that many sockets), its "
                "max_connections and listen backlog, and the ephemeral ports "
                "(net.ipv4.ip_local_port_range, or more --source-address / --broker)",
                t->connect_failed, t->refused, t->dropped);
    if (t->token_errors > 0)
        HB_WARN("hb-sim: %" PRIu64 " token(s) could not be minted", t->token_errors);
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = options_parse(&o, argc, argv);
    if (rc != 0) {
        options_finish(&o);
        return rc == 1 ? 0 : 2;
    }
    rc = 2;
    uint64_t seed = o.seed_given ? o.seed : default_seed();
    struct rng rng;
    rng_seed(&rng, seed);
    int64_t interval_ms = (int64_t)o.common.interval_s * 1000;
    int64_t duration_ms = (int64_t)llround(o.duration_s * 1000.0);

    /* Blocked for the whole run (and inherited by the workers), so they reach signalfds and a
     * late one cannot kill the process while it writes the truth. */
    sigset_t signals, blocked;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    blocked = signals;
    sigaddset(&blocked, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &blocked, NULL) < 0) {
        HB_ERROR("sigprocmask: %s", strerror(errno));
        goto out_options;
    }
    signal(SIGPIPE, SIG_IGN);

    struct payload_template payload;
    size_t payload_longest = 0;
    char err[512];
    if (o.payload_template_path != NULL) {
        if (!payload_load(&payload, o.payload_template_path, &payload_longest, err, sizeof(err))) {
            HB_ERROR("--payload-template %s", err);
            goto out_options;
        }
    } else if (!payload_compile(&payload, payload_default_template,
                                strlen(payload_default_template), err, sizeof(err)) ||
               !payload_check(&payload, &payload_longest, err, sizeof(err))) {
        HB_ERROR("the built-in payload template: %s", err);
        payload_finish(&payload);
        goto out_options;
    }
    if (payload_longest > 1024)
        HB_WARN("--payload-template: payloads may reach %zu bytes; the consumer rejects more than "
                "its --payload-max (1024 by default)",
                payload_longest);

    struct hb_key key;
    memset(&key, 0, sizeof(key));
    int64_t token_ttl_s = 0;
    if (o.key_path != NULL) {
        char kid[HB_ID_MAX + 1];
        if (o.kid != NULL)
            snprintf(kid, sizeof(kid), "%s", o.kid);
        else
            hb_key_default_kid(o.key_path, kid, sizeof(kid)); /* checked by options_parse */
        if (!hb_key_load(&key, kid, o.key_path, err, sizeof(err))) {
            HB_ERROR("--key %s: %s", o.key_path, err);
            goto out_payload;
        }
        if (!key.can_sign) {
            HB_ERROR("--key %s: a public key cannot sign tokens; give the private key", o.key_path);
            goto out_key;
        }
        token_ttl_s = o.token_ttl_s > 0 ? (int64_t)ceil(o.token_ttl_s)
                                        : (int64_t)ceil(o.duration_s) + OPTIONS_TOKEN_MARGIN_S;
    }

    rc = 1;
    struct plan plan;
    struct plan_params pp = {
        .n_accounts = o.n_accounts,
        .devices_min = o.devices_min,
        .devices_max = o.devices_max,
        .account_prefix = o.account_prefix,
        .churn = o.churn,
        .duration_ms = duration_ms,
    };
    if (!plan_init(&plan, &pp, &rng))
        goto out_key;

    /* Fit the run to the machine before anything starts. */
    if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        HB_ERROR("mosquitto_lib_init failed");
        goto out_plan;
    }
    nopair_enable(true);
    struct capacity_input ci = {
        .devices = plan.n_devices,
        .workers = o.workers,
        .workers_max = OPTIONS_WORKERS_MAX,
        .fds_per_connection = fds_per_connection(),
        .n_brokers = o.common.n_brokers,
        .n_sources = o.n_sources,
        .ports = ephemeral_ports(),
    };
    raise_fd_limit(&ci.fd_limit, &ci.fd_hard);
    struct capacity_plan cp;
    if (!capacity_plan(&ci, &cp, err, sizeof(err))) {
        HB_ERROR("hb-sim: the run does not fit: %s", err);
        rc = 2;
        goto out_lib;
    }
    if (!capacity_ports(&ci, &cp, err, sizeof(err)))
        HB_WARN("hb-sim: %s", err);
    if (!check_sources(&o)) {
        rc = 2;
        goto out_lib;
    }

    FILE *truth_file = NULL;
    if (o.truth_path != NULL) {
        /* Opened now so a bad path fails before the run, not after it. */
        truth_file = fopen(o.truth_path, "w");
        if (truth_file == NULL) {
            HB_ERROR("--truth %s: %s", o.truth_path, strerror(errno));
            goto out_lib;
        }
    }

    int64_t start = hb_now_ms();
    int64_t first;
    size_t planned = schedule_complete(start, start + duration_ms, interval_ms, &first);
    struct truth_ids ids = plan_truth_ids(&plan);
    struct truth *truth = truth_create(&ids, first, interval_ms, planned);
    if (truth == NULL)
        goto out_file;
    if (!o.quiet) {
        HB_INFO("hb-sim %s: %zu devices in %zu accounts, seed %" PRIu64 ", heartbeat %gs, "
                "interval %ds, guard %" PRId64 "ms, qos %d, %zu complete interval(s) planned",
                HB_VERSION, plan.n_devices, plan.n_accounts, seed, o.heartbeat_s,
                o.common.interval_s, o.guard_ms, o.qos, planned);
        HB_INFO("hb-sim: %u worker(s) of up to %zu devices (at most %zu each: open-file limit "
                "%" PRIu64 ", %u per connection); %zu broker(s), up to %zu connections each; "
                "%zu source address(es); connect rate %g/s; %s",
                cp.workers, cp.per_worker, cp.per_worker_max, ci.fd_limit, ci.fds_per_connection,
                o.common.n_brokers, (plan.n_devices + o.common.n_brokers - 1) / o.common.n_brokers,
                o.n_sources, o.connect_rate, o.key_path ? "a token per device" : "no tokens");
    }

    struct fleet_config fc = {
        .sim =
            {
                .plan = &plan,
                .first_device = 0,
                .n_devices = plan.n_devices,
                .brokers = o.brokers,
                .n_brokers = o.common.n_brokers,
                .sources = (const char(*)[OPTIONS_ADDR_MAX])o.sources,
                .n_sources = o.n_sources,
                .topic_prefix = o.common.topic_prefix,
                .username = o.username,
                .password = o.password,
                .key = o.key_path ? &key : NULL,
                .ca_file = o.ca_file,
                .token_ttl_s = token_ttl_s,
                .payload = &payload,
                .qos = o.qos,
                .heartbeat_s = o.heartbeat_s,
                .jitter = o.jitter,
                .interval_ms = interval_ms,
                .guard_ms = o.guard_ms,
                .duration_ms = duration_ms,
                .keepalive_s = o.keepalive_s,
            },
        .workers = cp.workers,
        .connect_rate = o.connect_rate,
        .seed = rng_next(&rng),
        .progress_s = o.quiet                 ? 0
                      : o.progress_s > 0      ? o.progress_s
                      : isatty(STDERR_FILENO) ? 1
                                              : 10,
        .terminal = !o.quiet && isatty(STDERR_FILENO),
    };
    struct fleet_result fr;
    bool run_ok = fleet_run(&fc, &signals, start, truth, &fr) == 0;

    const struct sim_stats *st = &fr.total;
    struct summary sum = {
        .accounts = plan.n_accounts,
        .workers = cp.workers,
        .brokers = o.common.n_brokers,
        .sources = o.n_sources,
        .seed = seed,
        .qos = o.qos,
    };
    summarize(&sum, &fr);
    /* A run cut short by a failed worker has no trustworthy truth: write none. */
    sum.intervals = run_ok ? schedule_complete(start, st->end_ms, interval_ms, &first) : 0;
    if (run_ok && sum.intervals == 0)
        HB_WARN("the run (%.1fs) holds no complete %ds interval: the truth is empty",
                sum.duration_s, o.common.interval_s);
    bool truth_ok = true;
    if (truth_file != NULL) {
        truth_ok = truth_write(truth, truth_file, sum.intervals);
        if (fclose(truth_file) != 0) {
            HB_ERROR("--truth %s: %s", o.truth_path, strerror(errno));
            truth_ok = false;
        }
        truth_file = NULL;
    }
    if (st->lost > 0)
        HB_WARN("%" PRIu64 " QoS 1 heartbeat(s) were never acknowledged: the truth may list "
                "devices the broker never received",
                st->lost);
    if (!o.quiet)
        print_summary(&sum, truth_count(truth, sum.intervals));
    bool json_ok = true;
    if (o.json && !print_json(&sum)) {
        HB_ERROR("could not print the JSON summary");
        json_ok = false;
    }
    bool connected_ok = true;
    if (run_ok && st->devices > 0 && st->ever_connected == 0 && st->connects == 0) {
        HB_ERROR("hb-sim: no device could connect (see the messages above)");
        connected_ok = false;
    }
    rc = run_ok && truth_ok && json_ok && connected_ok && st->lost == 0 ? 0 : 1;

    truth_destroy(truth);
out_file:
    if (truth_file != NULL && fclose(truth_file) != 0)
        HB_ERROR("--truth %s: %s", o.truth_path, strerror(errno));
out_lib:
    mosquitto_lib_cleanup();
out_plan:
    plan_finish(&plan);
out_key:
    hb_key_finish(&key);
out_payload:
    payload_finish(&payload);
out_options:
    options_finish(&o);
    return rc;
}
