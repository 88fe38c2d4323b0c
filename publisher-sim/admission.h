/* The device side of hb-api's admission: POST /v1/plays over a small blocking HTTP/1.1 client
 * (loopback or LAN, bounded by a timeout), and the answer reduced to what a device needs. */
#ifndef HB_SIM_ADMISSION_H
#define HB_SIM_ADMISSION_H

#include <stdbool.h>
#include <stddef.h>

/* Where hb-api listens and the service key the simulator presents. */
struct admission_api {
    char host[64]; /* an IPv4 address as text */
    int port;
    char key[256]; /* the first key of --api-key-file */
    int timeout_ms;
};

/* One answer of POST /v1/plays. */
struct admission_answer {
    int status; /* 200 admitted, 409 refused */
    bool allow;
    char *token;     /* 200: the device's MQTT token, owned */
    long limit;      /* the limit in force */
    char reason[32]; /* 409: account_limit or group_limit */
    char *ids;       /* 200: the evicted ids, 409: the active ids; a JSON array, owned */
};

/* Fills api from http://HOST:PORT[/] (HOST an IPv4 address or localhost) and the first line
 * of key_file that is neither blank nor a # comment. False with a reason in err. */
bool admission_api_init(struct admission_api *api, const char *url, const char *key_file, char *err,
                        size_t errlen);

/* Parses an HTTP status and JSON body of POST /v1/plays into out (which the caller finishes
 * in every case). Accepts 200 with allow true and a token, and 409 with allow false; every id
 * listed must be a valid id. False with a reason in err for anything else. */
bool admission_parse(int status, const char *body, size_t len, struct admission_answer *out,
                     char *err, size_t errlen);

/* Asks api whether device of account may play: one connection, Connection: close, every
 * wait bounded by api->timeout_ms. Blocks the caller. False with a reason in err when the
 * service could not be reached or answered something other than admitted or refused. */
bool admission_request(const struct admission_api *api, const char *account, const char *device,
                       struct admission_answer *out, char *err, size_t errlen);

/* Frees what an answer owns; a zeroed answer is a no-op. */
void admission_answer_finish(struct admission_answer *a);

#endif
