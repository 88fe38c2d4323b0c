/* Session map of the broker plugin: two uthash indexes over one allocation per client. uthash
 * runs in its non-fatal out-of-memory mode, so a failed insert is reported back instead of
 * calling exit() inside the broker. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define HASH_NONFATAL_OOM 1
#define uthash_nonfatal_oom(elt) ((elt)->oom = true)

#include "sessions.h"

void hb_sessions_init(struct hb_sessions *s)
{
    memset(s, 0, sizeof(*s));
}

static void session_free(struct hb_sessions *s, struct hb_session *e)
{
    if (e->holder)
        HASH_DELETE(hh_id, s->by_id, e);
    HASH_DELETE(hh_client, s->by_client, e);
    if (!e->online)
        s->n_offline--;
    s->n--;
    /* The claims say who the client is; no secret, but no reason to leave them around. */
    memset(e, 0, e->size);
    free(e);
}

void hb_sessions_finish(struct hb_sessions *s)
{
    struct hb_session *e, *tmp;
    HASH_ITER(hh_client, s->by_client, e, tmp)
    {
        session_free(s, e);
    }
    memset(s, 0, sizeof(*s));
}

struct hb_session *hb_sessions_find(struct hb_sessions *s, const void *client)
{
    struct hb_session *e = NULL;
    HASH_FIND(hh_client, s->by_client, &client, sizeof(client), e);
    return e;
}

struct hb_session *hb_sessions_holder(struct hb_sessions *s, const char *id)
{
    struct hb_session *e = NULL;
    HASH_FIND(hh_id, s->by_id, id, strlen(id), e);
    return e;
}

static bool claims_can_read(const struct hb_token_claims *c)
{
    for (size_t i = 0; i < c->n_rules && i < HB_ACL_RULES_MAX; i++) {
        if (c->rules[i].allow && (c->rules[i].action & HB_ACL_SUBSCRIBE))
            return true;
    }
    return false;
}

void hb_sessions_forget(struct hb_sessions *s, const void *client)
{
    struct hb_session *e = hb_sessions_find(s, client);
    if (e)
        session_free(s, e);
}

struct hb_session *hb_sessions_login(struct hb_sessions *s, const void *client, const char *id,
                                     const struct hb_token_claims *claims)
{
    size_t id_len = strlen(id);
    if (id_len > HB_ID_MAX)
        return NULL;
    hb_sessions_forget(s, client);

    size_t n_rules = claims->n_rules < HB_ACL_RULES_MAX ? claims->n_rules : HB_ACL_RULES_MAX;
    size_t size = offsetof(struct hb_session, claims) + hb_token_claims_size(n_rules);
    struct hb_session *e = calloc(1, size);
    if (e == NULL)
        return NULL;
    e->size = size;
    e->client = client;
    memcpy(e->id, id, id_len + 1);
    memcpy(&e->claims, claims, hb_token_claims_size(n_rules));
    e->claims.n_rules = n_rules;
    e->can_read = claims_can_read(claims);
    e->online = true;
    HASH_ADD(hh_client, s->by_client, client, sizeof(e->client), e);
    if (e->oom) {
        free(e);
        return NULL;
    }
    s->n++;

    struct hb_session *old = hb_sessions_holder(s, id);
    if (old != NULL) {
        if (!old->online) {
            /* The new connection resumes (or replaces) that session: its claims are stale. */
            session_free(s, old);
        } else {
            /* A takeover: mosquitto disconnects the old connection right after this. */
            HASH_DELETE(hh_id, s->by_id, old);
            old->holder = false;
        }
    }
    HASH_ADD(hh_id, s->by_id, id, id_len, e);
    if (e->oom) {
        session_free(s, e);
        return NULL;
    }
    e->holder = true;
    return e;
}

void hb_sessions_logout(struct hb_sessions *s, const void *client, int64_t now_s)
{
    struct hb_session *e = hb_sessions_find(s, client);
    if (e == NULL || !e->online)
        return;
    if (e->holder && e->can_read && e->kicked_s == 0 && now_s < e->claims.exp && !e->revoked &&
        s->n_offline < HB_SESSIONS_OFFLINE_MAX) {
        e->online = false;
        s->n_offline++;
        return;
    }
    session_free(s, e);
}

size_t hb_sessions_expire(struct hb_sessions *s, int64_t now_s, char (*ids)[HB_ID_MAX + 1],
                          size_t max, bool *more)
{
    size_t n = 0;
    struct hb_session *e, *tmp;
    *more = false;
    HASH_ITER(hh_client, s->by_client, e, tmp)
    {
        if (now_s < e->claims.exp && !e->revoked)
            continue;
        if (!e->online || (e->kicked_s != 0 && now_s - e->kicked_s >= HB_SESSIONS_KICK_GRACE_S)) {
            session_free(s, e);
        } else if (e->kicked_s == 0 && !e->holder) {
            /* Taken over: mosquitto is disconnecting it already, and kicking by id would hit
             * the new holder. Reads are denied anyway since the token expired. */
            e->kicked_s = now_s;
        } else if (e->kicked_s == 0) {
            if (n == max) {
                *more = true;
                continue;
            }
            memcpy(ids[n++], e->id, sizeof(e->id));
            e->kicked_s = now_s;
        }
    }
    return n;
}
