/* Settings every program shares, with the same long options and environment variables:
 * --broker/HB_BROKER, --redis/HB_REDIS, --interval/HB_INTERVAL, --topic-prefix/HB_TOPIC_PREFIX.
 * Precedence: option, then environment, then default. */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"

#define HB_DEFAULT_BROKER "tcp://127.0.0.1:1883"
#define HB_DEFAULT_REDIS "redis://127.0.0.1:6379"
#define HB_DEFAULT_INTERVAL 60
#define HB_DEFAULT_TOPIC_PREFIX "hb"
#define HB_BROKERS_MAX 16

#ifndef HB_VERSION
#define HB_VERSION "0.0.0"
#endif

struct hb_config {
    const char *brokers[HB_BROKERS_MAX]; /* --broker may repeat; at least one after load */
    size_t n_brokers;
    bool brokers_from_options; /* the first --broker replaced the environment's */
    const char *redis;
    int interval_s;
    const char *topic_prefix;
};

/* The shared options, for a program's option groups (common/options.h). */
extern const struct hb_option hb_config_options[];
#define HB_CONFIG_N_OPTIONS 4
#define HB_CONFIG_GROUP(type, member)                                                              \
    {                                                                                              \
        hb_config_options, HB_CONFIG_N_OPTIONS, offsetof(type, member)                             \
    }

/* Help text of --topic-prefix, for programs that take only this one of the shared options. */
#define HB_CONFIG_TOPIC_PREFIX_HELP                                                                \
    "heartbeat topics are P/<account>/<device> (env HB_TOPIC_PREFIX,\ndefault hb)"

/* Codes of the shared options for hb_config_option, in the order of hb_config_options. */
enum {
    HB_OPT_BROKER = 1000,
    HB_OPT_REDIS,
    HB_OPT_INTERVAL,
    HB_OPT_TOPIC_PREFIX,
    HB_OPT_FIRST_PROGRAM_OPTION = 1100
};

/* Fills cfg from the environment and defaults. Returns false (after reporting why) when an
 * environment variable is malformed. */
bool hb_config_init(struct hb_config *cfg);

/* Applies one shared option, named by its HB_OPT_ code, as given on the command line. Returns
 * 1 when applied, 0 when opt names no shared option (nothing done), -1 (after reporting why)
 * when arg is unusable. The first --broker replaces the environment's brokers; later ones add
 * to the list. */
int hb_config_option(struct hb_config *cfg, int opt, const char *arg);

/* Parses a topic prefix: 1..64 bytes of the id alphabet plus '/', no empty level. */
bool hb_topic_prefix_valid(const char *prefix);

#endif
