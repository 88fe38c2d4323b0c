/* Unit tests of the broker plugin (plugin/): options, connect refusals, access decisions,
 * takeover, expiry and the session map, driven through the real plugin entry points. The
 * broker's functions are stubbed here the way mosquitto 2.0.11 behaves (a kick disconnects
 * synchronously and runs the disconnect callback), so the tests run under the sanitizers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "auth.h"
#include "jwtverify.h"
#include "mint.h"
#include "options.h"
#include "sessions.h"
#include "testing.h"
#include "token.h"

/* ---- broker stubs -------------------------------------------------------------------------- */

struct mosquitto {
    const char *id, *username;
};

struct mosquitto_plugin_id_t {
    int unused;
};

static struct {
    MOSQ_FUNC_generic_callback cb[16];
    void *userdata[16];
    int registered;
    char log[64][600];
    int n_log;
    char kicked[8][HB_ID_MAX + 1];
    int n_kicked;
    struct mosquitto *clients[16]; /* what a kick by id can find */
} broker;

static void broker_reset(void)
{
    memset(&broker, 0, sizeof(broker));
}

void mosquitto_log_printf(int level, const char *fmt, ...)
{
    (void)level;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(broker.log[broker.n_log % 64], sizeof(broker.log[0]), fmt, ap);
    va_end(ap);
    broker.n_log++;
}

static bool logged(const char *needle)
{
    for (int i = 0; i < broker.n_log && i < 64; i++) {
        if (strstr(broker.log[i], needle))
            return true;
    }
    return false;
}

const char *mosquitto_client_id(const struct mosquitto *client)
{
    return client->id;
}

const char *mosquitto_client_username(const struct mosquitto *client)
{
    return client->username;
}

const char *mosquitto_client_address(const struct mosquitto *client)
{
    (void)client;
    return "127.0.0.1";
}

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
                                MOSQ_FUNC_generic_callback cb_func, const void *event_data,
                                void *userdata)
{
    (void)identifier;
    (void)event_data;
    if (event < 0 || event >= 16 || broker.cb[event] != NULL)
        return MOSQ_ERR_ALREADY_EXISTS;
    broker.cb[event] = cb_func;
    broker.userdata[event] = userdata;
    broker.registered++;
    return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
                                  MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
    (void)identifier;
    (void)event_data;
    if (event < 0 || event >= 16 || broker.cb[event] != cb_func)
        return MOSQ_ERR_NOT_FOUND;
    broker.cb[event] = NULL;
    broker.registered--;
    return MOSQ_ERR_SUCCESS;
}

static void broker_disconnect(struct mosquitto *c)
{
    struct mosquitto_evt_disconnect ed = {.client = c, .reason = -1};
    broker.cb[MOSQ_EVT_DISCONNECT](MOSQ_EVT_DISCONNECT, &ed, broker.userdata[MOSQ_EVT_DISCONNECT]);
}

int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
    (void)with_will;
    snprintf(broker.kicked[broker.n_kicked++ % 8], HB_ID_MAX + 1, "%s", clientid);
    for (int i = 0; i < 16; i++) {
        if (broker.clients[i] && strcmp(broker.clients[i]->id, clientid) == 0) {
            struct mosquitto *c = broker.clients[i];
            broker.clients[i] = NULL;
            broker_disconnect(c);
            return MOSQ_ERR_SUCCESS;
        }
    }
    return MOSQ_ERR_NOT_FOUND;
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static char dir[64];
static char secret1[128], secret2[128];

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void fixtures_create(void)
{
    snprintf(dir, sizeof(dir), "/tmp/test_hb_auth.XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(secret1, sizeof(secret1), "%s/k1.secret", dir);
    snprintf(secret2, sizeof(secret2), "%s/k2.secret", dir);
    write_file(secret1, "0123456789abcdef0123456789abcdef-one\n");
    write_file(secret2, "0123456789abcdef0123456789abcdef-two\n");
}

static void fixtures_destroy(void)
{
    unlink(secret1);
    unlink(secret2);
    rmdir(dir);
}

static char *mint_request(const char *path, const char *kid, const struct hb_token_request *req)
{
    struct hb_key key;
    char err[256];
    CHECK(hb_key_load(&key, kid, path, err, sizeof(err)));
    char *token = hb_token_mint(&key, req, err, sizeof(err));
    CHECK(token != NULL);
    hb_key_finish(&key);
    return token;
}

static char *mint_at(const char *path, const char *kid, enum hb_token_role role,
                     const char *account, const char *device, int64_t now_s, int64_t ttl_s)
{
    struct hb_token_request req = {.role = role,
                                   .account = account,
                                   .device = device,
                                   .topic_prefix = "hb",
                                   .now_s = now_s,
                                   .ttl_s = ttl_s};
    return mint_request(path, kid, &req);
}

/* A token of role with stop messages on "hb-ctl" (the admission API's control prefix). */
static char *mint_control(enum hb_token_role role, const char *account, const char *device)
{
    struct hb_token_request req = {.role = role,
                                   .account = account,
                                   .device = device,
                                   .topic_prefix = "hb",
                                   .now_s = (int64_t)time(NULL),
                                   .ttl_s = 600,
                                   .control_prefix = "hb-ctl"};
    return mint_request(secret1, "k1", &req);
}

static char *mint(const char *account, const char *device)
{
    return mint_at(secret1, "k1", HB_ROLE_DEVICE, account, device, (int64_t)time(NULL), 600);
}

/* Loads the plugin with these plugin_opt_ pairs (NULL-terminated); returns init's result. */
static int plugin_load(void **userdata, const char *const *kv)
{
    struct mosquitto_opt opts[16];
    int n = 0;
    for (; kv[2 * n] != NULL; n++) {
        opts[n].key = (char *)kv[2 * n];
        opts[n].value = (char *)kv[2 * n + 1];
    }
    static struct mosquitto_plugin_id_t pid;
    *userdata = NULL;
    return mosquitto_plugin_init(&pid, userdata, opts, n);
}

static void plugin_unload(void *userdata)
{
    CHECK_INT(mosquitto_plugin_cleanup(userdata, NULL, 0), MOSQ_ERR_SUCCESS);
    CHECK_INT(broker.registered, 0);
}

static int connect_as(struct mosquitto *c, const char *password)
{
    struct mosquitto_evt_basic_auth ed = {
        .client = c, .username = (char *)c->username, .password = (char *)password};
    return broker.cb[MOSQ_EVT_BASIC_AUTH](MOSQ_EVT_BASIC_AUTH, &ed,
                                          broker.userdata[MOSQ_EVT_BASIC_AUTH]);
}

static int acl(struct mosquitto *c, int access, const char *topic, bool retain)
{
    struct mosquitto_evt_acl_check ed = {
        .client = c, .access = access, .topic = topic, .qos = 1, .retain = retain};
    return broker.cb[MOSQ_EVT_ACL_CHECK](MOSQ_EVT_ACL_CHECK, &ed,
                                         broker.userdata[MOSQ_EVT_ACL_CHECK]);
}

static const char *const one_key[] = {"key_file", secret1, NULL};

/* ---- options ------------------------------------------------------------------------------- */

static void test_default_kid_is_file_name_without_extension(void)
{
    char kid[HB_ID_MAX + 1];
    CHECK(hb_key_default_kid("/etc/hb/2025-06.pem", kid, sizeof(kid)));
    CHECK_STR(kid, "2025-06");
    CHECK(hb_key_default_kid("k1", kid, sizeof(kid)));
    CHECK_STR(kid, "k1");
    CHECK(hb_key_default_kid("a.b.pem", kid, sizeof(kid)));
    CHECK_STR(kid, "a.b");
    CHECK(!hb_key_default_kid("/etc/hb/", kid, sizeof(kid)));
    CHECK(!hb_key_default_kid("/etc/hb/bad key.pem", kid, sizeof(kid)));
}

static void test_init_refuses_without_any_key(void)
{
    broker_reset();
    void *ud;
    const char *const none[] = {"topic_prefix", "hb", NULL};
    CHECK_INT(plugin_load(&ud, none), MOSQ_ERR_INVAL);
    CHECK(ud == NULL);
    CHECK(logged("refusing to start: no key configured"));
    CHECK_INT(broker.registered, 0);
}

static void test_init_refuses_unloadable_unknown_or_repeated_options(void)
{
    const char *const cases[][7] = {
        {"key_file", "/nonexistent/k.secret", NULL},
        {"key_file", secret1, "key_fiel_2", secret2, NULL},
        {"key_file", secret1, "key_file", secret2, NULL},
        {"key_file", secret1, "key_file_9", secret2, NULL},
        {"key_file", secret1, "key_id_2", "k2", NULL},
        {"key_file", secret1, "key_id", "bad kid", NULL},
        {"key_file", secret1, "key_file_2", secret1, NULL}, /* same kid twice */
        {"key_file", secret1, "topic_prefix", "hb/#", NULL},
        {"key_file", secret1, "max_token_bytes", "12", NULL},
        {"key_file", secret1, "max_token_bytes", "4k", NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        broker_reset();
        void *ud;
        CHECK_INT(plugin_load(&ud, cases[i]), MOSQ_ERR_INVAL);
        CHECK(logged("hb_auth: refusing to start: "));
        CHECK_INT(broker.registered, 0);
    }
}

static void test_init_registers_four_events_and_cleanup_unregisters(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    CHECK_INT(broker.registered, 4);
    CHECK(broker.cb[MOSQ_EVT_BASIC_AUTH] && broker.cb[MOSQ_EVT_ACL_CHECK] &&
          broker.cb[MOSQ_EVT_TICK] && broker.cb[MOSQ_EVT_DISCONNECT]);
    CHECK(logged("hb_auth: key 'k1' (HS256)"));
    CHECK(logged("topic prefix 'hb', tokens up to 4096 bytes"));
    plugin_unload(ud);
}

/* ---- connect ------------------------------------------------------------------------------- */

static void test_valid_device_token_connects_and_publishes_only_its_own_topic(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *t = mint("acctA", NULL);
    struct mosquitto c = {.id = "dev1", .username = "acctA"};
    CHECK_INT(connect_as(&c, t), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctB/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev2", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "other/topic", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb/#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_UNSUBSCRIBE, "hb/#", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, 0x40, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK(logged("denied publish of 'hb/acctB/dev1' to client 'dev1': not_own_topic"));
    CHECK(logged("denied publish of 'hb/acctA/dev1' to client 'dev1': retained"));
    /* The username carries no authority: another one changes nothing. */
    c.username = "acctB";
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctB/dev1", false), MOSQ_ERR_ACL_DENIED);
    broker_disconnect(&c);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    free(t);
    plugin_unload(ud);
}

static void test_consumer_token_subscribes_shared_and_reads_but_never_publishes(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *t = mint_at(secret1, "k1", HB_ROLE_CONSUMER, NULL, NULL, (int64_t)time(NULL), 600);
    struct mosquitto c = {.id = "hb-consumer-1", .username = "anything"};
    CHECK_INT(connect_as(&c, t), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "$share/hb-consumers/hb/+/+", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb/+/+", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb/#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb/+/#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "$SYS/#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "$share/g/#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1/x", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "$SYS/broker/uptime", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/consumer/hb-consumer-1", false), MOSQ_ERR_ACL_DENIED);
    broker_disconnect(&c);
    free(t);
    plugin_unload(ud);
}

/* Retained messages go only where a rule says "retain": true: a consumer token minted with a
 * live prefix publishes retained counts there and nowhere else; a device receives retained
 * messages only on its live-count subscription; every other token still refuses them. */
static void test_retained_only_on_live_count_rules(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    int64_t now = (int64_t)time(NULL);
    struct hb_token_request creq = {.role = HB_ROLE_CONSUMER,
                                    .topic_prefix = "hb",
                                    .now_s = now,
                                    .ttl_s = 600,
                                    .control_prefix = "hb-ctl",
                                    .live_prefix = "live"};
    char *ct = mint_request(secret1, "k1", &creq);
    struct mosquitto c = {.id = "hb-consumer-1", .username = "hb-consumer"};
    CHECK_INT(connect_as(&c, ct), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "live/media/film-7", true), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "live/account/acctA", true), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "live/media/film-7", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "livex/media/film-7", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK(logged("denied publish of 'hb-ctl/acctA/dev1' to client 'hb-consumer-1': retained"));
    broker_disconnect(&c);
    /* The same consumer without a live prefix: no retained publish at all. */
    char *plain = mint_control(HB_ROLE_CONSUMER, NULL, NULL);
    struct mosquitto p = {.id = "hb-consumer-2", .username = "hb-consumer"};
    CHECK_INT(connect_as(&p, plain), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&p, MOSQ_ACL_WRITE, "live/media/film-7", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&p, MOSQ_ACL_WRITE, "live/media/film-7", false), MOSQ_ERR_ACL_DENIED);
    broker_disconnect(&p);
    /* A device of film-7 receives its retained count, and nothing else retained. */
    struct hb_token_request dreq = {.role = HB_ROLE_DEVICE,
                                    .account = "acctA",
                                    .device = "dev1",
                                    .topic_prefix = "hb",
                                    .now_s = now,
                                    .ttl_s = 600,
                                    .control_prefix = "hb-ctl",
                                    .subscribe_topic = "live/media/film-7"};
    char *dt = mint_request(secret1, "k1", &dreq);
    struct mosquitto d = {.id = "dev1", .username = "acctA"};
    CHECK_INT(connect_as(&d, dt), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&d, MOSQ_ACL_SUBSCRIBE, "live/media/film-7", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&d, MOSQ_ACL_READ, "live/media/film-7", true), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&d, MOSQ_ACL_READ, "live/media/film-7", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&d, MOSQ_ACL_READ, "live/media/film-8", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&d, MOSQ_ACL_READ, "hb-ctl/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&d, MOSQ_ACL_WRITE, "live/media/film-7", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&d, MOSQ_ACL_WRITE, "hb/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    broker_disconnect(&d);
    free(ct);
    free(plain);
    free(dt);
    plugin_unload(ud);
}

static void test_device_with_control_prefix_subscribes_and_reads_only_its_own_control_topic(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *t = mint_control(HB_ROLE_DEVICE, "acctA", "dev1");
    struct mosquitto c = {.id = "dev1", .username = "acctA"};
    CHECK_INT(connect_as(&c, t), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb-ctl/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb-ctl/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb-ctl/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    /* Nothing else: no other device's topic, no wildcard, no publishing on it. */
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb-ctl/acctA/dev2", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb-ctl/acctA/+", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb-ctl/+/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb-ctl/#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "#", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "$share/g/hb-ctl/acctA/dev1", false),
              MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb-ctl/acctA/dev2", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb-ctl/acctB/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    /* Its heartbeats are as before. */
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev2", false), MOSQ_ERR_ACL_DENIED);
    CHECK(logged("denied subscribe of 'hb-ctl/acctA/+' to client 'dev1': acl"));
    CHECK(logged("denied publish of 'hb-ctl/acctA/dev1' to client 'dev1': acl"));
    broker_disconnect(&c);
    free(t);
    plugin_unload(ud);
}

static void test_consumer_with_control_prefix_publishes_stop_messages_only(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *t = mint_control(HB_ROLE_CONSUMER, NULL, NULL);
    struct mosquitto c = {.id = "hb-consumer-1", .username = NULL};
    CHECK_INT(connect_as(&c, t), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctB/tv-9", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA/dev1", true), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb-ctl/acctA/dev1/x", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "hb-ctl/+/+", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb-ctl/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    /* What it reads is as before. */
    CHECK_INT(acl(&c, MOSQ_ACL_SUBSCRIBE, "$share/hb-consumers/hb/+/+", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_READ, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    broker_disconnect(&c);
    free(t);
    plugin_unload(ud);
}

/* Splices the claims of other into token: header and signature of token, claims of other. */
static void splice_claims(char *out, size_t len, const char *token, const char *other)
{
    const char *claims = strchr(other, '.') + 1;
    size_t claims_len = (size_t)(strrchr(other, '.') - claims);
    size_t header_len = (size_t)(strchr(token, '.') - token);
    snprintf(out, len, "%.*s.%.*s%s", (int)header_len, token, (int)claims_len, claims,
             strrchr(token, '.'));
}

static void test_refusals_carry_their_reason_and_never_the_token(void)
{
    broker_reset();
    struct hb_auth_options opt;
    char err[256];
    const struct hb_auth_option kv[] = {{"key_file", secret1}};
    CHECK(hb_auth_options_parse(&opt, kv, 1, err, sizeof(err)));
    struct hb_auth *a = hb_auth_create(&opt);
    CHECK(a != NULL);
    int64_t now = (int64_t)time(NULL);
    char *good = mint("acctA", NULL);
    char *other = mint("acctB", NULL);
    char *pinned = mint("acctA", "tv-1");
    char *expired = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctA", NULL, now - 700, 600);
    char *future = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctA", NULL, now + 600, 600);
    char *other_key = mint_at(secret2, "k1", HB_ROLE_DEVICE, "acctA", NULL, now, 600);
    char *unknown_kid = mint_at(secret2, "k9", HB_ROLE_DEVICE, "acctA", NULL, now, 600);
    char tampered[HB_TOKEN_MAX + 1];
    splice_claims(tampered, sizeof(tampered), good, other);
    char oversized[HB_TOKEN_MAX + 2];
    memset(oversized, 'a', sizeof(oversized) - 1);
    oversized[sizeof(oversized) - 1] = '\0';
    char long_id[HB_ID_MAX + 2];
    memset(long_id, 'd', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';

    struct {
        const char *id, *password;
        int reason;
    } cases[] = {
        // clang-format off
        {"dev1", NULL, HB_AUTH_NO_PASSWORD},
        {"dev1", "", HB_AUTH_NO_PASSWORD},
        {"dev1", oversized, HB_AUTH_OVERSIZED},
        {"dev1", "garbage", HB_TOKEN_MALFORMED},
        {"dev1", "a.b.c", HB_TOKEN_MALFORMED},
        {"dev1", tampered, HB_TOKEN_BAD_SIGNATURE},
        {"dev1", other_key, HB_TOKEN_BAD_SIGNATURE},
        {"dev1", unknown_kid, HB_TOKEN_UNKNOWN_KID},
        {"dev1", expired, HB_TOKEN_EXPIRED},
        {"dev1", future, HB_TOKEN_NOT_YET_VALID},
        {"a+b", good, HB_AUTH_BAD_CLIENT_ID},
        {"a/b", good, HB_AUTH_BAD_CLIENT_ID},
        {"", good, HB_AUTH_BAD_CLIENT_ID},
        {NULL, good, HB_AUTH_BAD_CLIENT_ID},
        {long_id, good, HB_AUTH_BAD_CLIENT_ID},
        {"tv-2", pinned, HB_AUTH_DEVICE_MISMATCH},
        // clang-format on
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mosquitto c = {.id = cases[i].id, .username = "acctA"};
        broker.n_log = 0;
        memset(&a->log_limit, 0, sizeof(a->log_limit));
        a->log_limit.burst = 20;
        a->log_limit.window_ms = 10000;
        unsigned long before = a->refused[cases[i].reason];
        CHECK(!hb_auth_connect(a, &c, c.id, c.username, cases[i].password, now));
        CHECK_INT(a->refused[cases[i].reason], before + 1);
        char want[128];
        snprintf(want, sizeof(want), "from 127.0.0.1: %s", hb_auth_reason_name(cases[i].reason));
        if (!logged(want))
            fprintf(stderr, "case %zu: no '%s' in '%s'\n", i, want, broker.log[0]);
        CHECK(logged(want));
        CHECK(cases[i].password == NULL || strlen(cases[i].password) < 8 ||
              !logged(cases[i].password));
        CHECK(!hb_auth_access(a, &c, c.id, NULL, HB_ACCESS_WRITE, "hb/acctA/dev1", false, now));
        if (cases[i].id == long_id) /* logged cut short, never whole */
            CHECK(logged("refused client 'dddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
                         "dddddddd...' from 127.0.0.1: bad_client_id"));
    }
    struct mosquitto tv = {.id = "tv-1"};
    CHECK(hb_auth_connect(a, &tv, tv.id, NULL, pinned, now));
    CHECK(hb_auth_access(a, &tv, tv.id, NULL, HB_ACCESS_WRITE, "hb/acctA/tv-1", false, now));
    hb_auth_disconnect(a, &tv, now);
    hb_auth_destroy(a);
    CHECK(logged("accepted=1 kicked_expired=0 kicked_revoked=0; refused: malformed=2 unknown_kid=1 "
                 "bad_signature=2 expired=1 not_yet_valid=1 no_password=2 oversized=1 "
                 "bad_client_id=5 device_mismatch=1; denied: no_session=16"));
    free(good);
    free(other);
    free(pinned);
    free(expired);
    free(future);
    free(other_key);
    free(unknown_kid);
}

static void test_alg_none_is_refused(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *good = mint("acctA", NULL);
    /* {"alg":"none","kid":"k1","typ":"JWT"} + the valid claims + an empty signature */
    char token[HB_TOKEN_MAX + 1];
    const char *claims = strchr(good, '.') + 1;
    size_t claims_len = (size_t)(strrchr(good, '.') - claims);
    snprintf(token, sizeof(token), "eyJhbGciOiJub25lIiwia2lkIjoiazEiLCJ0eXAiOiJKV1QifQ.%.*s.",
             (int)claims_len, claims);
    struct mosquitto c = {.id = "dev1"};
    CHECK_INT(connect_as(&c, token), MOSQ_ERR_AUTH);
    CHECK(logged(": bad_alg"));
    free(good);
    plugin_unload(ud);
}

static void test_both_keys_of_a_rotation_are_accepted(void)
{
    broker_reset();
    void *ud;
    const char *const two[] = {"key_file", secret1, "key_file_2", secret2,
                               "key_id_2", "next",  NULL};
    CHECK_INT(plugin_load(&ud, two), MOSQ_ERR_SUCCESS);
    CHECK(logged("ready: 2 key(s)"));
    int64_t now = (int64_t)time(NULL);
    char *old = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctA", NULL, now, 600);
    char *next = mint_at(secret2, "next", HB_ROLE_DEVICE, "acctA", NULL, now, 600);
    char *wrong = mint_at(secret2, "k1", HB_ROLE_DEVICE, "acctA", NULL, now, 600);
    struct mosquitto a = {.id = "d1"}, b = {.id = "d2"}, c = {.id = "d3"};
    CHECK_INT(connect_as(&a, old), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&b, next), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&c, wrong), MOSQ_ERR_AUTH);
    broker_disconnect(&a);
    broker_disconnect(&b);
    free(old);
    free(next);
    free(wrong);
    plugin_unload(ud);
}

/* ---- takeover and expiry ------------------------------------------------------------------- */

static void test_takeover_keeps_new_claims_when_old_connection_disconnects(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *t = mint("acctA", NULL);
    struct mosquitto old = {.id = "dev1"}, new = {.id = "dev1"};
    CHECK_INT(connect_as(&old, t), MOSQ_ERR_SUCCESS);
    /* mosquitto 2.0.11: the new connection is authenticated first, then the old one is
     * disconnected. */
    CHECK_INT(connect_as(&new, t), MOSQ_ERR_SUCCESS);
    broker_disconnect(&old);
    CHECK_INT(acl(&new, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&old, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    broker_disconnect(&new);
    free(t);
    plugin_unload(ud);
}

static void test_another_account_cannot_take_a_connected_client_id(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *a = mint("acctA", NULL), *b = mint("acctB", NULL);
    char *consumer = mint_at(secret1, "k1", HB_ROLE_CONSUMER, NULL, NULL, (int64_t)time(NULL), 600);
    struct mosquitto ca = {.id = "dev1"}, cb = {.id = "dev1"}, cc = {.id = "hb-consumer-1"},
                     cd = {.id = "hb-consumer-1"};
    CHECK_INT(connect_as(&ca, a), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&cb, b), MOSQ_ERR_AUTH);
    CHECK(logged("refused client 'dev1' from 127.0.0.1: client_id_taken"));
    CHECK_INT(acl(&ca, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    /* A device token cannot cut off the consumer by taking its client id either. */
    CHECK_INT(connect_as(&cc, consumer), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&cd, a), MOSQ_ERR_AUTH);
    CHECK_INT(acl(&cc, MOSQ_ACL_READ, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    /* Once the holder is gone the id is free. */
    broker_disconnect(&ca);
    CHECK_INT(connect_as(&cb, b), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&cb, MOSQ_ACL_WRITE, "hb/acctB/dev1", false), MOSQ_ERR_SUCCESS);
    broker_disconnect(&cb);
    broker_disconnect(&cc);
    free(a);
    free(b);
    free(consumer);
    plugin_unload(ud);
}

static void test_expired_token_is_denied_then_kicked_from_the_tick(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    int64_t now = (int64_t)time(NULL);
    char *t = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctA", NULL, now, 2);
    struct mosquitto c = {.id = "dev1"};
    broker.clients[0] = &c;
    CHECK_INT(connect_as(&c, t), MOSQ_ERR_SUCCESS);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_SUCCESS);
    /* Wait for the real clock to pass exp (the plugin reads time(NULL)). */
    while ((int64_t)time(NULL) < now + 2)
        usleep(50 * 1000);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK(logged("denied publish of 'hb/acctA/dev1' to client 'dev1': token_expired"));
    CHECK_INT(broker.n_kicked, 0); /* never from inside an ACL check */
    struct mosquitto_evt_tick tick = {0};
    broker.cb[MOSQ_EVT_TICK](MOSQ_EVT_TICK, &tick, broker.userdata[MOSQ_EVT_TICK]);
    CHECK_INT(broker.n_kicked, 1);
    CHECK_STR(broker.kicked[0], "dev1");
    CHECK(logged("token of client 'dev1' expired, disconnected"));
    broker.cb[MOSQ_EVT_TICK](MOSQ_EVT_TICK, &tick, broker.userdata[MOSQ_EVT_TICK]);
    CHECK_INT(broker.n_kicked, 1);
    free(t);
    plugin_unload(ud);
}

static const char *jti_of(const char *token)
{
    static struct hb_token_claims c;
    struct hb_keyring ring = {0};
    struct hb_key key;
    char err[256];
    CHECK(hb_key_load(&key, "k1", secret1, err, sizeof(err)));
    CHECK(hb_keyring_add(&ring, &key, err, sizeof(err)));
    CHECK_INT(hb_token_verify(&ring, token, strlen(token), (int64_t)time(NULL), &c), HB_TOKEN_OK);
    hb_keyring_finish(&ring);
    return c.jti;
}

static void tick(void)
{
    struct mosquitto_evt_tick ev = {0};
    broker.cb[MOSQ_EVT_TICK](MOSQ_EVT_TICK, &ev, broker.userdata[MOSQ_EVT_TICK]);
}

static void test_revocation_list_refuses_denies_and_kicks(void)
{
    char list[160], line[200];
    snprintf(list, sizeof(list), "%s/revoked.txt", dir);
    write_file(list, "# nothing revoked yet\n");
    broker_reset();
    void *ud;
    const char *const kv[] = {"key_file", secret1, "revoked_file", list, NULL};
    CHECK_INT(plugin_load(&ud, kv), MOSQ_ERR_SUCCESS);
    int64_t now = (int64_t)time(NULL);
    char *t1 = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctR", NULL, now - 10, 600);
    char *t2 = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctR", NULL, now - 10, 600);
    char *t3 = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctS", NULL, now - 10, 600);
    struct mosquitto c1 = {.id = "dev1"}, c2 = {.id = "dev2"}, c3 = {.id = "dev3"};
    /* dev2 and dev3 are known to the stub broker, so a kick disconnects them; dev1 is not, so
     * its session stays to show the denial reason. */
    broker.clients[0] = &c2;
    broker.clients[1] = &c3;
    CHECK_INT(connect_as(&c1, t1), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&c2, t2), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&c3, t3), MOSQ_ERR_SUCCESS);
    tick();
    CHECK_INT(broker.n_kicked, 0);

    /* One token by its jti: denied at once, kicked by the next scan, refused from then on. */
    snprintf(line, sizeof(line), "jti %s   # stolen\n", jti_of(t1));
    write_file(list, line);
    usleep(1100 * 1000); /* the scan runs at most once a second */
    tick();
    CHECK(logged("revocation list"));
    CHECK(logged("loaded: 1 entries, 1 connected client(s) revoked"));
    CHECK_INT(broker.n_kicked, 1);
    CHECK_STR(broker.kicked[0], "dev1");
    CHECK(logged("token of client 'dev1' revoked, client not found"));
    CHECK_INT(acl(&c1, MOSQ_ACL_WRITE, "hb/acctR/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK(logged("denied publish of 'hb/acctR/dev1' to client 'dev1': revoked"));
    CHECK_INT(acl(&c2, MOSQ_ACL_WRITE, "hb/acctR/dev2", false), MOSQ_ERR_SUCCESS);
    struct mosquitto again = {.id = "dev1"};
    CHECK_INT(connect_as(&again, t1), MOSQ_ERR_AUTH);
    CHECK(logged("refused client 'dev1' from 127.0.0.1: revoked"));

    /* A list that does not parse changes nothing. */
    write_file(list, "jti\n");
    usleep(1100 * 1000);
    tick();
    CHECK(logged(":1: expected 'jti ID' or 'sub ACCOUNT BEFORE_UNIX_SECONDS'"));
    CHECK_INT(connect_as(&again, t1), MOSQ_ERR_AUTH);

    /* Every token of an account issued before a time; a newer one still gets in. */
    snprintf(line, sizeof(line), "sub acctR %lld\n", (long long)now);
    write_file(list, line);
    usleep(1100 * 1000);
    tick();
    CHECK_INT(broker.n_kicked, 2);
    CHECK_STR(broker.kicked[1], "dev2");
    CHECK(logged("token of client 'dev2' revoked, disconnected"));
    CHECK_INT(acl(&c3, MOSQ_ACL_WRITE, "hb/acctS/dev3", false), MOSQ_ERR_SUCCESS);
    char *fresh = mint_at(secret1, "k1", HB_ROLE_DEVICE, "acctR", NULL, now, 600);
    struct mosquitto c4 = {.id = "dev4"};
    CHECK_INT(connect_as(&c4, fresh), MOSQ_ERR_SUCCESS);
    CHECK_INT(connect_as(&again, t1), MOSQ_ERR_AUTH); /* jti line gone, but issued before */
    free(t1);
    free(t2);
    free(t3);
    free(fresh);
    plugin_unload(ud);
    unlink(list);

    /* A configured list must load. */
    broker_reset();
    CHECK_INT(plugin_load(&ud, kv), MOSQ_ERR_INVAL);
    CHECK(logged("plugin_opt_revoked_file: "));
    CHECK(logged("No such file or directory"));
}

/* The session map itself, with explicit clocks. */
static void test_sessions_offline_reader_kept_until_expiry_device_freed(void)
{
    struct hb_sessions s;
    hb_sessions_init(&s);
    struct hb_token_claims reader = {.role = HB_ROLE_CONSUMER, .exp = 1000, .n_rules = 1};
    reader.rules[0].allow = true;
    reader.rules[0].action = HB_ACL_SUBSCRIBE;
    snprintf(reader.rules[0].topic, sizeof(reader.rules[0].topic), "hb/+/+");
    struct hb_token_claims device = {.role = HB_ROLE_DEVICE, .exp = 1000, .n_rules = 1};
    device.rules[0].allow = true;
    device.rules[0].action = HB_ACL_PUBLISH;
    int k1, k2, k3;
    CHECK(hb_sessions_login(&s, &k1, "cons", &reader) != NULL);
    CHECK(hb_sessions_login(&s, &k2, "dev", &device) != NULL);
    hb_sessions_logout(&s, &k1, 500);
    hb_sessions_logout(&s, &k2, 500);
    CHECK_INT(s.n, 1);
    CHECK_INT(s.n_offline, 1);
    CHECK(hb_sessions_find(&s, &k1) != NULL && !hb_sessions_find(&s, &k1)->online);
    CHECK(hb_sessions_find(&s, &k2) == NULL);
    /* Reconnecting under a new client pointer replaces the offline session. */
    CHECK(hb_sessions_login(&s, &k3, "cons", &reader) != NULL);
    CHECK(hb_sessions_find(&s, &k1) == NULL);
    CHECK_INT(s.n_offline, 0);
    hb_sessions_logout(&s, &k3, 500);
    char ids[4][HB_ID_MAX + 1];
    bool more;
    CHECK_INT(hb_sessions_expire(&s, 999, ids, 4, &more), 0);
    CHECK_INT(s.n, 1);
    CHECK_INT(hb_sessions_expire(&s, 1000, ids, 4, &more), 0); /* offline: freed, not kicked */
    CHECK_INT(s.n, 0);
    hb_sessions_finish(&s);
}

static void test_sessions_expire_kicks_holders_only_and_reports_more(void)
{
    struct hb_sessions s;
    hb_sessions_init(&s);
    struct hb_token_claims c = {.role = HB_ROLE_DEVICE, .exp = 100};
    int keys[6];
    char id[8];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof(id), "d%d", i);
        CHECK(hb_sessions_login(&s, &keys[i], id, &c) != NULL);
    }
    CHECK(hb_sessions_login(&s, &keys[5], "d0", &c) != NULL); /* takeover of d0 */
    char ids[3][HB_ID_MAX + 1];
    bool more;
    size_t n = hb_sessions_expire(&s, 100, ids, 3, &more);
    CHECK_INT(n, 3);
    CHECK(more);
    n = hb_sessions_expire(&s, 100, ids, 3, &more);
    CHECK_INT(n, 2);
    CHECK(!more);
    CHECK_INT(hb_sessions_expire(&s, 100, ids, 3, &more), 0);
    /* Kicked but never disconnected: forgotten after the grace period. */
    CHECK_INT(s.n, 6);
    CHECK_INT(hb_sessions_expire(&s, 100 + HB_SESSIONS_KICK_GRACE_S, ids, 3, &more), 0);
    CHECK_INT(s.n, 0);
    hb_sessions_finish(&s);
}

static void test_hostile_input_never_crashes(void)
{
    broker_reset();
    void *ud;
    CHECK_INT(plugin_load(&ud, one_key), MOSQ_ERR_SUCCESS);
    char *t = mint("acctA", NULL);
    struct mosquitto c = {.id = "dev1"};
    CHECK_INT(connect_as(&c, t), MOSQ_ERR_SUCCESS);
    unsigned seed = 12345;
    char buf[300];
    for (int i = 0; i < 20000; i++) {
        size_t len = (size_t)(rand_r(&seed) % (sizeof(buf) - 1));
        for (size_t j = 0; j < len; j++) {
            const char alphabet[] = "hb/acctA/dev1+#$.{}eyJ\x01\xff";
            buf[j] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
        }
        buf[len] = '\0';
        int access = 1 << (rand_r(&seed) % 5);
        bool retain = rand_r(&seed) & 1;
        /* Only dropping a subscription, or a plain publish to its own topic, is allowed. */
        bool own = strcmp(buf, "hb/acctA/dev1") == 0 && access == MOSQ_ACL_WRITE && !retain;
        CHECK_INT(acl(&c, access, buf, retain),
                  access == MOSQ_ACL_UNSUBSCRIBE || own ? MOSQ_ERR_SUCCESS : MOSQ_ERR_ACL_DENIED);
        struct mosquitto x = {.id = buf};
        CHECK_INT(connect_as(&x, buf), MOSQ_ERR_AUTH);
    }
    struct mosquitto none = {.id = NULL};
    CHECK_INT(connect_as(&none, t), MOSQ_ERR_AUTH);
    CHECK_INT(acl(&none, MOSQ_ACL_WRITE, "hb/acctA/dev1", false), MOSQ_ERR_ACL_DENIED);
    CHECK_INT(acl(&c, MOSQ_ACL_WRITE, NULL, false), MOSQ_ERR_ACL_DENIED);
    broker_disconnect(&none);
    broker_disconnect(&c);
    broker_disconnect(&c);
    free(t);
    plugin_unload(ud);
}

int main(void)
{
    fixtures_create();
    RUN(test_default_kid_is_file_name_without_extension);
    RUN(test_init_refuses_without_any_key);
    RUN(test_init_refuses_unloadable_unknown_or_repeated_options);
    RUN(test_init_registers_four_events_and_cleanup_unregisters);
    RUN(test_valid_device_token_connects_and_publishes_only_its_own_topic);
    RUN(test_consumer_token_subscribes_shared_and_reads_but_never_publishes);
    RUN(test_device_with_control_prefix_subscribes_and_reads_only_its_own_control_topic);
    RUN(test_consumer_with_control_prefix_publishes_stop_messages_only);
    RUN(test_refusals_carry_their_reason_and_never_the_token);
    RUN(test_alg_none_is_refused);
    RUN(test_both_keys_of_a_rotation_are_accepted);
    RUN(test_takeover_keeps_new_claims_when_old_connection_disconnects);
    RUN(test_another_account_cannot_take_a_connected_client_id);
    RUN(test_expired_token_is_denied_then_kicked_from_the_tick);
    RUN(test_revocation_list_refuses_denies_and_kicks);
    RUN(test_sessions_offline_reader_kept_until_expiry_device_freed);
    RUN(test_sessions_expire_kicks_holders_only_and_reports_more);
    RUN(test_hostile_input_never_crashes);
    RUN(test_retained_only_on_live_count_rules);
    fixtures_destroy();
    return TESTING_DONE();
}
