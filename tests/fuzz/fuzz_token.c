/* Fuzz target for credentials as the broker plugin meets them: hb_token_verify against a fixed
 * keyring, hb_token_peek_exp, and hb_acl_allows on what verifies. A mutated token never passes
 * the signature check, so an input starting with '{' (never a token: tokens are base64url) is
 * taken as a claims set and signed here with the HS256 key, which takes the fuzzer on into the
 * claim and acl checks. The keys are fixed, so the minted seeds in the corpus keep verifying. */
#include "fuzz_token.h"

#include "acl.h"
#include "fuzz.h"
#include "jwtparts.h"
#include "jwtverify.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

/* jwtverify.c: nbf and iat may lie this far in the future (clock skew). */
#define CLOCK_LEEWAY_S 30

/* Test keys, for fuzzing only. */
static const char hs_secret[] = "fuzz-only-hs256-secret-0123456789abcdef";
static const char es_private_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgzBZtMIZ5dzGq4dB+\n"
    "HQWmjAWvyFlw3BK8s9Grc3L/nHuhRANCAAQuN6kh7V8Wmjoz0hgVWLJTkeK6iulb\n"
    "UwAEoBWAjDvbkqsoDeFCumKDkLk0lzk/N89ew54y7ZNmm8HyIp+wmPK3\n"
    "-----END PRIVATE KEY-----\n";

static struct hb_keyring ring;

static void ring_finish(void)
{
    hb_keyring_finish(&ring);
}

/* hb_key_load reads a file: the key goes through a private temporary one. */
static void ring_add(const char *kid, const char *material)
{
    char path[] = "/tmp/hb-fuzz-key-XXXXXX";
    int fd = mkstemp(path);
    size_t len = strlen(material);
    bool written = fd >= 0 && write(fd, material, len) == (ssize_t)len;
    if (fd >= 0)
        close(fd);
    struct hb_key key;
    char err[256] = "cannot write a temporary key file";
    bool ok = written && hb_key_load(&key, kid, path, err, sizeof(err)) &&
              hb_keyring_add(&ring, &key, err, sizeof(err));
    if (fd >= 0)
        unlink(path);
    if (!ok) {
        fprintf(stderr, "fuzz_token: key %s: %s\n", kid, err);
        abort();
    }
}

const struct hb_keyring *fuzz_token_keyring(void)
{
    if (ring.n == 0) {
        ring_add(FUZZ_TOKEN_HS_KID, hs_secret);
        ring_add(FUZZ_TOKEN_ES_KID, es_private_pem);
        atexit(ring_finish);
    }
    return &ring;
}

/* Unpadded base64url of in[0..n) into out; returns the length written (out is not terminated). */
static size_t b64url(const unsigned char *in, size_t n, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        for (bits += 8; bits >= 6; bits -= 6)
            out[o++] = abc[(acc >> (bits - 6)) & 63];
    }
    if (bits > 0)
        out[o++] = abc[(acc << (6 - bits)) & 63];
    return o;
}

/* header.claims.signature with the claims exactly as given, signed with the HS256 key as
 * hb_token_mint would. Returns a malloc'd token of *len bytes. */
static char *sign_claims(const uint8_t *claims, size_t size, size_t *len)
{
    static const char header[] =
        "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"" FUZZ_TOKEN_HS_KID "\"}";
    char *token = malloc(4 * (sizeof(header) + size + EVP_MAX_MD_SIZE) / 3 + 8);
    if (token == NULL)
        abort();
    size_t n = b64url((const unsigned char *)header, sizeof(header) - 1, token);
    token[n++] = '.';
    n += b64url(claims, size, token + n);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (HMAC(EVP_sha256(), hs_secret, (int)strlen(hs_secret), (const unsigned char *)token, n, mac,
             &mac_len) == NULL)
        abort();
    token[n++] = '.';
    n += b64url(mac, mac_len, token + n);
    *len = n;
    return token;
}

static bool id_in(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL && hb_id_valid(s, strlen(s));
}

/* What hb_token_verify promises about the claims of a token it accepts. */
static void check_claims(const struct hb_token_claims *c)
{
    FUZZ_ASSERT(id_in(c->sub, sizeof(c->sub)));
    FUZZ_ASSERT(strcmp(c->kid, FUZZ_TOKEN_HS_KID) == 0 || strcmp(c->kid, FUZZ_TOKEN_ES_KID) == 0);
    FUZZ_ASSERT(c->device[0] == '\0' || id_in(c->device, sizeof(c->device)));
    FUZZ_ASSERT(
        c->role == HB_ROLE_DEVICE ||
        (c->role == HB_ROLE_CONSUMER && strcmp(c->sub, "consumer") == 0 && c->device[0] == '\0'));
    FUZZ_ASSERT(FUZZ_TOKEN_NOW < c->exp);
    FUZZ_ASSERT(c->nbf <= FUZZ_TOKEN_NOW + CLOCK_LEEWAY_S);
    FUZZ_ASSERT(c->iat <= FUZZ_TOKEN_NOW + CLOCK_LEEWAY_S);
    FUZZ_ASSERT(c->n_rules >= 1 && c->n_rules <= HB_ACL_RULES_MAX);
    for (size_t i = 0; i < c->n_rules; i++) {
        const struct hb_acl_rule *r = &c->rules[i];
        FUZZ_ASSERT(r->action == HB_ACL_PUBLISH || r->action == HB_ACL_SUBSCRIBE ||
                    r->action == HB_ACL_ALL);
        FUZZ_ASSERT(memchr(r->topic, '\0', sizeof(r->topic)) != NULL && r->topic[0] != '\0');
    }
}

/* Asks what the broker asks, plus each rule's own filter as a request; asserts what holds for
 * any claims: wildcards are never published to, ALL is not a request, a pinned device admits no
 * other client id. */
static void check_acl(const struct hb_token_claims *c)
{
    const char *client = c->device[0] ? c->device : "dev-1";
    char own[3 * (HB_ID_MAX + 1)];
    snprintf(own, sizeof(own), "hb/%s/%s", c->sub, client);
    const struct {
        enum hb_acl_action action;
        const char *topic;
    } asks[] = {
        {HB_ACL_PUBLISH, own},        {HB_ACL_READ, own},
        {HB_ACL_SUBSCRIBE, own},      {HB_ACL_PUBLISH, "hb/other/dev-2"},
        {HB_ACL_SUBSCRIBE, "hb/+/+"}, {HB_ACL_SUBSCRIBE, "$share/hb-consumers/hb/+/+"},
        {HB_ACL_SUBSCRIBE, "hb/#"},   {HB_ACL_SUBSCRIBE, "#"},
        {HB_ACL_READ, "$SYS/broker"}, {HB_ACL_SUBSCRIBE, "$share/g"},
    };
    for (size_t i = 0; i < sizeof(asks) / sizeof(asks[0]); i++) {
        hb_acl_allows(c, client, c->sub, asks[i].action, asks[i].topic);
        hb_acl_allows(c, NULL, NULL, asks[i].action, asks[i].topic);
    }
    for (size_t i = 0; i < c->n_rules; i++) {
        const char *filter = c->rules[i].topic;
        hb_acl_allows(c, client, c->sub, HB_ACL_SUBSCRIBE, filter);
        hb_acl_allows(c, client, c->sub, HB_ACL_READ, filter);
        bool wildcard = strpbrk(filter, "+#") != NULL;
        FUZZ_ASSERT(!wildcard || !hb_acl_allows(c, client, c->sub, HB_ACL_PUBLISH, filter));
    }
    FUZZ_ASSERT(!hb_acl_allows(c, client, c->sub, HB_ACL_ALL, own));
    if (c->device[0] != '\0') {
        FUZZ_ASSERT(!hb_acl_allows(c, "#", c->sub, HB_ACL_PUBLISH, own));
        FUZZ_ASSERT(!hb_acl_allows(c, NULL, c->sub, HB_ACL_READ, own));
    }
}

static bool all_zero(const void *p, size_t size)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < size; i++) {
        if (b[i] != 0)
            return false;
    }
    return true;
}

enum hb_token_error fuzz_token_run(const uint8_t *data, size_t size)
{
    const struct hb_keyring *keys = fuzz_token_keyring();
    size_t len = size;
    char *signed_token = size > 0 && data[0] == '{' ? sign_claims(data, size, &len) : NULL;
    const char *token = signed_token ? signed_token : (const char *)data;

    struct hb_token_claims claims;
    memset(&claims, 0x5a, sizeof(claims));
    enum hb_token_error e = hb_token_verify(keys, token, len, FUZZ_TOKEN_NOW, &claims);
    FUZZ_ASSERT(e >= HB_TOKEN_OK && e < HB_TOKEN_ERROR_COUNT);
    FUZZ_ASSERT(strcmp(hb_token_error_name(e), "unknown") != 0);
    int64_t exp = -1;
    bool peeked = hb_token_peek_exp(token, len, &exp);
    FUZZ_ASSERT(!peeked || exp >= 0);
    if (e == HB_TOKEN_OK) {
        FUZZ_ASSERT(peeked && exp == claims.exp);
        check_claims(&claims);
        check_acl(&claims);
    } else {
        FUZZ_ASSERT(all_zero(&claims, sizeof(claims)));
    }
    free(signed_token);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_token_run(data, size);
    return 0;
}
