/* hb-api's options, declared once (common/options.h): every option has an HB_* environment
 * variable and the command line wins. Parsed into a fresh struct that main applies only when the
 * whole command line is valid. */
#include "options.h"

#include "log.h"
#include "tokens.h"

#include <stdlib.h>
#include <string.h>

static bool ws_url_valid(const char *url)
{
    return strncmp(url, "ws://", 5) == 0 || strncmp(url, "wss://", 6) == 0;
}

#define NUMBER_ERROR(lo, hi) "expected a whole number in " #lo ".." #hi ", got '%.80s'"

static const struct hb_option api_option_table[] = {
    {.type = HB_OPTION_STRING,
     .name = "listen",
     .metavar = "ADDR:PORT",
     .env = "HB_LISTEN",
     .def = "127.0.0.1:8081",
     HB_OPTION_FIELD(struct api_options, listen),
     .help = "address to listen on (default 127.0.0.1:8081)"},
    {.type = HB_OPTION_STRING,
     .name = "key",
     .metavar = "FILE",
     .env = "HB_KEY",
     HB_OPTION_FIELD(struct api_options, key_file),
     .help = "signing key of device tokens (as hb-tokend)"},
    {.type = HB_OPTION_ID,
     .name = "kid",
     .metavar = "KID",
     .env = "HB_KID",
     HB_OPTION_FIELD(struct api_options, kid),
     .error = "'%.80s' is not an id",
     .help = "key id (default: the key file's name)"},
    {.type = HB_OPTION_STRINGS,
     .name = "publish-key",
     .metavar = "FILE",
     .env = "HB_PUBLISH_KEY",
     HB_OPTION_FIELD(struct api_options, publish_keys),
     .count = offsetof(struct api_options, n_publish_keys),
     .max_count = API_PUBLISH_KEYS_MAX,
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct api_options, publish_keys_given),
     .error = "at most 7 keys",
     .help = "another ES256 key in /.well-known/jwks.json, never signing:\n"
             "the next key before a rotation, the previous one after it\n"
             "(kid: the file's name; may be given several times)"},
    {.type = HB_OPTION_STRING,
     .name = "api-key-file",
     .metavar = "FILE",
     .env = "HB_API_KEY_FILE",
     HB_OPTION_FIELD(struct api_options, api_key_file),
     .help = "service API keys, one per line"},
};

/* After the shared admission options (common/playopts.h), in the help text too. */
static const struct hb_option api_option_table_after[] = {
    {.type = HB_OPTION_INTEGER,
     .name = "token-ttl",
     .metavar = "S",
     .env = "HB_TOKEN_TTL",
     .def = "1800",
     HB_OPTION_FIELD(struct api_options, token_ttl),
     .min = 10,
     .max = 86400,
     .error = NUMBER_ERROR(10, 86400),
     .help = "device token lifetime (default 1800)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "rate-limit",
     .metavar = "R",
     .env = "HB_RATE_LIMIT",
     HB_OPTION_FIELD(struct api_options, rate_limit),
     .dmin = 0,
     .dmax = API_TOKENS_RATE_MAX,
     .error = "expected a number in 0..1000000, got '%.80s'",
     .help = "tokens each API key may mint per second on /v1/tokens;\n"
             "beyond it 429 with Retry-After (default 0: no limit)"},
    {.type = HB_OPTION_DOUBLE,
     .name = "burst",
     .metavar = "N",
     .env = "HB_BURST",
     HB_OPTION_FIELD(struct api_options, burst),
     .dmin = 0,
     .dmax = API_TOKENS_RATE_MAX,
     .error = "expected a number in 0..1000000, got '%.80s'",
     .help = "tokens a key may mint at once (default: 2 x the rate, at least 1)"},
    {.type = HB_OPTION_FLAG,
     .name = "fail-open",
     .env = "HB_FAIL_OPEN",
     HB_OPTION_FIELD(struct api_options, fail_open),
     .help = "admit with \"degraded\": true when Redis is down\n(default: 503)"},
    {.type = HB_OPTION_INTEGER,
     .name = "threads",
     .metavar = "N",
     .env = "HB_THREADS",
     .def = "4",
     HB_OPTION_FIELD(struct api_options, threads),
     .min = 1,
     .max = 64,
     .error = NUMBER_ERROR(1, 64),
     .help = "HTTP threads (default 4)"},
    {.type = HB_OPTION_INTEGER,
     .name = "max-connections",
     .metavar = "N",
     .env = "HB_MAX_CONNECTIONS",
     .def = "1024",
     HB_OPTION_FIELD(struct api_options, max_connections),
     .min = 1,
     .max = 16384,
     .error = NUMBER_ERROR(1, 16384),
     .help = "concurrent connections (default 1024)"},
    {.type = HB_OPTION_STRING,
     .name = "web-root",
     .metavar = "DIR",
     .env = "HB_WEB_ROOT",
     HB_OPTION_FIELD(struct api_options, web_root),
     .help = "serve the device page (/), /dashboard and mqtt.js from DIR,\n"
             "the project's web/ folder after scripts/deps.sh (default: off)"},
    {.type = HB_OPTION_FLAG,
     .name = "demo-backend",
     .env = "HB_DEMO_BACKEND",
     HB_OPTION_FIELD(struct api_options, demo_backend),
     .help = "POST /demo/plays, DELETE /demo/plays/ACCOUNT/DEVICE,\n"
             "GET /demo/accounts/ACCOUNT and /demo/config WITHOUT an API\n"
             "key: a stand-in for a video platform's backend, for demos\n"
             "only (default: off)"},
    {.type = HB_OPTION_FLAG,
     .name = "dashboard",
     .env = "HB_DASHBOARD",
     HB_OPTION_FIELD(struct api_options, dashboard),
     .help = "serve /dashboard and /dashboard/data (audience and admission\n"
             "figures, WITHOUT an API key) with --web-root; --demo-backend\n"
             "implies it (default: off)"},
    {.type = HB_OPTION_STRING,
     .name = "demo-mqtt-url",
     .metavar = "URL",
     .env = "HB_DEMO_MQTT_URL",
     .def = "ws://127.0.0.1:8080/",
     HB_OPTION_FIELD(struct api_options, demo_mqtt_url),
     .valid = ws_url_valid,
     .error = "expected ws://HOST:PORT/ or wss://..., got '%.80s'",
     .help = "the broker's WebSocket URL the demo pages connect to\n"
             "(default ws://127.0.0.1:8080/)"},
};

static const struct hb_options_spec spec = {
    .program = "hb-api",
    .usage = "Usage: hb-api --key FILE --api-key-file FILE [OPTION]...\n"
             "Admission service for backends: may this device play, on this account, now?\n"
             "  POST   /v1/plays                       {\"account\",\"device\",\"group\"?,"
             "\"media\"?}\n"
             "  DELETE /v1/plays/ACCOUNT/DEVICE        release a slot, stop the device\n"
             "  GET    /v1/accounts/ACCOUNT            count, active devices, limits\n"
             "  PUT    /v1/accounts/ACCOUNT/limits     {\"devices\",\"groups\"?,\"policy\"?}\n"
             "  POST   /v1/tokens                      {\"account\",\"device\"?,\"ttl\"?}\n"
             "  GET    /.well-known/jwks.json          the ES256 public keys (no API key)\n"
             "  GET    /healthz, /metrics              (no API key)\n\n",
    .epilogue =
        "\nEvery option has an environment variable: HB_ and its name in capitals with '_'\n"
        "(HB_LISTEN, HB_DEFAULT_LIMIT, HB_FAIL_OPEN=1, ...). Stops are sent only when a "
        "broker\nis named (--broker or HB_BROKER).\n",
    .groups = {HB_CONFIG_GROUP(struct api_options, common),
               {api_option_table, sizeof(api_option_table) / sizeof(api_option_table[0]), 0},
               HB_PLAY_OPTIONS_GROUP(struct api_options, play),
               {api_option_table_after,
                sizeof(api_option_table_after) / sizeof(api_option_table_after[0]), 0}},
    .n_groups = 4,
    .unexpected = "unexpected argument '%.80s'",
};

enum hb_options_status api_options_parse(struct api_options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    enum hb_options_status status = hb_options_parse(&spec, o, argc, argv, NULL);
    if (status != HB_OPTIONS_RUN)
        return status;
    const char *env_broker = getenv("HB_BROKER");
    o->control = o->common.brokers_from_options || (env_broker != NULL && env_broker[0] != '\0');
    if (o->key_file == NULL || o->api_key_file == NULL) {
        HB_ERROR("--key FILE and --api-key-file FILE are required");
        return HB_OPTIONS_USAGE;
    }
    if (!api_tokens_rate_check(o->rate_limit, o->burst, &o->burst))
        return HB_OPTIONS_USAGE;
    if (!hb_play_options_check(&o->play))
        return HB_OPTIONS_USAGE;
    return HB_OPTIONS_RUN;
}
