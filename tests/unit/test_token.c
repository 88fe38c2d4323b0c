/* Unit tests of credentials (common/keyring.c, mint.c, jwtverify.c, jwtparts.c): key loading,
 * HS256 and ES256 round trips, the exact rules of minted tokens, every refusal of
 * hb_token_verify (crafted by hand where a signer would not produce it), rotation and peeking.
 * Keys are generated at test time with OpenSSL into a temporary directory. */
#include "acl.h"
#include "jwtparts.h"
#include "jwtverify.h"
#include "keyring.h"
#include "mint.h"
#include "token.h"

#include "secretfile.h"

#include "testing.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#define T0 INT64_C(1800000000)

static char dir[64];

/* ---- Fixtures ------------------------------------------------------------------------------ */

static const char *path_of(const char *name)
{
    static char paths[8][128];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 128, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *name, const char *data, size_t len)
{
    FILE *f = fopen(path_of(name), "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len) {
        perror(name);
        exit(1);
    }
    fclose(f);
}

enum pem_form { PEM_PKCS8, PEM_TRADITIONAL, PEM_PUBLIC, PEM_ENCRYPTED };

static void write_pem(const char *name, EVP_PKEY *pkey, enum pem_form form)
{
    FILE *f = fopen(path_of(name), "wb");
    int ok = 0;
    if (f != NULL) {
        BIO *bio = BIO_new_fp(f, BIO_NOCLOSE);
        switch (form) {
        case PEM_PKCS8:
            ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
            break;
        case PEM_TRADITIONAL:
            ok = PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL, NULL);
            break;
        case PEM_PUBLIC:
            ok = PEM_write_bio_PUBKEY(bio, pkey);
            break;
        case PEM_ENCRYPTED:
            ok = PEM_write_bio_PrivateKey(bio, pkey, EVP_aes_256_cbc(), (unsigned char *)"pass", 4,
                                          NULL, NULL);
            break;
        }
        BIO_free(bio);
        fclose(f);
    }
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", name);
        exit(1);
    }
}

static void setup_keys(void)
{
    snprintf(dir, sizeof(dir), "/tmp/hb-test-token-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        exit(1);
    }
    write_file("secret1", "0123456789abcdef0123456789abcdef-one\n", 37);
    write_file("secret2", "0123456789abcdef0123456789abcdef-two\r\n", 38);
    write_file("short", "0123456789abcdef0123456789abcde\n", 32); /* 31 bytes + newline */
    write_file("exact32", "0123456789abcdef0123456789abcdef\r\n", 34);
    write_file("badpem", "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
               65);
    EVP_PKEY *ec1 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *ec2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!ec1 || !ec2 || !p384 || !rsa || !ed) {
        fprintf(stderr, "key generation failed\n");
        exit(1);
    }
    write_pem("ec1.pem", ec1, PEM_PKCS8);
    write_pem("ec1.pub.pem", ec1, PEM_PUBLIC);
    write_pem("ec2.pem", ec2, PEM_TRADITIONAL);
    write_pem("ec2.pub.pem", ec2, PEM_PUBLIC);
    write_pem("ec1.enc.pem", ec1, PEM_ENCRYPTED);
    write_pem("p384.pem", p384, PEM_PKCS8);
    write_pem("rsa.pem", rsa, PEM_PKCS8);
    write_pem("rsa.pub.pem", rsa, PEM_PUBLIC);
    write_pem("ed.pem", ed, PEM_PKCS8);
    EVP_PKEY_free(ec1);
    EVP_PKEY_free(ec2);
    EVP_PKEY_free(p384);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
}

static void teardown_keys(void)
{
    static const char *const names[] = {
        "secret1",  "secret2",     "short",       "exact32",     "badpem",
        "ec1.pem",  "ec1.pub.pem", "ec2.pem",     "ec2.pub.pem", "ec1.enc.pem",
        "p384.pem", "rsa.pem",     "rsa.pub.pem", "ed.pem",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(path_of(names[i]));
    rmdir(dir);
}

static void load(struct hb_key *key, const char *kid, const char *name)
{
    char err[256];
    if (!hb_key_load(key, kid, path_of(name), err, sizeof(err))) {
        fprintf(stderr, "loading %s: %s\n", name, err);
        exit(1);
    }
}

static void ring_of(struct hb_keyring *ring, const char *kid, const char *name)
{
    struct hb_key key;
    char err[256];
    memset(ring, 0, sizeof(*ring));
    load(&key, kid, name);
    if (!hb_keyring_add(ring, &key, err, sizeof(err))) {
        fprintf(stderr, "%s\n", err);
        exit(1);
    }
}

static char *mint_device(const struct hb_key *key, const char *account, const char *device,
                         int64_t now, int64_t ttl)
{
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE, .account = account, .device = device, .now_s = now, .ttl_s = ttl};
    char err[256];
    char *t = hb_token_mint(key, &req, err, sizeof(err));
    if (t == NULL) {
        fprintf(stderr, "mint: %s\n", err);
        exit(1);
    }
    return t;
}

static enum hb_token_error verify(const struct hb_keyring *ring, const char *token, int64_t now)
{
    struct hb_token_claims c;
    return hb_token_verify(ring, token, strlen(token), now, &c);
}

static char *b64url(const char *data)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = strlen(data);
    char *out = malloc(n / 3 * 4 + 5);
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)data[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)data[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)data[i + 2];
        out[o++] = abc[(v >> 18) & 63];
        out[o++] = abc[(v >> 12) & 63];
        if (i + 1 < n)
            out[o++] = abc[(v >> 6) & 63];
        if (i + 2 < n)
            out[o++] = abc[v & 63];
    }
    out[o] = '\0';
    return out;
}

/* header.payload.sig from raw JSON texts and a signature part given as is. */
static char *craft(const char *header_json, const char *claims_json, const char *sig)
{
    char *h = b64url(header_json), *p = b64url(claims_json);
    size_t n = strlen(h) + strlen(p) + strlen(sig) + 3;
    char *t = malloc(n);
    snprintf(t, n, "%s.%s.%s", h, p, sig);
    free(h);
    free(p);
    return t;
}

/* Signs arbitrary claims with libjwt directly (bypassing hb_token_mint's checks). */
static char *sign_raw(jwt_alg_t alg, const unsigned char *key, size_t len, const char *kid,
                      const char *claims_json)
{
    jwt_t *jwt = NULL;
    if (jwt_new(&jwt) != 0 || jwt_set_alg(jwt, alg, key, (int)len) != 0 ||
        (kid && jwt_add_header(jwt, "kid", kid) != 0) ||
        jwt_add_grants_json(jwt, claims_json) != 0) {
        fprintf(stderr, "sign_raw setup failed\n");
        exit(1);
    }
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    if (t == NULL) {
        fprintf(stderr, "sign_raw failed\n");
        exit(1);
    }
    return t;
}

#define GOOD_CLAIMS                                                                                \
    "\"iat\":1800000000,\"nbf\":1800000000,\"exp\":1800001800,\"role\":\"device\","                \
    "\"acl\":[{\"permission\":\"allow\",\"action\":\"publish\",\"topic\":\"hb/acct/"               \
    "${clientid}\"},"                                                                              \
    "{\"permission\":\"deny\",\"action\":\"all\",\"topic\":\"#\"}]"

/* ---- Keys ---------------------------------------------------------------------------------- */

static void test_key_load_secret_strips_one_newline(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    CHECK_INT(k.alg, HB_TOKEN_HS256);
    CHECK(k.can_sign);
    CHECK_INT(k.len, 36);
    CHECK(memcmp(k.material, "0123456789abcdef0123456789abcdef-one", 36) == 0);
    CHECK(k.public_pem == NULL);
    CHECK(k.pkey == NULL); /* HMAC signs with the secret's bytes */
    CHECK_STR(k.kid, "k1");
    hb_key_finish(&k);
    CHECK(k.material == NULL && k.len == 0 && k.kid[0] == '\0');
    load(&k, "k2", "secret2");
    CHECK_INT(k.len, 36); /* \r\n stripped */
    hb_key_finish(&k);
    load(&k, "k3", "exact32");
    CHECK_INT(k.len, 32);
    hb_key_finish(&k);
    hb_key_finish(&k); /* finishing a zeroed key is a no-op */
}

static void test_key_load_es256_private_public_and_traditional(void)
{
    struct hb_key k;
    load(&k, "e1", "ec1.pem");
    CHECK_INT(k.alg, HB_TOKEN_ES256);
    CHECK(k.can_sign);
    CHECK(k.public_pem != NULL && strstr((const char *)k.public_pem, "PUBLIC KEY") != NULL);
    /* Parsed once, at load: the minter signs with it. */
    CHECK(k.pkey != NULL && EVP_PKEY_get_base_id(k.pkey) == EVP_PKEY_EC);
    hb_key_finish(&k);
    CHECK(k.pkey == NULL);
    load(&k, "e1", "ec1.pub.pem");
    CHECK_INT(k.alg, HB_TOKEN_ES256);
    CHECK(!k.can_sign);
    CHECK(k.pkey != NULL);
    hb_key_finish(&k);
    load(&k, "e2", "ec2.pem"); /* "BEGIN EC PRIVATE KEY" */
    CHECK(k.can_sign);
    hb_key_finish(&k);
}

static bool load_fails(const char *kid, const char *name, const char *reason_part)
{
    struct hb_key k;
    char err[256] = "";
    bool loaded = hb_key_load(&k, kid, path_of(name), err, sizeof(err));
    if (loaded)
        hb_key_finish(&k);
    if (strstr(err, reason_part) == NULL)
        fprintf(stderr, "  %s: reason '%s' lacks '%s'\n", name, err, reason_part);
    return !loaded && k.material == NULL && strstr(err, reason_part) != NULL;
}

static void test_key_load_refusals_say_why(void)
{
    CHECK(load_fails("k", "short", "at least 32 bytes"));
    CHECK(load_fails("k", "rsa.pem", "rsaEncryption key"));
    CHECK(load_fails("k", "rsa.pub.pem", "ES256 needs an EC P-256 key"));
    CHECK(load_fails("k", "ed.pem", "ES256 needs an EC P-256 key"));
    CHECK(load_fails("k", "p384.pem", "secp384r1"));
    CHECK(load_fails("k", "ec1.enc.pem", "encrypted"));
    CHECK(load_fails("k", "badpem", "not a readable PEM"));
    CHECK(load_fails("k", "no-such-file", "No such file"));
    CHECK(load_fails("a/b", "secret1", "key id"));
    CHECK(load_fails("", "secret1", "key id"));
}

static void test_keyring_refuses_duplicate_kid_and_overflow(void)
{
    struct hb_keyring ring = {0};
    struct hb_key k;
    char err[256];
    load(&k, "same", "secret1");
    CHECK(hb_keyring_add(&ring, &k, err, sizeof(err)));
    CHECK(k.material == NULL); /* ownership moved */
    load(&k, "same", "secret2");
    CHECK(!hb_keyring_add(&ring, &k, err, sizeof(err)));
    CHECK(strstr(err, "same") != NULL);
    hb_key_finish(&k);
    for (int i = 1; i < HB_KEYRING_MAX; i++) {
        char kid[16];
        snprintf(kid, sizeof(kid), "k%d", i);
        load(&k, kid, "secret1");
        CHECK(hb_keyring_add(&ring, &k, err, sizeof(err)));
    }
    load(&k, "one-too-many", "secret1");
    CHECK(!hb_keyring_add(&ring, &k, err, sizeof(err)));
    hb_key_finish(&k);
    CHECK_INT(ring.n, HB_KEYRING_MAX);
    hb_keyring_finish(&ring);
    CHECK_INT(ring.n, 0);
}

/* ---- Round trips --------------------------------------------------------------------------- */

static void check_rule(const struct hb_acl_rule *r, bool allow, enum hb_acl_action action,
                       const char *topic)
{
    CHECK_INT(r->allow, allow);
    CHECK_INT(r->action, action);
    CHECK_STR(r->topic, topic);
}

/* The closing rules every minted token ends with, from rule `from` on: the $-topic denies
 * ("#" does not match them on EMQX), then deny all "#". */
static void check_closing(const struct hb_token_claims *c, size_t from)
{
    static const char *const dollar[] = {"$SYS/#", "$delayed/#", "$share/#", "$queue/#"};
    CHECK_INT(c->n_rules, from + 5);
    for (size_t i = 0; i < 4 && from + i < c->n_rules; i++)
        check_rule(&c->rules[from + i], false, HB_ACL_ALL, dollar[i]);
    if (from + 4 < c->n_rules)
        check_rule(&c->rules[from + 4], false, HB_ACL_ALL, "#");
}

static void test_hs256_device_token_round_trip(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct-1", NULL, T0, 1800);
    struct hb_token_claims c;
    CHECK_INT(hb_token_verify(&ring, t, strlen(t), T0 + 5, &c), HB_TOKEN_OK);
    CHECK_STR(c.sub, "acct-1");
    CHECK_STR(c.device, "");
    CHECK_STR(c.kid, "k1");
    CHECK_INT(c.role, HB_ROLE_DEVICE);
    CHECK_INT(c.iat, T0);
    CHECK_INT(c.nbf, T0 - 30); /* a broker whose clock is behind still accepts it */
    CHECK_INT(c.exp, T0 + 1800);
    /* Unpinned: the one placeholder left, which the plugin checks (docs/EMQX.md). */
    check_rule(&c.rules[0], true, HB_ACL_PUBLISH, "hb/acct-1/${clientid}");
    check_closing(&c, 1);
    free(t);
    hb_keyring_finish(&ring);
}

/* The device page's token: its own control topic and the live count of what it plays, both
 * subscribe-only and before the closing deny; nothing else widens. */
static void check_emqx_rules(const char *token, bool pinned);

/* A consumer token with a live prefix publishes retained on it: one more rule, after the
 * control rule, the only one with "retain": true. */
static void test_consumer_live_prefix_adds_one_retained_rule(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    struct hb_token_request req = {.role = HB_ROLE_CONSUMER,
                                   .now_s = T0,
                                   .ttl_s = 60,
                                   .control_prefix = "ctl",
                                   .live_prefix = "live"};
    char err[256];
    char *t = hb_token_mint(&ring.keys[0], &req, err, sizeof(err));
    CHECK(t != NULL);
    struct hb_token_claims c;
    CHECK_INT(hb_token_verify(&ring, t, strlen(t), T0 + 1, &c), HB_TOKEN_OK);
    CHECK_INT((long)c.n_rules, 9);
    check_rule(&c.rules[2], true, HB_ACL_PUBLISH, "ctl/+/+");
    check_rule(&c.rules[3], true, HB_ACL_PUBLISH, "live/#");
    check_closing(&c, 4);
    for (size_t i = 0; i < c.n_rules; i++)
        CHECK(c.rules[i].retain == (i == 3));
    CHECK(hb_acl_allows(&c, "hb-consumer", "consumer", HB_ACL_PUBLISH, "live/media/film-7"));
    check_emqx_rules(t, false);
    free(t);
    /* Refused: a device's, the topic prefix, the control prefix, not a prefix. */
    static const char *const bad[] = {"hb", "ctl", "live/+", "", "a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.live_prefix = bad[i];
        CHECK(hb_token_mint(&ring.keys[0], &req, err, sizeof(err)) == NULL);
        CHECK(strstr(err, "live prefix") != NULL);
    }
    struct hb_token_request dev = {.role = HB_ROLE_DEVICE,
                                   .account = "acct",
                                   .device = "tab-1",
                                   .now_s = T0,
                                   .ttl_s = 60,
                                   .live_prefix = "live"};
    CHECK(hb_token_mint(&ring.keys[0], &dev, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "live prefix") != NULL);
    hb_keyring_finish(&ring);
}

static void test_device_token_may_subscribe_to_its_live_count(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    struct hb_token_request req = {.role = HB_ROLE_DEVICE,
                                   .account = "acct",
                                   .device = "tab-1",
                                   .now_s = T0,
                                   .ttl_s = 60,
                                   .control_prefix = "ctl",
                                   .subscribe_topic = "live/media/film-7"};
    char err[256];
    char *t = hb_token_mint(&ring.keys[0], &req, err, sizeof(err));
    CHECK(t != NULL);
    struct hb_token_claims c;
    CHECK_INT(hb_token_verify(&ring, t, strlen(t), T0 + 1, &c), HB_TOKEN_OK);
    check_rule(&c.rules[0], true, HB_ACL_PUBLISH, "hb/acct/tab-1");
    check_rule(&c.rules[1], true, HB_ACL_SUBSCRIBE, "ctl/acct/tab-1");
    check_rule(&c.rules[2], true, HB_ACL_SUBSCRIBE, "live/media/film-7");
    check_closing(&c, 3);
    /* Only the live count's subscription receives retained messages. */
    CHECK(!c.rules[0].retain && !c.rules[1].retain && c.rules[2].retain);
    CHECK(!c.rules[3].retain);
    check_emqx_rules(t, true);
    CHECK(hb_acl_allows(&c, "tab-1", "acct", HB_ACL_SUBSCRIBE, "live/media/film-7"));
    CHECK(hb_acl_allows(&c, "tab-1", "acct", HB_ACL_READ, "live/media/film-7"));
    CHECK(!hb_acl_allows(&c, "tab-1", "acct", HB_ACL_SUBSCRIBE, "live/media/film-8"));
    CHECK(!hb_acl_allows(&c, "tab-1", "acct", HB_ACL_SUBSCRIBE, "live/media/+"));
    CHECK(!hb_acl_allows(&c, "tab-1", "acct", HB_ACL_PUBLISH, "live/media/film-7"));
    free(t);
    static const char *const bad[] = {"live/media/+", "live/#", "", "$SYS/x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req.subscribe_topic = bad[i];
        CHECK(hb_token_mint(&ring.keys[0], &req, err, sizeof(err)) == NULL);
        CHECK(strstr(err, "subscribe topic") != NULL);
    }
    /* Only a device token may carry it: a consumer token asking for one is refused. */
    req.role = HB_ROLE_CONSUMER;
    req.account = NULL;
    req.device = NULL;
    req.subscribe_topic = "live/media/film-7";
    CHECK(hb_token_mint(&ring.keys[0], &req, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "subscribe topic") != NULL);
    hb_keyring_finish(&ring);
}

static void test_es256_round_trip_public_key_verifies(void)
{
    struct hb_key signer;
    load(&signer, "e1", "ec1.pem");
    struct hb_keyring ring;
    ring_of(&ring, "e1", "ec1.pub.pem");
    char *t = mint_device(&signer, "acct-2", "tv-1", T0, 60);
    struct hb_token_claims c;
    CHECK_INT(hb_token_verify(&ring, t, strlen(t), T0, &c), HB_TOKEN_OK);
    CHECK_STR(c.sub, "acct-2");
    CHECK_STR(c.device, "tv-1");
    /* Pinned: the device's topic is literal. */
    check_rule(&c.rules[0], true, HB_ACL_PUBLISH, "hb/acct-2/tv-1");
    check_closing(&c, 1);
    /* The private key verifies too (through its derived public key). */
    struct hb_keyring ring2;
    ring_of(&ring2, "e1", "ec1.pem");
    CHECK_INT(verify(&ring2, t, T0), HB_TOKEN_OK);
    /* A public key cannot sign. */
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE, .account = "a", .now_s = T0, .ttl_s = 60};
    char err[256];
    CHECK(hb_token_mint(&ring.keys[0], &req, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "cannot sign") != NULL);
    free(t);
    hb_key_finish(&signer);
    hb_keyring_finish(&ring);
    hb_keyring_finish(&ring2);
}

/* The claims part of a token as the compact JSON text it encodes (members in their order). */
static char *claims_text(const char *token)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    cJSON *obj = dot2 ? hb_jwt_part_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), 64) : NULL;
    char *text = obj ? cJSON_PrintUnformatted(obj) : NULL;
    cJSON_Delete(obj);
    return text;
}

/* Minting moved from libjwt to OpenSSL's EVP API: tokens keep libjwt's exact bytes (header
 * members alg, kid, typ; claims and rule members in name order), and an HS256 token (its
 * signature is deterministic) is byte for byte the one libjwt signs from the same claims. */
static void test_minted_tokens_keep_libjwts_bytes(void)
{
    static const char *const keys[][3] = {{"k1", "secret1", "HS256"}, {"e1", "ec1.pem", "ES256"}};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        struct hb_keyring ring;
        ring_of(&ring, keys[i][0], keys[i][1]);
        const struct hb_key *k = &ring.keys[0];
        bool es = k->alg == HB_TOKEN_ES256;
        struct hb_token_request req = {.role = HB_ROLE_DEVICE,
                                       .account = "acct",
                                       .device = "tab-1",
                                       .now_s = T0,
                                       .ttl_s = 60,
                                       .control_prefix = "ctl",
                                       .subscribe_topic = "live/media/film-7"};
        char err[256];
        char *t = hb_token_mint(k, &req, err, sizeof(err));
        CHECK(t != NULL);
        char *claims = claims_text(t);
        CHECK(claims != NULL);
        cJSON *parsed = cJSON_Parse(claims);
        const char *jti = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(parsed, "jti"));
        CHECK(jti != NULL && strlen(jti) == 32);
        char header[96], want[1024];
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
                 keys[i][2], keys[i][0]);
        snprintf(want, sizeof(want),
                 "{\"acl\":[{\"action\":\"publish\",\"permission\":\"allow\",\"retain\":false,"
                 "\"topic\":\"hb/acct/tab-1\"},{\"action\":\"subscribe\",\"permission\":\"allow\","
                 "\"topic\":\"ctl/acct/tab-1\"},{\"action\":\"subscribe\",\"permission\":\"allow\","
                 "\"retain\":true,\"topic\":\"live/media/film-7\"},{\"action\":\"all\","
                 "\"permission\":\"deny\",\"topic\":\"$SYS/#\"},{\"action\":\"all\","
                 "\"permission\":\"deny\",\"topic\":\"$delayed/#\"},{\"action\":\"all\","
                 "\"permission\":\"deny\",\"topic\":\"$share/#\"},{\"action\":\"all\","
                 "\"permission\":\"deny\",\"topic\":\"$queue/#\"},{\"action\":\"all\","
                 "\"permission\":\"deny\",\"topic\":\"#\"}],\"device\":\"tab-1\","
                 "\"exp\":1800000060,\"iat\":1800000000,\"jti\":\"%s\",\"nbf\":1799999970,"
                 "\"role\":\"device\",\"sub\":\"acct\"}",
                 jti ? jti : "");
        CHECK_STR(claims, want);
        char *h64 = b64url(header), *c64 = b64url(want);
        size_t h_len = strlen(h64), c_len = strlen(c64);
        CHECK(strncmp(t, h64, h_len) == 0 && t[h_len] == '.');
        CHECK(strncmp(t + h_len + 1, c64, c_len) == 0 && t[h_len + 1 + c_len] == '.');
        /* JWS signatures: HMAC's 32 bytes, ECDSA's r || s (64), unpadded base64url. */
        CHECK_INT(strlen(t + h_len + c_len + 2), es ? 86 : 43);
        /* libjwt signing the same claims with the same key writes the same header and claims;
         * for HS256 the same signature too. */
        char *lib =
            sign_raw(es ? JWT_ALG_ES256 : JWT_ALG_HS256, k->material, k->len, keys[i][0], claims);
        if (es)
            CHECK(strncmp(lib, t, h_len + c_len + 2) == 0);
        else
            CHECK_STR(lib, t);
        CHECK_INT(verify(&ring, lib, T0), HB_TOKEN_OK);
        CHECK_INT(verify(&ring, t, T0), HB_TOKEN_OK);
        free(lib);
        free(h64);
        free(c64);
        cJSON_Delete(parsed);
        cJSON_free(claims);
        free(t);
        hb_keyring_finish(&ring);
    }
}

/* ECDSA signatures are randomized: two tokens of the same claims differ only in the
 * signature, and both verify; a signature moved to other claims does not. */
static void test_es256_signatures_are_raw_and_bound_to_the_claims(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "e1", "ec1.pem");
    char *a = mint_device(&ring.keys[0], "acct", "tv-1", T0, 60);
    char *b = mint_device(&ring.keys[0], "acct", "tv-2", T0, 60);
    CHECK_INT(verify(&ring, a, T0), HB_TOKEN_OK);
    CHECK_INT(verify(&ring, b, T0), HB_TOKEN_OK);
    const char *sig_a = strrchr(a, '.'), *sig_b = strrchr(b, '.');
    CHECK(strcmp(sig_a, sig_b) != 0);
    size_t head_b = (size_t)(sig_b - b);
    char *swapped = malloc(head_b + strlen(sig_a) + 1);
    memcpy(swapped, b, head_b);
    strcpy(swapped + head_b, sig_a);
    CHECK_INT(verify(&ring, swapped, T0), HB_TOKEN_BAD_SIGNATURE);
    free(swapped);
    free(a);
    free(b);
    hb_keyring_finish(&ring);
}

/* A subscribe topic that is not UTF-8 would make claims no JSON reader accepts: refused (libjwt
 * refused it too), never minted. */
static void test_mint_refuses_a_topic_that_is_not_utf8(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    struct hb_token_request req = {.role = HB_ROLE_DEVICE,
                                   .account = "acct",
                                   .device = "tab-1",
                                   .now_s = T0,
                                   .ttl_s = 60,
                                   .subscribe_topic = "live/media/\xff\xfe"};
    char err[256];
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "UTF-8") != NULL);
    req.subscribe_topic = "live/media/f\xc3\xa9te"; /* UTF-8 is a topic like any other */
    char *t = hb_token_mint(&k, &req, err, sizeof(err));
    CHECK(t != NULL);
    free(t);
    hb_key_finish(&k);
}

static void test_b64url_encode_vectors(void)
{
    /* RFC 4648 section 10 without padding, and the two URL-safe characters. */
    static const char *const vectors[][2] = {
        {"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
        {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        char out[16];
        size_t n = strlen(vectors[i][0]);
        CHECK_INT(hb_jwt_b64url_encode(vectors[i][0], n, out), strlen(vectors[i][1]));
        CHECK_INT(hb_jwt_b64url_len(n), strlen(vectors[i][1]));
        CHECK_STR(out, vectors[i][1]);
    }
}

static void test_consumer_token_and_topic_prefix(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    struct hb_token_request req = {
        .role = HB_ROLE_CONSUMER, .topic_prefix = "tenant/hb", .now_s = T0, .ttl_s = 600};
    char err[256];
    char *t = hb_token_mint(&ring.keys[0], &req, err, sizeof(err));
    CHECK(t != NULL);
    struct hb_token_claims c;
    CHECK_INT(hb_token_verify(&ring, t, strlen(t), T0, &c), HB_TOKEN_OK);
    CHECK_STR(c.sub, "consumer");
    CHECK_INT(c.role, HB_ROLE_CONSUMER);
    check_rule(&c.rules[0], true, HB_ACL_SUBSCRIBE, "tenant/hb/+/+");
    check_rule(&c.rules[1], true, HB_ACL_SUBSCRIBE, "$share/+/tenant/hb/+/+");
    check_closing(&c, 2);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_mint_refuses_bad_requests(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    char err[256];
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE, .account = "a/b", .now_s = T0, .ttl_s = 60};
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "account") != NULL);
    req.account = "a";
    req.device = "+";
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "device") != NULL);
    req.device = NULL;
    req.ttl_s = 0;
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    req.ttl_s = -5;
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    req.ttl_s = 60;
    req.topic_prefix = "hb/+";
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    req.account = NULL;
    req.topic_prefix = NULL;
    CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
    hb_key_finish(&k);
}

/* Mints req with key and verifies it at T0 into c; false when either fails. */
static bool mint_and_verify(const struct hb_keyring *ring, struct hb_token_request *req,
                            struct hb_token_claims *c)
{
    char err[256];
    req->now_s = T0;
    req->ttl_s = 600;
    char *t = hb_token_mint(&ring->keys[0], req, err, sizeof(err));
    bool ok = t != NULL && hb_token_verify(ring, t, strlen(t), T0, c) == HB_TOKEN_OK;
    free(t);
    return ok;
}

static void test_control_prefix_adds_exactly_one_rule_before_the_deny(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    struct hb_token_claims c;
    /* A pinned device may subscribe to its own control topic, literally. */
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE, .account = "acct-1", .device = "tv-1", .control_prefix = "hb-ctl"};
    CHECK(mint_and_verify(&ring, &req, &c));
    check_rule(&c.rules[0], true, HB_ACL_PUBLISH, "hb/acct-1/tv-1");
    check_rule(&c.rules[1], true, HB_ACL_SUBSCRIBE, "hb-ctl/acct-1/tv-1");
    check_closing(&c, 2);
    /* An unpinned device token gets nothing more: it names no device. */
    req.device = NULL;
    CHECK(mint_and_verify(&ring, &req, &c));
    check_rule(&c.rules[0], true, HB_ACL_PUBLISH, "hb/acct-1/${clientid}");
    check_closing(&c, 1);
    /* The consumer may publish stop messages to every device. */
    struct hb_token_request consumer = {
        .role = HB_ROLE_CONSUMER, .topic_prefix = "tenant/hb", .control_prefix = "tenant/ctl"};
    CHECK(mint_and_verify(&ring, &consumer, &c));
    check_rule(&c.rules[0], true, HB_ACL_SUBSCRIBE, "tenant/hb/+/+");
    check_rule(&c.rules[1], true, HB_ACL_SUBSCRIBE, "$share/+/tenant/hb/+/+");
    check_rule(&c.rules[2], true, HB_ACL_PUBLISH, "tenant/ctl/+/+");
    check_closing(&c, 3);
    /* Without one, a consumer token is what it always was. */
    consumer.control_prefix = NULL;
    CHECK(mint_and_verify(&ring, &consumer, &c));
    check_closing(&c, 2);
    hb_keyring_finish(&ring);
}

/* Decodes a minted token's claims as EMQX reads them: every allowed publish says
 * "retain": false but the live counts' ("live/#", true), no other rule carries a retain field
 * but a device's live-count subscription (true), and a pinned token has no
 * placeholder left (EMQX substitutes ${clientid} unchecked). */
static void check_emqx_rules(const char *token, bool pinned)
{
    const char *dot1 = strchr(token, '.');
    const char *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
    CHECK(dot2 != NULL);
    if (dot2 == NULL)
        return;
    cJSON *claims = hb_jwt_part_object(dot1 + 1, (size_t)(dot2 - dot1 - 1), 16);
    CHECK(claims != NULL);
    const cJSON *acl = cJSON_GetObjectItemCaseSensitive(claims, "acl");
    CHECK(cJSON_IsArray(acl));
    const cJSON *rule;
    cJSON_ArrayForEach(rule, acl)
    {
        const char *perm = cJSON_GetObjectItemCaseSensitive(rule, "permission")->valuestring;
        const char *action = cJSON_GetObjectItemCaseSensitive(rule, "action")->valuestring;
        const char *topic = cJSON_GetObjectItemCaseSensitive(rule, "topic")->valuestring;
        const cJSON *retain = cJSON_GetObjectItemCaseSensitive(rule, "retain");
        bool live = strncmp(topic, "live/", 5) == 0;
        if (strcmp(perm, "allow") == 0 && strcmp(action, "publish") == 0)
            CHECK(live ? strcmp(topic, "live/#") == 0 && cJSON_IsTrue(retain)
                       : cJSON_IsFalse(retain));
        else if (live && strcmp(perm, "allow") == 0 && strcmp(action, "subscribe") == 0)
            CHECK(cJSON_IsTrue(retain));
        else
            CHECK(retain == NULL);
        if (pinned)
            CHECK(strstr(topic, "${") == NULL);
    }
    const cJSON *iat = cJSON_GetObjectItemCaseSensitive(claims, "iat");
    const cJSON *nbf = cJSON_GetObjectItemCaseSensitive(claims, "nbf");
    CHECK(cJSON_IsNumber(iat) && cJSON_IsNumber(nbf) && iat->valuedouble - nbf->valuedouble == 30);
    cJSON_Delete(claims);
}

static void test_minted_rules_are_enforceable_by_emqx(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    char err[256];
    struct hb_token_request reqs[] = {
        {.role = HB_ROLE_DEVICE, .account = "a", .device = "tv", .control_prefix = "ctl"},
        {.role = HB_ROLE_DEVICE, .account = "a"},
        {.role = HB_ROLE_CONSUMER, .control_prefix = "ctl"},
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        reqs[i].now_s = T0;
        reqs[i].ttl_s = 60;
        char *t = hb_token_mint(&k, &reqs[i], err, sizeof(err));
        CHECK(t != NULL);
        if (t != NULL)
            check_emqx_rules(t, reqs[i].role == HB_ROLE_CONSUMER || reqs[i].device != NULL);
        free(t);
    }
    hb_key_finish(&k);
}

/* The plugin decides minted tokens as before the EMQX changes, or stricter: a pinned device
 * publishes its own topic only, $-topics are denied, the consumer reads and shares. */
static void test_plugin_decisions_on_minted_tokens(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    struct hb_token_claims c;
    struct hb_token_request pinned = {
        .role = HB_ROLE_DEVICE, .account = "a", .device = "tv", .control_prefix = "ctl"};
    CHECK(mint_and_verify(&ring, &pinned, &c));
    CHECK(hb_acl_allows(&c, "tv", NULL, HB_ACL_PUBLISH, "hb/a/tv"));
    CHECK(!hb_acl_allows(&c, "tv", NULL, HB_ACL_PUBLISH, "hb/a/other"));
    CHECK(!hb_acl_allows(&c, "other", NULL, HB_ACL_PUBLISH, "hb/a/other"));
    CHECK(hb_acl_allows(&c, "tv", NULL, HB_ACL_SUBSCRIBE, "ctl/a/tv"));
    CHECK(!hb_acl_allows(&c, "tv", NULL, HB_ACL_SUBSCRIBE, "$SYS/broker/clients/connected"));
    CHECK(!hb_acl_allows(&c, "tv", NULL, HB_ACL_PUBLISH, "$delayed/1/hb/b/tv"));
    CHECK(!hb_acl_allows(&c, "tv", NULL, HB_ACL_SUBSCRIBE, "$share/g/hb/a/tv"));
    struct hb_token_request unpinned = {.role = HB_ROLE_DEVICE, .account = "a"};
    CHECK(mint_and_verify(&ring, &unpinned, &c));
    CHECK(hb_acl_allows(&c, "dev1", NULL, HB_ACL_PUBLISH, "hb/a/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", NULL, HB_ACL_PUBLISH, "hb/a/dev2"));
    CHECK(!hb_acl_allows(&c, "+", NULL, HB_ACL_PUBLISH, "hb/a/dev2"));
    CHECK(!hb_acl_allows(&c, "dev1", NULL, HB_ACL_PUBLISH, "$delayed/1/hb/a/dev1"));
    struct hb_token_request consumer = {.role = HB_ROLE_CONSUMER, .control_prefix = "ctl"};
    CHECK(mint_and_verify(&ring, &consumer, &c));
    CHECK(hb_acl_allows(&c, "c1", NULL, HB_ACL_SUBSCRIBE, "$share/hb-consumers/hb/+/+"));
    CHECK(hb_acl_allows(&c, "c1", NULL, HB_ACL_SUBSCRIBE, "hb/+/+"));
    CHECK(hb_acl_allows(&c, "c1", NULL, HB_ACL_PUBLISH, "ctl/a/tv"));
    CHECK(!hb_acl_allows(&c, "c1", NULL, HB_ACL_PUBLISH, "hb/a/tv"));
    CHECK(!hb_acl_allows(&c, "c1", NULL, HB_ACL_SUBSCRIBE, "$SYS/#"));
    CHECK(!hb_acl_allows(&c, "c1", NULL, HB_ACL_SUBSCRIBE, "$share/g/ctl/+/+"));
    hb_keyring_finish(&ring);
}

static void test_control_prefix_is_checked_like_a_topic_prefix(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    char err[256];
    static const char *const bad[] = {"", "ctl/+", "ctl/#", "/ctl", "ctl/", "c//tl", "hb"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct hb_token_request req = {.role = HB_ROLE_DEVICE,
                                       .account = "a",
                                       .device = "d",
                                       .now_s = T0,
                                       .ttl_s = 60,
                                       .control_prefix = bad[i]};
        err[0] = '\0';
        CHECK(hb_token_mint(&k, &req, err, sizeof(err)) == NULL);
        CHECK(strstr(err, "invalid control prefix") != NULL);
    }
    hb_key_finish(&k);
}

static void test_tokens_are_unique(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    char *a = mint_device(&k, "acct", NULL, T0, 60), *b = mint_device(&k, "acct", NULL, T0, 60);
    CHECK(strcmp(a, b) != 0); /* jti is random */
    free(a);
    free(b);
    hb_key_finish(&k);
}

/* ---- Refusals ------------------------------------------------------------------------------ */

static void test_forged_signature_is_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct", NULL, T0, 60);
    char *sig = strrchr(t, '.') + 1;
    sig[3] = sig[3] == 'A' ? 'B' : 'A';
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_SIGNATURE);
    sig[0] = '\0'; /* no signature at all */
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_SIGNATURE);
    free(t);
    hb_keyring_finish(&ring);

    struct hb_key signer;
    load(&signer, "e1", "ec1.pem");
    ring_of(&ring, "e1", "ec1.pub.pem");
    t = mint_device(&signer, "acct", NULL, T0, 60);
    sig = strrchr(t, '.') + 1;
    sig[10] = sig[10] == 'A' ? 'B' : 'A';
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_SIGNATURE);
    free(t);
    hb_key_finish(&signer);
    hb_keyring_finish(&ring);
}

static void test_wrong_key_with_same_kid_is_refused(void)
{
    struct hb_key other;
    load(&other, "k1", "secret2");
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&other, "acct", NULL, T0, 60);
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_SIGNATURE);
    free(t);
    hb_key_finish(&other);
    hb_keyring_finish(&ring);

    load(&other, "e1", "ec2.pem");
    ring_of(&ring, "e1", "ec1.pub.pem");
    t = mint_device(&other, "acct", NULL, T0, 60);
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_SIGNATURE);
    free(t);
    hb_key_finish(&other);
    hb_keyring_finish(&ring);
}

static void test_unknown_and_missing_kid_are_refused(void)
{
    struct hb_key k;
    load(&k, "k1", "secret1");
    struct hb_keyring ring;
    ring_of(&ring, "k2", "secret1");
    char *t = mint_device(&k, "acct", NULL, T0, 60);
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_UNKNOWN_KID);
    free(t);
    /* Same secret, no kid header: refused before the signature is looked at. */
    t = sign_raw(JWT_ALG_HS256, k.material, k.len, NULL, "{\"sub\":\"acct\"," GOOD_CLAIMS "}");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_UNKNOWN_KID);
    free(t);
    t = craft("{\"alg\":\"HS256\",\"kid\":7}", "{\"sub\":\"acct\"," GOOD_CLAIMS "}", "c2ln");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_UNKNOWN_KID);
    free(t);
    hb_key_finish(&k);
    hb_keyring_finish(&ring);
}

static void test_alg_none_is_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    const char *claims = "{\"sub\":\"acct\"," GOOD_CLAIMS "}";
    char *t = craft("{\"alg\":\"none\",\"kid\":\"k1\"}", claims, "");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    t = craft("{\"alg\":\"None\",\"kid\":\"k1\",\"typ\":\"JWT\"}", claims, "");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    t = craft("{\"alg\":\"none\",\"kid\":\"k1\"}", claims, "c2lnbmF0dXJl");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    t = craft("{\"kid\":\"k1\"}", claims, "c2lnbmF0dXJl");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_other_algorithms_are_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    /* HS512 with the very secret of k1: a valid signature, but not the key's algorithm. */
    char *t = sign_raw(JWT_ALG_HS512, ring.keys[0].material, ring.keys[0].len, "k1",
                       "{\"sub\":\"acct\"," GOOD_CLAIMS "}");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_hs256_keyed_with_es256_public_pem_is_refused(void)
{
    /* Algorithm confusion: libjwt 1.10 alone accepts this token with the public key PEM. */
    struct hb_keyring ring;
    ring_of(&ring, "e1", "ec1.pub.pem");
    const struct hb_key *k = &ring.keys[0];
    const char *claims = "{\"sub\":\"acct\"," GOOD_CLAIMS "}";
    char *t = sign_raw(JWT_ALG_HS256, k->public_pem, k->public_len, "e1", claims);
    jwt_t *jwt = NULL;
    CHECK_INT(jwt_decode(&jwt, t, k->public_pem, (int)k->public_len), 0); /* the quirk */
    jwt_free(jwt);
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    t = sign_raw(JWT_ALG_HS256, k->material, k->len, "e1", claims);
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_ALG);
    free(t);
    /* Two "alg" members, hoping two parsers pick different ones. */
    t = craft("{\"alg\":\"ES256\",\"alg\":\"HS256\",\"kid\":\"e1\"}", claims, "c2ln");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_MALFORMED);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_expired_token_is_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct", NULL, T0, 60);
    CHECK_INT(verify(&ring, t, T0 + 59), HB_TOKEN_OK);
    CHECK_INT(verify(&ring, t, T0 + 60), HB_TOKEN_EXPIRED);
    CHECK_INT(verify(&ring, t, T0 + 86400), HB_TOKEN_EXPIRED);
    free(t);
    /* No exp at all. */
    t = sign_raw(JWT_ALG_HS256, ring.keys[0].material, ring.keys[0].len, "k1",
                 "{\"sub\":\"a\",\"iat\":1800000000,\"role\":\"device\",\"acl\":[{\"permission\":"
                 "\"deny\",\"action\":\"all\",\"topic\":\"#\"}]}");
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_BAD_CLAIMS);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_not_yet_valid_token_is_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct", NULL, T0 + 31, 600);
    CHECK_INT(verify(&ring, t, T0), HB_TOKEN_NOT_YET_VALID);
    CHECK_INT(verify(&ring, t, T0 + 1), HB_TOKEN_OK); /* within the 30 s leeway */
    free(t);
    const char *claims =
        "{\"sub\":\"acct\",\"iat\":1800000000,\"nbf\":1800000100,\"exp\":1800001800,\"role\":"
        "\"device\",\"acl\":[{\"permission\":\"deny\",\"action\":\"all\",\"topic\":\"#\"}]}";
    t = sign_raw(JWT_ALG_HS256, ring.keys[0].material, ring.keys[0].len, "k1", claims);
    CHECK_INT(verify(&ring, t, T0 + 69), HB_TOKEN_NOT_YET_VALID);
    CHECK_INT(verify(&ring, t, T0 + 70), HB_TOKEN_OK);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_tampered_claims_are_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct", NULL, T0, 60);
    char *d1 = strchr(t, '.'), *d2 = strrchr(t, '.');
    char *header = strndup(t, (size_t)(d1 - t));
    char *forged = b64url("{\"sub\":\"other\",\"iat\":1800000000,\"nbf\":1800000000,"
                          "\"exp\":1900000000,\"role\":\"device\",\"acl\":[{\"permission\":"
                          "\"allow\",\"action\":\"all\",\"topic\":\"#\"}]}");
    char tampered[HB_TOKEN_MAX + 1];
    snprintf(tampered, sizeof(tampered), "%s.%s%s", header, forged, d2);
    CHECK_INT(verify(&ring, tampered, T0), HB_TOKEN_BAD_SIGNATURE);
    free(header);
    free(forged);
    free(t);
    hb_keyring_finish(&ring);
}

static void test_malformed_tokens_are_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct", NULL, T0, 60);
    char buf[2 * HB_TOKEN_MAX];
    CHECK_INT(verify(&ring, "", T0), HB_TOKEN_MALFORMED);
    CHECK_INT(verify(&ring, "garbage", T0), HB_TOKEN_MALFORMED);
    /* Two parts. */
    snprintf(buf, sizeof(buf), "%s", t);
    *strrchr(buf, '.') = '\0';
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    /* Four parts. */
    snprintf(buf, sizeof(buf), "%s.abc", t);
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    /* A byte outside base64url, and padding. */
    snprintf(buf, sizeof(buf), "%s", t);
    buf[2] = '*';
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    snprintf(buf, sizeof(buf), "%s", t);
    buf[strchr(buf, '.') - buf - 1] = '=';
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    /* Base64url of something that is not JSON, and JSON that is not an object. */
    char *h = b64url("hello"), *p = b64url("[1,2]");
    snprintf(buf, sizeof(buf), "%s%s", h, strchr(t, '.'));
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    snprintf(buf, sizeof(buf), "%.*s.%s%s", (int)(strchr(t, '.') - t), t, p, strrchr(t, '.'));
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    free(h);
    free(p);
    /* Impossible base64 length (4n+1). */
    snprintf(buf, sizeof(buf), "A.%s", strchr(t, '.') + 1);
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    /* Oversize, even when it starts with a valid token. */
    memset(buf, 'A', sizeof(buf));
    memcpy(buf, t, strlen(t));
    buf[HB_TOKEN_MAX + 1] = '\0';
    CHECK_INT(verify(&ring, buf, T0), HB_TOKEN_MALFORMED);
    /* A NUL inside the given length. */
    struct hb_token_claims c;
    snprintf(buf, sizeof(buf), "%s", t);
    buf[5] = '\0';
    CHECK_INT(hb_token_verify(&ring, buf, strlen(t), T0, &c), HB_TOKEN_MALFORMED);
    /* A typ other than JWT, and a crit header. */
    char *x = craft("{\"alg\":\"HS256\",\"kid\":\"k1\",\"typ\":\"JOSE+JSON\"}", "{}", "c2ln");
    CHECK_INT(verify(&ring, x, T0), HB_TOKEN_MALFORMED);
    free(x);
    x = craft("{\"alg\":\"HS256\",\"kid\":\"k1\",\"crit\":[\"exp\"]}", "{}", "c2ln");
    CHECK_INT(verify(&ring, x, T0), HB_TOKEN_MALFORMED);
    free(x);
    free(t);
    hb_keyring_finish(&ring);
}

static enum hb_token_error verify_signed_claims(const struct hb_keyring *ring, const char *claims)
{
    char *t = sign_raw(JWT_ALG_HS256, ring->keys[0].material, ring->keys[0].len, "k1", claims);
    enum hb_token_error e = verify(ring, t, T0);
    free(t);
    return e;
}

static void test_bad_claims_are_refused(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    CHECK_INT(verify_signed_claims(&ring, "{\"sub\":\"acct\"," GOOD_CLAIMS "}"), HB_TOKEN_OK);
    CHECK_INT(verify_signed_claims(&ring, "{\"sub\":\"a/b\"," GOOD_CLAIMS "}"),
              HB_TOKEN_BAD_CLAIMS);
    CHECK_INT(verify_signed_claims(&ring, "{\"sub\":\"+\"," GOOD_CLAIMS "}"), HB_TOKEN_BAD_CLAIMS);
    CHECK_INT(verify_signed_claims(&ring, "{\"sub\":7," GOOD_CLAIMS "}"), HB_TOKEN_BAD_CLAIMS);
    CHECK_INT(verify_signed_claims(&ring, "{" GOOD_CLAIMS "}"), HB_TOKEN_BAD_CLAIMS);
    CHECK_INT(verify_signed_claims(&ring, "{\"sub\":\"acct\",\"device\":\"#\"," GOOD_CLAIMS "}"),
              HB_TOKEN_BAD_CLAIMS);
    const char *times = "\"sub\":\"acct\",\"iat\":1800000000,\"exp\":1800001800,";
    char claims[2048];
    /* acl missing, empty, not a list, too long, bad members. */
    snprintf(claims, sizeof(claims), "{%s\"role\":\"device\"}", times);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    snprintf(claims, sizeof(claims), "{%s\"role\":\"device\",\"acl\":[]}", times);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    snprintf(claims, sizeof(claims), "{%s\"role\":\"device\",\"acl\":{\"pub\":[\"#\"]}}", times);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    const char *deny = "{\"permission\":\"deny\",\"action\":\"all\",\"topic\":\"#\"}";
    int n = snprintf(claims, sizeof(claims), "{%s\"role\":\"device\",\"acl\":[%s", times, deny);
    for (int i = 1; i <= HB_ACL_RULES_MAX; i++)
        n += snprintf(claims + n, sizeof(claims) - (size_t)n, ",%s", deny);
    snprintf(claims + n, sizeof(claims) - (size_t)n, "]}");
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    static const char *const bad_rules[] = {
        "{\"permission\":\"maybe\",\"action\":\"all\",\"topic\":\"#\"}",
        "{\"permission\":\"allow\",\"action\":\"read\",\"topic\":\"#\"}",
        "{\"permission\":\"allow\",\"action\":\"all\"}",
        "{\"permission\":\"allow\",\"action\":\"all\",\"topic\":\"\"}",
        "{\"permission\":\"allow\",\"action\":\"all\",\"topic\":\"hb/#/x\"}",
        "{\"permission\":\"allow\",\"action\":\"all\",\"topic\":\"hb/a+\"}",
        "{\"permission\":\"allow\",\"action\":\"all\",\"topic\":\"hb/${peerhost}\"}",
        "\"hb/#\"",
    };
    for (size_t i = 0; i < sizeof(bad_rules) / sizeof(bad_rules[0]); i++) {
        snprintf(claims, sizeof(claims), "{%s\"role\":\"device\",\"acl\":[%s]}", times,
                 bad_rules[i]);
        CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    }
    char topic[HB_ACL_TOPIC_MAX + 1];
    memset(topic, 'a', HB_ACL_TOPIC_MAX);
    topic[HB_ACL_TOPIC_MAX] = '\0';
    snprintf(claims, sizeof(claims),
             "{%s\"role\":\"device\",\"acl\":[{\"permission\":\"allow\",\"action\":\"all\","
             "\"topic\":\"%s\"}]}",
             times, topic);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    /* role missing or unknown; a consumer must be "consumer" and pins no device. */
    snprintf(claims, sizeof(claims), "{%s\"acl\":[%s]}", times, deny);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    snprintf(claims, sizeof(claims), "{%s\"role\":\"admin\",\"acl\":[%s]}", times, deny);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    snprintf(claims, sizeof(claims), "{%s\"role\":\"consumer\",\"acl\":[%s]}", times, deny);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    /* exp not a whole number. */
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"a\",\"iat\":1800000000,\"exp\":\"1800001800\",\"role\":\"device\","
             "\"acl\":[%s]}",
             deny);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    snprintf(claims, sizeof(claims),
             "{\"sub\":\"a\",\"iat\":1800000000,\"exp\":1800001800.5,\"role\":\"device\","
             "\"acl\":[%s]}",
             deny);
    CHECK_INT(verify_signed_claims(&ring, claims), HB_TOKEN_BAD_CLAIMS);
    hb_keyring_finish(&ring);
}

static void test_rotation_old_and_new_keys_both_verify(void)
{
    struct hb_keyring ring = {0};
    struct hb_key k;
    char err[256];
    load(&k, "2024-old", "secret1");
    CHECK(hb_keyring_add(&ring, &k, err, sizeof(err)));
    load(&k, "2025-new", "ec1.pub.pem");
    CHECK(hb_keyring_add(&ring, &k, err, sizeof(err)));
    struct hb_key old_signer, new_signer, retired;
    load(&old_signer, "2024-old", "secret1");
    load(&new_signer, "2025-new", "ec1.pem");
    load(&retired, "2023-gone", "secret2");
    char *a = mint_device(&old_signer, "acct", NULL, T0, 60);
    char *b = mint_device(&new_signer, "acct", NULL, T0, 60);
    char *c = mint_device(&retired, "acct", NULL, T0, 60);
    struct hb_token_claims claims;
    CHECK_INT(hb_token_verify(&ring, a, strlen(a), T0, &claims), HB_TOKEN_OK);
    CHECK_STR(claims.kid, "2024-old");
    CHECK_INT(hb_token_verify(&ring, b, strlen(b), T0, &claims), HB_TOKEN_OK);
    CHECK_STR(claims.kid, "2025-new");
    CHECK_INT(verify(&ring, c, T0), HB_TOKEN_UNKNOWN_KID);
    free(a);
    free(b);
    free(c);
    hb_key_finish(&old_signer);
    hb_key_finish(&new_signer);
    hb_key_finish(&retired);
    hb_keyring_finish(&ring);
}

static void test_error_names_are_stable(void)
{
    CHECK_STR(hb_token_error_name(HB_TOKEN_OK), "ok");
    CHECK_STR(hb_token_error_name(HB_TOKEN_MALFORMED), "malformed");
    CHECK_STR(hb_token_error_name(HB_TOKEN_BAD_ALG), "bad_alg");
    CHECK_STR(hb_token_error_name(HB_TOKEN_UNKNOWN_KID), "unknown_kid");
    CHECK_STR(hb_token_error_name(HB_TOKEN_BAD_SIGNATURE), "bad_signature");
    CHECK_STR(hb_token_error_name(HB_TOKEN_EXPIRED), "expired");
    CHECK_STR(hb_token_error_name(HB_TOKEN_NOT_YET_VALID), "not_yet_valid");
    CHECK_STR(hb_token_error_name(HB_TOKEN_BAD_CLAIMS), "bad_claims");
    CHECK_STR(hb_token_error_name(HB_TOKEN_ERROR_COUNT), "unknown");
}

static void test_peek_exp_reads_without_verifying(void)
{
    struct hb_keyring ring;
    ring_of(&ring, "k1", "secret1");
    char *t = mint_device(&ring.keys[0], "acct-1", NULL, T0, 1800);
    int64_t exp = 0;
    CHECK(hb_token_peek_exp(t, strlen(t), &exp));
    CHECK_INT(exp, T0 + 1800);
    /* Unverified on purpose: a wrong signature still shows its exp... */
    char *last = strrchr(t, '.');
    last[1] = last[1] == 'A' ? 'B' : 'A';
    CHECK(hb_token_peek_exp(t, strlen(t), &exp));
    /* ...but what is not a JWT with a whole-number exp gives none. */
    CHECK(!hb_token_peek_exp("secret-password", 15, &exp));
    CHECK(!hb_token_peek_exp("a.b", 3, &exp));
    CHECK(!hb_token_peek_exp("x.eyJleHAiOiJzb29uIn0.y", 23, &exp)); /* {"exp":"soon"} */
    CHECK(!hb_token_peek_exp("x.eyJzdWIiOiJhIn0.y", 19, &exp));     /* {"sub":"a"} */
    CHECK(!hb_token_peek_exp(t, 0, &exp));
    free(t);
    hb_keyring_finish(&ring);
}

static void test_secret_file_read_bounds_and_trim(void)
{
    write_file("tok", "abc\r\n", 5);
    char *text = NULL, err[256];
    size_t len = 0;
    CHECK(hb_secret_file_read(path_of("tok"), 5, &text, &len, err, sizeof(err)));
    CHECK_INT(len, 5);
    CHECK_INT(text[len], '\0');
    CHECK_INT(hb_secret_trim_newline(text, len), 3);
    CHECK_INT(hb_secret_trim_newline("abc\n\n", 5), 4); /* only one newline */
    CHECK_INT(hb_secret_trim_newline("", 0), 0);
    hb_secret_free(text, len + 1);
    CHECK(!hb_secret_file_read(path_of("tok"), 4, &text, &len, err, sizeof(err)));
    CHECK(strstr(err, "not a regular file of at most 4 bytes") != NULL);
    CHECK(!hb_secret_file_read(dir, 100, &text, &len, err, sizeof(err)));
    CHECK(strstr(err, "not a regular file") != NULL);
    CHECK(!hb_secret_file_read(path_of("missing"), 100, &text, &len, err, sizeof(err)));
    CHECK(strstr(err, "No such file or directory") != NULL);
    hb_secret_free(NULL, 10);
}

int main(void)
{
    setup_keys();
    RUN(test_key_load_secret_strips_one_newline);
    RUN(test_key_load_es256_private_public_and_traditional);
    RUN(test_key_load_refusals_say_why);
    RUN(test_keyring_refuses_duplicate_kid_and_overflow);
    RUN(test_hs256_device_token_round_trip);
    RUN(test_es256_round_trip_public_key_verifies);
    RUN(test_minted_tokens_keep_libjwts_bytes);
    RUN(test_es256_signatures_are_raw_and_bound_to_the_claims);
    RUN(test_mint_refuses_a_topic_that_is_not_utf8);
    RUN(test_b64url_encode_vectors);
    RUN(test_device_token_may_subscribe_to_its_live_count);
    RUN(test_consumer_live_prefix_adds_one_retained_rule);
    RUN(test_consumer_token_and_topic_prefix);
    RUN(test_mint_refuses_bad_requests);
    RUN(test_control_prefix_adds_exactly_one_rule_before_the_deny);
    RUN(test_control_prefix_is_checked_like_a_topic_prefix);
    RUN(test_tokens_are_unique);
    RUN(test_forged_signature_is_refused);
    RUN(test_wrong_key_with_same_kid_is_refused);
    RUN(test_unknown_and_missing_kid_are_refused);
    RUN(test_alg_none_is_refused);
    RUN(test_other_algorithms_are_refused);
    RUN(test_hs256_keyed_with_es256_public_pem_is_refused);
    RUN(test_expired_token_is_refused);
    RUN(test_not_yet_valid_token_is_refused);
    RUN(test_tampered_claims_are_refused);
    RUN(test_malformed_tokens_are_refused);
    RUN(test_bad_claims_are_refused);
    RUN(test_rotation_old_and_new_keys_both_verify);
    RUN(test_error_names_are_stable);
    RUN(test_peek_exp_reads_without_verifying);
    RUN(test_secret_file_read_bounds_and_trim);
    RUN(test_minted_rules_are_enforceable_by_emqx);
    RUN(test_plugin_decisions_on_minted_tokens);
    teardown_keys();
    return TESTING_DONE();
}
