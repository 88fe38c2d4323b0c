/* Unit tests of heartbeat validation (common/heartbeat.c): topic shapes, ids, payload size and
 * JSON, the "ts" field, and the stable reason names. Topics and payloads are copied into heap
 * buffers of their exact length, so the sanitizer build catches any read past the end. */
#include "heartbeat.h"

#include "testing.h"

#include <stdlib.h>

/* Parses topic[0..len) from an exact-size heap copy. */
static enum hb_reject topic_n(const char *prefix, const char *topic, size_t len,
                              struct hb_heartbeat *out)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, topic, len);
    enum hb_reject r = hb_topic_parse(prefix, copy, len, out);
    free(copy);
    return r;
}

static enum hb_reject topic(const char *prefix, const char *t, struct hb_heartbeat *out)
{
    return topic_n(prefix, t, strlen(t), out);
}

/* Reads payload[0..len) from an exact-size heap copy into *out, which starts as garbage. */
static enum hb_reject read_n(const char *payload, size_t len, size_t max_len,
                             struct hb_payload *out)
{
    char *copy = malloc(len ? len : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, payload, len);
    memset(out, 0x5a, sizeof(*out)); /* every member must be written */
    enum hb_reject r = hb_payload_read(copy, len, max_len, out);
    free(copy);
    return r;
}

/* Checks payload[0..len) and returns its "ts" in *sent_ms. */
static enum hb_reject payload_n(const char *payload, size_t len, size_t max_len, int64_t *sent_ms)
{
    struct hb_payload p;
    enum hb_reject r = read_n(payload, len, max_len, &p);
    *sent_ms = p.sent_ms;
    return r;
}

static enum hb_reject payload(const char *p, int64_t *sent_ms)
{
    return payload_n(p, strlen(p), HB_PAYLOAD_MAX_DEFAULT, sent_ms);
}

/* A JSON object of exactly len bytes (len >= 10): {"p":"xxx"} */
static char *object_of_len(size_t len)
{
    char *s = malloc(len + 1);
    if (s == NULL)
        abort();
    memcpy(s, "{\"p\":\"", 6);
    memset(s + 6, 'x', len - 8);
    memcpy(s + len - 2, "\"}", 2);
    s[len] = '\0';
    return s;
}

/* --- topic --- */

static void test_topic_valid_fills_account_and_device(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "hb/acct-1/dev.01", &hb), HB_OK);
    CHECK_STR(hb.account, "acct-1");
    CHECK_STR(hb.device, "dev.01");
}

static void test_topic_multi_level_prefix_is_accepted(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("a/b", "a/b/acct/dev", &hb), HB_OK);
    CHECK_STR(hb.account, "acct");
    CHECK_STR(hb.device, "dev");
    CHECK_INT(topic("a/b", "a/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("a/b", "a/b/acct", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("a/b", "a/c/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("a/b", "a/b/acct/dev/x", &hb), HB_REJECT_BAD_TOPIC);
}

static void test_topic_only_topic_len_bytes_are_read(void)
{
    struct hb_heartbeat hb;
    const char *t = "hb/acct/dev/extra";
    CHECK_INT(topic_n("hb", t, 11, &hb), HB_OK);
    CHECK_STR(hb.account, "acct");
    CHECK_STR(hb.device, "dev");
}

static void test_topic_wrong_prefix_is_bad_topic(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "xx/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("hb", "hbx/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("hb", "HB/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("hb", "h/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("hb", "/hb/acct/dev", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("heartbeat", "hb", &hb), HB_REJECT_BAD_TOPIC);
}

static void test_topic_missing_device_level_is_bad_topic(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "hb/acct", &hb), HB_REJECT_BAD_TOPIC);
}

static void test_topic_extra_level_is_bad_topic(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "hb/acct/dev/extra", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("hb", "hb/acct/dev/", &hb), HB_REJECT_BAD_TOPIC);
}

static void test_topic_prefix_only_is_bad_topic(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "hb/", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("hb", "", &hb), HB_REJECT_BAD_TOPIC);
}

static void test_topic_prefix_without_slash_is_bad_topic(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "hb", &hb), HB_REJECT_BAD_TOPIC);
    CHECK_INT(topic("a/b", "a/b", &hb), HB_REJECT_BAD_TOPIC);
}

static void test_topic_empty_account_or_device_is_bad_id(void)
{
    struct hb_heartbeat hb;
    CHECK_INT(topic("hb", "hb//dev", &hb), HB_REJECT_BAD_ID);
    CHECK_INT(topic("hb", "hb/acct/", &hb), HB_REJECT_BAD_ID);
}

static void test_topic_64_byte_ids_ok_65_bytes_bad_id(void)
{
    struct hb_heartbeat hb;
    char id64[65], id65[66], t[200];
    memset(id64, 'a', 64);
    id64[64] = '\0';
    memset(id65, 'b', 65);
    id65[65] = '\0';

    snprintf(t, sizeof(t), "hb/%s/%s", id64, id64);
    CHECK_INT(topic("hb", t, &hb), HB_OK);
    CHECK_STR(hb.account, id64);
    CHECK_STR(hb.device, id64);

    snprintf(t, sizeof(t), "hb/%s/dev", id65);
    CHECK_INT(topic("hb", t, &hb), HB_REJECT_BAD_ID);
    snprintf(t, sizeof(t), "hb/acct/%s", id65);
    CHECK_INT(topic("hb", t, &hb), HB_REJECT_BAD_ID);
}

static void test_topic_forbidden_bytes_in_ids_are_bad_id(void)
{
    struct hb_heartbeat hb;
    const char *bad[] = {
        "hb/a{b/dev",         "hb/a}b/dev",
        "hb/acct/d{x}",       "hb/+/dev",
        "hb/acct/+",          "hb/#/dev",
        "hb/acct/#",          "hb/a b/dev",
        "hb/acct/d v",        "hb/a\tb/dev",
        "hb/acct/d\x01",      "hb/acct/d\x7f",
        "hb/caf\xc3\xa9/dev", "hb/acct/\xe2\x82\xac",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int r = topic("hb", bad[i], &hb);
        if (r != HB_REJECT_BAD_ID)
            fprintf(stderr, "  topic #%zu\n", i);
        CHECK_INT(r, HB_REJECT_BAD_ID);
    }
}

static void test_topic_nul_byte_inside_id_is_bad_id(void)
{
    struct hb_heartbeat hb;
    const char acct_nul[] = "hb/ac\0ct/dev";
    const char dev_nul[] = "hb/acct/de\0v";
    CHECK_INT(topic_n("hb", acct_nul, sizeof(acct_nul) - 1, &hb), HB_REJECT_BAD_ID);
    CHECK_INT(topic_n("hb", dev_nul, sizeof(dev_nul) - 1, &hb), HB_REJECT_BAD_ID);
}

/* --- payload --- */

static struct hb_payload members_of(const char *text)
{
    struct hb_payload m;
    read_n(text, strlen(text), HB_PAYLOAD_MAX_DEFAULT, &m);
    return m;
}

static int64_t seq_of(const char *text)
{
    return members_of(text).seq;
}

static void test_payload_seq_is_the_top_level_whole_number(void)
{
    CHECK_INT(seq_of("{\"ts\":1,\"seq\":42}"), 42);
    CHECK_INT(seq_of("{ \"seq\" : 0 }"), 0);
    CHECK_INT(seq_of("{\"a\":{\"seq\":5},\"seq\":6}"), 6);
    CHECK_INT(seq_of("{\"k\":\"\\\"seq\\\"\",\"seq\":9}"), 9);
    CHECK_INT(seq_of("{\"x\":\"seq\",\"y\":3}"), -1);
    CHECK_INT(seq_of("{\"seq\":-1}"), -1);
    CHECK_INT(seq_of("{\"seq\":1.5}"), -1);
    CHECK_INT(seq_of("{\"seq\":1e3}"), -1);
    CHECK_INT(seq_of("{\"seq\":\"7\"}"), -1);
    CHECK_INT(seq_of("{\"seq\":99999999999999999999}"), -1);
    CHECK_INT(seq_of(""), -1);
    CHECK_INT(seq_of("{}"), -1);
}

static void test_payload_members_state_and_started_are_top_level(void)
{
    struct hb_payload m = members_of("{\"seq\":3,\"state\":\"stopped\",\"started\":1700000000123}");
    CHECK_INT(m.seq, 3);
    CHECK(m.stopped);
    CHECK_INT(m.started_ms, 1700000000123);
    m = members_of("{\"state\" : \"playing\"}");
    CHECK(!m.stopped);
    CHECK_INT(m.started_ms, -1);
    CHECK_INT(m.seq, -1);
    m = members_of("{\"a\":{\"state\":\"stopped\",\"started\":5}}");
    CHECK(!m.stopped);
    CHECK_INT(m.started_ms, -1);
    m = members_of("{\"x\":\"state\",\"y\":\"stopped\"}");
    CHECK(!m.stopped);
    m = members_of("{\"state\":\"stoppedX\",\"started\":\"5\"}");
    CHECK(!m.stopped);
    CHECK_INT(m.started_ms, -1);
    m = members_of("{\"started\":-5,\"state\":\"stopped\"}");
    CHECK(m.stopped);
    CHECK_INT(m.started_ms, -1);
    m = members_of("");
    CHECK(!m.stopped);
}

static void test_payload_media_is_an_id_without_escapes(void)
{
    CHECK_STR(members_of("{\"mediaId\":\"m-0042\"}").media, "m-0042");
    CHECK_STR(members_of("{\"mediaId\":\"m\\u0041\"}").media, "");
    CHECK_STR(members_of("{\"mediaId\":\"a b\"}").media, "");
    CHECK_STR(members_of("{\"mediaId\":\"\"}").media, "");
    CHECK_STR(members_of("{\"mediaId\":\"ok\",\"mediaId\":\"n o\"}").media, "");
    CHECK_STR(members_of("{\"mediaId\":\"n o\",\"mediaId\":\"ok\"}").media, "ok");
    /* A later value that is not a string leaves the earlier one. */
    CHECK_STR(members_of("{\"mediaId\":\"ok\",\"mediaId\":7}").media, "ok");
    CHECK_STR(members_of("{\"x\":{\"mediaId\":\"nested\"}}").media, "");
}

static void test_payload_agent_members_are_read_in_the_same_pass(void)
{
    struct hb_payload m =
        members_of("{\"ts\":1700000040123,\"seq\":7,\"mediaId\":\"m-0042\",\"bitrate\":4500,"
                   "\"playTime\":123.4,\"agent\":{\"os\":\"Android\",\"browser\":\"ExoPlayer\","
                   "\"device\":\"Pixel 7\"}}");
    CHECK_INT(m.sent_ms, 1700000040123);
    CHECK_INT(m.seq, 7);
    CHECK_STR(m.media, "m-0042");
    CHECK_INT(m.agent.bitrate, 4500);
    CHECK_INT(m.agent.play_ms, 123400);
    CHECK_STR(m.agent.os, "Android");
    CHECK_STR(m.agent.browser, "ExoPlayer");
    CHECK_STR(m.agent.device, "Pixel 7");
}

static void test_payload_agent_absent_or_unusable_is_unknown(void)
{
    struct hb_payload m = members_of("{}");
    CHECK_INT(m.agent.bitrate, -1);
    CHECK_INT(m.agent.play_ms, -1);
    CHECK_STR(m.agent.os, "unknown");
    CHECK_STR(m.agent.browser, "unknown");
    CHECK_STR(m.agent.device, "unknown");
    m = members_of("{\"bitrate\":-1,\"playTime\":\"5\",\"agent\":\"Android\"}");
    CHECK_INT(m.agent.bitrate, -1);
    CHECK_INT(m.agent.play_ms, -1);
    CHECK_STR(m.agent.os, "unknown");
    m = members_of("{\"bitrate\":9007199254740992,\"playTime\":1e300,\"agent\":{\"os\":7,"
                   "\"browser\":\"\",\"device\":null}}");
    CHECK_INT(m.agent.bitrate, -1);
    CHECK_INT(m.agent.play_ms, -1);
    CHECK_STR(m.agent.os, "unknown");
    CHECK_STR(m.agent.browser, "unknown");
    CHECK_STR(m.agent.device, "unknown");
    /* Fractions are cut; -0 is 0. */
    m = members_of("{\"bitrate\":4500.9,\"playTime\":-0}");
    CHECK_INT(m.agent.bitrate, 4500);
    CHECK_INT(m.agent.play_ms, 0);
    /* Names of other objects, or deeper, are not the agent's. */
    m = members_of("{\"x\":{\"os\":\"Linux\"},\"agent\":{\"inner\":{\"os\":\"Deep\"}}}");
    CHECK_STR(m.agent.os, "unknown");
    /* Everything is absent when the whole payload is not an object, even after valid members. */
    m = members_of("{\"bitrate\":1,\"agent\":{\"os\":\"Linux\"},\"seq\":3,}");
    CHECK_INT(m.agent.bitrate, -1);
    CHECK_STR(m.agent.os, "unknown");
    CHECK_INT(m.seq, -1);
}

static void test_payload_agent_first_member_wins(void)
{
    struct hb_payload m = members_of("{\"bitrate\":\"x\",\"bitrate\":5,\"playTime\":2,"
                                     "\"playTime\":3,\"agent\":{\"os\":\"A\",\"os\":\"B\"},"
                                     "\"agent\":{\"os\":\"C\",\"browser\":\"D\"}}");
    CHECK_INT(m.agent.bitrate, -1);
    CHECK_INT(m.agent.play_ms, 2000);
    CHECK_STR(m.agent.os, "A");
    CHECK_STR(m.agent.browser, "unknown");
    m = members_of("{\"agent\":1,\"agent\":{\"os\":\"C\"}}");
    CHECK_STR(m.agent.os, "unknown");
}

static void test_payload_agent_names_are_safe_and_cut(void)
{
    struct hb_payload m = members_of("{\"agent\":{\"os\":\"a:b{c}\\\"d\",\"browser\":"
                                     "\"caf\xc3\xa9 \\u00e9\\/x\",\"device\":"
                                     "\"0123456789012345678901234567890123456789\"}}");
    CHECK_STR(m.agent.os, "a_b_c__d");
    CHECK_STR(m.agent.browser, "caf__ __x");
    CHECK_STR(m.agent.device, "01234567890123456789012345678901");
    CHECK_INT(strlen(m.agent.device), HB_AGENT_NAME_MAX);
}

static void test_payload_empty_is_ok_without_ts(void)
{
    int64_t ts;
    struct hb_payload p;
    memset(&p, 0x5a, sizeof(p));
    CHECK_INT(hb_payload_read(NULL, 0, HB_PAYLOAD_MAX_DEFAULT, &p), HB_OK);
    CHECK_INT(p.sent_ms, -1);
    CHECK_INT(p.seq, -1);
    CHECK_STR(p.agent.os, "unknown");
    CHECK_INT(payload_n("", 0, 0, &ts), HB_OK);
    CHECK_INT(ts, -1);
}

static void test_payload_empty_object_is_ok(void)
{
    int64_t ts;
    CHECK_INT(payload("{}", &ts), HB_OK);
    CHECK_INT(ts, -1);
}

static void test_payload_exactly_max_len_is_ok_one_more_is_oversize(void)
{
    int64_t ts;
    char *s = object_of_len(100);
    CHECK_INT(strlen(s), 100);
    CHECK_INT(payload_n(s, 100, 100, &ts), HB_OK);
    CHECK_INT(payload_n(s, 100, 99, &ts), HB_REJECT_OVERSIZE);
    CHECK_INT(ts, -1);
    free(s);

    s = object_of_len(HB_PAYLOAD_MAX_DEFAULT + 1);
    CHECK_INT(payload(s, &ts), HB_REJECT_OVERSIZE);
    free(s);
    s = object_of_len(HB_PAYLOAD_MAX_DEFAULT);
    CHECK_INT(payload(s, &ts), HB_OK);
    free(s);
}

static void test_payload_oversize_is_checked_before_json(void)
{
    int64_t ts;
    CHECK_INT(payload_n("garbage", 7, 6, &ts), HB_REJECT_OVERSIZE);
    CHECK_INT(payload_n("{}", 2, 0, &ts), HB_REJECT_OVERSIZE);
}

static void test_payload_garbage_is_not_json(void)
{
    int64_t ts;
    CHECK_INT(payload("garbage", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{ts:1}", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload("{'ts':1}", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload(" ", &ts), HB_REJECT_NOT_JSON);
}

static void test_payload_truncated_object_is_not_json(void)
{
    int64_t ts;
    CHECK_INT(payload("{", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload("{\"ts\":1", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload("{\"ts\":17000000", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload("{\"a\":\"b", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(ts, -1);
    /* The full text is a valid object, but only its first 6 bytes are the payload. */
    CHECK_INT(payload_n("{\"ts\":1}", 6, 100, &ts), HB_REJECT_NOT_JSON);
}

static void test_payload_trailing_garbage_after_object_is_not_json(void)
{
    int64_t ts;
    CHECK_INT(payload("{\"ts\":5}x", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{}{}", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload("{} {}", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload("{}]", &ts), HB_REJECT_NOT_JSON);
    CHECK_INT(payload_n("{}\0", 3, 100, &ts), HB_REJECT_NOT_JSON);
}

static void test_payload_surrounding_whitespace_is_fine(void)
{
    int64_t ts;
    CHECK_INT(payload("{\"ts\":5} \n\r\t", &ts), HB_OK);
    CHECK_INT(ts, 5);
    CHECK_INT(payload(" \n{}", &ts), HB_OK);
}

static void test_payload_deep_nesting_is_not_json_without_crash(void)
{
    int64_t ts;
    char s[4001];
    memset(s, '[', 2000);
    memset(s + 2000, ']', 2000);
    s[4000] = '\0';
    CHECK_INT(payload_n(s, 4000, 4000, &ts), HB_REJECT_NOT_JSON);
}

static void test_payload_non_object_json_is_not_object(void)
{
    int64_t ts;
    const char *values[] = {"[]", "[{\"ts\":5}]", "42", "-1.5", "\"str\"", "null", "true", "false"};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        int r = payload(values[i], &ts);
        if (r != HB_REJECT_NOT_OBJECT)
            fprintf(stderr, "  payload %s\n", values[i]);
        CHECK_INT(r, HB_REJECT_NOT_OBJECT);
        CHECK_INT(ts, -1);
    }
}

static void test_payload_numeric_ts_is_extracted(void)
{
    int64_t ts;
    CHECK_INT(payload("{\"ts\":1700000040123}", &ts), HB_OK);
    CHECK_INT(ts, 1700000040123LL);
    CHECK_INT(payload("{\"seq\":3,\"ts\":1,\"extra\":{\"ts\":9}}", &ts), HB_OK);
    CHECK_INT(ts, 1);
    CHECK_INT(payload("{\"ts\":1700000040123.9}", &ts), HB_OK);
    CHECK_INT(ts, 1700000040123LL);
    CHECK_INT(payload("{\"ts\":999999999999999}", &ts), HB_OK);
    CHECK_INT(ts, 999999999999999LL);
}

static void test_payload_absent_ts_is_minus_one(void)
{
    int64_t ts;
    CHECK_INT(payload("{\"seq\":3}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"TS\":1700000040123}", &ts), HB_OK);
    CHECK_INT(ts, -1);
}

static void test_payload_non_number_ts_is_minus_one(void)
{
    int64_t ts;
    CHECK_INT(payload("{\"ts\":\"1700000040123\"}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":null}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":true}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":[1]}", &ts), HB_OK);
    CHECK_INT(ts, -1);
}

static void test_payload_out_of_range_ts_is_minus_one(void)
{
    int64_t ts;
    CHECK_INT(payload("{\"ts\":-5}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":0}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":1e15}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":1e300}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":1e400}", &ts), HB_OK);
    CHECK_INT(ts, -1);
    CHECK_INT(payload("{\"ts\":99999999999999999999999}", &ts), HB_OK);
    CHECK_INT(ts, -1);
}

/* --- names --- */

static void test_reject_name_of_every_reason_is_stable(void)
{
    CHECK_STR(hb_reject_name(HB_OK), "ok");
    CHECK_STR(hb_reject_name(HB_REJECT_BAD_TOPIC), "bad_topic");
    CHECK_STR(hb_reject_name(HB_REJECT_BAD_ID), "bad_id");
    CHECK_STR(hb_reject_name(HB_REJECT_OVERSIZE), "oversize");
    CHECK_STR(hb_reject_name(HB_REJECT_NOT_JSON), "not_json");
    CHECK_STR(hb_reject_name(HB_REJECT_NOT_OBJECT), "not_object");
    CHECK_STR(hb_reject_name(HB_REJECT_RETAINED), "retained");
    CHECK_INT(HB_REJECT_COUNT, 7);
}

static void test_reject_name_out_of_range_is_unknown(void)
{
    CHECK_STR(hb_reject_name(HB_REJECT_COUNT), "unknown");
    CHECK_STR(hb_reject_name((enum hb_reject) - 1), "unknown");
    CHECK_STR(hb_reject_name((enum hb_reject)1000), "unknown");
}

int main(void)
{
    RUN(test_topic_valid_fills_account_and_device);
    RUN(test_topic_multi_level_prefix_is_accepted);
    RUN(test_topic_only_topic_len_bytes_are_read);
    RUN(test_topic_wrong_prefix_is_bad_topic);
    RUN(test_topic_missing_device_level_is_bad_topic);
    RUN(test_topic_extra_level_is_bad_topic);
    RUN(test_topic_prefix_only_is_bad_topic);
    RUN(test_topic_prefix_without_slash_is_bad_topic);
    RUN(test_topic_empty_account_or_device_is_bad_id);
    RUN(test_topic_64_byte_ids_ok_65_bytes_bad_id);
    RUN(test_topic_forbidden_bytes_in_ids_are_bad_id);
    RUN(test_topic_nul_byte_inside_id_is_bad_id);
    RUN(test_payload_empty_is_ok_without_ts);
    RUN(test_payload_empty_object_is_ok);
    RUN(test_payload_exactly_max_len_is_ok_one_more_is_oversize);
    RUN(test_payload_oversize_is_checked_before_json);
    RUN(test_payload_garbage_is_not_json);
    RUN(test_payload_truncated_object_is_not_json);
    RUN(test_payload_trailing_garbage_after_object_is_not_json);
    RUN(test_payload_surrounding_whitespace_is_fine);
    RUN(test_payload_deep_nesting_is_not_json_without_crash);
    RUN(test_payload_non_object_json_is_not_object);
    RUN(test_payload_numeric_ts_is_extracted);
    RUN(test_payload_absent_ts_is_minus_one);
    RUN(test_payload_non_number_ts_is_minus_one);
    RUN(test_payload_out_of_range_ts_is_minus_one);
    RUN(test_payload_seq_is_the_top_level_whole_number);
    RUN(test_payload_members_state_and_started_are_top_level);
    RUN(test_payload_media_is_an_id_without_escapes);
    RUN(test_payload_agent_members_are_read_in_the_same_pass);
    RUN(test_payload_agent_absent_or_unusable_is_unknown);
    RUN(test_payload_agent_first_member_wins);
    RUN(test_payload_agent_names_are_safe_and_cut);
    RUN(test_reject_name_of_every_reason_is_stable);
    RUN(test_reject_name_out_of_range_is_unknown);
    return TESTING_DONE();
}
