/* Live viewer counts (--live): per media and per account, the devices whose heartbeat arrived
 * within a short window, published retained at QoS 1 on <prefix>/media/<media> as
 * {"media":M,"watching":N} and <prefix>/account/<account> as {"account":A,"watching":N}, at most
 * once a second per topic and only when the count changed, and every count again after each
 * new connection to the broker (which may have lost them). Runs on the writer thread. */
#ifndef HB_LIVE_H
#define HB_LIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "queue.h"

#define LIVE_PREFIX_DEFAULT "live"
#define LIVE_WINDOW_S_DEFAULT 15
#define LIVE_MAX_DEVICES_DEFAULT 1048576

struct live_config {
    const char *prefix;         /* topic prefix of the counts ("live") */
    int64_t window_ms;          /* a device counts while its last heartbeat is this recent */
    size_t max_devices;         /* devices tracked at most; past it the least recently seen goes */
    struct hb_control *control; /* borrowed publisher (the enforcer's), or NULL: own one */
    struct hb_control_config control_cfg; /* the own publisher's settings when control is NULL */
};

struct live_device;
struct live_topic;

struct live {
    char prefix[80];
    int64_t window_ms;
    size_t max_devices;
    struct hb_control *control;
    bool own_control;
    struct live_device *devices;         /* uthash by account/device */
    struct live_device *lru;             /* utlist, least recently seen first */
    struct live_topic *media, *accounts; /* uthash by name */
    struct live_topic *dirty;            /* utlist: count differs from what was published */
    int64_t next_sweep_ms;
    unsigned long connects; /* the publisher's connections when the counts were last re-sent */
    /* Read by /metrics on other threads. */
    atomic_ullong n_devices, n_topics, publishes, publish_failures, evictions, dropped;
};

/* Sets up the tables and, without a borrowed publisher, starts one (connecting in the
 * background). False after reporting why. */
bool live_init(struct live *l, const struct live_config *cfg);

/* Frees everything and stops an own publisher; safe on a zeroed struct. Counts not yet
 * published are lost (the retained values on the broker stay as they were). */
void live_finish(struct live *l);

/* Notes one heartbeat taken by the writer (its received_ms is the time seen): the device counts
 * for its account and its media ("" counts for the account only) until window_ms after it; a
 * "stopped" heartbeat removes it at once. A new device past max_devices evicts the least
 * recently seen one (counted). Never does I/O. */
void live_note(struct live *l, const struct queue_entry *e);

/* Expires devices not seen within the window and publishes the changed counts whose topic was
 * last published a second or more ago. Cheap when called often (it works at most every 100 ms,
 * now_ms being Unix ms like received_ms). A publish that fails is retried at a later tick; a
 * count of 0 that cannot be published while disconnected is forgotten (counted in dropped).
 * After the publisher connects again, every count above 0 is published again (a broker
 * restarted without persistence has none of them); zeros are not kept, so they are not. */
void live_tick(struct live *l, int64_t now_ms);

#endif
