/* The metrics endpoint, served by the shared HTTP glue (common/httpd.c: a small thread pool, so
 * idle connections never hold a scrape up). Every value is read from the same atomics the stats
 * line uses, so the two never disagree and a scrape takes no lock. */
#include "metrics.h"

#include "httpd.h"
#include "log.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define METRICS_THREADS 2 /* scrapes are rare and short; two so one slow reader stalls none */

/* Latency histogram bounds in ms, a subset of the 1 ms buckets the stats keep. */
static const int latency_bounds_ms[] = {1, 5, 10, 25, 50, 100, 250, 500, 1000};

static void counter(FILE *f, const char *name, const char *help, unsigned long long v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void gauge(FILE *f, const char *name, const char *help, unsigned long long v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name, v);
}

/* A label value with \ " and newline escaped, as the text format requires. */
static void label_value(FILE *f, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            fputc('\\', f);
        if (*v == '\n')
            fputs("\\n", f);
        else
            fputc(*v, f);
    }
}

static void write_live(FILE *f, const struct live *l)
{
    gauge(f, "hb_consumer_live_devices", "Devices counted in the live viewer counts.",
          atomic_load(&l->n_devices));
    gauge(f, "hb_consumer_live_topics", "Live count topics tracked (media and accounts).",
          atomic_load(&l->n_topics));
    counter(f, "hb_consumer_live_publishes_total", "Live counts handed to the broker.",
            atomic_load(&l->publishes));
    counter(f, "hb_consumer_live_publish_failures_total",
            "Live counts the broker connection refused (retried).",
            atomic_load(&l->publish_failures));
    counter(f, "hb_consumer_live_evictions_total",
            "Devices dropped from the live counts at --live-max-devices.",
            atomic_load(&l->evictions));
    counter(f, "hb_consumer_live_dropped_total",
            "Counts of 0 forgotten while the broker was unreachable.", atomic_load(&l->dropped));
}

/* A counter family labelled by the stop reason. */
static void by_reason(FILE *f, const char *name, const char *help, const atomic_ullong *v)
{
    static const char *const reasons[STATS_STOP_REASONS] = {"account_limit", "group_limit"};
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (int r = 0; r < STATS_STOP_REASONS; r++)
        fprintf(f, "%s{reason=\"%s\"} %llu\n", name, reasons[r], atomic_load(&v[r]));
}

static void write_enforce(FILE *f, const struct stats *s)
{
    counter(f, "hb_consumer_plays_refreshed_total",
            "Admitted devices whose last_seen a heartbeat refreshed.",
            atomic_load(&s->plays_refreshed));
    counter(f, "hb_consumer_plays_released_total",
            "Slots freed by a heartbeat saying \"state\":\"stopped\".",
            atomic_load(&s->plays_released));
    counter(f, "hb_consumer_plays_admitted_total",
            "Devices admitted on their heartbeat, without an admission of their own.",
            atomic_load(&s->plays_admitted));
    by_reason(f, "hb_consumer_plays_refused_total",
              "Heartbeats of devices refused for lack of room (a device that ignores its stop "
              "is counted again at every batch it heartbeats in).",
              s->plays_refused);
    by_reason(f, "hb_consumer_stops_sent_total", "Stops handed to the MQTT publisher.",
              s->stops_sent);
    counter(f, "hb_consumer_stops_failed_total",
            "Stops that could not be published (publisher not connected).",
            atomic_load(&s->stops_failed));
    counter(f, "hb_consumer_enforce_errors_total",
            "Touch scripts that failed, and heartbeats not enforced (over capacity).",
            atomic_load(&s->enforce_errors));
    gauge(f, "hb_consumer_control_connected", "1 while the stop publisher is connected.",
          atomic_load(&s->control_up));
}

static void write_metrics(FILE *f, const struct metrics_sources *src)
{
    const struct stats *s = src->stats;
    fprintf(f,
            "# HELP hb_consumer_info The consumer's version.\n# TYPE hb_consumer_info gauge\n"
            "hb_consumer_info{version=\"%s\"} 1\n",
            HB_VERSION);
    counter(f, "hb_consumer_messages_received_total", "MQTT messages that arrived.",
            atomic_load(&s->received));
    counter(f, "hb_consumer_heartbeats_accepted_total", "Valid heartbeats handed to the writer.",
            atomic_load(&s->accepted));
    counter(f, "hb_consumer_heartbeats_written_total", "Heartbeats acknowledged by Redis.",
            atomic_load(&s->written));
    fputs("# HELP hb_consumer_messages_rejected_total Messages refused, by reason.\n"
          "# TYPE hb_consumer_messages_rejected_total counter\n",
          f);
    for (int r = HB_OK + 1; r < HB_REJECT_COUNT; r++)
        fprintf(f, "hb_consumer_messages_rejected_total{reason=\"%s\"} %llu\n",
                hb_reject_name((enum hb_reject)r), atomic_load(&s->rejected[r]));
    counter(f, "hb_consumer_heartbeats_dropped_total",
            "Valid heartbeats lost: the buffer was full, or Redis stayed down at shutdown.",
            atomic_load(&s->dropped));
    counter(f, "hb_consumer_heartbeats_expired_total",
            "Valid heartbeats not written because their key's life ended while Redis was down.",
            atomic_load(&s->expired));
    counter(f, "hb_consumer_heartbeats_lost_total",
            "Heartbeats missing from the devices' seq numbers: lost between device and consumer.",
            atomic_load(&s->lost));
    counter(f, "hb_consumer_seq_restarts_total", "Devices seen numbering from 0 again.",
            atomic_load(&s->seq_restarts));
    counter(f, "hb_consumer_seq_evicted_total",
            "Devices forgotten by the bounded loss tracker (their next gap goes uncounted).",
            atomic_load(&s->seq_evicted));
    gauge(f, "hb_consumer_seq_devices", "Devices the loss tracker remembers.",
          atomic_load(&s->seq_devices));
    gauge(f, "hb_consumer_loss_tracking",
          "1 while this consumer is alone in its share group, so seq gaps are counted as loss.",
          atomic_load(&s->loss_tracking));
    gauge(f, "hb_consumer_write_lag_milliseconds",
          "Age of the oldest heartbeat of the last batch written.",
          (unsigned long long)atomic_load(&s->write_lag_ms));
    counter(f, "hb_consumer_redis_errors_total",
            "Failed connects, lost connections and error replies of Redis.",
            atomic_load(&s->redis_errors));
    counter(f, "hb_consumer_batches_total", "Batches written to Redis.", atomic_load(&s->batches));
    gauge(f, "hb_consumer_queue_length", "Heartbeats waiting for the writer.",
          queue_length(src->queue));
    gauge(f, "hb_consumer_queue_capacity", "Heartbeats the buffer holds (--buffer).",
          src->queue->capacity);
    gauge(f, "hb_consumer_redis_up", "1 while the writer holds a working Redis connection.",
          atomic_load(&s->redis_up));
    fputs("# HELP hb_consumer_mqtt_subscribed 1 while subscribed on this broker.\n"
          "# TYPE hb_consumer_mqtt_subscribed gauge\n",
          f);
    for (size_t i = 0; i < subscriber_count(src->subscriber); i++) {
        fputs("hb_consumer_mqtt_subscribed{broker=\"", f);
        label_value(f, subscriber_broker(src->subscriber, i));
        fprintf(f, "\"} %d\n", subscriber_client_ready(src->subscriber, i) ? 1 : 0);
    }
    if (atomic_load(&s->enforcing))
        write_enforce(f, s);
    if (src->live != NULL)
        write_live(f, src->live);
    fputs("# HELP hb_consumer_latency_seconds Receive time minus the payload's ts.\n"
          "# TYPE hb_consumer_latency_seconds histogram\n",
          f);
    unsigned long long seen = 0;
    int next = 0;
    for (size_t b = 0; b < sizeof(latency_bounds_ms) / sizeof(latency_bounds_ms[0]); b++) {
        /* Bucket i of the stats holds latencies in [i, i+1) ms, so "<= bound" is buckets
         * below the bound plus the one at it (whole milliseconds). */
        for (; next <= latency_bounds_ms[b]; next++)
            seen += atomic_load(&s->latency_ms[next]);
        fprintf(f, "hb_consumer_latency_seconds_bucket{le=\"%g\"} %llu\n",
                latency_bounds_ms[b] / 1000.0, seen);
    }
    for (; next < STATS_LATENCY_BUCKETS; next++)
        seen += atomic_load(&s->latency_ms[next]);
    fprintf(f, "hb_consumer_latency_seconds_bucket{le=\"+Inf\"} %llu\n", seen);
    fprintf(f, "hb_consumer_latency_seconds_sum %.3f\n",
            (double)atomic_load(&s->latency_sum_ms) / 1000.0);
    fprintf(f, "hb_consumer_latency_seconds_count %llu\n", seen);
}

/* 200 "ok" when ready, else 503 and one line per reason. */
static int write_health(FILE *f, const struct metrics_sources *src)
{
    int status = MHD_HTTP_OK;
    if (!atomic_load(&src->stats->redis_up)) {
        fputs("redis: not connected\n", f);
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    for (size_t i = 0; i < subscriber_count(src->subscriber); i++) {
        if (!subscriber_client_ready(src->subscriber, i)) {
            fprintf(f, "mqtt %s: not subscribed\n", subscriber_broker(src->subscriber, i));
            status = MHD_HTTP_SERVICE_UNAVAILABLE;
        }
    }
    if (stats_health_problems(src->stats, queue_length(src->queue), src->queue->capacity, f) > 0)
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
    if (status == MHD_HTTP_OK)
        fputs("ok\n", f);
    return status;
}

/* One request of an operator: the text is written with open_memstream and copied into the
 * reply. A body sent with the request is ignored (body_max 0: drained, never kept). */
static void handle(void *ud, struct hb_httpd_request *req)
{
    const struct metrics *m = ud;
    char *body = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&body, &len);
    if (f == NULL)
        return; /* the glue answers 500 */
    int status = MHD_HTTP_OK;
    const char *type = "text/plain; charset=utf-8";
    if (strcmp(req->method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(req->method, MHD_HTTP_METHOD_HEAD) != 0) {
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
        req->allow = "GET, HEAD";
        fputs("method not allowed\n", f);
    } else if (strcmp(req->path, "/metrics") == 0) {
        type = "text/plain; version=0.0.4; charset=utf-8";
        write_metrics(f, &m->src);
    } else if (strcmp(req->path, "/healthz") == 0) {
        status = write_health(f, &m->src);
    } else {
        status = MHD_HTTP_NOT_FOUND;
        fputs("not found: try /metrics or /healthz\n", f);
    }
    if (fclose(f) == 0)
        hb_httpd_reply_text(req, status, type, body, len);
    free(body);
}

bool metrics_start(struct metrics *m, const struct metrics_sources *src,
                   const struct sockaddr *addr)
{
    memset(m, 0, sizeof(*m));
    m->src = *src;
    struct hb_httpd_config hc = {
        .threads = METRICS_THREADS,
        .body_max = 0,
        .handler = handle,
        .ud = m,
    };
    m->httpd = hb_httpd_start(&hc, addr);
    return m->httpd != NULL;
}

unsigned metrics_port(const struct metrics *m)
{
    return hb_httpd_port(m->httpd);
}

void metrics_stop(struct metrics *m)
{
    hb_httpd_stop(m->httpd);
    m->httpd = NULL;
}
