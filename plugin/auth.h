/* The decisions of the broker plugin: who may connect (the password is a token), what a
 * connected client may do (its token's acl claim), and when a client whose token expired is
 * disconnected. Called from the broker's plugin callbacks (plugin.c) on the broker's thread;
 * nothing here blocks or does I/O besides logging through the broker. */
#ifndef HB_AUTH_H
#define HB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "options.h"
#include "sessions.h"

struct mosquitto;

/* Why a connection was refused or an access denied; names are logged and counted. */
enum hb_auth_reason {
    HB_AUTH_NO_PASSWORD = HB_TOKEN_ERROR_COUNT, /* below: enum hb_token_error */
    HB_AUTH_OVERSIZED,
    HB_AUTH_BAD_CLIENT_ID,
    HB_AUTH_DEVICE_MISMATCH,
    HB_AUTH_CLIENT_ID_TAKEN,
    HB_AUTH_NO_MEMORY,
    HB_AUTH_NO_SESSION,
    HB_AUTH_TOKEN_EXPIRED,
    HB_AUTH_RETAINED,
    HB_AUTH_NOT_OWN_TOPIC,
    HB_AUTH_ACL,
    HB_AUTH_REVOKED,
    HB_AUTH_REASON_COUNT
};

const char *hb_auth_reason_name(int reason);

enum hb_auth_access { HB_ACCESS_READ, HB_ACCESS_WRITE, HB_ACCESS_SUBSCRIBE, HB_ACCESS_UNSUBSCRIBE };

struct hb_auth {
    struct hb_auth_options opt;
    struct hb_sessions sessions;
    struct hb_ratelimit log_limit;
    unsigned long refused[HB_AUTH_REASON_COUNT]; /* connections refused, by reason */
    unsigned long denied[HB_AUTH_REASON_COUNT];  /* accesses denied, by reason */
    unsigned long accepted, kicked, kicked_revoked;
    int64_t last_scan_ms; /* monotonic */
    bool rescan;          /* more expired clients than one scan kicks */
};

/* Takes ownership of opt (it is zeroed). Returns NULL when out of memory (opt then freed). */
struct hb_auth *hb_auth_create(struct hb_auth_options *opt);
/* Logs the counters and frees everything; NULL is a no-op. */
void hb_auth_destroy(struct hb_auth *a);

/* A CONNECT with this client id, username and password (each may be NULL) at Unix time now_s.
 * True lets the client in and remembers its claims. Logs a refusal with its reason and the
 * client id (never the token), rate-limited. */
bool hb_auth_connect(struct hb_auth *a, const struct mosquitto *client, const char *client_id,
                     const char *username, const char *password, int64_t now_s);

/* Whether client may do access on topic (a filter for SUBSCRIBE) now. */
bool hb_auth_access(struct hb_auth *a, const struct mosquitto *client, const char *client_id,
                    const char *username, enum hb_auth_access access, const char *topic,
                    bool retain, int64_t now_s);

/* The client disconnected. */
void hb_auth_disconnect(struct hb_auth *a, const struct mosquitto *client, int64_t now_s);

/* Called on every broker tick; at most once a second (monotonic now_ms) it re-reads the
 * revocation list when it changed and disconnects clients whose token expired or was revoked,
 * with mosquitto_kick_client_by_clientid (never from an ACL check). */
void hb_auth_tick(struct hb_auth *a, int64_t now_ms, int64_t now_s);

#endif
