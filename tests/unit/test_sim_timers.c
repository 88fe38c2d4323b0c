/* Unit tests of hb-sim's timer heap (publisher-sim/timers.c): earliest first, moving and
 * cancelling times, and agreement with a brute-force model under random operations. */
#include "rng.h"
#include "timers.h"

#include "testing.h"

static void test_timers_pop_due_returns_earliest_first(void)
{
    struct timers t;
    CHECK(timers_init(&t, 4));
    timers_set(&t, 0, 30);
    timers_set(&t, 1, 10);
    timers_set(&t, 2, 20);
    struct timers_entry e;
    CHECK(!timers_pop_due(&t, 5, &e));
    CHECK(timers_pop_due(&t, 100, &e));
    CHECK_INT(e.id, 1);
    CHECK(timers_pop_due(&t, 100, &e));
    CHECK_INT(e.id, 2);
    CHECK(timers_pop_due(&t, 100, &e));
    CHECK_INT(e.id, 0);
    CHECK(!timers_pop_due(&t, 100, &e));
    timers_finish(&t);
}

static void test_timers_set_again_moves_the_time(void)
{
    struct timers t;
    CHECK(timers_init(&t, 3));
    timers_set(&t, 0, 10);
    timers_set(&t, 1, 20);
    timers_set(&t, 0, 30);
    struct timers_entry e;
    CHECK(timers_peek(&t, &e));
    CHECK_INT(e.id, 1);
    timers_set(&t, 0, 5);
    CHECK(timers_peek(&t, &e));
    CHECK_INT(e.id, 0);
    CHECK_INT(e.when, 5);
    CHECK_INT(t.len, 2);
    timers_finish(&t);
}

static void test_timers_cancel_removes_only_that_id(void)
{
    struct timers t;
    CHECK(timers_init(&t, 3));
    timers_set(&t, 0, 10);
    timers_set(&t, 1, 20);
    timers_set(&t, 2, 30);
    timers_cancel(&t, 0);
    timers_cancel(&t, 0); /* twice is harmless */
    CHECK(!timers_pending(&t, 0));
    CHECK(timers_pending(&t, 1));
    struct timers_entry e;
    CHECK(timers_pop_due(&t, 100, &e));
    CHECK_INT(e.id, 1);
    timers_finish(&t);
}

static void test_timers_equal_times_pop_by_id(void)
{
    struct timers t;
    CHECK(timers_init(&t, 3));
    timers_set(&t, 2, 7);
    timers_set(&t, 0, 7);
    timers_set(&t, 1, 7);
    struct timers_entry e;
    for (size_t id = 0; id < 3; id++) {
        CHECK(timers_pop_due(&t, 7, &e));
        CHECK_INT(e.id, id);
    }
    timers_finish(&t);
}

static void test_timers_random_operations_match_brute_force(void)
{
    enum { N = 64 };
    struct timers t;
    CHECK(timers_init(&t, N));
    int64_t model[N];
    for (int i = 0; i < N; i++)
        model[i] = -1;
    struct rng r;
    rng_seed(&r, 2024);
    for (int step = 0; step < 20000; step++) {
        size_t id = (size_t)rng_range(&r, 0, N - 1);
        uint64_t op = rng_range(&r, 0, 3);
        if (op < 2) {
            int64_t when = (int64_t)rng_range(&r, 0, 1000);
            timers_set(&t, id, when);
            model[id] = when;
        } else if (op == 2) {
            timers_cancel(&t, id);
            model[id] = -1;
        } else {
            int64_t now = (int64_t)rng_range(&r, 0, 1000);
            size_t best = N;
            for (size_t i = 0; i < N; i++)
                if (model[i] >= 0 && model[i] <= now && (best == N || model[i] < model[best]))
                    best = i;
            struct timers_entry e;
            bool got = timers_pop_due(&t, now, &e);
            if (got != (best != N) || (got && e.id != best)) {
                CHECK(got == (best != N));
                CHECK_INT(got ? e.id : N, best);
                break;
            }
            if (got)
                model[best] = -1;
        }
    }
    timers_finish(&t);
}

int main(void)
{
    RUN(test_timers_pop_due_returns_earliest_first);
    RUN(test_timers_set_again_moves_the_time);
    RUN(test_timers_cancel_removes_only_that_id);
    RUN(test_timers_equal_times_pop_by_id);
    RUN(test_timers_random_operations_match_brute_force);
    return TESTING_DONE();
}
