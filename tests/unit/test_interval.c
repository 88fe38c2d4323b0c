/* Unit tests of interval arithmetic (common/interval.c): alignment on epoch multiples, also
 * before the epoch, the previous interval, and the life of a key. */
#include "interval.h"

#include "testing.h"

#include <time.h>

#define MIN_MS 60000LL
/* 2023-11-14T22:14:00Z, a multiple of one minute */
#define T0 1700000040000LL

static void test_interval_start_exactly_on_boundary_is_itself(void)
{
    CHECK_INT(hb_interval_start(T0, MIN_MS), T0);
    CHECK_INT(hb_interval_start(0, MIN_MS), 0);
    CHECK_INT(hb_interval_start(-MIN_MS, MIN_MS), -MIN_MS);
}

static void test_interval_start_one_ms_before_boundary_is_previous_start(void)
{
    CHECK_INT(hb_interval_start(T0 - 1, MIN_MS), T0 - MIN_MS);
    CHECK_INT(hb_interval_start(MIN_MS - 1, MIN_MS), 0);
}

static void test_interval_start_one_ms_after_boundary_rounds_down(void)
{
    CHECK_INT(hb_interval_start(T0 + 1, MIN_MS), T0);
    CHECK_INT(hb_interval_start(T0 + MIN_MS - 1, MIN_MS), T0);
    CHECK_INT(hb_interval_start(1, MIN_MS), 0);
}

static void test_interval_start_rounds_down_before_epoch(void)
{
    CHECK_INT(hb_interval_start(-1, MIN_MS), -MIN_MS);
    CHECK_INT(hb_interval_start(-MIN_MS + 1, MIN_MS), -MIN_MS);
    CHECK_INT(hb_interval_start(-MIN_MS - 1, MIN_MS), -2 * MIN_MS);
    CHECK_INT(hb_interval_start(-1, 1), -1);
}

static void test_interval_start_with_other_lengths(void)
{
    CHECK_INT(hb_interval_start(T0 + 12345, 1000), T0 + 12000);
    CHECK_INT(hb_interval_start(T0 + 1, 3600000), 1699999200000LL);
    CHECK_INT(hb_interval_start(T0 + 999, 1), T0 + 999);
}

static void test_interval_previous_on_boundary_is_one_interval_back(void)
{
    CHECK_INT(hb_interval_previous(T0, MIN_MS), T0 - MIN_MS);
}

static void test_interval_previous_inside_interval(void)
{
    CHECK_INT(hb_interval_previous(T0 + 1, MIN_MS), T0 - MIN_MS);
    CHECK_INT(hb_interval_previous(T0 + MIN_MS - 1, MIN_MS), T0 - MIN_MS);
    CHECK_INT(hb_interval_previous(T0 - 1, MIN_MS), T0 - 2 * MIN_MS);
}

static void test_interval_previous_before_epoch(void)
{
    CHECK_INT(hb_interval_previous(0, MIN_MS), -MIN_MS);
    CHECK_INT(hb_interval_previous(-1, MIN_MS), -2 * MIN_MS);
}

static void test_interval_ttl_at_start_is_two_intervals(void)
{
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0), 2 * MIN_MS);
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 + 1), 2 * MIN_MS - 1);
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 + MIN_MS), MIN_MS);
}

static void test_interval_ttl_reaches_zero_at_start_plus_two_intervals(void)
{
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 + 2 * MIN_MS - 1), 1);
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 + 2 * MIN_MS), 0);
}

static void test_interval_ttl_is_negative_after_life(void)
{
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 + 2 * MIN_MS + 1), -1);
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 + 10 * MIN_MS), -8 * MIN_MS);
}

static void test_interval_ttl_never_exceeds_two_intervals(void)
{
    /* A clock behind the key's interval must not extend its life. */
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 - 1), 2 * MIN_MS);
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, T0 - 5 * MIN_MS), 2 * MIN_MS);
    CHECK_INT(hb_interval_ttl_ms(T0, MIN_MS, 0), 2 * MIN_MS);
    int over = 0;
    for (long long now = T0 - 3 * MIN_MS; now <= T0 + 3 * MIN_MS; now += 997) {
        if (hb_interval_ttl_ms(T0, MIN_MS, now) > 2 * MIN_MS)
            over++;
    }
    CHECK_INT(over, 0);
}

static void test_interval_ttl_before_epoch(void)
{
    CHECK_INT(hb_interval_ttl_ms(-MIN_MS, MIN_MS, 0), MIN_MS);
    CHECK_INT(hb_interval_ttl_ms(-MIN_MS, MIN_MS, MIN_MS), 0);
}

static void test_interval_now_ms_matches_wall_clock(void)
{
    /* time() may read a coarser clock, a tick behind CLOCK_REALTIME: read the same clock. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long before = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    long long now = hb_now_ms();
    clock_gettime(CLOCK_REALTIME, &ts);
    long long after = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    CHECK(now >= before);
    CHECK(now <= after);
}

int main(void)
{
    RUN(test_interval_start_exactly_on_boundary_is_itself);
    RUN(test_interval_start_one_ms_before_boundary_is_previous_start);
    RUN(test_interval_start_one_ms_after_boundary_rounds_down);
    RUN(test_interval_start_rounds_down_before_epoch);
    RUN(test_interval_start_with_other_lengths);
    RUN(test_interval_previous_on_boundary_is_one_interval_back);
    RUN(test_interval_previous_inside_interval);
    RUN(test_interval_previous_before_epoch);
    RUN(test_interval_ttl_at_start_is_two_intervals);
    RUN(test_interval_ttl_reaches_zero_at_start_plus_two_intervals);
    RUN(test_interval_ttl_is_negative_after_life);
    RUN(test_interval_ttl_never_exceeds_two_intervals);
    RUN(test_interval_ttl_before_epoch);
    RUN(test_interval_now_ms_matches_wall_clock);
    return TESTING_DONE();
}
