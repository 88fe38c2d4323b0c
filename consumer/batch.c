/* Coalescing batch built on uthash. Keys keep insertion order, so a batch written after a
 * reconnect goes out in the order it came in. Entries are recycled through free lists, so the
 * writer's steady state allocates nothing per heartbeat. */
#include "batch.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

void batch_init(struct batch *b)
{
    memset(b, 0, sizeof(*b));
}

void batch_remove(struct batch *b, struct batch_key *k)
{
    struct batch_device *d, *tmp;
    HASH_ITER(hh, k->devices, d, tmp)
    {
        HASH_DEL(k->devices, d);
        d->next_free = b->free_devices;
        b->free_devices = d;
    }
    HASH_DEL(b->keys, k);
    b->n_keys--;
    b->heartbeats -= k->heartbeats;
    k->next_free = b->free_keys;
    b->free_keys = k;
}

void batch_finish(struct batch *b)
{
    struct batch_key *k, *tmp;
    HASH_ITER(hh, b->keys, k, tmp)
    {
        batch_remove(b, k);
    }
    while (b->free_keys != NULL) {
        k = b->free_keys;
        b->free_keys = k->next_free;
        free(k);
    }
    while (b->free_devices != NULL) {
        struct batch_device *d = b->free_devices;
        b->free_devices = d->next_free;
        free(d);
    }
    batch_init(b);
}

static struct batch_key *new_key(struct batch *b)
{
    struct batch_key *k = b->free_keys;
    if (k == NULL)
        return calloc(1, sizeof(*k));
    b->free_keys = k->next_free;
    memset(k, 0, sizeof(*k));
    return k;
}

static struct batch_device *new_device(struct batch *b)
{
    struct batch_device *d = b->free_devices;
    if (d == NULL)
        return calloc(1, sizeof(*d));
    b->free_devices = d->next_free;
    memset(d, 0, sizeof(*d));
    return d;
}

static void recycle_key(struct batch *b, struct batch_key *k)
{
    k->next_free = b->free_keys;
    b->free_keys = k;
}

bool batch_add(struct batch *b, const struct queue_entry *e)
{
    struct batch_lookup lookup;
    size_t alen = strnlen(e->account, sizeof(e->account));
    if (alen == 0 || alen > HB_ID_MAX)
        return false;
    lookup.interval_start = e->interval_start;
    memcpy(lookup.account, e->account, alen);
    size_t lookup_len = offsetof(struct batch_lookup, account) + alen;

    struct batch_key *k = NULL;
    HASH_FIND(hh, b->keys, &lookup, lookup_len, k);
    bool is_new_key = k == NULL;
    if (is_new_key) {
        k = new_key(b);
        if (k == NULL)
            return false;
        if (hb_key_format(k->key, sizeof(k->key), e->account, e->interval_start) < 0) {
            recycle_key(b, k);
            return false;
        }
        memcpy(&k->lookup, &lookup, lookup_len);
        k->lookup_len = lookup_len;
        k->interval_start = e->interval_start;
    }

    size_t dlen = strnlen(e->device, sizeof(e->device));
    struct batch_device *d = NULL;
    HASH_FIND(hh, k->devices, e->device, dlen, d);
    if (d == NULL) {
        d = new_device(b);
        if (d == NULL) {
            if (is_new_key)
                recycle_key(b, k);
            return false;
        }
        memcpy(d->device, e->device, dlen);
        d->device[dlen] = '\0';
        HASH_ADD(hh, k->devices, device, dlen, d);
        k->n_devices++;
    }
    if (is_new_key) {
        HASH_ADD(hh, b->keys, lookup, k->lookup_len, k);
        b->n_keys++;
    }
    d->count++;
    k->heartbeats++;
    b->heartbeats++;
    return true;
}
