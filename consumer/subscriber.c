/* paho MQTTAsync clients, one per broker. paho runs every callback on its one receive thread
 * with a global lock held, so no callback blocks: on_message validates topic and payload, bins
 * by the receive time and pushes a fixed-size entry into the bounded queue, and the reconnect
 * callback only copies the current password. Lost connections are re-made by paho (automatic
 * reconnect) and every (re)connect resubscribes; a first connect that fails is retried from
 * subscriber_tick with backoff. The password has one owner, the subscriber: only the main
 * thread replaces it (re-reading --password-file when the file changes), under a lock, and
 * every connect takes its own copy under that lock. */
#include "subscriber.h"

#include "config.h"
#include "heartbeat.h"
#include "interval.h"
#include "jwtparts.h"
#include "log.h"
#include "secretfile.h"

#include <MQTTAsync.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

enum sub_state { SUB_IDLE, SUB_CONNECTING, SUB_CONNECTED, SUB_SUBSCRIBED };

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define PASSWORD_FILE_MAX 16384

/* One broker connection. */
struct sub_client {
    struct subscriber *owner;
    MQTTAsync handle;
    const char *uri;
    char client_id[128];
    atomic_int state;         /* enum sub_state */
    _Atomic int64_t retry_at; /* monotonic ms of the next connect attempt */
    int backoff_ms;
    unsigned password_generation; /* of the last password used; under owner->password_lock */
};

/* The password every client connects with. The subscriber owns it; the main thread replaces
 * it, everyone else copies it, all under lock (never held across a paho call). */
struct sub_password {
    pthread_mutex_t lock;
    char *text; /* NUL-terminated; NULL when none was given */
    size_t len;
    unsigned generation; /* counts replacements, so a client sees that it has a renewed one */
    struct stat file;    /* the password file as last read, to notice a change */
    bool file_failing;   /* the last attempt to read it failed (warned once) */
};

struct subscriber {
    struct subscriber_config cfg;
    struct queue *queue;
    struct stats *stats;
    char filter[192]; /* the subscription, e.g. $share/hb-consumers/hb/+/+ */
    int64_t interval_ms;
    struct hb_ratelimit reject_log;
    struct sub_password password;
    struct sub_client clients[HB_BROKERS_MAX];
    size_t n_clients;
};

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
    struct hb_payload p;
    enum hb_reject reason = hb_topic_parse(s->cfg.topic_prefix, topic, tlen, &hb);
    if (reason == HB_OK)
        reason = hb_payload_read(m->payload, plen, s->cfg.payload_max, &p);
    if (reason == HB_OK && m->retained)
        reason = HB_REJECT_RETAINED;

    if (reason != HB_OK) {
        stats_reject(s->stats, reason);
        log_reject(s, reason, topic, tlen, plen);
    } else {
        struct queue_entry e;
        e.interval_start = hb_interval_start(now, s->interval_ms);
        e.received_ms = now;
        e.seq = p.seq;
        e.started_ms = p.started_ms;
        e.stopped = p.stopped;
        e.agent = p.agent;
        memcpy(e.media, p.media, sizeof(e.media));
        memcpy(e.account, hb.account, sizeof(e.account));
        memcpy(e.device, hb.device, sizeof(e.device));
        if (queue_push(s->queue, &e))
            atomic_fetch_add_explicit(&s->stats->accepted, 1, memory_order_relaxed);
        else
            atomic_fetch_add_explicit(&s->stats->dropped, 1, memory_order_relaxed);
        /* A ts more than a minute off is a wrong sender clock, not a latency. */
        if (p.sent_ms >= 0 && now - p.sent_ms <= 60000 && p.sent_ms - now <= 1000)
            stats_latency(s->stats, now - p.sent_ms);
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
             response ? response->code : 0, response && response->message ? response->message : "");
}

/* Whether the file at st is another one, or changed, since the password was read. */
static bool file_changed(const struct stat *was, const struct stat *st)
{
    return st->st_ino != was->st_ino || st->st_dev != was->st_dev || st->st_size != was->st_size ||
           st->st_mtim.tv_sec != was->st_mtim.tv_sec ||
           st->st_mtim.tv_nsec != was->st_mtim.tv_nsec ||
           st->st_ctim.tv_sec != was->st_ctim.tv_sec || st->st_ctim.tv_nsec != was->st_ctim.tv_nsec;
}

/* Replaces the password with text (taken over) when it differs; the old one is wiped. */
static void password_set(struct sub_password *p, char *text, size_t len)
{
    pthread_mutex_lock(&p->lock);
    bool same = p->text != NULL && len == p->len && memcmp(text, p->text, len) == 0;
    char *old = same ? text : p->text;
    size_t old_len = same ? len : p->len;
    if (!same) {
        p->text = text;
        p->len = len;
        p->generation++;
    }
    pthread_mutex_unlock(&p->lock);
    hb_secret_free(old, old_len + 1);
}

/* Reads the password file when it changed since the last read (main thread only; nothing else
 * touches p->file). When it cannot be read, says so once and keeps the last password. Returns
 * false when it could not be read. */
static bool password_reload(struct subscriber *s)
{
    struct sub_password *p = &s->password;
    const char *path = s->cfg.password_file;
    struct stat st;
    char err[256], *text;
    size_t len;
    if (stat(path, &st) != 0)
        memset(&st, 0, sizeof(st)); /* the read below says why */
    else if (p->text != NULL && !file_changed(&p->file, &st))
        return true;
    if (!hb_secret_file_read(path, PASSWORD_FILE_MAX, &text, &len, err, sizeof(err))) {
        if (p->text == NULL)
            HB_ERROR("--password-file %s", err);
        else if (!p->file_failing)
            HB_WARN("--password-file %s; keeping the password read before", err);
        p->file_failing = true;
        return false;
    }
    p->file_failing = false;
    p->file = st;
    len = hb_secret_trim_newline(text, len);
    text[len] = '\0';
    password_set(p, text, len);
    return true;
}

/* A NUL-terminated copy of the current password from alloc (NULL when there is none), for
 * one connect of c; says so when it is a renewed one. The copy is the caller's. */
static char *password_copy(struct sub_client *c, void *(*alloc)(size_t), size_t *len)
{
    struct sub_password *p = &c->owner->password;
    pthread_mutex_lock(&p->lock);
    char *copy = p->text ? alloc(p->len + 1) : NULL;
    bool renewed = false;
    if (copy != NULL) {
        memcpy(copy, p->text, p->len + 1);
        *len = p->len;
        renewed = c->password_generation != 0 && c->password_generation != p->generation;
        c->password_generation = p->generation;
    }
    pthread_mutex_unlock(&p->lock);
    if (renewed && c->owner->cfg.password_file != NULL)
        HB_INFO("mqtt %s: reconnecting with the renewed password from %s", c->uri,
                c->owner->cfg.password_file);
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

/* paho calls this before every automatic reconnect, on its own thread with its lock held:
 * it only copies the password the main thread keeps current. */
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
    size_t password_len = 0;
    char *password = password_copy(c, malloc, &password_len);
    opts.password = password;
    if (password != NULL)
        log_token_expiry(c, password, password_len);
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
    hb_secret_free(password, password_len + 1);
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
    if (s->cfg.n_brokers > 1)
        snprintf(c->client_id, sizeof(c->client_id), "%s-%zu", s->cfg.client_id, i);
    else
        snprintf(c->client_id, sizeof(c->client_id), "%s", s->cfg.client_id);

    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    int rc = MQTTAsync_createWithOptions(&c->handle, c->uri, c->client_id,
                                         MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        HB_ERROR("mqtt %s: cannot create client: %s", c->uri, MQTTAsync_strerror(rc));
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
        return false;
    }
    return true;
}

struct subscriber *subscriber_create(const struct subscriber_config *cfg, struct queue *queue,
                                     struct stats *stats)
{
    struct subscriber *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        HB_ERROR("mqtt: out of memory");
        return NULL;
    }
    s->cfg = *cfg;
    s->queue = queue;
    s->stats = stats;
    s->interval_ms = (int64_t)cfg->interval_s * 1000;
    s->reject_log.burst = 10;
    s->reject_log.window_ms = 10000;
    pthread_mutex_init(&s->password.lock, NULL);
    if (cfg->share_group)
        snprintf(s->filter, sizeof(s->filter), "$share/%s/%s/+/+", cfg->share_group,
                 cfg->topic_prefix);
    else
        snprintf(s->filter, sizeof(s->filter), "%s/+/+", cfg->topic_prefix);
    bool ok = true;
    if (cfg->password_file != NULL) {
        ok = password_reload(s);
    } else if (cfg->password != NULL) {
        size_t len = strlen(cfg->password);
        char *text = malloc(len + 1);
        if (text == NULL)
            HB_ERROR("mqtt: out of memory");
        else
            password_set(&s->password, memcpy(text, cfg->password, len + 1), len);
        ok = text != NULL;
    }
    for (size_t i = 0; ok && i < cfg->n_brokers; i++) {
        ok = client_create(s, i);
        if (ok)
            s->n_clients = i + 1;
    }
    if (!ok) {
        subscriber_destroy(s, 0);
        return NULL;
    }
    return s;
}

void subscriber_tick(struct subscriber *s)
{
    if (s->cfg.password_file != NULL)
        password_reload(s);
    int64_t now = hb_monotonic_ms();
    for (size_t i = 0; i < s->n_clients; i++) {
        struct sub_client *c = &s->clients[i];
        if (atomic_load(&c->state) == SUB_IDLE && now >= atomic_load(&c->retry_at))
            start_connect(c);
    }
}

size_t subscriber_count(const struct subscriber *s)
{
    return s->cfg.n_brokers;
}

const char *subscriber_broker(const struct subscriber *s, size_t i)
{
    return s->cfg.brokers[i];
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

void subscriber_destroy(struct subscriber *s, int timeout_ms)
{
    if (s == NULL)
        return;
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
    for (size_t i = 0; i < s->n_clients; i++)
        MQTTAsync_destroy(&s->clients[i].handle);
    hb_secret_free(s->password.text, s->password.len + 1);
    pthread_mutex_destroy(&s->password.lock);
    free(s);
}
