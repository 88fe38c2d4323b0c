/* One pending time per item (a device index): an indexed binary min-heap, so setting,
 * moving or cancelling an item's time is O(log n) and the earliest is O(1). */
#ifndef HB_SIM_TIMERS_H
#define HB_SIM_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct timers_entry {
    int64_t when;
    size_t id;
};

struct timers {
    struct timers_entry *heap; /* [len], heap-ordered by when */
    size_t *pos;               /* [capacity]: id's heap position, or TIMERS_NONE */
    size_t len;
    size_t capacity;
};

#define TIMERS_NONE SIZE_MAX

/* Prepares timers for ids 0..capacity-1, none pending. Returns false (after reporting why)
 * when out of memory; t is then safe to pass to timers_finish. */
bool timers_init(struct timers *t, size_t capacity);

/* Frees the heap. */
void timers_finish(struct timers *t);

/* Sets id's time to when, replacing any time it had. id < capacity. */
void timers_set(struct timers *t, size_t id, int64_t when);

/* Removes id's time, if any. */
void timers_cancel(struct timers *t, size_t id);

/* True when id has a time pending. */
bool timers_pending(const struct timers *t, size_t id);

/* The earliest pending entry without removing it; false when none is pending. */
bool timers_peek(const struct timers *t, struct timers_entry *out);

/* Removes and returns the earliest entry if it is due (when <= now); false otherwise. */
bool timers_pop_due(struct timers *t, int64_t now, struct timers_entry *out);

#endif
