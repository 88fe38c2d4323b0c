/* A small Redis Cluster client over hiredis 0.14 (which has none): a slot map from CLUSTER SLOTS,
 * and a pipeline that sends each node its share of the commands in one round trip, following
 * MOVED and ASK and retrying after connection errors, within a bounded number of rounds.
 * Given a plain redis:// or unix:// address it is the same pipeline on one node, so a program
 * can use one code path for both.
 *
 * How to wire it (consumer/writer.c, common/check.c, the checker API):
 *   - create once:   c = rcluster_create(&cfg.redis, 2000, err, sizeof err)  (no I/O);
 *     the writer registers its script: rcluster_script_add(c, write_script, sha, ...), then
 *     queues "EVALSHA <sha> 1 <key> ..." as before: the script is loaded on every node the first
 *     time the node is used, and again after NOSCRIPT (failover, SCRIPT FLUSH).
 *   - connect/health: rcluster_refresh(c, err, n) in place of connect_redis/PING (0 = reachable).
 *   - each batch:    rcluster_append(c, key, keylen, argc, argv, argvlen) per key (in place of
 *     redisAppendCommandArgv), rcluster_exec(c, err, n) once, then rcluster_reply(c, i) in the
 *     same order in place of redisGetReply. A NULL reply means "not delivered": keep that key in
 *     the batch and retry after a backoff (rcluster_exec returned -1). Error replies other than
 *     redirections and transient cluster states are final and are handed back as they came.
 *     rcluster_reset(c) before the next batch (exec does not reset).
 *   - hb_check_interval: append {"HLEN"|"HKEYS", key} per account with the key as routing key,
 *     exec once, read replies by index; the redisContext parameter becomes a struct rcluster.
 *   - delivery is at least once: a command whose connection broke before its reply is sent
 *     again, so only idempotent commands, or ones whose repetition the caller accepts (the
 *     writer's HINCRBY counts a heartbeat twice, never a device twice), belong here.
 *   - one struct rcluster per thread; nothing in it is locked. */
#ifndef HB_RCLUSTER_H
#define HB_RCLUSTER_H

#include "redis.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RCLUSTER_SLOTS 16384

struct rcluster;

/* Counters since rcluster_create; the last_exec_ ones describe the most recent rcluster_exec. */
struct rcluster_stats {
    unsigned long long execs;
    unsigned long long round_trips; /* node batches written and read back */
    unsigned long long last_exec_round_trips;
    unsigned long long last_exec_rounds; /* rounds of the last exec: 1 without redirections */
    unsigned long long moved;            /* MOVED replies followed */
    unsigned long long ask;              /* ASK replies followed (ASKING + the command) */
    unsigned long long refreshes;        /* slot maps loaded */
    unsigned long long connects;         /* node connections opened */
    unsigned long long conn_errors;      /* node connections lost or refused */
    unsigned long long retries;          /* commands sent again (any reason) */
    unsigned long long script_loads;     /* SCRIPT LOADs done on nodes */
    unsigned long long undelivered;      /* commands given up by an exec */
};

/* The cluster slot of a key: CRC16 (XMODEM) of the key, or of its hash tag — the part between
 * the first '{' and the first '}' after it, when that part is not empty — modulo 16384. */
int rcluster_key_slot(const char *key, size_t len);

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial 0) as Redis Cluster uses it. */
uint16_t rcluster_crc16(const char *buf, size_t len);

enum rcluster_redirect_kind { RCLUSTER_NO_REDIRECT, RCLUSTER_MOVED, RCLUSTER_ASK };

struct rcluster_redirect {
    enum rcluster_redirect_kind kind;
    int slot;
    struct hb_redis_endpoint to;
};

/* Parses an error reply "MOVED <slot> <host>:<port>" or "ASK ..." into out. An empty host (a
 * node that does not know its address says ":port") means from_host. Returns the kind;
 * RCLUSTER_NO_REDIRECT for any other message, including malformed redirections. */
enum rcluster_redirect_kind rcluster_redirect_parse(const char *msg, size_t len,
                                                    const char *from_host,
                                                    struct rcluster_redirect *out);

/* One slot range and the master that serves it. */
struct rcluster_range {
    int start;
    int end; /* inclusive */
    struct hb_redis_endpoint master;
};

/* Parses a CLUSTER SLOTS reply. Returns a malloc'd array of *n ranges the caller frees, or NULL
 * with a reason in err when the reply is malformed (bad types, slots outside 0..16383, start >
 * end, port outside 1..65535) or memory runs out. An empty host means from_host. */
struct rcluster_range *rcluster_slots_parse(const redisReply *r, const char *from_host, size_t *n,
                                            char *err, size_t errlen);

/* A client for addr (redis-cluster:// seeds, or a single redis:// or unix:// node), with connect
 * and command timeouts of timeout_ms per node. Does no I/O: the first exec or refresh connects.
 * Returns NULL with a reason in err when out of memory. Destroy with rcluster_destroy. */
struct rcluster *rcluster_create(const struct hb_redis_addr *addr, int timeout_ms, char *err,
                                 size_t errlen);

/* Closes every connection and frees c, its queued commands and replies. NULL is a no-op. */
void rcluster_destroy(struct rcluster *c);

/* Registers a Lua script to be loaded on every node before it runs commands; writes its SHA1
 * (40 hex digits and a NUL, the name EVALSHA takes) into sha. Needs no node: a program can
 * start while Redis is down. Returns false with a reason when hashing or memory fails. */
bool rcluster_script_add(struct rcluster *c, const char *body, char sha[41], char *err,
                         size_t errlen);

/* Loads the slot map (cluster) or checks the connection with PING (single node), connecting as
 * needed. Returns 0, or -1 with a reason when no node answered. */
int rcluster_refresh(struct rcluster *c, char *err, size_t errlen);

/* Queues one command routed by key (the caller names the key: argv may hold others). Copies
 * everything. Returns the command's index (0, 1, ... since the last reset), or -1 when out of
 * memory. Nothing is sent before rcluster_exec. */
long rcluster_append(struct rcluster *c, const char *key, size_t keylen, int argc,
                     const char **argv, const size_t *argvlen);

/* Sends the queued commands that have no reply yet: one pipeline per node per round, all nodes
 * written before any is read; redirections, transient cluster errors (TRYAGAIN, CLUSTERDOWN,
 * READONLY, MASTERDOWN, LOADING, NOSCRIPT of a registered script) and lost connections are
 * retried in the next round, after a slot refresh where the map may be stale, for at most a
 * few rounds and without sleeping. Returns 0 when every command has a reply (possibly an error
 * reply), or -1 with the last reason in err when some have none (their reply stays NULL); a
 * later exec retries just those. */
int rcluster_exec(struct rcluster *c, char *err, size_t errlen);

/* The reply of command i after an exec, owned by c until the next reset, or NULL when it was
 * not delivered (or i is out of range). */
const redisReply *rcluster_reply(const struct rcluster *c, size_t i);

/* Takes reply i out of c: the caller frees it with freeReplyObject, and rcluster_reply(c, i)
 * is NULL from then on. NULL when it was not delivered (or i is out of range). */
redisReply *rcluster_reply_take(struct rcluster *c, size_t i);

/* Runs one command routed by key on its own: forgets what was queued (rcluster_reset), queues
 * it, execs. Returns its reply, error replies included, for the caller to free; NULL with a
 * reason in err when it was not delivered or memory ran out. */
redisReply *rcluster_command(struct rcluster *c, const char *key, size_t keylen, int argc,
                             const char **argv, const size_t *argvlen, char *err, size_t errlen);

/* Fills out[0..max) with one single-node address per master (the slot map is loaded first when
 * it is not), carrying the credentials of c's address, for commands that each node answers for
 * its own keys only (SCAN). A single node gives its own address. Returns how many, or -1 with
 * a reason in err when no node answered. */
int rcluster_masters(struct rcluster *c, struct hb_redis_addr *out, size_t max, char *err,
                     size_t errlen);

/* The number of queued commands. */
size_t rcluster_count(const struct rcluster *c);

/* Forgets the queued commands and their replies; connections and the slot map stay. */
void rcluster_reset(struct rcluster *c);

/* Copies the counters into out. */
void rcluster_stats_get(const struct rcluster *c, struct rcluster_stats *out);

#endif
