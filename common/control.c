/* The stop publisher on libmosquitto's own network thread (mosquitto_loop_start). Connection
 * state is an atomic the callbacks set; a stop asked while disconnected is refused at once
 * rather than queued, so a broker outage never grows memory. */
#include "control.h"

#include "ids.h"
#include "log.h"
#include "secretfile.h"

#include <mosquitto.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CONTROL_KEEPALIVE_S 30
#define CONTROL_HOST_MAX 256
#define CONTROL_PASSWORD_MAX 16384

struct hb_control {
    struct mosquitto *mosq;
    char prefix[80];
    hb_control_password_fn password;
    void *password_ud;
    char username[256];
    const char *password_file, *password_text; /* the caller's, outliving c */
    atomic_bool connected;
    atomic_bool closing; /* hb_control_destroy runs: no reconnect, no warning */
    atomic_ullong published, failed;
    atomic_ulong connects; /* successful connections */
    bool started;
};

static atomic_int lib_users;

/* host and port of a broker address. */
static bool parse_broker(const char *uri, char *host, size_t hostlen, int *port)
{
    const char *p = uri;
    if (strncmp(p, "tcp://", 6) == 0)
        p += 6;
    else if (strncmp(p, "mqtt://", 7) == 0)
        p += 7;
    else if (strstr(p, "://") != NULL)
        return false;
    const char *colon = strrchr(p, ':');
    if (colon == NULL || colon == p || (size_t)(colon - p) >= hostlen)
        return false;
    char *end = NULL;
    long n = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end != '\0' || n < 1 || n > 65535)
        return false;
    memcpy(host, p, (size_t)(colon - p));
    host[colon - p] = '\0';
    *port = (int)n;
    return true;
}

/* The password of the next connect when no callback gives it: the file (re-read every time,
 * its last newline dropped) or the fixed text. malloc'd, or NULL. */
static char *configured_password(void *ud)
{
    struct hb_control *c = ud;
    if (c->password_file != NULL) {
        char *text = NULL, err[256];
        size_t len = 0;
        if (!hb_secret_file_read(c->password_file, CONTROL_PASSWORD_MAX, &text, &len, err,
                                 sizeof(err))) {
            HB_WARN("control: password file %s", err);
            return NULL;
        }
        text[hb_secret_trim_newline(text, len)] = '\0';
        return text;
    }
    return c->password_text != NULL ? strdup(c->password_text) : NULL;
}

/* Sets the password for the next connect; the token is wiped after libmosquitto copied it. */
static void refresh_password(struct hb_control *c)
{
    char *token = c->password != NULL ? c->password(c->password_ud) : configured_password(c);
    if (token == NULL)
        return;
    if (mosquitto_username_pw_set(c->mosq, c->username, token) != MOSQ_ERR_SUCCESS)
        HB_WARN("control: cannot set the broker password");
    memset(token, 0, strlen(token));
    free(token);
}

static void on_connect(struct mosquitto *mosq, void *ud, int rc)
{
    struct hb_control *c = ud;
    if (rc == 0) {
        atomic_fetch_add(&c->connects, 1);
        atomic_store(&c->connected, true);
        HB_INFO("control: connected to the broker");
    } else {
        HB_WARN("control: broker refused the connection: %s", mosquitto_connack_string(rc));
        refresh_password(c);
    }
}

static void on_disconnect(struct mosquitto *mosq, void *ud, int rc)
{
    struct hb_control *c = ud;
    bool was = atomic_exchange(&c->connected, false);
    if (atomic_load(&c->closing))
        return;
    if (was)
        HB_WARN("control: disconnected from the broker (%s); reconnecting", mosquitto_strerror(rc));
    refresh_password(c); /* the loop thread reconnects next, with it */
}

struct hb_control *hb_control_create(const struct hb_control_config *cfg, char *err, size_t errlen)
{
    char host[CONTROL_HOST_MAX];
    int port = 0;
    if (!parse_broker(cfg->broker, host, sizeof(host), &port)) {
        snprintf(err, errlen, "broker '%.80s': expected tcp://HOST:PORT", cfg->broker);
        return NULL;
    }
    if (cfg->prefix == NULL || strlen(cfg->prefix) >= sizeof(((struct hb_control *)0)->prefix)) {
        snprintf(err, errlen, "control prefix too long");
        return NULL;
    }
    struct hb_control *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (atomic_fetch_add(&lib_users, 1) == 0)
        mosquitto_lib_init();
    snprintf(c->prefix, sizeof(c->prefix), "%s", cfg->prefix);
    c->password = cfg->password;
    c->password_ud = cfg->password_ud;
    c->password_file = cfg->password_file;
    c->password_text = cfg->password_text;
    snprintf(c->username, sizeof(c->username), "%s", cfg->username ? cfg->username : "hb-api");
    c->mosq = mosquitto_new(cfg->client_id, true, c);
    if (c->mosq == NULL) {
        snprintf(err, errlen, "mosquitto_new failed");
        hb_control_destroy(c);
        return NULL;
    }
    mosquitto_connect_callback_set(c->mosq, on_connect);
    mosquitto_disconnect_callback_set(c->mosq, on_disconnect);
    mosquitto_reconnect_delay_set(c->mosq, 1, 10, true);
    refresh_password(c);
    int rc = mosquitto_connect_async(c->mosq, host, port, CONTROL_KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_ERRNO) {
        snprintf(err, errlen, "cannot connect to %s:%d: %s", host, port, mosquitto_strerror(rc));
        hb_control_destroy(c);
        return NULL;
    }
    if (mosquitto_loop_start(c->mosq) != MOSQ_ERR_SUCCESS) {
        snprintf(err, errlen, "cannot start the MQTT thread");
        hb_control_destroy(c);
        return NULL;
    }
    c->started = true;
    return c;
}

bool hb_control_publish(struct hb_control *c, const char *topic, const void *payload, size_t len,
                        bool retain)
{
    if (!atomic_load(&c->connected) || len > INT32_MAX)
        return false;
    return mosquitto_publish(c->mosq, NULL, topic, (int)len, payload, 1, retain) ==
           MOSQ_ERR_SUCCESS;
}

bool hb_control_stop(struct hb_control *c, const char *account, const char *device,
                     const char *reason)
{
    if (!hb_id_valid(account, strlen(account)) || !hb_id_valid(device, strlen(device)) ||
        !atomic_load(&c->connected)) {
        atomic_fetch_add(&c->failed, 1);
        return false;
    }
    char topic[80 + 2 * HB_ID_MAX + 3], payload[96];
    snprintf(topic, sizeof(topic), "%s/%s/%s", c->prefix, account, device);
    int len = snprintf(payload, sizeof(payload), "{\"action\":\"stop\",\"reason\":\"%s\"}", reason);
    if (!hb_control_publish(c, topic, payload, (size_t)len, false)) {
        atomic_fetch_add(&c->failed, 1);
        return false;
    }
    atomic_fetch_add(&c->published, 1);
    return true;
}

unsigned long hb_control_connects(const struct hb_control *c)
{
    return atomic_load(&c->connects);
}

bool hb_control_connected(const struct hb_control *c)
{
    return atomic_load(&c->connected);
}

unsigned long long hb_control_published(const struct hb_control *c)
{
    return atomic_load(&c->published);
}

unsigned long long hb_control_failed(const struct hb_control *c)
{
    return atomic_load(&c->failed);
}

void hb_control_destroy(struct hb_control *c)
{
    if (c == NULL)
        return;
    if (c->mosq != NULL) {
        if (c->started) {
            atomic_store(&c->closing, true);
            mosquitto_disconnect(c->mosq);
            mosquitto_loop_stop(c->mosq, false);
        }
        mosquitto_destroy(c->mosq);
    }
    free(c);
    if (atomic_fetch_sub(&lib_users, 1) == 1)
        mosquitto_lib_cleanup();
}
