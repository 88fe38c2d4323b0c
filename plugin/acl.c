/* Topic matching of a token's acl claim, the broker plugin's only use of it: a requested topic
 * or filter against the claim's rules, first match decides. Pure string work with no allocation,
 * called on every publish, subscribe and delivery the broker checks. */
#include "acl.h"

#include "ids.h"
#include "topic.h"

#include <string.h>

/* A rule topic after placeholder expansion: each placeholder grows to at most an id. */
#define EXPANDED_TOPIC_MAX (HB_ACL_TOPIC_MAX + 8 * HB_ID_MAX)

static bool placeholder_value_ok(const char *v)
{
    return v != NULL && hb_id_valid(v, strlen(v));
}

/* Replaces ${clientid} and ${username} in rule into out; false when a placeholder's value is not
 * an id, another "${" appears, or the result does not fit. */
static bool expand(const char *rule, const char *client_id, const char *username, char *out,
                   size_t outlen)
{
    size_t o = 0;
    for (const char *p = rule; *p;) {
        const char *value = NULL;
        size_t skip = 1;
        if (p[0] == '$' && p[1] == '{') {
            if (strncmp(p, "${clientid}", 11) == 0)
                value = client_id;
            else if (strncmp(p, "${username}", 11) == 0)
                value = username;
            else
                return false;
            if (!placeholder_value_ok(value))
                return false;
            skip = 11;
        }
        size_t n = value ? strlen(value) : 1;
        if (o + n >= outlen)
            return false;
        memcpy(out + o, value ? value : p, n);
        o += n;
        p += skip;
    }
    out[o] = '\0';
    return true;
}

/* Whether every topic that filter req matches is matched by filter rule (both valid). A
 * concrete topic is a filter that matches itself, so this is also plain topic matching. A
 * wildcard in the first level never matches a level starting with '$' (MQTT 4.7.2). */
static bool filter_covers(const char *rule, const char *req)
{
    const char *r = rule, *q = req;
    for (bool first = true;; first = false) {
        size_t rl = strcspn(r, "/"), ql = strcspn(q, "/");
        bool dollar = first && q[0] == '$';
        if (rl == 1 && r[0] == '#')
            return !dollar;
        if (ql == 1 && q[0] == '#')
            return false; /* the request reaches deeper than this rule level allows */
        if (rl == 1 && r[0] == '+') {
            if (dollar)
                return false;
        } else if (rl != ql || memcmp(r, q, rl) != 0) {
            return false; /* a literal level covers only itself, never a '+' */
        }
        r += rl;
        q += ql;
        if (*q == '\0')
            return *r == '\0' || strcmp(r, "/#") == 0; /* "a/#" also matches "a" */
        if (*r == '\0')
            return false;
        r++;
        q++;
    }
}

/* "$share/<group>/F" -> "F"; anything else unchanged. NULL when a $share filter is cut short. */
static const char *strip_share(const char *filter)
{
    if (strncmp(filter, "$share/", 7) != 0)
        return filter;
    const char *slash = strchr(filter + 7, '/');
    return slash && slash[1] ? slash + 1 : NULL;
}

static bool rule_matches(const struct hb_acl_rule *rule, const char *client_id,
                         const char *username, enum hb_acl_action action, const char *topic)
{
    bool action_ok = action == HB_ACL_READ ? (rule->action & HB_ACL_SUBSCRIBE) != 0
                                           : (rule->action & action) != 0;
    char filter[EXPANDED_TOPIC_MAX];
    if (!action_ok || !expand(rule->topic, client_id, username, filter, sizeof(filter)) ||
        !hb_topic_filter_valid(filter, true, false))
        return false;
    const char *f = action == HB_ACL_READ ? strip_share(filter) : filter;
    return f != NULL && filter_covers(f, topic);
}

/* The first rule matching action on topic, or NULL (also for anything invalid). */
static const struct hb_acl_rule *deciding_rule(const struct hb_token_claims *claims,
                                               const char *client_id, const char *username,
                                               enum hb_acl_action action, const char *topic)
{
    if (claims == NULL || topic == NULL)
        return NULL;
    if (action != HB_ACL_PUBLISH && action != HB_ACL_SUBSCRIBE && action != HB_ACL_READ)
        return NULL;
    if (!hb_topic_filter_valid(topic, action == HB_ACL_SUBSCRIBE, false))
        return NULL;
    if (claims->device[0] && (client_id == NULL || strcmp(client_id, claims->device) != 0))
        return NULL;
    for (size_t i = 0; i < claims->n_rules && i < HB_ACL_RULES_MAX; i++) {
        if (rule_matches(&claims->rules[i], client_id, username, action, topic))
            return &claims->rules[i];
    }
    return NULL;
}

bool hb_acl_allows(const struct hb_token_claims *claims, const char *client_id,
                   const char *username, enum hb_acl_action action, const char *topic)
{
    const struct hb_acl_rule *r = deciding_rule(claims, client_id, username, action, topic);
    return r != NULL && r->allow;
}

bool hb_acl_allows_retained(const struct hb_token_claims *claims, const char *client_id,
                            const char *username, enum hb_acl_action action, const char *topic)
{
    if (action != HB_ACL_PUBLISH && action != HB_ACL_READ)
        return false;
    const struct hb_acl_rule *r = deciding_rule(claims, client_id, username, action, topic);
    return r != NULL && r->allow && r->retain;
}
