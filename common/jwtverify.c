/* Token verification. libjwt 1.10 checks only the signature, with whatever algorithm the
 * header names, so the header is decoded here first (jwtparts.c): the key is chosen by kid, any
 * algorithm but that key's own is refused, and exp, nbf, iat and every claim are checked after
 * libjwt has verified the signature. All crypto is libjwt's and OpenSSL's. */
#include "jwtverify.h"

#include "ids.h"
#include "jwtparts.h"
#include "topic.h"

#include <cjson/cJSON.h>
#include <jwt.h>
#include <string.h>
#include <strings.h>

#define CLOCK_LEEWAY_S 30

static const char *const error_names[HB_TOKEN_ERROR_COUNT] = {
    [HB_TOKEN_OK] = "ok",
    [HB_TOKEN_MALFORMED] = "malformed",
    [HB_TOKEN_BAD_ALG] = "bad_alg",
    [HB_TOKEN_UNKNOWN_KID] = "unknown_kid",
    [HB_TOKEN_BAD_SIGNATURE] = "bad_signature",
    [HB_TOKEN_EXPIRED] = "expired",
    [HB_TOKEN_NOT_YET_VALID] = "not_yet_valid",
    [HB_TOKEN_BAD_CLAIMS] = "bad_claims",
};

const char *hb_token_error_name(enum hb_token_error e)
{
    if ((int)e < 0 || e >= HB_TOKEN_ERROR_COUNT)
        return "unknown";
    return error_names[e];
}

/* Reads a string member that must be an id into out. */
static bool claim_id(const cJSON *claims, const char *name, char out[HB_ID_MAX + 1])
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (!cJSON_IsString(v) || !hb_id_valid(v->valuestring, strlen(v->valuestring)))
        return false;
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return true;
}

static bool parse_rule(const cJSON *item, struct hb_acl_rule *rule)
{
    if (!cJSON_IsObject(item))
        return false;
    const cJSON *perm = cJSON_GetObjectItemCaseSensitive(item, "permission");
    const cJSON *action = cJSON_GetObjectItemCaseSensitive(item, "action");
    const cJSON *topic = cJSON_GetObjectItemCaseSensitive(item, "topic");
    const cJSON *retain = cJSON_GetObjectItemCaseSensitive(item, "retain");
    if (retain != NULL && !cJSON_IsBool(retain))
        return false;
    rule->retain = cJSON_IsTrue(retain);
    if (!cJSON_IsString(perm) || !cJSON_IsString(action) || !cJSON_IsString(topic))
        return false;
    if (strcmp(perm->valuestring, "allow") == 0)
        rule->allow = true;
    else if (strcmp(perm->valuestring, "deny") == 0)
        rule->allow = false;
    else
        return false;
    if (strcmp(action->valuestring, "publish") == 0)
        rule->action = HB_ACL_PUBLISH;
    else if (strcmp(action->valuestring, "subscribe") == 0)
        rule->action = HB_ACL_SUBSCRIBE;
    else if (strcmp(action->valuestring, "all") == 0)
        rule->action = HB_ACL_ALL;
    else
        return false;
    size_t len = strlen(topic->valuestring);
    if (len >= HB_ACL_TOPIC_MAX || !hb_topic_filter_valid(topic->valuestring, true, true))
        return false;
    memcpy(rule->topic, topic->valuestring, len + 1);
    return true;
}

static enum hb_token_error check_claims(const cJSON *claims, int64_t now_s,
                                        struct hb_token_claims *out)
{
    int has_nbf;
    if (hb_jwt_numeric_date(claims, "exp", &out->exp) != 1 ||
        hb_jwt_numeric_date(claims, "iat", &out->iat) != 1 ||
        (has_nbf = hb_jwt_numeric_date(claims, "nbf", &out->nbf)) < 0)
        return HB_TOKEN_BAD_CLAIMS;
    if (!has_nbf)
        out->nbf = out->iat;
    if (now_s >= out->exp)
        return HB_TOKEN_EXPIRED;
    if (now_s + CLOCK_LEEWAY_S < out->nbf || now_s + CLOCK_LEEWAY_S < out->iat)
        return HB_TOKEN_NOT_YET_VALID;

    const cJSON *role = cJSON_GetObjectItemCaseSensitive(claims, "role");
    if (!cJSON_IsString(role))
        return HB_TOKEN_BAD_CLAIMS;
    if (strcmp(role->valuestring, "device") == 0)
        out->role = HB_ROLE_DEVICE;
    else if (strcmp(role->valuestring, "consumer") == 0)
        out->role = HB_ROLE_CONSUMER;
    else
        return HB_TOKEN_BAD_CLAIMS;
    if (!claim_id(claims, "sub", out->sub) ||
        (out->role == HB_ROLE_CONSUMER && strcmp(out->sub, "consumer") != 0))
        return HB_TOKEN_BAD_CLAIMS;
    if (cJSON_GetObjectItemCaseSensitive(claims, "device") != NULL &&
        (out->role != HB_ROLE_DEVICE || !claim_id(claims, "device", out->device)))
        return HB_TOKEN_BAD_CLAIMS;
    if (cJSON_GetObjectItemCaseSensitive(claims, "jti") != NULL &&
        !claim_id(claims, "jti", out->jti))
        return HB_TOKEN_BAD_CLAIMS;

    const cJSON *acl = cJSON_GetObjectItemCaseSensitive(claims, "acl");
    int n = cJSON_IsArray(acl) ? cJSON_GetArraySize(acl) : 0;
    if (n < 1 || n > HB_ACL_RULES_MAX)
        return HB_TOKEN_BAD_CLAIMS;
    const cJSON *item;
    cJSON_ArrayForEach(item, acl)
    {
        if (!parse_rule(item, &out->rules[out->n_rules++]))
            return HB_TOKEN_BAD_CLAIMS;
    }
    return HB_TOKEN_OK;
}

/* The header checks, before any key is used: returns the key to verify with in *key. */
static enum hb_token_error check_header(const struct hb_keyring *ring, const cJSON *header,
                                        const struct hb_key **key)
{
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    const cJSON *kid = cJSON_GetObjectItemCaseSensitive(header, "kid");
    const cJSON *typ = cJSON_GetObjectItemCaseSensitive(header, "typ");
    /* crit names extensions a verifier must understand; this one understands none. */
    if (cJSON_GetObjectItemCaseSensitive(header, "crit") != NULL ||
        (typ != NULL && (!cJSON_IsString(typ) || strcasecmp(typ->valuestring, "JWT") != 0)))
        return HB_TOKEN_MALFORMED;
    if (!cJSON_IsString(alg) || strcasecmp(alg->valuestring, "none") == 0)
        return HB_TOKEN_BAD_ALG;
    if (!cJSON_IsString(kid) || (*key = hb_keyring_find(ring, kid->valuestring)) == NULL)
        return HB_TOKEN_UNKNOWN_KID;
    if (strcmp(alg->valuestring, hb_key_alg_name((*key)->alg)) != 0)
        return HB_TOKEN_BAD_ALG;
    return HB_TOKEN_OK;
}

enum hb_token_error hb_token_verify(const struct hb_keyring *ring, const char *token, size_t len,
                                    int64_t now_s, struct hb_token_claims *out)
{
    memset(out, 0, sizeof(*out));
    if (token == NULL || len == 0 || len > HB_TOKEN_MAX)
        return HB_TOKEN_MALFORMED;
    /* Exactly header.payload.signature, all base64url. */
    size_t dots[2], n_dots = 0;
    for (size_t i = 0; i < len; i++) {
        if (token[i] == '.') {
            if (n_dots == 2)
                return HB_TOKEN_MALFORMED;
            dots[n_dots++] = i;
        } else if (!hb_jwt_b64url_char((unsigned char)token[i])) {
            return HB_TOKEN_MALFORMED;
        }
    }
    if (n_dots != 2)
        return HB_TOKEN_MALFORMED;

    cJSON *header = hb_jwt_part_object(token, dots[0], HB_JWT_HEADER_MEMBERS_MAX);
    cJSON *claims =
        hb_jwt_part_object(token + dots[0] + 1, dots[1] - dots[0] - 1, HB_JWT_CLAIM_MEMBERS_MAX);
    enum hb_token_error e = HB_TOKEN_OK;
    const struct hb_key *key = NULL;
    if (header == NULL || claims == NULL)
        e = HB_TOKEN_MALFORMED;
    else
        e = check_header(ring, header, &key);
    if (e == HB_TOKEN_OK && dots[1] + 1 == len)
        e = HB_TOKEN_BAD_SIGNATURE; /* no signature at all */
    if (e == HB_TOKEN_OK) {
        char text[HB_TOKEN_MAX + 1];
        memcpy(text, token, len);
        text[len] = '\0';
        const unsigned char *vkey = key->alg == HB_TOKEN_ES256 ? key->public_pem : key->material;
        int vlen = (int)(key->alg == HB_TOKEN_ES256 ? key->public_len : key->len);
        jwt_t *jwt = NULL;
        /* A key is always given: without one, libjwt 1.10 skips the signature check. */
        if (vkey == NULL || jwt_decode(&jwt, text, vkey, vlen) != 0)
            e = HB_TOKEN_BAD_SIGNATURE;
        else if (jwt_get_alg(jwt) != jwt_str_alg(hb_key_alg_name(key->alg)))
            e = HB_TOKEN_BAD_ALG; /* the header parsers disagreed: never trust that token */
        jwt_free(jwt);
    }
    if (e == HB_TOKEN_OK)
        e = check_claims(claims, now_s, out);
    if (e == HB_TOKEN_OK)
        memcpy(out->kid, key->kid, sizeof(out->kid));
    else
        memset(out, 0, sizeof(*out));
    cJSON_Delete(header);
    cJSON_Delete(claims);
    return e;
}
