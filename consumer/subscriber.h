/* The MQTT side of the consumer: one paho MQTTAsync client per broker, subscribed to the
 * heartbeat topics. Its message callback only validates and queues. */
#ifndef HB_SUBSCRIBER_H
#define HB_SUBSCRIBER_H

#include <stdbool.h>
#include <stddef.h>

#include "queue.h"
#include "stats.h"

struct subscriber_config {
    const char *const *brokers;
    size_t n_brokers;
    const char *topic_prefix;
    const char *share_group; /* NULL for a plain subscription */
    const char *client_id;   /* base; the broker index is appended when there are several */
    const char *username, *password;
    /* When set, the password is read from this file (one trailing newline stripped) at start
     * and again by subscriber_tick whenever the file changes; every connect and reconnect uses
     * the latest, so a renewed token is picked up without a restart. */
    const char *password_file;
    /* For ssl://, mqtts:// and wss:// brokers: CA certificates (PEM) that the broker's
     * certificate must chain to, or NULL for the system's trust store. The broker's name is
     * always verified against its certificate. */
    const char *ca_file;
    int interval_s;
    size_t payload_max;
    int keepalive_s;
};

/* The consumer's MQTT side, private to subscriber.c: its clients (with paho's handles) and the
 * one password copy are owned there and reached only through these functions. */
struct subscriber;

/* Creates the clients (nothing connects yet); cfg's strings, queue and stats are borrowed and
 * must outlive it. With a password_file, fails when the file cannot be read now. Returns NULL
 * after reporting why. */
struct subscriber *subscriber_create(const struct subscriber_config *cfg, struct queue *queue,
                                     struct stats *stats);

/* Starts or retries connections whose backoff has passed, and re-reads the password file when
 * it changed. Call it periodically from one thread (the main thread); it never blocks on the
 * network. */
void subscriber_tick(struct subscriber *s);

/* Number of clients (one per broker). */
size_t subscriber_count(const struct subscriber *s);

/* The broker URI of client i (i < subscriber_count), as given in the configuration. */
const char *subscriber_broker(const struct subscriber *s, size_t i);

/* Number of clients connected and subscribed. */
size_t subscriber_ready(struct subscriber *s);

/* Whether client i (the i-th broker) is connected and subscribed. Any thread may ask. */
bool subscriber_client_ready(struct subscriber *s, size_t i);

/* Disconnects (waiting up to timeout_ms for in-flight messages), destroys the clients and
 * frees s. After it returns no callback runs any more. NULL is a no-op. */
void subscriber_destroy(struct subscriber *s, int timeout_ms);

#endif
