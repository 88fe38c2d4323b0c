/* Indexed binary min-heap keyed by time. Ties are broken by id, so the order devices are
 * served in is reproducible; pos[] makes every update find its entry without a search. */
#include "timers.h"

#include "log.h"

#include <stdlib.h>

bool timers_init(struct timers *t, size_t capacity)
{
    t->len = 0;
    t->capacity = capacity;
    t->heap = calloc(capacity + 1, sizeof(*t->heap));
    t->pos = malloc((capacity + 1) * sizeof(*t->pos));
    if (t->heap == NULL || t->pos == NULL) {
        HB_ERROR("timers: out of memory for %zu entries", capacity);
        return false;
    }
    for (size_t i = 0; i < capacity; i++)
        t->pos[i] = TIMERS_NONE;
    return true;
}

void timers_finish(struct timers *t)
{
    free(t->heap);
    free(t->pos);
    t->heap = NULL;
    t->pos = NULL;
    t->len = t->capacity = 0;
}

static bool before(const struct timers_entry *a, const struct timers_entry *b)
{
    return a->when < b->when || (a->when == b->when && a->id < b->id);
}

static void place(struct timers *t, size_t i, struct timers_entry e)
{
    t->heap[i] = e;
    t->pos[e.id] = i;
}

static void sift_up(struct timers *t, size_t i)
{
    struct timers_entry e = t->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&e, &t->heap[parent]))
            break;
        place(t, i, t->heap[parent]);
        i = parent;
    }
    place(t, i, e);
}

static void sift_down(struct timers *t, size_t i)
{
    struct timers_entry e = t->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= t->len)
            break;
        if (child + 1 < t->len && before(&t->heap[child + 1], &t->heap[child]))
            child++;
        if (!before(&t->heap[child], &e))
            break;
        place(t, i, t->heap[child]);
        i = child;
    }
    place(t, i, e);
}

void timers_set(struct timers *t, size_t id, int64_t when)
{
    size_t i = t->pos[id];
    if (i == TIMERS_NONE) {
        i = t->len++;
        place(t, i, (struct timers_entry){when, id});
        sift_up(t, i);
        return;
    }
    int64_t old = t->heap[i].when;
    t->heap[i].when = when;
    if (when < old)
        sift_up(t, i);
    else
        sift_down(t, i);
}

void timers_cancel(struct timers *t, size_t id)
{
    size_t i = t->pos[id];
    if (i == TIMERS_NONE)
        return;
    t->pos[id] = TIMERS_NONE;
    t->len--;
    if (i == t->len)
        return;
    /* Move the last entry into the hole; it may belong above or below it. When it moves up,
     * the entry left at i is its old parent, and sift_down leaves that in place. */
    place(t, i, t->heap[t->len]);
    sift_up(t, i);
    sift_down(t, i);
}

bool timers_pending(const struct timers *t, size_t id)
{
    return t->pos[id] != TIMERS_NONE;
}

bool timers_peek(const struct timers *t, struct timers_entry *out)
{
    if (t->len == 0)
        return false;
    *out = t->heap[0];
    return true;
}

bool timers_pop_due(struct timers *t, int64_t now, struct timers_entry *out)
{
    if (t->len == 0 || t->heap[0].when > now)
        return false;
    *out = t->heap[0];
    timers_cancel(t, out->id);
    return true;
}
