/* Unit tests of hb-sim's option helpers and population (publisher-sim/options.c, plan.c):
 * device-count ranges, broker URIs, ids, and payloads the consumer accepts. */
#include "heartbeat.h"
#include "options.h"
#include "plan.h"

#include "testing.h"

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
}

static void test_broker_malformed_uris_are_rejected(void)
{
    struct options_broker b;
    char err[256];
    CHECK(!options_broker_parse("127.0.0.1:1883", &b, err, sizeof(err)));
    CHECK(!options_broker_parse("ssl://h:1883", &b, err, sizeof(err)));
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

static void test_plan_payload_is_accepted_by_consumer_check(void)
{
    struct plan p;
    struct plan_params pp = params(3, 3);
    struct rng r;
    rng_seed(&r, 3);
    CHECK(plan_init(&p, &pp, &r));
    char buf[512];
    int64_t sent = 1700000040123LL;
    for (size_t d = 0; d < p.n_devices; d++) {
        int n = plan_payload(&p.device[d], sent, sent - 123456, buf, sizeof(buf));
        CHECK(n > 0 && n < 256);
        int64_t ts = -2;
        CHECK_INT(hb_payload_check(buf, (size_t)n, HB_PAYLOAD_MAX_DEFAULT, &ts), HB_OK);
        CHECK_INT(ts, sent);
        CHECK(strstr(buf, "\"playTime\":123.4") != NULL);
    }
    CHECK_INT(plan_payload(&p.device[0], sent, sent, buf, 10), -1);
    plan_finish(&p);
}

int main(void)
{
    RUN(test_range_single_number_is_min_and_max);
    RUN(test_range_min_max_is_parsed);
    RUN(test_range_malformed_is_rejected);
    RUN(test_broker_tcp_and_mqtt_uris_are_parsed);
    RUN(test_broker_malformed_uris_are_rejected);
    RUN(test_plan_ids_are_valid_unique_and_padded);
    RUN(test_plan_same_seed_gives_same_population);
    RUN(test_plan_too_long_prefix_is_refused);
    RUN(test_plan_payload_is_accepted_by_consumer_check);
    return TESTING_DONE();
}
