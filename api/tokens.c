/* POST /v1/tokens: hb-tokend's contract inside hb-api — {"account", "device"?, "ttl"?} with
 * an API key gives {"token", "expires_at", "kid"}. Ids are checked by the same input rules as
 * every other endpoint, so "acctA\u0000evil" is refused instead of minting for "acctA". */
#include "api.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

void api_tokens_post(struct api *a, struct hb_httpd_request *req, cJSON *body)
{
    static const char *const fields[] = {"account", "device", "ttl", NULL};
    char account[HB_ID_MAX + 1], device[HB_ID_MAX + 1];
    long ttl = 0;
    const char *field = NULL;
    enum api_bad bad = api_json_only(body, fields, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "account", true, account, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_id(body, "device", false, device, &field);
    if (bad == API_BAD_NONE)
        bad = api_json_long(body, "ttl", false, 1, API_TOKEN_MAX_TTL, a->set.token_ttl, &ttl,
                            &field);
    if (bad != API_BAD_NONE) {
        api_refuse(a, req, bad, field);
        return;
    }
    snprintf(req->log_account, sizeof(req->log_account), "%s", account);
    int64_t expires_at = 0;
    char *token = api_mint_device(a, account, device[0] ? device : NULL, NULL, ttl, &expires_at);
    if (token == NULL) {
        hb_httpd_reply_json(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL);
        return;
    }
    cJSON *out = cJSON_CreateObject();
    if (out != NULL) {
        cJSON_AddStringToObject(out, "token", token);
        cJSON_AddNumberToObject(out, "expires_at", (double)expires_at);
        cJSON_AddStringToObject(out, "kid", a->key->kid);
    }
    memset(token, 0, strlen(token));
    free(token);
    hb_httpd_reply_json(req, MHD_HTTP_OK, out);
}
