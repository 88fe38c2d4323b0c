/* Unit tests of Redis URI parsing (common/redis.c, hb_redis_uri_parse only; no server): every
 * accepted form, and malformed URIs refused with a reason and without touching the output. */
#include "redis.h"

#include "testing.h"

struct parsed {
    bool ok;
    struct hb_redis_addr addr;
    char err[256];
};

static struct parsed parse(const char *uri)
{
    struct parsed p;
    memset(&p.addr, 0x5a, sizeof(p.addr));
    p.err[0] = '\0';
    p.ok = hb_redis_uri_parse(uri, &p.addr, p.err, sizeof(p.err));
    return p;
}

/* A malformed uri: false, a reason, and the output left as it was. */
static void check_refused(const char *uri)
{
    struct hb_redis_addr untouched;
    memset(&untouched, 0x5a, sizeof(untouched));
    struct parsed p = parse(uri);
    if (p.ok)
        fprintf(stderr, "  accepted: %s\n", uri);
    CHECK(!p.ok);
    CHECK(p.err[0] != '\0');
    CHECK(memcmp(&p.addr, &untouched, sizeof(untouched)) == 0);
}

static void test_redis_uri_host_only_defaults_port_and_db(void)
{
    struct parsed p = parse("redis://cache.local");
    CHECK(p.ok);
    CHECK_STR(p.addr.host, "cache.local");
    CHECK_INT(p.addr.port, 6379);
    CHECK_INT(p.addr.db, 0);
    CHECK_STR(p.addr.path, "");
    CHECK_STR(p.addr.user, "");
    CHECK_STR(p.addr.password, "");
}

static void test_redis_uri_host_and_port(void)
{
    struct parsed p = parse("redis://127.0.0.1:6380");
    CHECK(p.ok);
    CHECK_STR(p.addr.host, "127.0.0.1");
    CHECK_INT(p.addr.port, 6380);
    CHECK_INT(p.addr.db, 0);
    p = parse("redis://h:1");
    CHECK(p.ok);
    CHECK_INT(p.addr.port, 1);
    p = parse("redis://h:65535");
    CHECK(p.ok);
    CHECK_INT(p.addr.port, 65535);
}

static void test_redis_uri_password_only(void)
{
    struct parsed p = parse("redis://secret@h:1");
    CHECK(p.ok);
    CHECK_STR(p.addr.user, "");
    CHECK_STR(p.addr.password, "secret");
    CHECK_STR(p.addr.host, "h");
    CHECK_INT(p.addr.port, 1);

    p = parse("redis://:secret@h");
    CHECK(p.ok);
    CHECK_STR(p.addr.user, "");
    CHECK_STR(p.addr.password, "secret");
    CHECK_STR(p.addr.host, "h");
    CHECK_INT(p.addr.port, 6379);
}

static void test_redis_uri_user_and_password(void)
{
    struct parsed p = parse("redis://alice:s3cr:et@db.example:6390");
    CHECK(p.ok);
    CHECK_STR(p.addr.user, "alice");
    CHECK_STR(p.addr.password, "s3cr:et");
    CHECK_STR(p.addr.host, "db.example");
    CHECK_INT(p.addr.port, 6390);
}

static void test_redis_uri_password_may_contain_at_sign(void)
{
    struct parsed p = parse("redis://u:p@ss@h:7");
    CHECK(p.ok);
    CHECK_STR(p.addr.user, "u");
    CHECK_STR(p.addr.password, "p@ss");
    CHECK_STR(p.addr.host, "h");
    CHECK_INT(p.addr.port, 7);
}

static void test_redis_uri_database(void)
{
    struct parsed p = parse("redis://h/3");
    CHECK(p.ok);
    CHECK_STR(p.addr.host, "h");
    CHECK_INT(p.addr.port, 6379);
    CHECK_INT(p.addr.db, 3);

    p = parse("redis://u:pw@h:6000/15");
    CHECK(p.ok);
    CHECK_STR(p.addr.user, "u");
    CHECK_STR(p.addr.password, "pw");
    CHECK_STR(p.addr.host, "h");
    CHECK_INT(p.addr.port, 6000);
    CHECK_INT(p.addr.db, 15);

    p = parse("redis://h:6000/");
    CHECK(p.ok);
    CHECK_INT(p.addr.port, 6000);
    CHECK_INT(p.addr.db, 0);
}

static void test_redis_uri_unix_socket(void)
{
    struct parsed p = parse("unix:///run/redis/redis.sock");
    CHECK(p.ok);
    CHECK_STR(p.addr.path, "/run/redis/redis.sock");
    CHECK_STR(p.addr.host, "");
    CHECK_INT(p.addr.db, 0);
    CHECK_STR(p.addr.password, "");
}

static void test_redis_uri_unix_socket_with_db(void)
{
    struct parsed p = parse("unix:///tmp/r.sock?db=4");
    CHECK(p.ok);
    CHECK_STR(p.addr.path, "/tmp/r.sock");
    CHECK_INT(p.addr.db, 4);
}

static void test_redis_uri_longest_parts_fit(void)
{
    char uri[600];
    char host[256], path[108], pass[256];
    memset(host, 'h', 255);
    host[255] = '\0';
    memset(path, 'p', 107);
    path[0] = '/';
    path[107] = '\0';
    memset(pass, 's', 255);
    pass[255] = '\0';

    snprintf(uri, sizeof(uri), "redis://%s@%s:1", pass, host);
    struct parsed p = parse(uri);
    CHECK(p.ok);
    CHECK_STR(p.addr.host, host);
    CHECK_STR(p.addr.password, pass);

    snprintf(uri, sizeof(uri), "unix://%s", path);
    p = parse(uri);
    CHECK(p.ok);
    CHECK_STR(p.addr.path, path);
}

static void test_redis_uri_too_long_parts_are_refused(void)
{
    char uri[700];
    char s[300];
    memset(s, 'x', 256);
    s[256] = '\0';
    snprintf(uri, sizeof(uri), "redis://%s:1", s);
    check_refused(uri);
    snprintf(uri, sizeof(uri), "redis://%s@h:1", s);
    check_refused(uri);
    s[128] = '\0';
    snprintf(uri, sizeof(uri), "redis://%s:pw@h:1", s);
    check_refused(uri);
    memset(s, 'p', 108);
    s[0] = '/';
    s[108] = '\0';
    snprintf(uri, sizeof(uri), "unix://%s", s);
    check_refused(uri);
}

static void test_redis_uri_without_scheme_is_refused(void)
{
    check_refused("localhost:6379");
    check_refused("127.0.0.1");
    check_refused("http://h:6379");
    check_refused("rediss://h:6379");
    check_refused("");
}

static void test_redis_uri_bad_port_is_refused(void)
{
    check_refused("redis://h:0");
    check_refused("redis://h:65536");
    check_refused("redis://h:abc");
    check_refused("redis://h:");
    check_refused("redis://h:-1");
    check_refused("redis://h:63 79");
    check_refused("redis://h:99999999999");
}

static void test_redis_uri_blank_in_port_or_db_is_refused(void)
{
    check_refused("redis://h: 6379");
    check_refused("redis://h:6379/ 2");
    check_refused("unix:///tmp/r.sock?db= 2");
}

static void test_redis_uri_empty_host_is_refused(void)
{
    check_refused("redis://");
    check_refused("redis://:6379");
    check_refused("redis:///0");
    check_refused("redis://pw@");
    check_refused("redis://u:pw@:6379");
}

static void test_redis_uri_bad_database_is_refused(void)
{
    check_refused("redis://h/abc");
    check_refused("redis://h/-1");
    check_refused("redis://h/1x");
    check_refused("redis://h:6379/2/3");
}

static void test_redis_uri_bad_unix_forms_are_refused(void)
{
    check_refused("unix://");
    check_refused("unix://relative.sock");
    check_refused("unix:///tmp/r.sock?database=1");
    check_refused("unix:///tmp/r.sock?db=x");
    check_refused("unix:///tmp/r.sock?db=");
    check_refused("unix://?db=1");
}

int main(void)
{
    RUN(test_redis_uri_host_only_defaults_port_and_db);
    RUN(test_redis_uri_host_and_port);
    RUN(test_redis_uri_password_only);
    RUN(test_redis_uri_user_and_password);
    RUN(test_redis_uri_password_may_contain_at_sign);
    RUN(test_redis_uri_database);
    RUN(test_redis_uri_unix_socket);
    RUN(test_redis_uri_unix_socket_with_db);
    RUN(test_redis_uri_longest_parts_fit);
    RUN(test_redis_uri_too_long_parts_are_refused);
    RUN(test_redis_uri_without_scheme_is_refused);
    RUN(test_redis_uri_bad_port_is_refused);
    RUN(test_redis_uri_blank_in_port_or_db_is_refused);
    RUN(test_redis_uri_empty_host_is_refused);
    RUN(test_redis_uri_bad_database_is_refused);
    RUN(test_redis_uri_bad_unix_forms_are_refused);
    return TESTING_DONE();
}
