/* The fixed keyring and clock of fuzz_token.c, shared with token_seeds.c, which mints the seed
 * tokens with the same keys so that they verify when replayed and fuzzed. */
#ifndef HB_FUZZ_TOKEN_H
#define HB_FUZZ_TOKEN_H

#include "keyring.h"
#include "token.h"

#include <stddef.h>
#include <stdint.h>

/* The time every input is verified at (Unix seconds, 2027-01-15). */
#define FUZZ_TOKEN_NOW INT64_C(1800000000)

/* The two keys in the ring: an HS256 secret and an ES256 (P-256) private key. */
#define FUZZ_TOKEN_HS_KID "fuzz-hs"
#define FUZZ_TOKEN_ES_KID "fuzz-es"

/* The ring, loaded through hb_key_load on first use and finished at exit. Aborts when a key
 * does not load. */
const struct hb_keyring *fuzz_token_keyring(void);

/* Verifies one input as LLVMFuzzerTestOneInput does, checking every invariant, and returns the
 * verdict: an input starting with '{' is a claims set, signed with the HS256 key first. */
enum hb_token_error fuzz_token_run(const uint8_t *data, size_t size);

#endif
