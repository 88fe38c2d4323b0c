/* Unit tests of the broker plugin's acl matching (plugin/acl.c): which topics and filters a
 * token's rules allow to publish, subscribe and read, placeholders, pinned devices and shared
 * subscriptions. Claims are built by hand: no key or signature is involved. */
#include "acl.h"

#include "testing.h"

#include <stdio.h>
#include <string.h>

static struct hb_token_claims claims_with(const char *const *rules, size_t n)
{
    struct hb_token_claims c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < n; i++) {
        /* "allow publish topic" */
        char perm[16], action[16];
        sscanf(rules[i], "%15s %15s %255s", perm, action, c.rules[i].topic);
        c.rules[i].allow = strcmp(perm, "allow") == 0;
        c.rules[i].action = strcmp(action, "publish") == 0     ? HB_ACL_PUBLISH
                            : strcmp(action, "subscribe") == 0 ? HB_ACL_SUBSCRIBE
                                                               : HB_ACL_ALL;
    }
    c.n_rules = n;
    return c;
}

static struct hb_token_claims device_claims(void)
{
    static const char *const r[] = {"allow publish hb/acct/${clientid}", "deny all #"};
    return claims_with(r, 2);
}

static struct hb_token_claims consumer_claims(void)
{
    static const char *const r[] = {"allow subscribe hb/+/+", "allow subscribe $share/+/hb/+/+",
                                    "deny all #"};
    return claims_with(r, 3);
}

static void test_acl_device_publishes_only_to_its_own_topic(void)
{
    struct hb_token_claims c = device_claims();
    CHECK(hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/dev1"));
    CHECK(hb_acl_allows(&c, "dev1", NULL, HB_ACL_PUBLISH, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/dev2"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/other/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "other", HB_ACL_PUBLISH, "hb/other/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/dev1/x"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/+"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/#"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, ""));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_SUBSCRIBE, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_SUBSCRIBE, "hb/#"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_SUBSCRIBE, "#"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_SUBSCRIBE, "$SYS/#"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_READ, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_ALL, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(NULL, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, NULL));
}

static void test_acl_malicious_client_ids_never_match_a_placeholder(void)
{
    struct hb_token_claims c = device_claims();
    static const char *const evil[] = {"+", "#", "a/b", "", "dev 1", "${clientid}", "a+"};
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        char topic[64];
        snprintf(topic, sizeof(topic), "hb/acct/%s", evil[i]);
        CHECK(!hb_acl_allows(&c, evil[i], "acct", HB_ACL_PUBLISH, topic));
        CHECK(!hb_acl_allows(&c, evil[i], "acct", HB_ACL_PUBLISH, "hb/acct/dev1"));
        CHECK(!hb_acl_allows(&c, evil[i], "acct", HB_ACL_SUBSCRIBE, "hb/acct/+"));
        CHECK(!hb_acl_allows(&c, evil[i], "acct", HB_ACL_SUBSCRIBE, topic));
    }
    CHECK(!hb_acl_allows(&c, NULL, "acct", HB_ACL_PUBLISH, "hb/acct/dev1"));
    /* "a/b" would turn hb/acct/${clientid} into hb/acct/a/b. */
    CHECK(!hb_acl_allows(&c, "a/b", "acct", HB_ACL_PUBLISH, "hb/acct/a/b"));
}

static void test_acl_username_placeholder(void)
{
    static const char *const r[] = {"allow publish hb/${username}/${clientid}", "deny all #"};
    struct hb_token_claims c = claims_with(r, 2);
    CHECK(hb_acl_allows(&c, "dev1", "acct", HB_ACL_PUBLISH, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "other", HB_ACL_PUBLISH, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "+", HB_ACL_PUBLISH, "hb/+/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", "#", HB_ACL_PUBLISH, "hb/acct/dev1"));
    CHECK(!hb_acl_allows(&c, "dev1", NULL, HB_ACL_PUBLISH, "hb/acct/dev1"));
}

static void test_acl_pinned_device_denies_other_client_ids(void)
{
    struct hb_token_claims c = device_claims();
    snprintf(c.device, sizeof(c.device), "tv-1");
    CHECK(hb_acl_allows(&c, "tv-1", NULL, HB_ACL_PUBLISH, "hb/acct/tv-1"));
    CHECK(!hb_acl_allows(&c, "tv-2", NULL, HB_ACL_PUBLISH, "hb/acct/tv-2"));
    CHECK(!hb_acl_allows(&c, NULL, NULL, HB_ACL_PUBLISH, "hb/acct/tv-1"));
}

static void test_acl_consumer_subscriptions_are_subsets(void)
{
    struct hb_token_claims c = consumer_claims();
    const char *id = "consumer-1";
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/+/+"));
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/acct/+"));
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/+/dev"));
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/acct/dev"));
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "$share/hb-consumers/hb/+/+"));
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "$share/g/hb/acct/+"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/#"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/+/#"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/+"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/+/+/+"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "#"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "+/+/+"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "$SYS/#"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "$share/g/hb/#"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "$share/g/#"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/a+/b"));   /* not a filter */
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_SUBSCRIBE, "hb/#/b"));    /* not a filter */
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_PUBLISH, "hb/acct/dev")); /* subscribe only */
    /* Reads: a delivered message on a concrete topic. */
    CHECK(hb_acl_allows(&c, id, NULL, HB_ACL_READ, "hb/acct/dev"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_READ, "hb/acct/dev/x"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_READ, "$SYS/broker/uptime"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_READ, "other/a/b"));
    CHECK(!hb_acl_allows(&c, id, NULL, HB_ACL_READ, "hb/+/+"));
}

static void test_acl_read_through_a_shared_subscription_rule(void)
{
    static const char *const r[] = {"allow subscribe $share/+/hb/+/+", "deny all #"};
    struct hb_token_claims c = claims_with(r, 2);
    CHECK(hb_acl_allows(&c, "c", NULL, HB_ACL_READ, "hb/acct/dev"));
    CHECK(!hb_acl_allows(&c, "c", NULL, HB_ACL_SUBSCRIBE, "hb/acct/dev"));
    CHECK(!hb_acl_allows(&c, "c", NULL, HB_ACL_READ, "$share/g/hb/acct/dev"));
}

static void test_acl_first_matching_rule_decides(void)
{
    static const char *const r[] = {"deny publish hb/acct/blocked", "allow all hb/acct/#",
                                    "allow all #"};
    struct hb_token_claims c = claims_with(r, 3);
    CHECK(!hb_acl_allows(&c, "x", NULL, HB_ACL_PUBLISH, "hb/acct/blocked"));
    CHECK(hb_acl_allows(&c, "x", NULL, HB_ACL_SUBSCRIBE, "hb/acct/blocked"));
    CHECK(hb_acl_allows(&c, "x", NULL, HB_ACL_PUBLISH, "hb/acct/other"));
    CHECK(hb_acl_allows(&c, "x", NULL, HB_ACL_PUBLISH, "hb/acct")); /* "a/#" matches "a" */
    CHECK(hb_acl_allows(&c, "x", NULL, HB_ACL_SUBSCRIBE, "hb/acct/#"));
    CHECK(hb_acl_allows(&c, "x", NULL, HB_ACL_SUBSCRIBE, "#"));
    /* A wildcard first level never reaches $ topics. */
    CHECK(!hb_acl_allows(&c, "x", NULL, HB_ACL_SUBSCRIBE, "$SYS/#"));
    CHECK(!hb_acl_allows(&c, "x", NULL, HB_ACL_PUBLISH, "$SYS/x"));
    struct hb_token_claims none = claims_with(r, 0);
    CHECK(!hb_acl_allows(&none, "x", NULL, HB_ACL_PUBLISH, "hb/acct/other"));
}

int main(void)
{
    RUN(test_acl_device_publishes_only_to_its_own_topic);
    RUN(test_acl_malicious_client_ids_never_match_a_placeholder);
    RUN(test_acl_username_placeholder);
    RUN(test_acl_pinned_device_denies_other_client_ids);
    RUN(test_acl_consumer_subscriptions_are_subsets);
    RUN(test_acl_read_through_a_shared_subscription_rule);
    RUN(test_acl_first_matching_rule_decides);
    return TESTING_DONE();
}
