/* hb-nullsub: the floor of the benchmark. The same paho MQTTAsync client as hb-consumer, the
 * same QoS 1 and shared subscription, but the message callback only counts and frees the
 * message: its CPU per message is what the MQTT client alone costs. It prints
 * "stats received=N" every --stats-interval seconds and at exit, like the consumer. */
#include <MQTTAsync.h>

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct nullsub {
    MQTTAsync client;
    const char *filter;
    atomic_ullong received;
    atomic_int state; /* 0 connecting, 1 subscribed, -1 failed */
};

static int on_message(void *context, char *topic, int topic_len, MQTTAsync_message *m)
{
    struct nullsub *s = context;
    atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void on_subscribed(void *context, MQTTAsync_successData *response)
{
    struct nullsub *s = context;
    if (response != NULL && response->alt.qos == 0x80) {
        fprintf(stderr, "hb-nullsub: subscription to %s refused\n", s->filter);
        atomic_store(&s->state, -1);
        return;
    }
    fprintf(stderr, "hb-nullsub: subscribed to %s\n", s->filter);
    atomic_store(&s->state, 1);
}

static void on_subscribe_failed(void *context, MQTTAsync_failureData *response)
{
    struct nullsub *s = context;
    fprintf(stderr, "hb-nullsub: subscribe failed: %d\n", response ? response->code : 0);
    atomic_store(&s->state, -1);
}

static void on_connected(void *context, char *cause)
{
    struct nullsub *s = context;
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = on_subscribed;
    ro.onFailure = on_subscribe_failed;
    ro.context = s;
    int rc = MQTTAsync_subscribe(s->client, s->filter, 1, &ro);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "hb-nullsub: subscribe: %s\n", MQTTAsync_strerror(rc));
        atomic_store(&s->state, -1);
    }
}

static void on_connect_failed(void *context, MQTTAsync_failureData *response)
{
    struct nullsub *s = context;
    fprintf(stderr, "hb-nullsub: connect failed: %s\n",
            response && response->message ? response->message : "?");
    atomic_store(&s->state, -1);
}

static void on_connection_lost(void *context, char *cause)
{
    fprintf(stderr, "hb-nullsub: connection lost: %s\n", cause ? cause : "no cause");
}

static const char usage[] =
    "Usage: hb-nullsub [--broker URI] [--filter TOPIC] [--stats-interval S]\n"
    "Subscribe with QoS 1 and throw every message away; print \"stats received=N\" lines.\n"
    "Defaults: tcp://127.0.0.1:1883, $share/hb-consumers/hb/+/+, 1 s. SIGINT/SIGTERM stop.\n";

int main(int argc, char **argv)
{
    const char *broker = "tcp://127.0.0.1:1883";
    const char *filter = "$share/hb-consumers/hb/+/+";
    long stats_interval = 1;
    static const struct option long_options[] = {
        {"broker", required_argument, NULL, 'b'},
        {"filter", required_argument, NULL, 'f'},
        {"stats-interval", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
        switch (opt) {
        case 'b':
            broker = optarg;
            break;
        case 'f':
            filter = optarg;
            break;
        case 's':
            stats_interval = strtol(optarg, NULL, 10);
            if (stats_interval < 1 || stats_interval > 3600) {
                fprintf(stderr, "hb-nullsub: --stats-interval: 1..3600, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }

    /* Block the signals before paho starts its threads, so only sigtimedwait sees them. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    struct nullsub s = {.filter = filter};
    char client_id[64];
    snprintf(client_id, sizeof(client_id), "hb-nullsub-%ld", (long)getpid());
    MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
    int rc = MQTTAsync_createWithOptions(&s.client, broker, client_id, MQTTCLIENT_PERSISTENCE_NONE,
                                         NULL, &co);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "hb-nullsub: create: %s\n", MQTTAsync_strerror(rc));
        return 1;
    }
    int status = 1;
    rc = MQTTAsync_setCallbacks(s.client, &s, on_connection_lost, on_message, NULL);
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_setConnected(s.client, &s, on_connected);
    MQTTAsync_connectOptions copts = MQTTAsync_connectOptions_initializer;
    copts.keepAliveInterval = 30;
    copts.cleansession = 1;
    copts.onFailure = on_connect_failed;
    copts.context = &s;
    if (rc == MQTTASYNC_SUCCESS)
        rc = MQTTAsync_connect(s.client, &copts);
    if (rc != MQTTASYNC_SUCCESS) {
        fprintf(stderr, "hb-nullsub: connect: %s\n", MQTTAsync_strerror(rc));
        goto out;
    }

    struct timespec tick = {.tv_sec = stats_interval, .tv_nsec = 0};
    for (;;) {
        int sig = sigtimedwait(&signals, NULL, &tick);
        if (atomic_load(&s.state) < 0)
            goto out;
        if (sig == SIGINT || sig == SIGTERM)
            break;
        if (sig < 0 && errno != EAGAIN && errno != EINTR) {
            fprintf(stderr, "hb-nullsub: sigtimedwait: %s\n", strerror(errno));
            goto out;
        }
        fprintf(stderr, "stats received=%llu\n", atomic_load(&s.received));
    }
    status = 0;
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    MQTTAsync_disconnect(s.client, &d);
    for (int i = 0; i < 100 && MQTTAsync_isConnected(s.client); i++) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "stats received=%llu\n", atomic_load(&s.received));
out:
    MQTTAsync_destroy(&s.client);
    return status;
}
