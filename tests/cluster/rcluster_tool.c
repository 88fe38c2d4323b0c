/* A test driver for common/rcluster: writes hashes with hash-tagged keys through the pipeline
 * API and reads them back, printing the layer's counters, so tests/integration/test_cluster.py
 * can hold a real cluster against it. The load mode writes one field per key per batch and
 * starts the next batch only when the last is acknowledged in full: what it reports as done is
 * exactly what must be in the cluster.
 *
 *   rcluster_tool URI fill PREFIX N FIELDS   N keys PREFIX{aI} with FIELDS fields, one exec,
 *                                            then read back with HGETALL, one exec
 *   rcluster_tool URI load PREFIX N          batch B sets field bB on every key, until SIGTERM */
#include "rcluster.h"
#include "redis.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char script[] =
    "for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end\n"
    "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))\n"
    "return 1\n";

#define TTL_MS "3600000"
#define BATCH_DEADLINE_MS 60000

static volatile sig_atomic_t stop_requested;

static void on_term(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void print_stats(const char *what, const struct rcluster *c, const char *extra)
{
    struct rcluster_stats s;
    rcluster_stats_get(c, &s);
    printf("%s %s round_trips=%llu last_round_trips=%llu last_rounds=%llu moved=%llu ask=%llu "
           "refreshes=%llu connects=%llu conn_errors=%llu retries=%llu script_loads=%llu "
           "undelivered=%llu\n",
           what, extra, s.round_trips, s.last_exec_round_trips, s.last_exec_rounds, s.moved, s.ask,
           s.refreshes, s.connects, s.conn_errors, s.retries, s.script_loads, s.undelivered);
    fflush(stdout);
}

/* Queues EVALSHA sha 1 key TTL field value... for key number i. */
static bool append_write(struct rcluster *c, const char *sha, const char *prefix, long i,
                         char (*fields)[32], long n_fields)
{
    char key[128];
    int klen = snprintf(key, sizeof(key), "%s{a%ld}", prefix, i);
    const char *argv[5 + 2 * 64];
    size_t argvlen[5 + 2 * 64];
    int argc = 0;
    argv[argc++] = "EVALSHA";
    argv[argc++] = sha;
    argv[argc++] = "1";
    argv[argc++] = key;
    argv[argc++] = TTL_MS;
    for (long f = 0; f < n_fields; f++) {
        argv[argc++] = fields[f];
        argv[argc++] = "1";
    }
    for (int a = 0; a < argc; a++)
        argvlen[a] = strlen(argv[a]);
    return rcluster_append(c, key, (size_t)klen, argc, argv, argvlen) >= 0;
}

/* Runs exec until every queued command has a reply, backing off between tries; false after
 * BATCH_DEADLINE_MS or on an error reply. */
static bool exec_all(struct rcluster *c, long long *stall_ms)
{
    long long start = monotonic_ms();
    int backoff = 20;
    char err[512];
    while (rcluster_exec(c, err, sizeof(err)) != 0) {
        if (monotonic_ms() - start > BATCH_DEADLINE_MS) {
            printf("stuck: %s\n", err);
            return false;
        }
        printf("retrying: %s\n", err);
        fflush(stdout);
        sleep_ms(backoff);
        backoff = backoff * 2 > 500 ? 500 : backoff * 2;
    }
    for (size_t i = 0; i < rcluster_count(c); i++) {
        const redisReply *r = rcluster_reply(c, i);
        if (r->type == REDIS_REPLY_ERROR) {
            printf("error reply to command %zu: %s\n", i, r->str);
            return false;
        }
    }
    *stall_ms = monotonic_ms() - start;
    return true;
}

static int fill(struct rcluster *c, const char *sha, const char *prefix, long n, long n_fields)
{
    char(*fields)[32] = calloc((size_t)n_fields, sizeof(*fields));
    if (fields == NULL)
        return 1;
    for (long f = 0; f < n_fields; f++)
        snprintf(fields[f], sizeof(fields[f]), "f%ld", f);
    long long stall = 0;
    bool ok = true;
    for (long i = 0; ok && i < n; i++)
        ok = append_write(c, sha, prefix, i, fields, n_fields);
    ok = ok && exec_all(c, &stall);
    free(fields);
    if (!ok)
        return 1;
    print_stats("write", c, "");
    rcluster_reset(c);
    for (long i = 0; i < n; i++) {
        char key[128];
        int klen = snprintf(key, sizeof(key), "%s{a%ld}", prefix, i);
        const char *argv[2] = {"HGETALL", key};
        size_t argvlen[2] = {7, (size_t)klen};
        if (rcluster_append(c, key, (size_t)klen, 2, argv, argvlen) < 0)
            return 1;
    }
    if (!exec_all(c, &stall))
        return 1;
    long good = 0;
    for (long i = 0; i < n; i++) {
        const redisReply *r = rcluster_reply(c, (size_t)i);
        good += r->type == REDIS_REPLY_ARRAY && (long)r->elements == 2 * n_fields;
    }
    char extra[64];
    snprintf(extra, sizeof(extra), "keys_complete=%ld", good);
    print_stats("read", c, extra);
    return good == n ? 0 : 1;
}

static int load(struct rcluster *c, const char *sha, const char *prefix, long n)
{
    long long max_stall = 0;
    long batch = 0;
    while (!stop_requested) {
        char field[1][32];
        snprintf(field[0], sizeof(field[0]), "b%ld", batch);
        rcluster_reset(c);
        for (long i = 0; i < n; i++) {
            if (!append_write(c, sha, prefix, i, field, 1))
                return 1;
        }
        long long stall = 0;
        if (!exec_all(c, &stall))
            return 1;
        batch++;
        if (stall > max_stall)
            max_stall = stall;
        /* Every 20th batch, and every batch that needed more than one round. */
        struct rcluster_stats s;
        rcluster_stats_get(c, &s);
        if (batch % 20 == 0 || s.last_exec_rounds > 1) {
            char extra[96];
            snprintf(extra, sizeof(extra), "batches=%ld max_batch_ms=%lld", batch, max_stall);
            print_stats("progress", c, extra);
        }
    }
    char extra[96];
    snprintf(extra, sizeof(extra), "batches=%ld max_batch_ms=%lld", batch, max_stall);
    print_stats("done", c, extra);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s URI fill PREFIX N FIELDS | URI load PREFIX N\n", argv[0]);
        return 2;
    }
    struct hb_redis_addr addr;
    char err[512];
    if (!hb_redis_uri_parse(argv[1], &addr, err, sizeof(err))) {
        fprintf(stderr, "%s: %s\n", argv[1], err);
        return 2;
    }
    long n = strtol(argv[4], NULL, 10);
    long n_fields = argc > 5 ? strtol(argv[5], NULL, 10) : 1;
    if (n < 1 || n_fields < 1 || n_fields > 64) {
        fprintf(stderr, "N must be positive and FIELDS 1..64\n");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    struct rcluster *c = rcluster_create(&addr, 2000, err, sizeof(err));
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    char sha[41];
    int rc = 1;
    if (!rcluster_script_add(c, script, sha, err, sizeof(err)))
        fprintf(stderr, "%s\n", err);
    else if (strcmp(argv[2], "fill") == 0)
        rc = fill(c, sha, argv[3], n, n_fields);
    else if (strcmp(argv[2], "load") == 0)
        rc = load(c, sha, argv[3], n);
    else
        fprintf(stderr, "unknown mode %s\n", argv[2]);
    rcluster_destroy(c);
    return rc;
}
