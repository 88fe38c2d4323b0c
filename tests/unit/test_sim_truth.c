/* Unit tests of hb-sim's truth (publisher-sim/truth.c): which heartbeats count, the order of
 * lines and of devices, and how many intervals are written. */
#include "truth.h"

#include "testing.h"
#include "truth_testing.h"

#include <stdio.h>
#include <stdlib.h>

#define I 60000LL
#define B 1700000040000LL

/* Accounts and devices deliberately out of order. */
static const char *accounts[] = {"b", "a"};
static const char *devices[] = {"b-2", "a-9", "b-1", "a-10"};
static const size_t device_account[] = {0, 1, 0, 1};

static struct truth *make(size_t n_intervals)
{
    struct truth_ids ids = {2, accounts, 4, devices, device_account};
    return truth_create(&ids, B, I, n_intervals);
}

static void test_truth_record_outside_tracked_intervals_is_ignored(void)
{
    struct truth *t = make(2);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK(!truth_record(t, 0, B - 1));
    CHECK(!truth_record(t, 0, B + 2 * I));
    CHECK(!truth_record(t, 4, B)); /* no such device */
    CHECK(truth_record(t, 0, B));
    CHECK(truth_record(t, 0, B + 2 * I - 1));
    CHECK_INT(truth_count(t, 2), 2);
    truth_destroy(t);
}

static void test_truth_lines_sorted_by_interval_then_account_devices_sorted(void)
{
    struct truth *t = make(2);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    truth_record(t, 0, B + 10);     /* b-2 in the first */
    truth_record(t, 2, B + 20);     /* b-1 in the first */
    truth_record(t, 2, B + 30);     /* again: still once */
    truth_record(t, 3, B + I + 5);  /* a-10 in the second */
    truth_record(t, 1, B + I + 50); /* a-9 in the second */
    char *out = truth_to_string(t, 2);
    CHECK(out != NULL);
    if (out != NULL)
        CHECK_STR(out, "{\"interval_start\":1700000040000,\"account\":\"a\",\"devices\":[]}\n"
                       "{\"interval_start\":1700000040000,\"account\":\"b\",\"devices\":"
                       "[\"b-1\",\"b-2\"]}\n"
                       "{\"interval_start\":1700000100000,\"account\":\"a\",\"devices\":"
                       "[\"a-10\",\"a-9\"]}\n"
                       "{\"interval_start\":1700000100000,\"account\":\"b\",\"devices\":[]}\n");
    free(out);
    CHECK_INT(truth_count(t, 2), 4);
    truth_destroy(t);
}

static void test_truth_write_fewer_intervals_writes_only_those(void)
{
    struct truth *t = make(3);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    truth_record(t, 0, B + 2 * I);
    char *out = truth_to_string(t, 1);
    CHECK(out != NULL);
    if (out != NULL)
        CHECK_STR(out, "{\"interval_start\":1700000040000,\"account\":\"a\",\"devices\":[]}\n"
                       "{\"interval_start\":1700000040000,\"account\":\"b\",\"devices\":[]}\n");
    free(out);
    CHECK_INT(truth_count(t, 1), 0);
    CHECK_INT(truth_count(t, 3), 1);
    truth_destroy(t);
}

static void test_truth_zero_intervals_writes_nothing(void)
{
    struct truth *t = make(0);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    CHECK(!truth_record(t, 0, B));
    char *out = truth_to_string(t, 5);
    CHECK(out != NULL);
    if (out != NULL)
        CHECK_STR(out, "");
    free(out);
    truth_destroy(t);
}

static void test_truth_device_with_unknown_account_is_refused(void)
{
    const size_t bad_account[] = {0, 1, 0, 2};
    struct truth_ids ids = {2, accounts, 4, devices, bad_account};
    CHECK(truth_create(&ids, B, I, 1) == NULL);
}

static void test_truth_many_devices_cross_word_boundaries(void)
{
    enum { N = 200 };
    static char names[N][16];
    const char *ids_dev[N];
    size_t acc[N];
    const char *acc_names[] = {"x"};
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof(names[i]), "x-%03d", i);
        ids_dev[i] = names[i];
        acc[i] = 0;
    }
    struct truth_ids ids = {1, acc_names, N, ids_dev, acc};
    struct truth *t = truth_create(&ids, B, I, 2);
    CHECK(t != NULL);
    if (t == NULL)
        return;
    for (int i = 0; i < N; i += 3)
        truth_record(t, (size_t)i, B + I + i);
    CHECK_INT(truth_count(t, 1), 0);
    CHECK_INT(truth_count(t, 2), (N + 2) / 3);
    truth_destroy(t);
}

int main(void)
{
    RUN(test_truth_record_outside_tracked_intervals_is_ignored);
    RUN(test_truth_lines_sorted_by_interval_then_account_devices_sorted);
    RUN(test_truth_write_fewer_intervals_writes_only_those);
    RUN(test_truth_zero_intervals_writes_nothing);
    RUN(test_truth_device_with_unknown_account_is_refused);
    RUN(test_truth_many_devices_cross_word_boundaries);
    return TESTING_DONE();
}
