/* The plugin's settings from mosquitto.conf (plugin_opt_NAME VALUE lines; mosquitto hands them
 * over without the "plugin_opt_" prefix). Parsed into a fresh struct that the caller uses only
 * when every option parsed and every configured key loaded. */
#ifndef HB_AUTH_OPTIONS_H
#define HB_AUTH_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "keyring.h"
#include "revoked.h"

#define HB_AUTH_TOPIC_PREFIX_MAX 64

struct hb_auth_options {
    struct hb_keyring ring;
    char topic_prefix[HB_AUTH_TOPIC_PREFIX_MAX + 1];
    size_t max_token_bytes;
    struct hb_revoked revoked; /* plugin_opt_revoked_file, loaded; empty without one */
};

/* One option as mosquitto passes it. */
struct hb_auth_option {
    const char *key;
    const char *value;
};

/* Parses options:
 *   key_file PATH, key_file_N PATH (N = 2..HB_KEYRING_MAX): key files (see hb_key_load);
 *   key_id KID, key_id_N KID: the kid of that key (default: the file name without directory
 *     and extension);
 *   topic_prefix P (default "hb"); max_token_bytes N (64..HB_TOKEN_MAX, default 4096);
 *   revoked_file PATH: a revocation list (revoked.h), which must load now.
 * At least one key is required and every configured key must load; an unknown or repeated
 * option is an error. On failure returns false with the reason in err and leaves nothing
 * allocated. Never logs key material. */
bool hb_auth_options_parse(struct hb_auth_options *out, const struct hb_auth_option *opts, size_t n,
                           char *err, size_t errlen);

/* Frees the keys and the revocation list. */
void hb_auth_options_finish(struct hb_auth_options *o);

#endif
