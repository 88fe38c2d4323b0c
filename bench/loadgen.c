/* hb-loadgen: offers MQTT heartbeats at a precise rate, for the benchmark. A few libmosquitto
 * connections, driven from one poll() loop, publish to many device topics. Message i is due at
 * start + i / rate, a fixed schedule: a generator that falls behind sends what is overdue at once
 * and reports how far behind it was, so a slow generator shows instead of quietly offering less.
 * It counts what it sent per account and per device, so the benchmark can check exact counts. */
#include <mosquitto.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CONNECTIONS_MAX 64
#define QUANTUM_NS 250000 /* shortest sleep between bursts: 0.25 ms */

struct options {
    const char *host;
    int port;
    int connections;
    long accounts, devices_per_account;
    const char *account_prefix;
    const char *topic_prefix;
    double rate; /* heartbeats/s, 0 = as fast as the in-flight window allows */
    long long count;
    double duration_s;
    int qos;
    int window; /* unacknowledged QoS 1 publishes per connection */
    double ack_timeout_s;
    const char *report;
};

struct connection {
    struct mosquitto *mosq;
    struct loadgen *owner;
    int index;
    bool connected;
    bool failed;
    long long outstanding; /* published, not yet acknowledged (QoS 1) or written (QoS 0) */
};

struct loadgen {
    struct options opt;
    struct connection conns[CONNECTIONS_MAX];
    long n_devices;
    uint32_t *device_sent; /* heartbeats per device, index = device number */
    long long sent, acked, publish_errors;
    int64_t start_ns, first_ns, last_ns, first_ms, last_ms;
    int64_t max_lag_ns;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_connect(struct mosquitto *mosq, void *userdata, int rc)
{
    struct connection *c = userdata;
    if (rc != 0) {
        fprintf(stderr, "hb-loadgen: connection %d refused: %s\n", c->index,
                mosquitto_connack_string(rc));
        c->failed = true;
        return;
    }
    c->connected = true;
}

static void on_disconnect(struct mosquitto *mosq, void *userdata, int rc)
{
    struct connection *c = userdata;
    if (rc != 0) {
        fprintf(stderr, "hb-loadgen: connection %d lost: %s\n", c->index, mosquitto_strerror(rc));
        c->failed = true;
    }
    c->connected = false;
}

/* Called on PUBACK for QoS 1 and once written for QoS 0. */
static void on_publish(struct mosquitto *mosq, void *userdata, int mid)
{
    struct connection *c = userdata;
    c->outstanding--;
    c->owner->acked++;
}

static const char usage[] =
    "Usage: hb-loadgen [OPTION]...\n"
    "Publish heartbeats to <prefix>/<account>/<device> at a fixed rate and report what was "
    "sent.\n\n"
    "  --host H                  broker host (default 127.0.0.1)\n"
    "  --port P                  broker port (default 1883)\n"
    "  --connections K           MQTT connections, messages spread round-robin (default 4)\n"
    "  --accounts N              accounts (default 200)\n"
    "  --devices-per-account M   devices per account (default 1000)\n"
    "  --account-prefix STR      account ids STR0000, STR0001, ...; devices <account>-dNNNNN\n"
    "                            (default acct)\n"
    "  --topic-prefix P          topic prefix (default hb)\n"
    "  --rate R                  heartbeats per second; 0 = as fast as the window allows\n"
    "                            (default 10000)\n"
    "  --count N                 heartbeats to send in all\n"
    "  --duration S              or: send for S seconds at --rate (default 10)\n"
    "  --qos 0|1                 QoS of every publish (default 1)\n"
    "  --window N                unacknowledged publishes per connection before the generator\n"
    "                            waits (default 100; libmosquitto searches its\n"
    "                            in-flight list linearly, so larger windows cost CPU)\n"
    "  --ack-timeout S           longest wait for the last acknowledgements (default 30)\n"
    "  --report FILE             write the JSON report to FILE (default: stdout)\n"
    "  -h, --help                show this help\n"
    "Device j (0-based, j = i mod devices) of message i belongs to account j mod N.\n"
    "Exit status: 0 all sent and acknowledged, 1 failure, 2 usage error.\n";

enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_CONNECTIONS,
    OPT_ACCOUNTS,
    OPT_DEVICES,
    OPT_ACCOUNT_PREFIX,
    OPT_TOPIC_PREFIX,
    OPT_RATE,
    OPT_COUNT,
    OPT_DURATION,
    OPT_QOS,
    OPT_WINDOW,
    OPT_ACK_TIMEOUT,
    OPT_REPORT,
};

static const struct option long_options[] = {
    {"host", required_argument, NULL, OPT_HOST},
    {"port", required_argument, NULL, OPT_PORT},
    {"connections", required_argument, NULL, OPT_CONNECTIONS},
    {"accounts", required_argument, NULL, OPT_ACCOUNTS},
    {"devices-per-account", required_argument, NULL, OPT_DEVICES},
    {"account-prefix", required_argument, NULL, OPT_ACCOUNT_PREFIX},
    {"topic-prefix", required_argument, NULL, OPT_TOPIC_PREFIX},
    {"rate", required_argument, NULL, OPT_RATE},
    {"count", required_argument, NULL, OPT_COUNT},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"qos", required_argument, NULL, OPT_QOS},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"ack-timeout", required_argument, NULL, OPT_ACK_TIMEOUT},
    {"report", required_argument, NULL, OPT_REPORT},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static bool parse_ll(const char *name, const char *arg, long long min, long long max,
                     long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v < min || v > max) {
        fprintf(stderr, "hb-loadgen: %s: expected a whole number in %lld..%lld, got '%s'\n", name,
                min, max, arg);
        return false;
    }
    *out = v;
    return true;
}

static bool parse_double(const char *name, const char *arg, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v >= min && v <= max)) {
        fprintf(stderr, "hb-loadgen: %s: expected a number in %g..%g, got '%s'\n", name, min, max,
                arg);
        return false;
    }
    *out = v;
    return true;
}

/* Returns 0 to run, 1 to exit successfully (help), 2 on a usage error. */
static int parse_options(struct options *o, int argc, char **argv)
{
    *o = (struct options){
        .host = "127.0.0.1",
        .port = 1883,
        .connections = 4,
        .accounts = 200,
        .devices_per_account = 1000,
        .account_prefix = "acct",
        .topic_prefix = "hb",
        .rate = 10000,
        .count = -1,
        .duration_s = 10,
        .qos = 1,
        .window = 100,
        .ack_timeout_s = 30,
    };
    long long v;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        bool ok = true;
        switch (opt) {
        case OPT_HOST:
            o->host = optarg;
            break;
        case OPT_PORT:
            ok = parse_ll("--port", optarg, 1, 65535, &v);
            o->port = (int)v;
            break;
        case OPT_CONNECTIONS:
            ok = parse_ll("--connections", optarg, 1, CONNECTIONS_MAX, &v);
            o->connections = (int)v;
            break;
        case OPT_ACCOUNTS:
            ok = parse_ll("--accounts", optarg, 1, 9999, &v);
            o->accounts = (long)v;
            break;
        case OPT_DEVICES:
            ok = parse_ll("--devices-per-account", optarg, 1, 99999, &v);
            o->devices_per_account = (long)v;
            break;
        case OPT_ACCOUNT_PREFIX:
            o->account_prefix = optarg;
            break;
        case OPT_TOPIC_PREFIX:
            o->topic_prefix = optarg;
            break;
        case OPT_RATE:
            ok = parse_double("--rate", optarg, 0, 1e8, &o->rate);
            break;
        case OPT_COUNT:
            ok = parse_ll("--count", optarg, 1, LLONG_MAX / 2, &o->count);
            break;
        case OPT_DURATION:
            ok = parse_double("--duration", optarg, 0.001, 1e6, &o->duration_s);
            break;
        case OPT_QOS:
            ok = parse_ll("--qos", optarg, 0, 1, &v);
            o->qos = (int)v;
            break;
        case OPT_WINDOW:
            ok = parse_ll("--window", optarg, 1, 65535, &v);
            o->window = (int)v;
            break;
        case OPT_ACK_TIMEOUT:
            ok = parse_double("--ack-timeout", optarg, 0, 3600, &o->ack_timeout_s);
            break;
        case OPT_REPORT:
            o->report = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            fputs("Try 'hb-loadgen --help'.\n", stderr);
            return 2;
        }
        if (!ok)
            return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "hb-loadgen: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (strlen(o->account_prefix) > 40 || strlen(o->topic_prefix) > 64) {
        fputs("hb-loadgen: --account-prefix or --topic-prefix too long\n", stderr);
        return 2;
    }
    if (o->count < 0) {
        if (o->rate == 0) {
            fputs("hb-loadgen: --rate 0 needs --count\n", stderr);
            return 2;
        }
        o->count = (long long)(o->rate * o->duration_s + 0.5);
        if (o->count < 1)
            o->count = 1;
    }
    return 0;
}

/* Creates the clients and connects them all; false (reported) if any fails. */
static bool connect_all(struct loadgen *g)
{
    for (int k = 0; k < g->opt.connections; k++) {
        struct connection *c = &g->conns[k];
        char id[64];
        snprintf(id, sizeof(id), "hb-loadgen-%ld-%d", (long)getpid(), k);
        c->owner = g;
        c->index = k;
        c->mosq = mosquitto_new(id, true, c);
        if (c->mosq == NULL) {
            fprintf(stderr, "hb-loadgen: mosquitto_new: %s\n", strerror(errno));
            return false;
        }
        mosquitto_connect_callback_set(c->mosq, on_connect);
        mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
        mosquitto_publish_callback_set(c->mosq, on_publish);
        /* Our own window (below) decides when to wait; libmosquitto must never hold back. */
        int rc = mosquitto_int_option(c->mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
        if (rc == MOSQ_ERR_SUCCESS)
            rc = mosquitto_connect(c->mosq, g->opt.host, g->opt.port, 60);
        if (rc != MOSQ_ERR_SUCCESS) {
            fprintf(stderr, "hb-loadgen: connect to %s:%d: %s\n", g->opt.host, g->opt.port,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
            return false;
        }
    }
    int64_t deadline = monotonic_ns() + 10 * (int64_t)1000000000;
    for (;;) {
        int ready = 0;
        for (int k = 0; k < g->opt.connections; k++) {
            struct connection *c = &g->conns[k];
            if (c->failed)
                return false;
            if (!c->connected) {
                int rc = mosquitto_loop(c->mosq, 10, 1);
                if (rc != MOSQ_ERR_SUCCESS) {
                    fprintf(stderr, "hb-loadgen: connection %d: %s\n", k, mosquitto_strerror(rc));
                    return false;
                }
            }
            ready += c->connected;
        }
        if (ready == g->opt.connections)
            return true;
        if (monotonic_ns() > deadline) {
            fputs("hb-loadgen: no CONNACK within 10 s\n", stderr);
            return false;
        }
    }
}

/* Publishes message i. Returns false when the connection cannot take it. */
static bool publish_one(struct loadgen *g, long long i)
{
    const struct options *o = &g->opt;
    struct connection *c = &g->conns[i % o->connections];
    long j = (long)(i % g->n_devices);
    long account = j % o->accounts, device = j / o->accounts;
    char topic[160], payload[256];
    snprintf(topic, sizeof(topic), "%s/%s%04ld/%s%04ld-d%05ld", o->topic_prefix, o->account_prefix,
             account, o->account_prefix, account, device);
    int64_t now = wall_ms();
    int plen = snprintf(payload, sizeof(payload),
                        "{\"ts\":%" PRId64 ",\"mediaId\":\"m-1\",\"bitrate\":3000,"
                        "\"playTime\":12.5,\"agent\":{\"os\":\"Android\",\"browser\":"
                        "\"ExoPlayer\",\"device\":\"Pixel 7\"}}",
                        now);
    int rc = mosquitto_publish(c->mosq, NULL, topic, plen, payload, o->qos, false);
    if (rc != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "hb-loadgen: publish on connection %d: %s\n", c->index,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        g->publish_errors++;
        return false;
    }
    int64_t mono = monotonic_ns();
    if (g->sent == 0) {
        g->first_ms = now;
        g->first_ns = mono;
    }
    g->last_ms = now;
    g->last_ns = mono;
    g->sent++;
    c->outstanding++;
    g->device_sent[j]++;
    return true;
}

/* Waits for socket activity up to timeout_ns and lets libmosquitto read and write. */
static bool service_sockets(struct loadgen *g, int64_t timeout_ns)
{
    struct pollfd fds[CONNECTIONS_MAX];
    int n = g->opt.connections;
    for (int k = 0; k < n; k++) {
        fds[k].fd = mosquitto_socket(g->conns[k].mosq);
        fds[k].events = POLLIN | (mosquitto_want_write(g->conns[k].mosq) ? POLLOUT : 0);
        fds[k].revents = 0;
    }
    struct timespec ts = {.tv_sec = timeout_ns / 1000000000, .tv_nsec = timeout_ns % 1000000000};
    int rc = ppoll(fds, (nfds_t)n, &ts, NULL);
    if (rc < 0) {
        if (errno == EINTR)
            return true;
        fprintf(stderr, "hb-loadgen: poll: %s\n", strerror(errno));
        return false;
    }
    for (int k = 0; k < n; k++) {
        struct connection *c = &g->conns[k];
        int r = MOSQ_ERR_SUCCESS;
        if (fds[k].revents & (POLLIN | POLLHUP | POLLERR))
            r = mosquitto_loop_read(c->mosq, 1);
        if (r == MOSQ_ERR_SUCCESS && (fds[k].revents & POLLOUT))
            r = mosquitto_loop_write(c->mosq, 1);
        if (r != MOSQ_ERR_SUCCESS || c->failed) {
            fprintf(stderr, "hb-loadgen: connection %d: %s\n", k,
                    r == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(r));
            return false;
        }
    }
    return true;
}

/* Sends the whole schedule and waits for the last acknowledgements. */
static bool run(struct loadgen *g)
{
    const struct options *o = &g->opt;
    long long next = 0;
    int64_t last_misc = 0;
    g->start_ns = monotonic_ns();
    int64_t ack_deadline = 0;
    while (!interrupted) {
        int64_t now = monotonic_ns();
        long long due = o->count;
        if (o->rate > 0) {
            due = (long long)((double)(now - g->start_ns) * o->rate / 1e9) + 1;
            if (due > o->count)
                due = o->count;
        }
        while (next < due) {
            struct connection *c = &g->conns[next % o->connections];
            if (c->outstanding >= o->window)
                break;
            if (!publish_one(g, next))
                return false;
            next++;
        }
        int64_t wait_ns = QUANTUM_NS;
        if (next < due) {
            /* Behind schedule: the window is full, wait for acknowledgements only. */
            if (o->rate > 0) {
                int64_t due_at = g->start_ns + (int64_t)((double)next * 1e9 / o->rate);
                if (now - due_at > g->max_lag_ns)
                    g->max_lag_ns = now - due_at;
            }
            wait_ns = 10000000;
        } else if (next < o->count && o->rate > 0) {
            int64_t due_at = g->start_ns + (int64_t)((double)next * 1e9 / o->rate);
            wait_ns = due_at - now > QUANTUM_NS ? due_at - now : QUANTUM_NS;
        } else if (next == o->count) {
            if (g->acked == g->sent)
                return true;
            if (ack_deadline == 0)
                ack_deadline = now + (int64_t)(o->ack_timeout_s * 1e9);
            else if (now > ack_deadline) {
                fprintf(stderr, "hb-loadgen: %lld publishes unacknowledged after %.0f s\n",
                        g->sent - g->acked, o->ack_timeout_s);
                return false;
            }
            wait_ns = 10000000;
        }
        if (!service_sockets(g, wait_ns))
            return false;
        if (now - last_misc > 1000000000) {
            last_misc = now;
            for (int k = 0; k < o->connections; k++)
                mosquitto_loop_misc(g->conns[k].mosq);
        }
    }
    fputs("hb-loadgen: interrupted\n", stderr);
    return false;
}

static bool write_report(const struct loadgen *g, double send_s, double total_s, bool ok)
{
    const struct options *o = &g->opt;
    FILE *f = o->report ? fopen(o->report, "w") : stdout;
    if (f == NULL) {
        fprintf(stderr, "hb-loadgen: %s: %s\n", o->report, strerror(errno));
        return false;
    }
    fprintf(f,
            "{\"ok\":%s,\"sent\":%lld,\"acked\":%lld,\"publish_errors\":%lld,\"qos\":%d,"
            "\"connections\":%d,\"rate_offered\":%.1f,\"send_seconds\":%.6f,"
            "\"total_seconds\":%.6f,\"rate_sent\":%.1f,\"max_lag_ms\":%.3f,"
            "\"first_ts_ms\":%" PRId64 ",\"last_ts_ms\":%" PRId64 ",\"accounts\":[",
            ok ? "true" : "false", g->sent, g->acked, g->publish_errors, o->qos, o->connections,
            o->rate, send_s, total_s, send_s > 0 ? (double)g->sent / send_s : 0.0,
            (double)g->max_lag_ns / 1e6, g->first_ms, g->last_ms);
    for (long a = 0; a < o->accounts; a++) {
        long long heartbeats = 0, devices = 0;
        for (long d = 0; d < o->devices_per_account; d++) {
            uint32_t n = g->device_sent[d * o->accounts + a];
            heartbeats += n;
            devices += n > 0;
        }
        fprintf(f, "%s{\"account\":\"%s%04ld\",\"heartbeats\":%lld,\"devices\":%lld}", a ? "," : "",
                o->account_prefix, a, heartbeats, devices);
    }
    fputs("]}\n", f);
    bool written = !ferror(f);
    if (f != stdout && fclose(f) != 0)
        written = false;
    if (!written)
        fprintf(stderr, "hb-loadgen: cannot write the report\n");
    return written;
}

int main(int argc, char **argv)
{
    struct loadgen g;
    memset(&g, 0, sizeof(g));
    int rc = parse_options(&g.opt, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : 2;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    g.n_devices = g.opt.accounts * g.opt.devices_per_account;
    g.device_sent = calloc((size_t)g.n_devices, sizeof(*g.device_sent));
    if (g.device_sent == NULL) {
        fprintf(stderr, "hb-loadgen: out of memory for %ld devices\n", g.n_devices);
        return 1;
    }
    mosquitto_lib_init();
    rc = 1;
    if (!connect_all(&g))
        goto out;
    bool ok = run(&g);
    double total_s = (double)(monotonic_ns() - g.start_ns) / 1e9;
    double send_s = (double)(g.last_ns - g.first_ns) / 1e9;
    if (write_report(&g, send_s, total_s, ok) && ok)
        rc = 0;
    fprintf(stderr,
            "hb-loadgen: sent=%lld acked=%lld offered=%.0f/s sent_rate=%.0f/s max_lag_ms=%.1f "
            "seconds=%.2f\n",
            g.sent, g.acked, g.opt.rate, send_s > 0 ? (double)g.sent / send_s : 0.0,
            (double)g.max_lag_ns / 1e6, total_s);
    for (int k = 0; k < g.opt.connections; k++)
        mosquitto_disconnect(g.conns[k].mosq);
out:
    for (int k = 0; k < g.opt.connections; k++)
        mosquitto_destroy(g.conns[k].mosq);
    mosquitto_lib_cleanup();
    free(g.device_sent);
    return rc;
}
