/* Settings every program shares, with the same long options and environment variables:
 * --broker/HB_BROKER, --redis/HB_REDIS, --interval/HB_INTERVAL, --topic-prefix/HB_TOPIC_PREFIX.
 * Precedence: option, then environment, then default. */
#ifndef HB_CONFIG_H
#define HB_CONFIG_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

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

/* Option codes of the shared long options, above any short option character. */
enum {
    HB_OPT_BROKER = 1000,
    HB_OPT_REDIS,
    HB_OPT_INTERVAL,
    HB_OPT_TOPIC_PREFIX,
    HB_OPT_FIRST_PROGRAM_OPTION = 1100
};

/* Initializer for the shared entries of a program's struct option array. */
#define HB_CONFIG_LONG_OPTIONS                                                                    \
    {"broker", required_argument, NULL, HB_OPT_BROKER},                                           \
        {"redis", required_argument, NULL, HB_OPT_REDIS},                                         \
        {"interval", required_argument, NULL, HB_OPT_INTERVAL},                                   \
        {"topic-prefix", required_argument, NULL, HB_OPT_TOPIC_PREFIX}

/* Help text of the shared options, for a program's --help. */
extern const char hb_config_help[];

/* Fills cfg from the environment and defaults. Returns false (after reporting why) when an
 * environment variable is malformed. */
bool hb_config_init(struct hb_config *cfg);

/* Applies one shared option from getopt_long. Returns 1 when handled, 0 when opt is not a
 * shared option, -1 (after reporting why) when its argument is invalid. The first --broker
 * replaces the environment's brokers; later ones add to the list. */
int hb_config_option(struct hb_config *cfg, int opt, const char *arg);

/* Parses a whole number in [min, max]; false when arg is not entirely such a number. */
bool hb_parse_long(const char *arg, long min, long max, long *out);

/* Parses a topic prefix: 1..64 bytes of the id alphabet plus '/', no empty level. */
bool hb_topic_prefix_valid(const char *prefix);

#endif
