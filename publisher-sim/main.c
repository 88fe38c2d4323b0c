/* hb-sim: simulated devices publishing MQTT heartbeats, and the exact truth of what they
 * sent. main only wires the stages: options, signals, payload, key, population (plan),
 * libmosquitto, fitting the run to the machine (capacity), the truth file and the truth, then
 * the fleet's run and its summary; each stage undoes its own failure, and main tears the
 * completed ones down in reverse. Each stage returns the exit status its failure means. */
#include "capacity.h"
#include "fleet.h"
#include "interval.h"
#include "keyring.h"
#include "log.h"
#include "mint.h"
#include "nopair.h"
#include "options.h"
#include "payload.h"
#include "plan.h"
#include "playlog.h"
#include "schedule.h"
#include "summary.h"
#include "token.h"
#include "truth.h"

#include <arpa/inet.h>
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

/* Exit statuses, as --help states them. */
enum {
    SIM_EXIT_OK = 0,
    SIM_EXIT_FAILURE = 1, /* a runtime failure, or QoS 1 heartbeats went unacknowledged */
    SIM_EXIT_USAGE = 2,   /* a usage error or a plan that cannot fit */
};

/* What the stages set up, in order. */
struct run {
    struct options o;
    uint64_t seed;
    struct rng rng; /* the population's draws, then the workers' seeds */
    int64_t interval_ms, duration_ms;
    sigset_t signals; /* those that end the run (SIGUSR1 is blocked too) */
    struct payload_template payload;
    struct hb_key key; /* zeroed when there is no --key */
    int64_t token_ttl_s;
    struct plan plan;
    struct capacity_input ci;
    struct capacity_plan cp;
    FILE *truth_file; /* NULL without --truth, and once written */
    int64_t start;    /* the run's start, Unix ms */
    struct truth *truth;
    struct sim_house house; /* --api; plays_fd -1 without --plays-truth */
};

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

/* Blocked for the whole run (and inherited by the workers), so they reach signalfds and a
 * late one cannot kill the process while it writes the truth. */
static int block_signals(struct run *r)
{
    sigset_t blocked;
    sigemptyset(&r->signals);
    sigaddset(&r->signals, SIGINT);
    sigaddset(&r->signals, SIGTERM);
    blocked = r->signals;
    sigaddset(&blocked, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &blocked, NULL) < 0) {
        HB_ERROR("sigprocmask: %s", strerror(errno));
        return SIM_EXIT_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    return SIM_EXIT_OK;
}

/* The payload template: --payload-template's, or the built-in one. */
static int load_payload(struct run *r)
{
    size_t longest = 0;
    char err[512];
    if (r->o.payload_template_path != NULL) {
        if (!payload_load(&r->payload, r->o.payload_template_path, &longest, err, sizeof(err))) {
            HB_ERROR("--payload-template %s", err);
            return SIM_EXIT_USAGE;
        }
    } else if (!payload_compile(&r->payload, payload_default_template,
                                strlen(payload_default_template), err, sizeof(err)) ||
               !payload_check(&r->payload, &longest, err, sizeof(err))) {
        HB_ERROR("the built-in payload template: %s", err);
        payload_finish(&r->payload);
        return SIM_EXIT_USAGE;
    }
    if (longest > 1024)
        HB_WARN("--payload-template: payloads may reach %zu bytes; the consumer rejects more than "
                "its --payload-max (1024 by default)",
                longest);
    return SIM_EXIT_OK;
}

/* The signing key of --key, and the tokens' lifetime; nothing without --key. */
static int load_key(struct run *r)
{
    const struct options *o = &r->o;
    memset(&r->key, 0, sizeof(r->key));
    r->token_ttl_s = 0;
    if (o->key_path == NULL)
        return SIM_EXIT_OK;
    char kid[HB_ID_MAX + 1], err[512];
    if (o->kid != NULL)
        snprintf(kid, sizeof(kid), "%s", o->kid);
    else
        hb_key_default_kid(o->key_path, kid, sizeof(kid)); /* checked by options_parse */
    if (!hb_key_load(&r->key, kid, o->key_path, err, sizeof(err))) {
        HB_ERROR("--key %s: %s", o->key_path, err);
        return SIM_EXIT_USAGE;
    }
    if (!r->key.can_sign) {
        HB_ERROR("--key %s: a public key cannot sign tokens; give the private key", o->key_path);
        hb_key_finish(&r->key);
        return SIM_EXIT_USAGE;
    }
    r->token_ttl_s = o->token_ttl_s > 0 ? (int64_t)ceil(o->token_ttl_s)
                                        : (int64_t)ceil(o->duration_s) + OPTIONS_TOKEN_MARGIN_S;
    return SIM_EXIT_OK;
}

/* The population, drawn from the seed. */
static int make_plan(struct run *r)
{
    struct plan_params pp = {
        .n_accounts = r->o.n_accounts,
        .devices_min = r->o.devices_min,
        .devices_max = r->o.devices_max,
        .account_prefix = r->o.account_prefix,
        .churn = r->o.churn,
        .duration_ms = r->duration_ms,
    };
    return plan_init(&r->plan, &pp, &r->rng) ? SIM_EXIT_OK : SIM_EXIT_FAILURE;
}

/* libmosquitto, with its socket pairs refused (nopair.c). */
static int init_library(void)
{
    if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        HB_ERROR("mosquitto_lib_init failed");
        return SIM_EXIT_FAILURE;
    }
    nopair_enable(true);
    return SIM_EXIT_OK;
}

/* Fits the run to the machine before anything starts: workers within the open-file limit, a
 * warning when the ephemeral ports are crowded, every source address bindable. */
static int fit_machine(struct run *r)
{
    char err[512];
    r->ci = (struct capacity_input){
        .devices = r->plan.n_devices,
        .workers = r->o.workers,
        .workers_max = OPTIONS_WORKERS_MAX,
        .fds_per_connection = fds_per_connection(),
        .n_brokers = r->o.common.n_brokers,
        .n_sources = r->o.n_sources,
        .ports = ephemeral_ports(),
    };
    raise_fd_limit(&r->ci.fd_limit, &r->ci.fd_hard);
    if (!capacity_plan(&r->ci, &r->cp, err, sizeof(err))) {
        HB_ERROR("hb-sim: the run does not fit: %s", err);
        return SIM_EXIT_USAGE;
    }
    if (!capacity_ports(&r->ci, &r->cp, err, sizeof(err)))
        HB_WARN("hb-sim: %s", err);
    return check_sources(&r->o) ? SIM_EXIT_OK : SIM_EXIT_USAGE;
}

/* Opened before the run so a bad --truth path fails at once, not after it. */
static int open_truth_file(struct run *r)
{
    r->truth_file = NULL;
    if (r->o.truth_path == NULL)
        return SIM_EXIT_OK;
    r->truth_file = fopen(r->o.truth_path, "w");
    if (r->truth_file == NULL) {
        HB_ERROR("--truth %s: %s", r->o.truth_path, strerror(errno));
        return SIM_EXIT_FAILURE;
    }
    return SIM_EXIT_OK;
}

/* Closes the truth file if it is still open; false when closing failed (reported). */
static bool close_truth_file(struct run *r)
{
    if (r->truth_file == NULL)
        return true;
    bool ok = fclose(r->truth_file) == 0;
    if (!ok)
        HB_ERROR("--truth %s: %s", r->o.truth_path, strerror(errno));
    r->truth_file = NULL;
    return ok;
}

/* --api: the admission client and the plays truth file. */
static int setup_house(struct run *r)
{
    r->house.plays_fd = -1;
    if (r->o.api_url == NULL)
        return SIM_EXIT_OK;
    char err[512];
    if (!admission_api_init(&r->house.api, r->o.api_url, r->o.api_key_file, err, sizeof(err))) {
        HB_ERROR("--api: %s", err);
        return SIM_EXIT_USAGE;
    }
    r->house.control_prefix = r->o.control_prefix;
    r->house.vanish = r->o.vanish;
    if (r->o.plays_truth_path != NULL &&
        (r->house.plays_fd = playlog_open(r->o.plays_truth_path)) < 0)
        return SIM_EXIT_FAILURE;
    return SIM_EXIT_OK;
}

/* The run starts now: the truth covers the complete intervals it can hold. */
static int create_truth(struct run *r)
{
    r->start = hb_now_ms();
    int64_t first;
    size_t planned = schedule_complete(r->start, r->start + r->duration_ms, r->interval_ms, &first);
    struct truth_ids ids = plan_truth_ids(&r->plan);
    r->truth = truth_create(&ids, first, r->interval_ms, planned);
    if (r->truth == NULL)
        return SIM_EXIT_FAILURE;
    if (!r->o.quiet) {
        const struct options *o = &r->o;
        HB_INFO("hb-sim %s: %zu devices in %zu accounts, seed %" PRIu64 ", heartbeat %gs, "
                "interval %ds, guard %" PRId64 "ms, qos %d, %zu complete interval(s) planned",
                HB_VERSION, r->plan.n_devices, r->plan.n_accounts, r->seed, o->heartbeat_s,
                o->common.interval_s, o->guard_ms, o->qos, planned);
        HB_INFO("hb-sim: %u worker(s) of up to %zu devices (at most %zu each: open-file limit "
                "%" PRIu64 ", %u per connection); %zu broker(s), up to %zu connections each; "
                "%zu source address(es); connect rate %g/s; %s",
                r->cp.workers, r->cp.per_worker, r->cp.per_worker_max, r->ci.fd_limit,
                r->ci.fds_per_connection, o->common.n_brokers,
                (r->plan.n_devices + o->common.n_brokers - 1) / o->common.n_brokers, o->n_sources,
                o->connect_rate, o->key_path ? "a token per device" : "no tokens");
    }
    return SIM_EXIT_OK;
}

/* Runs the fleet, then writes the truth and the summary. SIM_EXIT_FAILURE when a worker
 * failed, the truth or the JSON could not be written, no device ever connected, or QoS 1
 * heartbeats went unacknowledged (the truth may then list devices the consumer never saw). */
static int run_fleet(struct run *r)
{
    const struct options *o = &r->o;
    struct fleet_config fc = {
        .sim =
            {
                .plan = &r->plan,
                .first_device = 0,
                .n_devices = r->plan.n_devices,
                .brokers = o->brokers,
                .n_brokers = o->common.n_brokers,
                .sources = (const char(*)[OPTIONS_ADDR_MAX])o->sources,
                .n_sources = o->n_sources,
                .topic_prefix = o->common.topic_prefix,
                .username = o->username,
                .password = o->password,
                .key = o->key_path ? &r->key : NULL,
                .ca_file = o->ca_file,
                .token_ttl_s = r->token_ttl_s,
                .payload = &r->payload,
                .house = r->o.api_url ? &r->house : NULL,
                .qos = o->qos,
                .heartbeat_s = o->heartbeat_s,
                .jitter = o->jitter,
                .interval_ms = r->interval_ms,
                .guard_ms = o->guard_ms,
                .duration_ms = r->duration_ms,
                .keepalive_s = o->keepalive_s,
            },
        .workers = r->cp.workers,
        .connect_rate = o->connect_rate,
        .seed = rng_next(&r->rng),
        .hold_ms = (int64_t)llround(o->hold_s * 1000.0),
        .progress_s = o->quiet                ? 0
                      : o->progress_s > 0     ? o->progress_s
                      : isatty(STDERR_FILENO) ? 1
                                              : 10,
        .terminal = !o->quiet && isatty(STDERR_FILENO),
    };
    struct fleet_result fr;
    bool run_ok = fleet_run(&fc, &r->signals, r->start, r->truth, &fr) == 0;

    const struct sim_stats *st = &fr.total;
    struct summary sum = {
        .accounts = r->plan.n_accounts,
        .workers = r->cp.workers,
        .brokers = o->common.n_brokers,
        .sources = o->n_sources,
        .seed = r->seed,
        .qos = o->qos,
        .hold_s = o->hold_s,
    };
    summary_derive(&sum, &fr);
    /* A run cut short by a failed worker has no trustworthy truth: write none. */
    int64_t first;
    sum.intervals = run_ok ? schedule_complete(r->start, st->end_ms, r->interval_ms, &first) : 0;
    if (run_ok && sum.intervals == 0)
        HB_WARN("the run (%.1fs) holds no complete %ds interval: the truth is empty",
                sum.duration_s, o->common.interval_s);
    bool truth_ok = true;
    if (r->truth_file != NULL) {
        truth_ok = truth_write(r->truth, r->truth_file, sum.intervals);
        truth_ok = close_truth_file(r) && truth_ok;
    }
    if (st->lost > 0)
        HB_WARN("%" PRIu64 " QoS 1 heartbeat(s) were never acknowledged: the truth may list "
                "devices the broker never received",
                st->lost);
    if (!o->quiet)
        summary_log(&sum, truth_count(r->truth, sum.intervals));
    bool json_ok = true;
    if (o->json && !summary_print_json(&sum)) {
        HB_ERROR("could not print the JSON summary");
        json_ok = false;
    }
    bool connected_ok = true;
    if (run_ok && st->devices > 0 && st->ever_connected == 0 && st->connects == 0) {
        HB_ERROR("hb-sim: no device could connect (see the messages above)");
        connected_ok = false;
    }
    return run_ok && truth_ok && json_ok && connected_ok && st->lost == 0 ? SIM_EXIT_OK
                                                                          : SIM_EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    struct run r;
    memset(&r, 0, sizeof(r));
    int status = options_parse(&r.o, argc, argv);
    if (status != 0) {
        options_finish(&r.o);
        return status == 1 ? SIM_EXIT_OK : SIM_EXIT_USAGE;
    }
    r.seed = r.o.seed_given ? r.o.seed : default_seed();
    rng_seed(&r.rng, r.seed);
    r.interval_ms = (int64_t)r.o.common.interval_s * 1000;
    r.duration_ms = (int64_t)llround(r.o.duration_s * 1000.0);

    if ((status = block_signals(&r)) != SIM_EXIT_OK)
        goto out_options;
    if ((status = load_payload(&r)) != SIM_EXIT_OK)
        goto out_options;
    if ((status = load_key(&r)) != SIM_EXIT_OK)
        goto out_payload;
    if ((status = make_plan(&r)) != SIM_EXIT_OK)
        goto out_key;
    if ((status = init_library()) != SIM_EXIT_OK)
        goto out_plan;
    if ((status = fit_machine(&r)) != SIM_EXIT_OK)
        goto out_library;
    if ((status = open_truth_file(&r)) != SIM_EXIT_OK)
        goto out_library;
    if ((status = setup_house(&r)) != SIM_EXIT_OK)
        goto out_truth_file;
    if ((status = create_truth(&r)) != SIM_EXIT_OK)
        goto out_house;

    status = run_fleet(&r);

    truth_destroy(r.truth);
out_house:
    if (r.house.plays_fd >= 0)
        close(r.house.plays_fd);
out_truth_file:
    close_truth_file(&r);
out_library:
    mosquitto_lib_cleanup();
out_plan:
    plan_finish(&r.plan);
out_key:
    hb_key_finish(&r.key);
out_payload:
    payload_finish(&r.payload);
out_options:
    options_finish(&r.o);
    return status;
}
