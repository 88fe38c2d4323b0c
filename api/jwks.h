/* hb-api's JWK Set (GET /.well-known/jwks.json): the public halves of the ES256 keys it signs
 * with or is rotating to or from, so a broker that follows rotation (EMQX's use_jwks) can verify
 * its tokens. HS256 secrets are never published. */
#ifndef HB_API_JWKS_H
#define HB_API_JWKS_H

#include "keyring.h"

#include <stddef.h>

/* The JWKS document {"keys": [...]} of signer (when it is ES256) and of each key file of
 * publish[0..n) (ES256 only, private or public PEM; kid: the file's name, see
 * hb_key_default_kid), in that order. The files' keys are loaded, exported and wiped here; no
 * two keys may share a kid. Returns the text (*len bytes, NUL-terminated) the caller frees with
 * cJSON_free, or NULL after reporting why (a usage error: an HMAC secret, an unreadable file, a
 * kid twice). */
char *api_jwks_create(const struct hb_key *signer, const char *const *publish, size_t n,
                      size_t *len);

#endif
