/* hb-api's command line and HB_* environment: every option has a variable, the option wins. */
#ifndef HB_API_OPTIONS_H
#define HB_API_OPTIONS_H

#include "config.h"
#include "plays.h"

#include <stdbool.h>

struct api_options {
    struct hb_config common; /* --broker, --redis, --interval, --topic-prefix */
    bool control;            /* a broker was named (--broker or HB_BROKER): send stops */
    const char *listen, *key_file, *kid, *api_key_file, *control_prefix;
    long default_limit, grace_s, heartbeat_s, token_ttl, threads, max_connections;
    enum hb_play_policy default_policy;
    bool grace_given, fail_open;
    const char *web_root, *demo_mqtt_url; /* web_root NULL: no pages */
    bool demo_backend;
};

/* Fills o from the environment and argv. 0: run; 1: exit 0 (help, version); 2: usage error
 * (reported). */
int api_options_parse(struct api_options *o, int argc, char **argv);

#endif
