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
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Exit statuses. */
enum { EXIT_REFUSED = 1, EXIT_USAGE = 2 };

#define MAX_TTL_DEFAULT 86400
#define MAX_TTL_LIMIT (366L * 86400)

struct options {
    const char *key_file, *kid, *account, *device, *verify, *topic_prefix, *control_prefix;
    enum hb_token_role role;
    bool role_given;
    long ttl, max_ttl;
    bool ttl_given;
};

enum {
    OPT_KEY = 1100,
    OPT_KID,
    OPT_ACCOUNT,
    OPT_DEVICE,
    OPT_ROLE,
    OPT_TTL,
    OPT_MAX_TTL,
    OPT_TOPIC_PREFIX,
    OPT_CONTROL_PREFIX,
    OPT_VERIFY
};

static const struct option long_options[] = {
    {"key", required_argument, NULL, OPT_KEY},
    {"kid", required_argument, NULL, OPT_KID},
    {"account", required_argument, NULL, OPT_ACCOUNT},
    {"device", required_argument, NULL, OPT_DEVICE},
    {"role", required_argument, NULL, OPT_ROLE},
    {"ttl", required_argument, NULL, OPT_TTL},
    {"max-ttl", required_argument, NULL, OPT_MAX_TTL},
    {"topic-prefix", required_argument, NULL, OPT_TOPIC_PREFIX},
    {"control-prefix", required_argument, NULL, OPT_CONTROL_PREFIX},
    {"verify", required_argument, NULL, OPT_VERIFY},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "Usage: hb-token --key FILE [--kid KID] --account ACCOUNT [--device DEVICE] [--ttl SECONDS]\n"
    "       hb-token --key FILE [--kid KID] --role consumer [--ttl SECONDS]\n"
    "       hb-token --key FILE [--kid KID] --verify TOKEN\n"
    "Print a JSON Web Token for a device of ACCOUNT (it may publish only to\n"
    "<prefix>/ACCOUNT/<its MQTT client id>), or for the consumer (it may only subscribe to\n"
    "<prefix>/+/+, shared subscriptions included). Send it as the MQTT password.\n\n"
    "  --key FILE            PEM EC P-256 private key (ES256), or a file holding an HMAC secret\n"
    "                        of at least 32 bytes (HS256)\n"
    "  --kid KID             key id in the token header (default: the key file's name without\n"
    "                        directory and extension)\n"
    "  --account ACCOUNT     account id (the token's sub)\n"
    "  --device DEVICE       pin the token to this MQTT client id\n"
    "  --role ROLE           device (default) or consumer\n"
    "  --ttl SECONDS         lifetime (default 1800)\n"
    "  --max-ttl SECONDS     refuse a longer --ttl (default 86400)\n"
    "  --topic-prefix P      heartbeat topics are P/<account>/<device> (env HB_TOPIC_PREFIX,\n"
    "                        default hb)\n"
    "  --control-prefix P    also allow stop messages on P/<account>/<device>: a device token\n"
    "                        (with --device) may subscribe to its own, a consumer token may\n"
    "                        publish to P/+/+ (default: off)\n"
    "  --verify TOKEN        verify TOKEN ('-': read it from stdin) with the key and print its\n"
    "                        claims as JSON\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n\n"
    "Exit status: 0 ok, 1 key unusable or token refused, 2 usage error.\n";

static bool id_option(const char *name, const char *arg)
{
    if (hb_id_valid(arg, strlen(arg)))
        return true;
    HB_ERROR("--%s: '%.80s' is not 1-64 bytes of A-Z a-z 0-9 . _ - :", name, arg);
    return false;
}

/* Returns 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    o->role = HB_ROLE_DEVICE;
    o->max_ttl = MAX_TTL_DEFAULT;
    o->topic_prefix = HB_DEFAULT_TOPIC_PREFIX;
    const char *env_prefix = getenv("HB_TOPIC_PREFIX");
    if (env_prefix && *env_prefix)
        o->topic_prefix = env_prefix;
    int opt;
    while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        switch (opt) {
        case OPT_KEY:
            o->key_file = optarg;
            break;
        case OPT_KID:
            if (!id_option("kid", optarg))
                return 2;
            o->kid = optarg;
            break;
        case OPT_ACCOUNT:
            if (!id_option("account", optarg))
                return 2;
            o->account = optarg;
            break;
        case OPT_DEVICE:
            if (!id_option("device", optarg))
                return 2;
            o->device = optarg;
            break;
        case OPT_ROLE:
            if (strcmp(optarg, "device") == 0)
                o->role = HB_ROLE_DEVICE;
            else if (strcmp(optarg, "consumer") == 0)
                o->role = HB_ROLE_CONSUMER;
            else {
                HB_ERROR("--role: expected device or consumer, got '%.80s'", optarg);
                return 2;
            }
            o->role_given = true;
            break;
        case OPT_TTL:
            if (!hb_parse_long(optarg, 1, MAX_TTL_LIMIT, &o->ttl)) {
                HB_ERROR("--ttl: expected whole seconds in 1..%ld, got '%.80s'", MAX_TTL_LIMIT,
                         optarg);
                return 2;
            }
            o->ttl_given = true;
            break;
        case OPT_MAX_TTL:
            if (!hb_parse_long(optarg, 1, MAX_TTL_LIMIT, &o->max_ttl)) {
                HB_ERROR("--max-ttl: expected whole seconds in 1..%ld, got '%.80s'", MAX_TTL_LIMIT,
                         optarg);
                return 2;
            }
            break;
        case OPT_TOPIC_PREFIX:
            o->topic_prefix = optarg;
            break;
        case OPT_CONTROL_PREFIX:
            o->control_prefix = optarg;
            break;
        case OPT_VERIFY:
            o->verify = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            printf("hb-token %s\n", HB_VERSION);
            return 1;
        default:
            fprintf(stderr, "Try 'hb-token --help'.\n");
            return 2;
        }
    }
    if (optind < argc) {
        HB_ERROR("unexpected argument '%.80s'", argv[optind]);
        return 2;
    }
    if (o->key_file == NULL) {
        HB_ERROR("--key FILE is required");
        return 2;
    }
    if (!hb_topic_prefix_valid(o->topic_prefix)) {
        HB_ERROR("topic prefix must be 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' between "
                 "levels, got '%.80s'",
                 o->topic_prefix);
        return 2;
    }
    if (o->verify != NULL) {
        if (o->account || o->device || o->role_given || o->ttl_given) {
            HB_ERROR("--verify takes no --account, --device, --role or --ttl");
            return 2;
        }
        if (o->control_prefix) {
            HB_ERROR("--verify takes no --control-prefix");
            return 2;
        }
        return 0;
    }
    if (o->control_prefix != NULL && (!hb_topic_prefix_valid(o->control_prefix) ||
                                      strcmp(o->control_prefix, o->topic_prefix) == 0)) {
        HB_ERROR("--control-prefix must be a topic prefix (1..64 bytes of A-Z a-z 0-9 . _ - : and "
                 "'/' between levels) other than the topic prefix, got '%.80s'",
                 o->control_prefix);
        return 2;
    }
    if (o->control_prefix != NULL && o->role == HB_ROLE_DEVICE && o->device == NULL) {
        HB_ERROR("--control-prefix needs --device for a device token: the control topic names "
                 "the device");
        return 2;
    }
    if (o->role == HB_ROLE_CONSUMER && (o->account || o->device)) {
        HB_ERROR("a consumer token takes no --account or --device");
        return 2;
    }
    if (o->role == HB_ROLE_DEVICE && o->account == NULL) {
        HB_ERROR("--account ACCOUNT is required for a device token");
        return 2;
    }
    if (!o->ttl_given)
        o->ttl = HB_TOKEN_TTL_DEFAULT < o->max_ttl ? HB_TOKEN_TTL_DEFAULT : o->max_ttl;
    if (o->ttl > o->max_ttl) {
        HB_ERROR("--ttl %ld is above the maximum lifetime of %ld seconds (--max-ttl)", o->ttl,
                 o->max_ttl);
        return 2;
    }
    return 0;
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
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : EXIT_USAGE;
    char kid[HB_ID_MAX + 1];
    if (o.kid == NULL && !keyfile_default_kid(o.key_file, kid))
        return EXIT_USAGE;
    struct hb_key key;
    if (!keyfile_load(&key, o.key_file, o.kid ? o.kid : kid))
        return EXIT_REFUSED;
    rc = o.verify ? verify(&o, &key) : mint(&o, &key);
    hb_key_finish(&key);
    return rc;
}
