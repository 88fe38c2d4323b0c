/* Unit tests of the id alphabet (common/ids.c): every allowed byte, the length bounds, and the
 * bytes an MQTT topic or a Redis hash tag would misread. */
#include "ids.h"

#include "testing.h"

static void test_ids_every_allowed_byte_is_valid(void)
{
    const char *allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-:";
    for (const char *p = allowed; *p; p++)
        CHECK(hb_id_valid(p, 1));
    CHECK(hb_id_valid("acct-1", 6));
    CHECK(hb_id_valid("dev_01.a:b", 10));
}

static void test_ids_every_other_byte_is_invalid(void)
{
    int valid = 0;
    for (int c = 0; c < 256; c++) {
        char s[1] = {(char)c};
        if (hb_id_valid(s, 1))
            valid++;
    }
    /* 26 + 26 + 10 letters and digits, and . _ - : */
    CHECK_INT(valid, 66);
}

static void test_ids_empty_is_invalid(void)
{
    CHECK(!hb_id_valid("", 0));
    CHECK(!hb_id_valid("abc", 0));
}

static void test_ids_64_bytes_valid_65_bytes_invalid(void)
{
    char s[66];
    memset(s, 'a', 65);
    s[65] = '\0';
    CHECK(hb_id_valid(s, 64));
    CHECK(!hb_id_valid(s, 65));
}

static void test_ids_mqtt_and_hash_tag_bytes_are_invalid(void)
{
    CHECK(!hb_id_valid("a+b", 3));
    CHECK(!hb_id_valid("a#b", 3));
    CHECK(!hb_id_valid("a/b", 3));
    CHECK(!hb_id_valid("a{b", 3));
    CHECK(!hb_id_valid("a}b", 3));
    CHECK(!hb_id_valid("a b", 3));
    CHECK(!hb_id_valid("a*b", 3));
}

static void test_ids_control_and_utf8_bytes_are_invalid(void)
{
    CHECK(!hb_id_valid("a\nb", 3));
    CHECK(!hb_id_valid("a\tb", 3));
    CHECK(!hb_id_valid("a\x7f", 2));
    CHECK(!hb_id_valid("caf\xc3\xa9", 5));
    CHECK(!hb_id_valid("\xff", 1));
}

static void test_ids_nul_inside_range_is_invalid(void)
{
    CHECK(!hb_id_valid("ab\0cd", 5));
    CHECK(!hb_id_valid("\0", 1));
}

static void test_ids_only_the_given_range_is_read(void)
{
    /* Not NUL-terminated: the bytes after len do not matter. */
    char s[3] = {'a', 'b', '+'};
    CHECK(hb_id_valid(s, 2));
    CHECK(!hb_id_valid(s, 3));
}

int main(void)
{
    RUN(test_ids_every_allowed_byte_is_valid);
    RUN(test_ids_every_other_byte_is_invalid);
    RUN(test_ids_empty_is_invalid);
    RUN(test_ids_64_bytes_valid_65_bytes_invalid);
    RUN(test_ids_mqtt_and_hash_tag_bytes_are_invalid);
    RUN(test_ids_control_and_utf8_bytes_are_invalid);
    RUN(test_ids_nul_inside_range_is_invalid);
    RUN(test_ids_only_the_given_range_is_read);
    return TESTING_DONE();
}
