/* Unit tests of the shared settings (common/config.c): environment and defaults, the shared
 * options and their precedence, and the number and topic prefix parsers. */
#include "config.h"

#include "testing.h"

#include <limits.h>
#include <stdlib.h>

static void clear_env(void)
{
    unsetenv("HB_BROKER");
    unsetenv("HB_REDIS");
    unsetenv("HB_INTERVAL");
    unsetenv("HB_TOPIC_PREFIX");
}

/* --- hb_config_init --- */

static void test_config_init_without_env_uses_defaults(void)
{
    clear_env();
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(cfg.n_brokers, 1);
    CHECK_STR(cfg.brokers[0], "tcp://127.0.0.1:1883");
    CHECK(!cfg.brokers_from_options);
    CHECK_STR(cfg.redis, "redis://127.0.0.1:6379");
    CHECK_INT(cfg.interval_s, 60);
    CHECK_STR(cfg.topic_prefix, "hb");
}

static void test_config_init_reads_every_env_variable(void)
{
    clear_env();
    setenv("HB_BROKER", "tcp://broker.example:1884", 1);
    setenv("HB_REDIS", "redis://:pw@cache:6380/2", 1);
    setenv("HB_INTERVAL", "300", 1);
    setenv("HB_TOPIC_PREFIX", "tele/hb", 1);
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(cfg.n_brokers, 1);
    CHECK_STR(cfg.brokers[0], "tcp://broker.example:1884");
    CHECK_STR(cfg.redis, "redis://:pw@cache:6380/2");
    CHECK_INT(cfg.interval_s, 300);
    CHECK_STR(cfg.topic_prefix, "tele/hb");
    clear_env();
}

static void test_config_init_empty_env_values_mean_default(void)
{
    clear_env();
    setenv("HB_BROKER", "", 1);
    setenv("HB_REDIS", "", 1);
    setenv("HB_INTERVAL", "", 1);
    setenv("HB_TOPIC_PREFIX", "", 1);
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_STR(cfg.brokers[0], HB_DEFAULT_BROKER);
    CHECK_STR(cfg.redis, HB_DEFAULT_REDIS);
    CHECK_INT(cfg.interval_s, HB_DEFAULT_INTERVAL);
    CHECK_STR(cfg.topic_prefix, HB_DEFAULT_TOPIC_PREFIX);
    clear_env();
}

static void test_config_init_interval_bounds_from_env(void)
{
    struct hb_config cfg;
    clear_env();
    setenv("HB_INTERVAL", "1", 1);
    CHECK(hb_config_init(&cfg));
    CHECK_INT(cfg.interval_s, 1);
    setenv("HB_INTERVAL", "604800", 1);
    CHECK(hb_config_init(&cfg));
    CHECK_INT(cfg.interval_s, 604800);
    clear_env();
}

static void test_config_init_rejects_invalid_interval(void)
{
    const char *bad[] = {"0", "-60", "604801", "abc", "60s", "6 0", "1.5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clear_env();
        setenv("HB_INTERVAL", bad[i], 1);
        struct hb_config cfg;
        bool ok = hb_config_init(&cfg);
        if (ok)
            fprintf(stderr, "  HB_INTERVAL=%s accepted\n", bad[i]);
        CHECK(!ok);
    }
    clear_env();
}

static void test_config_init_rejects_invalid_topic_prefix(void)
{
    const char *bad[] = {"/hb", "hb/", "a//b", "h+b", "h#", "h b", "{hb}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        clear_env();
        setenv("HB_TOPIC_PREFIX", bad[i], 1);
        struct hb_config cfg;
        bool ok = hb_config_init(&cfg);
        if (ok)
            fprintf(stderr, "  HB_TOPIC_PREFIX=%s accepted\n", bad[i]);
        CHECK(!ok);
    }
    clear_env();
}

/* --- hb_config_option --- */

static void test_config_option_first_broker_replaces_env_broker(void)
{
    clear_env();
    setenv("HB_BROKER", "tcp://env:1883", 1);
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, "tcp://opt1:1883"), 1);
    CHECK_INT(cfg.n_brokers, 1);
    CHECK_STR(cfg.brokers[0], "tcp://opt1:1883");
    CHECK(cfg.brokers_from_options);
    clear_env();
}

static void test_config_option_first_broker_replaces_default_broker(void)
{
    clear_env();
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, "tcp://opt1:1883"), 1);
    CHECK_INT(cfg.n_brokers, 1);
    CHECK_STR(cfg.brokers[0], "tcp://opt1:1883");
}

static void test_config_option_later_brokers_add_in_order(void)
{
    clear_env();
    setenv("HB_BROKER", "tcp://env:1883", 1);
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, "tcp://a:1"), 1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, "tcp://b:2"), 1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, "tcp://c:3"), 1);
    CHECK_INT(cfg.n_brokers, 3);
    CHECK_STR(cfg.brokers[0], "tcp://a:1");
    CHECK_STR(cfg.brokers[1], "tcp://b:2");
    CHECK_STR(cfg.brokers[2], "tcp://c:3");
    clear_env();
}

static void test_config_option_at_most_brokers_max(void)
{
    clear_env();
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    char names[HB_BROKERS_MAX + 1][32];
    for (int i = 0; i < HB_BROKERS_MAX; i++) {
        snprintf(names[i], sizeof(names[i]), "tcp://b%d:1883", i);
        CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, names[i]), 1);
    }
    CHECK_INT(cfg.n_brokers, HB_BROKERS_MAX);
    snprintf(names[HB_BROKERS_MAX], sizeof(names[0]), "tcp://too-many:1883");
    CHECK_INT(hb_config_option(&cfg, HB_OPT_BROKER, names[HB_BROKERS_MAX]), -1);
    CHECK_INT(cfg.n_brokers, HB_BROKERS_MAX);
    CHECK_STR(cfg.brokers[0], "tcp://b0:1883");
    CHECK_STR(cfg.brokers[HB_BROKERS_MAX - 1], "tcp://b15:1883");
}

static void test_config_option_redis_overrides_env(void)
{
    clear_env();
    setenv("HB_REDIS", "redis://env:6379", 1);
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(hb_config_option(&cfg, HB_OPT_REDIS, "unix:///tmp/r.sock"), 1);
    CHECK_STR(cfg.redis, "unix:///tmp/r.sock");
    clear_env();
}

static void test_config_option_interval_bounds(void)
{
    clear_env();
    setenv("HB_INTERVAL", "120", 1);
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(cfg.interval_s, 120);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "1"), 1);
    CHECK_INT(cfg.interval_s, 1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "604800"), 1);
    CHECK_INT(cfg.interval_s, 604800);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "30"), 1);
    CHECK_INT(cfg.interval_s, 30);
    /* A rejected value leaves the previous one. */
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "0"), -1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "604801"), -1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "-1"), -1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, "ten"), -1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_INTERVAL, ""), -1);
    CHECK_INT(cfg.interval_s, 30);
    clear_env();
}

static void test_config_option_topic_prefix_validity(void)
{
    clear_env();
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(hb_config_option(&cfg, HB_OPT_TOPIC_PREFIX, "site-1/hb"), 1);
    CHECK_STR(cfg.topic_prefix, "site-1/hb");
    CHECK_INT(hb_config_option(&cfg, HB_OPT_TOPIC_PREFIX, "hb/"), -1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_TOPIC_PREFIX, ""), -1);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_TOPIC_PREFIX, "hb/+"), -1);
    CHECK_STR(cfg.topic_prefix, "site-1/hb");
}

static void test_config_option_unknown_code_returns_zero_and_changes_nothing(void)
{
    clear_env();
    struct hb_config cfg;
    CHECK(hb_config_init(&cfg));
    CHECK_INT(hb_config_option(&cfg, 'v', "x"), 0);
    CHECK_INT(hb_config_option(&cfg, HB_OPT_FIRST_PROGRAM_OPTION, "x"), 0);
    CHECK_INT(cfg.n_brokers, 1);
    CHECK_STR(cfg.brokers[0], HB_DEFAULT_BROKER);
    CHECK_STR(cfg.redis, HB_DEFAULT_REDIS);
    CHECK_INT(cfg.interval_s, 60);
    CHECK_STR(cfg.topic_prefix, "hb");
}

/* --- hb_topic_prefix_valid --- */

static void test_topic_prefix_valid_accepts_levels_of_id_bytes(void)
{
    CHECK(hb_topic_prefix_valid("hb"));
    CHECK(hb_topic_prefix_valid("a/b"));
    CHECK(hb_topic_prefix_valid("a.b_c-d:e/F9"));
    char p[65];
    memset(p, 'p', 64);
    p[64] = '\0';
    CHECK(hb_topic_prefix_valid(p));
}

static void test_topic_prefix_valid_rejects_bad_shapes(void)
{
    char p[66];
    memset(p, 'p', 65);
    p[65] = '\0';
    CHECK(!hb_topic_prefix_valid(p));
    CHECK(!hb_topic_prefix_valid(""));
    CHECK(!hb_topic_prefix_valid("/"));
    CHECK(!hb_topic_prefix_valid("/hb"));
    CHECK(!hb_topic_prefix_valid("hb/"));
    CHECK(!hb_topic_prefix_valid("a//b"));
    CHECK(!hb_topic_prefix_valid("+"));
    CHECK(!hb_topic_prefix_valid("hb/#"));
    CHECK(!hb_topic_prefix_valid("h b"));
    CHECK(!hb_topic_prefix_valid("h{b}"));
    CHECK(!hb_topic_prefix_valid("caf\xc3\xa9"));
}

/* --- hb_parse_long --- */

static void test_parse_long_accepts_bounds_inclusive(void)
{
    long v = 99;
    CHECK(hb_parse_long("1", 1, 10, &v));
    CHECK_INT(v, 1);
    CHECK(hb_parse_long("10", 1, 10, &v));
    CHECK_INT(v, 10);
    CHECK(hb_parse_long("0", 0, 0, &v));
    CHECK_INT(v, 0);
    CHECK(hb_parse_long("-5", -10, 10, &v));
    CHECK_INT(v, -5);
    CHECK(hb_parse_long("9223372036854775807", LONG_MIN, LONG_MAX, &v));
    CHECK_INT(v, LONG_MAX);
    CHECK(hb_parse_long("-9223372036854775808", LONG_MIN, LONG_MAX, &v));
    CHECK_INT(v, LONG_MIN);
}

static void test_parse_long_rejects_out_of_range_and_keeps_out(void)
{
    long v = 99;
    CHECK(!hb_parse_long("0", 1, 10, &v));
    CHECK(!hb_parse_long("11", 1, 10, &v));
    CHECK(!hb_parse_long("-1", 0, 10, &v));
    CHECK(!hb_parse_long("9223372036854775808", LONG_MIN, LONG_MAX, &v));
    CHECK(!hb_parse_long("-9223372036854775809", LONG_MIN, LONG_MAX, &v));
    CHECK_INT(v, 99);
}

static void test_parse_long_rejects_non_numbers(void)
{
    long v = 99;
    CHECK(!hb_parse_long(NULL, 0, 100, &v));
    CHECK(!hb_parse_long("", 0, 100, &v));
    CHECK(!hb_parse_long("abc", 0, 100, &v));
    CHECK(!hb_parse_long("12abc", 0, 100, &v));
    CHECK(!hb_parse_long("1.5", 0, 100, &v));
    CHECK(!hb_parse_long("0x10", 0, 100, &v));
    CHECK(!hb_parse_long("-", 0, 100, &v));
    CHECK(!hb_parse_long("5 ", 0, 100, &v));
    CHECK(!hb_parse_long("5\n", 0, 100, &v));
    CHECK_INT(v, 99);
}

static void test_parse_long_rejects_leading_whitespace(void)
{
    /* "Entirely such a number": a blank before the digits is not part of it, just as one
     * after them is not. */
    long v = 99;
    CHECK(!hb_parse_long(" 5", 0, 100, &v));
    CHECK(!hb_parse_long("\t5", 0, 100, &v));
    CHECK(!hb_parse_long("\n5", 0, 100, &v));
    CHECK_INT(v, 99);
}

int main(void)
{
    RUN(test_config_init_without_env_uses_defaults);
    RUN(test_config_init_reads_every_env_variable);
    RUN(test_config_init_empty_env_values_mean_default);
    RUN(test_config_init_interval_bounds_from_env);
    RUN(test_config_init_rejects_invalid_interval);
    RUN(test_config_init_rejects_invalid_topic_prefix);
    RUN(test_config_option_first_broker_replaces_env_broker);
    RUN(test_config_option_first_broker_replaces_default_broker);
    RUN(test_config_option_later_brokers_add_in_order);
    RUN(test_config_option_at_most_brokers_max);
    RUN(test_config_option_redis_overrides_env);
    RUN(test_config_option_interval_bounds);
    RUN(test_config_option_topic_prefix_validity);
    RUN(test_config_option_unknown_code_returns_zero_and_changes_nothing);
    RUN(test_topic_prefix_valid_accepts_levels_of_id_bytes);
    RUN(test_topic_prefix_valid_rejects_bad_shapes);
    RUN(test_parse_long_accepts_bounds_inclusive);
    RUN(test_parse_long_rejects_out_of_range_and_keeps_out);
    RUN(test_parse_long_rejects_non_numbers);
    RUN(test_parse_long_rejects_leading_whitespace);
    return TESTING_DONE();
}
