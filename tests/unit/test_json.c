/* Tests of the allocation-free JSON validator: the grammar's edges one by one, then a
 * differential run against cJSON over many mutations of real payloads: whatever the validator
 * accepts, cJSON must accept with the same top-level type. */
#include "json.h"
#include "testing.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static enum hb_json_kind check(const char *text)
{
    int64_t ts;
    return hb_json_check(text, strlen(text), &ts);
}

static void test_json_valid_documents_are_accepted(void)
{
    const char *objects[] = {
        "{}",
        " {} ",
        "{\"a\":1}",
        "{\"a\":[1,2,{\"b\":null}],\"c\":true,\"d\":false}",
        "{\"s\":\"esc \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9\"}",
        "{\"n\":-0.5e+10}",
        "{\"n\":0}",
        "{\"n\":1E3}",
        "{\"u\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
        "\t\r\n{\"a\" : 1 , \"b\" : [ ] }\n",
    };
    for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++)
        CHECK_INT(check(objects[i]), HB_JSON_OBJECT);
    const char *others[] = {"[]", "[1,2]", "0", "-1.5", "\"x\"", "true", "false", "null"};
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        CHECK_INT(check(others[i]), HB_JSON_OTHER);
}

static void test_json_invalid_documents_are_refused(void)
{
    const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\":1,}",
        "{,}",
        "[1,]",
        "[1 2]",
        "{\"a\":1}}",
        "{\"a\":1} x",
        "{'a':1}",
        "{a:1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":+1}",
        "{\"a\":0x10}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":1e}",
        "{\"a\":-}",
        "{\"a\":tru}",
        "{\"a\":nulls}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12G4\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":\"raw\ttab\"}",
        "{\"a\":\"\xc3\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xf5\x80\x80\x80\"}",
        "{\"a\":\"\xff\"}",
        "\xef\xbb\xbf{}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (check(bad[i]) != HB_JSON_INVALID)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_INT(check(bad[i]), HB_JSON_INVALID);
    }
    /* An embedded NUL inside the range is not JSON either. */
    int64_t ts;
    CHECK_INT(hb_json_check("{\"a\":\"x\0y\"}", 11, &ts), HB_JSON_INVALID);
    CHECK_INT(hb_json_check("{\"a\":1}\0", 8, &ts), HB_JSON_INVALID);
}

static void test_json_depth_is_bounded(void)
{
    char deep[200];
    int n = HB_JSON_DEPTH_MAX;
    memset(deep, '[', (size_t)n);
    memset(deep + n, ']', (size_t)n);
    deep[2 * n] = '\0';
    CHECK_INT(check(deep), HB_JSON_OTHER);
    memset(deep, '[', (size_t)n + 1);
    memset(deep + n + 1, ']', (size_t)n + 1);
    deep[2 * n + 2] = '\0';
    CHECK_INT(check(deep), HB_JSON_INVALID);
}

static void test_json_ts_is_read_from_the_top_level_only(void)
{
    int64_t ts;
    const char *t1 = "{\"a\":{\"ts\":5},\"ts\":1795290976123.9,\"ts\":7}";
    CHECK_INT(hb_json_check(t1, strlen(t1), &ts), HB_JSON_OBJECT);
    CHECK_INT(ts, 1795290976123);
    const char *cases[][2] = {
        {"{\"ts\":\"1795290976123\"}", "-1"},
        {"{\"ts\":-5}", "-1"},
        {"{\"ts\":0}", "-1"},
        {"{\"ts\":1e15}", "-1"},
        {"{\"ts\":1e3}", "1000"},
        {"{\"ts\":null}", "-1"},
        {"{\"t\\u0073\":5}", "-1"},
        {"{}", "-1"},
        {"{\"ts\":5", "-1"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        hb_json_check(cases[i][0], strlen(cases[i][0]), &ts);
        CHECK_INT(ts, atoll(cases[i][1]));
    }
}

/* cJSON's verdict: 0 invalid, 1 object, 2 other; trailing bytes other than whitespace make it
 * invalid, as the consumer requires. */
static int cjson_kind(const char *text, size_t len)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (root == NULL)
        return 0;
    while (end < text + len && strchr(" \t\r\n", *end) != NULL && *end != '\0')
        end++;
    int kind = end != text + len ? 0 : cJSON_IsObject(root) ? 1 : 2;
    cJSON_Delete(root);
    return kind;
}

static void test_json_agrees_with_cjson_on_mutated_payloads(void)
{
    const char *seeds[] = {
        "{\"ts\":1795290976123,\"mediaId\":\"m-1234\",\"bitrate\":4500,\"playTime\":123.4,"
        "\"agent\":{\"os\":\"Android\",\"browser\":\"ExoPlayer\",\"device\":\"Pixel 7\"}}",
        "[1,-2.5e3,true,false,null,\"s\\n\",{\"k\":[]}]",
        "{\"a\":\"\\u00e9\",\"b\":[{},[]]}",
    };
    const char alphabet[] = "{}[]\":,.-+eE0123456789 \\/tfnulrsa\x01\x80\xc3\xa9";
    srand(12345);
    long accepted = 0, stricter = 0;
    for (int round = 0; round < 200000; round++) {
        const char *seed = seeds[round % 3];
        char buf[256];
        size_t len = strlen(seed);
        memcpy(buf, seed, len);
        int edits = 1 + rand() % 3;
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)rand() % len;
            switch (rand() % 3) {
            case 0: /* replace */
                buf[at] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
                break;
            case 1: /* delete */
                memmove(buf + at, buf + at + 1, len - at - 1);
                len--;
                break;
            default: /* truncate */
                len = at + 1;
            }
            if (len == 0)
                break;
        }
        int64_t ts;
        int ours = (int)hb_json_check(buf, len, &ts);
        int theirs = cjson_kind(buf, len);
        if (ours != HB_JSON_INVALID) {
            accepted++;
            if (ours != theirs) {
                fprintf(stderr, "  disagree (ours %d, cJSON %d): %.*s\n", ours, theirs, (int)len,
                        buf);
                CHECK(ours == theirs);
            }
        } else if (theirs != 0) {
            stricter++; /* e.g. leading zeros, raw control bytes, bad UTF-8 that cJSON lets by */
        }
    }
    fprintf(stderr, "  %ld mutations accepted by both, %ld refused only by the validator\n",
            accepted, stricter);
    CHECK(accepted > 1000);
}

int main(void)
{
    RUN(test_json_valid_documents_are_accepted);
    RUN(test_json_invalid_documents_are_refused);
    RUN(test_json_depth_is_bounded);
    RUN(test_json_ts_is_read_from_the_top_level_only);
    RUN(test_json_agrees_with_cjson_on_mutated_payloads);
    return TESTING_DONE();
}
