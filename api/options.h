/* hb-api's command line and HB_* environment: every option has a variable, the option wins. */
#ifndef HB_API_OPTIONS_H
#define HB_API_OPTIONS_H

#include "config.h"
#include "playopts.h"

#include <stdbool.h>
#include <stddef.h>

#define API_PUBLISH_KEYS_MAX 7 /* --publish-key files: with the signing key, a keyring's worth */

struct api_options {
    struct hb_config common;     /* --broker, --redis, --interval, --topic-prefix */
    bool control;                /* a broker was named (--broker or HB_BROKER): send stops */
    struct hb_play_options play; /* --control-prefix, --default-limit, ... (shared) */
    const char *listen, *key_file, *kid, *api_key_file;
    long token_ttl, threads, max_connections;
    double rate_limit, burst; /* POST /v1/tokens per API key; burst as given (0: default) */
    bool fail_open;
    const char *web_root, *demo_mqtt_url; /* web_root NULL: no pages */
    bool demo_backend;
    bool dashboard; /* --dashboard: /dashboard without --demo-backend */
    const char *publish_keys[API_PUBLISH_KEYS_MAX]; /* more ES256 keys in the JWKS */
    size_t n_publish_keys;
    bool publish_keys_given;
};

/* Fills o, a fresh struct, from the defaults, the environment and argv, and checks it as a
 * whole. HB_OPTIONS_USAGE after reporting why. */
enum hb_options_status api_options_parse(struct api_options *o, int argc, char **argv);

#endif
