/* hb-api's options. Environment variables go through the same setter as the options (applied
 * first), so both are checked by one rule and the option simply overrides. */
#include "options.h"

#include "control.h"
#include "ids.h"
#include "log.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_LISTEN = HB_OPT_FIRST_PROGRAM_OPTION,
    OPT_KEY,
    OPT_KID,
    OPT_API_KEY_FILE,
    OPT_CONTROL_PREFIX,
    OPT_DEFAULT_LIMIT,
    OPT_DEFAULT_POLICY,
    OPT_GRACE,
    OPT_HEARTBEAT,
    OPT_TOKEN_TTL,
    OPT_FAIL_OPEN,
    OPT_THREADS,
    OPT_MAX_CONNECTIONS,
};

static const struct option long_options[] = {
    /* The shared options (common/config.h), by their HB_OPT_ codes. */
    {"broker", required_argument, NULL, HB_OPT_BROKER},
    {"redis", required_argument, NULL, HB_OPT_REDIS},
    {"interval", required_argument, NULL, HB_OPT_INTERVAL},
    {"topic-prefix", required_argument, NULL, HB_OPT_TOPIC_PREFIX},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"key", required_argument, NULL, OPT_KEY},
    {"kid", required_argument, NULL, OPT_KID},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"control-prefix", required_argument, NULL, OPT_CONTROL_PREFIX},
    {"default-limit", required_argument, NULL, OPT_DEFAULT_LIMIT},
    {"default-policy", required_argument, NULL, OPT_DEFAULT_POLICY},
    {"grace-seconds", required_argument, NULL, OPT_GRACE},
    {"heartbeat-seconds", required_argument, NULL, OPT_HEARTBEAT},
    {"token-ttl", required_argument, NULL, OPT_TOKEN_TTL},
    {"fail-open", no_argument, NULL, OPT_FAIL_OPEN},
    {"threads", required_argument, NULL, OPT_THREADS},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

/* Environment variable of each program option. */
static const struct {
    int opt;
    const char *name;
} env_vars[] = {
    {OPT_LISTEN, "HB_LISTEN"},
    {OPT_KEY, "HB_KEY"},
    {OPT_KID, "HB_KID"},
    {OPT_API_KEY_FILE, "HB_API_KEY_FILE"},
    {OPT_CONTROL_PREFIX, "HB_CONTROL_PREFIX"},
    {OPT_DEFAULT_LIMIT, "HB_DEFAULT_LIMIT"},
    {OPT_DEFAULT_POLICY, "HB_DEFAULT_POLICY"},
    {OPT_GRACE, "HB_GRACE_SECONDS"},
    {OPT_HEARTBEAT, "HB_HEARTBEAT_SECONDS"},
    {OPT_TOKEN_TTL, "HB_TOKEN_TTL"},
    {OPT_FAIL_OPEN, "HB_FAIL_OPEN"},
    {OPT_THREADS, "HB_THREADS"},
    {OPT_MAX_CONNECTIONS, "HB_MAX_CONNECTIONS"},
};

static const char usage[] =
    "Usage: hb-api --key FILE --api-key-file FILE [OPTION]...\n"
    "Admission service for backends: may this device play, on this account, now?\n"
    "  POST   /v1/plays                       {\"account\",\"device\",\"group\"?,\"media\"?}\n"
    "  DELETE /v1/plays/ACCOUNT/DEVICE        release a slot, stop the device\n"
    "  GET    /v1/accounts/ACCOUNT            count, active devices, limits\n"
    "  PUT    /v1/accounts/ACCOUNT/limits     {\"devices\",\"groups\"?,\"policy\"?}\n"
    "  POST   /v1/tokens                      {\"account\",\"device\"?,\"ttl\"?}\n"
    "  GET    /healthz, /metrics              (no API key)\n\n"
    "  --listen ADDR:PORT       address to listen on (default 127.0.0.1:8081)\n"
    "  --key FILE               signing key of device tokens (as hb-tokend)\n"
    "  --kid KID                key id (default: the key file's name)\n"
    "  --api-key-file FILE      service API keys, one per line\n"
    "  --control-prefix P       stops go to P/<account>/<device> (default ctl)\n"
    "  --default-limit N        devices per account without its own limits (default 3)\n"
    "  --default-policy P       block_new or evict_oldest (default block_new)\n"
    "  --heartbeat-seconds S    heartbeat period told to devices (default 10)\n"
    "  --grace-seconds S        a device not seen for S seconds loses its slot\n"
    "                           (default 3 heartbeat periods)\n"
    "  --token-ttl S            device token lifetime (default 1800)\n"
    "  --fail-open              admit with \"degraded\": true when Redis is down\n"
    "                           (default: 503)\n"
    "  --threads N              HTTP threads (default 4)\n"
    "  --max-connections N      concurrent connections (default 1024)\n"
    ;
static const char shared_help[] =
    "  --broker URI             broker for stops (env HB_BROKER; none: no stops)\n"
    "  --redis URI              redis://[[user]:password@]host[:port][/db] or unix:///path\n"
    "                           (env HB_REDIS, default redis://127.0.0.1:6379)\n"
    "  --interval S             interval of hb-check's counts (env HB_INTERVAL, default 60)\n"
    "  --topic-prefix P         heartbeat topics of device tokens (env HB_TOPIC_PREFIX,\n"
    "                           default hb)\n";
static const char usage_tail[] =
    "  -h, --help               show this help\n"
    "  -V, --version            show the version\n\n"
    "Every option has an environment variable: HB_ and its name in capitals with '_'\n"
    "(HB_LISTEN, HB_DEFAULT_LIMIT, HB_FAIL_OPEN=1, ...). Stops are sent only when a broker\n"
    "is named (--broker or HB_BROKER).\n";

static bool number(const char *name, const char *arg, long min, long max, long *out)
{
    if (hb_parse_long(arg, min, max, out))
        return true;
    HB_ERROR("--%s: expected a whole number in %ld..%ld, got '%.80s'", name, min, max, arg);
    return false;
}

/* Applies one program option; false after reporting a bad value. */
static bool apply(struct api_options *o, int opt, const char *arg)
{
    switch (opt) {
    case OPT_LISTEN:
        o->listen = arg;
        return true;
    case OPT_KEY:
        o->key_file = arg;
        return true;
    case OPT_KID:
        if (hb_id_valid(arg, strlen(arg))) {
            o->kid = arg;
            return true;
        }
        HB_ERROR("--kid: '%.80s' is not an id", arg);
        return false;
    case OPT_API_KEY_FILE:
        o->api_key_file = arg;
        return true;
    case OPT_CONTROL_PREFIX:
        if (hb_topic_prefix_valid(arg)) {
            o->control_prefix = arg;
            return true;
        }
        HB_ERROR("--control-prefix: '%.80s' is not a topic prefix", arg);
        return false;
    case OPT_DEFAULT_LIMIT:
        return number("default-limit", arg, 0, HB_PLAYS_LIMIT_MAX, &o->default_limit);
    case OPT_DEFAULT_POLICY:
        if (hb_play_policy_parse(arg, &o->default_policy))
            return true;
        HB_ERROR("--default-policy: expected block_new or evict_oldest, got '%.80s'", arg);
        return false;
    case OPT_GRACE:
        o->grace_given = true;
        return number("grace-seconds", arg, 1, 3600, &o->grace_s);
    case OPT_HEARTBEAT:
        return number("heartbeat-seconds", arg, 1, 600, &o->heartbeat_s);
    case OPT_TOKEN_TTL:
        return number("token-ttl", arg, 60, 86400, &o->token_ttl);
    case OPT_FAIL_OPEN:
        o->fail_open = arg == NULL || strcmp(arg, "0") != 0;
        return true;
    case OPT_THREADS:
        return number("threads", arg, 1, 64, &o->threads);
    case OPT_MAX_CONNECTIONS:
        return number("max-connections", arg, 1, 16384, &o->max_connections);
    }
    return false;
}

int api_options_parse(struct api_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    if (!hb_config_init(&o->common))
        return 2;
    o->control = getenv("HB_BROKER") != NULL && getenv("HB_BROKER")[0] != '\0';
    o->listen = "127.0.0.1:8081";
    o->control_prefix = HB_CONTROL_PREFIX_DEFAULT;
    o->default_limit = 3;
    o->default_policy = HB_POLICY_BLOCK_NEW;
    o->heartbeat_s = 10;
    o->token_ttl = 1800;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++) {
        const char *v = getenv(env_vars[i].name);
        if (v != NULL && v[0] != '\0' && !apply(o, env_vars[i].opt, v)) {
            HB_ERROR("(from %s)", env_vars[i].name);
            return 2;
        }
    }
    int opt;
    while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        int shared = hb_config_option(&o->common, opt, optarg);
        if (shared < 0)
            return 2;
        if (shared > 0) {
            o->control = o->control || opt == HB_OPT_BROKER;
            continue;
        }
        if (opt == 'h') {
            fputs(usage, stdout);
            fputs(shared_help, stdout);
            fputs(usage_tail, stdout);
            return 1;
        }
        if (opt == 'V') {
            printf("hb-api %s\n", HB_VERSION);
            return 1;
        }
        if (opt == '?' || !apply(o, opt, optarg)) {
            fprintf(stderr, "Try 'hb-api --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        HB_ERROR("unexpected argument '%.80s'", argv[optind]);
        return 2;
    }
    if (o->key_file == NULL || o->api_key_file == NULL) {
        HB_ERROR("--key FILE and --api-key-file FILE are required");
        return 2;
    }
    if (!o->grace_given)
        o->grace_s = 3 * o->heartbeat_s;
    if (o->grace_s <= o->heartbeat_s) {
        HB_ERROR("--grace-seconds %ld must be longer than a heartbeat period (%ld s)", o->grace_s,
                 o->heartbeat_s);
        return 2;
    }
    return 0;
}
