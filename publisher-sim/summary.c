/* The run's summary. Rates are derived once, in summary_derive, so the log lines and the JSON
 * object cannot disagree; a value that could not be measured is negative and printed as null. */
#include "summary.h"

#include "log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>

void summary_derive(struct summary *s, const struct fleet_result *r)
{
    const struct sim_stats *t = &r->total;
    s->r = r;
    s->duration_s = (double)(t->end_ms - t->start_ms) / 1000.0;
    s->connect_all_s = -1;
    s->connect_rate = -1;
    s->hb_per_s_connected = -1;
    if (t->all_connected_ms != 0 && t->devices > 0) {
        s->connect_all_s = (double)(t->all_connected_ms - t->start_ms) / 1000.0;
        if (s->connect_all_s > 0)
            s->connect_rate = (double)t->devices / s->connect_all_s;
        double rest = (double)(t->end_ms - t->all_connected_ms) / 1000.0;
        if (rest > 1 && r->published_at_all > 0)
            s->hb_per_s_connected = (double)(t->published - r->published_at_all) / rest;
    }
    s->hb_per_s = s->duration_s > 0 ? (double)t->published / s->duration_s : 0;
    /* The steady phase's rate counts from when each worker learned the end (its own
     * published count then), a moment after the last connect: exact counts, not samples. */
    s->steady_s = -1;
    s->hb_per_s_steady = -1;
    if (s->hold_s > 0 && t->steady_ms != 0 && t->all_connected_ms != 0) {
        s->steady_s = (double)(t->end_ms - t->all_connected_ms) / 1000.0;
        double counted = (double)(t->end_ms - t->steady_ms) / 1000.0;
        if (counted > 0)
            s->hb_per_s_steady = (double)(t->published - t->steady_sent) / counted;
    }
}

static bool add_number_or_null(cJSON *o, const char *name, double v)
{
    return v < 0 ? cJSON_AddNullToObject(o, name) != NULL
                 : cJSON_AddNumberToObject(o, name, v) != NULL;
}

static double round1(double v)
{
    return v < 0 ? v : round(v * 10.0) / 10.0;
}

bool summary_print_json(const struct summary *s)
{
    const struct fleet_result *r = s->r;
    const struct sim_stats *t = &r->total;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL)
        return false;
    double peak = (double)r->connected_peak;
    bool ok =
        cJSON_AddNumberToObject(o, "devices", (double)t->devices) &&
        cJSON_AddNumberToObject(o, "accounts", (double)s->accounts) &&
        cJSON_AddNumberToObject(o, "workers", s->workers) &&
        cJSON_AddNumberToObject(o, "brokers", (double)s->brokers) &&
        cJSON_AddNumberToObject(o, "source_addresses", (double)s->sources) &&
        cJSON_AddNumberToObject(o, "connected_max", peak) &&
        cJSON_AddNumberToObject(o, "ever_connected", (double)t->ever_connected) &&
        cJSON_AddNumberToObject(o, "connects", (double)t->connects) &&
        cJSON_AddNumberToObject(o, "published", (double)t->published) &&
        cJSON_AddNumberToObject(o, "acked", (double)t->acked) &&
        cJSON_AddNumberToObject(o, "errors", (double)t->errors) &&
        cJSON_AddNumberToObject(o, "connect_failed", (double)t->connect_failed) &&
        cJSON_AddNumberToObject(o, "refused", (double)t->refused) &&
        cJSON_AddNumberToObject(o, "dropped", (double)t->dropped) &&
        cJSON_AddNumberToObject(o, "token_errors", (double)t->token_errors) &&
        cJSON_AddNumberToObject(o, "lost", (double)t->lost) &&
        cJSON_AddNumberToObject(o, "skipped", (double)t->skipped) &&
        cJSON_AddNumberToObject(o, "duration_s", s->duration_s) &&
        add_number_or_null(o, "time_to_connect_all_s", round1(s->connect_all_s)) &&
        add_number_or_null(o, "connect_rate", round1(s->connect_rate)) &&
        cJSON_AddNumberToObject(o, "heartbeats_per_s", round1(s->hb_per_s)) &&
        add_number_or_null(o, "heartbeats_per_s_all_connected", round1(s->hb_per_s_connected)) &&
        cJSON_AddNumberToObject(o, "hold_s", s->hold_s) &&
        add_number_or_null(o, "steady_s", round1(s->steady_s)) &&
        add_number_or_null(o, "steady_heartbeats_per_s", round1(s->hb_per_s_steady)) &&
        add_number_or_null(o, "steady_connections_held",
                           s->steady_s >= 0 ? (double)t->steady_held : -1) &&
        cJSON_AddNumberToObject(o, "rss_kib", (double)r->rss_kib) &&
        cJSON_AddNumberToObject(o, "pss_kib", (double)r->pss_kib) &&
        add_number_or_null(o, "memory_per_connection_bytes",
                           peak > 0 && r->pss_kib > 0 ? round((double)r->pss_kib * 1024 / peak)
                                                      : -1) &&
        add_number_or_null(o, "fds_per_connection",
                           r->fds > 0 && t->devices > 0
                               ? round((double)r->fds / (double)t->devices * 100) / 100
                               : -1) &&
        cJSON_AddNumberToObject(o, "workers_failed", r->workers_failed) &&
        cJSON_AddNumberToObject(o, "seed", (double)s->seed) &&
        cJSON_AddNumberToObject(o, "qos", s->qos) &&
        cJSON_AddNumberToObject(o, "intervals", (double)s->intervals) &&
        cJSON_AddNumberToObject(o, "start_ms", (double)t->start_ms) &&
        cJSON_AddNumberToObject(o, "end_ms", (double)t->end_ms) &&
        cJSON_AddBoolToObject(o, "interrupted", t->interrupted);
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (text == NULL)
        return false;
    ok = printf("%s\n", text) > 0 && fflush(stdout) == 0;
    cJSON_free(text);
    return ok;
}

void summary_log(const struct summary *s, size_t device_intervals)
{
    const struct fleet_result *r = s->r;
    const struct sim_stats *t = &r->total;
    HB_INFO("hb-sim: done after %.1fs%s: devices=%zu accounts=%zu workers=%u connected_max=%zu "
            "published=%" PRIu64 " acked=%" PRIu64 " errors=%" PRIu64 " lost=%" PRIu64
            " skipped=%" PRIu64 " intervals=%zu device_intervals=%zu seed=%" PRIu64,
            s->duration_s, t->interrupted ? " (interrupted)" : "", t->devices, s->accounts,
            s->workers, r->connected_peak, t->published, t->acked, t->errors, t->lost, t->skipped,
            s->intervals, device_intervals, s->seed);
    if (s->connect_all_s >= 0)
        HB_INFO("hb-sim: every device had connected after %.1fs (%.0f connections/s)",
                s->connect_all_s, s->connect_rate);
    if (s->hb_per_s_connected >= 0)
        HB_INFO("hb-sim: %.0f heartbeats/s once every device had connected", s->hb_per_s_connected);
    if (s->hb_per_s_steady >= 0)
        HB_INFO("hb-sim: steady phase (--hold %g): %.1fs with at least %zu devices connected, "
                "%.0f heartbeats/s",
                s->hold_s, s->steady_s, t->steady_held, s->hb_per_s_steady);
    else if (s->hold_s > 0)
        HB_WARN("hb-sim: no steady phase: not every device had connected when the run ended "
                "(--duration %.1fs)",
                s->duration_s);
    if (r->connected_peak > 0 && r->pss_kib > 0)
        HB_INFO("hb-sim: %zu devices connected at the peak; memory %.0f bytes per connection "
                "(Pss %" PRIu64 " KiB, RSS %" PRIu64 " KiB over the parent and workers)",
                r->connected_peak, (double)r->pss_kib * 1024 / (double)r->connected_peak,
                r->pss_kib, r->rss_kib);
    if (t->connect_failed > 0 || t->refused > 0 || t->dropped > 0)
        HB_WARN("hb-sim: %" PRIu64 " connect(s) failed, %" PRIu64 " refused by a broker, %" PRIu64
                " connection(s) dropped. Refused: check the credentials (--key/--kid against the "
                "broker's keys) or the broker's max_connections; failed or dropped: check each "
                "broker's open-file limit (ulimit -n: it holds at most that many sockets), its "
                "max_connections and listen backlog, and the ephemeral ports "
                "(net.ipv4.ip_local_port_range, or more --source-address / --broker)",
                t->connect_failed, t->refused, t->dropped);
    if (t->token_errors > 0)
        HB_WARN("hb-sim: %" PRIu64 " token(s) could not be minted", t->token_errors);
}
