/* MQTT topic-filter syntax checks. One function, so that what the verifier accepts in a token's
 * acl claim and what the plugin accepts from a client are the same rule. */
#include "topic.h"

#include <string.h>

bool hb_topic_filter_valid(const char *f, bool wildcards, bool placeholders)
{
    if (f[0] == '\0')
        return false;
    for (const char *p = f; *p; p++) {
        bool level_start = p == f || p[-1] == '/';
        if (*p == '+' || *p == '#') {
            if (!wildcards || !level_start || (p[1] != '\0' && p[1] != '/'))
                return false;
            if (*p == '#' && p[1] != '\0')
                return false;
        } else if (*p == '$' && p[1] == '{') {
            if (!placeholders ||
                (strncmp(p, "${clientid}", 11) != 0 && strncmp(p, "${username}", 11) != 0))
                return false;
        }
    }
    return true;
}
