/* Command-line parsing for hb-sim. Everything is parsed into a fresh struct and checked as a
 * whole (brokers, guard against interval, id lengths) before the program sets anything up, so
 * a bad option never leaves a half-started run behind. */
#include "options.h"

#include "ids.h"
#include "log.h"
#include "token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    OPT_ACCOUNTS = HB_OPT_FIRST_PROGRAM_OPTION,
    OPT_DEVICES,
    OPT_HEARTBEAT,
    OPT_JITTER,
    OPT_DURATION,
    OPT_CHURN,
    OPT_GUARD_MS,
    OPT_QOS,
    OPT_SEED,
    OPT_ACCOUNT_PREFIX,
    OPT_USERNAME,
    OPT_PASSWORD,
    OPT_TRUTH,
    OPT_JSON,
    OPT_QUIET,
    OPT_CONNECT_RATE,
    OPT_LOG_LEVEL,
    OPT_WORKERS,
    OPT_SOURCE_ADDRESS,
    OPT_KEY,
    OPT_KID,
    OPT_TOKEN_TTL,
    OPT_PAYLOAD_TEMPLATE,
    OPT_KEEPALIVE,
    OPT_PROGRESS,
    OPT_CA_FILE,
};

static const struct option long_options[] = {
    HB_CONFIG_LONG_OPTIONS,
    {"accounts", required_argument, NULL, OPT_ACCOUNTS},
    {"devices-per-account", required_argument, NULL, OPT_DEVICES},
    {"heartbeat", required_argument, NULL, OPT_HEARTBEAT},
    {"jitter", required_argument, NULL, OPT_JITTER},
    {"duration", required_argument, NULL, OPT_DURATION},
    {"churn", required_argument, NULL, OPT_CHURN},
    {"guard-ms", required_argument, NULL, OPT_GUARD_MS},
    {"qos", required_argument, NULL, OPT_QOS},
    {"seed", required_argument, NULL, OPT_SEED},
    {"account-prefix", required_argument, NULL, OPT_ACCOUNT_PREFIX},
    {"username", required_argument, NULL, OPT_USERNAME},
    {"password", required_argument, NULL, OPT_PASSWORD},
    {"truth", required_argument, NULL, OPT_TRUTH},
    {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, OPT_QUIET},
    {"connect-rate", required_argument, NULL, OPT_CONNECT_RATE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"source-address", required_argument, NULL, OPT_SOURCE_ADDRESS},
    {"key", required_argument, NULL, OPT_KEY},
    {"kid", required_argument, NULL, OPT_KID},
    {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
    {"payload-template", required_argument, NULL, OPT_PAYLOAD_TEMPLATE},
    {"keepalive", required_argument, NULL, OPT_KEEPALIVE},
    {"progress", required_argument, NULL, OPT_PROGRESS},
    {"ca-file", required_argument, NULL, OPT_CA_FILE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage_head[] =
    "Usage: hb-sim [OPTION]...\n"
    "Simulate devices that publish MQTT heartbeats, one connection per device, and write the\n"
    "exact set of devices per account and complete interval that was sent (--truth).\n\n";

static const char usage_tail[] =
    "Population and timing:\n"
    "  --accounts N          accounts (default 10)\n"
    "  --devices-per-account M|MIN-MAX\n"
    "                        devices per account, MIN-MAX drawn per account (default 3);\n"
    "                        connections = the sum over the accounts\n"
    "  --account-prefix STR  account ids are STR0000, STR0001, ... (default acct);\n"
    "                        device ids are <account>-devNN\n"
    "  --heartbeat S         heartbeat period in seconds, may be fractional (default 5)\n"
    "  --jitter F            each period is heartbeat * (1 +- F), uniform (default 0.1)\n"
    "  --duration S          run length in seconds (default 60)\n"
    "  --churn F             fraction of devices that start late and/or stop early\n"
    "                        (default 0.25)\n"
    "  --guard-ms MS         no heartbeat within MS of an interval boundary (default 250)\n"
    "  --seed N              random seed, 0..999999999999999 (default: from the clock)\n"
    "Connections:\n"
    "  --connect-rate N      new connections per second, all workers together (default 500)\n"
    "  --workers N           worker processes, 1..256 (default: enough for the devices\n"
    "                        within the open-file limit)\n"
    "  --source-address A    bind connections to local address A, round-robin; repeatable,\n"
    "                        or an IPv4 range like 127.0.0.2-127.0.0.20 (each address has\n"
    "                        its own ephemeral ports)\n"
    "  --qos 0|1             MQTT QoS of heartbeats (default 1)\n"
    "  --keepalive S         MQTT keepalive, 5..65535 seconds (default 60)\n"
    "  --ca-file FILE        CA certificates (PEM) that ssl:// and mqtts:// brokers must\n"
    "                        chain to (default: the system's); the name is checked too\n"
    "  --username U          MQTT user name of every device (default: its account id)\n"
    "  --password P          MQTT password of every device (default: none)\n"
    "  --key FILE            mint a token per device with this key (PEM EC key or HMAC\n"
    "                        secret) and send it as the password: account = sub, pinned\n"
    "                        to the device id (the MQTT client id)\n"
    "  --kid KID             key id in the token header (default: the key file's name\n"
    "                        without directory and extension)\n"
    "  --token-ttl S         token lifetime (default: the duration plus 600 s)\n"
    "Payload and output:\n"
    "  --payload-template FILE\n"
    "                        heartbeat payload with placeholders {{ts}} {{device}}\n"
    "                        {{account}} {{bitrate}} {{media}} {{play_time}} {{os}}\n"
    "                        {{browser}} {{model}} {{seq}} (default: a realistic JSON object)\n"
    "  --truth FILE          write the truth as JSON Lines to FILE: per complete interval\n"
    "                        and account, the devices that sent a heartbeat in it\n"
    "  --json                print the final summary as one JSON object on stdout\n"
    "  --progress S          seconds between progress updates (default 1 on a terminal,\n"
    "                        one rewritten line; 10 otherwise, one line each)\n"
    "  --quiet               no progress or summary lines on stderr\n"
    "  --log-level LEVEL     error, warn, info or debug (env HB_LOG_LEVEL, default info)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n"
    "--redis is accepted and ignored. Exit status: 0 ok; 1 on a runtime failure or when\n"
    "QoS 1 heartbeats went unacknowledged (the truth may then be wrong); 2 usage error or a\n"
    "plan that cannot fit (the message says what to change).\n";

/* Parses a finite number in [min, max]. */
static bool parse_double(const char *arg, double min, double max, double *out)
{
    if (arg == NULL || *arg == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static bool parse_unsigned(const char *s, const char **end, unsigned max, unsigned *out)
{
    if (*s < '0' || *s > '9')
        return false;
    unsigned long v = 0;
    while (*s >= '0' && *s <= '9') {
        v = v * 10 + (unsigned long)(*s - '0');
        if (v > max)
            return false;
        s++;
    }
    *end = s;
    *out = (unsigned)v;
    return true;
}

bool options_range_parse(const char *arg, unsigned max, unsigned *min_out, unsigned *max_out)
{
    const char *p = arg;
    unsigned lo, hi;
    if (!parse_unsigned(p, &p, max, &lo))
        return false;
    hi = lo;
    if (*p == '-' && !parse_unsigned(p + 1, &p, max, &hi))
        return false;
    if (*p != '\0' || hi < lo)
        return false;
    *min_out = lo;
    *max_out = hi;
    return true;
}

bool options_broker_parse(const char *uri, struct options_broker *out, char *err, size_t errlen)
{
    static const struct {
        const char *scheme;
        bool tls;
    } schemes[] = {{"tcp://", false}, {"mqtt://", false}, {"ssl://", true}, {"mqtts://", true}};
    const char *p = NULL;
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]) && p == NULL; i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncmp(uri, schemes[i].scheme, n) == 0) {
            p = uri + n;
            out->tls = schemes[i].tls;
        }
    }
    if (p == NULL) {
        snprintf(err, errlen,
                 "'%s': expected tcp://host:port or mqtt://host:port (ssl:// or mqtts:// for TLS)",
                 uri);
        return false;
    }
    const char *host = p, *host_end;
    if (*p == '[') { /* [IPv6]:port */
        host = p + 1;
        host_end = strchr(host, ']');
        if (host_end == NULL) {
            snprintf(err, errlen, "'%s': missing ']' after the IPv6 address", uri);
            return false;
        }
        p = host_end + 1;
    } else {
        host_end = p + strcspn(p, ":/");
        p = host_end;
    }
    size_t host_len = (size_t)(host_end - host);
    if (host_len == 0 || host_len >= sizeof(out->host)) {
        snprintf(err, errlen, "'%s': host is empty or too long", uri);
        return false;
    }
    long port = out->tls ? 8883 : 1883;
    if (*p == ':') {
        char *end = NULL;
        errno = 0;
        port = strtol(p + 1, &end, 10);
        if (errno != 0 || end == p + 1 || port < 1 || port > 65535) {
            snprintf(err, errlen, "'%s': port must be 1..65535", uri);
            return false;
        }
        p = end;
    }
    if (*p == '/')
        p++;
    if (*p != '\0') {
        snprintf(err, errlen, "'%s': unexpected '%s' after host:port", uri, p);
        return false;
    }
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = (int)port;
    return true;
}

static bool source_push(struct options *o, const char *text, char *err, size_t errlen)
{
    if (o->n_sources == OPTIONS_SOURCES_MAX) {
        snprintf(err, errlen, "at most %d source addresses", OPTIONS_SOURCES_MAX);
        return false;
    }
    if (o->sources == NULL) {
        o->sources = calloc(OPTIONS_SOURCES_MAX, sizeof(*o->sources));
        if (o->sources == NULL) {
            snprintf(err, errlen, "out of memory");
            return false;
        }
    }
    snprintf(o->sources[o->n_sources++], OPTIONS_ADDR_MAX, "%s", text);
    return true;
}

bool options_sources_add(struct options *o, const char *arg, char *err, size_t errlen)
{
    const char *dash = strchr(arg, '-');
    struct in_addr a4;
    struct in6_addr a6;
    if (dash == NULL) {
        if (inet_pton(AF_INET, arg, &a4) != 1 && inet_pton(AF_INET6, arg, &a6) != 1) {
            snprintf(err, errlen, "'%s': expected an IPv4 or IPv6 address or an IPv4 range", arg);
            return false;
        }
        return source_push(o, arg, err, errlen);
    }
    char first[INET_ADDRSTRLEN], last[INET_ADDRSTRLEN];
    size_t first_len = (size_t)(dash - arg);
    const char *tail = dash + 1;
    if (first_len == 0 || first_len >= sizeof(first) || strlen(tail) == 0 ||
        strlen(tail) >= sizeof(last)) {
        snprintf(err, errlen, "'%s': expected FIRST-LAST, e.g. 127.0.0.2-127.0.0.20", arg);
        return false;
    }
    memcpy(first, arg, first_len);
    first[first_len] = '\0';
    struct in_addr lo, hi;
    if (inet_pton(AF_INET, first, &lo) != 1) {
        snprintf(err, errlen, "'%s': '%s' is not an IPv4 address", arg, first);
        return false;
    }
    if (strchr(tail, '.') == NULL) { /* 127.0.0.2-20: the last byte only */
        long b;
        if (!hb_parse_long(tail, 0, 255, &b)) {
            snprintf(err, errlen, "'%s': '%s' is not a byte 0..255", arg, tail);
            return false;
        }
        hi.s_addr = htonl((ntohl(lo.s_addr) & 0xffffff00u) | (uint32_t)b);
    } else if (inet_pton(AF_INET, tail, &hi) != 1) {
        snprintf(err, errlen, "'%s': '%s' is not an IPv4 address", arg, tail);
        return false;
    }
    uint32_t from = ntohl(lo.s_addr), to = ntohl(hi.s_addr);
    if (to < from) {
        snprintf(err, errlen, "'%s': the range ends before it starts", arg);
        return false;
    }
    if ((uint64_t)to - from + 1 > OPTIONS_SOURCES_MAX - o->n_sources) {
        snprintf(err, errlen, "'%s': more than %d source addresses in all", arg,
                 OPTIONS_SOURCES_MAX);
        return false;
    }
    for (uint64_t v = from; v <= to; v++) {
        struct in_addr x = {.s_addr = htonl((uint32_t)v)};
        char text[INET_ADDRSTRLEN];
        if (inet_ntop(AF_INET, &x, text, sizeof(text)) == NULL ||
            !source_push(o, text, err, errlen))
            return false;
    }
    return true;
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && *v ? v : fallback;
}

static void set_defaults(struct options *o)
{
    o->n_accounts = 10;
    o->devices_min = o->devices_max = 3;
    o->heartbeat_s = 5;
    o->jitter = 0.1;
    o->duration_s = 60;
    o->churn = 0.25;
    o->connect_rate = 500;
    o->guard_ms = 250;
    o->qos = 1;
    o->keepalive_s = 60;
    o->account_prefix = "acct";
}

/* Applies one simulator option. Returns 1 handled, 0 to exit successfully, -1 on an error. */
static int apply(struct options *o, int opt, const char *arg)
{
    long l;
    double d;
    enum hb_log_level level;
    switch (opt) {
    case OPT_ACCOUNTS:
        if (!hb_parse_long(arg, 1, 1000000, &l)) {
            HB_ERROR("--accounts: expected a whole number in 1..1000000, got '%s'", arg);
            return -1;
        }
        o->n_accounts = (size_t)l;
        return 1;
    case OPT_DEVICES:
        if (!options_range_parse(arg, 100000, &o->devices_min, &o->devices_max)) {
            HB_ERROR("--devices-per-account: expected M or MIN-MAX in 0..100000, got '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_HEARTBEAT:
        if (!parse_double(arg, 0.001, 86400, &d) || d * 1000 < 1) {
            HB_ERROR("--heartbeat: expected seconds in 0.001..86400, got '%s'", arg);
            return -1;
        }
        o->heartbeat_s = d;
        return 1;
    case OPT_JITTER:
        if (!parse_double(arg, 0, 0.9, &o->jitter)) {
            HB_ERROR("--jitter: expected a fraction in 0..0.9, got '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_DURATION:
        if (!parse_double(arg, 1, 30 * 86400, &o->duration_s)) {
            HB_ERROR("--duration: expected seconds in 1..2592000, got '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_CHURN:
        if (!parse_double(arg, 0, 1, &o->churn)) {
            HB_ERROR("--churn: expected a fraction in 0..1, got '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_CONNECT_RATE:
        if (!parse_double(arg, 0.1, 1000000, &o->connect_rate)) {
            HB_ERROR("--connect-rate: expected connections per second in 0.1..1000000, got '%s'",
                     arg);
            return -1;
        }
        return 1;
    case OPT_GUARD_MS:
        if (!hb_parse_long(arg, 0, 3600 * 1000, &l)) {
            HB_ERROR("--guard-ms: expected milliseconds in 0..3600000, got '%s'", arg);
            return -1;
        }
        o->guard_ms = l;
        return 1;
    case OPT_QOS:
        if (!hb_parse_long(arg, 0, 1, &l)) {
            HB_ERROR("--qos: expected 0 or 1, got '%s'", arg);
            return -1;
        }
        o->qos = (int)l;
        return 1;
    case OPT_SEED: {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(arg, &end, 10);
        if (*arg < '0' || *arg > '9' || errno != 0 || *end != '\0' || v > OPTIONS_SEED_MAX) {
            HB_ERROR("--seed: expected a whole number in 0..%" PRIu64 ", got '%s'",
                     OPTIONS_SEED_MAX, arg);
            return -1;
        }
        o->seed = v;
        o->seed_given = true;
        return 1;
    }
    case OPT_ACCOUNT_PREFIX:
        /* Leave room for the account number and "-devNNNNNN" within HB_ID_MAX. */
        if (!hb_id_valid(arg, strlen(arg)) || strlen(arg) > 40) {
            HB_ERROR("--account-prefix: expected 1..40 bytes of A-Z a-z 0-9 . _ - :, got '%s'",
                     arg);
            return -1;
        }
        o->account_prefix = arg;
        return 1;
    case OPT_USERNAME:
        o->username = arg;
        return 1;
    case OPT_PASSWORD:
        o->password = arg;
        return 1;
    case OPT_TRUTH:
        o->truth_path = arg;
        return 1;
    case OPT_JSON:
        o->json = true;
        return 1;
    case OPT_QUIET:
        o->quiet = true;
        return 1;
    case OPT_WORKERS:
        if (!hb_parse_long(arg, 1, OPTIONS_WORKERS_MAX, &l)) {
            HB_ERROR("--workers: expected a whole number in 1..%d, got '%s'", OPTIONS_WORKERS_MAX,
                     arg);
            return -1;
        }
        o->workers = (unsigned)l;
        return 1;
    case OPT_SOURCE_ADDRESS: {
        char err[256];
        if (!options_sources_add(o, arg, err, sizeof(err))) {
            HB_ERROR("--source-address: %s", err);
            return -1;
        }
        return 1;
    }
    case OPT_KEY:
        o->key_path = arg;
        return 1;
    case OPT_CA_FILE:
        if (access(arg, R_OK) != 0) {
            HB_ERROR("--ca-file %s: %s", arg, strerror(errno));
            return -1;
        }
        o->ca_file = arg;
        return 1;
    case OPT_KID:
        if (!hb_id_valid(arg, strlen(arg))) {
            HB_ERROR("--kid: expected 1..64 bytes of A-Z a-z 0-9 . _ - :, got '%s'", arg);
            return -1;
        }
        o->kid = arg;
        return 1;
    case OPT_TOKEN_TTL:
        if (!parse_double(arg, 1, 366 * 86400.0, &o->token_ttl_s)) {
            HB_ERROR("--token-ttl: expected seconds in 1..31622400, got '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_PAYLOAD_TEMPLATE:
        o->payload_template_path = arg;
        return 1;
    case OPT_KEEPALIVE:
        if (!hb_parse_long(arg, 5, 65535, &l)) {
            HB_ERROR("--keepalive: expected seconds in 5..65535, got '%s'", arg);
            return -1;
        }
        o->keepalive_s = (int)l;
        return 1;
    case OPT_PROGRESS:
        if (!parse_double(arg, 0.1, 3600, &o->progress_s)) {
            HB_ERROR("--progress: expected seconds in 0.1..3600, got '%s'", arg);
            return -1;
        }
        return 1;
    case OPT_LOG_LEVEL:
        if (!hb_log_level_parse(arg, &level)) {
            HB_ERROR("--log-level: expected error, warn, info or debug, got '%s'", arg);
            return -1;
        }
        hb_log_set_level(level);
        return 1;
    case 'h':
        printf("%s%s%s", usage_head, hb_config_help, usage_tail);
        return 0;
    case 'V':
        printf("hb-sim %s\n", HB_VERSION);
        return 0;
    default:
        fprintf(stderr, "Try 'hb-sim --help'.\n");
        return -1;
    }
}

/* Checks the options against each other once all are known. */
static bool check(struct options *o)
{
    char err[512];
    for (size_t i = 0; i < o->common.n_brokers; i++) {
        if (!options_broker_parse(o->common.brokers[i], &o->brokers[i], err, sizeof(err))) {
            HB_ERROR("--broker: %s", err);
            return false;
        }
    }
    int64_t interval_ms = (int64_t)o->common.interval_s * 1000;
    if (2 * o->guard_ms >= interval_ms) {
        HB_ERROR("--guard-ms %" PRId64 " leaves no room in a %ds interval (need 2 * guard < "
                 "interval)",
                 o->guard_ms, o->common.interval_s);
        return false;
    }
    if ((uint64_t)o->n_accounts * o->devices_max > 10000000) {
        HB_ERROR("--accounts %zu x --devices-per-account %u: at most 10000000 devices",
                 o->n_accounts, o->devices_max);
        return false;
    }
    if (o->username != NULL && *o->username == '\0') {
        HB_ERROR("--username: must not be empty");
        return false;
    }
    if (o->key_path != NULL && o->password != NULL) {
        HB_ERROR("--key and --password exclude each other: with --key the password of each "
                 "device is its token");
        return false;
    }
    if (o->key_path == NULL && (o->kid != NULL || o->token_ttl_s > 0)) {
        HB_ERROR("--kid and --token-ttl need --key");
        return false;
    }
    char kid[HB_ID_MAX + 1];
    if (o->key_path != NULL && o->kid == NULL &&
        !hb_key_default_kid(o->key_path, kid, sizeof(kid))) {
        HB_ERROR("--key %s: the file name gives no usable key id; pass --kid", o->key_path);
        return false;
    }
    if (o->token_ttl_s > 0 && o->token_ttl_s < o->duration_s)
        HB_WARN("--token-ttl %g is shorter than --duration %g: a broker that enforces expiry "
                "disconnects devices before the run ends",
                o->token_ttl_s, o->duration_s);
    return true;
}

void options_finish(struct options *o)
{
    free(o->sources);
    o->sources = NULL;
    o->n_sources = 0;
}

int options_parse(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    set_defaults(o);
    enum hb_log_level level;
    const char *env_level = env_or("HB_LOG_LEVEL", NULL);
    if (env_level && hb_log_level_parse(env_level, &level))
        hb_log_set_level(level);
    if (!hb_config_init(&o->common))
        return 2;

    int opt;
    while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        int handled = hb_config_option(&o->common, opt, optarg);
        if (handled == 0)
            handled = apply(o, opt, optarg);
        if (handled < 0)
            return 2;
        if (handled == 0)
            return 1;
    }
    if (optind < argc) {
        HB_ERROR("unexpected argument '%s'", argv[optind]);
        return 2;
    }
    return check(o) ? 0 : 2;
}
