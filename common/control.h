/* Stops pushed to devices over MQTT: {"action":"stop","reason":R} on
 * <control prefix>/<account>/<device>, QoS 1. libmosquitto runs the connection on its own
 * thread, so publishing never waits for the network; the password (a token) is asked of the
 * caller again before every reconnect, so an expired token is replaced by itself. */
#ifndef HB_CONTROL_H
#define HB_CONTROL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#define HB_CONTROL_PREFIX_DEFAULT "ctl"

/* Returns a malloc'd password for the next connect (the caller's token), or NULL (the
 * connect then goes without one). Runs on the connection thread. */
typedef char *(*hb_control_password_fn)(void *ud);

struct hb_control_config {
    const char *broker;    /* tcp://host:port, mqtt://host:port or host:port (no TLS yet) */
    const char *client_id; /* unique per process */
    const char *prefix;    /* control topic prefix, e.g. "ctl" */
    const char *username;  /* NULL: "hb-api" */
    /* The password: from the callback when set (hb-api mints a token); else read from
     * password_file again before every connect (a renewed token needs no restart); else the
     * fixed password_text; else none. */
    hb_control_password_fn password;
    void *password_ud;
    const char *password_file;
    const char *password_text;
};

struct hb_control;

/* Starts connecting in the background. NULL with a reason in err on bad settings or when
 * libmosquitto cannot start; a broker that is down is not an error (it is retried). */
struct hb_control *hb_control_create(const struct hb_control_config *cfg, char *err, size_t errlen);

/* Queues a stop for account/device (ids; reason one of "evicted", "released",
 * "account_limit", "group_limit"). True when handed to libmosquitto (connected); false when
 * not connected or the ids are invalid: the stop is then lost and counted as failed. */
bool hb_control_stop(struct hb_control *c, const char *account, const char *device,
                     const char *reason);

/* Publishes payload[0..len) on topic (concrete, at most 255 bytes) at QoS 1, retained when
 * retain is set: the generic form of hb_control_stop for other producers (the consumer's live
 * counts). True when handed to libmosquitto; false when not connected or refused, and the
 * message is then lost (the caller counts and retries if it matters). Never counted in
 * hb_control_published or hb_control_failed, which are the stops'. */
bool hb_control_publish(struct hb_control *c, const char *topic, const void *payload, size_t len,
                        bool retain);

/* True while connected to the broker. */
bool hb_control_connected(const struct hb_control *c);

/* Connections the broker accepted since creation. A new one means the broker may have been
 * restarted and lost what was retained (a broker without persistence does). */
unsigned long hb_control_connects(const struct hb_control *c);

/* Stops published and stops that could not be, since creation. */
unsigned long long hb_control_published(const struct hb_control *c);
unsigned long long hb_control_failed(const struct hb_control *c);

/* Disconnects and stops the thread. NULL is a no-op. */
void hb_control_destroy(struct hb_control *c);

#endif
