/* paho MQTTAsync clients, one per broker. paho runs every callback on its one receive thread
 * with a global lock held, so on_message does nothing that can block: it validates topic and
 * payload, bins by the receive time and pushes a fixed-size entry into the bounded queue.
 * Lost connections are re-made by paho (automatic reconnect) and every (re)connect
 * resubscribes; a first connect that fails is retried from subscriber_tick with backoff. A
 * --password-file is read again before every connect, so a consumer token renewed in the file
 * is used the next time the broker cuts the old one off. */
#include "subscriber.h"

#include "heartbeat.h"
#include "interval.h"
#include "secretfile.h"
#include "token.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum sub_state { SUB_IDLE, SUB_CONNECTING, SUB_CONNECTED, SUB_SUBSCRIBED };

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define PASSWORD_FILE_MAX 16384

static void log_reject(struct subscriber *s, enum hb_reject reason, const char *topic,
                       size_t topic_len, size_t payload_len)
{
    long suppressed;
    if (!hb_ratelimit_allow(&s->reject_log, &suppressed))
        return;
    /* The topic is network input: print at most 80 bytes, non-printables as '?'. */
    char shown[81];
    size_t n = topic_len < 80 ? topic_len : 80;
    for (size_t i = 0; i < n; i++)
        shown[i] = (topic[i] >= 0x20 && topic[i] < 0x7f) ? topic[i] : '?';
    shown[n] = '\0';
    HB_WARN("rejected %s: topic '%s'%s payload %zu bytes%s", hb_reject_name(reason), shown,
            topic_len > 80 ? "..." : "", payload_len,
            suppressed ? " (earlier rejections suppressed)" : "");
}

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct sub_client *c = context;
    struct subscriber *s = c->owner;
    int64_t now = hb_now_ms();
    size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
    size_t plen = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;

    atomic_fetch_add_explicit(&s->stats->received, 1, memory_order_relaxed);
    struct hb_heartbeat hb;
    enum hb_reject reason = hb_topic_parse(s->cfg.topic_prefix, topic, tlen, &hb);
    if (reason == HB_OK)
        reason = hb_payload_check(m->payload, plen, s->cfg.payload_max, &hb.sent_ms);
    if (reason == HB_OK && m->retained)
        reason = HB_REJECT_RETAINED;
    if (reason == HB_OK)
        hb.seq = hb_payload_seq(m->payload, plen);

    if (reason != HB_OK) {
        stats_reject(s->stats, reason);
        log_reject(s, reason, topic, tlen, plen);
    } else {
        struct queue_entry e;
        e.interval_start = hb_interval_start(now, s->interval_ms);
        e.received_ms = now;
        e.seq = hb.seq;
        memcpy(e.account, hb.account, sizeof(e.account));
        memcpy(e.device, hb.device, sizeof(e.device));
        if (queue_push(s->queue, &e))
            atomic_fetch_add_explicit(&s->stats->accepted, 1, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&s->stats->dropped, 1, memory_order_relaxed);
        /* A ts more than a minute off is a wrong sender clock, not a latency. */
        if (hb.sent_ms >= 0 && now - hb.sent_ms <= 60000 && hb.sent_ms - now <= 1000)
            stats_latency(s->stats, now - hb.sent_ms);
    }
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_subscribed(void *context, MQTTAsync_successData *response)
{
    struct sub_client *c = context;
    if (response != NULL && response->alt.qos == 0x80) {
        HB_ERROR("mqtt %s: subscription to %s refused by the broker", c->uri, c->owner->filter);
        return;
    }
    atomic_store(&c->state, SUB_SUBSCRIBED);
    HB_INFO("mqtt %s: subscribed to %s", c->uri, c->owner->filter);
}

static void on_subscribe_failed(void *context, MQTTAsync_failureData *response)
{
    struct sub_client *c = context;
    HB_ERROR("mqtt %s: subscribe to %s failed: code %d %s", c->uri, c->owner->filter,
             response ? response->code : 0,
             response && response->message ? response->message : "");
}

/* Reads the password file into c->password, saying so when it changed. When it cannot be read
 * (after a warning) the last password is kept. Call with password_lock held. */
static void password_reload(struct sub_client *c)
{
    const char *path = c->owner->cfg.password_file;
    char err[256], *text;
    size_t len;
    if (!hb_secret_file_read(path, PASSWORD_FILE_MAX, &text, &len, err, sizeof(err))) {
        HB_WARN("mqtt %s: --password-file %s; keeping the password read before", c->uri, err);
        return;
    }
    len = hb_secret_trim_newline(text, len);
    text[len] = '\0';
    if (c->password != NULL && (len != c->password_len || memcmp(text, c->password, len) != 0))
        HB_INFO("mqtt %s: reconnecting with the renewed password from %s", c->uri, path);
    hb_secret_free(c->password, c->password_len + 1);
    c->password = text;
    c->password_len = len;
}

/* The password file's current contents, re-read now, in a NUL-terminated copy from alloc
 * (NULL when it was never readable). Both this thread's connects and paho's reconnects call
 * it, hence the lock, which is never held across a paho call. */
static char *password_copy(struct sub_client *c, void *(*alloc)(size_t), size_t *len)
{
    pthread_mutex_lock(&c->password_lock);
    password_reload(c);
    char *copy = c->password ? alloc(c->password_len + 1) : NULL;
    if (copy != NULL) {
        memcpy(copy, c->password, c->password_len + 1);
        *len = c->password_len;
    }
    pthread_mutex_unlock(&c->password_lock);
    return copy;
}

static void log_token_expiry(const struct sub_client *c, const char *password, size_t len)
{
    int64_t exp;
    if (password == NULL || !hb_token_peek_exp(password, len, &exp))
        return;
    int64_t left = exp - hb_now_ms() / 1000;
    if (left > 0)
        HB_INFO("mqtt %s: the password is a token that expires in %" PRId64 " s", c->uri, left);
    else
        HB_WARN("mqtt %s: the password is a token that expired %" PRId64 " s ago; renew it%s",
                c->uri, -left, c->owner->cfg.password_file ? " in the --password-file" : "");
}

/* paho calls this before every automatic reconnect, on its own thread. */
static int on_reconnecting(void *context, MQTTAsync_connectData *data)
{
    struct sub_client *c = context;
    size_t len;
    char *copy = password_copy(c, MQTTAsync_malloc, &len);
    if (copy == NULL)
        return 0;
    log_token_expiry(c, copy, len);
    /* paho frees the previous password and takes ownership of this copy. */
    data->binarypwd.data = copy;
    data->binarypwd.len = (int)len;
    return 1;
}

/* Called by paho after the first connect and after every automatic reconnect. */
static void on_connected(void *context, char *cause)
{
    struct sub_client *c = context;
    atomic_store(&c->state, SUB_CONNECTED);
    c->backoff_ms = BACKOFF_MIN_MS;
    HB_INFO("mqtt %s: connected as %s", c->uri, c->client_id);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribed;
    ro.onFailure = on_subscribe_failed;
    ro.context = c;
    int rc = MQTTAsync_subscribe(c->handle, c->owner->filter, 1, &ro);
    if (rc != MQTTASYNC_SUCCESS)
        HB_ERROR("mqtt %s: subscribe: %s", c->uri, MQTTAsync_strerror(rc));
}

static void on_connection_lost(void *context, char *cause)
{
    struct sub_client *c = context;
    atomic_store(&c->state, SUB_CONNECTING);
    HB_WARN("mqtt %s: connection lost (%s); reconnecting", c->uri, cause ? cause : "no cause");
}

static void on_connect_failed(void *context, MQTTAsync_failureData *response)
{
    struct sub_client *c = context;
    HB_WARN("mqtt %s: connect failed: %s; retrying in %d ms", c->uri,
            response && response->message ? response->message
                                          : MQTTAsync_strerror(response ? response->code : -1),
            c->backoff_ms);
    atomic_store(&c->retry_at, hb_monotonic_ms() + c->backoff_ms);
    c->backoff_ms = c->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : c->backoff_ms * 2;
    atomic_store(&c->state, SUB_IDLE);
}

/* Whether paho will speak TLS to this broker. */
static bool uri_is_tls(const char *uri)
{
    return strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0 ||
           strncmp(uri, "wss://", 6) == 0;
}

/* OpenSSL's reasons for a failed handshake (an unknown CA, a wrong name), on paho's thread. */
static int on_tls_error(const char *str, size_t len, void *context)
{
    struct sub_client *c = context;
    int n = len > 300 ? 300 : (int)len;
    while (n > 0 && (str[n - 1] == '\n' || str[n - 1] == '\r'))
        n--;
    HB_WARN("mqtt %s: TLS: %.*s", c->uri, n, str);
    return 1;
}

static void start_connect(struct sub_client *c)
{
    const struct subscriber_config *cfg = &c->owner->cfg;
    MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
    opts.keepAliveInterval = cfg->keepalive_s;
    opts.cleansession = 1;
    opts.automaticReconnect = 1;
    opts.minRetryInterval = 1;
    opts.maxRetryInterval = 10;
    opts.connectTimeout = 10;
    opts.username = cfg->username;
    opts.password = cfg->password;
    char *from_file = NULL;
    size_t from_file_len = 0;
    if (cfg->password_file != NULL)
        opts.password = from_file = password_copy(c, malloc, &from_file_len);
    if (opts.password != NULL)
        log_token_expiry(c, opts.password, strlen(opts.password));
    opts.onFailure = on_connect_failed;
    opts.context = c;
    MQTTAsync_SSLOptions tls = MQTTAsync_SSLOptions_initializer;
    if (uri_is_tls(c->uri)) {
        tls.trustStore = cfg->ca_file;
        tls.enableServerCertAuth = 1;
        tls.verify = 1; /* the certificate must name the host of the URI */
        tls.ssl_error_cb = on_tls_error;
        tls.ssl_error_context = c;
        opts.ssl = &tls;
    }
    atomic_store(&c->state, SUB_CONNECTING);
    int rc = MQTTAsync_connect(c->handle, &opts); /* paho copies the password */
    hb_secret_free(from_file, from_file_len + 1);
    if (rc != MQTTASYNC_SUCCESS) {
        HB_WARN("mqtt %s: connect: %s", c->uri, MQTTAsync_strerror(rc));
        atomic_store(&c->retry_at, hb_monotonic_ms() + c->backoff_ms);
        atomic_store(&c->state, SUB_IDLE);
    }
}

static bool client_create(struct subscriber *s, size_t i)
{
    struct sub_client *c = &s->clients[i];
    c->owner = s;
    c->uri = s->cfg.brokers[i];
    c->backoff_ms = BACKOFF_MIN_MS;
    pthread_mutex_init(&c->password_lock, NULL);
    if (s->cfg.n_brokers > 1)
        snprintf(c->client_id, sizeof(c->client_id), "%s-%zu", s->cfg.client_id, i);
    else
        snprintf(c->client_id, sizeof(c->client_id), "%s", s->cfg.client_id);

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    int rc = MQTTAsync_createWithOptions(&c->handle, c->uri, c->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        HB_ERROR("mqtt %s: cannot create client: %s", c->uri, MQTTAsync_strerror(rc));
        pthread_mutex_destroy(&c->password_lock);
        return false;
    }
    rc = MQTTAsync_setCallbacks(c->handle, c, on_connection_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setConnected(c->handle, c, on_connected);
    if (rc == MQTTASYNC_SUCCESS && s->cfg.password_file != NULL)
        rc = MQTTAsync_setUpdateConnectOptions(c->handle, c, on_reconnecting);
    if (rc != MQTTASYNC_SUCCESS) {
        HB_ERROR("mqtt %s: cannot set callbacks: %s", c->uri, MQTTAsync_strerror(rc));
        MQTTAsync_destroy(&c->handle);
        pthread_mutex_destroy(&c->password_lock);
        return false;
    }
    return true;
}

bool subscriber_init(struct subscriber *s, const struct subscriber_config *cfg,
                     struct queue *queue, struct stats *stats)
{
    memset(s, 0, sizeof(*s));
    s->cfg = *cfg;
    s->queue = queue;
    s->stats = stats;
    s->interval_ms = (int64_t)cfg->interval_s * 1000;
    s->reject_log.burst = 10;
    s->reject_log.window_ms = 10000;
    if (cfg->share_group)
        snprintf(s->filter, sizeof(s->filter), "$share/%s/%s/+/+", cfg->share_group,
                 cfg->topic_prefix);
    else
        snprintf(s->filter, sizeof(s->filter), "%s/+/+", cfg->topic_prefix);
    if (cfg->password_file != NULL) {
        char err[256], *text;
        size_t len;
        if (!hb_secret_file_read(cfg->password_file, PASSWORD_FILE_MAX, &text, &len, err,
                                 sizeof(err))) {
            HB_ERROR("--password-file %s", err);
            return false;
        }
        hb_secret_free(text, len + 1);
    }
    for (size_t i = 0; i < cfg->n_brokers; i++) {
        if (!client_create(s, i)) {
            subscriber_finish(s, 0);
            return false;
        }
        s->n_clients = i + 1;
    }
    return true;
}

void subscriber_tick(struct subscriber *s)
{
    int64_t now = hb_monotonic_ms();
    for (size_t i = 0; i < s->n_clients; i++) {
        struct sub_client *c = &s->clients[i];
        if (atomic_load(&c->state) == SUB_IDLE && now >= atomic_load(&c->retry_at))
            start_connect(c);
    }
}

bool subscriber_client_ready(struct subscriber *s, size_t i)
{
    return i < s->n_clients && atomic_load(&s->clients[i].state) == SUB_SUBSCRIBED;
}

size_t subscriber_ready(struct subscriber *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n_clients; i++)
        n += subscriber_client_ready(s, i);
    return n;
}

void subscriber_finish(struct subscriber *s, int timeout_ms)
{
    for (size_t i = 0; i < s->n_clients; i++) {
        struct sub_client *c = &s->clients[i];
        if (MQTTAsync_isConnected(c->handle)) {
            MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
            d.timeout = timeout_ms;
            MQTTAsync_disconnect(c->handle, &d);
        }
    }
    /* Wait for the disconnects so no message callback runs after we return. */
    int64_t deadline = hb_monotonic_ms() + timeout_ms;
    for (size_t i = 0; i < s->n_clients; i++) {
        while (MQTTAsync_isConnected(s->clients[i].handle) && hb_monotonic_ms() < deadline) {
            struct timespec ts = {0, 10 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    for (size_t i = 0; i < s->n_clients; i++) {
        MQTTAsync_destroy(&s->clients[i].handle);
        hb_secret_free(s->clients[i].password, s->clients[i].password_len + 1);
        s->clients[i].password = NULL;
        pthread_mutex_destroy(&s->clients[i].password_lock);
    }
    s->n_clients = 0;
}
