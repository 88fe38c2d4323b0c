/* Signing and verification keys of tokens: key files loaded into memory that is wiped when
 * freed, and the keyring of the keys accepted at once (rotation overlap). */
#ifndef HB_KEYRING_H
#define HB_KEYRING_H

#include <stdbool.h>
#include <stddef.h>

#include "ids.h"

#include <openssl/types.h>

#define HB_KEYRING_MAX 8 /* keys configured at once (rotation overlap) */

enum hb_token_alg { HB_TOKEN_HS256, HB_TOKEN_ES256 };

/* One signing or verification key. */
struct hb_key {
    char kid[HB_ID_MAX + 1]; /* "kid" header value selecting this key */
    enum hb_token_alg alg;   /* HS256 for a secret, ES256 for a PEM EC P-256 key */
    bool can_sign;           /* secret or private key (a public key only verifies) */
    unsigned char *material; /* secret bytes, or PEM text (the private key when can_sign), owned */
    size_t len;
    /* ES256 only: the public key as PEM, owned. libjwt 1.10 verifies an ES256 signature only
     * with a public key PEM (a private key PEM makes jwt_decode fail), so it is derived once
     * at load time. NULL for HS256. */
    unsigned char *public_pem;
    size_t public_len;
    /* ES256 only: the key parsed once at load time (private when can_sign), owned; the minter
     * signs with it directly. OpenSSL allows concurrent use of a built EVP_PKEY, so threads may
     * share it. NULL for HS256. */
    EVP_PKEY *pkey;
};

struct hb_keyring {
    struct hb_key keys[HB_KEYRING_MAX];
    size_t n;
};

/* Loads a key file: a PEM key when the file starts with "-----BEGIN" (ES256; a private key can
 * sign, a public key only verifies), otherwise an HMAC secret: the file's contents with one
 * trailing newline (\n or \r\n) stripped, at least 32 bytes. kid must be an id. A PEM key must
 * be an unencrypted EC key on P-256 (prime256v1); RSA, Ed25519, other curves and encrypted keys
 * are refused with a reason. Returns false with a reason in err (key is then zeroed). Never
 * logs key material; the file's bytes are wiped from memory after parsing. */
bool hb_key_load(struct hb_key *key, const char *kid, const char *path, char *err, size_t errlen);
/* The kid a key file gets when none is given: its file name without directory and extension
 * ("/etc/hb/keys/hb-2025-06.pem" -> "hb-2025-06"). One rule for hb-token, hb-tokend, hb-sim
 * and the broker plugin, so they agree. False when that is not an id or does not fit. */
bool hb_key_default_kid(const char *path, char *kid, size_t kidlen);

/* Wipes and frees the key material and the parsed key; the key is zeroed. A zeroed key is a
 * no-op. */
void hb_key_finish(struct hb_key *key);

/* The JWT "alg" name of alg: "HS256" or "ES256". */
const char *hb_key_alg_name(enum hb_token_alg alg);

struct cJSON;
/* The public JWK (RFC 7518 section 6.2) of an ES256 key, for a JWKS document: {"kid", "kty": "EC",
 * "crv": "P-256", "x", "y" (each coordinate's 32 bytes, base64url without padding), "use": "sig",
 * "alg": "ES256"}, read from the public key with OpenSSL's EVP API. A new object the caller
 * deletes, never holding private material; NULL with a reason in err for an HS256 secret
 * (never published) or when out of memory. */
struct cJSON *hb_key_jwk(const struct hb_key *key, char *err, size_t errlen);

/* Adds a loaded key (ownership moves to the ring; key is zeroed). False when full or the kid
 * is already there. */
bool hb_keyring_add(struct hb_keyring *ring, struct hb_key *key, char *err, size_t errlen);
/* The key of the ring with this kid, or NULL. */
const struct hb_key *hb_keyring_find(const struct hb_keyring *ring, const char *kid);
void hb_keyring_finish(struct hb_keyring *ring);

#endif
