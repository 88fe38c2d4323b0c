/* GET /.well-known/jwks.json: hb-api's ES256 public keys as a JWK Set. The document is built
 * once at startup, since the keys never change while the service runs: a request copies fixed
 * text (public by nature, so no API key, and cacheable for JWKS_MAX_AGE_S), and the extra keys
 * named by --publish-key are wiped as soon as their public halves are exported. */
#include "jwks.h"

#include "api.h"
#include "log.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

/* How long a cache may keep the document: rotation waits at least this long plus the broker's
 * refresh interval between publishing a key and signing with it (README). */
#define JWKS_MAX_AGE "max-age=300"

/* Appends key's JWK to keys unless another key there has its kid. False after reporting. */
static bool add_jwk(cJSON *keys, const struct hb_key *key, const char *what)
{
    const cJSON *other;
    cJSON_ArrayForEach(other, keys)
    {
        if (strcmp(cJSON_GetObjectItemCaseSensitive(other, "kid")->valuestring, key->kid) == 0) {
            HB_ERROR("%s: two published keys with the id '%s'; name the key files after their "
                     "kids",
                     what, key->kid);
            return false;
        }
    }
    char err[256];
    cJSON *jwk = hb_key_jwk(key, err, sizeof(err));
    if (jwk == NULL) {
        HB_ERROR("%s: %s", what, err);
        return false;
    }
    cJSON_AddItemToArray(keys, jwk);
    return true;
}

/* Loads one --publish-key file, adds its public JWK to keys and wipes it. */
static bool add_file(cJSON *keys, const char *path)
{
    char kid[HB_ID_MAX + 1], err[512], what[300];
    snprintf(what, sizeof(what), "--publish-key %.250s", path);
    if (!hb_key_default_kid(path, kid, sizeof(kid))) {
        HB_ERROR("%s: the file name gives no valid key id (1-64 bytes of A-Z a-z 0-9 . _ - : "
                 "before the extension)",
                 what);
        return false;
    }
    struct hb_key key;
    if (!hb_key_load(&key, kid, path, err, sizeof(err))) {
        HB_ERROR("%s", err);
        return false;
    }
    bool ok = key.alg == HB_TOKEN_ES256;
    if (!ok)
        HB_ERROR("%s: an HMAC secret is never published; give an ES256 key", what);
    ok = ok && add_jwk(keys, &key, what);
    hb_key_finish(&key);
    return ok;
}

char *api_jwks_create(const struct hb_key *signer, const char *const *publish, size_t n,
                      size_t *len)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *keys = doc ? cJSON_AddArrayToObject(doc, "keys") : NULL;
    bool ok = keys != NULL;
    if (!ok)
        HB_ERROR("JWKS: out of memory");
    if (ok && signer->alg == HB_TOKEN_ES256)
        ok = add_jwk(keys, signer, "--key");
    for (size_t i = 0; ok && i < n; i++)
        ok = add_file(keys, publish[i]);
    char *text = ok ? cJSON_PrintUnformatted(doc) : NULL;
    if (ok && text == NULL)
        HB_ERROR("JWKS: out of memory");
    if (text != NULL) {
        *len = strlen(text);
        HB_INFO("/.well-known/jwks.json publishes %d ES256 keys%s", cJSON_GetArraySize(keys),
                signer->alg == HB_TOKEN_ES256 ? "" : " (the HS256 signing secret never is)");
    }
    cJSON_Delete(doc);
    return text;
}

void api_jwks_get(struct api *a, struct hb_httpd_request *req)
{
    if (a->jwks == NULL) { /* hb-tokend: never routed here */
        api_refuse(a, req, API_BAD_NOT_FOUND, NULL);
        return;
    }
    req->cache = JWKS_MAX_AGE;
    hb_httpd_reply_text(req, MHD_HTTP_OK, "application/json", a->jwks, a->jwks_len);
}
