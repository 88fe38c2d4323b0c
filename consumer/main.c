/* hb-consumer: subscribes to heartbeat topics and bins every heartbeat into Redis, one hash
 * per account and interval. Three threads matter: paho's receive thread (validates, queues),
 * the writer (batches into Redis) and this one (signals, reconnect ticks, stats lines). */
#include "config.h"
#include "enforce.h"
#include "heartbeat.h"
#include "listen.h"
#include "live.h"
#include "log.h"
#include "metrics.h"
#include "playopts.h"
#include "queue.h"
#include "redis.h"
#include "stats.h"
#include "subscriber.h"
#include "writer.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct options {
    struct hb_config common;
    const char *share_group;
    const char *client_id;
    const char *username, *password, *password_file;
    const char *metrics;
    const char *ca_file;
    long buffer, batch_size, flush_ms, payload_max, stats_interval_s, drain_timeout_s;
    enum hb_log_level log_level;
    bool enforce;
    bool no_aggregates;
    bool live;
    const char *live_prefix;
    long live_window_s, live_max_devices;
    struct hb_play_options play; /* shared with hb-api (common/playopts.h) */
};

#define STR(x) #x
#define XSTR(x) STR(x)

static const struct hb_option consumer_options[] = {
    {.type = HB_OPTION_CLEAR,
     .name = "no-share",
     HB_OPTION_FIELD(struct options, share_group),
     .help = "plain subscription instead of the shared one"},
    {.type = HB_OPTION_ID,
     .name = "share-group",
     .metavar = "NAME",
     .def = "hb-consumers",
     HB_OPTION_FIELD(struct options, share_group),
     .error = "must be an id (A-Z a-z 0-9 . _ - :), got '%s'",
     .help = "shared subscription group (default hb-consumers)"},
    {.type = HB_OPTION_STRING,
     .name = "client-id",
     .metavar = "ID",
     HB_OPTION_FIELD(struct options, client_id),
     .help = "MQTT client id (default hb-consumer-<host>-<pid>)"},
    {.type = HB_OPTION_STRING,
     .name = "username",
     .metavar = "U",
     .env = "HB_MQTT_USERNAME",
     HB_OPTION_FIELD(struct options, username),
     .help = "MQTT user name (env HB_MQTT_USERNAME)"},
    {.type = HB_OPTION_STRING,
     .name = "password",
     .metavar = "P",
     .env = "HB_MQTT_PASSWORD",
     HB_OPTION_FIELD(struct options, password),
     .help = "MQTT password or token (env HB_MQTT_PASSWORD; prefer the env)"},
    {.type = HB_OPTION_STRING,
     .name = "ca-file",
     .metavar = "F",
     .env = "HB_MQTT_CA_FILE",
     HB_OPTION_FIELD(struct options, ca_file),
     .help = "CA certificates (PEM) for ssl://, mqtts:// and wss:// brokers\n"
             "(env HB_MQTT_CA_FILE; default: the system's trust store)"},
    {.type = HB_OPTION_STRING,
     .name = "password-file",
     .metavar = "F",
     .env = "HB_MQTT_PASSWORD_FILE",
     HB_OPTION_FIELD(struct options, password_file),
     .help = "read the password from F, again before every reconnect, so a\n"
             "renewed token needs no restart (env HB_MQTT_PASSWORD_FILE)"},
    {.type = HB_OPTION_INTEGER,
     .name = "buffer",
     .metavar = "N",
     .def = "262144",
     HB_OPTION_FIELD(struct options, buffer),
     .min = 1,
     .max = 100000000,
     .help = "heartbeats held while Redis is unreachable (default 262144)"},
    {.type = HB_OPTION_INTEGER,
     .name = "batch-size",
     .metavar = "N",
     .def = "2000",
     HB_OPTION_FIELD(struct options, batch_size),
     .min = 1,
     .max = 1000000,
     .help = "most heartbeats per Redis batch (default 2000)"},
    {.type = HB_OPTION_INTEGER,
     .name = "flush-ms",
     .metavar = "MS",
     .def = "50",
     HB_OPTION_FIELD(struct options, flush_ms),
     .min = 1,
     .max = 60000,
     .help = "longest wait for a batch to fill (default 50)"},
    {.type = HB_OPTION_INTEGER,
     .name = "payload-max",
     .metavar = "BYTES",
     .def = XSTR(HB_PAYLOAD_MAX_DEFAULT),
     HB_OPTION_FIELD(struct options, payload_max),
     .min = 0,
     .max = 256 * 1024,
     .help = "largest payload accepted (default 1024)"},
    {.type = HB_OPTION_INTEGER,
     .name = "stats-interval",
     .metavar = "S",
     .def = "10",
     HB_OPTION_FIELD(struct options, stats_interval_s),
     .min = 0,
     .max = 86400,
     .help = "seconds between stats lines on stderr, 0 for none (default 10)"},
    {.type = HB_OPTION_INTEGER,
     .name = "drain-timeout",
     .metavar = "S",
     .def = "10",
     HB_OPTION_FIELD(struct options, drain_timeout_s),
     .min = 0,
     .max = 3600,
     .help = "on shutdown, how long to retry an unreachable Redis (default 10)"},
    {.type = HB_OPTION_LOG_LEVEL,
     .name = "log-level",
     .metavar = "LEVEL",
     .env = "HB_LOG_LEVEL",
     .def = "info",
     HB_OPTION_FIELD(struct options, log_level),
     .flags = HB_OPTION_ENV_LENIENT,
     .help = "error, warn, info or debug (env HB_LOG_LEVEL, default info)"},
    {.type = HB_OPTION_STRING,
     .name = "metrics",
     .metavar = "ADDR:PORT",
     .env = "HB_METRICS",
     HB_OPTION_FIELD(struct options, metrics),
     .help = "serve GET /metrics (Prometheus) and /healthz there (env\n"
             "HB_METRICS; default off)"},
    {.type = HB_OPTION_FLAG,
     .name = "enforce",
     .env = "HB_ENFORCE",
     HB_OPTION_FIELD(struct options, enforce),
     .help = "enforce the admission limits at ingest: refresh admitted devices,\n"
             "release on \"state\":\"stopped\", admit or stop the others (env\n"
             "HB_ENFORCE; default off: only with hb-api admitting devices)"},
    {.type = HB_OPTION_FLAG,
     .name = "no-aggregates",
     .env = "HB_NO_AGGREGATES",
     HB_OPTION_FIELD(struct options, no_aggregates),
     .help = "do not keep the dashboard's aggregates (viewers, agents, play time,\n"
             "bitrate: README \"Dashboard\"; env HB_NO_AGGREGATES; default: kept)"},
    {.type = HB_OPTION_FLAG,
     .name = "live",
     .env = "HB_LIVE",
     HB_OPTION_FIELD(struct options, live),
     .help = "publish live viewer counts, retained, on <live prefix>/media/<mediaId>\n"
             "and <live prefix>/account/<account> (env HB_LIVE; default off)"},
    {.type = HB_OPTION_STRING,
     .name = "live-prefix",
     .metavar = "P",
     .def = LIVE_PREFIX_DEFAULT,
     HB_OPTION_FIELD(struct options, live_prefix),
     .help = "topic prefix of the live counts (default " LIVE_PREFIX_DEFAULT ")"},
    {.type = HB_OPTION_INTEGER,
     .name = "live-window",
     .metavar = "S",
     .def = XSTR(LIVE_WINDOW_S_DEFAULT),
     HB_OPTION_FIELD(struct options, live_window_s),
     .min = 1,
     .max = 3600,
     .help = "a device is watching while its last heartbeat is this recent\n"
             "(seconds, default " XSTR(LIVE_WINDOW_S_DEFAULT) ")"},
    {.type = HB_OPTION_INTEGER,
     .name = "live-max-devices",
     .metavar = "N",
     .def = XSTR(LIVE_MAX_DEVICES_DEFAULT),
     HB_OPTION_FIELD(struct options, live_max_devices),
     .min = 1,
     .max = 100000000,
     .help = "devices the live counts track at most; past it the least recently\n"
             "seen is evicted and counted (default " XSTR(LIVE_MAX_DEVICES_DEFAULT) ")"},
};

/* getopt's order, which lists ambiguous abbreviations, predates the help text's. */
static const char *const getopt_order[] = {
    "broker",        "redis",      "interval", "topic-prefix", "no-share",
    "share-group",   "client-id",  "username", "password",     "password-file",
    "buffer",        "batch-size", "flush-ms", "payload-max",  "stats-interval",
    "drain-timeout", "log-level",  "metrics",  "ca-file",      NULL,
};

static const struct hb_options_spec spec = {
    .program = "hb-consumer",
    .usage = "Usage: hb-consumer [OPTION]...\n"
             "Subscribe to MQTT heartbeats and count them per account, device and interval in "
             "Redis.\n\n",
    .groups = {HB_CONFIG_GROUP(struct options, common),
               {consumer_options, sizeof(consumer_options) / sizeof(consumer_options[0]), 0},
               HB_PLAY_OPTIONS_GROUP(struct options, play)},
    .n_groups = 3,
    .getopt_order = getopt_order,
};

/* Fills a fresh o from the environment and argv and checks it as a whole. */
static enum hb_options_status parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    enum hb_options_status status = hb_options_parse(&spec, o, argc, argv, NULL);
    if (status != HB_OPTIONS_RUN)
        return status;
    if (o->password != NULL && o->password_file != NULL) {
        HB_ERROR("give a password or a password file (--password, --password-file or their "
                 "environment variables), not both");
        return HB_OPTIONS_USAGE;
    }
    if (!hb_play_options_check(&o->play))
        return HB_OPTIONS_USAGE;
    if (!hb_topic_prefix_valid(o->live_prefix) ||
        strcmp(o->live_prefix, o->common.topic_prefix) == 0) {
        HB_ERROR("--live-prefix '%s': a topic prefix other than the heartbeats'", o->live_prefix);
        return HB_OPTIONS_USAGE;
    }
    return HB_OPTIONS_RUN;
}

static void print_stats(struct stats *stats, struct queue *queue)
{
    char line[1024];
    stats_format(stats, queue_length(queue), line, sizeof(line));
    HB_INFO("%s", line);
}

/* Waits for SIGINT/SIGTERM, ticking reconnects and printing stats meanwhile. */
static void run(const struct options *o, const sigset_t *signals, struct subscriber *sub,
                struct stats *stats, struct queue *queue)
{
    struct timespec tick = {0, 100 * 1000000L};
    struct timespec last_stats;
    clock_gettime(CLOCK_MONOTONIC, &last_stats);
    for (;;) {
        subscriber_tick(sub);
        int sig = sigtimedwait(signals, NULL, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
            HB_INFO("%s: stopping; flushing %zu buffered heartbeats", strsignal(sig),
                    queue_length(queue));
            return;
        }
        if (o->stats_interval_s > 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - last_stats.tv_sec >= o->stats_interval_s) {
                last_stats = now;
                print_stats(stats, queue);
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct options o;
    enum hb_options_status status = parse_options(&o, argc, argv);
    if (status != HB_OPTIONS_RUN)
        return status == HB_OPTIONS_EXIT ? 0 : 2;
    hb_log_set_level(o.log_level);

    char err[256];
    struct writer_config wcfg = {
        .interval_s = o.common.interval_s,
        .batch_size = (size_t)o.batch_size,
        .flush_ms = (int)o.flush_ms,
        .drain_timeout_ms = (int)o.drain_timeout_s * 1000,
        .aggregates = !o.no_aggregates,
    };
    if (!hb_redis_uri_parse(o.common.redis, &wcfg.redis, err, sizeof(err))) {
        HB_ERROR("--redis: %s", err);
        return 2;
    }
    if (o.ca_file != NULL && access(o.ca_file, R_OK) != 0) {
        HB_ERROR("--ca-file %s: %s", o.ca_file, strerror(errno));
        return 2;
    }
    struct sockaddr_storage metrics_addr;
    if (o.metrics != NULL && !hb_listen_parse(o.metrics, &metrics_addr, err, sizeof(err))) {
        HB_ERROR("--metrics %s", err);
        return 2;
    }
    char default_id[96];
    if (o.client_id == NULL) {
        char host[48] = "host";
        gethostname(host, sizeof(host) - 1);
        host[sizeof(host) - 1] = '\0';
        snprintf(default_id, sizeof(default_id), "hb-consumer-%s-%ld", host, (long)getpid());
        o.client_id = default_id;
    }
    wcfg.group = o.share_group != NULL ? o.share_group : HB_WATERMARK_GROUP_DEFAULT;
    wcfg.consumer_id = o.client_id;

    /* Block the signals before any thread starts, so only sigtimedwait sees them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Set up in stages; a failure jumps to the label that undoes the stages before it. */
    int rc = 1;
    int drain_ms = 0; /* in-flight MQTT messages are waited for only after a clean run */
    struct stats *stats = malloc(sizeof(*stats));
    if (stats == NULL) {
        HB_ERROR("out of memory");
        return 1;
    }
    stats_init(stats);
    struct queue queue;
    if (!queue_init(&queue, (size_t)o.buffer))
        goto out_stats;
    struct enforce enforce = {0};
    char control_id[128];
    snprintf(control_id, sizeof(control_id), "%s-ctl", o.client_id);
    struct enforce_config ecfg = {
        .control = {.broker = o.common.brokers[0],
                    .client_id = control_id,
                    .prefix = o.play.control_prefix,
                    .username = o.username,
                    .password_file = o.password_file,
                    .password_text = o.password},
        .capacity = (size_t)o.batch_size,
    };
    hb_play_options_config(&o.play, &ecfg.plays);
    if (o.enforce) {
        if (!enforce_init(&enforce, &ecfg, stats))
            goto out_queue;
        wcfg.enforce = &enforce;
    }
    struct live live = {0};
    char live_id[128];
    snprintf(live_id, sizeof(live_id), "%s-live", o.client_id);
    struct live_config lcfg = {
        .prefix = o.live_prefix,
        .window_ms = o.live_window_s * 1000,
        .max_devices = (size_t)o.live_max_devices,
        .control = o.enforce ? enforce.control : NULL, /* one publisher for stops and counts */
        .control_cfg = ecfg.control,
    };
    lcfg.control_cfg.client_id = live_id;
    if (o.live) {
        if (!live_init(&live, &lcfg))
            goto out_enforce;
        wcfg.live = &live;
    }
    struct writer writer;
    if (!writer_init(&writer, &wcfg, &queue, stats))
        goto out_live;
    if (!writer_start(&writer))
        goto out_writer;
    struct subscriber_config scfg = {
        .brokers = o.common.brokers,
        .n_brokers = o.common.n_brokers,
        .topic_prefix = o.common.topic_prefix,
        .share_group = o.share_group,
        .client_id = o.client_id,
        .username = o.username,
        .password = o.password,
        .password_file = o.password_file,
        .ca_file = o.ca_file,
        .interval_s = o.common.interval_s,
        .payload_max = (size_t)o.payload_max,
        .keepalive_s = 30,
    };
    struct subscriber *sub = subscriber_create(&scfg, &queue, stats);
    if (sub == NULL)
        goto out_writer_running;
    struct metrics metrics = {0};
    if (o.metrics != NULL) {
        struct metrics_sources src = {stats, &queue, sub, o.live ? &live : NULL};
        if (!metrics_start(&metrics, &src, (struct sockaddr *)&metrics_addr)) {
            HB_ERROR("--metrics: cannot listen on %s", o.metrics);
            goto out_subscriber;
        }
        HB_INFO("metrics on %s (port %u): GET /metrics, /healthz", o.metrics,
                metrics_port(&metrics));
    }
    /* The address, never the URI: it may hold the Redis password. */
    char redis_at[400];
    if (wcfg.redis.path[0] != '\0')
        snprintf(redis_at, sizeof(redis_at), "unix:%s", wcfg.redis.path);
    else
        snprintf(redis_at, sizeof(redis_at), "%s:%d", wcfg.redis.host, wcfg.redis.port);
    HB_INFO("hb-consumer %s: interval %ds, %zu broker(s), redis %s db %d", HB_VERSION,
            o.common.interval_s, o.common.n_brokers, redis_at, wcfg.redis.db);
    if (o.enforce)
        HB_INFO("enforcing: default limit %ld, %s, grace %lds, stops to %s/<account>/<device>",
                o.play.default_limit, hb_play_policy_name(o.play.default_policy), o.play.grace_s,
                o.play.control_prefix);
    if (o.live)
        HB_INFO("live counts: window %lds, retained on %s/media/<media> and %s/account/<account>",
                o.live_window_s, o.live_prefix, o.live_prefix);

    run(&o, &signals, sub, stats, &queue);
    rc = 0;
    drain_ms = 2000;

    metrics_stop(&metrics);
out_subscriber:
    subscriber_destroy(sub, drain_ms);
out_writer_running:
    queue_close(&queue); /* the writer drains what is queued, then ends */
out_writer:
    writer_finish(&writer);
    if (rc == 0 && writer.dropped_at_stop > 0)
        rc = 3; /* stopped, but heartbeats were dropped: a supervisor must know */
out_live:
    live_finish(&live);
out_enforce:
    enforce_finish(&enforce);
out_queue:
    print_stats(stats, &queue);
    queue_finish(&queue);
out_stats:
    free(stats);
    return rc;
}
