/* The MQTT side of the consumer: one paho MQTTAsync client per broker, subscribed to the
 * heartbeat topics. Its message callback only validates and queues. */
#ifndef HB_SUBSCRIBER_H
#define HB_SUBSCRIBER_H

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "log.h"
#include "queue.h"
#include "stats.h"

struct subscriber_config {
    const char *const *brokers;
    size_t n_brokers;
    const char *topic_prefix;
    const char *share_group; /* NULL for a plain subscription */
    const char *client_id;   /* base; the broker index is appended when there are several */
    const char *username, *password;
    /* When set, the password is read from this file before every connect and reconnect (one
     * trailing newline stripped), so a renewed token is picked up without a restart. */
    const char *password_file;
    /* For ssl://, mqtts:// and wss:// brokers: CA certificates (PEM) that the broker's
     * certificate must chain to, or NULL for the system's trust store. The broker's name is
     * always verified against its certificate. */
    const char *ca_file;
    int interval_s;
    size_t payload_max;
    int keepalive_s;
};

struct subscriber;

/* One broker connection. */
struct sub_client {
    struct subscriber *owner;
    MQTTAsync handle;
    const char *uri;
    char client_id[128];
    atomic_int state;          /* enum sub_state in subscriber.c */
    _Atomic int64_t retry_at;  /* monotonic ms of the next connect attempt */
    int backoff_ms;
    /* Last read from cfg.password_file (wiped when replaced), to log renewals. Read by this
     * thread's connects and by paho's reconnects, hence the lock (never held across a paho
     * call: paho calls back with its own lock held). */
    pthread_mutex_t password_lock;
    char *password;
    size_t password_len;
};

struct subscriber {
    struct subscriber_config cfg;
    struct queue *queue;
    struct stats *stats;
    char filter[192];   /* the subscription, e.g. $share/hb-consumers/hb/+/+ */
    int64_t interval_ms;
    struct hb_ratelimit reject_log;
    struct sub_client clients[HB_BROKERS_MAX];
    size_t n_clients;
};

/* Creates the clients (nothing connects yet). queue and stats are borrowed. With a
 * password_file, fails when the file cannot be read now. */
bool subscriber_init(struct subscriber *s, const struct subscriber_config *cfg,
                     struct queue *queue, struct stats *stats);

/* Starts or retries connections whose backoff has passed. Call it periodically from the main
 * thread; it never blocks. */
void subscriber_tick(struct subscriber *s);

/* Number of clients connected and subscribed. */
size_t subscriber_ready(struct subscriber *s);

/* Whether client i (the i-th broker) is connected and subscribed. Any thread may ask. */
bool subscriber_client_ready(struct subscriber *s, size_t i);

/* Disconnects (waiting up to timeout_ms for in-flight messages) and destroys the clients. After
 * it returns no callback runs any more. */
void subscriber_finish(struct subscriber *s, int timeout_ms);

#endif
