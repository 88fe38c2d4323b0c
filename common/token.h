/* Device and consumer credentials: JSON Web Tokens minted and verified with libjwt (OpenSSL),
 * never with hand-written crypto. A token's "acl" claim (EMQX's list form) says exactly which
 * topics its holder may publish or subscribe to, so the same tokens work on mosquitto with the
 * project's plugin and on an EMQX cluster with JWT authentication. */
#ifndef HB_TOKEN_H
#define HB_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"

#define HB_TOKEN_MAX 4096        /* longest token accepted, bytes */
#define HB_KEYRING_MAX 8         /* keys configured at once (rotation overlap) */
#define HB_ACL_RULES_MAX 8       /* rules in one token's acl claim */
#define HB_ACL_TOPIC_MAX 256
#define HB_TOKEN_TTL_DEFAULT 1800 /* seconds */

enum hb_token_alg { HB_TOKEN_HS256, HB_TOKEN_ES256 };

/* One signing or verification key. */
struct hb_key {
    char kid[HB_ID_MAX + 1];  /* "kid" header value selecting this key */
    enum hb_token_alg alg;    /* HS256 for a secret, ES256 for a PEM EC P-256 key */
    bool can_sign;            /* secret or private key (a public key only verifies) */
    unsigned char *material;  /* secret bytes, or PEM text (the private key when can_sign), owned */
    size_t len;
    /* ES256 only: the public key as PEM, owned. libjwt 1.10 verifies an ES256 signature only
     * with a public key PEM (a private key PEM makes jwt_decode fail), so it is derived once
     * at load time. NULL for HS256. */
    unsigned char *public_pem;
    size_t public_len;
};

struct hb_keyring {
    struct hb_key keys[HB_KEYRING_MAX];
    size_t n;
};

/* Loads a key file: a PEM key when the file starts with "-----BEGIN" (ES256; a private key can
 * sign, a public key only verifies), otherwise an HMAC secret: the file's contents with one
 * trailing newline (\n or \r\n) stripped, at least 32 bytes. kid must be an id. A PEM key must
 * be an unencrypted EC key on P-256 (prime256v1); RSA, Ed25519, other curves and encrypted keys
 * are refused with a reason. Returns false with a reason in err (key is then zeroed). Never
 * logs key material; the file's bytes are wiped from memory after parsing. */
bool hb_key_load(struct hb_key *key, const char *kid, const char *path, char *err, size_t errlen);
/* The kid a key file gets when none is given: its file name without directory and extension
 * ("/etc/hb/keys/hb-2025-06.pem" -> "hb-2025-06"). One rule for hb-token, hb-tokend, hb-sim
 * and the broker plugin, so they agree. False when that is not an id or does not fit. */
bool hb_key_default_kid(const char *path, char *kid, size_t kidlen);

/* Wipes and frees the key material; the key is zeroed. A zeroed key is a no-op. */
void hb_key_finish(struct hb_key *key);

/* Adds a loaded key (ownership moves to the ring; key is zeroed). False when full or the kid
 * is already there. */
bool hb_keyring_add(struct hb_keyring *ring, struct hb_key *key, char *err, size_t errlen);
void hb_keyring_finish(struct hb_keyring *ring);

enum hb_token_role { HB_ROLE_DEVICE, HB_ROLE_CONSUMER };

/* What to mint. */
struct hb_token_request {
    enum hb_token_role role;
    const char *account;  /* device role: the "sub" claim; required */
    const char *device;   /* device role, optional: pins the MQTT client id */
    const char *topic_prefix; /* "hb" by default */
    int64_t now_s;        /* iat; nbf = iat */
    int64_t ttl_s;        /* exp = now_s + ttl_s */
    /* Control topics <control_prefix>/<account>/<device>, or NULL for none. When set, a device
     * token pinned to a device may also subscribe to its own control topic, and a consumer
     * token may also publish to <control_prefix>/+/+ (stops sent to devices). */
    const char *control_prefix;
    /* Device role only: one more concrete topic (no + or #) the token may subscribe to, or
     * NULL. hb-api gives live/media/<media>, the retained live viewer count of what it plays. */
    const char *subscribe_topic;
};

/* Mints a token signed with key. Device tokens: sub = account, acl = [allow publish
 * <prefix>/<account>/${clientid}, deny all "#"], with "device" claim and a pinned client id
 * when device is set. Consumer tokens: sub = "consumer", acl = [allow subscribe <prefix>/+/+,
 * allow subscribe $share/+/<prefix>/+/+, deny all "#"]. With control_prefix, a pinned device
 * token also gets allow subscribe <control_prefix>/<account>/<device>, a consumer token allow
 * publish <control_prefix>/+/+ (both before the closing deny). With subscribe_topic, a device
 * token also gets allow subscribe <subscribe_topic> (before the deny). Claims: sub, iat, nbf, exp, jti
 * (random, 128 bits), acl, role. Header: alg, typ, kid. Returns a malloc'd token or NULL with
 * a reason in err. */
char *hb_token_mint(const struct hb_key *key, const struct hb_token_request *req, char *err,
                    size_t errlen);

/* Rule actions are PUBLISH, SUBSCRIBE or ALL (both). HB_ACL_READ is only a request: a
 * subscriber receiving a message on a concrete topic (mosquitto's MOSQ_ACL_READ). */
enum hb_acl_action { HB_ACL_PUBLISH = 1, HB_ACL_SUBSCRIBE = 2, HB_ACL_ALL = 3, HB_ACL_READ = 4 };

struct hb_acl_rule {
    bool allow;
    enum hb_acl_action action;
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
#define hb_token_claims_size(n_rules)                                                             \
    (offsetof(struct hb_token_claims, rules) + (n_rules) * sizeof(struct hb_acl_rule))

/* Why a token was refused. Names are stable (logged, counted, tested). */
enum hb_token_error {
    HB_TOKEN_OK = 0,
    HB_TOKEN_MALFORMED,     /* not three base64url parts of JSON, or over HB_TOKEN_MAX */
    HB_TOKEN_BAD_ALG,       /* alg none, or an algorithm that the key with this kid is not */
    HB_TOKEN_UNKNOWN_KID,   /* no "kid", or no key with it */
    HB_TOKEN_BAD_SIGNATURE,
    HB_TOKEN_EXPIRED,       /* now >= exp (exp required) */
    HB_TOKEN_NOT_YET_VALID, /* now < nbf or now < iat (with 30 s leeway for clock skew) */
    HB_TOKEN_BAD_CLAIMS,    /* sub/acl missing or malformed, ids outside the alphabet */
    HB_TOKEN_ERROR_COUNT
};

const char *hb_token_error_name(enum hb_token_error e);

/* Verifies token[0..len) against the ring at now_s and fills out (out is zeroed first; it is
 * filled only on HB_TOKEN_OK). Never trusts the header beyond choosing the key by kid; the
 * key's own algorithm is the only one accepted, checked before libjwt sees the token and again
 * after (libjwt 1.10's jwt_decode would accept "HS256" keyed with an ES256 public key PEM, and
 * checks neither exp nor nbf). Required claims: exp, iat, sub, role, acl; nbf, device and jti
 * are optional (jti, when present, must be an id: it is what a revocation list names). A header with duplicate names or a "crit" member is MALFORMED. Allocates only
 * temporarily; never logs. */
enum hb_token_error hb_token_verify(const struct hb_keyring *ring, const char *token, size_t len,
                                    int64_t now_s, struct hb_token_claims *out);

/* The exp claim of token[0..len), read WITHOUT verifying anything: for the holder of a token
 * (the consumer) to say when its own credential runs out. False when the token is not a JWT
 * with a valid exp. Never use it to decide access. */
bool hb_token_peek_exp(const char *token, size_t len, int64_t *exp_s);

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

#endif
