/* Unit tests of the log rate limiter and level names (common/log.c). The window tests sleep a
 * little longer than a short window: they test the passing of time itself. */
#include "log.h"

#include "interval.h"
#include "testing.h"

#include <time.h>

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void test_ratelimit_allows_burst_then_suppresses(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 3;
    rl.window_ms = 60000;
    long suppressed = -1;
    for (int i = 0; i < 3; i++) {
        CHECK(hb_ratelimit_allow(&rl, &suppressed));
        CHECK_INT(suppressed, 0);
    }
    for (int i = 0; i < 5; i++) {
        suppressed = -1;
        CHECK(!hb_ratelimit_allow(&rl, &suppressed));
        CHECK_INT(suppressed, 0);
    }
}

static void test_ratelimit_reports_suppressed_count_after_window(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 2;
    rl.window_ms = 30;
    long suppressed = -1;
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
    sleep_ms(45);
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK_INT(suppressed, 3);
    /* The count is reported once. */
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK_INT(suppressed, 0);
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
}

static void test_ratelimit_new_window_allows_a_full_burst_again(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 3;
    rl.window_ms = 30;
    long suppressed;
    int allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += hb_ratelimit_allow(&rl, &suppressed);
    CHECK_INT(allowed, 3);
    sleep_ms(45);
    allowed = 0;
    for (int i = 0; i < 10; i++)
        allowed += hb_ratelimit_allow(&rl, &suppressed);
    CHECK_INT(allowed, 3);
}

static void test_ratelimit_window_not_over_keeps_suppressing(void)
{
    struct hb_ratelimit rl = {0};
    rl.burst = 1;
    rl.window_ms = 60000;
    long suppressed;
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
    /* Move the window's start back by less than a window: still the same window. */
    atomic_store(&rl.window_start, hb_now_ms() - 30000);
    CHECK(!hb_ratelimit_allow(&rl, &suppressed));
    /* And by a whole window: a new one, which reports the two suppressed messages. */
    atomic_store(&rl.window_start, hb_now_ms() - 60000);
    CHECK(hb_ratelimit_allow(&rl, &suppressed));
    CHECK_INT(suppressed, 2);
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

int main(void)
{
    RUN(test_ratelimit_allows_burst_then_suppresses);
    RUN(test_ratelimit_reports_suppressed_count_after_window);
    RUN(test_ratelimit_new_window_allows_a_full_burst_again);
    RUN(test_ratelimit_window_not_over_keeps_suppressing);
    RUN(test_log_level_parse_known_names);
    RUN(test_log_level_parse_rejects_unknown_names);
    return TESTING_DONE();
}
