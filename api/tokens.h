/* POST /v1/tokens, the one implementation behind hb-api's token endpoint and hb-tokend (hb-api
 * in its tokens-only mode): each API key's token bucket (--rate-limit, --burst), and the
 * refusal reasons of hb-tokend's documented {"error": "bad_request", "reason": ...} replies. */
#ifndef HB_API_TOKENS_H
#define HB_API_TOKENS_H

#include "../token/apikeys.h"
#include "input.h"
#include "ratelimit.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define API_TOKENS_RATE_MAX 1e6

struct api_tokens {
    long default_ttl, max_ttl; /* seconds; 1 <= default_ttl <= max_ttl */
    pthread_mutex_t lock;      /* the buckets are taken on every server thread */
    struct hb_bucket buckets[API_KEYS_MAX];
};

/* Sets the lifetimes and one bucket per API key: rate_per_s tokens a second (0: no limit) in
 * bursts of burst (0: 2 x the rate, at least 1). Call api_tokens_rate_check first. */
void api_tokens_init(struct api_tokens *t, long default_ttl, long max_ttl, double rate_per_s,
                     double burst);

void api_tokens_finish(struct api_tokens *t);

/* The burst a rate and a --burst give (see api_tokens_init). False after reporting a --burst
 * below one token, which no key could ever mint with. */
bool api_tokens_rate_check(double rate_per_s, double burst, double *effective);

/* Takes one token from the bucket of API key `key`. False with the whole seconds (>= 1) until
 * one is there. */
bool api_tokens_take(struct api_tokens *t, int key, long *retry_after_s);

/* hb-tokend's "reason" for a refusal of bad with field (NULL when there is none, as for 401,
 * 404 and 405). body[0..len) is the request body, read only to tell JSON that is not an object
 * from text that is not JSON. */
const char *api_tokens_reason(const struct api_tokens *t, enum api_bad bad, const char *field,
                              const char *body, size_t len, char *buf, size_t buflen);

#endif
