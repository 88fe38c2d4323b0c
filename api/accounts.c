/* GET /v1/accounts/{account} and PUT /v1/accounts/{account}/limits: what an account is doing
 * (the checker's count of the previous complete interval, the active devices) and the limits
 * it plays under. Limits are validated whole before anything is written. */
#include "api.h"

#include "check.h"
#include "interval.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

static cJSON *limits_json(const struct hb_limits *l, bool custom)
{
    cJSON *out = cJSON_CreateObject();
    if (out == NULL)
        return NULL;
    cJSON_AddNumberToObject(out, "devices", (double)l->devices);
    cJSON_AddStringToObject(out, "policy", hb_play_policy_name(l->policy));
    cJSON *groups = cJSON_AddObjectToObject(out, "groups");
    for (size_t i = 0; groups != NULL && i < l->n_groups; i++)
        cJSON_AddNumberToObject(groups, l->groups[i].group, (double)l->groups[i].devices);
    cJSON_AddStringToObject(out, "source", custom ? "account" : "default");
    return out;
}

void api_account_get(struct api *a, struct hb_httpd_request *req, const struct api_path *path)
{
    char err[256];
    struct hb_admission ad;
    struct hb_limits limits;
    bool custom = false;
    struct hb_check_result count = {0};
    const char *accounts[] = {path->account};
    int64_t now = hb_now_ms();
    struct rcluster *c = api_pool_take(&a->pool, err, sizeof(err));
    int rc = c ? hb_plays_get(c, &a->set.plays, path->account, 0, &ad, &limits, &custom, err,
                              sizeof(err))
               : -1;
    if (rc == 0 && hb_check_previous(c, accounts, 1, now, a->set.interval_s, false, &count, err,
                                     sizeof(err)) != 0) {
        hb_admission_finish(&ad);
        rc = -1;
    }
    api_pool_give(&a->pool, c, rc == 0);
    if (rc != 0) {
        hb_check_results_finish(&count, 1);
        api_unavailable(a, req, err);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddStringToObject(out, "account", path->account);
        cJSON *prev = cJSON_AddObjectToObject(out, "previous_interval");
        if (prev != NULL) {
            int64_t interval_ms = (int64_t)a->set.interval_s * 1000;
            cJSON_AddNumberToObject(prev, "start",
                                    (double)(hb_interval_previous(now, interval_ms) / 1000));
            cJSON_AddNumberToObject(prev, "seconds", a->set.interval_s);
            cJSON_AddNumberToObject(prev, "devices", (double)count.devices);
        }
        cJSON_AddItemToObject(out, "active", api_active_json(&ad));
        cJSON_AddItemToObject(out, "limits", limits_json(&limits, custom));
    }
    hb_check_results_finish(&count, 1);
    hb_admission_finish(&ad);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}

/* The body {"devices": N, "groups": {G: N}, "policy": P} into l. */
static enum api_bad parse_limits(const struct api *a, const cJSON *body, struct hb_limits *l,
                                 const char **field)
{
    static const char *const fields[] = {"devices", "groups", "policy", NULL};
    memset(l, 0, sizeof(*l));
    enum api_bad bad = api_json_only(body, fields, field);
    if (bad == API_BAD_NONE)
        bad = api_json_long(body, "devices", true, 0, HB_PLAYS_LIMIT_MAX, 0, &l->devices, field);
    if (bad != API_BAD_NONE)
        return bad;
    l->policy = a->set.plays.defaults.policy;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(body, "policy");
    if (p != NULL && !cJSON_IsNull(p) &&
        (!cJSON_IsString(p) || !hb_play_policy_parse(p->valuestring, &l->policy))) {
        *field = "policy";
        return API_BAD_INVALID_FIELD;
    }
    const cJSON *groups = cJSON_GetObjectItemCaseSensitive(body, "groups");
    if (groups == NULL || cJSON_IsNull(groups))
        return API_BAD_NONE;
    *field = "groups";
    if (!cJSON_IsObject(groups) || cJSON_GetArraySize(groups) > HB_PLAYS_GROUPS_MAX)
        return API_BAD_INVALID_FIELD;
    const cJSON *g;
    cJSON_ArrayForEach(g, groups)
    {
        struct hb_group_limit *gl = &l->groups[l->n_groups];
        size_t n = strlen(g->string);
        if (!hb_id_valid(g->string, n))
            return API_BAD_INVALID_FIELD;
        for (size_t i = 0; i < l->n_groups; i++)
            if (strcmp(l->groups[i].group, g->string) == 0)
                return API_BAD_INVALID_FIELD;
        memcpy(gl->group, g->string, n + 1);
        if (!cJSON_IsNumber(g) || g->valuedouble < 0 || g->valuedouble > HB_PLAYS_LIMIT_MAX ||
            (double)(long)g->valuedouble != g->valuedouble)
            return API_BAD_INVALID_FIELD;
        gl->devices = (long)g->valuedouble;
        l->n_groups++;
    }
    *field = NULL;
    return API_BAD_NONE;
}

void api_limits_put(struct api *a, struct hb_httpd_request *req, const struct api_path *path,
                    cJSON *body)
{
    struct hb_limits limits;
    const char *field = NULL;
    enum api_bad bad = parse_limits(a, body, &limits, &field);
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return;
    }
    char err[256];
    struct rcluster *c = api_pool_take(&a->pool, err, sizeof(err));
    int rc = c ? hb_plays_set_limits(c, path->account, &limits, err, sizeof(err)) : -1;
    api_pool_give(&a->pool, c, rc == 0);
    if (rc != 0) {
        api_unavailable(a, req, err);
        return;
    }
    cJSON *out = limits_json(&limits, true);
    if (out != NULL)
        cJSON_AddStringToObject(out, "account", path->account);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}
