/* Unit tests of Redis key formatting (common/key.c): the exact key, and that an invalid account
 * or a short buffer never yields a partial key. */
#include "key.h"

#include "testing.h"

#include <stdint.h>

static void test_key_format_exact_string(void)
{
    char buf[HB_KEY_MAX];
    int n = hb_key_format(buf, sizeof(buf), "acct-1", 1700000040000LL);
    CHECK_STR(buf, "hb:{acct-1}:1700000040000");
    CHECK_INT(n, 25);
}

static void test_key_format_negative_and_zero_starts(void)
{
    char buf[HB_KEY_MAX];
    CHECK_INT(hb_key_format(buf, sizeof(buf), "a", 0), 8);
    CHECK_STR(buf, "hb:{a}:0");
    CHECK_INT(hb_key_format(buf, sizeof(buf), "a", -60000), 13);
    CHECK_STR(buf, "hb:{a}:-60000");
}

static void test_key_format_longest_key_fits_key_max(void)
{
    char account[HB_ID_MAX + 1];
    memset(account, 'z', HB_ID_MAX);
    account[HB_ID_MAX] = '\0';
    char buf[HB_KEY_MAX];
    int n = hb_key_format(buf, sizeof(buf), account, INT64_MIN);
    CHECK_INT(n, 4 + HB_ID_MAX + 2 + 20);
    CHECK_INT(strlen(buf), n);
    CHECK(strncmp(buf, "hb:{zzz", 7) == 0);
    CHECK_STR(buf + 4 + HB_ID_MAX, "}:-9223372036854775808");
}

static void test_key_format_invalid_account_returns_minus_one_and_empty_buffer(void)
{
    const char *bad[] = {"", "a b", "a{b", "a}b", "a/b", "a+b", "a#b", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[HB_KEY_MAX];
        memset(buf, 'X', sizeof(buf));
        CHECK_INT(hb_key_format(buf, sizeof(buf), bad[i], 1700000040000LL), -1);
        CHECK_STR(buf, "");
    }
}

static void test_key_format_65_byte_account_returns_minus_one(void)
{
    char account[101];
    memset(account, 'a', 100);
    account[100] = '\0';
    char buf[HB_KEY_MAX];
    memset(buf, 'X', sizeof(buf));
    CHECK_INT(hb_key_format(buf, sizeof(buf), account, 0), -1);
    CHECK_STR(buf, "");
    account[HB_ID_MAX + 1] = '\0';
    memset(buf, 'X', sizeof(buf));
    CHECK_INT(hb_key_format(buf, sizeof(buf), account, 0), -1);
    CHECK_STR(buf, "");
    account[HB_ID_MAX] = '\0';
    CHECK_INT(hb_key_format(buf, sizeof(buf), account, 0), 4 + HB_ID_MAX + 2 + 1);
}

static void test_key_format_too_small_buffer_returns_minus_one_and_empty_buffer(void)
{
    /* "hb:{acct-1}:1700000040000" is 25 bytes and needs 26 with the NUL. */
    char buf[26];
    memset(buf, 'X', sizeof(buf));
    CHECK_INT(hb_key_format(buf, 25, "acct-1", 1700000040000LL), -1);
    CHECK_STR(buf, "");
    CHECK_INT(hb_key_format(buf, 5, "acct-1", 1700000040000LL), -1);
    CHECK_STR(buf, "");
    CHECK_INT(hb_key_format(buf, 1, "acct-1", 1700000040000LL), -1);
    CHECK_STR(buf, "");
    CHECK_INT(hb_key_format(buf, 26, "acct-1", 1700000040000LL), 25);
    CHECK_STR(buf, "hb:{acct-1}:1700000040000");
}

static void test_key_format_zero_size_writes_nothing(void)
{
    char buf[4] = "abc";
    CHECK_INT(hb_key_format(buf, 0, "acct-1", 1700000040000LL), -1);
    CHECK_STR(buf, "abc");
}

int main(void)
{
    RUN(test_key_format_exact_string);
    RUN(test_key_format_negative_and_zero_starts);
    RUN(test_key_format_longest_key_fits_key_max);
    RUN(test_key_format_invalid_account_returns_minus_one_and_empty_buffer);
    RUN(test_key_format_65_byte_account_returns_minus_one);
    RUN(test_key_format_too_small_buffer_returns_minus_one_and_empty_buffer);
    RUN(test_key_format_zero_size_writes_nothing);
    return TESTING_DONE();
}
