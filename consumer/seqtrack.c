/* The sequence tracker: an open-addressing table of fixed size keyed by a seeded 64-bit hash of
 * account and device, so its memory is bounded whatever devices the network invents; a full
 * probe window evicts its least recently seen device rather than growing. */
#include "seqtrack.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROBE_WINDOW 16

bool seqtrack_init(struct seqtrack *t)
{
    memset(t, 0, sizeof(*t));
    t->slots = calloc(SEQTRACK_SLOTS, sizeof(*t->slots));
    if (t->slots == NULL) {
        HB_ERROR("seqtrack: cannot allocate %u slots: %s", SEQTRACK_SLOTS, strerror(errno));
        return false;
    }
    /* Not a secret: the seed only spreads ids chosen to collide over other slots per run. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    t->seed = ((uint64_t)ts.tv_nsec << 32) ^ (uint64_t)ts.tv_sec ^ ((uint64_t)getpid() << 16);
    return true;
}

void seqtrack_finish(struct seqtrack *t)
{
    free(t->slots);
    t->slots = NULL;
}

void seqtrack_reset(struct seqtrack *t)
{
    memset(t->slots, 0, SEQTRACK_SLOTS * sizeof(*t->slots));
    t->used = 0;
}

/* FNV-1a over the seed, account, a separator and device, then a final mix. */
static uint64_t device_key(uint64_t seed, const char *account, const char *device)
{
    uint64_t h = 14695981039346656037ULL ^ seed;
    for (const char *p = account; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h = (h ^ '/') * 1099511628211ULL;
    for (const char *p = device; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h != 0 ? h : 1;
}

long long seqtrack_note(struct seqtrack *t, const char *account, const char *device, int64_t seq,
                        int64_t now_ms)
{
    if (seq < 0)
        return 0;
    uint64_t key = device_key(t->seed, account, device);
    struct seqtrack_slot *oldest = NULL;
    for (size_t i = 0; i < PROBE_WINDOW; i++) {
        struct seqtrack_slot *s = &t->slots[(key + i) & (SEQTRACK_SLOTS - 1)];
        if (s->key == key) {
            long long lost = 0;
            if (seq > s->seq) {
                lost = seq - s->seq - 1;
                s->seq = seq;
            } else if (seq <= 1 && s->seq > 1) {
                t->restarts++;
                s->seq = seq;
            }
            s->seen_ms = now_ms;
            return lost;
        }
        if (s->key == 0) {
            *s = (struct seqtrack_slot){key, seq, now_ms};
            t->used++;
            return 0;
        }
        if (oldest == NULL || s->seen_ms < oldest->seen_ms)
            oldest = s;
    }
    t->evicted++;
    *oldest = (struct seqtrack_slot){key, seq, now_ms};
    return 0;
}
