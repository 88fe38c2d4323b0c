/* Unit tests of the bounded hand-off (consumer/queue.c): capacity, FIFO order, timed and woken
 * pops, close, and the ring wrapping around. Threads stand in for paho and the writer; a test
 * that wakes a waiting pop first sees that thread asleep in the kernel (/proc), never sleeps. */
#include "queue.h"

#include "testing.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

static struct queue_entry entry(int i)
{
    struct queue_entry e;
    memset(&e, 0, sizeof(e));
    e.interval_start = 1700000040000LL + i;
    snprintf(e.account, sizeof(e.account), "acct-%d", i);
    snprintf(e.device, sizeof(e.device), "dev-%d", i);
    return e;
}

static bool push(struct queue *q, int i)
{
    struct queue_entry e = entry(i);
    return queue_push(q, &e);
}

/* True when out is exactly entry(i). */
static bool is_entry(const struct queue_entry *out, int i)
{
    struct queue_entry e = entry(i);
    return out->interval_start == e.interval_start && strcmp(out->account, e.account) == 0 &&
           strcmp(out->device, e.device) == 0;
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The scheduler state of thread tid of this process ('R', 'S', ...), '?' when unreadable. */
static char thread_state(pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return '?';
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *end = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return end != NULL && end[1] == ' ' ? end[2] : '?';
}

/* Waits until thread *tid (set by that thread, 0 until then) sleeps in the kernel: nothing else
 * holds the queue's lock, so it sleeps only waiting on the queue's condition. False after 10 s. */
static bool wait_until_asleep(atomic_int *tid)
{
    long long deadline = mono_ms() + 10000;
    struct timespec tick = {.tv_sec = 0, .tv_nsec = 1000000L};
    while (mono_ms() < deadline) {
        pid_t id = atomic_load(tid);
        if (id != 0 && thread_state(id) == 'S')
            return true;
        nanosleep(&tick, NULL);
    }
    return false;
}

static void test_queue_push_until_full_fails_at_capacity_plus_one(void)
{
    struct queue q;
    CHECK(queue_init(&q, 3));
    CHECK_INT(queue_length(&q), 0);
    CHECK(push(&q, 1));
    CHECK(push(&q, 2));
    CHECK(push(&q, 3));
    CHECK_INT(queue_length(&q), 3);
    CHECK(!push(&q, 4));
    CHECK(!push(&q, 5));
    CHECK_INT(queue_length(&q), 3);

    /* The refused entries were not stored. */
    struct queue_entry out[8];
    bool closed = true;
    CHECK_INT(queue_pop(&q, out, 8, 0, &closed), 3);
    CHECK(!closed);
    CHECK(is_entry(&out[0], 1));
    CHECK(is_entry(&out[2], 3));
    queue_finish(&q);
}

static void test_queue_pop_returns_fifo_order(void)
{
    struct queue q;
    CHECK(queue_init(&q, 8));
    for (int i = 0; i < 5; i++)
        CHECK(push(&q, i));
    struct queue_entry out[8];
    bool closed = true;
    CHECK_INT(queue_pop(&q, out, 5, 0, &closed), 5);
    CHECK(!closed);
    for (int i = 0; i < 5; i++)
        CHECK(is_entry(&out[i], i));
    CHECK_INT(queue_length(&q), 0);
    queue_finish(&q);
}

static void test_queue_pop_takes_at_most_max_and_leaves_rest(void)
{
    struct queue q;
    CHECK(queue_init(&q, 8));
    for (int i = 0; i < 5; i++)
        CHECK(push(&q, i));
    struct queue_entry out[8];
    bool closed;
    CHECK_INT(queue_pop(&q, out, 2, 0, &closed), 2);
    CHECK(is_entry(&out[0], 0));
    CHECK(is_entry(&out[1], 1));
    CHECK_INT(queue_length(&q), 3);
    CHECK_INT(queue_pop(&q, out, 8, 0, &closed), 3);
    CHECK(is_entry(&out[0], 2));
    CHECK(is_entry(&out[2], 4));
    queue_finish(&q);
}

static void test_queue_pop_with_wait_returns_what_is_there_after_timeout(void)
{
    struct queue q;
    CHECK(queue_init(&q, 16));
    CHECK(push(&q, 1));
    CHECK(push(&q, 2));
    struct queue_entry out[10];
    bool closed = true;
    long long start = mono_ms();
    CHECK_INT(queue_pop(&q, out, 10, 50, &closed), 2);
    long long elapsed = mono_ms() - start;
    CHECK(elapsed >= 49);
    CHECK(elapsed < 5000);
    CHECK(!closed);
    CHECK(is_entry(&out[0], 1));
    CHECK(is_entry(&out[1], 2));
    queue_finish(&q);
}

static void test_queue_pop_on_empty_queue_times_out_with_zero(void)
{
    struct queue q;
    CHECK(queue_init(&q, 4));
    struct queue_entry out[4];
    bool closed = true;
    long long start = mono_ms();
    CHECK_INT(queue_pop(&q, out, 4, 30, &closed), 0);
    CHECK(mono_ms() - start >= 29);
    CHECK(!closed);
    queue_finish(&q);
}

static void test_queue_pop_with_max_available_does_not_wait(void)
{
    struct queue q;
    CHECK(queue_init(&q, 16));
    for (int i = 0; i < 4; i++)
        CHECK(push(&q, i));
    struct queue_entry out[4];
    bool closed;
    long long start = mono_ms();
    CHECK_INT(queue_pop(&q, out, 4, 10000, &closed), 4);
    CHECK(mono_ms() - start < 5000);
    queue_finish(&q);
}

static void test_queue_pop_wider_than_capacity_returns_when_full(void)
{
    struct queue q;
    CHECK(queue_init(&q, 2));
    CHECK(push(&q, 1));
    CHECK(push(&q, 2));
    struct queue_entry out[10];
    bool closed;
    long long start = mono_ms();
    CHECK_INT(queue_pop(&q, out, 10, 10000, &closed), 2);
    CHECK(mono_ms() - start < 5000);
    queue_finish(&q);
}

static void test_queue_push_copies_the_entry(void)
{
    struct queue q;
    CHECK(queue_init(&q, 2));
    struct queue_entry e = entry(7);
    CHECK(queue_push(&q, &e));
    memset(&e, 0, sizeof(e));
    struct queue_entry out[1];
    bool closed;
    CHECK_INT(queue_pop(&q, out, 1, 0, &closed), 1);
    CHECK(is_entry(&out[0], 7));
    CHECK_STR(out[0].account, "acct-7");
    CHECK_STR(out[0].device, "dev-7");
    queue_finish(&q);
}

static void test_queue_close_fails_push_and_pop_drains_then_reports_closed(void)
{
    struct queue q;
    CHECK(queue_init(&q, 4));
    CHECK(push(&q, 1));
    CHECK(push(&q, 2));
    queue_close(&q);
    CHECK(!push(&q, 3));
    CHECK_INT(queue_length(&q), 2);

    struct queue_entry out[4];
    bool closed = true;
    CHECK_INT(queue_pop(&q, out, 1, 0, &closed), 1);
    CHECK(!closed);
    CHECK(is_entry(&out[0], 1));
    CHECK_INT(queue_pop(&q, out, 4, 0, &closed), 1);
    CHECK(is_entry(&out[0], 2));

    closed = false;
    long long start = mono_ms();
    CHECK_INT(queue_pop(&q, out, 4, 10000, &closed), 0);
    CHECK(closed);
    CHECK(mono_ms() - start < 5000);
    CHECK(!push(&q, 4));
    queue_finish(&q);
}

static void test_queue_ring_wraps_around_in_order(void)
{
    struct queue q;
    CHECK(queue_init(&q, 4));
    struct queue_entry out[4];
    bool closed;
    CHECK(push(&q, 1));
    CHECK(push(&q, 2));
    CHECK(push(&q, 3));
    CHECK_INT(queue_pop(&q, out, 2, 0, &closed), 2);
    CHECK(is_entry(&out[0], 1));
    CHECK(is_entry(&out[1], 2));
    /* Head is at slot 2: these go to slots 3, 0, 1. */
    CHECK(push(&q, 4));
    CHECK(push(&q, 5));
    CHECK(push(&q, 6));
    CHECK(!push(&q, 7));
    CHECK_INT(queue_length(&q), 4);
    CHECK_INT(queue_pop(&q, out, 4, 0, &closed), 4);
    for (int i = 0; i < 4; i++)
        CHECK(is_entry(&out[i], 3 + i));

    /* Many rounds through a small ring keep the order. */
    int next_in = 100, next_out = 100, bad = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 3; i++)
            CHECK(push(&q, next_in++));
        size_t n = queue_pop(&q, out, 3, 0, &closed);
        CHECK_INT(n, 3);
        for (size_t i = 0; i < n; i++)
            bad += !is_entry(&out[i], next_out++);
    }
    CHECK_INT(bad, 0);
    CHECK_INT(queue_length(&q), 0);
    queue_finish(&q);
}

static void test_queue_finish_twice_is_harmless(void)
{
    struct queue q;
    CHECK(queue_init(&q, 1));
    queue_finish(&q);
    CHECK(q.ring == NULL);
    queue_finish(&q);
}

struct popper {
    struct queue *q;
    size_t max;
    int wait_ms;
    size_t n;
    bool closed;
    struct queue_entry out[8];
    long long elapsed_ms;
    atomic_int tid;
};

static void *popper_run(void *arg)
{
    struct popper *p = arg;
    atomic_store(&p->tid, gettid());
    long long start = mono_ms();
    p->n = queue_pop(p->q, p->out, p->max, p->wait_ms, &p->closed);
    p->elapsed_ms = mono_ms() - start;
    return NULL;
}

static void test_queue_close_wakes_a_waiting_pop(void)
{
    struct queue q;
    CHECK(queue_init(&q, 4));
    struct popper p = {.q = &q, .max = 4, .wait_ms = 20000};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, popper_run, &p), 0);
    CHECK(wait_until_asleep(&p.tid));
    queue_close(&q);
    pthread_join(t, NULL);
    CHECK_INT(p.n, 0);
    CHECK(p.closed);
    CHECK(p.elapsed_ms < 10000);
    queue_finish(&q);
}

static void test_queue_push_reaching_max_wakes_a_waiting_pop(void)
{
    struct queue q;
    CHECK(queue_init(&q, 8));
    struct popper p = {.q = &q, .max = 3, .wait_ms = 20000};
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, popper_run, &p), 0);
    CHECK(wait_until_asleep(&p.tid));
    CHECK(push(&q, 1));
    CHECK(push(&q, 2));
    CHECK(push(&q, 3));
    pthread_join(t, NULL);
    CHECK_INT(p.n, 3);
    CHECK(!p.closed);
    CHECK(p.elapsed_ms < 10000);
    CHECK(is_entry(&p.out[0], 1));
    CHECK(is_entry(&p.out[1], 2));
    CHECK(is_entry(&p.out[2], 3));
    queue_finish(&q);
}

int main(void)
{
    RUN(test_queue_push_until_full_fails_at_capacity_plus_one);
    RUN(test_queue_pop_returns_fifo_order);
    RUN(test_queue_pop_takes_at_most_max_and_leaves_rest);
    RUN(test_queue_pop_with_wait_returns_what_is_there_after_timeout);
    RUN(test_queue_pop_on_empty_queue_times_out_with_zero);
    RUN(test_queue_pop_with_max_available_does_not_wait);
    RUN(test_queue_pop_wider_than_capacity_returns_when_full);
    RUN(test_queue_push_copies_the_entry);
    RUN(test_queue_close_fails_push_and_pop_drains_then_reports_closed);
    RUN(test_queue_ring_wraps_around_in_order);
    RUN(test_queue_finish_twice_is_harmless);
    RUN(test_queue_close_wakes_a_waiting_pop);
    RUN(test_queue_push_reaching_max_wakes_a_waiting_pop);
    return TESTING_DONE();
}
