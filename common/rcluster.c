/* The cluster client's pipeline. An exec runs in rounds: each round groups the commands still
 * without a reply by node, writes every node's batch before reading any (one round trip per
 * node, the nodes working in parallel), and sorts the replies into final ones and ones to retry
 * (MOVED, ASK, transient cluster states, lost connections). The slot map is reloaded between
 * rounds when a reply said it is stale; nothing sleeps — backing off is the caller's call.
 * A script is named by the SHA-1 of its text (OpenSSL), so nothing waits for a node to name it.
 * Over 500 lines: the rounds, redirections and retries share the node table and read best
 * together; the pure parts (slots, replies) are in rcluster_slot.c. */
#include "rcluster.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROUNDS 6
#define MAX_NODES 256 /* redirections name nodes: bound what a bad reply can make us hold */
#define NO_NODE (-1)

struct node {
    struct hb_redis_endpoint ep;
    redisContext *ctx;
    bool scripts_loaded;
    size_t *batch; /* indices of this round's commands */
    size_t n_batch, cap_batch;
};

struct cmd {
    char *buf; /* the command in RESP, from redisFormatCommandArgv */
    size_t len;
    int slot;
    int ask_node; /* send once with ASKING to this node, or NO_NODE */
    bool asking;  /* this round's send was preceded by ASKING */
    bool sent;    /* sent before: another send is a retry */
    bool noscript_retried;
    redisReply *reply;
};

struct script {
    char sha[41];
    char *body;
};

struct rcluster {
    struct hb_redis_addr addr;
    int timeout_ms;
    struct node nodes[MAX_NODES]; /* fixed: replies add nodes while others are being read */
    size_t n_nodes;
    int16_t slots[RCLUSTER_SLOTS]; /* node index per slot, or NO_NODE */
    bool map_ok;
    bool need_refresh;
    struct script *scripts;
    size_t n_scripts;
    struct cmd *cmds;
    size_t n_cmds, cap_cmds;
    struct rcluster_stats stats;
    char reason[640];
};

/* Index of the node at ep, added when new; NO_NODE when the table is full. */
static int node_intern(struct rcluster *c, const struct hb_redis_endpoint *ep)
{
    for (size_t i = 0; i < c->n_nodes; i++) {
        if (c->nodes[i].ep.port == ep->port && strcmp(c->nodes[i].ep.host, ep->host) == 0)
            return (int)i;
    }
    if (c->n_nodes == MAX_NODES) {
        snprintf(c->reason, sizeof(c->reason), "more than %d nodes named", MAX_NODES);
        return NO_NODE;
    }
    memset(&c->nodes[c->n_nodes], 0, sizeof(c->nodes[0]));
    c->nodes[c->n_nodes].ep = *ep;
    return (int)c->n_nodes++;
}

static void node_drop(struct rcluster *c, struct node *n)
{
    if (n->ctx != NULL) {
        redisFree(n->ctx);
        n->ctx = NULL;
    }
    n->scripts_loaded = false;
    if (c->addr.cluster)
        c->need_refresh = true;
}

/* A lost connection: counted, remembered as the reason, dropped. */
static void node_failed(struct rcluster *c, struct node *n, const char *what)
{
    c->stats.conn_errors++;
    snprintf(c->reason, sizeof(c->reason), "%s:%d: %s: %s", n->ep.host, n->ep.port, what,
             n->ctx != NULL && n->ctx->errstr[0] ? n->ctx->errstr : "no reply");
    node_drop(c, n);
}

/* The single-node address of node n, with c's credentials. */
static void node_addr(const struct rcluster *c, const struct node *n, struct hb_redis_addr *out)
{
    *out = c->addr;
    if (!c->addr.cluster)
        return;
    memcpy(out->host, n->ep.host, sizeof(out->host));
    out->port = n->ep.port;
    out->cluster = false;
    out->n_seeds = 0;
}

static bool node_connect(struct rcluster *c, struct node *n)
{
    if (n->ctx != NULL)
        return true;
    struct hb_redis_addr a;
    node_addr(c, n, &a);
    char err[200];
    n->ctx = hb_redis_connect(&a, c->timeout_ms, err, sizeof(err));
    if (n->ctx == NULL) {
        c->stats.conn_errors++;
        snprintf(c->reason, sizeof(c->reason), "%s", err);
        if (c->addr.cluster)
            c->need_refresh = true;
        return false;
    }
    c->stats.connects++;
    n->scripts_loaded = false;
    return true;
}

static bool node_load_scripts(struct rcluster *c, struct node *n)
{
    for (size_t i = 0; i < c->n_scripts; i++) {
        redisReply *r = redisCommand(n->ctx, "SCRIPT LOAD %s", c->scripts[i].body);
        if (r == NULL) {
            node_failed(c, n, "SCRIPT LOAD");
            return false;
        }
        bool ok = r->type == REDIS_REPLY_STRING && strcmp(r->str, c->scripts[i].sha) == 0;
        if (!ok)
            snprintf(c->reason, sizeof(c->reason), "%s:%d: SCRIPT LOAD: %s", n->ep.host, n->ep.port,
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        freeReplyObject(r);
        if (!ok)
            return false;
        c->stats.script_loads++;
    }
    n->scripts_loaded = true;
    return true;
}

/* Asks node n for the slot map and installs it. */
static bool refresh_from(struct rcluster *c, struct node *n)
{
    if (!node_connect(c, n))
        return false;
    redisReply *r = redisCommand(n->ctx, "CLUSTER SLOTS");
    if (r == NULL) {
        node_failed(c, n, "CLUSTER SLOTS");
        return false;
    }
    size_t n_ranges = 0;
    char err[200];
    struct rcluster_range *ranges = NULL;
    if (r->type == REDIS_REPLY_ERROR)
        snprintf(err, sizeof(err), "CLUSTER SLOTS: %s", r->str);
    else
        ranges = rcluster_slots_parse(r, n->ep.host, &n_ranges, err, sizeof(err));
    freeReplyObject(r);
    if (ranges == NULL) {
        snprintf(c->reason, sizeof(c->reason), "%s:%d: %s", n->ep.host, n->ep.port, err);
        return false;
    }
    int16_t *slots = malloc(sizeof(c->slots));
    bool ok = slots != NULL && n_ranges > 0;
    if (slots != NULL)
        for (int s = 0; s < RCLUSTER_SLOTS; s++)
            slots[s] = NO_NODE;
    for (size_t i = 0; ok && i < n_ranges; i++) {
        int idx = node_intern(c, &ranges[i].master);
        ok = idx != NO_NODE;
        for (int s = ranges[i].start; ok && s <= ranges[i].end; s++)
            slots[s] = (int16_t)idx;
    }
    if (ok) {
        memcpy(c->slots, slots, sizeof(c->slots));
        c->map_ok = true;
        c->need_refresh = false;
        c->stats.refreshes++;
    } else if (n_ranges == 0) {
        snprintf(c->reason, sizeof(c->reason), "%s:%d: CLUSTER SLOTS: no slot served", n->ep.host,
                 n->ep.port);
    }
    free(slots);
    free(ranges);
    return ok;
}

/* Tries the connected nodes first, then every node ever named (seeds included). */
static bool refresh_cluster(struct rcluster *c)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < c->n_nodes; i++) {
            if ((pass == 0) == (c->nodes[i].ctx != NULL) && refresh_from(c, &c->nodes[i]))
                return true;
        }
    }
    return false;
}

int rcluster_refresh(struct rcluster *c, char *err, size_t errlen)
{
    bool ok;
    if (c->addr.cluster) {
        ok = refresh_cluster(c);
    } else {
        struct node *n = &c->nodes[0];
        ok = node_connect(c, n);
        if (ok) {
            redisReply *r = redisCommand(n->ctx, "PING");
            ok = r != NULL && r->type == REDIS_REPLY_STATUS;
            if (r == NULL)
                node_failed(c, n, "PING");
            else if (!ok)
                snprintf(c->reason, sizeof(c->reason), "PING: %s",
                         r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
        }
    }
    if (!ok)
        snprintf(err, errlen, "%s", c->reason[0] ? c->reason : "no node answered");
    return ok ? 0 : -1;
}

struct rcluster *rcluster_create(const struct hb_redis_addr *addr, int timeout_ms, char *err,
                                 size_t errlen)
{
    struct rcluster *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->addr = *addr;
    c->timeout_ms = timeout_ms;
    for (int s = 0; s < RCLUSTER_SLOTS; s++)
        c->slots[s] = addr->cluster ? NO_NODE : 0;
    struct hb_redis_endpoint single = {.port = addr->port};
    snprintf(single.host, sizeof(single.host), "%s", addr->path[0] ? addr->path : addr->host);
    size_t n = addr->cluster ? addr->n_seeds : 1;
    for (size_t i = 0; i < n; i++) {
        if (node_intern(c, addr->cluster ? &addr->seeds[i] : &single) == NO_NODE) {
            snprintf(err, errlen, "%s", c->reason);
            rcluster_destroy(c);
            return NULL;
        }
    }
    c->map_ok = !addr->cluster;
    return c;
}

void rcluster_reset(struct rcluster *c)
{
    for (size_t i = 0; i < c->n_cmds; i++) {
        redisFreeCommand(c->cmds[i].buf);
        freeReplyObject(c->cmds[i].reply);
    }
    c->n_cmds = 0;
}

void rcluster_destroy(struct rcluster *c)
{
    if (c == NULL)
        return;
    rcluster_reset(c);
    free(c->cmds);
    for (size_t i = 0; i < c->n_nodes; i++) {
        node_drop(c, &c->nodes[i]);
        free(c->nodes[i].batch);
    }
    for (size_t i = 0; i < c->n_scripts; i++)
        free(c->scripts[i].body);
    free(c->scripts);
    /* The seeds' user and password live in addr: wipe them with the rest. */
    memset(c, 0, sizeof(*c));
    free(c);
}

/* SCRIPT LOAD body on the first node that answers (connected ones first, then every node
 * named): its reply is the script's name for EVALSHA on every node. */
/* A script's name in EVALSHA: the SHA-1 of its text (OpenSSL; known without asking a node, so
 * a program can start while Redis is down). */
static bool script_name(const char *body, char sha[41])
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (EVP_Digest(body, strlen(body), digest, &dlen, EVP_sha1(), NULL) != 1 || dlen != 20)
        return false;
    for (unsigned i = 0; i < 20; i++)
        snprintf(sha + 2 * i, 3, "%02x", digest[i]);
    return true;
}

bool rcluster_script_add(struct rcluster *c, const char *body, char sha[41], char *err,
                         size_t errlen)
{
    char name[41];
    if (!script_name(body, name)) {
        snprintf(err, errlen, "SHA1 of the script failed");
        return false;
    }
    struct script *scripts = realloc(c->scripts, (c->n_scripts + 1) * sizeof(*scripts));
    if (scripts == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    c->scripts = scripts;
    struct script *s = &scripts[c->n_scripts];
    s->body = strdup(body);
    if (s->body == NULL) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    memcpy(s->sha, name, 41);
    memcpy(sha, name, 41);
    c->n_scripts++;
    /* Nodes already connected have not seen it. */
    for (size_t i = 0; i < c->n_nodes; i++)
        c->nodes[i].scripts_loaded = false;
    return true;
}

long rcluster_append(struct rcluster *c, const char *key, size_t keylen, int argc,
                     const char **argv, const size_t *argvlen)
{
    if (c->n_cmds == c->cap_cmds) {
        size_t cap = c->cap_cmds ? c->cap_cmds * 2 : 64;
        struct cmd *cmds = realloc(c->cmds, cap * sizeof(*cmds));
        if (cmds == NULL)
            return -1;
        c->cmds = cmds;
        c->cap_cmds = cap;
    }
    struct cmd *cmd = &c->cmds[c->n_cmds];
    memset(cmd, 0, sizeof(*cmd));
    int len = redisFormatCommandArgv(&cmd->buf, argc, argv, argvlen);
    if (len < 0)
        return -1;
    cmd->len = (size_t)len;
    cmd->slot = rcluster_key_slot(key, keylen);
    cmd->ask_node = NO_NODE;
    return (long)c->n_cmds++;
}

static bool batch_push(struct node *n, size_t i)
{
    if (n->n_batch == n->cap_batch) {
        size_t cap = n->cap_batch ? n->cap_batch * 2 : 64;
        size_t *batch = realloc(n->batch, cap * sizeof(*batch));
        if (batch == NULL)
            return false;
        n->batch = batch;
        n->cap_batch = cap;
    }
    n->batch[n->n_batch++] = i;
    return true;
}

/* Groups the commands without a reply by the node that should get them this round. */
static void assign(struct rcluster *c)
{
    for (size_t n = 0; n < c->n_nodes; n++)
        c->nodes[n].n_batch = 0;
    for (size_t i = 0; i < c->n_cmds; i++) {
        struct cmd *cmd = &c->cmds[i];
        if (cmd->reply != NULL)
            continue;
        int n = cmd->ask_node != NO_NODE ? cmd->ask_node : c->slots[cmd->slot];
        if (n == NO_NODE) {
            snprintf(c->reason, sizeof(c->reason), "slot %d has no master", cmd->slot);
            c->need_refresh = true;
        } else if (!batch_push(&c->nodes[n], i)) {
            snprintf(c->reason, sizeof(c->reason), "out of memory");
        }
    }
}

static const char asking_cmd[] = "*1\r\n$6\r\nASKING\r\n";

/* Connects n if needed and writes its whole batch; false (batch emptied) on failure. */
static bool send_batch(struct rcluster *c, struct node *n)
{
    if (!node_connect(c, n) ||
        (c->n_scripts > 0 && !n->scripts_loaded && !node_load_scripts(c, n))) {
        n->n_batch = 0;
        return false;
    }
    for (size_t b = 0; b < n->n_batch; b++) {
        struct cmd *cmd = &c->cmds[n->batch[b]];
        cmd->asking = cmd->ask_node != NO_NODE;
        cmd->ask_node = NO_NODE;
        if (cmd->sent)
            c->stats.retries++;
        cmd->sent = true;
        if ((cmd->asking &&
             redisAppendFormattedCommand(n->ctx, asking_cmd, sizeof(asking_cmd) - 1) != REDIS_OK) ||
            redisAppendFormattedCommand(n->ctx, cmd->buf, cmd->len) != REDIS_OK) {
            node_failed(c, n, "queue");
            n->n_batch = 0;
            return false;
        }
    }
    int done = 0;
    while (!done) {
        if (redisBufferWrite(n->ctx, &done) != REDIS_OK) {
            node_failed(c, n, "write");
            n->n_batch = 0;
            return false;
        }
    }
    c->stats.round_trips++;
    c->stats.last_exec_round_trips++;
    return true;
}

static bool has_prefix(const redisReply *r, const char *prefix)
{
    size_t n = strlen(prefix);
    return r->len >= n && memcmp(r->str, prefix, n) == 0;
}

/* Files reply r of command cmd from node n: kept as final, or freed with the command left for
 * the next round. */
static void sort_reply(struct rcluster *c, struct node *n, struct cmd *cmd, redisReply *r)
{
    if (r->type != REDIS_REPLY_ERROR) {
        cmd->reply = r;
        return;
    }
    struct rcluster_redirect rd;
    enum rcluster_redirect_kind kind =
        c->addr.cluster ? rcluster_redirect_parse(r->str, r->len, n->ep.host, &rd)
                        : RCLUSTER_NO_REDIRECT;
    bool retry = true;
    if (kind == RCLUSTER_MOVED) {
        c->stats.moved++;
        int to = node_intern(c, &rd.to);
        if (to != NO_NODE)
            c->slots[rd.slot] = (int16_t)to;
        c->need_refresh = true;
    } else if (kind == RCLUSTER_ASK) {
        c->stats.ask++;
        cmd->ask_node = node_intern(c, &rd.to);
    } else if (has_prefix(r, "CLUSTERDOWN") || has_prefix(r, "READONLY") ||
               has_prefix(r, "MASTERDOWN")) {
        c->need_refresh = c->addr.cluster;
    } else if (has_prefix(r, "NOSCRIPT") && c->n_scripts > 0 && !cmd->noscript_retried) {
        cmd->noscript_retried = true;
        n->scripts_loaded = false;
    } else if (!has_prefix(r, "TRYAGAIN") && !has_prefix(r, "LOADING")) {
        retry = false;
    }
    if (!retry) {
        cmd->reply = r;
        return;
    }
    snprintf(c->reason, sizeof(c->reason), "%s:%d: %s", n->ep.host, n->ep.port, r->str);
    freeReplyObject(r);
}

/* Reads n's batch in order; stops at a lost connection, leaving the rest for the next round. */
static void read_batch(struct rcluster *c, struct node *n)
{
    for (size_t b = 0; b < n->n_batch; b++) {
        struct cmd *cmd = &c->cmds[n->batch[b]];
        redisReply *r = NULL;
        if (cmd->asking) {
            if (redisGetReply(n->ctx, (void **)&r) != REDIS_OK || r == NULL) {
                node_failed(c, n, "read");
                return;
            }
            /* ASKING answers OK; the command's own reply says how it went. */
            freeReplyObject(r);
            r = NULL;
        }
        if (redisGetReply(n->ctx, (void **)&r) != REDIS_OK || r == NULL) {
            node_failed(c, n, "read");
            return;
        }
        sort_reply(c, n, cmd, r);
    }
}

static size_t count_pending(const struct rcluster *c)
{
    size_t pending = 0;
    for (size_t i = 0; i < c->n_cmds; i++)
        pending += c->cmds[i].reply == NULL;
    return pending;
}

int rcluster_exec(struct rcluster *c, char *err, size_t errlen)
{
    c->stats.execs++;
    c->stats.last_exec_round_trips = 0;
    c->stats.last_exec_rounds = 0;
    c->reason[0] = '\0';
    for (int round = 0; round < MAX_ROUNDS && count_pending(c) > 0; round++) {
        if (c->addr.cluster && (!c->map_ok || c->need_refresh) && !refresh_cluster(c) && !c->map_ok)
            break;
        c->stats.last_exec_rounds++;
        assign(c);
        bool sent[MAX_NODES];
        size_t n_nodes = c->n_nodes; /* reading may name new nodes; they wait a round */
        for (size_t n = 0; n < n_nodes; n++)
            sent[n] = c->nodes[n].n_batch > 0 && send_batch(c, &c->nodes[n]);
        for (size_t n = 0; n < n_nodes; n++) {
            if (sent[n])
                read_batch(c, &c->nodes[n]);
        }
    }
    size_t pending = count_pending(c);
    if (pending == 0)
        return 0;
    c->stats.undelivered += pending;
    snprintf(err, errlen, "%zu of %zu commands not delivered: %s", pending, c->n_cmds,
             c->reason[0] ? c->reason : "no node reachable");
    return -1;
}

const redisReply *rcluster_reply(const struct rcluster *c, size_t i)
{
    return i < c->n_cmds ? c->cmds[i].reply : NULL;
}

redisReply *rcluster_reply_take(struct rcluster *c, size_t i)
{
    if (i >= c->n_cmds)
        return NULL;
    redisReply *r = c->cmds[i].reply;
    c->cmds[i].reply = NULL;
    return r;
}

redisReply *rcluster_command(struct rcluster *c, const char *key, size_t keylen, int argc,
                             const char **argv, const size_t *argvlen, char *err, size_t errlen)
{
    rcluster_reset(c);
    if (rcluster_append(c, key, keylen, argc, argv, argvlen) < 0) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    redisReply *r = rcluster_exec(c, err, errlen) == 0 ? rcluster_reply_take(c, 0) : NULL;
    rcluster_reset(c);
    return r;
}

int rcluster_masters(struct rcluster *c, struct hb_redis_addr *out, size_t max, char *err,
                     size_t errlen)
{
    if (c->addr.cluster && (!c->map_ok || c->need_refresh) && !refresh_cluster(c) && !c->map_ok) {
        snprintf(err, errlen, "%s", c->reason[0] ? c->reason : "no node answered");
        return -1;
    }
    bool seen[MAX_NODES] = {false};
    int n = 0;
    for (int s = 0; s < RCLUSTER_SLOTS; s++) {
        int idx = c->slots[s];
        if (idx == NO_NODE || seen[idx] || (size_t)n == max)
            continue;
        seen[idx] = true;
        node_addr(c, &c->nodes[idx], &out[n++]);
    }
    return n;
}

size_t rcluster_count(const struct rcluster *c)
{
    return c->n_cmds;
}

void rcluster_stats_get(const struct rcluster *c, struct rcluster_stats *out)
{
    *out = c->stats;
}
