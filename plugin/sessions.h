/* The verified claims of every client the plugin let in, keyed by the broker's client pointer
 * (an opaque key, never dereferenced) and indexed by client id for the client that holds the id
 * now. Keying by pointer matters: on a session takeover mosquitto authenticates the new
 * connection before it disconnects the old one with the same id. Single-threaded, like the
 * broker's plugin callbacks. */
#ifndef HB_SESSIONS_H
#define HB_SESSIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uthash.h>

#include "token.h"

/* Offline sessions kept so messages queued for a disconnected persistent subscriber still pass
 * the read check; bounded so that reconnect churn cannot grow memory without limit. */
#define HB_SESSIONS_OFFLINE_MAX 1024
/* A kicked client whose disconnect never arrived is forgotten after this many seconds. */
#define HB_SESSIONS_KICK_GRACE_S 30

struct hb_session {
    const void *client; /* key; the broker's struct mosquitto *, never dereferenced */
    char id[HB_ID_MAX + 1];
    bool can_read;    /* the token allows subscribing to something */
    bool online;      /* false after its disconnect, while kept for queued messages */
    bool holder;      /* in the id index: the latest client let in with this id */
    bool revoked;     /* its token is on the revocation list: treated as expired */
    int64_t kicked_s; /* when the tick kicked it (Unix s), 0 if never */
    bool oom;         /* set by uthash when an insert failed for lack of memory */
    size_t size;      /* bytes allocated for this session */
    UT_hash_handle hh_client, hh_id;
    /* Last, and allocated only up to its n_rules rules (hb_token_claims_size): a device token
     * has 2 of the 8 a claims struct can hold, which saves about 1.5 KB per connection. */
    struct hb_token_claims claims;
};

struct hb_sessions {
    struct hb_session *by_client;
    struct hb_session *by_id; /* holders only */
    size_t n, n_offline;
};

void hb_sessions_init(struct hb_sessions *s);
/* Frees every session. */
void hb_sessions_finish(struct hb_sessions *s);

/* The session of this client, or NULL. */
struct hb_session *hb_sessions_find(struct hb_sessions *s, const void *client);
/* The session that holds this client id now (online or offline), or NULL. */
struct hb_session *hb_sessions_holder(struct hb_sessions *s, const char *id);

/* Records that client was let in with id and claims: replaces any session of the same client,
 * frees an offline holder of the id, and takes the id from an online holder (which stays until
 * its own disconnect). Returns the new session, or NULL when out of memory (nothing changed
 * except that a stale session of this client is gone). id must be an id. */
struct hb_session *hb_sessions_login(struct hb_sessions *s, const void *client, const char *id,
                                     const struct hb_token_claims *claims);

/* Forgets the session of client, if any (a refused or re-used connection). */
void hb_sessions_forget(struct hb_sessions *s, const void *client);

/* The client disconnected. Its session is kept offline (until its token expires) when it still
 * holds its id, its token can read, it has not expired at now_s and fewer than
 * HB_SESSIONS_OFFLINE_MAX are offline; otherwise it is freed. */
void hb_sessions_logout(struct hb_sessions *s, const void *client, int64_t now_s);

/* Housekeeping at now_s: frees offline sessions whose token expired (or was revoked) and
 * kicked sessions older than the grace period, and copies into ids (at most max) the client ids
 * of online holders whose token expired or was revoked and that were not kicked yet, marking them
 * kicked. *more is set when more were due than fit. Returns how many ids were written. Never calls
 * the broker. */
size_t hb_sessions_expire(struct hb_sessions *s, int64_t now_s, char (*ids)[HB_ID_MAX + 1],
                          size_t max, bool *more);

#endif
