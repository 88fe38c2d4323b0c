/* Unit tests of hb-sim's option helpers and population (publisher-sim/options.c, plan.c):
 * device-count ranges, broker URIs, source addresses, key ids, option conflicts, ids. */
#include "ids.h"
#include "keyring.h"
#include "mint.h"
#include "options.h"
#include "plan.h"
#include "token.h"

#include "testing.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void test_range_single_number_is_min_and_max(void)
{
    unsigned lo = 99, hi = 99;
    CHECK(options_range_parse("3", 100, &lo, &hi));
    CHECK_INT(lo, 3);
    CHECK_INT(hi, 3);
}

static void test_range_min_max_is_parsed(void)
{
    unsigned lo = 99, hi = 99;
    CHECK(options_range_parse("2-8", 100, &lo, &hi));
    CHECK_INT(lo, 2);
    CHECK_INT(hi, 8);
    CHECK(options_range_parse("0-0", 100, &lo, &hi));
    CHECK_INT(hi, 0);
}

static void test_range_malformed_is_rejected(void)
{
    unsigned lo, hi;
    CHECK(!options_range_parse("", 100, &lo, &hi));
    CHECK(!options_range_parse("8-2", 100, &lo, &hi));
    CHECK(!options_range_parse("2-", 100, &lo, &hi));
    CHECK(!options_range_parse("-2", 100, &lo, &hi));
    CHECK(!options_range_parse("2-8x", 100, &lo, &hi));
    CHECK(!options_range_parse("101", 100, &lo, &hi));
    CHECK(!options_range_parse("99999999999999999999", 100, &lo, &hi));
}

static void test_broker_tcp_and_mqtt_uris_are_parsed(void)
{
    struct options_broker b;
    char err[256];
    CHECK(options_broker_parse("tcp://127.0.0.1:1884", &b, err, sizeof(err)));
    CHECK_STR(b.host, "127.0.0.1");
    CHECK_INT(b.port, 1884);
    CHECK(options_broker_parse("mqtt://broker.example:2000/", &b, err, sizeof(err)));
    CHECK_STR(b.host, "broker.example");
    CHECK_INT(b.port, 2000);
    CHECK(options_broker_parse("tcp://localhost", &b, err, sizeof(err)));
    CHECK_INT(b.port, 1883);
    CHECK(options_broker_parse("tcp://[::1]:1885", &b, err, sizeof(err)));
    CHECK_STR(b.host, "::1");
    CHECK_INT(b.port, 1885);
    CHECK(!b.tls);
}

static void test_broker_tls_uris_are_parsed(void)
{
    struct options_broker b;
    char err[256];
    CHECK(options_broker_parse("ssl://localhost", &b, err, sizeof(err)));
    CHECK_STR(b.host, "localhost");
    CHECK_INT(b.port, 8883);
    CHECK(b.tls);
    CHECK(options_broker_parse("mqtts://[::1]:9883", &b, err, sizeof(err)));
    CHECK_STR(b.host, "::1");
    CHECK_INT(b.port, 9883);
    CHECK(b.tls);
    CHECK(options_broker_parse("tcp://h", &b, err, sizeof(err)));
    CHECK(!b.tls);
    CHECK(!options_broker_parse("wss://h:8083", &b, err, sizeof(err)));
    CHECK(strstr(err, "ssl:// or mqtts:// for TLS") != NULL);
}

static void test_broker_malformed_uris_are_rejected(void)
{
    struct options_broker b;
    char err[256];
    CHECK(!options_broker_parse("127.0.0.1:1883", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("http://h:1883", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("tcp://:1883", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("tcp://h:0", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("tcp://h:65536", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("tcp://h:12x", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("tcp://[::1:1883", &b, err, sizeof(err)));
}

static struct plan_params params(unsigned lo, unsigned hi)
{
    struct plan_params p = {
        .n_accounts = 12,
        .devices_min = lo,
        .devices_max = hi,
        .account_prefix = "acct",
        .churn = 0.25,
        .duration_ms = 60000,
    };
    return p;
}

static void test_plan_ids_are_valid_unique_and_padded(void)
{
    struct plan p;
    struct plan_params pp = params(0, 11);
    struct rng r;
    rng_seed(&r, 5);
    CHECK(plan_init(&p, &pp, &r));
    CHECK_STR(p.accounts[0], "acct0000");
    CHECK_STR(p.accounts[11], "acct0011");
    for (size_t d = 0; d < p.n_devices; d++) {
        CHECK(hb_id_valid(p.devices[d], strlen(p.devices[d])));
        CHECK(strncmp(p.devices[d], p.accounts[p.device_account[d]], 8) == 0);
        if (d > 0)
            CHECK(strcmp(p.devices[d - 1], p.devices[d]) < 0); /* sorted, hence unique */
    }
    char first[32];
    snprintf(first, sizeof(first), "%s-dev00", p.accounts[p.device_account[0]]);
    if (p.n_devices > 0)
        CHECK_STR(p.devices[0], first);
    plan_finish(&p);
}

static void test_plan_same_seed_gives_same_population(void)
{
    struct plan a, b;
    struct plan_params pp = params(1, 9);
    struct rng ra, rb;
    rng_seed(&ra, 77);
    rng_seed(&rb, 77);
    CHECK(plan_init(&a, &pp, &ra));
    CHECK(plan_init(&b, &pp, &rb));
    CHECK_INT(a.n_devices, b.n_devices);
    for (size_t d = 0; d < a.n_devices && d < b.n_devices; d++) {
        CHECK_STR(a.devices[d], b.devices[d]);
        CHECK_INT(a.device[d].start_ms, b.device[d].start_ms);
        CHECK_INT(a.device[d].stop_ms, b.device[d].stop_ms);
    }
    plan_finish(&a);
    plan_finish(&b);
}

static void test_plan_too_long_prefix_is_refused(void)
{
    struct plan p;
    struct plan_params pp = params(1, 1);
    pp.account_prefix = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct rng r;
    rng_seed(&r, 1);
    CHECK(!plan_init(&p, &pp, &r));
    plan_finish(&p); /* safe after a failure */
}

static void test_plan_agent_strings_come_from_the_table(void)
{
    struct plan p;
    struct plan_params pp = params(2, 2);
    struct rng r;
    rng_seed(&r, 3);
    CHECK(plan_init(&p, &pp, &r));
    for (size_t d = 0; d < p.n_devices; d++) {
        const char *os = NULL, *browser = NULL, *model = NULL;
        plan_agent(&p.device[d], &os, &browser, &model);
        CHECK(os != NULL && *os != '\0' && strchr(os, '"') == NULL);
        CHECK(browser != NULL && *browser != '\0' && strchr(browser, '"') == NULL);
        CHECK(model != NULL && *model != '\0' && strchr(model, '"') == NULL);
    }
    plan_finish(&p);
}

static void test_source_single_addresses_are_added(void)
{
    struct options o;
    memset(&o, 0, sizeof(o));
    char err[256];
    CHECK(options_sources_add(&o, "127.0.0.2", err, sizeof(err)));
    CHECK(options_sources_add(&o, "::1", err, sizeof(err)));
    CHECK_INT(o.n_sources, 2);
    CHECK_STR(o.sources[0], "127.0.0.2");
    CHECK_STR(o.sources[1], "::1");
    options_finish(&o);
    CHECK_INT(o.n_sources, 0);
}

static void test_source_range_expands_both_ends_included(void)
{
    struct options o;
    memset(&o, 0, sizeof(o));
    char err[256];
    CHECK(options_sources_add(&o, "127.0.0.254-127.0.1.1", err, sizeof(err)));
    CHECK_INT(o.n_sources, 4);
    CHECK_STR(o.sources[0], "127.0.0.254");
    CHECK_STR(o.sources[1], "127.0.0.255");
    CHECK_STR(o.sources[2], "127.0.1.0");
    CHECK_STR(o.sources[3], "127.0.1.1");
    CHECK(options_sources_add(&o, "127.0.0.2-20", err, sizeof(err))); /* last byte only */
    CHECK_INT(o.n_sources, 4 + 19);
    CHECK_STR(o.sources[4], "127.0.0.2");
    CHECK_STR(o.sources[22], "127.0.0.20");
    options_finish(&o);
}

static void test_source_malformed_or_reversed_is_rejected(void)
{
    struct options o;
    memset(&o, 0, sizeof(o));
    char err[256];
    CHECK(!options_sources_add(&o, "localhost", err, sizeof(err)));
    CHECK(!options_sources_add(&o, "127.0.0.20-127.0.0.2", err, sizeof(err)));
    CHECK(strstr(err, "ends before it starts") != NULL);
    CHECK(!options_sources_add(&o, "127.0.0.2-", err, sizeof(err)));
    CHECK(!options_sources_add(&o, "-127.0.0.2", err, sizeof(err)));
    CHECK(!options_sources_add(&o, "127.0.0.2-256", err, sizeof(err)));
    CHECK(!options_sources_add(&o, "::1-::2", err, sizeof(err)));
    CHECK(!options_sources_add(&o, "10.0.0.0-10.0.255.255", err, sizeof(err))); /* too many */
    CHECK(strstr(err, "source addresses in all") != NULL);
    CHECK_INT(o.n_sources, 0);
    options_finish(&o);
}

static void test_default_kid_is_the_file_name_without_extension(void)
{
    char kid[HB_ID_MAX + 1];
    CHECK(hb_key_default_kid("/etc/hb/keys/hb-2025-06.pem", kid, sizeof(kid)));
    CHECK_STR(kid, "hb-2025-06");
    CHECK(hb_key_default_kid("scale.key", kid, sizeof(kid)));
    CHECK_STR(kid, "scale");
    CHECK(hb_key_default_kid("/tmp/key", kid, sizeof(kid)));
    CHECK_STR(kid, "key");
    CHECK(!hb_key_default_kid("/tmp/bad name.key", kid, sizeof(kid)));
    CHECK(!hb_key_default_kid("/tmp/dir/", kid, sizeof(kid)));
}

static int parse(struct options *o, const char *const *args, int n)
{
    char *argv[32];
    argv[0] = (char *)"hb-sim";
    for (int i = 0; i < n; i++)
        argv[i + 1] = (char *)args[i];
    optind = 0; /* getopt_long restarts with a fresh argv */
    return options_parse(o, n + 1, argv);
}

static void test_options_new_flags_are_parsed(void)
{
    struct options o;
    const char *args[] = {"--workers",
                          "3",
                          "--source-address",
                          "127.0.0.2-4",
                          "--key",
                          "/tmp/k.secret",
                          "--token-ttl",
                          "900",
                          "--keepalive",
                          "30",
                          "--payload-template",
                          "/tmp/t.json",
                          "--progress",
                          "2"};
    CHECK_INT(parse(&o, args, 14), 0);
    CHECK_INT(o.workers, 3);
    CHECK_INT(o.n_sources, 3);
    CHECK_STR(o.key_path, "/tmp/k.secret");
    CHECK(o.token_ttl_s == 900);
    CHECK_INT(o.keepalive_s, 30);
    CHECK_STR(o.payload_template_path, "/tmp/t.json");
    CHECK(o.progress_s == 2);
    options_finish(&o);
}

static void test_options_conflicts_are_usage_errors(void)
{
    struct options o;
    const char *key_and_password[] = {"--key", "/tmp/k.secret", "--password", "x"};
    CHECK_INT(parse(&o, key_and_password, 4), 2);
    options_finish(&o);
    const char *kid_without_key[] = {"--kid", "k1"};
    CHECK_INT(parse(&o, kid_without_key, 2), 2);
    options_finish(&o);
    const char *workers_zero[] = {"--workers", "0"};
    CHECK_INT(parse(&o, workers_zero, 2), 2);
    options_finish(&o);
    const char *key_without_kid[] = {"--key", "/tmp/bad name"};
    CHECK_INT(parse(&o, key_without_kid, 2), 2);
    options_finish(&o);
}

int main(void)
{
    RUN(test_range_single_number_is_min_and_max);
    RUN(test_range_min_max_is_parsed);
    RUN(test_range_malformed_is_rejected);
    RUN(test_broker_tcp_and_mqtt_uris_are_parsed);
    RUN(test_broker_tls_uris_are_parsed);
    RUN(test_broker_malformed_uris_are_rejected);
    RUN(test_plan_ids_are_valid_unique_and_padded);
    RUN(test_plan_same_seed_gives_same_population);
    RUN(test_plan_too_long_prefix_is_refused);
    RUN(test_plan_agent_strings_come_from_the_table);
    RUN(test_source_single_addresses_are_added);
    RUN(test_source_range_expands_both_ends_included);
    RUN(test_source_malformed_or_reversed_is_rejected);
    RUN(test_default_kid_is_the_file_name_without_extension);
    RUN(test_options_new_flags_are_parsed);
    RUN(test_options_conflicts_are_usage_errors);
    return TESTING_DONE();
}
