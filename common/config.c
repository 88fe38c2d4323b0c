/* The settings shared by every program. Values are checked when read, so a program never
 * starts with a half-valid configuration. Strings point into argv or the environment. */
#include "config.h"

#include "ids.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char hb_config_help[] =
    "  --broker URI          MQTT broker, tcp://host:port (env HB_BROKER, default " HB_DEFAULT_BROKER
    ")\n"
    "                        may be given several times\n"
    "  --redis URI           redis://[[user]:password@]host[:port][/db] or unix:///path\n"
    "                        (env HB_REDIS, default " HB_DEFAULT_REDIS ")\n"
    "  --interval SECONDS    binning interval, aligned to the epoch (env HB_INTERVAL, default 60)\n"
    "  --topic-prefix P      heartbeat topics are P/<account>/<device> (env HB_TOPIC_PREFIX,\n"
    "                        default hb)\n";

bool hb_parse_long(const char *arg, long min, long max, long *out)
{
    /* strtol would skip leading blanks and take a '+': a number here is digits only. */
    if (arg == NULL || !(isdigit((unsigned char)arg[0]) ||
                         (arg[0] == '-' && isdigit((unsigned char)arg[1]))))
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

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

static bool set_interval(struct hb_config *cfg, const char *arg, const char *from)
{
    long v;
    /* One week at most: keys live two intervals, and a longer bin is no concurrency signal. */
    if (!hb_parse_long(arg, 1, 7 * 24 * 3600, &v)) {
        HB_ERROR("%s: interval must be whole seconds in 1..604800, got '%s'", from, arg);
        return false;
    }
    cfg->interval_s = (int)v;
    return true;
}

static bool set_prefix(struct hb_config *cfg, const char *arg, const char *from)
{
    if (!hb_topic_prefix_valid(arg)) {
        HB_ERROR("%s: topic prefix must be 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' between "
                 "levels, got '%s'",
                 from, arg);
        return false;
    }
    cfg->topic_prefix = arg;
    return true;
}

bool hb_config_init(struct hb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    const char *broker = getenv("HB_BROKER");
    cfg->brokers[0] = broker && *broker ? broker : HB_DEFAULT_BROKER;
    cfg->n_brokers = 1;
    const char *redis = getenv("HB_REDIS");
    cfg->redis = redis && *redis ? redis : HB_DEFAULT_REDIS;
    cfg->interval_s = HB_DEFAULT_INTERVAL;
    cfg->topic_prefix = HB_DEFAULT_TOPIC_PREFIX;
    const char *interval = getenv("HB_INTERVAL");
    if (interval && *interval && !set_interval(cfg, interval, "HB_INTERVAL"))
        return false;
    const char *prefix = getenv("HB_TOPIC_PREFIX");
    if (prefix && *prefix && !set_prefix(cfg, prefix, "HB_TOPIC_PREFIX"))
        return false;
    return true;
}

int hb_config_option(struct hb_config *cfg, int opt, const char *arg)
{
    switch (opt) {
    case HB_OPT_BROKER:
        if (!cfg->brokers_from_options) {
            cfg->brokers_from_options = true;
            cfg->n_brokers = 0;
        }
        if (cfg->n_brokers == HB_BROKERS_MAX) {
            HB_ERROR("--broker: at most %d brokers", HB_BROKERS_MAX);
            return -1;
        }
        cfg->brokers[cfg->n_brokers++] = arg;
        return 1;
    case HB_OPT_REDIS:
        cfg->redis = arg;
        return 1;
    case HB_OPT_INTERVAL:
        return set_interval(cfg, arg, "--interval") ? 1 : -1;
    case HB_OPT_TOPIC_PREFIX:
        return set_prefix(cfg, arg, "--topic-prefix") ? 1 : -1;
    default:
        return 0;
    }
}
