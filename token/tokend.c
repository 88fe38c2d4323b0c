/* hb-tokend: HTTP token vending for backend services (POST /v1/tokens with an API key). The
 * main thread only waits for SIGTERM/SIGINT; libmicrohttpd serves on its own thread, which
 * inherits the blocked signals, so a signal always reaches sigwait() here. */
#include "apikeys.h"
#include "config.h"
#include "ids.h"
#include "keyfile.h"
#include "keyring.h"
#include "listen.h"
#include "log.h"
#include "service.h"
#include "token.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define MAX_TTL_DEFAULT 86400
#define MAX_TTL_LIMIT (366L * 86400)

struct options {
    const char *listen, *key_file, *kid, *api_key_file, *topic_prefix;
    long default_ttl, max_ttl, max_connections;
    double rate_limit, burst;
    bool default_ttl_given;
};

enum {
    OPT_LISTEN = 1100,
    OPT_KEY,
    OPT_KID,
    OPT_API_KEY_FILE,
    OPT_DEFAULT_TTL,
    OPT_MAX_TTL,
    OPT_MAX_CONNECTIONS,
    OPT_RATE_LIMIT,
    OPT_BURST,
    OPT_TOPIC_PREFIX
};

static const struct option long_options[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"key", required_argument, NULL, OPT_KEY},
    {"kid", required_argument, NULL, OPT_KID},
    {"api-key-file", required_argument, NULL, OPT_API_KEY_FILE},
    {"default-ttl", required_argument, NULL, OPT_DEFAULT_TTL},
    {"max-ttl", required_argument, NULL, OPT_MAX_TTL},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
    {"rate-limit", required_argument, NULL, OPT_RATE_LIMIT},
    {"burst", required_argument, NULL, OPT_BURST},
    {"topic-prefix", required_argument, NULL, OPT_TOPIC_PREFIX},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "Usage: hb-tokend --key FILE --api-key-file FILE [OPTION]...\n"
    "Serve device tokens over HTTP to backend services:\n"
    "  POST /v1/tokens  {\"account\": \"...\", \"device\": \"...\", \"ttl\": SECONDS}\n"
    "                   with 'Authorization: Bearer <API key>'\n"
    "                   -> {\"token\": \"...\", \"expires_at\": UNIX_SECONDS, \"kid\": \"...\"}\n"
    "  GET /healthz     -> 200\n\n"
    "  --listen ADDR:PORT    address to listen on (default 127.0.0.1:8080; [::1]:8080 for IPv6)\n"
    "  --key FILE            signing key: PEM EC P-256 private key (ES256) or HMAC secret file\n"
    "                        of at least 32 bytes (HS256)\n"
    "  --kid KID             key id in the token header (default: the key file's name without\n"
    "                        directory and extension)\n"
    "  --api-key-file FILE   service API keys, one per line (16-256 printable bytes; lines\n"
    "                        starting with '#' are comments)\n"
    "  --default-ttl SECONDS lifetime when a request gives none (default 1800)\n"
    "  --max-ttl SECONDS     longest lifetime a request may ask for (default 86400)\n"
    "  --max-connections N   concurrent connections (default 64)\n"
    "  --rate-limit R        tokens each API key may mint per second, e.g. 50 or 0.5; beyond\n"
    "                        it 429 with Retry-After (default 0: no limit)\n"
    "  --burst N             tokens a key may mint at once after a quiet spell (default:\n"
    "                        2 x the rate, at least 1)\n"
    "  --topic-prefix P      heartbeat topics are P/<account>/<device> (env HB_TOPIC_PREFIX,\n"
    "                        default hb)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n\n"
    "One access-log line per request on stderr (method, path, status, account); API keys and\n"
    "tokens are never logged. SIGTERM or SIGINT stops it.\n";

static bool parse_ttl(const char *name, const char *arg, long *out)
{
    if (hb_parse_long(arg, 1, MAX_TTL_LIMIT, out))
        return true;
    HB_ERROR("--%s: expected whole seconds in 1..%ld, got '%.80s'", name, MAX_TTL_LIMIT, arg);
    return false;
}

/* A non-negative decimal up to a million. */
static bool parse_rate(const char *name, const char *arg, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno == 0 && end != arg && *end == '\0' && isfinite(v) && v >= 0 && v <= 1e6) {
        *out = v;
        return true;
    }
    HB_ERROR("--%s: expected a number in 0..1000000, got '%.80s'", name, arg);
    return false;
}

/* Returns 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->listen = "127.0.0.1:8080";
    o->max_ttl = MAX_TTL_DEFAULT;
    o->max_connections = 64;
    o->topic_prefix = HB_DEFAULT_TOPIC_PREFIX;
    const char *env_prefix = getenv("HB_TOPIC_PREFIX");
    if (env_prefix && *env_prefix)
        o->topic_prefix = env_prefix;
    int opt;
    while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_LISTEN:
            o->listen = optarg;
            break;
        case OPT_KEY:
            o->key_file = optarg;
            break;
        case OPT_KID:
            if (!hb_id_valid(optarg, strlen(optarg))) {
                HB_ERROR("--kid: '%.80s' is not 1-64 bytes of A-Z a-z 0-9 . _ - :", optarg);
                return 2;
            }
            o->kid = optarg;
            break;
        case OPT_API_KEY_FILE:
            o->api_key_file = optarg;
            break;
        case OPT_DEFAULT_TTL:
            if (!parse_ttl("default-ttl", optarg, &o->default_ttl))
                return 2;
            o->default_ttl_given = true;
            break;
        case OPT_MAX_TTL:
            if (!parse_ttl("max-ttl", optarg, &o->max_ttl))
                return 2;
            break;
        case OPT_MAX_CONNECTIONS:
            if (!hb_parse_long(optarg, 1, 10000, &o->max_connections)) {
                HB_ERROR("--max-connections: expected 1..10000, got '%.80s'", optarg);
                return 2;
            }
            break;
        case OPT_RATE_LIMIT:
        case OPT_BURST:
            if (!parse_rate(opt == OPT_RATE_LIMIT ? "rate-limit" : "burst", optarg,
                            opt == OPT_RATE_LIMIT ? &o->rate_limit : &o->burst))
                return 2;
            break;
        case OPT_TOPIC_PREFIX:
            o->topic_prefix = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            printf("hb-tokend %s\n", HB_VERSION);
            return 1;
        default:
            fprintf(stderr, "Try 'hb-tokend --help'.\n");
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
    if (!hb_topic_prefix_valid(o->topic_prefix)) {
        HB_ERROR("topic prefix must be 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' between "
                 "levels, got '%.80s'",
                 o->topic_prefix);
        return 2;
    }
    if (!o->default_ttl_given)
        o->default_ttl = HB_TOKEN_TTL_DEFAULT < o->max_ttl ? HB_TOKEN_TTL_DEFAULT : o->max_ttl;
    if (o->default_ttl > o->max_ttl) {
        HB_ERROR("--default-ttl %ld is above --max-ttl %ld", o->default_ttl, o->max_ttl);
        return 2;
    }
    if (o->burst > 0 && o->burst < 1) {
        HB_ERROR("--burst %g: a key must be able to mint at least one token", o->burst);
        return 2;
    }
    return 0;
}

static bool parse_listen(const char *listen, struct sockaddr_storage *addr)
{
    char err[256];
    if (hb_listen_parse(listen, addr, err, sizeof(err)))
        return true;
    HB_ERROR("--listen %s", err);
    return false;
}

int main(int argc, char **argv)
{
    struct options o;
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : EXIT_USAGE;
    struct sockaddr_storage addr;
    char kid[HB_ID_MAX + 1];
    if (!parse_listen(o.listen, &addr) || (o.kid == NULL && !keyfile_default_kid(o.key_file, kid)))
        return EXIT_USAGE;

    rc = EXIT_FAILED;
    struct hb_key key;
    struct api_keys api_keys;
    char err[512];
    if (!keyfile_load(&key, o.key_file, o.kid ? o.kid : kid))
        return EXIT_FAILED;
    if (!key.can_sign) {
        HB_ERROR("%s: a public key cannot sign; give the private key or the secret", o.key_file);
        goto out_key;
    }
    if (!api_keys_load(&api_keys, o.api_key_file, err, sizeof(err))) {
        HB_ERROR("%s", err);
        goto out_key;
    }

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        HB_ERROR("cannot block SIGINT/SIGTERM");
        goto out_api_keys;
    }
    struct service_config cfg = {
        .key = &key,
        .api_keys = &api_keys,
        .topic_prefix = o.topic_prefix,
        .default_ttl = o.default_ttl,
        .max_ttl = o.max_ttl,
        .max_connections = (unsigned)o.max_connections,
        .rate_per_s = o.rate_limit,
        .burst = o.burst > 0 ? o.burst : (o.rate_limit * 2 > 1 ? o.rate_limit * 2 : 1),
    };
    struct service service;
    if (!service_start(&service, &cfg, (const struct sockaddr *)&addr)) {
        HB_ERROR("cannot listen on %s", o.listen);
        goto out_api_keys;
    }
    HB_INFO("hb-tokend %s listening on %s (port %u), key %s (%s), %zu API keys, ttl %ld s, "
            "max %ld s",
            HB_VERSION, o.listen, service_port(&service), key.kid,
            key.alg == HB_TOKEN_ES256 ? "ES256" : "HS256", api_keys.n, o.default_ttl, o.max_ttl);
    if (cfg.rate_per_s > 0)
        HB_INFO("hb-tokend: at most %g tokens/s per API key, bursts of %g", cfg.rate_per_s,
                cfg.burst);

    int sig = 0;
    sigwait(&stop, &sig);
    HB_INFO("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    service_stop(&service);
    rc = 0;
out_api_keys:
    api_keys_finish(&api_keys);
out_key:
    hb_key_finish(&key);
    return rc;
}
