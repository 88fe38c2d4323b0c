/* Service API keys: loaded from a file, kept as SHA-256 digests, compared in constant time. */
#include "apikeys.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool digest(const char *data, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32;
}

static bool key_bytes_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= ' ' || s[i] > '~')
            return false;
    }
    return true;
}

bool api_keys_load(struct api_keys *keys, const char *path, char *err, size_t errlen)
{
    memset(keys, 0, sizeof(*keys));
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    bool ok = true;
    for (int lineno = 1; ok && (got = getline(&line, &cap, f)) >= 0; lineno++) {
        size_t len = (size_t)got;
        if (len > 0 && line[len - 1] == '\n')
            len--;
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (len == 0 || line[0] == '#')
            continue;
        if (len < API_KEY_MIN_LEN || len > API_KEY_MAX_LEN || !key_bytes_ok(line, len)) {
            snprintf(err, errlen, "%s:%d: an API key must be %d..%d printable bytes without spaces",
                     path, lineno, API_KEY_MIN_LEN, API_KEY_MAX_LEN);
            ok = false;
        } else if (keys->n == API_KEYS_MAX) {
            snprintf(err, errlen, "%s: at most %d API keys", path, API_KEYS_MAX);
            ok = false;
        } else if (!digest(line, len, keys->digest[keys->n++])) {
            snprintf(err, errlen, "%s: SHA-256 failed", path);
            ok = false;
        }
    }
    if (line != NULL) {
        OPENSSL_cleanse(line, cap);
        free(line);
    }
    if (ok && ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        ok = false;
    }
    fclose(f);
    if (ok && keys->n == 0) {
        snprintf(err, errlen, "%s: no API key in the file", path);
        ok = false;
    }
    if (!ok)
        api_keys_finish(keys);
    return ok;
}

int api_keys_find(const struct api_keys *keys, const char *presented, size_t len)
{
    unsigned char d[32];
    if (len == 0 || len > API_KEY_MAX_LEN || !digest(presented, len, d))
        return -1;
    int found = -1;
    for (size_t i = 0; i < keys->n; i++) {
        /* No early exit and no data-dependent branch on the comparison itself. */
        int equal = CRYPTO_memcmp(d, keys->digest[i], sizeof(d)) == 0;
        int mask = -equal; /* all ones when equal */
        found = (found & ~mask) | ((int)i & mask);
    }
    return found;
}

void api_keys_finish(struct api_keys *keys)
{
    OPENSSL_cleanse(keys, sizeof(*keys));
}
