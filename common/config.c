/* The settings shared by every program, declared once as options (common/options.h). Values
 * are checked when read, so a program never starts with a half-valid configuration. Strings
 * point into argv, the environment or the declarations. */
#include "config.h"

#include "ids.h"

#include <string.h>

#define STR(x) #x
#define XSTR(x) STR(x)

const struct hb_option hb_config_options[HB_CONFIG_N_OPTIONS] = {
    {
        .type = HB_OPTION_STRINGS,
        .name = "broker",
        .metavar = "URI",
        .env = "HB_BROKER",
        .def = HB_DEFAULT_BROKER,
        HB_OPTION_FIELD(struct hb_config, brokers),
        .count = offsetof(struct hb_config, n_brokers),
        .max_count = HB_BROKERS_MAX,
        .flags = HB_OPTION_GIVEN,
        .given = offsetof(struct hb_config, brokers_from_options),
        .error = "at most " XSTR(HB_BROKERS_MAX) " brokers",
        .help = "MQTT broker, tcp://host:port (env HB_BROKER, default " HB_DEFAULT_BROKER ")\n"
                "may be given several times",
    },
    {
        .type = HB_OPTION_STRING,
        .name = "redis",
        .metavar = "URI",
        .env = "HB_REDIS",
        .def = HB_DEFAULT_REDIS,
        HB_OPTION_FIELD(struct hb_config, redis),
        .help = "redis://[[user]:password@]host[:port][/db] or unix:///path\n"
                "(env HB_REDIS, default " HB_DEFAULT_REDIS ")",
    },
    {
        /* One week at most: keys live two intervals, and a longer bin is no concurrency signal. */
        .type = HB_OPTION_INTEGER,
        .name = "interval",
        .metavar = "SECONDS",
        .env = "HB_INTERVAL",
        .def = XSTR(HB_DEFAULT_INTERVAL),
        HB_OPTION_FIELD(struct hb_config, interval_s),
        .min = 1,
        .max = 7 * 24 * 3600,
        .error = "interval must be whole seconds in 1..604800, got '%s'",
        .help = "binning interval, aligned to the epoch (env HB_INTERVAL, default 60)",
    },
    {
        .type = HB_OPTION_STRING,
        .name = "topic-prefix",
        .metavar = "P",
        .env = "HB_TOPIC_PREFIX",
        .def = HB_DEFAULT_TOPIC_PREFIX,
        HB_OPTION_FIELD(struct hb_config, topic_prefix),
        .valid = hb_topic_prefix_valid,
        .error = "topic prefix must be 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' between "
                 "levels, got '%s'",
        .help = HB_CONFIG_TOPIC_PREFIX_HELP,
    },
};

bool hb_topic_prefix_valid(const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > 64 || prefix[0] == '/' || prefix[len - 1] == '/' ||
        strstr(prefix, "//") != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (prefix[i] != '/' && !hb_id_valid(prefix + i, 1))
            return false;
    }
    return true;
}

bool hb_config_init(struct hb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    return hb_options_init(hb_config_options, HB_CONFIG_N_OPTIONS, cfg);
}

int hb_config_option(struct hb_config *cfg, int opt, const char *arg)
{
    if (opt < HB_OPT_BROKER || opt >= HB_OPT_BROKER + HB_CONFIG_N_OPTIONS)
        return 0;
    return hb_option_apply(&hb_config_options[opt - HB_OPT_BROKER], cfg, arg) ? 1 : -1;
}
