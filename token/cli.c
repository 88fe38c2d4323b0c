/* hb-token: mints a device or consumer token with a key file, or verifies one (--verify) and
 * prints its claims. The lifetime is capped (--max-ttl): a token cannot be revoked, so its
 * lifetime is the window in which a leaked one can be abused. */
#include "config.h"
#include "ids.h"
#include "interval.h"
#include "jwtverify.h"
#include "keyfile.h"
#include "keyring.h"
#include "log.h"
#include "mint.h"
#include "token.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit statuses. */
enum { EXIT_REFUSED = 1, EXIT_USAGE = 2 };

#define MAX_TTL_LIMIT (366L * 86400)

struct options {
    const char *key_file, *kid, *account, *device, *verify, *topic_prefix, *control_prefix;
    const char *live_prefix;
    enum hb_token_role role;
    bool role_given;
    long ttl, max_ttl;
    bool ttl_given;
};

_Static_assert(MAX_TTL_LIMIT == 31622400, "the --ttl and --max-ttl messages name the limit");

static bool parse_role(void *opts, const char *value)
{
    struct options *o = opts;
    if (strcmp(value, "device") == 0)
        o->role = HB_ROLE_DEVICE;
    else if (strcmp(value, "consumer") == 0)
        o->role = HB_ROLE_CONSUMER;
    else
        return false;
    return true;
}

#define ID_ERROR "'%.80s' is not 1-64 bytes of A-Z a-z 0-9 . _ - :"

static const struct hb_option token_options[] = {
    {.type = HB_OPTION_STRING,
     .name = "key",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, key_file),
     .help = "PEM EC P-256 private key (ES256), or a file holding an HMAC secret\n"
             "of at least 32 bytes (HS256)"},
    {.type = HB_OPTION_ID,
     .name = "kid",
     .metavar = "KID",
     HB_OPTION_FIELD(struct options, kid),
     .error = ID_ERROR,
     .help = "key id in the token header (default: the key file's name without\n"
             "directory and extension)"},
    {.type = HB_OPTION_ID,
     .name = "account",
     .metavar = "ACCOUNT",
     HB_OPTION_FIELD(struct options, account),
     .error = ID_ERROR,
     .help = "account id (the token's sub)"},
    {.type = HB_OPTION_ID,
     .name = "device",
     .metavar = "DEVICE",
     HB_OPTION_FIELD(struct options, device),
     .error = ID_ERROR,
     .help = "pin the token to this MQTT client id"},
    {.type = HB_OPTION_CUSTOM,
     .name = "role",
     .metavar = "ROLE",
     .parse = parse_role,
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct options, role_given),
     .error = "expected device or consumer, got '%.80s'",
     .help = "device (default) or consumer"},
    {.type = HB_OPTION_INTEGER,
     .name = "ttl",
     .metavar = "SECONDS",
     HB_OPTION_FIELD(struct options, ttl),
     .min = 1,
     .max = MAX_TTL_LIMIT,
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct options, ttl_given),
     .error = "expected whole seconds in 1..31622400, got '%.80s'",
     .help = "lifetime (default 1800)"},
    {.type = HB_OPTION_INTEGER,
     .name = "max-ttl",
     .metavar = "SECONDS",
     .def = "86400",
     HB_OPTION_FIELD(struct options, max_ttl),
     .min = 1,
     .max = MAX_TTL_LIMIT,
     .error = "expected whole seconds in 1..31622400, got '%.80s'",
     .help = "refuse a longer --ttl (default 86400)"},
    /* Checked after --key, with its own message, as it always was. */
    {.type = HB_OPTION_STRING,
     .name = "topic-prefix",
     .metavar = "P",
     .env = "HB_TOPIC_PREFIX",
     .def = HB_DEFAULT_TOPIC_PREFIX,
     HB_OPTION_FIELD(struct options, topic_prefix),
     .help = HB_CONFIG_TOPIC_PREFIX_HELP},
    {.type = HB_OPTION_STRING,
     .name = "control-prefix",
     .metavar = "P",
     HB_OPTION_FIELD(struct options, control_prefix),
     .help = "also allow stop messages on P/<account>/<device>: a device token\n"
             "(with --device) may subscribe to its own, a consumer token may\n"
             "publish to P/+/+ (default: off)"},
    {.type = HB_OPTION_STRING,
     .name = "live-prefix",
     .metavar = "L",
     HB_OPTION_FIELD(struct options, live_prefix),
     .help = "consumer token: also allow publishing retained live viewer counts\n"
             "on L/# (hb-consumer --live; default: off)"},
    {.type = HB_OPTION_STRING,
     .name = "verify",
     .metavar = "TOKEN",
     HB_OPTION_FIELD(struct options, verify),
     .help = "verify TOKEN ('-': read it from stdin) with the key and print its\n"
             "claims as JSON"},
};

static const struct hb_options_spec spec = {
    .program = "hb-token",
    .usage =
        "Usage: hb-token --key FILE [--kid KID] --account ACCOUNT [--device DEVICE] [--ttl "
        "SECONDS]\n"
        "       hb-token --key FILE [--kid KID] --role consumer [--ttl SECONDS]\n"
        "       hb-token --key FILE [--kid KID] --verify TOKEN\n"
        "Print a JSON Web Token for a device of ACCOUNT (it may publish only to\n"
        "<prefix>/ACCOUNT/<its MQTT client id>), or for the consumer (it may only subscribe to\n"
        "<prefix>/+/+, shared subscriptions included). Send it as the MQTT password.\n\n",
    .epilogue = "\nExit status: 0 ok, 1 key unusable or token refused, 2 usage error.\n",
    .groups = {{token_options, sizeof(token_options) / sizeof(token_options[0]), 0}},
    .n_groups = 1,
    .unexpected = "unexpected argument '%.80s'",
};

/* Fills a fresh o from the environment and argv and checks it as a whole. */
static enum hb_options_status parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->role = HB_ROLE_DEVICE;
    enum hb_options_status status = hb_options_parse(&spec, o, argc, argv, NULL);
    if (status != HB_OPTIONS_RUN)
        return status;
    if (o->key_file == NULL) {
        HB_ERROR("--key FILE is required");
        return HB_OPTIONS_USAGE;
    }
    if (!hb_topic_prefix_valid(o->topic_prefix)) {
        HB_ERROR("topic prefix must be 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' between "
                 "levels, got '%.80s'",
                 o->topic_prefix);
        return HB_OPTIONS_USAGE;
    }
    if (o->verify != NULL) {
        if (o->account || o->device || o->role_given || o->ttl_given) {
            HB_ERROR("--verify takes no --account, --device, --role or --ttl");
            return HB_OPTIONS_USAGE;
        }
        if (o->control_prefix || o->live_prefix) {
            HB_ERROR("--verify takes no --control-prefix or --live-prefix");
            return HB_OPTIONS_USAGE;
        }
        return HB_OPTIONS_RUN;
    }
    if (o->control_prefix != NULL && (!hb_topic_prefix_valid(o->control_prefix) ||
                                      strcmp(o->control_prefix, o->topic_prefix) == 0)) {
        HB_ERROR("--control-prefix must be a topic prefix (1..64 bytes of A-Z a-z 0-9 . _ - : and "
                 "'/' between levels) other than the topic prefix, got '%.80s'",
                 o->control_prefix);
        return HB_OPTIONS_USAGE;
    }
    if (o->control_prefix != NULL && o->role == HB_ROLE_DEVICE && o->device == NULL) {
        HB_ERROR("--control-prefix needs --device for a device token: the control topic names "
                 "the device");
        return HB_OPTIONS_USAGE;
    }
    if (o->live_prefix != NULL && o->role != HB_ROLE_CONSUMER) {
        HB_ERROR("--live-prefix is for a consumer token (--role consumer)");
        return HB_OPTIONS_USAGE;
    }
    if (o->role == HB_ROLE_CONSUMER && (o->account || o->device)) {
        HB_ERROR("a consumer token takes no --account or --device");
        return HB_OPTIONS_USAGE;
    }
    if (o->role == HB_ROLE_DEVICE && o->account == NULL) {
        HB_ERROR("--account ACCOUNT is required for a device token");
        return HB_OPTIONS_USAGE;
    }
    if (!o->ttl_given)
        o->ttl = HB_TOKEN_TTL_DEFAULT < o->max_ttl ? HB_TOKEN_TTL_DEFAULT : o->max_ttl;
    if (o->ttl > o->max_ttl) {
        HB_ERROR("--ttl %ld is above the maximum lifetime of %ld seconds (--max-ttl)", o->ttl,
                 o->max_ttl);
        return HB_OPTIONS_USAGE;
    }
    return HB_OPTIONS_RUN;
}

static int mint(const struct options *o, const struct hb_key *key)
{
    struct hb_token_request req = {
        .role = o->role,
        .account = o->account,
        .device = o->device,
        .topic_prefix = o->topic_prefix,
        .now_s = hb_now_ms() / 1000,
        .ttl_s = o->ttl,
        .control_prefix = o->control_prefix,
        .live_prefix = o->live_prefix,
    };
    char err[256];
    char *token = hb_token_mint(key, &req, err, sizeof(err));
    if (token == NULL) {
        HB_ERROR("%s", err);
        return EXIT_REFUSED;
    }
    puts(token);
    free(token);
    return fflush(stdout) == 0 ? 0 : EXIT_REFUSED;
}

static const char *action_name(enum hb_acl_action a)
{
    return a == HB_ACL_PUBLISH ? "publish" : a == HB_ACL_SUBSCRIBE ? "subscribe" : "all";
}

static bool print_claims(const struct hb_token_claims *c)
{
    cJSON *obj = cJSON_CreateObject();
    cJSON *acl = obj ? cJSON_AddArrayToObject(obj, "acl") : NULL;
    bool ok =
        acl != NULL && cJSON_AddStringToObject(obj, "kid", c->kid) &&
        cJSON_AddStringToObject(obj, "sub", c->sub) &&
        cJSON_AddStringToObject(obj, "role", c->role == HB_ROLE_CONSUMER ? "consumer" : "device") &&
        (!c->device[0] || cJSON_AddStringToObject(obj, "device", c->device)) &&
        (!c->jti[0] || cJSON_AddStringToObject(obj, "jti", c->jti)) &&
        cJSON_AddNumberToObject(obj, "iat", (double)c->iat) &&
        cJSON_AddNumberToObject(obj, "nbf", (double)c->nbf) &&
        cJSON_AddNumberToObject(obj, "exp", (double)c->exp);
    for (size_t i = 0; ok && i < c->n_rules; i++) {
        cJSON *rule = cJSON_CreateObject();
        ok = rule != NULL && cJSON_AddItemToArray(acl, rule) &&
             cJSON_AddStringToObject(rule, "permission", c->rules[i].allow ? "allow" : "deny") &&
             cJSON_AddStringToObject(rule, "action", action_name(c->rules[i].action)) &&
             cJSON_AddStringToObject(rule, "topic", c->rules[i].topic);
    }
    char *text = ok ? cJSON_PrintUnformatted(obj) : NULL;
    if (text != NULL)
        puts(text);
    cJSON_free(text);
    cJSON_Delete(obj);
    return text != NULL && fflush(stdout) == 0;
}

static int verify(const struct options *o, struct hb_key *key)
{
    char line[HB_TOKEN_MAX + 2];
    const char *token = o->verify;
    if (strcmp(token, "-") == 0) {
        if (fgets(line, sizeof(line), stdin) == NULL) {
            HB_ERROR("--verify -: no token on stdin");
            return EXIT_USAGE;
        }
        line[strcspn(line, "\r\n")] = '\0';
        token = line;
    }
    struct hb_keyring ring = {0};
    char err[256];
    if (!hb_keyring_add(&ring, key, err, sizeof(err))) {
        HB_ERROR("%s", err);
        return EXIT_REFUSED;
    }
    struct hb_token_claims claims;
    enum hb_token_error e =
        hb_token_verify(&ring, token, strlen(token), hb_now_ms() / 1000, &claims);
    hb_keyring_finish(&ring);
    if (e != HB_TOKEN_OK) {
        HB_ERROR("token refused: %s", hb_token_error_name(e));
        return EXIT_REFUSED;
    }
    return print_claims(&claims) ? 0 : EXIT_REFUSED;
}

int main(int argc, char **argv)
{
    struct options o;
    enum hb_options_status status = parse_options(&o, argc, argv);
    if (status != HB_OPTIONS_RUN)
        return status == HB_OPTIONS_EXIT ? 0 : EXIT_USAGE;
    char kid[HB_ID_MAX + 1];
    if (o.kid == NULL && !keyfile_default_kid(o.key_file, kid))
        return EXIT_USAGE;
    struct hb_key key;
    if (!keyfile_load(&key, o.key_file, o.kid ? o.kid : kid))
        return EXIT_REFUSED;
    int rc = o.verify ? verify(&o, &key) : mint(&o, &key);
    hb_key_finish(&key);
    return rc;
}
