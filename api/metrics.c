/* hb-api's metrics in the Prometheus text format. Requests are counted by endpoint and exact
 * status from a fixed list, so the label set is bounded whatever the network sends. */
#include "metrics.h"

static const int statuses[API_STATUSES] = {200, 400, 401, 403, 404, 405,
                                           409, 413, 415, 429, 500, 503};

void api_metrics_request(struct api_metrics *m, enum api_route route, int status)
{
    size_t i = 0;
    while (i < API_STATUSES && statuses[i] != status)
        i++;
    atomic_fetch_add(&m->requests[route < API_ROUTE_COUNT ? route : API_ROUTE_NONE][i], 1);
}

static void counter(FILE *f, const char *name, const char *help, unsigned long long v)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

void api_metrics_write(FILE *f, const struct api_metrics *m, unsigned long long stops_published,
                       unsigned long long stops_failed, bool control_connected)
{
    fprintf(f,
            "# HELP hb_api_info The service's version.\n# TYPE hb_api_info gauge\n"
            "hb_api_info{version=\"%s\"} 1\n",
            HB_VERSION);
    fputs("# HELP hb_api_requests_total Requests answered, by endpoint and status.\n"
          "# TYPE hb_api_requests_total counter\n",
          f);
    for (int r = 0; r < API_ROUTE_COUNT; r++) {
        for (size_t i = 0; i <= API_STATUSES; i++) {
            unsigned long long v = atomic_load(&m->requests[r][i]);
            if (v == 0)
                continue;
            if (i < API_STATUSES)
                fprintf(f, "hb_api_requests_total{endpoint=\"%s\",status=\"%d\"} %llu\n",
                        api_route_name((enum api_route)r), statuses[i], v);
            else
                fprintf(f, "hb_api_requests_total{endpoint=\"%s\",status=\"other\"} %llu\n",
                        api_route_name((enum api_route)r), v);
        }
    }
    counter(f, "hb_api_admissions_total", "Devices admitted (new slots).",
            atomic_load(&m->admissions));
    counter(f, "hb_api_readmissions_total",
            "Active devices admitted again (token renewal; not counted twice).",
            atomic_load(&m->readmissions));
    fputs("# HELP hb_api_refusals_total Admissions refused, by reason.\n"
          "# TYPE hb_api_refusals_total counter\n",
          f);
    for (int d = HB_ADMIT_ACCOUNT_LIMIT; d <= HB_ADMIT_GROUP_LIMIT; d++)
        fprintf(f, "hb_api_refusals_total{reason=\"%s\"} %llu\n",
                hb_admit_decision_name((enum hb_admit_decision)d), atomic_load(&m->refusals[d]));
    counter(f, "hb_api_evictions_total", "Devices evicted to admit another (evict_oldest).",
            atomic_load(&m->evictions));
    counter(f, "hb_api_releases_total", "Slots freed by DELETE /v1/plays.",
            atomic_load(&m->releases));
    counter(f, "hb_api_stops_published_total", "Stops handed to the broker.", stops_published);
    counter(f, "hb_api_stops_failed_total", "Stops lost: not connected to the broker.",
            stops_failed);
    fputs("# HELP hb_api_bad_requests_total Requests refused for their input, by reason.\n"
          "# TYPE hb_api_bad_requests_total counter\n",
          f);
    for (int b = API_BAD_NONE + 1; b < API_BAD_COUNT; b++)
        fprintf(f, "hb_api_bad_requests_total{reason=\"%s\"} %llu\n", api_bad_name((enum api_bad)b),
                atomic_load(&m->bad[b]));
    counter(f, "hb_api_redis_errors_total", "Failed connects and failed commands of Redis.",
            atomic_load(&m->redis_errors));
    counter(f, "hb_api_degraded_admissions_total", "Devices admitted without Redis (--fail-open).",
            atomic_load(&m->degraded));
    fprintf(f,
            "# HELP hb_api_control_connected 1 while connected to the broker for stops.\n"
            "# TYPE hb_api_control_connected gauge\nhb_api_control_connected %d\n",
            control_connected ? 1 : 0);
}
