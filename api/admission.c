/* POST /v1/plays and DELETE /v1/plays/{account}/{device}: the admission decision (one atomic
 * script in Redis, see common/plays.h) turned into HTTP, a device token and stops. Stops go
 * out after Redis has decided, never before: a stop is only sent for a slot already gone. */
#include "api.h"

#include "dash.h"
#include "interval.h"
#include "log.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

cJSON *api_active_json(const struct hb_admission *ad)
{
    cJSON *list = cJSON_CreateArray();
    for (size_t i = 0; list != NULL && i < ad->n_active; i++) {
        const struct hb_play *p = &ad->active[i];
        cJSON *e = cJSON_CreateObject();
        if (e == NULL)
            break;
        cJSON_AddItemToArray(list, e);
        cJSON_AddStringToObject(e, "device", p->device);
        cJSON_AddNumberToObject(e, "since", (double)p->since_ms / 1000.0);
        cJSON_AddNumberToObject(e, "last_seen", (double)p->last_seen_ms / 1000.0);
        if (p->group[0])
            cJSON_AddStringToObject(e, "group", p->group);
        else
            cJSON_AddNullToObject(e, "group");
        if (p->media[0])
            cJSON_AddStringToObject(e, "media", p->media);
        else
            cJSON_AddNullToObject(e, "media");
    }
    return list;
}

/* 200 with a device token; the response of an admission, degraded or not. */
static void allow(struct api *a, struct hb_httpd_request *req, const char *account,
                  const char *device, const char *media, const struct hb_admission *ad,
                  bool degraded)
{
    int64_t expires_at = 0;
    char *token = api_mint_device(a, account, device, media, a->set.token_ttl, &expires_at);
    if (token == NULL) {
        hb_httpd_reply_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddBoolToObject(out, "allow", true);
        cJSON_AddStringToObject(out, "token", token);
        cJSON_AddNumberToObject(out, "expires_at", (double)expires_at);
        cJSON_AddNumberToObject(out, "heartbeat_seconds", (double)a->set.heartbeat_s);
        if (degraded) {
            cJSON_AddBoolToObject(out, "degraded", true);
        } else {
            cJSON_AddNumberToObject(out, "active", (double)ad->n_active);
            cJSON_AddNumberToObject(out, "limit", (double)ad->limit);
            cJSON_AddBoolToObject(out, "again", ad->again);
            cJSON *ev = cJSON_AddArrayToObject(out, "evicted");
            for (size_t i = 0; ev != NULL && i < ad->n_evicted; i++)
                cJSON_AddItemToArray(ev, cJSON_CreateString(ad->evicted[i]));
        }
    }
    memset(token, 0, strlen(token));
    free(token);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}

/* Adds the decision to the dashboard's minute (common/dash.h); a failure is only logged. */
static void dash_event(struct api *a, const char *account, const struct hb_admission *ad)
{
    bool ok = ad->decision == HB_ADMIT_OK;
    struct hb_dash_event ev = {.account = account,
                               .admitted = ok && !ad->again,
                               .refused = !ok,
                               .evicted = (int)ad->n_evicted,
                               .at_limit =
                                   !ok || (ad->limit > 0 && (long)ad->n_active >= ad->limit)};
    char err[256];
    struct rcluster *c = api_pool_take(&a->pool, err, sizeof(err));
    bool sent = c != NULL && hb_dash_event_add(c, &ev, hb_now_ms(), err, sizeof(err));
    api_pool_give(&a->pool, c, sent);
    if (!sent)
        HB_DEBUG("dashboard: event of %s not counted: %s", account, err);
}

void api_plays_post(struct api *a, struct hb_httpd_request *req, cJSON *body)
{
    static const char *const fields[] = {"account", "device", "group", "media", NULL};
    char account[HB_ID_MAX + 1], device[HB_ID_MAX + 1], group[HB_ID_MAX + 1], media[HB_ID_MAX + 1];
    const char *field = NULL;
    enum api_bad bad = api_json_only(body, fields, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "account", true, account, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "device", true, device, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "group", false, group, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "media", false, media, &field);
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return;
    }
    snprintf(req->log_account, sizeof(req->log_account), "%s", account);

    char err[256];
    struct hb_admission ad;
    struct rcluster *c = api_pool_take(&a->pool, err, sizeof(err));
    int rc = c ? hb_plays_admit(c, &a->set.plays, account, device, group, media, 0, &ad, err,
                                sizeof(err))
               : -1;
    api_pool_give(&a->pool, c, rc == 0);
    if (rc != 0) {
        if (!a->set.fail_open) {
            api_unavailable(a, req, err);
            return;
        }
        atomic_fetch_add(&a->metrics.redis_errors, 1);
        atomic_fetch_add(&a->metrics.degraded, 1);
        memset(&ad, 0, sizeof(ad));
        allow(a, req, account, device, media, &ad, true);
        return;
    }
    dash_event(a, account, &ad);
    if (ad.decision != HB_ADMIT_OK) {
        atomic_fetch_add(&a->metrics.refusals[ad.decision], 1);
        cJSON *out = cJSON_CreateObject();
        if (out != NULL) {
            cJSON_AddBoolToObject(out, "allow", false);
            cJSON_AddStringToObject(out, "reason", hb_admit_decision_name(ad.decision));
            cJSON_AddNumberToObject(out, "limit", (double)ad.limit);
            cJSON_AddItemToObject(out, "active", api_active_json(&ad));
        }
        hb_httpd_reply_json(req, MHD_HTTP_CONFLICT, out);
        hb_admission_finish(&ad);
        return;
    }
    atomic_fetch_add(ad.again ? &a->metrics.readmissions : &a->metrics.admissions, 1);
    atomic_fetch_add(&a->metrics.evictions, ad.n_evicted);
    for (size_t i = 0; i < ad.n_evicted; i++)
        api_stop(a, account, ad.evicted[i], "evicted");
    allow(a, req, account, device, media, &ad, false);
    hb_admission_finish(&ad);
}

void api_play_delete(struct api *a, struct hb_httpd_request *req, const struct api_path *path)
{
    char err[256];
    struct rcluster *c = api_pool_take(&a->pool, err, sizeof(err));
    int rc = c ? hb_plays_release(c, path->account, path->device, err, sizeof(err)) : -1;
    api_pool_give(&a->pool, c, rc >= 0);
    if (rc < 0) {
        api_unavailable(a, req, err);
        return;
    }
    if (rc == 1)
        atomic_fetch_add(&a->metrics.releases, 1);
    /* Sent also when the slot had already lapsed: a device that still plays must stop. */
    api_stop(a, path->account, path->device, "released");
    cJSON *out = cJSON_CreateObject();
    if (out != NULL)
        cJSON_AddBoolToObject(out, "released", rc == 1);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}
