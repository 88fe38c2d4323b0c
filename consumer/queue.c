/* A fixed ring protected by one mutex. The producer signals the writer only when a full batch
 * is waiting, so the common case costs a lock and a copy; time-bounded flushing is the writer's
 * own timed wait. */
#include "queue.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool queue_init(struct queue *q, size_t capacity)
{
    memset(q, 0, sizeof(*q));
    q->ring = calloc(capacity, sizeof(*q->ring));
    if (q->ring == NULL) {
        HB_ERROR("queue: cannot allocate %zu entries: %s", capacity, strerror(errno));
        return false;
    }
    q->capacity = capacity;
    q->wake_at = 1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->ready, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&q->lock, NULL);
    return true;
}

void queue_finish(struct queue *q)
{
    if (q->ring == NULL)
        return;
    pthread_cond_destroy(&q->ready);
    pthread_mutex_destroy(&q->lock);
    free(q->ring);
    q->ring = NULL;
}

bool queue_push(struct queue *q, const struct queue_entry *e)
{
    pthread_mutex_lock(&q->lock);
    bool ok = !q->closed && q->count < q->capacity;
    if (ok) {
        q->ring[(q->head + q->count) % q->capacity] = *e;
        q->count++;
        if (q->count == q->wake_at)
            pthread_cond_signal(&q->ready);
    }
    pthread_mutex_unlock(&q->lock);
    return ok;
}

static struct timespec deadline_after(int wait_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += wait_ms / 1000;
    deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    return deadline;
}

size_t queue_pop(struct queue *q, struct queue_entry *out, size_t max, int wait_ms, bool *closed)
{
    struct timespec deadline = deadline_after(wait_ms);
    pthread_mutex_lock(&q->lock);
    q->wake_at = max < q->capacity ? max : q->capacity;
    while (q->count < q->wake_at && !q->closed) {
        if (pthread_cond_timedwait(&q->ready, &q->lock, &deadline) == ETIMEDOUT)
            break;
    }
    size_t n = q->count < max ? q->count : max;
    for (size_t i = 0; i < n; i++)
        out[i] = q->ring[(q->head + i) % q->capacity];
    q->head = (q->head + n) % q->capacity;
    q->count -= n;
    *closed = q->closed && q->count == 0;
    pthread_mutex_unlock(&q->lock);
    return n;
}

void queue_close(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    q->closed = true;
    pthread_cond_broadcast(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

bool queue_wait_closed(struct queue *q, int wait_ms)
{
    struct timespec deadline = deadline_after(wait_ms);
    pthread_mutex_lock(&q->lock);
    /* The producer signals "ready" too; any wake-up just re-checks. */
    while (!q->closed) {
        if (pthread_cond_timedwait(&q->ready, &q->lock, &deadline) == ETIMEDOUT)
            break;
    }
    bool closed = q->closed;
    pthread_mutex_unlock(&q->lock);
    return closed;
}

size_t queue_length(struct queue *q)
{
    pthread_mutex_lock(&q->lock);
    size_t n = q->count;
    pthread_mutex_unlock(&q->lock);
    return n;
}
