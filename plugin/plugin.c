/* hb_auth.so: mosquitto 2.0 plugin (API version 5) that lets clients in by JSON Web Token and
 * enforces each token's acl claim. This file only adapts the broker's events to auth.c; the
 * state lives in one struct handed to every callback as its userdata (no globals).
 * mosquitto_broker.h must come before mosquitto_plugin.h (2.0.11 header order). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "auth.h"
#include "interval.h"

struct plugin {
    mosquitto_plugin_id_t *id;
    struct hb_auth *auth;
};

static const int events[] = {MOSQ_EVT_BASIC_AUTH, MOSQ_EVT_ACL_CHECK, MOSQ_EVT_TICK,
                             MOSQ_EVT_DISCONNECT};

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    const struct mosquitto_evt_basic_auth *ed = event_data;
    (void)event;
    if (ed == NULL || ed->client == NULL)
        return MOSQ_ERR_AUTH;
    return hb_auth_connect(p->auth, ed->client, mosquitto_client_id(ed->client), ed->username,
                           ed->password, now_s())
               ? MOSQ_ERR_SUCCESS
               : MOSQ_ERR_AUTH;
}

static int on_acl_check(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    const struct mosquitto_evt_acl_check *ed = event_data;
    enum hb_auth_access access;
    (void)event;
    if (ed == NULL || ed->client == NULL)
        return MOSQ_ERR_ACL_DENIED;
    switch (ed->access) {
    case MOSQ_ACL_READ:
        access = HB_ACCESS_READ;
        break;
    case MOSQ_ACL_WRITE:
        access = HB_ACCESS_WRITE;
        break;
    case MOSQ_ACL_SUBSCRIBE:
        access = HB_ACCESS_SUBSCRIBE;
        break;
    case MOSQ_ACL_UNSUBSCRIBE:
        access = HB_ACCESS_UNSUBSCRIBE;
        break;
    default:
        return MOSQ_ERR_ACL_DENIED;
    }
    return hb_auth_access(p->auth, ed->client, mosquitto_client_id(ed->client),
                          mosquitto_client_username(ed->client), access, ed->topic, ed->retain,
                          now_s())
               ? MOSQ_ERR_SUCCESS
               : MOSQ_ERR_ACL_DENIED;
}

static int on_tick(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    (void)event;
    (void)event_data; /* 2.0.11 passes a zeroed struct: the time comes from our own clocks */
    hb_auth_tick(p->auth, hb_monotonic_ms(), now_s());
    return MOSQ_ERR_SUCCESS;
}

static int on_disconnect(int event, void *event_data, void *userdata)
{
    struct plugin *p = userdata;
    const struct mosquitto_evt_disconnect *ed = event_data;
    (void)event;
    if (ed != NULL && ed->client != NULL)
        hb_auth_disconnect(p->auth, ed->client, now_s());
    return MOSQ_ERR_SUCCESS;
}

static MOSQ_FUNC_generic_callback callback_of(int event)
{
    switch (event) {
    case MOSQ_EVT_BASIC_AUTH:
        return on_basic_auth;
    case MOSQ_EVT_ACL_CHECK:
        return on_acl_check;
    case MOSQ_EVT_TICK:
        return on_tick;
    default:
        return on_disconnect;
    }
}

static void unregister_all(struct plugin *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        mosquitto_callback_unregister(p->id, events[i], callback_of(events[i]), NULL);
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
    (void)supported_version_count;
    (void)supported_versions;
    return 5;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **userdata,
                          struct mosquitto_opt *options, int option_count)
{
    struct hb_auth_option *opts = NULL;
    struct plugin *p = NULL;
    struct hb_auth_options parsed;
    char err[512] = "";
    size_t n = option_count > 0 ? (size_t)option_count : 0, registered = 0;
    int rc = MOSQ_ERR_NOMEM;

    opts = calloc(n ? n : 1, sizeof(*opts));
    p = calloc(1, sizeof(*p));
    if (opts == NULL || p == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "hb_auth: out of memory");
        goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        opts[i].key = options[i].key;
        opts[i].value = options[i].value;
    }
    if (!hb_auth_options_parse(&parsed, opts, n, err, sizeof(err))) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "hb_auth: refusing to start: %s", err);
        rc = MOSQ_ERR_INVAL;
        goto fail;
    }
    size_t n_keys = parsed.ring.n;
    char prefix[sizeof(parsed.topic_prefix)];
    memcpy(prefix, parsed.topic_prefix, sizeof(prefix));
    size_t max_bytes = parsed.max_token_bytes;
    p->auth = hb_auth_create(&parsed);
    if (p->auth == NULL) {
        mosquitto_log_printf(MOSQ_LOG_ERR, "hb_auth: out of memory");
        goto fail;
    }
    p->id = identifier;
    for (; registered < sizeof(events) / sizeof(events[0]); registered++) {
        rc = mosquitto_callback_register(identifier, events[registered],
                                         callback_of(events[registered]), NULL, p);
        if (rc != MOSQ_ERR_SUCCESS) {
            mosquitto_log_printf(MOSQ_LOG_ERR, "hb_auth: cannot register for event %d (error %d)",
                                 events[registered], rc);
            goto fail;
        }
    }
    free(opts);
    *userdata = p;
    for (size_t i = 0; i < n_keys; i++) {
        const struct hb_key *k = &p->auth->opt.ring.keys[i];
        mosquitto_log_printf(MOSQ_LOG_NOTICE, "hb_auth: key '%s' (%s%s)", k->kid,
                             k->alg == HB_TOKEN_HS256 ? "HS256" : "ES256",
                             k->alg == HB_TOKEN_ES256 && !k->can_sign ? ", public" : "");
    }
    mosquitto_log_printf(MOSQ_LOG_NOTICE,
                         "hb_auth: ready: %zu key(s), topic prefix '%s', tokens up to %zu bytes",
                         n_keys, prefix, max_bytes);
    return MOSQ_ERR_SUCCESS;

fail:
    if (p != NULL) {
        unregister_all(p, registered);
        hb_auth_destroy(p->auth);
        free(p);
    }
    free(opts);
    return rc != MOSQ_ERR_SUCCESS ? rc : MOSQ_ERR_UNKNOWN;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *options, int option_count)
{
    struct plugin *p = userdata;
    (void)options;
    (void)option_count;
    if (p == NULL)
        return MOSQ_ERR_SUCCESS;
    unregister_all(p, sizeof(events) / sizeof(events[0]));
    hb_auth_destroy(p->auth);
    free(p);
    return MOSQ_ERR_SUCCESS;
}
