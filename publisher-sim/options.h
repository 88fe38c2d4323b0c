/* hb-sim's command line: the shared settings of common/config.h plus the simulator's own,
 * parsed and checked as a whole before anything is set up. */
#ifndef HB_SIM_OPTIONS_H
#define HB_SIM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* One MQTT broker address from tcp://host:port or mqtt://host:port. */
struct options_broker {
    char host[256];
    int port;
};

struct options {
    struct hb_config common;
    struct options_broker brokers[HB_BROKERS_MAX]; /* parsed common.brokers */
    size_t n_accounts;
    unsigned devices_min, devices_max; /* per account, drawn in [min, max] */
    double heartbeat_s;
    double jitter;
    double duration_s;
    double churn;
    double connect_rate; /* new connections per second */
    int64_t guard_ms;
    int qos;
    uint64_t seed;
    bool seed_given;
    const char *account_prefix;
    const char *username; /* NULL: each device uses its account id */
    const char *password;
    const char *truth_path;
    bool json;
    bool quiet;
};

/* Largest --seed: 15 decimal digits survive any JSON reader as a number. */
#define OPTIONS_SEED_MAX UINT64_C(999999999999999)

/* Fills o from the environment, defaults and argv. Returns 0 to run, 1 when the program should
 * exit successfully (--help, --version; already printed), 2 on a usage error (reported).
 * Strings in o point into argv or the environment. */
int options_parse(struct options *o, int argc, char **argv);

/* Parses tcp://host:port or mqtt://host:port (port defaults to 1883; an IPv6 host is written
 * [addr]). Returns false with a reason in err when uri is malformed. */
bool options_broker_parse(const char *uri, struct options_broker *out, char *err, size_t errlen);

/* Parses "M" or "MIN-MAX" (0 <= MIN <= MAX <= max). False when malformed or out of range. */
bool options_range_parse(const char *arg, unsigned max, unsigned *min_out, unsigned *max_out);

#endif
