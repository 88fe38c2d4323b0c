/* The set-up steps hb-api and hb-tokend share: the signing key and the API keys, the blocked
 * stop signals that main's sigwait collects, and the HTTP server over api_handle. Each program
 * keeps its own options and messages; the steps themselves exist once. */
#include "api.h"

#include "../token/keyfile.h"
#include "log.h"

#include <pthread.h>

bool api_keys_setup(struct hb_key *key, struct api_keys *api_keys, const char *key_file,
                    const char *kid, const char *api_key_file)
{
    char err[512];
    if (!keyfile_load(key, key_file, kid))
        return false;
    if (!key->can_sign) {
        HB_ERROR("%s: a public key cannot sign; give the private key or the secret", key_file);
        hb_key_finish(key);
        return false;
    }
    if (!api_keys_load(api_keys, api_key_file, err, sizeof(err))) {
        HB_ERROR("%s", err);
        hb_key_finish(key);
        return false;
    }
    return true;
}

bool api_block_signals(sigset_t *stop)
{
    sigemptyset(stop);
    sigaddset(stop, SIGINT);
    sigaddset(stop, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, stop, NULL) == 0)
        return true;
    HB_ERROR("cannot block SIGINT/SIGTERM");
    return false;
}

struct hb_httpd *api_serve(struct api *a, const char *listen, const struct sockaddr *addr,
                           unsigned max_connections, unsigned threads)
{
    struct hb_httpd_config hc = {
        .max_connections = max_connections,
        .threads = threads,
        .body_max = API_BODY_MAX,
        .handler = api_handle,
        .ud = a,
        .access_log = true,
    };
    struct hb_httpd *httpd = hb_httpd_start(&hc, addr);
    if (httpd == NULL)
        HB_ERROR("cannot listen on %s", listen);
    return httpd;
}
