/* Command-line parsing for hb-sim. Everything is parsed into a fresh struct and checked as a
 * whole (brokers, guard against interval, id lengths) before the program sets anything up, so
 * a bad option never leaves a half-started run behind. Over 500 lines: most of it is the
 * declaration table of hb-sim's 40-odd options, one entry each. */
#include "options.h"

#include "ids.h"
#include "keyring.h"
#include "log.h"
#include "mint.h"
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

static bool parse_devices(void *opts, const char *value)
{
    struct options *o = opts;
    return options_range_parse(value, 100000, &o->devices_min, &o->devices_max);
}

static bool parse_seed(void *opts, const char *value)
{
    struct options *o = opts;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (*value < '0' || *value > '9' || errno != 0 || *end != '\0' || v > OPTIONS_SEED_MAX)
        return false;
    o->seed = v;
    return true;
}

static bool account_prefix_valid(const char *value)
{
    /* Leave room for the account number and "-devNNNNNN" within HB_ID_MAX. */
    return hb_id_valid(value, strlen(value)) && strlen(value) <= 40;
}

static bool parse_source_address(void *opts, const char *value)
{
    char err[256];
    if (options_sources_add(opts, value, err, sizeof(err)))
        return true;
    HB_ERROR("--source-address: %s", err);
    return false;
}

static bool parse_ca_file(void *opts, const char *value)
{
    struct options *o = opts;
    if (access(value, R_OK) != 0) {
        HB_ERROR("--ca-file %s: %s", value, strerror(errno));
        return false;
    }
    o->ca_file = value;
    return true;
}

_Static_assert(OPTIONS_WORKERS_MAX == 256, "the --workers message names the limit");
_Static_assert(OPTIONS_SEED_MAX == 999999999999999, "the --seed message names the limit");

static const struct hb_option sim_options[] = {
    {.type = HB_OPTION_HEADING, .help = "Population and timing:"},
    {.type = HB_OPTION_INTEGER,
     .name = "accounts",
     .metavar = "N",
     .def = "10",
     HB_OPTION_FIELD(struct options, n_accounts),
     .min = 1,
     .max = 1000000,
     .help = "accounts (default 10)"},
    {.type = HB_OPTION_CUSTOM,
     .name = "devices-per-account",
     .metavar = "M|MIN-MAX",
     .def = "3",
     .parse = parse_devices,
     .error = "expected M or MIN-MAX in 0..100000, got '%s'",
     .help = "devices per account, MIN-MAX drawn per account (default 3);\n"
             "connections = the sum over the accounts"},
    {.type = HB_OPTION_STRING,
     .name = "account-prefix",
     .metavar = "STR",
     .def = "acct",
     HB_OPTION_FIELD(struct options, account_prefix),
     .valid = account_prefix_valid,
     .error = "expected 1..40 bytes of A-Z a-z 0-9 . _ - :, got '%s'",
     .help = "account ids are STR0000, STR0001, ... (default acct);\n"
             "device ids are <account>-devNN"},
    {.type = HB_OPTION_DOUBLE,
     .name = "heartbeat",
     .metavar = "S",
     .def = "5",
     HB_OPTION_FIELD(struct options, heartbeat_s),
     .dmin = 0.001,
     .dmax = 86400,
     .error = "expected seconds in 0.001..86400, got '%s'",
     .help = "heartbeat period in seconds, may be fractional (default 5)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "jitter",
     .metavar = "F",
     .def = "0.1",
     HB_OPTION_FIELD(struct options, jitter),
     .dmin = 0,
     .dmax = 0.9,
     .error = "expected a fraction in 0..0.9, got '%s'",
     .help = "each period is heartbeat * (1 +- F), uniform (default 0.1)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "duration",
     .metavar = "S",
     .def = "60",
     HB_OPTION_FIELD(struct options, duration_s),
     .dmin = 1,
     .dmax = 30 * 86400,
     .error = "expected seconds in 1..2592000, got '%s'",
     .help = "run length in seconds (default 60)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "hold",
     .metavar = "S",
     .def = "0",
     HB_OPTION_FIELD(struct options, hold_s),
     .dmin = 0,
     .dmax = 30 * 86400,
     .error = "expected seconds in 0..2592000, got '%s'",
     .help = "end the run S seconds after the last device connected: a steady\n"
             "phase after the ramp, reported apart; --duration is then the most\n"
             "the run lasts (default 0: off)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "churn",
     .metavar = "F",
     .def = "0.25",
     HB_OPTION_FIELD(struct options, churn),
     .dmin = 0,
     .dmax = 1,
     .error = "expected a fraction in 0..1, got '%s'",
     .help = "fraction of devices that start late and/or stop early\n(default 0.25)"},
    {.type = HB_OPTION_INTEGER,
     .name = "guard-ms",
     .metavar = "MS",
     .def = "250",
     HB_OPTION_FIELD(struct options, guard_ms),
     .min = 0,
     .max = 3600 * 1000,
     .error = "expected milliseconds in 0..3600000, got '%s'",
     .help = "no heartbeat within MS of an interval boundary (default 250)"},
    {.type = HB_OPTION_CUSTOM,
     .name = "seed",
     .metavar = "N",
     .parse = parse_seed,
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct options, seed_given),
     .error = "expected a whole number in 0..999999999999999, got '%s'",
     .help = "random seed, 0..999999999999999 (default: from the clock)"},
    {.type = HB_OPTION_HEADING, .help = "Connections:"},
    {.type = HB_OPTION_DOUBLE,
     .name = "connect-rate",
     .metavar = "N",
     .def = "500",
     HB_OPTION_FIELD(struct options, connect_rate),
     .dmin = 0.1,
     .dmax = 1000000,
     .error = "expected connections per second in 0.1..1000000, got '%s'",
     .help = "new connections per second, all workers together (default 500)"},
    {.type = HB_OPTION_INTEGER,
     .name = "workers",
     .metavar = "N",
     HB_OPTION_FIELD(struct options, workers),
     .min = 1,
     .max = OPTIONS_WORKERS_MAX,
     .help = "worker processes, 1..256 (default: enough for the devices\n"
             "within the open-file limit)"},
    {.type = HB_OPTION_CUSTOM,
     .name = "source-address",
     .metavar = "A",
     .parse = parse_source_address,
     .help = "bind connections to local address A, round-robin; repeatable,\n"
             "or an IPv4 range like 127.0.0.2-127.0.0.20 (each address has\n"
             "its own ephemeral ports)"},
    {.type = HB_OPTION_INTEGER,
     .name = "qos",
     .metavar = "0|1",
     .def = "1",
     HB_OPTION_FIELD(struct options, qos),
     .min = 0,
     .max = 1,
     .error = "expected 0 or 1, got '%s'",
     .help = "MQTT QoS of heartbeats (default 1)"},
    {.type = HB_OPTION_INTEGER,
     .name = "keepalive",
     .metavar = "S",
     .def = "60",
     HB_OPTION_FIELD(struct options, keepalive_s),
     .min = 5,
     .max = 65535,
     .error = "expected seconds in 5..65535, got '%s'",
     .help = "MQTT keepalive, 5..65535 seconds (default 60)"},
    {.type = HB_OPTION_CUSTOM,
     .name = "ca-file",
     .metavar = "FILE",
     .parse = parse_ca_file,
     .help = "CA certificates (PEM) that ssl:// and mqtts:// brokers must\n"
             "chain to (default: the system's); the name is checked too"},
    {.type = HB_OPTION_STRING,
     .name = "username",
     .metavar = "U",
     HB_OPTION_FIELD(struct options, username),
     .help = "MQTT user name of every device (default: its account id)"},
    {.type = HB_OPTION_STRING,
     .name = "password",
     .metavar = "P",
     HB_OPTION_FIELD(struct options, password),
     .help = "MQTT password of every device (default: none)"},
    {.type = HB_OPTION_STRING,
     .name = "key",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, key_path),
     .help = "mint a token per device with this key (PEM EC key or HMAC\n"
             "secret) and send it as the password: account = sub, pinned\n"
             "to the device id (the MQTT client id)"},
    {.type = HB_OPTION_ID,
     .name = "kid",
     .metavar = "KID",
     HB_OPTION_FIELD(struct options, kid),
     .error = "expected 1..64 bytes of A-Z a-z 0-9 . _ - :, got '%s'",
     .help = "key id in the token header (default: the key file's name\n"
             "without directory and extension)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "token-ttl",
     .metavar = "S",
     HB_OPTION_FIELD(struct options, token_ttl_s),
     .dmin = 1,
     .dmax = 366 * 86400.0,
     .error = "expected seconds in 1..31622400, got '%s'",
     .help = "token lifetime (default: the duration plus 600 s)"},
    {.type = HB_OPTION_HEADING, .help = "Households (admission by hb-api):"},
    {.type = HB_OPTION_STRING,
     .name = "api",
     .metavar = "URL",
     HB_OPTION_FIELD(struct options, api_url),
     .help = "each device asks hb-api at URL (http://HOST:PORT) with\n"
             "POST /v1/plays before it connects, and uses the token of the\n"
             "answer; refused devices do not connect (default: off)"},
    {.type = HB_OPTION_STRING,
     .name = "api-key-file",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, api_key_file),
     .help = "with --api: the service key (first key line of FILE)"},
    {.type = HB_OPTION_STRING,
     .name = "control-prefix",
     .metavar = "P",
     .def = "ctl",
     HB_OPTION_FIELD(struct options, control_prefix),
     .valid = account_prefix_valid, /* the same alphabet and length */
     .error = "expected 1..40 bytes of A-Z a-z 0-9 . _ - :, got '%s'",
     .help = "with --api: admitted devices obey stops on P/<account>/<device>\n"
             "(default ctl)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "vanish",
     .metavar = "F",
     .def = "0",
     HB_OPTION_FIELD(struct options, vanish),
     .dmin = 0,
     .dmax = 1,
     .error = "expected a fraction in 0..1, got '%s'",
     .help = "with --api: fraction of admitted devices that end by closing\n"
             "their socket, without a stop heartbeat (default 0)"},
    {.type = HB_OPTION_STRING,
     .name = "plays-truth",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, plays_truth_path),
     .help = "with --api: write every admission, refusal, stop, release and\n"
             "vanishing as JSON Lines to FILE (for hb-check --verify-plays)"},
    {.type = HB_OPTION_HEADING, .help = "Payload and output:"},
    {.type = HB_OPTION_STRING,
     .name = "payload-template",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, payload_template_path),
     .help = "heartbeat payload with placeholders {{ts}} {{device}}\n"
             "{{account}} {{bitrate}} {{media}} {{play_time}} {{os}}\n"
             "{{browser}} {{model}} {{seq}} (default: a realistic JSON object)"},
    {.type = HB_OPTION_STRING,
     .name = "truth",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, truth_path),
     .help = "write the truth as JSON Lines to FILE: per complete interval\n"
             "and account, the devices that sent a heartbeat in it"},
    {.type = HB_OPTION_FLAG,
     .name = "json",
     HB_OPTION_FIELD(struct options, json),
     .help = "print the final summary as one JSON object on stdout"},
    {.type = HB_OPTION_DOUBLE,
     .name = "progress",
     .metavar = "S",
     HB_OPTION_FIELD(struct options, progress_s),
     .dmin = 0.1,
     .dmax = 3600,
     .error = "expected seconds in 0.1..3600, got '%s'",
     .help = "seconds between progress updates (default 1 on a terminal,\n"
             "one rewritten line; 10 otherwise, one line each)"},
    {.type = HB_OPTION_FLAG,
     .name = "quiet",
     HB_OPTION_FIELD(struct options, quiet),
     .help = "no progress or summary lines on stderr"},
};

/* What options_parse fills: the public options and what it applies itself on success. */
struct parsed {
    struct options o;
    enum hb_log_level log_level;
};

static const struct hb_option log_options[] = {
    {.type = HB_OPTION_LOG_LEVEL,
     .name = "log-level",
     .metavar = "LEVEL",
     .env = "HB_LOG_LEVEL",
     .def = "info",
     HB_OPTION_FIELD(struct parsed, log_level),
     .flags = HB_OPTION_ENV_LENIENT,
     .help = "error, warn, info or debug (env HB_LOG_LEVEL, default info)"},
};

/* getopt's order, which lists ambiguous abbreviations, predates the help text's. */
static const char *const getopt_order[] = {
    "broker",
    "redis",
    "interval",
    "topic-prefix",
    "accounts",
    "devices-per-account",
    "heartbeat",
    "jitter",
    "duration",
    "churn",
    "guard-ms",
    "qos",
    "seed",
    "account-prefix",
    "username",
    "password",
    "truth",
    "json",
    "quiet",
    "connect-rate",
    "log-level",
    "workers",
    "source-address",
    "key",
    "kid",
    "token-ttl",
    "payload-template",
    "keepalive",
    "progress",
    "ca-file",
    "hold",
    "api",
    "api-key-file",
    "control-prefix",
    "vanish",
    "plays-truth",
    NULL,
};

static const struct hb_options_spec spec = {
    .program = "hb-sim",
    .usage = "Usage: hb-sim [OPTION]...\n"
             "Simulate devices that publish MQTT heartbeats, one connection per device, and "
             "write the\nexact set of devices per account and complete interval that was sent "
             "(--truth).\n\n",
    .epilogue =
        "--redis is accepted and ignored. Exit status: 0 ok; 1 on a runtime failure or when\n"
        "QoS 1 heartbeats went unacknowledged (the truth may then be wrong); 2 usage error or a\n"
        "plan that cannot fit (the message says what to change).\n",
    .groups = {HB_CONFIG_GROUP(struct parsed, o.common),
               {sim_options, sizeof(sim_options) / sizeof(sim_options[0]),
                offsetof(struct parsed, o)},
               {log_options, 1, 0}},
    .n_groups = 3,
    .getopt_order = getopt_order,
};

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
    if (o->api_url == NULL &&
        (o->api_key_file != NULL || o->vanish > 0 || o->plays_truth_path != NULL)) {
        HB_ERROR("--api-key-file, --vanish and --plays-truth need --api");
        return false;
    }
    if (o->api_url != NULL && (o->api_key_file == NULL || o->key_path != NULL || o->password)) {
        HB_ERROR("--api needs --api-key-file and excludes --key and --password: each device's "
                 "token comes from hb-api's answer");
        return false;
    }
    if (o->token_ttl_s > 0 && o->token_ttl_s < o->duration_s)
        HB_WARN("--token-ttl %g is shorter than --duration %g: a broker that enforces expiry "
                "disconnects devices before the run ends",
                o->token_ttl_s, o->duration_s);
    if (o->hold_s >= o->duration_s)
        HB_WARN("--hold %g is not shorter than --duration %g: the run ends at --duration, "
                "before the hold is over",
                o->hold_s, o->duration_s);
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
    struct parsed p;
    memset(&p, 0, sizeof(p));
    memset(o, 0, sizeof(*o));
    enum hb_options_status status = hb_options_parse(&spec, &p, argc, argv, NULL);
    if (status == HB_OPTIONS_RUN) {
        /* Before the cross-checks, so their warnings follow --log-level. */
        hb_log_set_level(p.log_level);
        if (!check(&p.o))
            status = HB_OPTIONS_USAGE;
    }
    if (status != HB_OPTIONS_RUN) {
        options_finish(&p.o);
        return status;
    }
    *o = p.o;
    return HB_OPTIONS_RUN;
}
