/* MQTT topic and topic-filter syntax, as the acl claim of a token uses it: the verifier checks
 * a token's rules with it, the broker plugin the topics clients ask for. */
#ifndef HB_TOPIC_H
#define HB_TOPIC_H

#include <stdbool.h>

/* Whether f is a non-empty topic (wildcards false) or topic filter (wildcards true): + and #
 * only as whole levels, # only last. With placeholders, "${" must start ${clientid} or
 * ${username}; without, "${" is refused. Pure. */
bool hb_topic_filter_valid(const char *f, bool wildcards, bool placeholders);

#endif
