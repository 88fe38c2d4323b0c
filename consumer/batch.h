/* One batch of heartbeats for Redis, coalesced: repeats of the same key and device inside the
 * batch become one field increment, and each key is written (and its TTL set) once. */
#ifndef HB_BATCH_H
#define HB_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "key.h"
#include "queue.h"
#include "uthash.h"

struct batch_device {
    char device[HB_ID_MAX + 1];
    long long count;
    UT_hash_handle hh;
    struct batch_device *next_free;
};

/* Keys are found by interval start and account, so the Redis key string is formatted once per
 * key and batch, not once per heartbeat. */
struct batch_lookup {
    int64_t interval_start;
    char account[HB_ID_MAX];
};

struct batch_key {
    struct batch_lookup lookup; /* hashed over its first lookup_len bytes */
    size_t lookup_len;
    char key[HB_KEY_MAX];
    int64_t interval_start;
    struct batch_device *devices; /* uthash head */
    size_t n_devices;
    long long heartbeats;
    UT_hash_handle hh;
    struct batch_key *next_free;
};

struct batch {
    struct batch_key *keys; /* uthash head, in insertion order */
    size_t n_keys;
    long long heartbeats;
    /* Removed entries are kept for reuse: a steady stream of batches allocates nothing. */
    struct batch_key *free_keys;
    struct batch_device *free_devices;
};

void batch_init(struct batch *b);
/* Frees everything, kept entries included; the batch is empty and reusable afterwards. */
void batch_finish(struct batch *b);

/* Adds one heartbeat. Returns false when memory runs out or the account id cannot form a key
 * (the batch is unchanged then). */
bool batch_add(struct batch *b, const struct queue_entry *e);

/* Removes one key with its devices (their memory is kept for reuse). */
void batch_remove(struct batch *b, struct batch_key *k);

#endif
