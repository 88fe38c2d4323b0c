/* The shared admission options as one option group: a program adds HB_PLAY_OPTIONS_GROUP to
 * its spec and gets the same names, variables, defaults and checks as every other program. */
#include "playopts.h"

#include "config.h"
#include "control.h"
#include "log.h"

#include <string.h>

static bool parse_policy(void *opts, const char *value)
{
    return hb_play_policy_parse(value, &((struct hb_play_options *)opts)->default_policy);
}

#define NUMBER_ERROR(lo, hi) "expected a whole number in " #lo ".." #hi ", got '%.80s'"

const struct hb_option hb_play_option_table[HB_PLAY_N_OPTIONS] = {
    {.type = HB_OPTION_STRING,
     .name = "control-prefix",
     .metavar = "P",
     .env = "HB_CONTROL_PREFIX",
     .def = HB_CONTROL_PREFIX_DEFAULT,
     HB_OPTION_FIELD(struct hb_play_options, control_prefix),
     .valid = hb_topic_prefix_valid,
     .error = "'%.80s' is not a topic prefix",
     .help = "stops go to P/<account>/<device> (default ctl)"},
    {.type = HB_OPTION_INTEGER,
     .name = "default-limit",
     .metavar = "N",
     .env = "HB_DEFAULT_LIMIT",
     .def = "3",
     HB_OPTION_FIELD(struct hb_play_options, default_limit),
     .min = 0,
     .max = HB_PLAYS_LIMIT_MAX,
     .help = "devices per account without its own limits (default 3)"},
    {.type = HB_OPTION_CUSTOM,
     .name = "default-policy",
     .metavar = "P",
     .env = "HB_DEFAULT_POLICY",
     .def = "block_new",
     .parse = parse_policy,
     .error = "expected block_new or evict_oldest, got '%.80s'",
     .help = "block_new or evict_oldest (default block_new)"},
    {.type = HB_OPTION_INTEGER,
     .name = "heartbeat-seconds",
     .metavar = "S",
     .env = "HB_HEARTBEAT_SECONDS",
     .def = "10",
     HB_OPTION_FIELD(struct hb_play_options, heartbeat_s),
     .min = 1,
     .max = 600,
     .error = NUMBER_ERROR(1, 600),
     .help = "heartbeat period told to devices (default 10)"},
    {.type = HB_OPTION_INTEGER,
     .name = "grace-seconds",
     .metavar = "S",
     .env = "HB_GRACE_SECONDS",
     HB_OPTION_FIELD(struct hb_play_options, grace_s),
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct hb_play_options, grace_given),
     .min = 1,
     .max = 3600,
     .error = NUMBER_ERROR(1, 3600),
     .help = "a device not seen for S seconds loses its slot\n(default 3 heartbeat periods)"},
};

bool hb_play_options_check(struct hb_play_options *o)
{
    if (!o->grace_given)
        o->grace_s = 3 * o->heartbeat_s;
    if (o->grace_s <= o->heartbeat_s) {
        HB_ERROR("--grace-seconds %ld must be longer than a heartbeat period (%ld s)", o->grace_s,
                 o->heartbeat_s);
        return false;
    }
    return true;
}

void hb_play_options_config(const struct hb_play_options *o, struct hb_plays_config *out)
{
    memset(out, 0, sizeof(*out));
    out->defaults.devices = o->default_limit;
    out->defaults.policy = o->default_policy;
    out->grace_ms = (int64_t)o->grace_s * 1000;
}
