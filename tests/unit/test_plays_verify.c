/* hb-check --verify-plays on small hand-written plays truths: what holds passes, and each
 * kind of violation is found and counted. */
#include "plays_verify.h"
#include "testing.h"

#include <stdio.h>
#include <string.h>

#define A(t, dev, ev)                                                                              \
    "{\"t\":" #t ",\"event\":\"admitted\",\"account\":\"a\",\"device\":\"" dev                     \
    "\",\"limit\":2,\"evicted\":" ev "}\n"
#define R(t, dev, act)                                                                             \
    "{\"t\":" #t ",\"event\":\"refused\",\"account\":\"a\",\"device\":\"" dev                      \
    "\",\"reason\":\"account_limit\",\"limit\":2,\"active\":" act "}\n"
#define E(t, kind, dev)                                                                            \
    "{\"t\":" #t ",\"event\":\"" kind "\",\"account\":\"a\",\"device\":\"" dev "\"}\n"

static long violations(const char *text, enum hb_play_policy policy, struct plays_verify_report *r)
{
    struct plays_verify_config cfg = {policy, 30000, 2000};
    FILE *in = fmemopen((void *)text, strlen(text), "r");
    FILE *out = fopen("/dev/null", "w");
    plays_verify(in, &cfg, out, r);
    fclose(in);
    fclose(out);
    return r->violations;
}

static void test_plays_block_new_refusal_at_the_limit_passes(void)
{
    struct plays_verify_report r;
    const char *t = A(1000, "d1", "[]") A(1100, "d2", "[]") R(1200, "d3", "[\"d1\",\"d2\"]")
        E(5000, "released", "d1") A(9000, "d3", "[]") E(9500, "released", "d2")
            E(9600, "released", "d3");
    CHECK_INT(violations(t, HB_POLICY_BLOCK_NEW, &r), 0);
    CHECK_INT(r.events, 7);
    CHECK_INT(r.admitted, 3);
    CHECK_INT(r.refused, 1);
    CHECK_INT(r.released, 3);
    CHECK_INT(r.bad_lines, 0);
}

static void test_plays_refusal_below_the_limit_is_a_violation(void)
{
    struct plays_verify_report r;
    const char *t = A(1000, "d1", "[]") R(1200, "d3", "[\"d1\"]");
    CHECK_INT(violations(t, HB_POLICY_BLOCK_NEW, &r), 1);
}

static void test_plays_vanished_device_counts_for_the_grace_period_only(void)
{
    struct plays_verify_report r;
    /* d2 vanished at 2000: a refusal 10 s later is fair, 40 s later it is not. */
    const char *ok = A(1000, "d1", "[]") A(1100, "d2", "[]") E(2000, "vanished", "d2")
        R(12000, "d3", "[\"d1\",\"d2\"]");
    CHECK_INT(violations(ok, HB_POLICY_BLOCK_NEW, &r), 0);
    CHECK_INT(r.vanished, 1);
    const char *late = A(1000, "d1", "[]") A(1100, "d2", "[]") E(2000, "vanished", "d2")
        R(42000, "d3", "[\"d1\",\"d2\"]");
    CHECK_INT(violations(late, HB_POLICY_BLOCK_NEW, &r), 1);
}

static void test_plays_release_lag_is_allowed_but_not_more(void)
{
    struct plays_verify_report r;
    const char *ok = A(1000, "d1", "[]") A(1100, "d2", "[]") E(2000, "released", "d2")
        R(2500, "d3", "[\"d1\",\"d2\"]");
    CHECK_INT(violations(ok, HB_POLICY_BLOCK_NEW, &r), 0);
    const char *late = A(1000, "d1", "[]") A(1100, "d2", "[]") E(2000, "released", "d2")
        R(4500, "d3", "[\"d1\",\"d2\"]");
    CHECK_INT(violations(late, HB_POLICY_BLOCK_NEW, &r), 1);
}

static void test_plays_admission_above_the_limit_is_a_violation(void)
{
    struct plays_verify_report r;
    const char *t = A(1000, "d1", "[]") A(1100, "d2", "[]") A(1200, "d3", "[]");
    CHECK_INT(violations(t, HB_POLICY_BLOCK_NEW, &r), 1);
}

static void test_plays_evict_oldest_passes_when_the_oldest_goes(void)
{
    struct plays_verify_report r;
    const char *t = A(1000, "d1", "[]") A(1100, "d2", "[]")
        A(1200, "d3",
          "[\"d1\"]") "{\"t\":1300,\"event\":\"stopped\",\"account\":\"a\",\"device\":\"d1\","
                      "\"reason\":\"evicted\"}\n";
    CHECK_INT(violations(t, HB_POLICY_EVICT_OLDEST, &r), 0);
    CHECK_INT(r.evicted, 1);
    CHECK_INT(r.stopped, 1);
}

static void test_plays_evicting_a_younger_device_is_a_violation(void)
{
    struct plays_verify_report r;
    const char *t =
        A(1000, "d1", "[]") A(1100, "d2", "[]") A(1200, "d3", "[\"d2\"]") E(1300, "stopped", "d2");
    CHECK_INT(violations(t, HB_POLICY_EVICT_OLDEST, &r), 1);
    /* The same file under block_new: no eviction may happen at all. */
    const char *t2 =
        A(1000, "d1", "[]") A(1100, "d2", "[]") A(1200, "d3", "[\"d1\"]") E(1300, "stopped", "d1");
    CHECK_INT(violations(t2, HB_POLICY_BLOCK_NEW, &r), 1);
}

static void test_plays_evicted_device_playing_past_the_grace_period_is_a_violation(void)
{
    struct plays_verify_report r;
    const char *t = A(1000, "d1", "[]") A(1100, "d2", "[]") A(1200, "d3", "[\"d1\"]")
        E(40000, "released", "d2");
    CHECK_INT(violations(t, HB_POLICY_EVICT_OLDEST, &r), 1);
}

static void test_plays_events_are_sorted_by_time(void)
{
    struct plays_verify_report r;
    /* Two workers' lines interleaved out of order. */
    const char *t = E(5000, "released", "d1") A(1000, "d1", "[]") A(1100, "d2", "[]")
        R(1200, "d3", "[\"d1\",\"d2\"]");
    CHECK_INT(violations(t, HB_POLICY_BLOCK_NEW, &r), 0);
}

static void test_plays_bad_lines_and_unknown_devices_are_reported(void)
{
    struct plays_verify_report r;
    const char *t =
        "not json\n{\"t\":1,\"event\":\"exploded\",\"account\":\"a\",\"device\":\"d\"}\n" E(
            1000, "released", "d9") A(1000, "d1", "[]") A(1100, "d2", "[]")
            R(1200, "d3", "[\"d1\",\"dX\"]");
    violations(t, HB_POLICY_BLOCK_NEW, &r);
    CHECK_INT(r.bad_lines, 2);
    CHECK_INT(r.violations, 2); /* released without playing; dX never admitted */
}

int main(void)
{
    RUN(test_plays_block_new_refusal_at_the_limit_passes);
    RUN(test_plays_refusal_below_the_limit_is_a_violation);
    RUN(test_plays_vanished_device_counts_for_the_grace_period_only);
    RUN(test_plays_release_lag_is_allowed_but_not_more);
    RUN(test_plays_admission_above_the_limit_is_a_violation);
    RUN(test_plays_evict_oldest_passes_when_the_oldest_goes);
    RUN(test_plays_evicting_a_younger_device_is_a_violation);
    RUN(test_plays_evicted_device_playing_past_the_grace_period_is_a_violation);
    RUN(test_plays_events_are_sorted_by_time);
    RUN(test_plays_bad_lines_and_unknown_devices_are_reported);
    return TESTING_DONE();
}
