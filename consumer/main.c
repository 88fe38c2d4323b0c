/* hb-consumer: subscribes to heartbeat topics and bins every heartbeat into Redis, one hash
 * per account and interval. Three threads matter: paho's receive thread (validates, queues),
 * the writer (batches into Redis) and this one (signals, reconnect ticks, stats lines). */
#include "config.h"
#include "heartbeat.h"
#include "listen.h"
#include "log.h"
#include "metrics.h"
#include "queue.h"
#include "redis.h"
#include "stats.h"
#include "subscriber.h"
#include "writer.h"

#include <errno.h>
#include <stddef.h>
#include <signal.h>
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
};

enum {
    OPT_NO_SHARE = HB_OPT_FIRST_PROGRAM_OPTION,
    OPT_SHARE_GROUP,
    OPT_CLIENT_ID,
    OPT_USERNAME,
    OPT_PASSWORD,
    OPT_PASSWORD_FILE,
    OPT_BUFFER,
    OPT_BATCH_SIZE,
    OPT_FLUSH_MS,
    OPT_PAYLOAD_MAX,
    OPT_STATS_INTERVAL,
    OPT_DRAIN_TIMEOUT,
    OPT_LOG_LEVEL,
    OPT_METRICS,
    OPT_CA_FILE,
};

static const char usage[] =
    "Usage: hb-consumer [OPTION]...\n"
    "Subscribe to MQTT heartbeats and count them per account, device and interval in Redis.\n\n";

static const char usage_tail[] =
    "  --no-share            plain subscription instead of the shared one\n"
    "  --share-group NAME    shared subscription group (default hb-consumers)\n"
    "  --client-id ID        MQTT client id (default hb-consumer-<host>-<pid>)\n"
    "  --username U          MQTT user name (env HB_MQTT_USERNAME)\n"
    "  --password P          MQTT password or token (env HB_MQTT_PASSWORD; prefer the env)\n"
    "  --ca-file F           CA certificates (PEM) for ssl://, mqtts:// and wss:// brokers\n"
    "                        (env HB_MQTT_CA_FILE; default: the system's trust store)\n"
    "  --password-file F     read the password from F, again before every reconnect, so a\n"
    "                        renewed token needs no restart (env HB_MQTT_PASSWORD_FILE)\n"
    "  --buffer N            heartbeats held while Redis is unreachable (default 262144)\n"
    "  --batch-size N        most heartbeats per Redis batch (default 2000)\n"
    "  --flush-ms MS         longest wait for a batch to fill (default 50)\n"
    "  --payload-max BYTES   largest payload accepted (default 1024)\n"
    "  --stats-interval S    seconds between stats lines on stderr, 0 for none (default 10)\n"
    "  --drain-timeout S     on shutdown, how long to retry an unreachable Redis (default 10)\n"
    "  --log-level LEVEL     error, warn, info or debug (env HB_LOG_LEVEL, default info)\n"
    "  --metrics ADDR:PORT   serve GET /metrics (Prometheus) and /healthz there (env\n"
    "                        HB_METRICS; default off)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n";

static const struct option long_options[] = {
    HB_CONFIG_LONG_OPTIONS,
    {"no-share", no_argument, NULL, OPT_NO_SHARE},
    {"share-group", required_argument, NULL, OPT_SHARE_GROUP},
    {"client-id", required_argument, NULL, OPT_CLIENT_ID},
    {"username", required_argument, NULL, OPT_USERNAME},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"password-file", required_argument, NULL, OPT_PASSWORD_FILE},
    {"buffer", required_argument, NULL, OPT_BUFFER},
    {"batch-size", required_argument, NULL, OPT_BATCH_SIZE},
    {"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
    {"payload-max", required_argument, NULL, OPT_PAYLOAD_MAX},
    {"stats-interval", required_argument, NULL, OPT_STATS_INTERVAL},
    {"drain-timeout", required_argument, NULL, OPT_DRAIN_TIMEOUT},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"metrics", required_argument, NULL, OPT_METRICS},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* A numeric option with its bounds, for uniform parsing and messages. */
struct numeric_option {
    int code;
    const char *name;
    long min, max;
    size_t offset;
};

static const struct numeric_option numeric_options[] = {
    {OPT_BUFFER, "--buffer", 1, 100000000, offsetof(struct options, buffer)},
    {OPT_BATCH_SIZE, "--batch-size", 1, 1000000, offsetof(struct options, batch_size)},
    {OPT_FLUSH_MS, "--flush-ms", 1, 60000, offsetof(struct options, flush_ms)},
    {OPT_PAYLOAD_MAX, "--payload-max", 0, 256 * 1024, offsetof(struct options, payload_max)},
    {OPT_STATS_INTERVAL, "--stats-interval", 0, 86400,
     offsetof(struct options, stats_interval_s)},
    {OPT_DRAIN_TIMEOUT, "--drain-timeout", 0, 3600, offsetof(struct options, drain_timeout_s)},
};

/* Returns 1 handled, 0 not numeric, -1 bad value. */
static int numeric_option(struct options *o, int code, const char *arg)
{
    for (size_t i = 0; i < sizeof(numeric_options) / sizeof(numeric_options[0]); i++) {
        const struct numeric_option *n = &numeric_options[i];
        if (n->code != code)
            continue;
        long *field = (long *)((char *)o + n->offset);
        if (!hb_parse_long(arg, n->min, n->max, field)) {
            HB_ERROR("%s: expected a whole number in %ld..%ld, got '%s'", n->name, n->min,
                     n->max, arg);
            return -1;
        }
        return 1;
    }
    return 0;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

/* Returns 0 to run, 1 to exit successfully (help, version), 2 on a usage error. */
static int parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    if (!hb_config_init(&o->common))
        return 2;
    o->share_group = "hb-consumers";
    o->username = env_or("HB_MQTT_USERNAME", NULL);
    o->password = env_or("HB_MQTT_PASSWORD", NULL);
    o->password_file = env_or("HB_MQTT_PASSWORD_FILE", NULL);
    o->metrics = env_or("HB_METRICS", NULL);
    o->ca_file = env_or("HB_MQTT_CA_FILE", NULL);
    o->buffer = 262144;
    o->batch_size = 2000;
    o->flush_ms = 50;
    o->payload_max = HB_PAYLOAD_MAX_DEFAULT;
    o->stats_interval_s = 10;
    o->drain_timeout_s = 10;
    enum hb_log_level level;
    const char *env_level = env_or("HB_LOG_LEVEL", NULL);
    if (env_level && hb_log_level_parse(env_level, &level))
        hb_log_set_level(level);

    int opt;
    while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        int handled = hb_config_option(&o->common, opt, optarg);
        if (handled == 0)
            handled = numeric_option(o, opt, optarg);
        if (handled < 0)
            return 2;
        if (handled > 0)
            continue;
        switch (opt) {
        case OPT_NO_SHARE:
            o->share_group = NULL;
            break;
        case OPT_SHARE_GROUP:
            if (!hb_id_valid(optarg, strlen(optarg))) {
                HB_ERROR("--share-group: must be an id (A-Z a-z 0-9 . _ - :), got '%s'", optarg);
                return 2;
            }
            o->share_group = optarg;
            break;
        case OPT_CLIENT_ID:
            o->client_id = optarg;
            break;
        case OPT_USERNAME:
            o->username = optarg;
            break;
        case OPT_PASSWORD:
            o->password = optarg;
            break;
        case OPT_PASSWORD_FILE:
            o->password_file = optarg;
            break;
        case OPT_METRICS:
            o->metrics = optarg;
            break;
        case OPT_CA_FILE:
            o->ca_file = optarg;
            break;
        case OPT_LOG_LEVEL:
            if (!hb_log_level_parse(optarg, &level)) {
                HB_ERROR("--log-level: expected error, warn, info or debug, got '%s'", optarg);
                return 2;
            }
            hb_log_set_level(level);
            break;
        case 'h':
            printf("%s%s%s", usage, hb_config_help, usage_tail);
            return 1;
        case 'V':
            printf("hb-consumer %s\n", HB_VERSION);
            return 1;
        default:
            fprintf(stderr, "Try 'hb-consumer --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        HB_ERROR("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    if (o->password != NULL && o->password_file != NULL) {
        HB_ERROR("give a password or a password file (--password, --password-file or their "
                 "environment variables), not both");
        return 2;
    }
    return 0;
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
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;

    char err[256];
    struct writer_config wcfg = {
        .interval_s = o.common.interval_s,
        .batch_size = (size_t)o.batch_size,
        .flush_ms = (int)o.flush_ms,
        .drain_timeout_ms = (int)o.drain_timeout_s * 1000,
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

    rc = 1;
    struct stats *stats = malloc(sizeof(*stats));
    if (stats == NULL) {
        HB_ERROR("out of memory");
        return 1;
    }
    stats_init(stats);
    struct queue queue;
    if (!queue_init(&queue, (size_t)o.buffer))
        goto out_stats;
    struct writer writer;
    if (!writer_init(&writer, &wcfg, &queue, stats))
        goto out_writer;
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
    struct subscriber sub;
    if (!subscriber_init(&sub, &scfg, &queue, stats)) {
        queue_close(&queue);
        goto out_writer;
    }
    struct metrics metrics = {0};
    if (o.metrics != NULL) {
        struct metrics_sources src = {stats, &queue, &sub};
        if (!metrics_start(&metrics, &src, (struct sockaddr *)&metrics_addr)) {
            HB_ERROR("--metrics: cannot listen on %s", o.metrics);
            subscriber_finish(&sub, 0);
            queue_close(&queue);
            goto out_writer;
        }
        HB_INFO("metrics on %s (port %u): GET /metrics, /healthz", o.metrics,
                metrics_port(&metrics));
    }
    HB_INFO("hb-consumer %s: interval %ds, %zu broker(s), redis %s", HB_VERSION,
            o.common.interval_s, o.common.n_brokers, o.common.redis);

    run(&o, &signals, &sub, stats, &queue);

    metrics_stop(&metrics);
    subscriber_finish(&sub, 2000);
    queue_close(&queue);
    rc = 0;
out_writer:
    writer_finish(&writer);
    if (rc == 0 && writer.dropped_at_stop > 0)
        rc = 3; /* stopped, but heartbeats were dropped: a supervisor must know */
    print_stats(stats, &queue);
    queue_finish(&queue);
out_stats:
    free(stats);
    return rc;
}
