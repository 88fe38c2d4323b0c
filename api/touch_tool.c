/* hb-api-touch: runs hb_plays_touch once, for tests and operators, until the consumer calls it
 * at ingest. Each report is DEVICE:STATE[:START_MS[:GROUP]] with STATE "playing" or "stopped";
 * prints the result as one JSON object. */
#include "config.h"
#include "log.h"
#include "plays.h"
#include "redis.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cJSON *names(const char **list, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a != NULL && i < n; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(list[i]));
    return a;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: hb-api-touch REDIS_URI ACCOUNT LIMIT GRACE_MS NOW_MS "
                        "[DEVICE:STATE[:START_MS[:GROUP]]]...\n");
        return 2;
    }
    struct hb_redis_addr addr;
    char err[256];
    long limit, grace, now;
    if (!hb_redis_uri_parse(argv[1], &addr, err, sizeof(err)) ||
        !hb_parse_long(argv[3], 0, HB_PLAYS_LIMIT_MAX, &limit) ||
        !hb_parse_long(argv[4], 1, 86400000, &grace) ||
        !hb_parse_long(argv[5], 0, 1L << 50, &now)) {
        fprintf(stderr, "hb-api-touch: bad argument\n");
        return 2;
    }
    size_t n = (size_t)(argc - 6);
    struct hb_touch_report *reports = calloc(n ? n : 1, sizeof(*reports));
    if (reports == NULL)
        return 1;
    for (size_t i = 0; i < n; i++) {
        char *save = NULL;
        reports[i].device = strtok_r(argv[6 + i], ":", &save);
        const char *state = strtok_r(NULL, ":", &save);
        const char *start = strtok_r(NULL, ":", &save);
        reports[i].group = strtok_r(NULL, ":", &save);
        reports[i].stopped = state != NULL && strcmp(state, "stopped") == 0;
        reports[i].start_ms = start ? strtoll(start, NULL, 10) : 0;
    }
    struct hb_plays_config cfg = {.defaults = {.devices = limit}, .grace_ms = grace};
    struct rcluster *c = rcluster_create(&addr, 2000, err, sizeof(err));
    struct hb_touch_result r;
    int rc = c ? hb_plays_touch(c, &cfg, argv[2], reports, n, now, &r, err, sizeof(err)) : -1;
    rcluster_destroy(c);
    if (rc != 0) {
        fprintf(stderr, "hb-api-touch: %s\n", err);
        free(reports);
        return 1;
    }
    cJSON *out = cJSON_CreateObject();
    cJSON_AddItemToObject(out, "released", names(r.released, r.n_released));
    cJSON_AddItemToObject(out, "admitted", names(r.admitted, r.n_admitted));
    cJSON *stop = cJSON_AddObjectToObject(out, "stop");
    for (size_t i = 0; stop != NULL && i < r.n_stop; i++)
        cJSON_AddStringToObject(stop, r.stop[i], hb_admit_decision_name(r.stop_reason[i]));
    cJSON_AddNumberToObject(out, "refreshed", (double)r.n_refreshed);
    char *text = cJSON_PrintUnformatted(out);
    if (text != NULL)
        puts(text);
    cJSON_free(text);
    cJSON_Delete(out);
    hb_touch_result_finish(&r);
    free(reports);
    return 0;
}
