/* The service API keys hb-tokend accepts as "Authorization: Bearer <key>". Only SHA-256
 * digests are kept in memory, and a presented key is compared with every digest in constant
 * time (CRYPTO_memcmp), so neither timing nor a memory dump gives a key away. */
#ifndef HB_TOKEN_APIKEYS_H
#define HB_TOKEN_APIKEYS_H

#include <stdbool.h>
#include <stddef.h>

#define API_KEYS_MAX 64
#define API_KEY_MIN_LEN 16
#define API_KEY_MAX_LEN 256

struct api_keys {
    unsigned char digest[API_KEYS_MAX][32];
    size_t n;
};

/* Reads one key per line (blank lines and lines starting with '#' are skipped; a trailing \r
 * is dropped). Each key is 16..256 printable ASCII bytes without spaces. Returns false with a
 * reason in err (never the key itself); at least one key is required. */
bool api_keys_load(struct api_keys *keys, const char *path, char *err, size_t errlen);

/* The index of presented[0..len) among the keys (in file order), or -1 when it is none of
 * them. Compares with every key, so it takes the same time whichever key matches. */
int api_keys_find(const struct api_keys *keys, const char *presented, size_t len);

void api_keys_finish(struct api_keys *keys);

#endif
