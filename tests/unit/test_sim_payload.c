/* Unit tests of hb-sim's payload templates (publisher-sim/payload.c): placeholders, the
 * built-in realistic payload, and the checks that keep a template acceptable to the consumer. */
#include "heartbeat.h"
#include "payload.h"

#include "testing.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const struct payload_values values = {
    .ts_ms = 1700000040123LL,
    .device = "acct0001-dev02",
    .account = "acct0001",
    .bitrate = 4500,
    .media = 42,
    .play_ms = 123456,
    .os = "Android",
    .browser = "ExoPlayer",
    .model = "Pixel 7",
    .seq = 7,
};

static bool compile(struct payload_template *t, const char *text)
{
    char err[256];
    return payload_compile(t, text, strlen(text), err, sizeof(err));
}

static void test_default_template_is_the_realistic_payload(void)
{
    struct payload_template t;
    CHECK(compile(&t, payload_default_template));
    char buf[PAYLOAD_MAX];
    int n = payload_render(&t, &values, buf, sizeof(buf));
    CHECK_STR(buf, "{\"ts\":1700000040123,\"seq\":7,\"mediaId\":\"m-0042\",\"bitrate\":4500,"
                   "\"playTime\":123.4,\"agent\":{\"os\":\"Android\",\"browser\":\"ExoPlayer\","
                   "\"device\":\"Pixel 7\"}}");
    CHECK_INT(n, (int)strlen(buf));
    struct hb_payload read;
    CHECK_INT(hb_payload_read(buf, (size_t)n, HB_PAYLOAD_MAX_DEFAULT, &read), HB_OK);
    CHECK_INT(read.sent_ms, values.ts_ms);
    CHECK_INT(read.seq, 7);
    CHECK_STR(read.agent.device, "Pixel 7");
    size_t longest = 0;
    char err[256];
    CHECK(payload_check(&t, &longest, err, sizeof(err)));
    CHECK(longest > (size_t)n && longest < 256);
    payload_finish(&t);
}

static void test_every_placeholder_is_substituted(void)
{
    struct payload_template t;
    CHECK(compile(&t, "{{device}}|{{account}}|{{bitrate}}|{{media}}|{{play_time}}|{{os}}|"
                      "{{browser}}|{{model}}|{{seq}}|{{ts}}"));
    char buf[256];
    payload_render(&t, &values, buf, sizeof(buf));
    CHECK_STR(buf, "acct0001-dev02|acct0001|4500|m-0042|123.4|Android|ExoPlayer|Pixel 7|7|"
                   "1700000040123");
    payload_finish(&t);
}

static void test_text_without_placeholders_and_single_braces_stays(void)
{
    struct payload_template t;
    CHECK(compile(&t, "{\"a\":{\"b\":1}}"));
    char buf[64];
    CHECK_INT(payload_render(&t, &values, buf, sizeof(buf)), 13);
    CHECK_STR(buf, "{\"a\":{\"b\":1}}");
    payload_finish(&t);
    CHECK(compile(&t, ""));
    CHECK_INT(payload_render(&t, &values, buf, sizeof(buf)), 0);
    CHECK_STR(buf, "");
    payload_finish(&t);
}

static void test_unknown_or_unclosed_placeholder_is_rejected(void)
{
    struct payload_template t;
    char err[256];
    const char *bad = "{\"x\":{{nope}}}";
    CHECK(!payload_compile(&t, bad, strlen(bad), err, sizeof(err)));
    CHECK(strstr(err, "unknown placeholder '{{nope}}'") != NULL);
    CHECK(t.parts == NULL && t.text == NULL);
    const char *open = "{\"x\":{{ts}";
    CHECK(!payload_compile(&t, open, strlen(open), err, sizeof(err)));
    const char *empty = "{{}}";
    CHECK(!payload_compile(&t, empty, strlen(empty), err, sizeof(err)));
    payload_finish(&t); /* safe after a failure */
}

static void test_render_refuses_a_small_buffer(void)
{
    struct payload_template t;
    CHECK(compile(&t, payload_default_template));
    char buf[40];
    CHECK_INT(payload_render(&t, &values, buf, sizeof(buf)), -1);
    CHECK_INT(payload_render(&t, &values, buf, 0), -1);
    payload_finish(&t);
}

static void test_check_rejects_what_the_consumer_would(void)
{
    struct payload_template t;
    size_t longest;
    char err[256];
    CHECK(compile(&t, "[{{ts}}]"));
    CHECK(!payload_check(&t, &longest, err, sizeof(err)));
    CHECK(strstr(err, "not_object") != NULL);
    payload_finish(&t);
    CHECK(compile(&t, "{\"device\":{{device}}}")); /* an id unquoted is no JSON */
    CHECK(!payload_check(&t, &longest, err, sizeof(err)));
    CHECK(strstr(err, "not_json") != NULL);
    payload_finish(&t);
    CHECK(compile(&t, "{\"sent\":{{ts}}}")); /* the consumer reads "ts" */
    CHECK(!payload_check(&t, &longest, err, sizeof(err)));
    CHECK(strstr(err, "top-level \"ts\"") != NULL);
    payload_finish(&t);
    CHECK(compile(&t, "{\"d\":\"{{device}}\"}")); /* no {{ts}} at all is fine */
    CHECK(payload_check(&t, &longest, err, sizeof(err)));
    CHECK_INT(longest, 8 + 64);
    payload_finish(&t);
}

static char *write_file(const char *text)
{
    char *path = strdup("/tmp/test_sim_payload.XXXXXX");
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void test_load_strips_trailing_newlines_and_checks(void)
{
    char *path = write_file("{\"ts\":{{ts}},\"who\":\"{{device}}\"}\n\n");
    struct payload_template t;
    size_t longest = 0;
    char err[256];
    CHECK(payload_load(&t, path, &longest, err, sizeof(err)));
    char buf[256];
    CHECK_INT(payload_render(&t, &values, buf, sizeof(buf)),
              (int)strlen("{\"ts\":1700000040123,\"who\":\"acct0001-dev02\"}"));
    payload_finish(&t);
    unlink(path);
    free(path);

    path = write_file("{\"ts\":{{tss}}}");
    CHECK(!payload_load(&t, path, &longest, err, sizeof(err)));
    CHECK(strstr(err, path) != NULL && strstr(err, "{{tss}}") != NULL);
    unlink(path);
    CHECK(!payload_load(&t, path, &longest, err, sizeof(err))); /* gone */
    CHECK(strstr(err, "No such file") != NULL);
    free(path);
}

int main(void)
{
    RUN(test_default_template_is_the_realistic_payload);
    RUN(test_every_placeholder_is_substituted);
    RUN(test_text_without_placeholders_and_single_braces_stays);
    RUN(test_unknown_or_unclosed_placeholder_is_rejected);
    RUN(test_render_refuses_a_small_buffer);
    RUN(test_check_rejects_what_the_consumer_would);
    RUN(test_load_strips_trailing_newlines_and_checks);
    return TESTING_DONE();
}
