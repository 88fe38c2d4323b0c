/* The demo backend (--demo-backend): what a video platform's own backend would do for its player
 * page, without an API key because the browser must never hold one. Each route calls the very
 * endpoint a backend calls (POST /v1/plays, DELETE /v1/plays/...), so a page sees exactly the
 * API's answers; a real backend would take the account from its own login session instead. */
#include "api.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#define DEMO_PLAYS "/demo/plays"

/* GET /demo/config: where and how the page connects. */
static void config(struct api *a, struct hb_httpd_request *req)
{
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddStringToObject(out, "mqtt_url", a->set.demo_mqtt_url);
        cJSON_AddStringToObject(out, "topic_prefix", a->set.topic_prefix);
        cJSON_AddStringToObject(out, "control_prefix", a->set.control_prefix);
        cJSON_AddStringToObject(out, "live_prefix", API_LIVE_PREFIX);
        cJSON_AddNumberToObject(out, "heartbeat_seconds", (double)a->set.heartbeat_s);
    }
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}

/* The API path a demo path stands for (/demo/X... as /v1/X...), checked as the API checks it;
 * false after refusing when it is not the route wanted. */
static bool v1_path(struct api *a, struct hb_httpd_request *req, enum api_route want,
                    struct api_path *path)
{
    char v1[300];
    snprintf(v1, sizeof(v1), "/v1/%s", req->path + strlen("/demo/"));
    const char *field = NULL;
    enum api_bad bad = api_path_parse(v1, path, &field);
    if (bad == API_BAD_NONE && path->route != want)
        bad = API_BAD_NOT_FOUND;
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return false;
    }
    snprintf(req->log_account, sizeof(req->log_account), "%s", path->account);
    return true;
}

void api_demo_handle(struct api *a, struct hb_httpd_request *req)
{
    const char *p = req->path;
    bool get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    if (strcmp(p, "/demo/config") == 0) {
        if (get)
            config(a, req);
        else
            api_refuse(a, req, API_BAD_METHOD, NULL);
    } else if (strcmp(p, DEMO_PLAYS) == 0) {
        if (strcmp(req->method, "POST") != 0) {
            api_refuse(a, req, API_BAD_METHOD, NULL);
            return;
        }
        /* application/json only: a cross-origin page cannot send it without a CORS preflight,
         * which is never answered, so other sites cannot admit or stop devices through here. */
        cJSON *body = api_request_json(a, req);
        if (body != NULL)
            api_plays_post(a, req, body);
        cJSON_Delete(body);
    } else if (strncmp(p, DEMO_PLAYS "/", strlen(DEMO_PLAYS "/")) == 0) {
        struct api_path path;
        if (strcmp(req->method, "DELETE") != 0)
            api_refuse(a, req, API_BAD_METHOD, NULL);
        else if (v1_path(a, req, API_ROUTE_PLAY, &path))
            api_play_delete(a, req, &path);
    } else if (strncmp(p, "/demo/accounts/", strlen("/demo/accounts/")) == 0) {
        /* The active devices of an account: what "stop one of these" lists after a stop. */
        struct api_path path;
        if (!get)
            api_refuse(a, req, API_BAD_METHOD, NULL);
        else if (v1_path(a, req, API_ROUTE_ACCOUNT, &path))
            api_account_get(a, req, &path);
    } else {
        api_refuse(a, req, API_BAD_NOT_FOUND, NULL);
    }
}
