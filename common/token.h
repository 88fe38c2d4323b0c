/* Device and consumer credentials: the vocabulary shared by key loading (keyring.h), minting
 * (mint.h), verification (jwtverify.h), unverified peeking (jwtparts.h) and the broker plugin's
 * acl matching. A token's "acl" claim (EMQX's list form) says exactly which topics its holder may
 * publish or subscribe to, so the same tokens work on mosquitto with the project's plugin and on
 * an EMQX cluster with JWT authentication. Types only: including it links nothing. */
#ifndef HB_TOKEN_H
#define HB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"

#define HB_TOKEN_MAX 4096   /* longest token accepted, bytes */
#define HB_ACL_RULES_MAX 10 /* rules in one token's acl claim */
#define HB_ACL_TOPIC_MAX 256
#define HB_TOKEN_TTL_DEFAULT 1800 /* seconds */

enum hb_token_role { HB_ROLE_DEVICE, HB_ROLE_CONSUMER };

/* Rule actions are PUBLISH, SUBSCRIBE or ALL (both). HB_ACL_READ is only a request: a
 * subscriber receiving a message on a concrete topic (mosquitto's MOSQ_ACL_READ). */
enum hb_acl_action { HB_ACL_PUBLISH = 1, HB_ACL_SUBSCRIBE = 2, HB_ACL_ALL = 3, HB_ACL_READ = 4 };

struct hb_acl_rule {
    bool allow;
    enum hb_acl_action action;
    /* The rule says "retain": true: a publish it allows may be retained, a subscription it
     * allows may receive retained messages. */
    bool retain;
    char topic[HB_ACL_TOPIC_MAX]; /* may contain + and # and ${clientid} / ${username} */
};

/* A verified token. The rules come last so that a copy may keep only the n_rules in use
 * (hb_token_claims_size): the broker plugin holds one per connected client. */
struct hb_token_claims {
    char sub[HB_ID_MAX + 1];
    char device[HB_ID_MAX + 1]; /* pinned client id, or "" */
    enum hb_token_role role;
    char kid[HB_ID_MAX + 1];
    char jti[HB_ID_MAX + 1]; /* the token's id, or "" when it has none */
    int64_t iat, nbf, exp;
    size_t n_rules;
    struct hb_acl_rule rules[HB_ACL_RULES_MAX];
};

/* Bytes of a struct hb_token_claims cut after its first n_rules rules. Nothing reads rules past
 * n_rules. */
#define hb_token_claims_size(n_rules)                                                              \
    (offsetof(struct hb_token_claims, rules) + (n_rules) * sizeof(struct hb_acl_rule))

/* Why a token was refused. Names are stable (logged, counted, tested): hb_token_error_name in
 * jwtverify.h. */
enum hb_token_error {
    HB_TOKEN_OK = 0,
    HB_TOKEN_MALFORMED,   /* not three base64url parts of JSON, or over HB_TOKEN_MAX */
    HB_TOKEN_BAD_ALG,     /* alg none, or an algorithm that the key with this kid is not */
    HB_TOKEN_UNKNOWN_KID, /* no "kid", or no key with it */
    HB_TOKEN_BAD_SIGNATURE,
    HB_TOKEN_EXPIRED,       /* now >= exp (exp required) */
    HB_TOKEN_NOT_YET_VALID, /* now < nbf or now < iat (with 30 s leeway for clock skew) */
    HB_TOKEN_BAD_CLAIMS,    /* sub/acl missing or malformed, ids outside the alphabet */
    HB_TOKEN_ERROR_COUNT
};

#endif
