/* Device and consumer credentials (JWT, HS256 or ES256) and the acl claim's topic matching.
 * libjwt 1.10 checks only the signature, with whatever algorithm the header names, so the header
 * is decoded here first: the key is chosen by kid, any algorithm but that key's own is refused,
 * and exp, nbf, iat and every claim are checked after libjwt has verified the signature. All
 * crypto is libjwt and OpenSSL; this file only wipes key bytes. */
#include "token.h"

#include "config.h"
#include "ids.h"
#include "secretfile.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jwt.h>
#include <math.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_FILE_MAX (64 * 1024)
#define HMAC_SECRET_MIN 32
#define CLOCK_LEEWAY_S 30
/* Largest Unix time accepted in a claim: year 2286, far inside a double's exact integers. */
#define CLAIM_TIME_MAX INT64_C(9999999999)
#define HEADER_MEMBERS_MAX 16
#define CLAIM_MEMBERS_MAX 64
/* A rule topic after placeholder expansion: each placeholder grows to at most an id. */
#define EXPANDED_TOPIC_MAX (HB_ACL_TOPIC_MAX + 8 * HB_ID_MAX)

static const char *const error_names[HB_TOKEN_ERROR_COUNT] = {
    [HB_TOKEN_OK] = "ok",
    [HB_TOKEN_MALFORMED] = "malformed",
    [HB_TOKEN_BAD_ALG] = "bad_alg",
    [HB_TOKEN_UNKNOWN_KID] = "unknown_kid",
    [HB_TOKEN_BAD_SIGNATURE] = "bad_signature",
    [HB_TOKEN_EXPIRED] = "expired",
    [HB_TOKEN_NOT_YET_VALID] = "not_yet_valid",
    [HB_TOKEN_BAD_CLAIMS] = "bad_claims",
};

const char *hb_token_error_name(enum hb_token_error e)
{
    if ((int)e < 0 || e >= HB_TOKEN_ERROR_COUNT)
        return "unknown";
    return error_names[e];
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static const char *alg_name(enum hb_token_alg alg)
{
    return alg == HB_TOKEN_ES256 ? "ES256" : "HS256";
}

static jwt_alg_t alg_jwt(enum hb_token_alg alg)
{
    return alg == HB_TOKEN_ES256 ? JWT_ALG_ES256 : JWT_ALG_HS256;
}

/* ---- Keys ---------------------------------------------------------------------------------- */

static bool load_secret(struct hb_key *key, const char *path, const unsigned char *buf, size_t len,
                        char *err, size_t errlen)
{
    len = hb_secret_trim_newline((const char *)buf, len);
    if (len < HMAC_SECRET_MIN) {
        set_err(err, errlen, "%s: an HMAC secret needs at least %d bytes, this one has %zu", path,
                HMAC_SECRET_MIN, len);
        return false;
    }
    key->material = malloc(len);
    if (key->material == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        return false;
    }
    memcpy(key->material, buf, len);
    key->len = len;
    key->alg = HB_TOKEN_HS256;
    key->can_sign = true;
    return true;
}

/* OpenSSL asks for a passphrase when a key is encrypted: refuse instead of prompting. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *u)
{
    *(bool *)u = true;
    return -1;
}

/* Serializes pkey as PEM (the private key in PKCS#8 when private, else the public key) into a
 * malloc'd buffer. */
static bool pem_of(EVP_PKEY *pkey, bool private, unsigned char **out, size_t *len)
{
    BIO *bio = BIO_new(private ? BIO_s_secmem() : BIO_s_mem());
    if (bio == NULL)
        return false;
    bool ok = private ? PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) == 1
                      : PEM_write_bio_PUBKEY(bio, pkey) == 1;
    char *data = NULL;
    long n = ok ? BIO_get_mem_data(bio, &data) : 0;
    /* One more byte for a NUL, so the PEM text is also a C string (len excludes it). */
    if (ok && n > 0 && (*out = malloc((size_t)n + 1)) != NULL) {
        memcpy(*out, data, (size_t)n);
        (*out)[n] = '\0';
        *len = (size_t)n;
    } else {
        ok = false;
    }
    BIO_free(bio); /* a memory BIO's buffer is cleared when freed */
    return ok;
}

static bool load_pem(struct hb_key *key, const char *path, const unsigned char *buf, size_t len,
                     char *err, size_t errlen)
{
    static const char public_label[] = "-----BEGIN PUBLIC KEY-----";
    bool public_only =
        len >= sizeof(public_label) - 1 && memcmp(buf, public_label, sizeof(public_label) - 1) == 0;
    BIO *bio = BIO_new_mem_buf(buf, (int)len);
    if (bio == NULL) {
        set_err(err, errlen, "%s: out of memory", path);
        return false;
    }
    bool asked_passphrase = false;
    EVP_PKEY *pkey = public_only
                         ? PEM_read_bio_PUBKEY(bio, NULL, refuse_passphrase, &asked_passphrase)
                         : PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, &asked_passphrase);
    BIO_free(bio);
    if (pkey == NULL) {
        if (asked_passphrase)
            set_err(err, errlen, "%s: the key is encrypted; give an unencrypted key", path);
        else
            set_err(err, errlen,
                    "%s: not a readable PEM %s key (expected an EC P-256 key, e.g. from "
                    "'openssl ecparam -name prime256v1 -genkey -noout')",
                    path, public_only ? "public" : "private");
        return false;
    }
    bool ok = false;
    char group[64] = "";
    size_t group_len = 0;
    if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC) {
        const char *type = OBJ_nid2sn(EVP_PKEY_get_base_id(pkey));
        set_err(err, errlen, "%s: a %s key; ES256 needs an EC P-256 key", path,
                type ? type : "non-EC");
    } else if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) != 1 ||
               OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
        set_err(err, errlen, "%s: an EC key on curve %s; ES256 needs P-256 (prime256v1)", path,
                group[0] ? group : "(unknown)");
    } else if (!pem_of(pkey, false, &key->public_pem, &key->public_len) ||
               !pem_of(pkey, !public_only, &key->material, &key->len)) {
        set_err(err, errlen, "%s: cannot serialize the key (out of memory?)", path);
    } else {
        key->alg = HB_TOKEN_ES256;
        key->can_sign = !public_only;
        ok = true;
    }
    EVP_PKEY_free(pkey);
    return ok;
}

bool hb_key_load(struct hb_key *key, const char *kid, const char *path, char *err, size_t errlen)
{
    memset(key, 0, sizeof(*key));
    if (kid == NULL || !hb_id_valid(kid, strlen(kid))) {
        set_err(err, errlen,
                "key id '%.80s' is not 1-64 bytes of A-Z a-z 0-9 . _ - :", kid ? kid : "");
        return false;
    }
    char *text;
    size_t len;
    if (!hb_secret_file_read(path, KEY_FILE_MAX, &text, &len, err, errlen))
        return false;
    const unsigned char *buf = (const unsigned char *)text;
    bool ok = len >= 10 && memcmp(buf, "-----BEGIN", 10) == 0
                  ? load_pem(key, path, buf, len, err, errlen)
                  : load_secret(key, path, buf, len, err, errlen);
    hb_secret_free(text, len + 1);
    if (!ok) {
        hb_key_finish(key);
        return false;
    }
    memcpy(key->kid, kid, strlen(kid) + 1);
    return true;
}

bool hb_key_default_kid(const char *path, char *kid, size_t kidlen)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (len == 0 || len >= kidlen || !hb_id_valid(base, len))
        return false;
    memcpy(kid, base, len);
    kid[len] = '\0';
    return true;
}

void hb_key_finish(struct hb_key *key)
{
    hb_secret_free(key->material, key->len);
    hb_secret_free(key->public_pem, key->public_len);
    memset(key, 0, sizeof(*key));
}

bool hb_keyring_add(struct hb_keyring *ring, struct hb_key *key, char *err, size_t errlen)
{
    if (ring->n == HB_KEYRING_MAX) {
        set_err(err, errlen, "at most %d keys at once", HB_KEYRING_MAX);
        return false;
    }
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i].kid, key->kid) == 0) {
            set_err(err, errlen, "two keys with the id '%s'", key->kid);
            return false;
        }
    }
    ring->keys[ring->n++] = *key;
    memset(key, 0, sizeof(*key));
    return true;
}

void hb_keyring_finish(struct hb_keyring *ring)
{
    for (size_t i = 0; i < ring->n; i++)
        hb_key_finish(&ring->keys[i]);
    ring->n = 0;
}

/* ---- Minting ------------------------------------------------------------------------------- */

static bool add_int(cJSON *obj, const char *name, int64_t v)
{
    /* Raw digits: cJSON would print through a double and an int. */
    char digits[32];
    snprintf(digits, sizeof(digits), "%" PRId64, v);
    return cJSON_AddRawToObject(obj, name, digits) != NULL;
}

static bool add_rule(cJSON *acl, const char *permission, const char *action, const char *topic)
{
    cJSON *rule = cJSON_CreateObject();
    if (rule == NULL)
        return false;
    cJSON_AddItemToArray(acl, rule);
    return cJSON_AddStringToObject(rule, "permission", permission) != NULL &&
           cJSON_AddStringToObject(rule, "action", action) != NULL &&
           cJSON_AddStringToObject(rule, "topic", topic) != NULL;
}

/* The claims of a request as compact JSON, or NULL with a reason. */
static char *mint_claims(const struct hb_token_request *req, char *err, size_t errlen)
{
    const char *prefix = req->topic_prefix ? req->topic_prefix : HB_DEFAULT_TOPIC_PREFIX;
    bool device_role = req->role == HB_ROLE_DEVICE;
    const char *device = req->device && req->device[0] ? req->device : NULL;
    if (!hb_topic_prefix_valid(prefix)) {
        set_err(err, errlen, "invalid topic prefix '%.80s'", prefix);
        return NULL;
    }
    const char *control = req->control_prefix;
    if (control != NULL && !hb_topic_prefix_valid(control)) {
        set_err(err, errlen, "invalid control prefix '%.80s'", control);
        return NULL;
    }
    const char *extra = device_role ? req->subscribe_topic : NULL;
    if (extra != NULL && (strlen(extra) >= HB_ACL_TOPIC_MAX || extra[0] == '\0' ||
                          extra[0] == '$' || strpbrk(extra, "+#") != NULL)) {
        set_err(err, errlen, "invalid subscribe topic '%.80s': one concrete topic", extra);
        return NULL;
    }
    if (req->role != HB_ROLE_DEVICE && req->role != HB_ROLE_CONSUMER) {
        set_err(err, errlen, "unknown role");
        return NULL;
    }
    if (device_role && (req->account == NULL || !hb_id_valid(req->account, strlen(req->account)))) {
        set_err(err, errlen, "invalid account id '%.80s': 1-64 bytes of A-Z a-z 0-9 . _ - :",
                req->account ? req->account : "");
        return NULL;
    }
    if (device_role && device != NULL && !hb_id_valid(device, strlen(device))) {
        set_err(err, errlen,
                "invalid device id '%.80s': 1-64 bytes of A-Z a-z 0-9 . _ - :", device);
        return NULL;
    }
    if (req->ttl_s <= 0 || req->now_s < 0 || req->now_s > CLAIM_TIME_MAX ||
        req->ttl_s > CLAIM_TIME_MAX - req->now_s) {
        set_err(err, errlen, "the lifetime must be a positive number of seconds");
        return NULL;
    }

    unsigned char random[16];
    if (RAND_bytes(random, sizeof(random)) != 1) {
        set_err(err, errlen, "no randomness for the token id (RAND_bytes failed)");
        return NULL;
    }
    char jti[2 * sizeof(random) + 1];
    for (size_t i = 0; i < sizeof(random); i++)
        snprintf(jti + 2 * i, 3, "%02x", random[i]);

    char topic[4][HB_ACL_TOPIC_MAX];
    if (device_role)
        snprintf(topic[0], sizeof(topic[0]), "%s/%s/${clientid}", prefix, req->account);
    else {
        snprintf(topic[0], sizeof(topic[0]), "%s/+/+", prefix);
        snprintf(topic[1], sizeof(topic[1]), "$share/+/%s/+/+", prefix);
    }
    snprintf(topic[2], sizeof(topic[2]), "#");
    topic[3][0] = '\0';
    if (control != NULL && device_role && device != NULL)
        snprintf(topic[3], sizeof(topic[3]), "%s/%s/%s", control, req->account, device);
    else if (control != NULL && !device_role)
        snprintf(topic[3], sizeof(topic[3]), "%s/+/+", control);

    char *text = NULL;
    cJSON *claims = cJSON_CreateObject();
    cJSON *acl = claims ? cJSON_AddArrayToObject(claims, "acl") : NULL;
    bool ok = acl != NULL &&
              cJSON_AddStringToObject(claims, "sub", device_role ? req->account : "consumer") &&
              add_int(claims, "iat", req->now_s) && add_int(claims, "nbf", req->now_s) &&
              add_int(claims, "exp", req->now_s + req->ttl_s) &&
              cJSON_AddStringToObject(claims, "jti", jti) &&
              cJSON_AddStringToObject(claims, "role", device_role ? "device" : "consumer") &&
              (!device_role || device == NULL || cJSON_AddStringToObject(claims, "device", device));
    if (ok && device_role)
        ok = add_rule(acl, "allow", "publish", topic[0]);
    else if (ok)
        ok = add_rule(acl, "allow", "subscribe", topic[0]) &&
             add_rule(acl, "allow", "subscribe", topic[1]);
    if (ok && topic[3][0] != '\0')
        ok = add_rule(acl, "allow", device_role ? "subscribe" : "publish", topic[3]);
    if (ok && extra != NULL)
        ok = add_rule(acl, "allow", "subscribe", extra);
    ok = ok && add_rule(acl, "deny", "all", topic[2]);
    if (ok)
        text = cJSON_PrintUnformatted(claims);
    if (text == NULL)
        set_err(err, errlen, "out of memory");
    cJSON_Delete(claims);
    return text;
}

char *hb_token_mint(const struct hb_key *key, const struct hb_token_request *req, char *err,
                    size_t errlen)
{
    if (key->material == NULL || !key->can_sign) {
        set_err(err, errlen, "key '%s' cannot sign (a public key only verifies)", key->kid);
        return NULL;
    }
    char *claims = mint_claims(req, err, errlen);
    if (claims == NULL)
        return NULL;
    jwt_t *jwt = NULL;
    char *token = NULL;
    int rc = jwt_new(&jwt);
    if (rc == 0)
        rc = jwt_set_alg(jwt, alg_jwt(key->alg), key->material, (int)key->len);
    if (rc == 0)
        rc = jwt_add_header(jwt, "kid", key->kid);
    if (rc == 0)
        rc = jwt_add_header(jwt, "typ", "JWT");
    if (rc == 0)
        rc = jwt_add_grants_json(jwt, claims);
    if (rc == 0 && (token = jwt_encode_str(jwt)) == NULL)
        rc = errno ? errno : EINVAL;
    if (rc != 0)
        set_err(err, errlen, "libjwt cannot sign with key '%s' (%s): %s", key->kid,
                alg_name(key->alg), strerror(rc));
    else if (strlen(token) > HB_TOKEN_MAX) {
        set_err(err, errlen, "the token would be longer than %d bytes", HB_TOKEN_MAX);
        free(token);
        token = NULL;
    }
    jwt_free(jwt); /* scrubs its copy of the key */
    cJSON_free(claims);
    return token;
}

/* ---- Verification -------------------------------------------------------------------------- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

/* Decodes unpadded base64url s[0..n) into a malloc'd NUL-terminated buffer. NULL when the text
 * is not canonical base64url or the bytes contain a NUL (no JSON text does). */
static char *b64url_decode_text(const char *s, size_t n)
{
    if (n == 0 || n % 4 == 1)
        return NULL;
    char *out = malloc(n / 4 * 3 + 3);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value((unsigned char)s[i]);
        if (v < 0)
            goto bad;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o] = (char)((acc >> bits) & 0xff);
            if (out[o++] == '\0')
                goto bad;
        }
    }
    if ((acc & ((1u << bits) - 1)) != 0) /* leftover bits must be zero */
        goto bad;
    out[o] = '\0';
    return out;
bad:
    free(out);
    return NULL;
}

/* Parses base64url JSON text as an object without duplicate member names. */
static cJSON *decode_object(const char *s, size_t n, int members_max)
{
    char *text = b64url_decode_text(s, n);
    if (text == NULL)
        return NULL;
    cJSON *obj = cJSON_ParseWithOpts(text, NULL, true);
    free(text);
    if (obj == NULL)
        return NULL;
    int count = 0;
    bool ok = cJSON_IsObject(obj);
    for (const cJSON *a = ok ? obj->child : NULL; ok && a != NULL; a = a->next) {
        ok = ++count <= members_max && a->string != NULL;
        for (const cJSON *b = obj->child; ok && b != a; b = b->next)
            ok = strcmp(a->string, b->string) != 0;
    }
    if (!ok) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

static const struct hb_key *ring_find(const struct hb_keyring *ring, const char *kid)
{
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i].kid, kid) == 0)
            return &ring->keys[i];
    }
    return NULL;
}

/* Reads a string member that must be an id into out. */
static bool claim_id(const cJSON *claims, const char *name, char out[HB_ID_MAX + 1])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (!cJSON_IsString(v) || !hb_id_valid(v->valuestring, strlen(v->valuestring)))
        return false;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return true;
}

/* A NumericDate: whole seconds in [0, CLAIM_TIME_MAX]. Returns 1 when present and valid,
 * 0 when absent, -1 when malformed. */
static int claim_time(const cJSON *claims, const char *name, int64_t *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (v == NULL)
        return 0;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < 0 ||
        v->valuedouble > (double)CLAIM_TIME_MAX || floor(v->valuedouble) != v->valuedouble)
        return -1;
    *out = (int64_t)v->valuedouble;
    return 1;
}

bool hb_token_peek_exp(const char *token, size_t len, int64_t *exp_s)
{
    if (len > HB_TOKEN_MAX)
        return false;
    const char *dot1 = memchr(token, '.', len);
    const char *end = token + len;
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', (size_t)(end - dot1 - 1)) : NULL;
    if (dot2 == NULL)
        return false;
    cJSON *claims = decode_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), CLAIM_MEMBERS_MAX);
    if (claims == NULL)
        return false;
    bool ok = claim_time(claims, "exp", exp_s) == 1;
    cJSON_Delete(claims);
    return ok;
}

/* A topic filter: non-empty; + and # only as whole levels, # only last. With placeholders,
 * "${" must start ${clientid} or ${username}. */
static bool filter_valid(const char *f, bool wildcards, bool placeholders)
{
    if (f[0] == '\0')
        return false;
    for (const char *p = f; *p; p++) {
        bool level_start = p == f || p[-1] == '/';
        if (*p == '+' || *p == '#') {
            if (!wildcards || !level_start || (p[1] != '\0' && p[1] != '/'))
                return false;
            if (*p == '#' && p[1] != '\0')
                return false;
        } else if (*p == '$' && p[1] == '{') {
            if (!placeholders ||
                (strncmp(p, "${clientid}", 11) != 0 && strncmp(p, "${username}", 11) != 0))
                return false;
        }
    }
    return true;
}

static bool parse_rule(const cJSON *item, struct hb_acl_rule *rule)
{
    if (!cJSON_IsObject(item))
        return false;
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(item, "permission");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(item, "action");
    const cJSON *topic = cJSON_GetObjectItemCaseSensitive(item, "topic");
    if (!cJSON_IsString(perm) || !cJSON_IsString(action) || !cJSON_IsString(topic))
        return false;
    if (strcmp(perm->valuestring, "allow") == 0)
        rule->allow = true;
    else if (strcmp(perm->valuestring, "deny") == 0)
        rule->allow = false;
    else
        return false;
    if (strcmp(action->valuestring, "publish") == 0)
        rule->action = HB_ACL_PUBLISH;
    else if (strcmp(action->valuestring, "subscribe") == 0)
        rule->action = HB_ACL_SUBSCRIBE;
    else if (strcmp(action->valuestring, "all") == 0)
        rule->action = HB_ACL_ALL;
    else
        return false;
    size_t len = strlen(topic->valuestring);
    if (len >= HB_ACL_TOPIC_MAX || !filter_valid(topic->valuestring, true, true))
        return false;
    memcpy(rule->topic, topic->valuestring, len + 1);
    return true;
}

static enum hb_token_error check_claims(const cJSON *claims, int64_t now_s,
                                        struct hb_token_claims *out)
{
    int has_nbf;
    if (claim_time(claims, "exp", &out->exp) != 1 || claim_time(claims, "iat", &out->iat) != 1 ||
        (has_nbf = claim_time(claims, "nbf", &out->nbf)) < 0)
        return HB_TOKEN_BAD_CLAIMS;
    if (!has_nbf)
        out->nbf = out->iat;
    if (now_s >= out->exp)
        return HB_TOKEN_EXPIRED;
    if (now_s + CLOCK_LEEWAY_S < out->nbf || now_s + CLOCK_LEEWAY_S < out->iat)
        return HB_TOKEN_NOT_YET_VALID;

    const cJSON *role = cJSON_GetObjectItemCaseSensitive(claims, "role");
    if (!cJSON_IsString(role))
        return HB_TOKEN_BAD_CLAIMS;
    if (strcmp(role->valuestring, "device") == 0)
        out->role = HB_ROLE_DEVICE;
    else if (strcmp(role->valuestring, "consumer") == 0)
        out->role = HB_ROLE_CONSUMER;
    else
        return HB_TOKEN_BAD_CLAIMS;
    if (!claim_id(claims, "sub", out->sub) ||
        (out->role == HB_ROLE_CONSUMER && strcmp(out->sub, "consumer") != 0))
        return HB_TOKEN_BAD_CLAIMS;
    if (cJSON_GetObjectItemCaseSensitive(claims, "device") != NULL &&
        (out->role != HB_ROLE_DEVICE || !claim_id(claims, "device", out->device)))
        return HB_TOKEN_BAD_CLAIMS;
    if (cJSON_GetObjectItemCaseSensitive(claims, "jti") != NULL &&
        !claim_id(claims, "jti", out->jti))
        return HB_TOKEN_BAD_CLAIMS;

    const cJSON *acl = cJSON_GetObjectItemCaseSensitive(claims, "acl");
    int n = cJSON_IsArray(acl) ? cJSON_GetArraySize(acl) : 0;
    if (n < 1 || n > HB_ACL_RULES_MAX)
        return HB_TOKEN_BAD_CLAIMS;
    const cJSON *item;
    cJSON_ArrayForEach(item, acl)
    {
        if (!parse_rule(item, &out->rules[out->n_rules++]))
            return HB_TOKEN_BAD_CLAIMS;
    }
    return HB_TOKEN_OK;
}

/* The header checks, before any key is used: returns the key to verify with in *key. */
static enum hb_token_error check_header(const struct hb_keyring *ring, const cJSON *header,
                                        const struct hb_key **key)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(header, "kid");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
    /* crit names extensions a verifier must understand; this one understands none. */
    if (cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL ||
        (typ != NULL && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0)))
        return HB_TOKEN_MALFORMED;
    if (!cJSON_IsString(alg) || strcasecmp(alg->valuestring, "none") == 0)
        return HB_TOKEN_BAD_ALG;
    if (!cJSON_IsString(kid) || (*key = ring_find(ring, kid->valuestring)) == NULL)
        return HB_TOKEN_UNKNOWN_KID;
    if (strcmp(alg->valuestring, alg_name((*key)->alg)) != 0)
        return HB_TOKEN_BAD_ALG;
    return HB_TOKEN_OK;
}

enum hb_token_error hb_token_verify(const struct hb_keyring *ring, const char *token, size_t len,
                                    int64_t now_s, struct hb_token_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (token == NULL || len == 0 || len > HB_TOKEN_MAX)
        return HB_TOKEN_MALFORMED;
    /* Exactly header.payload.signature, all base64url. */
    size_t dots[2], n_dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (n_dots == 2)
                return HB_TOKEN_MALFORMED;
            dots[n_dots++] = i;
        } else if (b64url_value((unsigned char)token[i]) < 0) {
            return HB_TOKEN_MALFORMED;
        }
    }
    if (n_dots != 2)
        return HB_TOKEN_MALFORMED;

    cJSON *header = decode_object(token, dots[0], HEADER_MEMBERS_MAX);
    cJSON *claims = decode_object(token + dots[0] + 1, dots[1] - dots[0] - 1, CLAIM_MEMBERS_MAX);
    enum hb_token_error e = HB_TOKEN_OK;
    const struct hb_key *key = NULL;
    if (header == NULL || claims == NULL)
        e = HB_TOKEN_MALFORMED;
    else
        e = check_header(ring, header, &key);
    if (e == HB_TOKEN_OK && dots[1] + 1 == len)
        e = HB_TOKEN_BAD_SIGNATURE; /* no signature at all */
    if (e == HB_TOKEN_OK) {
        char text[HB_TOKEN_MAX + 1];
        memcpy(text, token, len);
        text[len] = '\0';
        const unsigned char *vkey = key->alg == HB_TOKEN_ES256 ? key->public_pem : key->material;
        int vlen = (int)(key->alg == HB_TOKEN_ES256 ? key->public_len : key->len);
        jwt_t *jwt = NULL;
        /* A key is always given: without one, libjwt 1.10 skips the signature check. */
        if (vkey == NULL || jwt_decode(&jwt, text, vkey, vlen) != 0)
            e = HB_TOKEN_BAD_SIGNATURE;
        else if (jwt_get_alg(jwt) != alg_jwt(key->alg))
            e = HB_TOKEN_BAD_ALG; /* the header parsers disagreed: never trust that token */
        jwt_free(jwt);
    }
    if (e == HB_TOKEN_OK)
        e = check_claims(claims, now_s, out);
    if (e == HB_TOKEN_OK)
        memcpy(out->kid, key->kid, sizeof(out->kid));
    else
        memset(out, 0, sizeof(*out));
    cJSON_Delete(header);
    cJSON_Delete(claims);
    return e;
}

/* ---- ACL ----------------------------------------------------------------------------------- */

static bool placeholder_value_ok(const char *v)
{
    return v != NULL && hb_id_valid(v, strlen(v));
}

/* Replaces ${clientid} and ${username} in rule into out; false when a placeholder's value is not
 * an id, another "${" appears, or the result does not fit. */
static bool expand(const char *rule, const char *client_id, const char *username, char *out,
                   size_t outlen)
{
    size_t o = 0;
    for (const char *p = rule; *p;) {
        const char *value = NULL;
        size_t skip = 1;
        if (p[0] == '$' && p[1] == '{') {
            if (strncmp(p, "${clientid}", 11) == 0)
                value = client_id;
            else if (strncmp(p, "${username}", 11) == 0)
                value = username;
            else
                return false;
            if (!placeholder_value_ok(value))
                return false;
            skip = 11;
        }
        size_t n = value ? strlen(value) : 1;
        if (o + n >= outlen)
            return false;
        memcpy(out + o, value ? value : p, n);
        o += n;
        p += skip;
    }
    out[o] = '\0';
    return true;
}

/* Whether every topic that filter req matches is matched by filter rule (both valid). A
 * concrete topic is a filter that matches itself, so this is also plain topic matching. A
 * wildcard in the first level never matches a level starting with '$' (MQTT 4.7.2). */
static bool filter_covers(const char *rule, const char *req)
{
    const char *r = rule, *q = req;
    for (bool first = true;; first = false) {
        size_t rl = strcspn(r, "/"), ql = strcspn(q, "/");
        bool dollar = first && q[0] == '$';
        if (rl == 1 && r[0] == '#')
            return !dollar;
        if (ql == 1 && q[0] == '#')
            return false; /* the request reaches deeper than this rule level allows */
        if (rl == 1 && r[0] == '+') {
            if (dollar)
                return false;
        } else if (rl != ql || memcmp(r, q, rl) != 0) {
            return false; /* a literal level covers only itself, never a '+' */
        }
        r += rl;
        q += ql;
        if (*q == '\0')
            return *r == '\0' || strcmp(r, "/#") == 0; /* "a/#" also matches "a" */
        if (*r == '\0')
            return false;
        r++;
        q++;
    }
}

/* "$share/<group>/F" -> "F"; anything else unchanged. NULL when a $share filter is cut short. */
static const char *strip_share(const char *filter)
{
    if (strncmp(filter, "$share/", 7) != 0)
        return filter;
    const char *slash = strchr(filter + 7, '/');
    return slash && slash[1] ? slash + 1 : NULL;
}

static bool rule_matches(const struct hb_acl_rule *rule, const char *client_id,
                         const char *username, enum hb_acl_action action, const char *topic)
{
    bool action_ok = action == HB_ACL_READ ? (rule->action & HB_ACL_SUBSCRIBE) != 0
                                           : (rule->action & action) != 0;
    char filter[EXPANDED_TOPIC_MAX];
    if (!action_ok || !expand(rule->topic, client_id, username, filter, sizeof(filter)) ||
        !filter_valid(filter, true, false))
        return false;
    const char *f = action == HB_ACL_READ ? strip_share(filter) : filter;
    return f != NULL && filter_covers(f, topic);
}

bool hb_acl_allows(const struct hb_token_claims *claims, const char *client_id,
                   const char *username, enum hb_acl_action action, const char *topic)
{
    if (claims == NULL || topic == NULL)
        return false;
    if (action != HB_ACL_PUBLISH && action != HB_ACL_SUBSCRIBE && action != HB_ACL_READ)
        return false;
    if (!filter_valid(topic, action == HB_ACL_SUBSCRIBE, false))
        return false;
    if (claims->device[0] && (client_id == NULL || strcmp(client_id, claims->device) != 0))
        return false;
    for (size_t i = 0; i < claims->n_rules && i < HB_ACL_RULES_MAX; i++) {
        if (rule_matches(&claims->rules[i], client_id, username, action, topic))
            return claims->rules[i].allow;
    }
    return false;
}
