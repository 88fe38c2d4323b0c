/* Coalescing batch built on uthash. Keys keep insertion order, so a batch written after a
 * reconnect goes out in the order it came in. */
#include "batch.h"

#include <stdlib.h>
#include <string.h>

void batch_init(struct batch *b)
{
    memset(b, 0, sizeof(*b));
}

void batch_remove(struct batch *b, struct batch_key *k)
{
    struct batch_device *d, *tmp;
    HASH_ITER(hh, k->devices, d, tmp) {
        HASH_DEL(k->devices, d);
        free(d);
    }
    HASH_DEL(b->keys, k);
    b->n_keys--;
    b->heartbeats -= k->heartbeats;
    free(k);
}

void batch_finish(struct batch *b)
{
    struct batch_key *k, *tmp;
    HASH_ITER(hh, b->keys, k, tmp) {
        batch_remove(b, k);
    }
    batch_init(b);
}

bool batch_add(struct batch *b, const struct queue_entry *e)
{
    char key[HB_KEY_MAX];
    int klen = hb_key_format(key, sizeof(key), e->account, e->interval_start);
    if (klen < 0)
        return false;

    struct batch_key *k = NULL;
    HASH_FIND(hh, b->keys, key, (size_t)klen, k);
    bool new_key = k == NULL;
    if (new_key) {
        k = calloc(1, sizeof(*k));
        if (k == NULL)
            return false;
        memcpy(k->key, key, (size_t)klen + 1);
        k->interval_start = e->interval_start;
    }

    size_t dlen = strlen(e->device);
    struct batch_device *d = NULL;
    HASH_FIND(hh, k->devices, e->device, dlen, d);
    if (d == NULL) {
        d = calloc(1, sizeof(*d));
        if (d == NULL) {
            if (new_key)
                free(k);
            return false;
        }
        memcpy(d->device, e->device, dlen + 1);
        HASH_ADD(hh, k->devices, device, dlen, d);
        k->n_devices++;
    }
    if (new_key) {
        HASH_ADD(hh, b->keys, key, (size_t)klen, k);
        b->n_keys++;
    }
    d->count++;
    k->heartbeats++;
    b->heartbeats++;
    return true;
}
