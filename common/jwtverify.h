/* Verifying a token against a keyring: the one place that decides whether a credential is
 * genuine and current. libjwt (OpenSSL) checks the signature; everything libjwt 1.10 does not
 * check (algorithm pinning, times, claims) is checked here. */
#ifndef HB_JWTVERIFY_H
#define HB_JWTVERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "keyring.h"
#include "token.h"

/* The stable name of e ("ok", "malformed", "bad_alg", ...), "unknown" when out of range. */
const char *hb_token_error_name(enum hb_token_error e);

/* Verifies token[0..len) against the ring at now_s and fills out (out is zeroed first; it is
 * filled only on HB_TOKEN_OK). Never trusts the header beyond choosing the key by kid; the
 * key's own algorithm is the only one accepted, checked before libjwt sees the token and again
 * after (libjwt 1.10's jwt_decode would accept "HS256" keyed with an ES256 public key PEM, and
 * checks neither exp nor nbf). Required claims: exp, iat, sub, role, acl; nbf, device and jti
 * are optional (jti, when present, must be an id: it is what a revocation list names). A
 * header with duplicate names or a "crit" member is MALFORMED. Allocates only temporarily;
 * never logs. */
enum hb_token_error hb_token_verify(const struct hb_keyring *ring, const char *token, size_t len,
                                    int64_t now_s, struct hb_token_claims *out);

#endif
