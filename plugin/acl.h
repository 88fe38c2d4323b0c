/* Whether a token's acl claim lets a client publish, subscribe or receive on a topic: MQTT
 * topic-filter matching with EMQX's ${clientid} and ${username} placeholders. */
#ifndef HB_ACL_H
#define HB_ACL_H

#include <stdbool.h>

#include "token.h"

/* Whether the claims let a client with this client id (and username) do action on topic.
 * Rules are tried in order, the first whose action and topic match decides; no match denies.
 * - HB_ACL_PUBLISH: topic must be concrete (no + or #); a rule matches when its filter matches
 *   the topic (MQTT wildcard semantics; a wildcard never matches a first level starting with $).
 * - HB_ACL_SUBSCRIBE: topic is the requested filter; a rule matches when every topic the
 *   request could match is matched by the rule's filter (rule hb/+/+ allows hb/+/+ and
 *   hb/acct/+, never hb/# or #). A "$share/<group>/" prefix is matched as given, level by level
 *   (rule $share/+/hb/+/+ allows $share/hb-consumers/hb/+/+).
 * - HB_ACL_READ: topic is the concrete topic of a message being delivered; allowed when a
 *   SUBSCRIBE or ALL rule would allow subscribing to exactly that topic, where a rule
 *   "$share/<group>/F" counts as F (a shared subscriber receives messages on F's topics).
 * Placeholders ${clientid} and ${username} are replaced before matching; a rule with a
 * placeholder whose value is NULL or outside the id alphabet never matches (so a client id
 * "+" or "#" cannot widen a rule). When the claims pin a device, any client id other than it
 * is denied everything. Malformed topics and filters are denied. Pure: no allocation, no I/O. */
bool hb_acl_allows(const struct hb_token_claims *claims, const char *client_id,
                   const char *username, enum hb_acl_action action, const char *topic);

/* Whether the claims let this client publish (HB_ACL_PUBLISH) or receive (HB_ACL_READ) a
 * RETAINED message on topic: the rule that decides hb_acl_allows for the same action allows it
 * and says "retain": true. Any other action is denied. */
bool hb_acl_allows_retained(const struct hb_token_claims *claims, const char *client_id,
                            const char *username, enum hb_acl_action action, const char *topic);

#endif
