/* Unit tests of the consumer's counters and their one-line form (consumer/stats.c): each
 * key=value field, the per-reason counts, batch sizes and latency percentiles. */
#include "stats.h"

#include "testing.h"

/* The value of " name=" in line, up to the next space, or "(missing)". */
static const char *field(const char *line, const char *name)
{
    static char value[64];
    char pat[64];
    snprintf(pat, sizeof(pat), " %s=", name);
    const char *p = strstr(line, pat);
    if (p == NULL)
        return "(missing)";
    p += strlen(pat);
    size_t n = strcspn(p, " ");
    if (n >= sizeof(value))
        n = sizeof(value) - 1;
    memcpy(value, p, n);
    value[n] = '\0';
    return value;
}

static void test_stats_empty_line_has_every_field_at_zero(void)
{
    struct stats s;
    stats_init(&s);
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK(strncmp(line, "stats received=0 ", 17) == 0);
    const char *zero[] = {"received",     "accepted", "written",   "rejected",
                          "bad_topic",    "bad_id",   "oversize",  "not_json",
                          "not_object",   "retained", "dropped",   "expired",
                          "redis_errors", "batches",  "batch_max", "queued"};
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
        const char *v = field(line, zero[i]);
        if (strcmp(v, "0") != 0)
            fprintf(stderr, "  field %s\n", zero[i]);
        CHECK_STR(v, "0");
    }
    CHECK_STR(field(line, "batch_avg"), "0.0");
    CHECK_STR(field(line, "latency_p50_ms"), "-1");
    CHECK_STR(field(line, "latency_p99_ms"), "-1");
    CHECK(strstr(line, " ok=") == NULL);
}

static void test_stats_counters_appear_exactly(void)
{
    struct stats s;
    stats_init(&s);
    atomic_store(&s.received, 1234);
    atomic_store(&s.accepted, 1200);
    atomic_store(&s.written, 1150);
    atomic_store(&s.dropped, 30);
    atomic_store(&s.expired, 20);
    atomic_store(&s.redis_errors, 2);
    char line[1024];
    stats_format(&s, 17, line, sizeof(line));
    CHECK_STR(field(line, "received"), "1234");
    CHECK_STR(field(line, "accepted"), "1200");
    CHECK_STR(field(line, "written"), "1150");
    CHECK_STR(field(line, "dropped"), "30");
    CHECK_STR(field(line, "expired"), "20");
    CHECK_STR(field(line, "redis_errors"), "2");
    CHECK_STR(field(line, "queued"), "17");
}

static void test_stats_each_reason_name_with_its_count(void)
{
    struct stats s;
    stats_init(&s);
    for (int r = HB_REJECT_BAD_TOPIC; r < HB_REJECT_COUNT; r++) {
        for (int i = 0; i < r; i++)
            stats_reject(&s, (enum hb_reject)r);
    }
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "bad_topic"), "1");
    CHECK_STR(field(line, "bad_id"), "2");
    CHECK_STR(field(line, "oversize"), "3");
    CHECK_STR(field(line, "not_json"), "4");
    CHECK_STR(field(line, "not_object"), "5");
    CHECK_STR(field(line, "retained"), "6");
    CHECK_STR(field(line, "rejected"), "21");
}

static void test_stats_reject_ignores_ok_and_out_of_range(void)
{
    struct stats s;
    stats_init(&s);
    stats_reject(&s, HB_OK);
    stats_reject(&s, HB_REJECT_COUNT);
    stats_reject(&s, (enum hb_reject) - 1);
    stats_reject(&s, HB_REJECT_NOT_JSON);
    CHECK_INT(atomic_load(&s.rejected[HB_OK]), 0);
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "rejected"), "1");
    CHECK_STR(field(line, "not_json"), "1");
}

static void test_stats_batch_max_and_average(void)
{
    struct stats s;
    stats_init(&s);
    stats_batch(&s, 10);
    stats_batch(&s, 3);
    stats_batch(&s, 25);
    stats_batch(&s, 7);
    atomic_store(&s.written, 46);
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "batches"), "4");
    CHECK_STR(field(line, "batch_max"), "25");
    CHECK_STR(field(line, "batch_avg"), "11.5");
}

static void test_stats_latency_percentiles_of_known_samples(void)
{
    /* 60 samples at 10 ms, 38 at 20 ms, 2 at 500 ms: the 50th and 99th of 100 in order. */
    struct stats s;
    stats_init(&s);
    for (int i = 0; i < 60; i++)
        stats_latency(&s, 10);
    for (int i = 0; i < 38; i++)
        stats_latency(&s, 20);
    stats_latency(&s, 500);
    stats_latency(&s, 500);
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "latency_p50_ms"), "10");
    CHECK_STR(field(line, "latency_p99_ms"), "500");
}

static void test_stats_latency_single_sample_is_both_percentiles(void)
{
    struct stats s;
    stats_init(&s);
    stats_latency(&s, 42);
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "latency_p50_ms"), "42");
    CHECK_STR(field(line, "latency_p99_ms"), "42");
}

static void test_stats_latency_is_clamped_to_histogram(void)
{
    struct stats s;
    stats_init(&s);
    stats_latency(&s, -50);
    CHECK_INT(atomic_load(&s.latency_ms[0]), 1);
    stats_latency(&s, 1000);
    CHECK_INT(atomic_load(&s.latency_ms[1000]), 1);
    stats_latency(&s, 1001);
    stats_latency(&s, 86400000);
    CHECK_INT(atomic_load(&s.latency_ms[STATS_LATENCY_BUCKETS - 1]), 2);

    stats_init(&s);
    stats_latency(&s, 5000);
    char line[1024];
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "latency_p50_ms"), "1001");
    stats_init(&s);
    stats_latency(&s, -5);
    stats_format(&s, 0, line, sizeof(line));
    CHECK_STR(field(line, "latency_p99_ms"), "0");
}

static void test_stats_format_truncates_into_small_buffer(void)
{
    struct stats s;
    stats_init(&s);
    atomic_store(&s.received, 5);
    char full[1024];
    stats_format(&s, 3, full, sizeof(full));
    size_t sizes[] = {1, 10, 40, 60, 80, 200};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char buf[256];
        memset(buf, 'X', sizeof(buf));
        stats_format(&s, 3, buf, sizes[i]);
        size_t want = strlen(full) < sizes[i] - 1 ? strlen(full) : sizes[i] - 1;
        CHECK_INT(strlen(buf), want);
        CHECK(strncmp(buf, full, want) == 0);
        CHECK(buf[sizes[i]] == 'X');
    }
}

int main(void)
{
    RUN(test_stats_empty_line_has_every_field_at_zero);
    RUN(test_stats_counters_appear_exactly);
    RUN(test_stats_each_reason_name_with_its_count);
    RUN(test_stats_reject_ignores_ok_and_out_of_range);
    RUN(test_stats_batch_max_and_average);
    RUN(test_stats_latency_percentiles_of_known_samples);
    RUN(test_stats_latency_single_sample_is_both_percentiles);
    RUN(test_stats_latency_is_clamped_to_histogram);
    RUN(test_stats_format_truncates_into_small_buffer);
    return TESTING_DONE();
}
