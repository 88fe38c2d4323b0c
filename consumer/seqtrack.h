/* Loss seen end to end: each device numbers its heartbeats ("seq" in the payload), and a gap in
 * a device's numbers is heartbeats lost between the device and this consumer (broker queue
 * overflow, broker or consumer restart). Used by the writer thread only. */
#ifndef HB_SEQTRACK_H
#define HB_SEQTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Devices remembered at most; past it the least recently seen of a probe window is forgotten
 * (counted in evicted). 2^19 slots of 24 bytes: 12 MiB. */
#define SEQTRACK_SLOTS (1u << 19)

struct seqtrack_slot {
    uint64_t key; /* hash of account and device; 0 = free */
    int64_t seq;  /* highest seq seen */
    int64_t seen_ms;
};

struct seqtrack {
    struct seqtrack_slot *slots;
    uint64_t seed;
    size_t used;
    unsigned long long evicted, restarts;
};

/* Allocates the table. Returns false (after reporting) when memory runs out. */
bool seqtrack_init(struct seqtrack *t);
void seqtrack_finish(struct seqtrack *t);

/* Forgets every device (the next sight of each counts nothing). */
void seqtrack_reset(struct seqtrack *t);

/* Notes heartbeat seq of a device at now_ms and returns how many heartbeats of that device
 * were skipped since the last one seen: seq - last - 1 when seq jumped ahead, else 0. A seq
 * of 0 or 1 below the last one is a restart of the device (counted in restarts), any other seq
 * at or below the last one a duplicate or a late arrival; seq < 0 (none) is ignored. */
long long seqtrack_note(struct seqtrack *t, const char *account, const char *device, int64_t seq,
                        int64_t now_ms);

#endif
