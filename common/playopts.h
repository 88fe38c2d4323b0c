/* The admission settings hb-api and hb-consumer share, declared once (common/options.h) so one
 * environment file serves both: --control-prefix, --default-limit, --default-policy,
 * --heartbeat-seconds and --grace-seconds, with their HB_* variables and defaults. */
#ifndef HB_PLAYOPTS_H
#define HB_PLAYOPTS_H

#include <stdbool.h>
#include <stddef.h>

#include "options.h"
#include "plays.h"

struct hb_play_options {
    const char *control_prefix;
    long default_limit, grace_s, heartbeat_s;
    enum hb_play_policy default_policy;
    bool grace_given;
};

extern const struct hb_option hb_play_option_table[];
#define HB_PLAY_N_OPTIONS 5
#define HB_PLAY_OPTIONS_GROUP(type, member)                                                        \
    {                                                                                              \
        hb_play_option_table, HB_PLAY_N_OPTIONS, offsetof(type, member)                            \
    }

/* After parsing: the grace period defaults to 3 heartbeat periods and must be longer than one.
 * Returns false after reporting why. */
bool hb_play_options_check(struct hb_play_options *o);

/* The scripts' settings (common/plays.h) from o. */
void hb_play_options_config(const struct hb_play_options *o, struct hb_plays_config *out);

#endif
