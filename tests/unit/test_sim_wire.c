/* Unit tests of the messages between hb-sim's workers and their parent (publisher-sim/wire.c)
 * and of merging truths (truth.c): framing across partial reads, and the union of workers'
 * truths equal to one truth that saw everything. */
#include "truth.h"
#include "wire.h"

#include "testing.h"
#include "truth_testing.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define I 60000LL
#define B 1700000040000LL
#define N_DEVICES 200

static const char *account_ids[] = {"a", "b", "c"};
static char device_text[N_DEVICES][16];
static const char *device_ids[N_DEVICES];
static size_t device_account[N_DEVICES];

static struct truth *make(int64_t first_ms, size_t n_intervals)
{
    for (size_t d = 0; d < N_DEVICES; d++) {
        snprintf(device_text[d], sizeof(device_text[d]), "%s-%03zu", account_ids[d % 3], d);
        device_ids[d] = device_text[d];
        device_account[d] = d % 3;
    }
    struct truth_ids ids = {3, account_ids, N_DEVICES, device_ids, device_account};
    return truth_create(&ids, first_ms, I, n_intervals);
}

static void test_reports_arrive_whole_and_in_order(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    struct wire_report r1, r2;
    memset(&r1, 0, sizeof(r1));
    memset(&r2, 0, sizeof(r2));
    r1.stats.connected = 7;
    r2.stats.published = 99;
    r2.final = true;
    CHECK(wire_send(p[1], WIRE_REPORT, &r1, sizeof(r1)));
    CHECK(wire_send(p[1], WIRE_REPORT, &r2, sizeof(r2)));
    struct wire_reader rd = {0};
    CHECK_INT(wire_reader_fill(&rd, p[0]), 1);
    uint32_t type;
    const void *data;
    size_t len;
    CHECK(wire_reader_next(&rd, &type, &data, &len));
    CHECK_INT(type, WIRE_REPORT);
    CHECK_INT(len, sizeof(struct wire_report));
    CHECK_INT(((const struct wire_report *)data)->stats.connected, 7);
    CHECK(wire_reader_next(&rd, &type, &data, &len));
    CHECK_INT(((const struct wire_report *)data)->stats.published, 99);
    CHECK(((const struct wire_report *)data)->final);
    CHECK(!wire_reader_next(&rd, &type, &data, &len));
    close(p[1]);
    CHECK_INT(wire_reader_fill(&rd, p[0]), 0); /* end of file */
    CHECK_INT(wire_reader_pending(&rd), 0);
    close(p[0]);
    wire_reader_finish(&rd);
}

static void test_a_message_split_across_reads_is_reassembled(void)
{
    int p[2];
    CHECK(pipe(p) == 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    /* Write a framed message by hand in three pieces. */
    struct wire_report r;
    memset(&r, 0, sizeof(r));
    r.stats.devices = 123;
    int w = p[1];
    int up[2];
    CHECK(pipe(up) == 0);
    CHECK(wire_send(up[1], WIRE_REPORT, &r, sizeof(r)));
    unsigned char frame[1024];
    ssize_t n = read(up[0], frame, sizeof(frame));
    CHECK(n == (ssize_t)(16 + sizeof(r)));
    close(up[0]);
    close(up[1]);

    struct wire_reader rd = {0};
    uint32_t type;
    const void *data;
    size_t len;
    CHECK(write(w, frame, 5) == 5); /* part of the header */
    CHECK_INT(wire_reader_fill(&rd, p[0]), 1);
    CHECK(!wire_reader_next(&rd, &type, &data, &len));
    CHECK(write(w, frame + 5, 30) == 30); /* the header and part of the body */
    CHECK_INT(wire_reader_fill(&rd, p[0]), 1);
    CHECK(!wire_reader_next(&rd, &type, &data, &len));
    CHECK_INT(wire_reader_pending(&rd), 35);
    CHECK(write(w, frame + 35, (size_t)n - 35) == n - 35);
    CHECK_INT(wire_reader_fill(&rd, p[0]), 1);
    CHECK(wire_reader_next(&rd, &type, &data, &len));
    CHECK_INT(((const struct wire_report *)data)->stats.devices, 123);
    close(p[1]);
    close(p[0]);
    wire_reader_finish(&rd);
}

/* Devices [first, first + n) of a worker record heartbeats into their own truth. */
static void record_slice(struct truth *t, struct truth *all, size_t first, size_t n)
{
    for (size_t d = first; d < first + n; d++) {
        if (d % 5 == 1)
            continue; /* silent devices */
        int64_t when = B + (int64_t)(d % 2) * I + 1000;
        truth_record(t, d, when);
        truth_record(all, d, when);
        if (d % 7 == 0) {
            truth_record(t, d, B + 2 * I + 5);
            truth_record(all, d, B + 2 * I + 5);
        }
    }
}

static void test_merged_worker_truths_equal_one_truth(void)
{
    /* Slices that do not align with 64-bit words: the parent ORs whole words. */
    const size_t cuts[] = {0, 37, 101, 130, N_DEVICES};
    struct truth *all = make(B, 3);
    struct truth *merged = make(B, 3);
    char tmpl[] = "/tmp/test_sim_wire.XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    unlink(tmpl);
    for (size_t w = 0; w + 1 < sizeof(cuts) / sizeof(cuts[0]); w++) {
        struct truth *t = make(B, 3);
        record_slice(t, all, cuts[w], cuts[w + 1] - cuts[w]);
        CHECK(wire_send_truth(fd, t, cuts[w], cuts[w + 1] - cuts[w]));
        truth_destroy(t);
    }
    lseek(fd, 0, SEEK_SET);
    struct wire_reader rd = {0};
    CHECK_INT(wire_reader_fill(&rd, fd), 0); /* a regular file ends */
    uint32_t type;
    const void *data;
    size_t len;
    int messages = 0;
    char err[256];
    while (wire_reader_next(&rd, &type, &data, &len)) {
        CHECK_INT(type, WIRE_TRUTH);
        CHECK(wire_merge_truth(merged, data, len, err, sizeof(err)));
        messages++;
    }
    CHECK_INT(messages, 4);
    char *a = truth_to_string(all, 3), *b = truth_to_string(merged, 3);
    CHECK(a != NULL && b != NULL && strcmp(a, b) == 0);
    CHECK_INT(truth_count(merged, 3), truth_count(all, 3));
    CHECK(truth_count(all, 3) > 150);
    free(a);
    free(b);
    wire_reader_finish(&rd);
    close(fd);
    truth_destroy(all);
    truth_destroy(merged);
}

static void test_a_truth_of_another_run_is_refused(void)
{
    struct truth *t = make(B, 2);
    struct truth *other = make(B + I, 2);
    struct truth *longer = make(B, 3);
    int p[2];
    CHECK(pipe(p) == 0);
    CHECK(wire_send_truth(p[1], other, 0, N_DEVICES));
    CHECK(wire_send_truth(p[1], longer, 0, N_DEVICES));
    struct wire_reader rd = {0};
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    wire_reader_fill(&rd, p[0]);
    uint32_t type;
    const void *data;
    size_t len;
    char err[256];
    CHECK(wire_reader_next(&rd, &type, &data, &len));
    CHECK(!wire_merge_truth(t, data, len, err, sizeof(err)));
    CHECK(strstr(err, "does not match") != NULL);
    CHECK(wire_reader_next(&rd, &type, &data, &len));
    CHECK(!wire_merge_truth(t, data, len, err, sizeof(err)));
    CHECK(!wire_merge_truth(t, data, 10, err, sizeof(err)));
    CHECK(strstr(err, "too short") != NULL);
    uint64_t word = 1;
    CHECK(!truth_merge(t, 2, 0, &word, 1));                 /* no third interval */
    CHECK(!truth_merge(t, 0, truth_words(t), &word, 1));    /* past the bitmap */
    CHECK(truth_merge(t, 1, truth_words(t) - 1, &word, 1)); /* the last word */
    close(p[0]);
    close(p[1]);
    wire_reader_finish(&rd);
    truth_destroy(t);
    truth_destroy(other);
    truth_destroy(longer);
}

int main(void)
{
    RUN(test_reports_arrive_whole_and_in_order);
    RUN(test_a_message_split_across_reads_is_reassembled);
    RUN(test_merged_worker_truths_equal_one_truth);
    RUN(test_a_truth_of_another_run_is_refused);
    return TESTING_DONE();
}
