/* The parts of a compact JWT (header.claims.signature) read WITHOUT verifying anything: the
 * base64url decoding and JSON checks the verifier runs before libjwt sees a token, and a
 * token's exp for its own holder. Needs neither libjwt nor libcrypto, so a program that only
 * peeks at its own token (the consumer) links neither. */
#ifndef HB_JWTPARTS_H
#define HB_JWTPARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* Largest Unix time accepted in a claim: year 2286, far inside a double's exact integers. */
#define HB_JWT_TIME_MAX INT64_C(9999999999)
#define HB_JWT_HEADER_MEMBERS_MAX 16
#define HB_JWT_CLAIM_MEMBERS_MAX 64

/* Whether c is one of the 64 characters of base64url (no padding). */
bool hb_jwt_b64url_char(unsigned char c);

/* Length of the unpadded base64url text of n bytes (without a terminating NUL). */
size_t hb_jwt_b64url_len(size_t n);
/* Writes in[0..n) as unpadded base64url (RFC 7515 section 2) to out, which holds at least
 * hb_jwt_b64url_len(n) + 1 bytes, NUL-terminated. Returns the text's length. */
size_t hb_jwt_b64url_encode(const void *in, size_t n, char *out);

/* Decodes the unpadded base64url part s[0..n) and parses it as a JSON object of at most
 * members_max members without duplicate names. Returns a new object (cJSON_Delete it), or NULL
 * when the text is not canonical base64url, holds a NUL byte, or is not such an object. */
struct cJSON *hb_jwt_part_object(const char *s, size_t n, int members_max);

/* Reads member name of obj as a NumericDate: whole seconds in [0, HB_JWT_TIME_MAX]. Returns 1
 * when present and valid (*out set), 0 when absent, -1 when malformed. */
int hb_jwt_numeric_date(const struct cJSON *obj, const char *name, int64_t *out);

/* The exp claim of token[0..len), read WITHOUT verifying anything: for the holder of a token
 * (the consumer) to say when its own credential runs out. False when the token is not a JWT
 * with a valid exp. Never use it to decide access. */
bool hb_token_peek_exp(const char *token, size_t len, int64_t *exp_s);

#endif
