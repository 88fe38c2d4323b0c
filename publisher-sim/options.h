/* hb-sim's command line: the shared settings of common/config.h plus the simulator's own,
 * parsed and checked as a whole before anything is set up. */
#ifndef HB_SIM_OPTIONS_H
#define HB_SIM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* One MQTT broker address from tcp://host:port or mqtt://host:port, or with TLS from
 * ssl://host:port or mqtts://host:port. */
struct options_broker {
    char host[256];
    int port;
    bool tls;
};

#define OPTIONS_SOURCES_MAX 1024 /* --source-address addresses, ranges expanded */
#define OPTIONS_ADDR_MAX 46      /* an IPv6 address as text, NUL included */
#define OPTIONS_WORKERS_MAX 256

struct options {
    struct hb_config common;
    struct options_broker brokers[HB_BROKERS_MAX]; /* parsed common.brokers */
    size_t n_accounts;
    unsigned devices_min, devices_max; /* per account, drawn in [min, max] */
    double heartbeat_s;
    double jitter;
    double duration_s;
    double hold_s; /* > 0: the run ends this long after the last device connected */
    double churn;
    double connect_rate; /* new connections per second, all workers together */
    int64_t guard_ms;
    int qos;
    int keepalive_s;
    uint64_t seed;
    bool seed_given;
    unsigned workers;                  /* 0: from the device count and the open-file limit */
    char (*sources)[OPTIONS_ADDR_MAX]; /* [n_sources] local addresses to bind, owned */
    size_t n_sources;
    const char *account_prefix;
    const char *username; /* NULL: each device uses its account id */
    const char *password;
    const char *key_path; /* mint a token per device with this key; NULL: no tokens */
    const char *kid;      /* NULL: the key file's name without directory and extension */
    double token_ttl_s;   /* 0: the run's duration plus OPTIONS_TOKEN_MARGIN_S */
    const char *ca_file;  /* TLS brokers: CA certificates (PEM); NULL: the system's */
    const char *payload_template_path;
    const char *truth_path;
    const char *api_url; /* --api: devices ask hb-api for admission; NULL: off */
    const char *api_key_file;
    const char *control_prefix;   /* stops arrive on <prefix>/<account>/<device> */
    double vanish;                /* fraction of admitted devices ending without a stop */
    const char *plays_truth_path; /* JSON Lines of admissions, refusals, stops */
    double progress_s; /* seconds between progress lines; 0: 1 on a terminal, 10 otherwise */
    bool json;
    bool quiet;
};

/* How long a device token outlives the run by default, seconds. */
#define OPTIONS_TOKEN_MARGIN_S 600

/* Largest --seed: 15 decimal digits survive any JSON reader as a number. */
#define OPTIONS_SEED_MAX UINT64_C(999999999999999)

/* Fills o from the environment, defaults and argv. Returns 0 to run, 1 when the program should
 * exit successfully (--help, --version; already printed), 2 on a usage error (reported).
 * Strings in o point into argv or the environment; call options_finish in every case. */
int options_parse(struct options *o, int argc, char **argv);

/* Frees what options_parse allocated (the source addresses). */
void options_finish(struct options *o);

/* Adds the local addresses of one --source-address argument to o->sources: an IPv4 or IPv6
 * address, or an IPv4 range FIRST-LAST (127.0.0.2-127.0.0.20, or 127.0.0.2-20 for the last
 * byte), both ends included. Returns false with a reason in err when arg is malformed, the
 * range is reversed, or the addresses would exceed OPTIONS_SOURCES_MAX. */
bool options_sources_add(struct options *o, const char *arg, char *err, size_t errlen);

/* Parses tcp://host:port or mqtt://host:port (port defaults to 1883), or ssl:// or mqtts://
 * for TLS (port defaults to 8883); an IPv6 host is written [addr]. Returns false with a reason in
 * err when uri is malformed. */
bool options_broker_parse(const char *uri, struct options_broker *out, char *err, size_t errlen);

/* Parses "M" or "MIN-MAX" (0 <= MIN <= MAX <= max). False when malformed or out of range. */
bool options_range_parse(const char *arg, unsigned max, unsigned *min_out, unsigned *max_out);

#endif
