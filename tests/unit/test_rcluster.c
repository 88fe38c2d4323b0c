/* Unit tests of the cluster client's pure parts (common/rcluster_slot.c, the redis-cluster://
 * URI in common/redis.c) and of what rcluster does without a server. Slot vectors were read
 * from redis-server 7.0 (CLUSTER KEYSLOT), not computed by the code under test. */
#include "rcluster.h"
#include "redis.h"

#include "testing.h"

#include <stdlib.h>

static int slot_of(const char *key)
{
    return rcluster_key_slot(key, strlen(key));
}

static void test_rcluster_crc16_known_vector(void)
{
    CHECK_INT(rcluster_crc16("123456789", 9), 0x31C3);
    CHECK_INT(rcluster_crc16("", 0), 0);
}

static void test_rcluster_key_slot_matches_redis(void)
{
    CHECK_INT(slot_of("123456789"), 12739);
    CHECK_INT(slot_of("foo"), 12182);
    CHECK_INT(slot_of("bar"), 5061);
    CHECK_INT(slot_of("hello"), 866);
    CHECK_INT(slot_of(""), 0);
    CHECK_INT(slot_of("{user1000}.following"), 3443);
    CHECK_INT(slot_of("hb:{acme}:1700000000000"), 11304);
    /* the key format's tag is what decides: every interval of an account shares the slot */
    CHECK_INT(slot_of("hb:{acme}:1"), slot_of("acme"));
}

static void test_rcluster_key_slot_hash_tag_edges(void)
{
    CHECK_INT(slot_of("{}"), 15257); /* empty tag: the whole key */
    CHECK_INT(slot_of("{"), 4092);   /* no closing brace: the whole key */
    CHECK_INT(slot_of("a{b"), 13340);
    CHECK_INT(slot_of("foo{}{bar}"), 8363); /* the first tag is empty: whole key, not "bar" */
    CHECK_INT(slot_of("foo{{bar}}"), 4015); /* tag "{bar" */
    CHECK_INT(slot_of("foo{{bar}}"), slot_of("{bar"));
    CHECK_INT(slot_of("foo{bar}{zap}"), 5061); /* the first tag only */
    CHECK_INT(slot_of("}{x}"), 16287);
    CHECK_INT(slot_of("{a}"), 15495);
    /* binary-safe: a NUL inside the tag is hashed like any byte */
    CHECK(rcluster_key_slot("{a\0b}", 5) != rcluster_key_slot("{a}", 3));
}

static struct hb_redis_addr parse_ok(const char *uri)
{
    struct hb_redis_addr a;
    char err[256] = "";
    bool ok = hb_redis_uri_parse(uri, &a, err, sizeof(err));
    if (!ok)
        fprintf(stderr, "  refused %s: %s\n", uri, err);
    CHECK(ok);
    return a;
}

static void test_rcluster_uri_seed_list(void)
{
    struct hb_redis_addr a = parse_ok("redis-cluster://127.0.0.1:7000,node-b:7001,node-c");
    CHECK(a.cluster);
    CHECK_INT(a.n_seeds, 3);
    CHECK_STR(a.seeds[0].host, "127.0.0.1");
    CHECK_INT(a.seeds[0].port, 7000);
    CHECK_STR(a.seeds[1].host, "node-b");
    CHECK_INT(a.seeds[1].port, 7001);
    CHECK_STR(a.seeds[2].host, "node-c");
    CHECK_INT(a.seeds[2].port, 6379);
    CHECK_STR(a.host, "127.0.0.1");
    CHECK_INT(a.port, 7000);
    CHECK_INT(a.db, 0);
    CHECK_STR(a.password, "");

    a = parse_ok("redis-cluster://app:s3cret@h1:1,h2:2");
    CHECK_STR(a.user, "app");
    CHECK_STR(a.password, "s3cret");
    CHECK_INT(a.n_seeds, 2);
    CHECK_STR(a.seeds[1].host, "h2");
    a = parse_ok("redis-cluster://pw@h1:1");
    CHECK_STR(a.user, "");
    CHECK_STR(a.password, "pw");
    CHECK_INT(a.n_seeds, 1);

    a = parse_ok("redis://h:1");
    CHECK(!a.cluster);
    CHECK_INT(a.n_seeds, 0);
}

static void check_uri_refused(const char *uri, const char *reason_part)
{
    struct hb_redis_addr a;
    memset(&a, 0x5a, sizeof(a));
    char err[256] = "";
    bool ok = hb_redis_uri_parse(uri, &a, err, sizeof(err));
    if (ok || strstr(err, reason_part) == NULL)
        fprintf(stderr, "  %s: ok=%d err=%s\n", uri, ok, err);
    CHECK(!ok);
    CHECK(strstr(err, reason_part) != NULL);
    CHECK(*(unsigned char *)&a == 0x5a);
}

static void test_rcluster_uri_refuses_malformed(void)
{
    check_uri_refused("redis-cluster://", "host");
    check_uri_refused("redis-cluster://h:1,", "host");
    check_uri_refused("redis-cluster://h:1,,h:2", "host");
    check_uri_refused("redis-cluster://h:0", "port");
    check_uri_refused("redis-cluster://h:1,g:65536", "port");
    check_uri_refused("redis-cluster://h:1/2", "database 0");
    check_uri_refused("redis-cluster://h:1?db=2", "database 0");
    char many[512] = "redis-cluster://";
    for (int i = 0; i <= HB_REDIS_SEEDS_MAX; i++)
        strcat(many, i ? ",h:1" : "h:1");
    check_uri_refused(many, "at most 16");
}

static void test_rcluster_single_connect_refuses_cluster_address(void)
{
    struct hb_redis_addr a = parse_ok("redis-cluster://127.0.0.1:1");
    char err[256] = "";
    CHECK(hb_redis_connect(&a, 100, err, sizeof(err)) == NULL);
    CHECK(strstr(err, "cluster client") != NULL);
}

static enum rcluster_redirect_kind redirect(const char *msg, struct rcluster_redirect *r)
{
    memset(r, 0, sizeof(*r));
    return rcluster_redirect_parse(msg, strlen(msg), "10.1.1.1", r);
}

static void test_rcluster_redirect_moved_and_ask(void)
{
    struct rcluster_redirect r;
    CHECK_INT(redirect("MOVED 3999 127.0.0.1:6381", &r), RCLUSTER_MOVED);
    CHECK_INT(r.slot, 3999);
    CHECK_STR(r.to.host, "127.0.0.1");
    CHECK_INT(r.to.port, 6381);
    CHECK_INT(redirect("ASK 16383 node-b:7001", &r), RCLUSTER_ASK);
    CHECK_INT(r.slot, 16383);
    CHECK_STR(r.to.host, "node-b");
    CHECK_INT(r.to.port, 7001);
    /* a node that does not know its own address: the host we asked */
    CHECK_INT(redirect("MOVED 0 :7002", &r), RCLUSTER_MOVED);
    CHECK_STR(r.to.host, "10.1.1.1");
    CHECK_INT(r.to.port, 7002);
    /* IPv6: the port follows the last colon */
    CHECK_INT(redirect("ASK 5 ::1:7003", &r), RCLUSTER_ASK);
    CHECK_STR(r.to.host, "::1");
    CHECK_INT(r.to.port, 7003);
}

static void test_rcluster_redirect_refuses_malformed(void)
{
    static const char *const bad[] = {
        "MOVED",        "MOVED ",
        "MOVED 3999",   "MOVED 3999 ",
        "MOVED x h:1",  "MOVED 16384 h:1",
        "MOVED -1 h:1", "MOVED 1 h",
        "MOVED 1 h:0",  "MOVED 1 h:65536",
        "MOVED 1 h:",   "ASK 1 h:1x",
        "ERR unknown",  "NOSCRIPT No matching script",
        "moved 1 h:1",  "ASKING",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rcluster_redirect r;
        enum rcluster_redirect_kind k = redirect(bad[i], &r);
        if (k != RCLUSTER_NO_REDIRECT)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_INT(k, RCLUSTER_NO_REDIRECT);
    }
}

/* A reply as hiredis builds it from the wire. */
static redisReply *reply_of(const char *resp)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    CHECK(rd != NULL);
    CHECK_INT(redisReaderFeed(rd, resp, strlen(resp)), REDIS_OK);
    CHECK_INT(redisReaderGetReply(rd, &r), REDIS_OK);
    CHECK(r != NULL);
    redisReaderFree(rd);
    return r;
}

static void test_rcluster_slots_reply_parsed(void)
{
    /* [[0, 5460, ["127.0.0.1", 7000, "id1"], ["127.0.0.1", 7003, "id4"]],
     *  [5461, 16383, ["", 7001, "id2"]]] */
    redisReply *r = reply_of("*2\r\n"
                             "*4\r\n:0\r\n:5460\r\n"
                             "*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$3\r\nid1\r\n"
                             "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$3\r\nid4\r\n"
                             "*3\r\n:5461\r\n:16383\r\n"
                             "*3\r\n$0\r\n\r\n:7001\r\n$3\r\nid2\r\n");
    size_t n = 0;
    char err[256] = "";
    struct rcluster_range *ranges = rcluster_slots_parse(r, "seed.local", &n, err, sizeof(err));
    CHECK(ranges != NULL);
    CHECK_INT(n, 2);
    if (ranges != NULL && n == 2) {
        CHECK_INT(ranges[0].start, 0);
        CHECK_INT(ranges[0].end, 5460);
        CHECK_STR(ranges[0].master.host, "127.0.0.1");
        CHECK_INT(ranges[0].master.port, 7000);
        CHECK_INT(ranges[1].start, 5461);
        CHECK_INT(ranges[1].end, 16383);
        CHECK_STR(ranges[1].master.host, "seed.local");
        CHECK_INT(ranges[1].master.port, 7001);
    }
    free(ranges);
    freeReplyObject(r);
}

static void check_slots_refused(const char *resp, const char *reason_part)
{
    redisReply *r = reply_of(resp);
    size_t n = 99;
    char err[256] = "";
    struct rcluster_range *ranges = rcluster_slots_parse(r, "h", &n, err, sizeof(err));
    CHECK(ranges == NULL);
    CHECK_INT(n, 99);
    if (strstr(err, reason_part) == NULL)
        fprintf(stderr, "  reason: %s\n", err);
    CHECK(strstr(err, reason_part) != NULL);
    free(ranges);
    freeReplyObject(r);
}

static void test_rcluster_slots_reply_refuses_malformed(void)
{
    check_slots_refused("-ERR This instance has cluster support disabled\r\n", "not an array");
    check_slots_refused("*1\r\n*3\r\n:10\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n", "entry 0");
    check_slots_refused("*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:1\r\n", "entry 0");
    check_slots_refused("*1\r\n*3\r\n:-1\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n", "entry 0");
    check_slots_refused("*1\r\n*2\r\n:0\r\n:5\r\n", "entry 0");
    check_slots_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n$4\r\n7000\r\n", "entry 0");
    check_slots_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:0\r\n", "entry 0");
    check_slots_refused("*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\n?\r\n:1\r\n", "entry 0");
    check_slots_refused("*2\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:1\r\n:7\r\n", "entry 1");
}

/* A script's name is the SHA-1 of its text, known without a node (Redis names it the same). */
static void test_rcluster_script_add_names_it_without_a_node(void)
{
    struct hb_redis_addr a = parse_ok("redis-cluster://127.0.0.1:1");
    char err[256] = "";
    struct rcluster *c = rcluster_create(&a, 100, err, sizeof(err));
    CHECK(c != NULL);
    char sha[41] = "";
    CHECK(rcluster_script_add(c, "return 1", sha, err, sizeof(err)));
    CHECK_STR(sha, "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    rcluster_destroy(c);
    rcluster_destroy(NULL);
}

/* Nothing listens on port 1 of the loopback: every command stays undelivered, with a reason,
 * and a retry later is possible on the same queue. */
static void test_rcluster_unreachable_leaves_commands_undelivered(void)
{
    const char *uris[] = {"redis://127.0.0.1:1", "redis-cluster://127.0.0.1:1,127.0.0.1:2"};
    for (size_t u = 0; u < 2; u++) {
        struct hb_redis_addr a = parse_ok(uris[u]);
        char err[256] = "";
        struct rcluster *c = rcluster_create(&a, 200, err, sizeof(err));
        CHECK(c != NULL);
        if (c == NULL)
            continue;
        const char *argv[] = {"HLEN", "hb:{a}:1"};
        size_t argvlen[] = {4, 8};
        CHECK_INT(rcluster_append(c, "hb:{a}:1", 8, 2, argv, argvlen), 0);
        CHECK_INT(rcluster_append(c, "hb:{b}:1", 8, 2, argv, argvlen), 1);
        CHECK_INT(rcluster_count(c), 2);
        CHECK_INT(rcluster_exec(c, err, sizeof(err)), -1);
        CHECK(strstr(err, "2 of 2 commands not delivered") != NULL);
        CHECK(strstr(err, "127.0.0.1:") != NULL);
        CHECK(rcluster_reply(c, 0) == NULL);
        CHECK(rcluster_reply(c, 1) == NULL);
        CHECK(rcluster_reply(c, 2) == NULL);
        CHECK_INT(rcluster_refresh(c, err, sizeof(err)), -1);
        struct rcluster_stats st;
        rcluster_stats_get(c, &st);
        CHECK_INT(st.undelivered, 2);
        CHECK_INT(st.round_trips, 0);
        CHECK(st.conn_errors > 0);
        rcluster_reset(c);
        CHECK_INT(rcluster_count(c), 0);
        rcluster_destroy(c);
    }
}

int main(void)
{
    RUN(test_rcluster_crc16_known_vector);
    RUN(test_rcluster_key_slot_matches_redis);
    RUN(test_rcluster_key_slot_hash_tag_edges);
    RUN(test_rcluster_uri_seed_list);
    RUN(test_rcluster_uri_refuses_malformed);
    RUN(test_rcluster_single_connect_refuses_cluster_address);
    RUN(test_rcluster_redirect_moved_and_ask);
    RUN(test_rcluster_redirect_refuses_malformed);
    RUN(test_rcluster_slots_reply_parsed);
    RUN(test_rcluster_slots_reply_refuses_malformed);
    RUN(test_rcluster_script_add_names_it_without_a_node);
    RUN(test_rcluster_unreachable_leaves_commands_undelivered);
    return TESTING_DONE();
}
