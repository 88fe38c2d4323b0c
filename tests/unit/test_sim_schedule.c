/* Unit tests of hb-sim's timing (publisher-sim/schedule.c): the guard band around interval
 * boundaries, jittered periods, the complete intervals of a run, device windows; and the
 * truth line of an account that sent nothing. */
#include "schedule.h"
#include "truth.h"

#include "testing.h"
#include "truth_testing.h"

#include <stdio.h>
#include <stdlib.h>

#define I 60000LL /* one-minute interval */
#define G 250LL   /* guard */
/* 2023-11-14T22:14:00Z, a multiple of one minute */
#define B 1700000040000LL

static void test_guard_just_before_boundary_shifts_to_boundary_plus_guard(void)
{
    CHECK_INT(schedule_guard(B - 1, I, G), B + G);
    CHECK_INT(schedule_guard(B - 100, I, G), B + G);
    CHECK_INT(schedule_guard(B - G, I, G), B + G); /* the band includes boundary - guard */
}

static void test_guard_just_after_boundary_shifts_to_boundary_plus_guard(void)
{
    CHECK_INT(schedule_guard(B, I, G), B + G);
    CHECK_INT(schedule_guard(B + 1, I, G), B + G);
    CHECK_INT(schedule_guard(B + G - 1, I, G), B + G);
}

static void test_guard_outside_band_is_untouched(void)
{
    CHECK_INT(schedule_guard(B + G, I, G), B + G); /* the band excludes boundary + guard */
    CHECK_INT(schedule_guard(B - G - 1, I, G), B - G - 1);
    CHECK_INT(schedule_guard(B + I / 2, I, G), B + I / 2);
    CHECK_INT(schedule_guard(B + 12345, I, G), B + 12345);
}

static void test_guard_zero_never_shifts(void)
{
    CHECK_INT(schedule_guard(B, I, 0), B);
    CHECK_INT(schedule_guard(B - 1, I, 0), B - 1);
    CHECK_INT(schedule_guard(B + 1, I, 0), B + 1);
}

static void test_guard_result_is_never_inside_a_band(void)
{
    /* Every millisecond of two intervals around B, with a short interval to cover them all. */
    int64_t interval = 3000, guard = 400;
    int64_t bad = 0;
    for (int64_t t = B - 2 * interval; t < B + 2 * interval; t++) {
        int64_t at = schedule_guard(t, interval, guard);
        int64_t off = at % interval;
        if ((at < t || off < guard || off >= interval - guard) && bad++ == 0)
            fprintf(stderr, "schedule_guard(%lld) = %lld, in a band\n", (long long)t,
                    (long long)at);
    }
    CHECK_INT(bad, 0);
}

static void test_guard_fits_needs_room_between_bands(void)
{
    CHECK(schedule_guard_fits(I, G));
    CHECK(schedule_guard_fits(I, 0));
    CHECK(schedule_guard_fits(1000, 499));
    CHECK(!schedule_guard_fits(1000, 500));
    CHECK(!schedule_guard_fits(1000, -1));
    CHECK(!schedule_guard_fits(0, 0));
}

static void test_spread_stays_between_bands(void)
{
    int64_t b = 1700000040000LL, at = b + 250; /* boundary + guard */
    CHECK_INT(schedule_spread(at, 60000, 250, 0.0), at);
    CHECK_INT(schedule_spread(at, 60000, 250, 0.5), at + 250);
    CHECK_INT(schedule_spread(at, 60000, 250, 0.999999), at + 499);
    /* A narrow interval: never into the next band [b + 1000 - 400, ...). */
    int64_t near = b + 400;
    CHECK(schedule_spread(near, 1000, 400, 0.999999) < b + 1000 - 400);
    CHECK_INT(schedule_guard(schedule_spread(near, 1000, 400, 0.999999), 1000, 400),
              schedule_spread(near, 1000, 400, 0.999999));
    CHECK_INT(schedule_spread(at, 60000, 0, 0.7), at); /* no guard, nothing to spread */
}

static void test_next_without_jitter_is_one_period_later(void)
{
    CHECK_INT(schedule_next(B, 5.0, 0.0, 0.7), B + 5000);
    CHECK_INT(schedule_next(B, 0.5, 0.3, 0.0), B + 500);
}

static void test_next_with_jitter_spans_period_plus_minus_jitter(void)
{
    CHECK_INT(schedule_next(B, 5.0, 0.1, -1.0), B + 4500);
    CHECK_INT(schedule_next(B, 5.0, 0.1, 1.0), B + 5500);
    CHECK_INT(schedule_next(B, 1.0, 0.5, 0.5), B + 1250);
}

static void test_next_is_at_least_one_ms_later(void)
{
    CHECK_INT(schedule_next(B, 0.0001, 0.0, 0.0), B + 1);
}

static void test_complete_run_mid_interval_excludes_both_partial_intervals(void)
{
    int64_t first = 0;
    /* 10:30 into one interval to 20:00 into the fourth: two whole ones in between. */
    CHECK_INT(schedule_complete(B + 30000, B + 3 * I + 20000, I, &first), 2);
    CHECK_INT(first, B + I);
}

static void test_complete_run_exactly_on_boundaries_includes_both_ends(void)
{
    int64_t first = 0;
    CHECK_INT(schedule_complete(B, B + 3 * I, I, &first), 3);
    CHECK_INT(first, B);
}

static void test_complete_run_starting_on_boundary_ending_mid_interval(void)
{
    int64_t first = 0;
    CHECK_INT(schedule_complete(B, B + 2 * I + 1, I, &first), 2);
    CHECK_INT(first, B);
    CHECK_INT(schedule_complete(B, B + I - 1, I, &first), 0);
}

static void test_complete_run_one_ms_after_boundary_loses_that_interval(void)
{
    int64_t first = 0;
    CHECK_INT(schedule_complete(B + 1, B + 2 * I, I, &first), 1);
    CHECK_INT(first, B + I);
}

static void test_complete_run_shorter_than_interval_has_none(void)
{
    int64_t first = 0;
    CHECK_INT(schedule_complete(B + 10, B + 50000, I, &first), 0);
    CHECK_INT(schedule_complete(B + 10, B + 10, I, &first), 0);
    CHECK_INT(schedule_complete(B + 10, B, I, &first), 0);
}

static void test_window_without_churn_is_whole_run(void)
{
    struct rng r;
    rng_seed(&r, 42);
    int whole = 0;
    for (int i = 0; i < 1000; i++) {
        struct schedule_window w = schedule_window(&r, 0.0, 60000);
        whole += w.start_ms == 0 && w.stop_ms == 60000;
    }
    CHECK_INT(whole, 1000);
}

static void test_window_with_full_churn_is_inside_run_and_never_whole(void)
{
    struct rng r;
    rng_seed(&r, 7);
    int late = 0, early = 0;
    for (int i = 0; i < 3000; i++) {
        struct schedule_window w = schedule_window(&r, 1.0, 60000);
        if (w.start_ms < 0 || w.stop_ms > 60000 || w.stop_ms - w.start_ms < 1000 ||
            (w.start_ms == 0 && w.stop_ms == 60000)) {
            fprintf(stderr, "window %d: [%lld, %lld)\n", i, (long long)w.start_ms,
                    (long long)w.stop_ms);
            CHECK(w.start_ms >= 0 && w.stop_ms <= 60000);
            CHECK(w.stop_ms - w.start_ms >= 1000);
            CHECK(!(w.start_ms == 0 && w.stop_ms == 60000));
            return;
        }
        late += w.start_ms > 0;
        early += w.stop_ms < 60000;
    }
    /* Two of three modes start late, two of three stop early. */
    CHECK(late > 1800 && late < 2200);
    CHECK(early > 1800 && early < 2200);
}

static void test_window_churn_fraction_is_respected(void)
{
    struct rng r;
    rng_seed(&r, 99);
    int churned = 0;
    for (int i = 0; i < 10000; i++) {
        struct schedule_window w = schedule_window(&r, 0.25, 60000);
        churned += w.start_ms != 0 || w.stop_ms != 60000;
    }
    CHECK(churned > 2300 && churned < 2700);
}

static void test_window_same_seed_gives_same_windows(void)
{
    struct rng a, b;
    rng_seed(&a, 1234);
    rng_seed(&b, 1234);
    for (int i = 0; i < 100; i++) {
        struct schedule_window x = schedule_window(&a, 0.5, 10000);
        struct schedule_window y = schedule_window(&b, 0.5, 10000);
        CHECK_INT(x.start_ms, y.start_ms);
        CHECK_INT(x.stop_ms, y.stop_ms);
    }
}

static void test_truth_account_without_devices_is_empty_list(void)
{
    const char *accounts[] = {"acct0000", "acct0001"};
    const char *devices[] = {"acct0000-dev00"};
    size_t device_account[] = {0};
    struct truth_ids ids = {2, accounts, 1, devices, device_account};
    struct truth *t = truth_create(&ids, B, I, 1);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK(truth_record(t, 0, B + 1000));
    char *out = truth_to_string(t, 1);
    CHECK(out != NULL);
    if (out != NULL)
        CHECK_STR(out, "{\"interval_start\":1700000040000,\"account\":\"acct0000\","
                       "\"devices\":[\"acct0000-dev00\"]}\n"
                       "{\"interval_start\":1700000040000,\"account\":\"acct0001\","
                       "\"devices\":[]}\n");
    free(out);
    truth_destroy(t);
}

int main(void)
{
    RUN(test_guard_just_before_boundary_shifts_to_boundary_plus_guard);
    RUN(test_guard_just_after_boundary_shifts_to_boundary_plus_guard);
    RUN(test_guard_outside_band_is_untouched);
    RUN(test_guard_zero_never_shifts);
    RUN(test_guard_result_is_never_inside_a_band);
    RUN(test_guard_fits_needs_room_between_bands);
    RUN(test_spread_stays_between_bands);
    RUN(test_next_without_jitter_is_one_period_later);
    RUN(test_next_with_jitter_spans_period_plus_minus_jitter);
    RUN(test_next_is_at_least_one_ms_later);
    RUN(test_complete_run_mid_interval_excludes_both_partial_intervals);
    RUN(test_complete_run_exactly_on_boundaries_includes_both_ends);
    RUN(test_complete_run_starting_on_boundary_ending_mid_interval);
    RUN(test_complete_run_one_ms_after_boundary_loses_that_interval);
    RUN(test_complete_run_shorter_than_interval_has_none);
    RUN(test_window_without_churn_is_whole_run);
    RUN(test_window_with_full_churn_is_inside_run_and_never_whole);
    RUN(test_window_churn_fraction_is_respected);
    RUN(test_window_same_seed_gives_same_windows);
    RUN(test_truth_account_without_devices_is_empty_list);
    return TESTING_DONE();
}
