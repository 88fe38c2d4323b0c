/* hb-sim: simulated devices publishing MQTT heartbeats, and the exact truth of what they
 * sent. main only wires the stages: options, population (plan), simulator, truth; each is
 * torn down in reverse order. Exit status 1 also when QoS 1 heartbeats went unacknowledged,
 * because the truth may then list devices the consumer never saw. */
#include "interval.h"
#include "log.h"
#include "options.h"
#include "plan.h"
#include "schedule.h"
#include "sim.h"
#include "truth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <mosquitto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* Prints the summary object on stdout. Returns false when it could not be built or written. */
static bool print_json(const struct sim_stats *st, size_t accounts, uint64_t seed, size_t intervals,
                       int qos)
{
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return false;
    bool ok =
        cJSON_AddNumberToObject(o, "devices", (double)st->devices) &&
        cJSON_AddNumberToObject(o, "accounts", (double)accounts) &&
        cJSON_AddNumberToObject(o, "connected_max", (double)st->connected_max) &&
        cJSON_AddNumberToObject(o, "published", (double)st->published) &&
        cJSON_AddNumberToObject(o, "acked", (double)st->acked) &&
        cJSON_AddNumberToObject(o, "errors", (double)st->errors) &&
        cJSON_AddNumberToObject(o, "lost", (double)st->lost) &&
        cJSON_AddNumberToObject(o, "skipped", (double)st->skipped) &&
        cJSON_AddNumberToObject(o, "duration_s", (double)(st->end_ms - st->start_ms) / 1000.0) &&
        cJSON_AddNumberToObject(o, "seed", (double)seed) &&
        cJSON_AddNumberToObject(o, "qos", qos) &&
        cJSON_AddNumberToObject(o, "intervals", (double)intervals) &&
        cJSON_AddNumberToObject(o, "start_ms", (double)st->start_ms) &&
        cJSON_AddNumberToObject(o, "end_ms", (double)st->end_ms) &&
        cJSON_AddBoolToObject(o, "interrupted", st->interrupted);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return false;
    ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
    cJSON_free(text);
    return ok;
}

/* Writes the truth to path. Returns false (after reporting why) on any failure. */
static bool write_truth(const char *path, FILE *f, const struct truth *truth, size_t intervals)
{
    bool ok = truth_write(truth, f, intervals);
    if (fclose(f) != 0) {
        HB_ERROR("--truth %s: %s", path, strerror(errno));
        ok = false;
    }
    return ok;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = options_parse(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;

    uint64_t seed = o.seed_given ? o.seed : default_seed();
    struct rng rng;
    rng_seed(&rng, seed);
    int64_t interval_ms = (int64_t)o.common.interval_s * 1000;
    int64_t duration_ms = (int64_t)llround(o.duration_s * 1000.0);

    /* Blocked for the whole run, so they reach the simulator's signalfd and a late one cannot
     * kill the process while it writes the truth. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &signals, NULL) < 0) {
        HB_ERROR("sigprocmask: %s", strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);

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
        return 1;

    rc = 1;
    FILE *truth_file = NULL;
    if (o.truth_path != NULL) {
        /* Opened now so a bad path fails before the run, not after it. */
        truth_file = fopen(o.truth_path, "w");
        if (truth_file == NULL) {
            HB_ERROR("--truth %s: %s", o.truth_path, strerror(errno));
            goto out_plan;
        }
    }
    if (mosquitto_lib_init() != MOSQ_ERR_SUCCESS) {
        HB_ERROR("mosquitto_lib_init failed");
        goto out_file;
    }
    struct sim_config sc = {
        .plan = &plan,
        .first_device = 0,
        .n_devices = plan.n_devices,
        .brokers = o.brokers,
        .n_brokers = o.common.n_brokers,
        .topic_prefix = o.common.topic_prefix,
        .username = o.username,
        .password = o.password,
        .qos = o.qos,
        .heartbeat_s = o.heartbeat_s,
        .jitter = o.jitter,
        .interval_ms = interval_ms,
        .guard_ms = o.guard_ms,
        .duration_ms = duration_ms,
        .connect_rate = o.connect_rate,
        .keepalive_s = 60,
        .progress = !o.quiet,
        .seed = rng_next(&rng),
        .signals = &signals,
    };
    struct sim *sim = sim_create(&sc);
    if (sim == NULL)
        goto out_lib;

    int64_t start = hb_now_ms();
    int64_t first;
    size_t planned = schedule_complete(start, start + duration_ms, interval_ms, &first);
    struct truth_ids ids = plan_truth_ids(&plan);
    struct truth *truth = truth_create(&ids, first, interval_ms, planned);
    if (truth == NULL)
        goto out_sim;
    if (!o.quiet)
        HB_INFO("hb-sim %s: %zu devices in %zu accounts, seed %" PRIu64 ", heartbeat %gs, "
                "interval %ds, guard %" PRId64 "ms, qos %d, %zu broker(s), %zu complete "
                "interval(s) planned",
                HB_VERSION, plan.n_devices, plan.n_accounts, seed, o.heartbeat_s,
                o.common.interval_s, o.guard_ms, o.qos, o.common.n_brokers, planned);

    bool run_ok = sim_run(sim, start, truth) == 0;
    struct sim_stats st;
    sim_get_stats(sim, &st);
    size_t intervals = schedule_complete(st.start_ms, st.end_ms, interval_ms, &first);
    if (intervals == 0)
        HB_WARN("the run (%.1fs) holds no complete %ds interval: the truth is empty",
                (double)(st.end_ms - st.start_ms) / 1000.0, o.common.interval_s);
    bool truth_ok = true;
    if (truth_file != NULL) {
        truth_ok = write_truth(o.truth_path, truth_file, truth, intervals);
        truth_file = NULL;
    }
    if (st.lost > 0)
        HB_WARN("%" PRIu64 " QoS 1 heartbeat(s) were never acknowledged: the truth may list "
                "devices the broker never received",
                st.lost);
    if (!o.quiet)
        HB_INFO("hb-sim: done after %.1fs%s: devices=%zu accounts=%zu connected_max=%zu "
                "published=%" PRIu64 " acked=%" PRIu64 " errors=%" PRIu64 " lost=%" PRIu64
                " skipped=%" PRIu64 " intervals=%zu device_intervals=%zu seed=%" PRIu64,
                (double)(st.end_ms - st.start_ms) / 1000.0, st.interrupted ? " (interrupted)" : "",
                st.devices, plan.n_accounts, st.connected_max, st.published, st.acked, st.errors,
                st.lost, st.skipped, intervals, truth_count(truth, intervals), seed);
    bool json_ok = true;
    if (o.json && !print_json(&st, plan.n_accounts, seed, intervals, o.qos)) {
        HB_ERROR("could not print the JSON summary");
        json_ok = false;
    }
    rc = run_ok && truth_ok && json_ok && st.lost == 0 ? 0 : 1;

    truth_destroy(truth);
out_sim:
    sim_destroy(sim);
out_lib:
    mosquitto_lib_cleanup();
out_file:
    if (truth_file != NULL && fclose(truth_file) != 0)
        HB_ERROR("--truth %s: %s", o.truth_path, strerror(errno));
out_plan:
    plan_finish(&plan);
    return rc;
}
