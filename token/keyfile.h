/* Loading the signing key of hb-token and hb-tokend: the key id defaults to the key file's
 * name without its directory and last extension ("keys/2025-01.pem" -> "2025-01"). */
#ifndef HB_TOKEN_KEYFILE_H
#define HB_TOKEN_KEYFILE_H

#include "keyring.h"

#include <stdbool.h>

/* Writes the default kid of path into kid. False (after reporting why) when that name is not
 * an id, so the user must pass --kid. */
bool keyfile_default_kid(const char *path, char kid[HB_ID_MAX + 1]);

/* Loads path as a key with kid, or with the default kid when kid is NULL. Reports failures
 * (never key material) and returns false. */
bool keyfile_load(struct hb_key *key, const char *path, const char *kid);

#endif
