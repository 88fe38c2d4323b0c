/* Minting device and consumer tokens: a signed JWT whose acl claim names exactly the topics its
 * holder may use. Signing and the token id's randomness are OpenSSL's; libjwt only verifies. */
#ifndef HB_MINT_H
#define HB_MINT_H

#include <stddef.h>
#include <stdint.h>

#include "keyring.h"
#include "token.h"

/* What to mint. */
struct hb_token_request {
    enum hb_token_role role;
    const char *account;      /* device role: the "sub" claim; required */
    const char *device;       /* device role, optional: pins the MQTT client id */
    const char *topic_prefix; /* "hb" by default */
    int64_t now_s;            /* iat; nbf = iat - 30 s (clock leeway for the broker) */
    int64_t ttl_s;            /* exp = now_s + ttl_s */
    /* Optional: stop messages to devices are published on <control_prefix>/<account>/<device>.
     * NULL (the default) mints exactly what it minted before this existed. */
    const char *control_prefix;
    /* Device role only: one more concrete topic (no + or #, not a $-topic) the token may
     * subscribe to, or NULL. hb-api gives live/media/<media>, the retained live viewer count of
     * what the device plays. */
    const char *subscribe_topic;
    /* Consumer role only: the live viewer counts' prefix L (consumer --live). The token may then
     * publish retained on L/#, the only rule minted with "retain": true. NULL: none. */
    const char *live_prefix;
};

/* Mints a token signed with key. Device tokens: sub = account, acl = [allow publish
 * <prefix>/<account>/<device> (pinned: the "device" claim is set and the topic is literal) or
 * <prefix>/<account>/${clientid} (unpinned), then the $-denies, then deny all "#"]. Consumer
 * tokens: sub = "consumer", acl = [allow subscribe <prefix>/+/+, allow subscribe
 * $share/+/<prefix>/+/+, the $-denies, deny all "#"]. The $-denies are deny all $SYS/#,
 * $delayed/#, $share/#, $queue/#, in that order ("#" does not match $-topics on EMQX). Every
 * allowed publish carries "retain": false. With control_prefix C (a valid topic prefix other
 * than the topic prefix), a pinned device token also gets allow subscribe C/<account>/<device>,
 * and a consumer token allow publish C/+/+, each just after its other allows. With
 * subscribe_topic T, a device token also gets allow subscribe T ("retain": true: retained
 * messages are delivered there, nowhere else) after those. With live_prefix L
 * (a valid topic prefix other than the topic and control prefixes), a consumer token gets allow
 * publish L/# with "retain": true after its other allows. Claims: sub, iat
 * (now_s), nbf (now_s - 30), exp (now_s + ttl_s), jti (random, 128 bits), acl, role. Header:
 * alg, kid, typ (members in name order, as libjwt wrote them). Signed with OpenSSL (the key
 * parsed at load time); safe to call from several threads with the same key. Returns a malloc'd
 * token or NULL with a reason in err. */
char *hb_token_mint(const struct hb_key *key, const struct hb_token_request *req, char *err,
                    size_t errlen);

#endif
