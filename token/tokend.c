/* hb-tokend: HTTP token vending for backend services (POST /v1/tokens with an API key), a thin
 * alias of hb-api: its own options and messages, then hb-api's router and token endpoint in the
 * tokens-only mode, so the endpoint, its rate limit and its input checks exist once. The main
 * thread only waits for SIGTERM/SIGINT; the server threads inherit the blocked signals. */
#include "../api/api.h"
#include "apikeys.h"
#include "config.h"
#include "ids.h"
#include "keyfile.h"
#include "keyring.h"
#include "listen.h"
#include "log.h"
#include "token.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

#define MAX_TTL_LIMIT (366L * 86400)

struct options {
    const char *listen, *key_file, *kid, *api_key_file, *topic_prefix;
    long default_ttl, max_ttl, max_connections;
    double rate_limit, burst;
    bool default_ttl_given;
};

_Static_assert(MAX_TTL_LIMIT == 31622400, "the ttl messages name the limit");

static const struct hb_option tokend_options[] = {
    {.type = HB_OPTION_STRING,
     .name = "listen",
     .metavar = "ADDR:PORT",
     .def = "127.0.0.1:8080",
     HB_OPTION_FIELD(struct options, listen),
     .help = "address to listen on (default 127.0.0.1:8080; [::1]:8080 for IPv6)"},
    {.type = HB_OPTION_STRING,
     .name = "key",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, key_file),
     .help = "signing key: PEM EC P-256 private key (ES256) or HMAC secret file\n"
             "of at least 32 bytes (HS256)"},
    {.type = HB_OPTION_ID,
     .name = "kid",
     .metavar = "KID",
     HB_OPTION_FIELD(struct options, kid),
     .error = "'%.80s' is not 1-64 bytes of A-Z a-z 0-9 . _ - :",
     .help = "key id in the token header (default: the key file's name without\n"
             "directory and extension)"},
    {.type = HB_OPTION_STRING,
     .name = "api-key-file",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, api_key_file),
     .help = "service API keys, one per line (16-256 printable bytes; lines\n"
             "starting with '#' are comments)"},
    {.type = HB_OPTION_INTEGER,
     .name = "default-ttl",
     .metavar = "SECONDS",
     HB_OPTION_FIELD(struct options, default_ttl),
     .min = 1,
     .max = MAX_TTL_LIMIT,
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct options, default_ttl_given),
     .error = "expected whole seconds in 1..31622400, got '%.80s'",
     .help = "lifetime when a request gives none (default 1800)"},
    {.type = HB_OPTION_INTEGER,
     .name = "max-ttl",
     .metavar = "SECONDS",
     .def = "86400",
     HB_OPTION_FIELD(struct options, max_ttl),
     .min = 1,
     .max = MAX_TTL_LIMIT,
     .error = "expected whole seconds in 1..31622400, got '%.80s'",
     .help = "longest lifetime a request may ask for (default 86400)"},
    {.type = HB_OPTION_INTEGER,
     .name = "max-connections",
     .metavar = "N",
     .def = "64",
     HB_OPTION_FIELD(struct options, max_connections),
     .min = 1,
     .max = 10000,
     .error = "expected 1..10000, got '%.80s'",
     .help = "concurrent connections (default 64)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "rate-limit",
     .metavar = "R",
     HB_OPTION_FIELD(struct options, rate_limit),
     .dmin = 0,
     .dmax = 1e6,
     .error = "expected a number in 0..1000000, got '%.80s'",
     .help = "tokens each API key may mint per second, e.g. 50 or 0.5; beyond\n"
             "it 429 with Retry-After (default 0: no limit)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "burst",
     .metavar = "N",
     HB_OPTION_FIELD(struct options, burst),
     .dmin = 0,
     .dmax = 1e6,
     .error = "expected a number in 0..1000000, got '%.80s'",
     .help = "tokens a key may mint at once after a quiet spell (default:\n"
             "2 x the rate, at least 1)"},
    /* Checked after the required options, with its own message, as it always was. */
    {.type = HB_OPTION_STRING,
     .name = "topic-prefix",
     .metavar = "P",
     .env = "HB_TOPIC_PREFIX",
     .def = HB_DEFAULT_TOPIC_PREFIX,
     HB_OPTION_FIELD(struct options, topic_prefix),
     .help = HB_CONFIG_TOPIC_PREFIX_HELP},
};

static const struct hb_options_spec spec = {
    .program = "hb-tokend",
    .usage = "Usage: hb-tokend --key FILE --api-key-file FILE [OPTION]...\n"
             "Serve device tokens over HTTP to backend services:\n"
             "  POST /v1/tokens  {\"account\": \"...\", \"device\": \"...\", \"ttl\": SECONDS}\n"
             "                   with 'Authorization: Bearer <API key>'\n"
             "                   -> {\"token\": \"...\", \"expires_at\": UNIX_SECONDS, \"kid\": "
             "\"...\"}\n"
             "  GET /healthz     -> 200\n\n",
    .epilogue = "\nOne access-log line per request on stderr (method, path, status, account); API "
                "keys and\ntokens are never logged. SIGTERM or SIGINT stops it.\n",
    .groups = {{tokend_options, sizeof(tokend_options) / sizeof(tokend_options[0]), 0}},
    .n_groups = 1,
    .unexpected = "unexpected argument '%.80s'",
};

/* Fills a fresh o from the environment and argv and checks it as a whole. */
static enum hb_options_status parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    enum hb_options_status status = hb_options_parse(&spec, o, argc, argv, NULL);
    if (status != HB_OPTIONS_RUN)
        return status;
    if (o->key_file == NULL || o->api_key_file == NULL) {
        HB_ERROR("--key FILE and --api-key-file FILE are required");
        return HB_OPTIONS_USAGE;
    }
    if (!hb_topic_prefix_valid(o->topic_prefix)) {
        HB_ERROR("topic prefix must be 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' between "
                 "levels, got '%.80s'",
                 o->topic_prefix);
        return HB_OPTIONS_USAGE;
    }
    if (!o->default_ttl_given)
        o->default_ttl = HB_TOKEN_TTL_DEFAULT < o->max_ttl ? HB_TOKEN_TTL_DEFAULT : o->max_ttl;
    if (o->default_ttl > o->max_ttl) {
        HB_ERROR("--default-ttl %ld is above --max-ttl %ld", o->default_ttl, o->max_ttl);
        return HB_OPTIONS_USAGE;
    }
    if (!api_tokens_rate_check(o->rate_limit, o->burst, &o->burst))
        return HB_OPTIONS_USAGE;
    return HB_OPTIONS_RUN;
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
    static struct api a; /* large (counters): not on the stack */
    struct options o;
    enum hb_options_status status = parse_options(&o, argc, argv);
    if (status != HB_OPTIONS_RUN)
        return status == HB_OPTIONS_EXIT ? 0 : EXIT_USAGE;
    struct sockaddr_storage addr;
    char kid[HB_ID_MAX + 1];
    if (!parse_listen(o.listen, &addr) || (o.kid == NULL && !keyfile_default_kid(o.key_file, kid)))
        return EXIT_USAGE;

    int rc = EXIT_FAILED;
    struct hb_key key;
    struct api_keys api_keys;
    if (!api_keys_setup(&key, &api_keys, o.key_file, o.kid ? o.kid : kid, o.api_key_file))
        return EXIT_FAILED;
    sigset_t stop;
    if (!api_block_signals(&stop))
        goto out_api_keys;
    a.set.topic_prefix = o.topic_prefix;
    a.set.tokens_only = true;
    a.set.reasons = true;
    a.key = &key;
    a.api_keys = &api_keys;
    api_tokens_init(&a.tokens, o.default_ttl, o.max_ttl, o.rate_limit, o.burst);
    struct hb_httpd *httpd =
        api_serve(&a, o.listen, (const struct sockaddr *)&addr, (unsigned)o.max_connections, 0);
    if (httpd == NULL)
        goto out_tokens;
    HB_INFO("hb-tokend %s listening on %s (port %u), key %s (%s), %zu API keys, ttl %ld s, "
            "max %ld s",
            HB_VERSION, o.listen, hb_httpd_port(httpd), key.kid,
            key.alg == HB_TOKEN_ES256 ? "ES256" : "HS256", api_keys.n, o.default_ttl, o.max_ttl);
    if (o.rate_limit > 0)
        HB_INFO("hb-tokend: at most %g tokens/s per API key, bursts of %g", o.rate_limit, o.burst);

    int sig = 0;
    sigwait(&stop, &sig);
    HB_INFO("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    hb_httpd_stop(httpd);
    rc = 0;
out_tokens:
    api_tokens_finish(&a.tokens);
out_api_keys:
    api_keys_finish(&api_keys);
    hb_key_finish(&key);
    return rc;
}
