/* Unit tests of hb-sim's progress (publisher-sim/progress.c): summing the workers' counters and
 * the two forms of the progress line. */
#include "progress.h"

#include "testing.h"

#include <string.h>

static void test_counts_add_up_and_times_combine(void)
{
    struct sim_stats parts[3];
    memset(parts, 0, sizeof(parts));
    for (int i = 0; i < 3; i++) {
        parts[i].devices = 10;
        parts[i].connected = (size_t)i + 1;
        parts[i].connected_max = 5;
        parts[i].published = 100;
        parts[i].connect_failed = 1;
        parts[i].refused = 2;
        parts[i].errors = 3;
        parts[i].start_ms = 1000 + i;
        parts[i].end_ms = 9000 - i;
        parts[i].all_connected_ms = 2000 + 10 * i;
    }
    parts[1].interrupted = true;
    struct sim_stats t;
    progress_sum(&t, parts, 3);
    CHECK_INT(t.devices, 30);
    CHECK_INT(t.connected, 6);
    CHECK_INT(t.connected_max, 15);
    CHECK_INT(t.published, 300);
    CHECK_INT(t.connect_failed, 3);
    CHECK_INT(t.refused, 6);
    CHECK_INT(t.errors, 9);
    CHECK_INT(t.start_ms, 1000);
    CHECK_INT(t.end_ms, 8998);
    CHECK_INT(t.all_connected_ms, 2020);
    CHECK(t.interrupted);
}

static void test_all_connected_waits_for_every_worker(void)
{
    struct sim_stats parts[2];
    memset(parts, 0, sizeof(parts));
    parts[0].all_connected_ms = 5000;
    struct sim_stats t;
    progress_sum(&t, parts, 2);
    CHECK_INT(t.all_connected_ms, 0);
    progress_sum(&t, parts, 0);
    CHECK_INT(t.all_connected_ms, 0);
    CHECK_INT(t.devices, 0);
}

static void test_lines_for_a_terminal_and_for_a_log(void)
{
    struct progress_view v = {
        .elapsed_s = 42.25,
        .devices = 200000,
        .connected = 183402,
        .connecting = 1200,
        .failed = 3,
        .errors = 4,
        .lost = 0,
        .hb_per_s = 39870.4,
    };
    char buf[256];
    progress_format(buf, sizeof(buf), &v, true);
    CHECK_STR(buf, "hb-sim    42.2s  connected 183402/200000  connecting 1200  failed 3  "
                   "hb/s 39870  errors 4  lost 0");
    CHECK(strlen(buf) < 100);
    progress_format(buf, sizeof(buf), &v, false);
    CHECK_STR(buf, "hb-sim: 42.2s connected=183402/200000 connecting=1200 failed=3 "
                   "hb_per_s=39870 errors=4 lost=0");
}

int main(void)
{
    RUN(test_counts_add_up_and_times_combine);
    RUN(test_all_connected_waits_for_every_worker);
    RUN(test_lines_for_a_terminal_and_for_a_log);
    return TESTING_DONE();
}
