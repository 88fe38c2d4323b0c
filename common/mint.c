/* Minting tokens: the claims are built with cJSON (times as raw digits, never through a double)
 * and signed with OpenSSL's EVP API directly: the key parsed once at load time, no libjwt (it
 * re-parsed a PEM key per signature, ~1 ms). The acl rules are written here and nowhere else,
 * in the order the verifier and the broker read them: first match decides. They are written so
 * that EMQX enforces them as our plugin does (docs/EMQX.md): literal topics where the device is
 * known, "retain": false on publish rules, explicit denies for $-topics. */
#include "mint.h"

#include "config.h"
#include "ids.h"
#include "json.h"
#include "jwtparts.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rules in a minted token: at most nine (consumer with control and live prefixes) of
 * HB_ACL_RULES_MAX. */
#define MINT_RULES_MAX 9

/* nbf is this far before the mint time, so a broker whose clock is behind ours (EMQX checks
 * nbf with no leeway) accepts a fresh token; the plugin allows the same skew the other way. */
#define MINT_NBF_LEEWAY_S 30

/* JWS signatures (RFC 7518 section 3): HMAC-SHA256's 32 bytes; ECDSA P-256's r || s, each
 * left-padded to 32 bytes. A DER ECDSA-Sig-Value on P-256 is at most 72 bytes. */
#define MINT_HS256_SIG_LEN 32
#define MINT_P256_COORD_LEN 32
#define MINT_ES256_SIG_LEN (2 * MINT_P256_COORD_LEN)
#define MINT_DER_SIG_MAX 80

/* $-topics that "#" does not cover on EMQX (MQTT 4.7.2): each gets its own deny before the
 * closing one. $delayed/N/T republishes to any T, $SYS leaks every client id. */
static const char *const dollar_denies[] = {"$SYS/#", "$delayed/#", "$share/#", "$queue/#"};

struct mint_rule {
    const char *permission, *action;
    bool retain; /* an allowed publish that may be retained (the live counts' only) */
    char topic[HB_ACL_TOPIC_MAX];
};

static bool add_int(cJSON *obj, const char *name, int64_t v)
{
    /* Raw digits: cJSON would print through a double and an int. */
    char digits[32];
    snprintf(digits, sizeof(digits), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, name, digits) != NULL;
}

/* One acl rule; an allowed publish says "retain": false (EMQX allows retained publishes on a
 * rule that does not say), or true for the live counts (the plugin refuses a retained publish
 * on any other rule); the subscription to a device's live count says "retain": true (the
 * plugin delivers retained messages only there). Members in name order, as in every object
 * minted here: libjwt printed sorted members, and tokens keep the bytes they had. */
static bool add_rule(cJSON *acl, const struct mint_rule *r)
{
    cJSON *rule = cJSON_CreateObject();
    if (rule == NULL)
        return false;
    cJSON_AddItemToArray(acl, rule);
    bool publish = strcmp(r->permission, "allow") == 0 && strcmp(r->action, "publish") == 0;
    return cJSON_AddStringToObject(rule, "action", r->action) != NULL &&
           cJSON_AddStringToObject(rule, "permission", r->permission) != NULL &&
           ((!publish && !r->retain) || cJSON_AddBoolToObject(rule, "retain", r->retain) != NULL) &&
           cJSON_AddStringToObject(rule, "topic", r->topic) != NULL;
}

/* Appends a rule; topic is a printf format. The topics' parts are checked ids and prefixes,
 * so they always fit. */
static void push_rule(struct mint_rule *rules, size_t *n, const char *permission,
                      const char *action, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void push_rule(struct mint_rule *rules, size_t *n, const char *permission,
                      const char *action, const char *fmt, ...)
{
    struct mint_rule *r = &rules[(*n)++];
    r->permission = permission;
    r->action = action;
    r->retain = false;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->topic, sizeof(r->topic), fmt, ap);
    va_end(ap);
}

/* The acl rules of a checked request, in order; returns how many. */
static size_t mint_rules(const struct hb_token_request *req, const char *prefix, const char *device,
                         struct mint_rule rules[MINT_RULES_MAX])
{
    const char *control = req->control_prefix;
    size_t n = 0;
    if (req->role == HB_ROLE_DEVICE) {
        /* A pinned device's topic is literal: EMQX substitutes ${clientid} unchecked. */
        if (device != NULL)
            push_rule(rules, &n, "allow", "publish", "%s/%s/%s", prefix, req->account, device);
        else
            push_rule(rules, &n, "allow", "publish", "%s/%s/${clientid}", prefix, req->account);
        if (control != NULL && device != NULL)
            push_rule(rules, &n, "allow", "subscribe", "%s/%s/%s", control, req->account, device);
        if (req->subscribe_topic != NULL) {
            push_rule(rules, &n, "allow", "subscribe", "%s", req->subscribe_topic);
            rules[n - 1].retain = true; /* a new subscriber sees the current count at once */
        }
    } else {
        push_rule(rules, &n, "allow", "subscribe", "%s/+/+", prefix);
        push_rule(rules, &n, "allow", "subscribe", "$share/+/%s/+/+", prefix);
        if (control != NULL)
            push_rule(rules, &n, "allow", "publish", "%s/+/+", control);
        if (req->live_prefix != NULL) {
            push_rule(rules, &n, "allow", "publish", "%s/#", req->live_prefix);
            rules[n - 1].retain = true;
        }
    }
    for (size_t i = 0; i < sizeof(dollar_denies) / sizeof(dollar_denies[0]); i++)
        push_rule(rules, &n, "deny", "all", "%s", dollar_denies[i]);
    push_rule(rules, &n, "deny", "all", "#");
    return n;
}

/* Refuses a request that cannot be minted, with a reason. */
static bool request_valid(const struct hb_token_request *req, const char *prefix,
                          const char *device, char *err, size_t errlen)
{
    bool device_role = req->role == HB_ROLE_DEVICE;
    if (!hb_topic_prefix_valid(prefix)) {
        hb_set_err(err, errlen, "invalid topic prefix '%.80s'", prefix);
        return false;
    }
    if (req->control_prefix != NULL &&
        (!hb_topic_prefix_valid(req->control_prefix) || strcmp(req->control_prefix, prefix) == 0)) {
        hb_set_err(err, errlen,
                   "invalid control prefix '%.80s': a topic prefix other than the topic prefix",
                   req->control_prefix);
        return false;
    }
    const char *live = req->live_prefix;
    if (live != NULL && (device_role || !hb_topic_prefix_valid(live) || strcmp(live, prefix) == 0 ||
                         (req->control_prefix != NULL && strcmp(live, req->control_prefix) == 0))) {
        hb_set_err(err, errlen,
                   "invalid live prefix '%.80s': a consumer's topic prefix other than the topic "
                   "and control prefixes",
                   live);
        return false;
    }
    const char *extra = req->subscribe_topic;
    if (extra != NULL && (!device_role || strlen(extra) >= HB_ACL_TOPIC_MAX || extra[0] == '\0' ||
                          extra[0] == '$' || strpbrk(extra, "+#") != NULL)) {
        hb_set_err(err, errlen, "invalid subscribe topic '%.80s': one concrete topic of a device",
                   extra);
        return false;
    }
    if (req->role != HB_ROLE_DEVICE && req->role != HB_ROLE_CONSUMER) {
        hb_set_err(err, errlen, "unknown role");
        return false;
    }
    if (device_role && (req->account == NULL || !hb_id_valid(req->account, strlen(req->account)))) {
        hb_set_err(err, errlen, "invalid account id '%.80s': 1-64 bytes of A-Z a-z 0-9 . _ - :",
                   req->account ? req->account : "");
        return false;
    }
    if (device_role && device != NULL && !hb_id_valid(device, strlen(device))) {
        hb_set_err(err, errlen,
                   "invalid device id '%.80s': 1-64 bytes of A-Z a-z 0-9 . _ - :", device);
        return false;
    }
    if (req->ttl_s <= 0 || req->now_s < 0 || req->now_s > HB_JWT_TIME_MAX ||
        req->ttl_s > HB_JWT_TIME_MAX - req->now_s) {
        hb_set_err(err, errlen, "the lifetime must be a positive number of seconds");
        return false;
    }
    return true;
}

/* The claims of a request as compact JSON with members in name order, or NULL with a
 * reason. */
static char *mint_claims(const struct hb_token_request *req, char *err, size_t errlen)
{
    const char *prefix = req->topic_prefix ? req->topic_prefix : HB_DEFAULT_TOPIC_PREFIX;
    bool device_role = req->role == HB_ROLE_DEVICE;
    const char *device = req->device && req->device[0] ? req->device : NULL;
    if (!request_valid(req, prefix, device, err, errlen))
        return NULL;

    unsigned char random[16];
    if (RAND_bytes(random, sizeof(random)) != 1) {
        hb_set_err(err, errlen, "no randomness for the token id (RAND_bytes failed)");
        return NULL;
    }
    char jti[2 * sizeof(random) + 1];
    for (size_t i = 0; i < sizeof(random); i++)
        snprintf(jti + 2 * i, 3, "%02x", random[i]);

    struct mint_rule rules[MINT_RULES_MAX];
    size_t n_rules = mint_rules(req, prefix, device, rules);

    char *text = NULL;
    cJSON *claims = cJSON_CreateObject();
    cJSON *acl = claims ? cJSON_AddArrayToObject(claims, "acl") : NULL;
    bool ok = acl != NULL;
    for (size_t i = 0; ok && i < n_rules; i++)
        ok = add_rule(acl, &rules[i]);
    ok = ok &&
         (!device_role || device == NULL || cJSON_AddStringToObject(claims, "device", device)) &&
         add_int(claims, "exp", req->now_s + req->ttl_s) && add_int(claims, "iat", req->now_s) &&
         cJSON_AddStringToObject(claims, "jti", jti) &&
         add_int(claims, "nbf", req->now_s - MINT_NBF_LEEWAY_S) &&
         cJSON_AddStringToObject(claims, "role", device_role ? "device" : "consumer") &&
         cJSON_AddStringToObject(claims, "sub", device_role ? req->account : "consumer");
    if (ok)
        text = cJSON_PrintUnformatted(claims);
    cJSON_Delete(claims);
    if (text == NULL) {
        hb_set_err(err, errlen, "out of memory");
        return NULL;
    }
    /* A subscribe topic is any MQTT topic: refuse one that is not UTF-8 (no JSON reader
     * accepts it; libjwt refused it too). */
    int64_t unused_ts;
    if (hb_json_check(text, strlen(text), &unused_ts) != HB_JSON_OBJECT) {
        hb_set_err(err, errlen, "the claims are not valid JSON (a topic that is not UTF-8?)");
        cJSON_free(text);
        return NULL;
    }
    return text;
}

/* The ECDSA P-256 SHA-256 signature of in[0..n) in JWS form (r || s) into sig. */
static bool sign_es256(EVP_PKEY *pkey, const char *in, size_t n,
                       unsigned char sig[MINT_ES256_SIG_LEN])
{
    unsigned char der[MINT_DER_SIG_MAX];
    size_t der_len = sizeof(der);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    bool ok = ctx != NULL && EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, pkey) == 1 &&
              EVP_DigestSign(ctx, der, &der_len, (const unsigned char *)in, n) == 1;
    EVP_MD_CTX_free(ctx);
    const unsigned char *p = der;
    ECDSA_SIG *es = ok ? d2i_ECDSA_SIG(NULL, &p, (long)der_len) : NULL;
    if (es == NULL)
        return false;
    const BIGNUM *r, *s;
    ECDSA_SIG_get0(es, &r, &s);
    ok = BN_bn2binpad(r, sig, MINT_P256_COORD_LEN) == MINT_P256_COORD_LEN &&
         BN_bn2binpad(s, sig + MINT_P256_COORD_LEN, MINT_P256_COORD_LEN) == MINT_P256_COORD_LEN;
    ECDSA_SIG_free(es);
    return ok;
}

/* The JWS signature of in[0..n) with key into sig; its length in *sig_len. */
static bool sign_jws(const struct hb_key *key, const char *in, size_t n,
                     unsigned char sig[MINT_ES256_SIG_LEN], size_t *sig_len)
{
    if (key->alg == HB_TOKEN_ES256) {
        *sig_len = MINT_ES256_SIG_LEN;
        return key->pkey != NULL && sign_es256(key->pkey, in, n, sig);
    }
    unsigned int mac_len = 0;
    *sig_len = MINT_HS256_SIG_LEN;
    return key->len <= INT32_MAX &&
           HMAC(EVP_sha256(), key->material, (int)key->len, (const unsigned char *)in, n, sig,
                &mac_len) != NULL &&
           mac_len == MINT_HS256_SIG_LEN;
}

char *hb_token_mint(const struct hb_key *key, const struct hb_token_request *req, char *err,
                    size_t errlen)
{
    if (key->material == NULL || !key->can_sign) {
        hb_set_err(err, errlen, "key '%s' cannot sign (a public key only verifies)", key->kid);
        return NULL;
    }
    /* The header libjwt wrote, byte for byte: members in name order. A kid is an id (checked
     * at load), so it needs no JSON escaping. */
    char header[sizeof("{\"alg\":\"ES256\",\"kid\":\"\",\"typ\":\"JWT\"}") + HB_ID_MAX];
    if (!hb_id_valid(key->kid, strlen(key->kid))) {
        hb_set_err(err, errlen, "key id '%.80s' is not an id", key->kid);
        return NULL;
    }
    snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
             hb_key_alg_name(key->alg), key->kid);
    char *claims = mint_claims(req, err, errlen);
    if (claims == NULL)
        return NULL;
    size_t header_len = strlen(header), claims_len = strlen(claims);
    size_t sig_max = key->alg == HB_TOKEN_ES256 ? MINT_ES256_SIG_LEN : MINT_HS256_SIG_LEN;
    size_t total = hb_jwt_b64url_len(header_len) + 1 + hb_jwt_b64url_len(claims_len) + 1 +
                   hb_jwt_b64url_len(sig_max);
    char *token = NULL;
    if (total > HB_TOKEN_MAX) {
        hb_set_err(err, errlen, "the token would be longer than %d bytes", HB_TOKEN_MAX);
    } else if ((token = malloc(total + 1)) == NULL) {
        hb_set_err(err, errlen, "out of memory");
    } else {
        /* header.claims is the signing input; the signature goes after it. */
        size_t o = hb_jwt_b64url_encode(header, header_len, token);
        token[o++] = '.';
        o += hb_jwt_b64url_encode(claims, claims_len, token + o);
        unsigned char sig[MINT_ES256_SIG_LEN];
        size_t sig_len;
        if (sign_jws(key, token, o, sig, &sig_len)) {
            token[o++] = '.';
            hb_jwt_b64url_encode(sig, sig_len, token + o);
        } else {
            hb_set_err(err, errlen, "OpenSSL cannot sign with key '%s' (%s)", key->kid,
                       hb_key_alg_name(key->alg));
            free(token);
            token = NULL;
        }
    }
    cJSON_free(claims);
    return token;
}
