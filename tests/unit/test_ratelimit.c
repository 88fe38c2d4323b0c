/* Unit tests of the token bucket (common/ratelimit.c), the log rate limiter built on it and
 * level names (common/log.c). Time is passed in: every test steps a clock of its own, so
 * nothing sleeps and nothing depends on the machine's load. */
#include "log.h"
#include "ratelimit.h"

#include "testing.h"

/* An arbitrary monotonic time to start from. */
#define T0 INT64_C(5000000)

static void test_ratelimit_allows_burst_then_suppresses(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 3;
    rl.window_ms = 60000;
    long suppressed = -1;
    for (int i = 0; i < 3; i++) {
        CHECK(hb_ratelimit_allow_at(&rl, T0, &suppressed));
        CHECK_INT(suppressed, 0);
    }
    for (int i = 0; i < 5; i++) {
        suppressed = -1;
        CHECK(!hb_ratelimit_allow_at(&rl, T0 + i, &suppressed));
        CHECK_INT(suppressed, 0);
    }
}

static void test_ratelimit_reports_suppressed_count_after_window(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 2;
    rl.window_ms = 30;
    long suppressed = -1;
    CHECK(hb_ratelimit_allow_at(&rl, T0, &suppressed));
    CHECK(hb_ratelimit_allow_at(&rl, T0, &suppressed));
    CHECK(!hb_ratelimit_allow_at(&rl, T0, &suppressed));
    CHECK(!hb_ratelimit_allow_at(&rl, T0, &suppressed));
    CHECK(!hb_ratelimit_allow_at(&rl, T0, &suppressed));
    CHECK(hb_ratelimit_allow_at(&rl, T0 + 45, &suppressed));
    CHECK_INT(suppressed, 3);
    /* The count is reported once. */
    CHECK(hb_ratelimit_allow_at(&rl, T0 + 45, &suppressed));
    CHECK_INT(suppressed, 0);
    CHECK(!hb_ratelimit_allow_at(&rl, T0 + 45, &suppressed));
}

static void test_ratelimit_new_window_allows_a_full_burst_again(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 3;
    rl.window_ms = 30;
    long suppressed;
    int allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += hb_ratelimit_allow_at(&rl, T0, &suppressed);
    CHECK_INT(allowed, 3);
    allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += hb_ratelimit_allow_at(&rl, T0 + 45, &suppressed);
    CHECK_INT(allowed, 3);
}

static void test_ratelimit_window_not_over_keeps_suppressing(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 1;
    rl.window_ms = 60000;
    long suppressed;
    CHECK(hb_ratelimit_allow_at(&rl, T0, &suppressed));
    CHECK(!hb_ratelimit_allow_at(&rl, T0, &suppressed));
    /* Less than a window later: still suppressed. */
    CHECK(!hb_ratelimit_allow_at(&rl, T0 + 30000, &suppressed));
    /* A whole window later: allowed, and it reports the two suppressed messages. */
    CHECK(hb_ratelimit_allow_at(&rl, T0 + 60000, &suppressed));
    CHECK_INT(suppressed, 2);
}

static void test_ratelimit_on_the_monotonic_clock_allows_a_first_burst(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 2;
    rl.window_ms = 60000;
    long suppressed = -1;
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK_INT(suppressed, 0);
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
}

static void test_bucket_starts_full_and_refills_at_its_rate(void)
{
    struct hb_bucket b;
    hb_bucket_init(&b, 10, 5); /* 10 per second, 5 at once */
    for (int i = 0; i < 5; i++)
        CHECK(hb_bucket_take(&b, 1, T0));
    CHECK(!hb_bucket_take(&b, 1, T0));
    CHECK(!hb_bucket_take(&b, 1, T0 + 99)); /* 0.99 of a token */
    CHECK(hb_bucket_take(&b, 1, T0 + 100));
    CHECK(!hb_bucket_take(&b, 1, T0 + 100));
    /* A long quiet spell fills it to its burst, never beyond. */
    CHECK(hb_bucket_take(&b, 5, T0 + 100000));
    CHECK(!hb_bucket_take(&b, 1, T0 + 100000));
}

static void test_bucket_takes_n_at_once_or_nothing(void)
{
    struct hb_bucket b;
    hb_bucket_init(&b, 1000, 100);
    CHECK(hb_bucket_take(&b, 60, T0));
    CHECK(!hb_bucket_take(&b, 50, T0)); /* 40 left: nothing taken */
    CHECK(hb_bucket_take(&b, 40, T0));
    CHECK(!hb_bucket_take(&b, 1, T0));
    CHECK(!hb_bucket_take(&b, 101, T0 + 1000000)); /* more than it ever holds */
    CHECK(hb_bucket_take(&b, 100, T0 + 1000000));
}

static void test_bucket_wait_ms_says_when_n_are_there(void)
{
    struct hb_bucket b;
    hb_bucket_init(&b, 4, 2); /* one token every 250 ms */
    CHECK_INT(hb_bucket_wait_ms(&b, 2, T0), 0);
    CHECK(hb_bucket_take(&b, 2, T0));
    CHECK_INT(hb_bucket_wait_ms(&b, 1, T0), 250);
    CHECK_INT(hb_bucket_wait_ms(&b, 2, T0), 500);
    CHECK_INT(hb_bucket_wait_ms(&b, 1, T0 + 100), 150);
    CHECK_INT(hb_bucket_wait_ms(&b, 1, T0 + 250), 0);
    CHECK_INT(hb_bucket_wait_ms(&b, 3, T0 + 250), -1); /* above the burst: never */
    /* Asking takes nothing. */
    CHECK(hb_bucket_take(&b, 1, T0 + 250));
    CHECK(!hb_bucket_take(&b, 1, T0 + 250));
}

static void test_bucket_time_going_backwards_adds_nothing(void)
{
    struct hb_bucket b;
    hb_bucket_init(&b, 1, 1);
    CHECK(hb_bucket_take(&b, 1, T0));
    CHECK(!hb_bucket_take(&b, 1, T0 - 5000));
    CHECK(!hb_bucket_take(&b, 1, T0 + 999));
    CHECK(hb_bucket_take(&b, 1, T0 + 1000));
}

static void test_bucket_without_rate_never_limits(void)
{
    struct hb_bucket b;
    hb_bucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++)
        CHECK(hb_bucket_take(&b, 1, T0));
    CHECK_INT(hb_bucket_wait_ms(&b, 1000, T0), 0);
}

static void test_log_level_parse_known_names(void)
{
    enum hb_log_level level = HB_LOG_INFO;
    CHECK(hb_log_level_parse("error", &level));
    CHECK_INT(level, HB_LOG_ERROR);
    CHECK(hb_log_level_parse("warn", &level));
    CHECK_INT(level, HB_LOG_WARN);
    CHECK(hb_log_level_parse("info", &level));
    CHECK_INT(level, HB_LOG_INFO);
    CHECK(hb_log_level_parse("debug", &level));
    CHECK_INT(level, HB_LOG_DEBUG);
}

static void test_log_level_parse_rejects_unknown_names(void)
{
    enum hb_log_level level = HB_LOG_WARN;
    CHECK(!hb_log_level_parse("", &level));
    CHECK(!hb_log_level_parse("warning", &level));
    CHECK(!hb_log_level_parse("trace", &level));
    CHECK(!hb_log_level_parse("info ", &level));
    CHECK_INT(level, HB_LOG_WARN);
}

static void test_set_err_cuts_to_fit_and_ignores_no_buffer(void)
{
    char err[8];
    hb_set_err(err, sizeof(err), "%s %d", "refused", 42);
    CHECK_STR(err, "refused");
    hb_set_err(NULL, 100, "nowhere %d", 1);
    err[0] = 'x';
    hb_set_err(err, 0, "nothing");
    CHECK_INT(err[0], 'x');
}

int main(void)
{
    RUN(test_ratelimit_allows_burst_then_suppresses);
    RUN(test_ratelimit_reports_suppressed_count_after_window);
    RUN(test_ratelimit_new_window_allows_a_full_burst_again);
    RUN(test_ratelimit_window_not_over_keeps_suppressing);
    RUN(test_ratelimit_on_the_monotonic_clock_allows_a_first_burst);
    RUN(test_bucket_starts_full_and_refills_at_its_rate);
    RUN(test_bucket_takes_n_at_once_or_nothing);
    RUN(test_bucket_wait_ms_says_when_n_are_there);
    RUN(test_bucket_time_going_backwards_adds_nothing);
    RUN(test_bucket_without_rate_never_limits);
    RUN(test_log_level_parse_known_names);
    RUN(test_log_level_parse_rejects_unknown_names);
    RUN(test_set_err_cuts_to_fit_and_ignores_no_buffer);
    return TESTING_DONE();
}
