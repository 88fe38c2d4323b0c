/* The population of a run, drawn from the seed before anything connects: accounts, their
 * devices (ids, active windows, what each device claims to play). */
#ifndef HB_SIM_PLAN_H
#define HB_SIM_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "rng.h"
#include "truth.h"

struct plan_params {
    size_t n_accounts;
    unsigned devices_min, devices_max; /* per account, drawn uniformly in [min, max] */
    const char *account_prefix;        /* account ids are <prefix><number>, zero-padded */
    double churn;                      /* see schedule_window */
    int64_t duration_ms;
};

struct plan_device {
    size_t account;   /* index into plan.accounts */
    int64_t start_ms; /* active window, after the run start */
    int64_t stop_ms;
    unsigned media;   /* payload: mediaId m-<media> */
    unsigned bitrate; /* payload: kbit/s */
    unsigned agent;   /* payload: index into the user-agent table */
};

struct plan {
    size_t n_accounts;
    size_t n_devices;
    char *id_storage;           /* every id, NUL-terminated, back to back */
    const char **accounts;      /* [n_accounts] */
    const char **devices;       /* [n_devices] */
    size_t *device_account;     /* [n_devices] */
    struct plan_device *device; /* [n_devices] */
};

/* Draws the population from r. Account ids are <prefix><n> and device ids <account>-dev<k>,
 * numbers zero-padded so ids sort like their numbers; all satisfy hb_id_valid and are unique.
 * Returns false (after reporting why) when out of memory or an id would be too long; p is
 * then empty and safe to pass to plan_finish. */
bool plan_init(struct plan *p, const struct plan_params *params, struct rng *r);

/* Frees what plan_init allocated. */
void plan_finish(struct plan *p);

/* The plan's ids in the shape truth_create wants (borrowed from p). */
struct truth_ids plan_truth_ids(const struct plan *p);

/* What device claims to run on, from the user-agent table (static strings, JSON-safe). */
void plan_agent(const struct plan_device *d, const char **os, const char **browser,
                const char **model);

#endif
