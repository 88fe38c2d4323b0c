/* Unit tests of the coalescing batch (consumer/batch.c): one field per device and one key per
 * account and interval, exact totals, removal, reuse, refusal of bad accounts, key order. */
#include "batch.h"

#include "testing.h"

#define T0 1700000040000LL
#define MIN_MS 60000LL

static struct queue_entry entry(const char *account, const char *device, int64_t start)
{
    struct queue_entry e;
    memset(&e, 0, sizeof(e));
    e.interval_start = start;
    snprintf(e.account, sizeof(e.account), "%s", account);
    snprintf(e.device, sizeof(e.device), "%s", device);
    return e;
}

static bool add(struct batch *b, const char *account, const char *device, int64_t start)
{
    struct queue_entry e = entry(account, device, start);
    return batch_add(b, &e);
}

static struct batch_key *find_key(struct batch *b, const char *key)
{
    /* Keys are hashed by interval and account; the Redis key string is what tests name. */
    for (struct batch_key *k = b->keys; k != NULL; k = k->hh.next) {
        if (strcmp(k->key, key) == 0)
            return k;
    }
    return NULL;
}

static long long device_count(struct batch_key *k, const char *device)
{
    struct batch_device *d = NULL;
    HASH_FIND_STR(k->devices, device, d);
    return d ? d->count : -1;
}

static void test_batch_init_is_empty(void)
{
    struct batch b;
    memset(&b, 0x5a, sizeof(b));
    batch_init(&b);
    CHECK(b.keys == NULL);
    CHECK_INT(b.n_keys, 0);
    CHECK_INT(b.heartbeats, 0);
    batch_finish(&b);
}

static void test_batch_repeats_of_same_device_become_one_field_with_count(void)
{
    struct batch b;
    batch_init(&b);
    for (int i = 0; i < 5; i++)
        CHECK(add(&b, "acct-1", "dev-1", T0));
    CHECK_INT(b.n_keys, 1);
    CHECK_INT(b.heartbeats, 5);
    struct batch_key *k = b.keys;
    CHECK(k != NULL);
    if (k) {
        CHECK_STR(k->key, "hb:{acct-1}:1700000040000");
        CHECK_INT(k->interval_start, T0);
        CHECK_INT(k->n_devices, 1);
        CHECK_INT(k->heartbeats, 5);
        CHECK_INT(HASH_COUNT(k->devices), 1);
        CHECK_INT(device_count(k, "dev-1"), 5);
    }
    batch_finish(&b);
}

static void test_batch_devices_of_same_account_and_interval_share_one_key(void)
{
    struct batch b;
    batch_init(&b);
    CHECK(add(&b, "acct-1", "dev-a", T0));
    CHECK(add(&b, "acct-1", "dev-b", T0));
    CHECK(add(&b, "acct-1", "dev-c", T0));
    CHECK(add(&b, "acct-1", "dev-b", T0));
    CHECK_INT(b.n_keys, 1);
    CHECK_INT(b.heartbeats, 4);
    struct batch_key *k = find_key(&b, "hb:{acct-1}:1700000040000");
    CHECK(k != NULL);
    if (k) {
        CHECK_INT(k->n_devices, 3);
        CHECK_INT(k->heartbeats, 4);
        CHECK_INT(device_count(k, "dev-a"), 1);
        CHECK_INT(device_count(k, "dev-b"), 2);
        CHECK_INT(device_count(k, "dev-c"), 1);
        CHECK_INT(device_count(k, "dev-d"), -1);
    }
    batch_finish(&b);
}

static void test_batch_same_account_different_intervals_are_different_keys(void)
{
    struct batch b;
    batch_init(&b);
    CHECK(add(&b, "acct-1", "dev-1", T0));
    CHECK(add(&b, "acct-1", "dev-1", T0 + MIN_MS));
    CHECK(add(&b, "acct-1", "dev-1", T0 - MIN_MS));
    CHECK_INT(b.n_keys, 3);
    CHECK_INT(b.heartbeats, 3);
    struct batch_key *k = find_key(&b, "hb:{acct-1}:1700000100000");
    CHECK(k != NULL);
    if (k) {
        CHECK_INT(k->interval_start, T0 + MIN_MS);
        CHECK_INT(k->n_devices, 1);
        CHECK_INT(device_count(k, "dev-1"), 1);
    }
    CHECK(find_key(&b, "hb:{acct-1}:1700000040000") != NULL);
    CHECK(find_key(&b, "hb:{acct-1}:1699999980000") != NULL);
    batch_finish(&b);
}

static void test_batch_different_accounts_same_interval_are_different_keys(void)
{
    struct batch b;
    batch_init(&b);
    CHECK(add(&b, "acct-1", "dev-1", T0));
    CHECK(add(&b, "acct-2", "dev-1", T0));
    CHECK_INT(b.n_keys, 2);
    CHECK(find_key(&b, "hb:{acct-1}:1700000040000") != NULL);
    CHECK(find_key(&b, "hb:{acct-2}:1700000040000") != NULL);
    batch_finish(&b);
}

static void test_batch_mixed_totals_are_exact(void)
{
    struct batch b;
    batch_init(&b);
    for (int i = 0; i < 3; i++)
        CHECK(add(&b, "A", "d1", T0));
    CHECK(add(&b, "A", "d2", T0));
    CHECK(add(&b, "A", "d1", T0 + MIN_MS));
    CHECK(add(&b, "B", "d1", T0));
    CHECK(add(&b, "B", "d1", T0));
    CHECK_INT(b.n_keys, 3);
    CHECK_INT(b.heartbeats, 7);
    struct batch_key *a0 = find_key(&b, "hb:{A}:1700000040000");
    struct batch_key *a1 = find_key(&b, "hb:{A}:1700000100000");
    struct batch_key *b0 = find_key(&b, "hb:{B}:1700000040000");
    CHECK(a0 && a1 && b0);
    if (a0 && a1 && b0) {
        CHECK_INT(a0->n_devices, 2);
        CHECK_INT(a0->heartbeats, 4);
        CHECK_INT(device_count(a0, "d1"), 3);
        CHECK_INT(device_count(a0, "d2"), 1);
        CHECK_INT(a1->n_devices, 1);
        CHECK_INT(a1->heartbeats, 1);
        CHECK_INT(b0->n_devices, 1);
        CHECK_INT(b0->heartbeats, 2);
        CHECK_INT(device_count(b0, "d1"), 2);
    }
    batch_finish(&b);
}

static void test_batch_remove_adjusts_totals_and_keeps_others(void)
{
    struct batch b;
    batch_init(&b);
    CHECK(add(&b, "A", "d1", T0));
    CHECK(add(&b, "A", "d2", T0));
    CHECK(add(&b, "A", "d2", T0));
    CHECK(add(&b, "B", "d1", T0));
    CHECK(add(&b, "C", "d1", T0));
    CHECK_INT(b.n_keys, 3);
    CHECK_INT(b.heartbeats, 5);

    struct batch_key *a = find_key(&b, "hb:{A}:1700000040000");
    CHECK(a != NULL);
    if (a)
        batch_remove(&b, a);
    CHECK_INT(b.n_keys, 2);
    CHECK_INT(b.heartbeats, 2);
    CHECK(find_key(&b, "hb:{A}:1700000040000") == NULL);
    CHECK(b.keys != NULL);
    if (b.keys) {
        CHECK_STR(b.keys->key, "hb:{B}:1700000040000");
        struct batch_key *next = b.keys->hh.next;
        CHECK(next != NULL);
        if (next)
            CHECK_STR(next->key, "hb:{C}:1700000040000");
    }

    /* The removed key's account starts afresh. */
    CHECK(add(&b, "A", "d2", T0));
    a = find_key(&b, "hb:{A}:1700000040000");
    CHECK(a != NULL);
    if (a) {
        CHECK_INT(a->n_devices, 1);
        CHECK_INT(a->heartbeats, 1);
        CHECK_INT(device_count(a, "d2"), 1);
    }
    CHECK_INT(b.n_keys, 3);
    CHECK_INT(b.heartbeats, 3);

    struct batch_key *k, *tmp;
    HASH_ITER(hh, b.keys, k, tmp)
    {
        batch_remove(&b, k);
    }
    CHECK_INT(b.n_keys, 0);
    CHECK_INT(b.heartbeats, 0);
    CHECK(b.keys == NULL);
    batch_finish(&b); /* removed entries are kept for reuse until then */
}

static void test_batch_finish_leaves_reusable_empty_batch(void)
{
    struct batch b;
    batch_init(&b);
    CHECK(add(&b, "A", "d1", T0));
    CHECK(add(&b, "B", "d1", T0));
    batch_finish(&b);
    CHECK(b.keys == NULL);
    CHECK_INT(b.n_keys, 0);
    CHECK_INT(b.heartbeats, 0);

    CHECK(add(&b, "A", "d1", T0));
    CHECK(add(&b, "A", "d1", T0));
    CHECK_INT(b.n_keys, 1);
    CHECK_INT(b.heartbeats, 2);
    CHECK(b.keys != NULL);
    if (b.keys) {
        CHECK_INT(b.keys->n_devices, 1);
        CHECK_INT(device_count(b.keys, "d1"), 2);
    }
    batch_finish(&b);
    batch_finish(&b);
    CHECK_INT(b.n_keys, 0);
}

static void test_batch_invalid_account_is_refused_and_batch_unchanged(void)
{
    struct batch b;
    batch_init(&b);
    CHECK(add(&b, "A", "d1", T0));
    const char *bad[] = {"", "a b", "a{b", "a}b", "a/b", "a+b", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!add(&b, bad[i], "d1", T0));
    /* An entry whose account fills the whole array without a NUL. */
    struct queue_entry e = entry("A", "d2", T0);
    memset(e.account, 'a', sizeof(e.account));
    CHECK(!batch_add(&b, &e));

    CHECK_INT(b.n_keys, 1);
    CHECK_INT(b.heartbeats, 1);
    CHECK(b.keys != NULL);
    if (b.keys) {
        CHECK(b.keys->hh.next == NULL);
        CHECK_STR(b.keys->key, "hb:{A}:1700000040000");
        CHECK_INT(b.keys->n_devices, 1);
        CHECK_INT(b.keys->heartbeats, 1);
        CHECK_INT(device_count(b.keys, "d1"), 1);
    }
    batch_finish(&b);

    batch_init(&b);
    CHECK(!add(&b, "a b", "d1", T0));
    CHECK(b.keys == NULL);
    CHECK_INT(b.n_keys, 0);
    CHECK_INT(b.heartbeats, 0);
    batch_finish(&b);
}

static void test_batch_keys_keep_insertion_order(void)
{
    struct batch b;
    batch_init(&b);
    const char *accounts[] = {"zeta", "alpha", "mid", "alpha", "beta", "zeta", "omega"};
    for (size_t i = 0; i < sizeof(accounts) / sizeof(accounts[0]); i++)
        CHECK(add(&b, accounts[i], "d", T0));
    const char *expected[] = {"hb:{zeta}:1700000040000", "hb:{alpha}:1700000040000",
                              "hb:{mid}:1700000040000", "hb:{beta}:1700000040000",
                              "hb:{omega}:1700000040000"};
    size_t i = 0;
    for (struct batch_key *k = b.keys; k != NULL; k = k->hh.next, i++) {
        if (i < 5)
            CHECK_STR(k->key, expected[i]);
    }
    CHECK_INT(i, 5);
    CHECK_INT(b.n_keys, 5);
    CHECK_INT(b.heartbeats, 7);
    batch_finish(&b);
}

static void test_batch_many_keys_and_devices(void)
{
    struct batch b;
    batch_init(&b);
    char account[32], device[32];
    for (int a = 0; a < 50; a++) {
        for (int d = 0; d < 40; d++) {
            snprintf(account, sizeof(account), "acct-%d", a);
            snprintf(device, sizeof(device), "dev-%d", d);
            CHECK(add(&b, account, device, T0));
            CHECK(add(&b, account, device, T0));
        }
    }
    CHECK_INT(b.n_keys, 50);
    CHECK_INT(b.heartbeats, 4000);
    int bad = 0;
    for (struct batch_key *k = b.keys; k != NULL; k = k->hh.next) {
        if (k->n_devices != 40 || k->heartbeats != 80 || HASH_COUNT(k->devices) != 40)
            bad++;
    }
    CHECK_INT(bad, 0);
    batch_finish(&b);
}

int main(void)
{
    RUN(test_batch_init_is_empty);
    RUN(test_batch_repeats_of_same_device_become_one_field_with_count);
    RUN(test_batch_devices_of_same_account_and_interval_share_one_key);
    RUN(test_batch_same_account_different_intervals_are_different_keys);
    RUN(test_batch_different_accounts_same_interval_are_different_keys);
    RUN(test_batch_mixed_totals_are_exact);
    RUN(test_batch_remove_adjusts_totals_and_keeps_others);
    RUN(test_batch_finish_leaves_reusable_empty_batch);
    RUN(test_batch_invalid_account_is_refused_and_batch_unchanged);
    RUN(test_batch_keys_keep_insertion_order);
    RUN(test_batch_many_keys_and_devices);
    return TESTING_DONE();
}
