/* hb-api: the admission service. main only sets up in stages (options, keys, Redis pool, stop
 * publisher, HTTP), waits for SIGTERM/SIGINT with sigwait, and tears down in reverse order;
 * the server threads inherit the blocked signals. */
#include "api.h"

#include "../token/keyfile.h"
#include "interval.h"
#include "jwks.h"
#include "listen.h"
#include "log.h"
#include "options.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { EXIT_FAILED = 1, EXIT_USAGE = 2 };

_Static_assert(API_PUBLISH_KEYS_MAX + 1 == HB_KEYRING_MAX, "a keyring's worth of keys");

#define REDIS_TIMEOUT_MS 2000
#define CONTROL_TOKEN_TTL_S 3600

/* The broker password of the stop publisher: a consumer token allowed to publish stops,
 * minted afresh for every connect. */
static char *control_password(void *ud)
{
    struct api *a = ud;
    struct hb_token_request tr = {
        .role = HB_ROLE_CONSUMER,
        .topic_prefix = a->set.topic_prefix,
        .now_s = hb_now_ms() / 1000,
        .ttl_s = CONTROL_TOKEN_TTL_S,
        .control_prefix = a->set.control_prefix,
    };
    char err[256];
    char *token = hb_token_mint(a->key, &tr, err, sizeof(err));
    if (token == NULL)
        HB_ERROR("control: cannot mint the broker token: %s", err);
    return token;
}

static void settings_from(struct api_settings *s, const struct api_options *o)
{
    memset(s, 0, sizeof(*s));
    s->topic_prefix = o->common.topic_prefix;
    s->control_prefix = o->play.control_prefix;
    s->interval_s = o->common.interval_s;
    s->heartbeat_s = o->play.heartbeat_s;
    s->token_ttl = o->token_ttl;
    s->fail_open = o->fail_open;
    hb_play_options_config(&o->play, &s->plays);
    s->web_root = o->web_root;
    s->demo_mqtt_url = o->demo_mqtt_url;
    s->demo = o->demo_backend;
    s->dashboard = o->dashboard || o->demo_backend;
}

int main(int argc, char **argv)
{
    static struct api a; /* large (counters): not on the stack */
    struct api_options o;
    int rc = api_options_parse(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : EXIT_USAGE;
    struct sockaddr_storage addr;
    struct hb_redis_addr redis;
    char err[512], kid[HB_ID_MAX + 1];
    if (!hb_listen_parse(o.listen, &addr, err, sizeof(err))) {
        HB_ERROR("--listen %s", err);
        return EXIT_USAGE;
    }
    if (!hb_redis_uri_parse(o.common.redis, &redis, err, sizeof(err))) {
        HB_ERROR("--redis: %s", err);
        return EXIT_USAGE;
    }
    if (o.kid == NULL && !keyfile_default_kid(o.key_file, kid))
        return EXIT_USAGE;
    settings_from(&a.set, &o);
    if (o.web_root != NULL && !api_web_check(o.web_root, err, sizeof(err))) {
        HB_ERROR("--web-root: %s", err);
        return EXIT_USAGE;
    }

    rc = EXIT_FAILED;
    struct hb_key key;
    struct api_keys api_keys;
    sigset_t stop;
    if (!api_keys_setup(&key, &api_keys, o.key_file, o.kid ? o.kid : kid, o.api_key_file))
        return EXIT_FAILED;
    char *jwks = api_jwks_create(&key, o.publish_keys, o.n_publish_keys, &a.jwks_len);
    if (jwks == NULL) {
        rc = EXIT_USAGE;
        goto out_api_keys;
    }
    a.jwks = jwks;
    if (!api_block_signals(&stop))
        goto out_jwks;
    a.key = &key;
    a.api_keys = &api_keys;
    api_tokens_init(&a.tokens, o.token_ttl, API_TOKEN_MAX_TTL, o.rate_limit, o.burst);
    api_pool_init(&a.pool, &redis, REDIS_TIMEOUT_MS);

    if (o.control) {
        char client_id[64];
        snprintf(client_id, sizeof(client_id), "hb-api-%ld-%u", (long)getpid(),
                 (unsigned)(hb_now_ms() % 100000));
        struct hb_control_config cc = {
            .broker = o.common.brokers[0],
            .client_id = client_id,
            .prefix = o.play.control_prefix,
            .password = control_password,
            .password_ud = &a,
        };
        a.control = hb_control_create(&cc, err, sizeof(err));
        if (a.control == NULL) {
            HB_ERROR("--broker: %s", err);
            goto out_pool;
        }
    }

    struct hb_httpd *httpd = api_serve(&a, o.listen, (const struct sockaddr *)&addr,
                                       (unsigned)o.max_connections, (unsigned)o.threads);
    if (httpd == NULL)
        goto out_control;
    HB_INFO("hb-api %s listening on %s (port %u), key %s, %zu API keys, default limit %ld "
            "(%s), grace %ld s, heartbeat %ld s%s%s",
            HB_VERSION, o.listen, hb_httpd_port(httpd), key.kid, api_keys.n, o.play.default_limit,
            hb_play_policy_name(o.play.default_policy), o.play.grace_s, o.play.heartbeat_s,
            o.fail_open ? ", fail-open" : "", a.control ? ", stops on" : ", no broker: no stops");
    if (o.rate_limit > 0)
        HB_INFO("hb-api: at most %g tokens/s per API key on /v1/tokens, bursts of %g", o.rate_limit,
                o.burst);
    if (o.web_root != NULL || o.demo_backend)
        HB_INFO("pages %s%s, demo backend %s (broker for pages %s)", o.web_root ? "from " : "off",
                o.web_root ? o.web_root : "",
                o.demo_backend ? "ON: /demo/ admits without an API key" : "off", o.demo_mqtt_url);

    int sig = 0;
    sigwait(&stop, &sig);
    HB_INFO("stopping on %s", sig == SIGINT ? "SIGINT" : "SIGTERM");
    hb_httpd_stop(httpd);
    rc = 0;
out_control:
    hb_control_destroy(a.control);
out_pool:
    api_pool_finish(&a.pool);
    api_tokens_finish(&a.tokens);
out_jwks:
    cJSON_free(jwks);
out_api_keys:
    api_keys_finish(&api_keys);
    hb_key_finish(&key);
    return rc;
}
