/* Mints the seed tokens of the fuzz_token corpus with the target's own keys, or checks them.
 * Seeds named "ok-..." must verify (HB_TOKEN_OK at FUZZ_TOKEN_NOW): the check runs in the unit
 * suite, so a change that strands the corpus fails a test instead of quietly starving the fuzzer.
 *   fuzz_token_seeds DIR           write the seeds into DIR (tests/fuzz/corpus/token)
 *   fuzz_token_seeds --check DIR   check them */
#include "fuzz_token.h"

#include "fuzz.h"
#include "jwtverify.h"
#include "mint.h"

#include <openssl/evp.h>

struct seed {
    const char *name;
    const char *kid;
    struct hb_token_request req;
};

#define NOW FUZZ_TOKEN_NOW
static const struct seed seeds[] = {
    {"ok-device-hs",
     FUZZ_TOKEN_HS_KID,
     {HB_ROLE_DEVICE, "acct0001", "tv-1", NULL, NOW - 60, HB_TOKEN_TTL_DEFAULT, NULL, NULL, NULL}},
    {"ok-device-unpinned-hs",
     FUZZ_TOKEN_HS_KID,
     {HB_ROLE_DEVICE, "acct0002", NULL, NULL, NOW - 60, HB_TOKEN_TTL_DEFAULT, NULL, NULL, NULL}},
    {"ok-device-es",
     FUZZ_TOKEN_ES_KID,
     {HB_ROLE_DEVICE, "acct.0003_x", "set-top:7", NULL, NOW, 60, NULL, NULL, NULL}},
    {"ok-device-prefix-hs",
     FUZZ_TOKEN_HS_KID,
     {HB_ROLE_DEVICE, "acct0004", "web-1", "tenant/hb", NOW - 1, 86400, NULL, NULL, NULL}},
    {"ok-consumer-hs",
     FUZZ_TOKEN_HS_KID,
     {HB_ROLE_CONSUMER, NULL, NULL, NULL, NOW - 3600, 86400, NULL, NULL, NULL}},
    {"ok-consumer-es",
     FUZZ_TOKEN_ES_KID,
     {HB_ROLE_CONSUMER, NULL, NULL, NULL, NOW + 10, 86400, NULL, NULL, NULL}},
    {"expired-device-hs",
     FUZZ_TOKEN_HS_KID,
     {HB_ROLE_DEVICE, "acct0001", "tv-1", NULL, NOW - 7200, HB_TOKEN_TTL_DEFAULT, NULL, NULL,
      NULL}},
    {"future-device-es",
     FUZZ_TOKEN_ES_KID,
     {HB_ROLE_DEVICE, "acct0001", "tv-1", NULL, NOW + 3600, HB_TOKEN_TTL_DEFAULT, NULL, NULL,
      NULL}},
};
#undef NOW

static const struct hb_key *key_of(const char *kid)
{
    const struct hb_keyring *ring = fuzz_token_keyring();
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i].kid, kid) == 0)
            return &ring->keys[i];
    }
    abort();
}

static bool write_seed(const char *dir, const char *prefix, const char *name, const void *data,
                       size_t len)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s%s", dir, prefix, name);
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL && fwrite(data, 1, len, f) == len;
    if (f != NULL && fclose(f) != 0)
        ok = false;
    if (!ok)
        perror(path);
    return ok;
}

/* The claims of a token, its middle part decoded, for the target's claims mode. */
static bool write_claims(const char *dir, const char *name, const char *token)
{
    const char *from = strchr(token, '.') + 1;
    size_t n = (size_t)(strchr(from, '.') - from);
    char b64[HB_TOKEN_MAX + 4];
    unsigned char json[HB_TOKEN_MAX];
    for (size_t i = 0; i < n; i++)
        b64[i] = from[i] == '-' ? '+' : from[i] == '_' ? '/' : from[i];
    size_t pad = (4 - n % 4) % 4;
    memset(b64 + n, '=', pad);
    int len = EVP_DecodeBlock(json, (const unsigned char *)b64, (int)(n + pad));
    return len >= (int)pad && write_seed(dir, "ok-claims-", name + 3, json, (size_t)len - pad);
}

static int mint_all(const char *dir)
{
    for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        char err[256];
        char *token = hb_token_mint(key_of(seeds[i].kid), &seeds[i].req, err, sizeof(err));
        if (token == NULL) {
            fprintf(stderr, "%s: %s\n", seeds[i].name, err);
            return 1;
        }
        bool ok =
            write_seed(dir, "", seeds[i].name, token, strlen(token)) &&
            (strncmp(seeds[i].name, "ok-", 3) != 0 || write_claims(dir, seeds[i].name, token));
        free(token);
        if (!ok)
            return 1;
    }
    return 0;
}

static bool check_one(const char *path, const uint8_t *data, size_t size, void *arg)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    enum hb_token_error e = fuzz_token_run(data, size);
    if (strncmp(base, "ok-", 3) != 0)
        return true;
    if (e != HB_TOKEN_OK) {
        fprintf(stderr, "%s: %s, expected ok (re-mint with fuzz_token_seeds DIR)\n", path,
                hb_token_error_name(e));
        return false;
    }
    ++*(int *)arg;
    return true;
}

int main(int argc, char **argv)
{
    if (argc == 2)
        return mint_all(argv[1]);
    if (argc != 3 || strcmp(argv[1], "--check") != 0) {
        fprintf(stderr, "usage: %s [--check] DIR\n", argv[0]);
        return 2;
    }
    int verified = 0;
    long n = fuzz_corpus_each(argv[2], check_one, &verified);
    if (n < 0)
        return 1;
    printf("%ld token inputs, %d seeds verify\n", n, verified);
    return verified > 0 ? 0 : 1;
}
