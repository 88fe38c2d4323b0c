/* Admission state in Redis: who is playing on an account, and the account's limits. Shared by
 * hb-api (admit, release, read, set limits) and hb-consumer (touch, at ingest).
 *
 * Keys, both hash-tagged by account so Redis Cluster keeps them in one slot:
 *   hb:plays:{<account>}   hash  device -> "<since ms>|<last_seen ms>|<group>|<media>"
 *                                expires 2 grace periods after its last write, so an account
 *                                nobody plays on leaves nothing behind
 *   hb:limits:{<account>}  hash  devices -> N, policy -> block_new|evict_oldest, g:<group> -> N
 *                                (only when set by hb_plays_set_limits; no TTL)
 *   hb:ingest:{<account>}  hash  device -> 1 for devices the consumer admitted on their
 *                                heartbeat (hb_plays_touch); expires with hb:plays
 * Every decision is one Lua script run with EVALSHA (EVAL after NOSCRIPT), so counting,
 * evicting and admitting are one atomic step whichever instance runs it. Each script first
 * drops entries whose last_seen is older than the grace period: a device that stopped
 * heartbeating frees its slot by itself. Times are Redis's own clock (TIME) unless the caller
 * passes one, so instances with skewed clocks still agree. */
#ifndef HB_PLAYS_H
#define HB_PLAYS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "rcluster.h"

#define HB_PLAYS_GROUPS_MAX 16   /* group limits per account */
#define HB_PLAYS_LIMIT_MAX 10000 /* largest device limit */
#define HB_PLAYS_TOUCH_MAX 1000  /* reports in one hb_plays_touch */

enum hb_play_policy { HB_POLICY_BLOCK_NEW, HB_POLICY_EVICT_OLDEST };

/* "block_new" / "evict_oldest"; parse returns false for anything else. */
const char *hb_play_policy_name(enum hb_play_policy p);
bool hb_play_policy_parse(const char *name, enum hb_play_policy *out);

/* One active device. group and media are "" when not given. */
struct hb_play {
    char device[HB_ID_MAX + 1];
    int64_t since_ms, last_seen_ms;
    char group[HB_ID_MAX + 1];
    char media[HB_ID_MAX + 1];
};

struct hb_group_limit {
    char group[HB_ID_MAX + 1];
    long devices;
};

/* The limits in force for an account. */
struct hb_limits {
    long devices; /* 0..HB_PLAYS_LIMIT_MAX */
    enum hb_play_policy policy;
    size_t n_groups;
    struct hb_group_limit groups[HB_PLAYS_GROUPS_MAX];
};

/* What every script needs besides the account. */
struct hb_plays_config {
    struct hb_limits defaults; /* for accounts without their own (n_groups ignored) */
    int64_t grace_ms;          /* an entry not seen for longer is gone */
};

enum hb_admit_decision {
    HB_ADMIT_OK,
    HB_ADMIT_ACCOUNT_LIMIT, /* refused: the account is at its limit (policy block_new) */
    HB_ADMIT_GROUP_LIMIT,   /* refused: the device's group is at its limit */
};

/* "ok", "account_limit", "group_limit". */
const char *hb_admit_decision_name(enum hb_admit_decision d);

/* The outcome of an admission or a read. Arrays are owned (hb_admission_finish). */
struct hb_admission {
    enum hb_admit_decision decision;
    bool again;             /* the device was already active: refreshed, not counted twice */
    long limit;             /* the account's device limit in force */
    int64_t now_ms;         /* Redis's time of the decision */
    struct hb_play *active; /* after the decision, oldest first */
    size_t n_active;
    char (*evicted)[HB_ID_MAX + 1]; /* devices removed to make room, oldest first */
    size_t n_evicted;
};

void hb_admission_finish(struct hb_admission *a);

/* Asks whether device may play on account (group, media: "" or NULL when not given; all ids).
 * Prunes stale entries; an active device is refreshed (last_seen = now, media updated) and
 * admitted again; otherwise it is admitted when the group and account limits allow, or, with
 * policy evict_oldest, after evicting the oldest devices (of the group first) that stand in the
 * way; else refused. Nothing is written on a refusal. now_ms 0 means Redis's clock. Returns 0
 * with out filled, or -1 with a reason in err (invalid id, Redis or protocol error). */
int hb_plays_admit(struct rcluster *c, const struct hb_plays_config *cfg, const char *account,
                   const char *device, const char *group, const char *media, int64_t now_ms,
                   struct hb_admission *out, char *err, size_t errlen);

/* The text of the script hb_plays_admit runs (KEYS: plays key, limits key; ARGV: device, group,
 * media, now ms or 0, grace ms, default limit, default policy), for tools that run the same
 * atomic step themselves (the benchmark's Node.js peer and redis-benchmark). Static. */
const char *hb_plays_admit_script(void);

/* Frees device's slot at once. Returns 1 when it was active, 0 when not, -1 with a reason. */
int hb_plays_release(struct rcluster *c, const char *account, const char *device, char *err,
                     size_t errlen);

/* The active devices (stale ones pruned) and the limits in force: the account's own, or the
 * defaults (*custom false). out->decision is HB_ADMIT_OK. 0, or -1 with a reason. */
int hb_plays_get(struct rcluster *c, const struct hb_plays_config *cfg, const char *account,
                 int64_t now_ms, struct hb_admission *out, struct hb_limits *limits, bool *custom,
                 char *err, size_t errlen);

/* Replaces the account's limits (all of them, atomically). 0, or -1 with a reason (also when
 * limits is out of range: devices or a group limit above HB_PLAYS_LIMIT_MAX, a group that is
 * not an id, more than HB_PLAYS_GROUPS_MAX groups). */
int hb_plays_set_limits(struct rcluster *c, const char *account, const struct hb_limits *limits,
                        char *err, size_t errlen);

/* One device's heartbeat as the consumer saw it. */
struct hb_touch_report {
    const char *device;
    bool stopped;              /* the heartbeat said "state":"stopped" */
    int64_t start_ms;          /* when it says it started playing; 0 when unknown */
    const char *group, *media; /* "" or NULL when unknown */
};

/* What the touch did: device names borrowed from the reports. Arrays owned. */
struct hb_touch_result {
    const char **released; /* stopped devices that held a slot */
    size_t n_released;
    const char **admitted; /* heartbeating devices admitted now, for lack of an admission */
    size_t n_admitted;
    const char **stop; /* devices refused, or that gave way: they must receive a stop */
    enum hb_admit_decision *stop_reason;
    size_t n_stop;
    char (*displaced)[HB_ID_MAX + 1]; /* names of stop not among the reports (gave way) */
    size_t n_displaced;
    size_t n_refreshed; /* admitted devices whose last_seen moved to now */
};

void hb_touch_result_finish(struct hb_touch_result *r);

/* The consumer's ingest for one account and one batch (n reports, at most
 * HB_PLAYS_TOUCH_MAX; a device's last report wins). Prunes stale entries, then: a stopped
 * device is released; an admitted one is refreshed; the others are admitted while the limits
 * allow, earliest reported start first (no start: last; ties by device id), and the rest are
 * reported in stop. A device admitted this way (marked in hb:ingest:{<account>}) gives way to
 * a pending device that reports an earlier start, and is reported in stop with the limit's
 * reason; a device admitted by hb_plays_admit never does. So after a loss of all admission
 * data the devices that started last are the ones stopped, in whatever order and batches
 * their heartbeats come, and no account ever exceeds its limit. now_ms 0 means Redis's
 * clock. 0, or -1 with a reason. */
int hb_plays_touch(struct rcluster *c, const struct hb_plays_config *cfg, const char *account,
                   const struct hb_touch_report *reports, size_t n, int64_t now_ms,
                   struct hb_touch_result *out, char *err, size_t errlen);

/* The same step split for a pipeline on c: append queues the script for one account
 * (EVALSHA; register hb_plays_touch_script() on c with rcluster_script_add first, so a node
 * that lacks it loads it), then rcluster_exec, then read takes the reply of the command whose
 * index append returned, with the same reports (the result borrows their names).
 * append: the index, or -1 with a reason (invalid input, nothing queued). read: 0 with out
 * filled; -1 on an error reply or a malformed one; -2 when it was not delivered. */
const char *hb_plays_touch_script(void);
long hb_plays_touch_append(struct rcluster *c, const struct hb_plays_config *cfg,
                           const char *account, const struct hb_touch_report *reports, size_t n,
                           int64_t now_ms, char *err, size_t errlen);
int hb_plays_touch_read(struct rcluster *c, long index, const struct hb_touch_report *reports,
                        size_t n, struct hb_touch_result *out, char *err, size_t errlen);

#endif
