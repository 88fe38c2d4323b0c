/* Key files for tokens: an HMAC secret (HS256) or a PEM EC P-256 key (ES256), read with
 * OpenSSL and refused with a reason when they are anything else. Every byte of key material
 * read or derived here is wiped when freed; nothing here ever logs it. */
#include "keyring.h"

#include "ids.h"
#include "jwtparts.h"
#include "log.h"
#include "secretfile.h"

#include <cjson/cJSON.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>

#define KEY_FILE_MAX (64 * 1024)
#define HMAC_SECRET_MIN 32

const char *hb_key_alg_name(enum hb_token_alg alg)
{
    return alg == HB_TOKEN_ES256 ? "ES256" : "HS256";
}

static bool load_secret(struct hb_key *key, const char *path, const unsigned char *buf, size_t len,
                        char *err, size_t errlen)
{
    len = hb_secret_trim_newline((const char *)buf, len);
    if (len < HMAC_SECRET_MIN) {
        hb_set_err(err, errlen, "%s: an HMAC secret needs at least %d bytes, this one has %zu",
                   path, HMAC_SECRET_MIN, len);
        return false;
    }
    key->material = malloc(len);
    if (key->material == NULL) {
        hb_set_err(err, errlen, "%s: out of memory", path);
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
        hb_set_err(err, errlen, "%s: out of memory", path);
        return false;
    }
    bool asked_passphrase = false;
    EVP_PKEY *pkey = public_only
                         ? PEM_read_bio_PUBKEY(bio, NULL, refuse_passphrase, &asked_passphrase)
                         : PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, &asked_passphrase);
    BIO_free(bio);
    if (pkey == NULL) {
        if (asked_passphrase)
            hb_set_err(err, errlen, "%s: the key is encrypted; give an unencrypted key", path);
        else
            hb_set_err(err, errlen,
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
        hb_set_err(err, errlen, "%s: a %s key; ES256 needs an EC P-256 key", path,
                   type ? type : "non-EC");
    } else if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &group_len) != 1 ||
               OBJ_txt2nid(group) != NID_X9_62_prime256v1) {
        hb_set_err(err, errlen, "%s: an EC key on curve %s; ES256 needs P-256 (prime256v1)", path,
                   group[0] ? group : "(unknown)");
    } else if (!pem_of(pkey, false, &key->public_pem, &key->public_len) ||
               !pem_of(pkey, !public_only, &key->material, &key->len)) {
        hb_set_err(err, errlen, "%s: cannot serialize the key (out of memory?)", path);
    } else {
        key->alg = HB_TOKEN_ES256;
        key->can_sign = !public_only;
        key->pkey = pkey; /* kept: parsing a PEM key costs ~1 ms, signing with it far less */
        return true;
    }
    EVP_PKEY_free(pkey);
    return ok;
}

bool hb_key_load(struct hb_key *key, const char *kid, const char *path, char *err, size_t errlen)
{
    memset(key, 0, sizeof(*key));
    if (kid == NULL || !hb_id_valid(kid, strlen(kid))) {
        hb_set_err(err, errlen,
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
    EVP_PKEY_free(key->pkey); /* OpenSSL clears private key material when it frees it */
    memset(key, 0, sizeof(*key));
}

#define P256_COORD_LEN 32

/* The affine coordinates of pkey's public point, each left-padded to 32 bytes. */
static bool public_xy(EVP_PKEY *pkey, unsigned char x[P256_COORD_LEN],
                      unsigned char y[P256_COORD_LEN])
{
    BIGNUM *bx = NULL, *by = NULL;
    bool ok = EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &bx) == 1 &&
              EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &by) == 1 &&
              BN_bn2binpad(bx, x, P256_COORD_LEN) == P256_COORD_LEN &&
              BN_bn2binpad(by, y, P256_COORD_LEN) == P256_COORD_LEN;
    BN_free(bx);
    BN_free(by);
    return ok;
}

struct cJSON *hb_key_jwk(const struct hb_key *key, char *err, size_t errlen)
{
    if (key->alg != HB_TOKEN_ES256 || key->pkey == NULL) {
        hb_set_err(err, errlen, "key '%s' is an HMAC secret: never published", key->kid);
        return NULL;
    }
    unsigned char x[P256_COORD_LEN], y[P256_COORD_LEN];
    char x64[4 * ((P256_COORD_LEN + 2) / 3) + 1], y64[sizeof(x64)];
    if (!public_xy(key->pkey, x, y)) {
        hb_set_err(err, errlen, "key '%s': cannot export the public point", key->kid);
        return NULL;
    }
    hb_jwt_b64url_encode(x, sizeof(x), x64);
    hb_jwt_b64url_encode(y, sizeof(y), y64);
    cJSON *jwk = cJSON_CreateObject();
    bool ok = jwk != NULL && cJSON_AddStringToObject(jwk, "kid", key->kid) &&
              cJSON_AddStringToObject(jwk, "kty", "EC") &&
              cJSON_AddStringToObject(jwk, "crv", "P-256") &&
              cJSON_AddStringToObject(jwk, "x", x64) && cJSON_AddStringToObject(jwk, "y", y64) &&
              cJSON_AddStringToObject(jwk, "use", "sig") &&
              cJSON_AddStringToObject(jwk, "alg", hb_key_alg_name(key->alg));
    if (!ok) {
        cJSON_Delete(jwk);
        hb_set_err(err, errlen, "key '%s': out of memory", key->kid);
        return NULL;
    }
    return jwk;
}

bool hb_keyring_add(struct hb_keyring *ring, struct hb_key *key, char *err, size_t errlen)
{
    if (ring->n == HB_KEYRING_MAX) {
        hb_set_err(err, errlen, "at most %d keys at once", HB_KEYRING_MAX);
        return false;
    }
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i].kid, key->kid) == 0) {
            hb_set_err(err, errlen, "two keys with the id '%s'", key->kid);
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

const struct hb_key *hb_keyring_find(const struct hb_keyring *ring, const char *kid)
{
    for (size_t i = 0; i < ring->n; i++) {
        if (strcmp(ring->keys[i].kid, kid) == 0)
            return &ring->keys[i];
    }
    return NULL;
}
