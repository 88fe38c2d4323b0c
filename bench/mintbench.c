/* hb-mintbench: mints N device tokens the way hb-api's POST /v1/plays does (pinned device,
 * control topic, live count topic), for callgrind's instruction counts of minting alone:
 *   valgrind --tool=callgrind hb-mintbench KEYFILE N
 * Prints the last token, so a run can also be checked by hand or with python3-jwt. */
#include "keyring.h"
#include "mint.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: hb-mintbench KEYFILE N\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    struct hb_key key;
    char err[256];
    if (n <= 0 || !hb_key_load(&key, "bench", argv[1], err, sizeof(err))) {
        fprintf(stderr, "hb-mintbench: %s\n", n <= 0 ? "N must be positive" : err);
        return 2;
    }
    struct hb_token_request req = {
        .role = HB_ROLE_DEVICE,
        .account = "acct-12345",
        .device = "dev-2",
        .now_s = 1800000000,
        .ttl_s = 1800,
        .control_prefix = "ctl",
        .subscribe_topic = "live/media/film-7",
    };
    char *token = NULL;
    for (long i = 0; i < n; i++) {
        free(token);
        token = hb_token_mint(&key, &req, err, sizeof(err));
        if (token == NULL) {
            fprintf(stderr, "hb-mintbench: %s\n", err);
            hb_key_finish(&key);
            return 1;
        }
    }
    puts(token);
    free(token);
    hb_key_finish(&key);
    return 0;
}
