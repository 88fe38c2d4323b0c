/* Builds the run's population. Ids live in one allocation (id_storage) with pointer arrays
 * into it, so 200k devices cost a few MB and a single free; every random draw happens here,
 * in a fixed order, so the same seed gives the same population. */
#include "plan.h"

#include "log.h"
#include "schedule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct agent {
    const char *os, *browser, *device;
};

static const struct agent agents[] = {
    {"Android", "ExoPlayer", "Pixel 7"}, {"Android", "Chrome", "Galaxy S23"},
    {"iOS", "AVPlayer", "iPhone 14"},    {"iPadOS", "Safari", "iPad Air"},
    {"Windows", "Chrome", "Desktop"},    {"Windows", "Edge", "Surface Laptop"},
    {"macOS", "Safari", "MacBook Air"},  {"Linux", "Firefox", "Desktop"},
    {"tvOS", "AVPlayer", "Apple TV 4K"}, {"Tizen", "Samsung TV", "QE55Q80"},
    {"webOS", "LG TV", "OLED55C3"},      {"Android TV", "ExoPlayer", "Chromecast"},
    {"Roku OS", "Roku", "Roku Ultra"},   {"Fire OS", "ExoPlayer", "Fire TV Stick"},
};

static const unsigned bitrates[] = {400, 800, 1500, 3000, 4500, 6000, 8000, 12000};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static int digits(size_t n)
{
    int d = 1;
    while (n >= 10) {
        n /= 10;
        d++;
    }
    return d;
}

bool plan_init(struct plan *p, const struct plan_params *params, struct rng *r)
{
    memset(p, 0, sizeof(*p));
    size_t n_accounts = params->n_accounts;
    unsigned *counts = calloc(n_accounts + 1, sizeof(unsigned));
    if (counts == NULL) {
        HB_ERROR("plan: out of memory for %zu accounts", n_accounts);
        return false;
    }
    size_t n_devices = 0;
    for (size_t a = 0; a < n_accounts; a++) {
        counts[a] = (unsigned)rng_range(r, params->devices_min, params->devices_max);
        n_devices += counts[a];
    }

    int account_width = digits(n_accounts ? n_accounts - 1 : 0);
    if (account_width < 4)
        account_width = 4;
    int device_width = digits(params->devices_max ? params->devices_max - 1 : 0);
    if (device_width < 2)
        device_width = 2;
    size_t account_len = strlen(params->account_prefix) + (size_t)account_width;
    size_t device_len = account_len + 4 + (size_t)device_width; /* "-dev" */
    if (device_len > HB_ID_MAX) {
        HB_ERROR("plan: device ids would be %zu bytes, more than %d; use a shorter "
                 "--account-prefix",
                 device_len, HB_ID_MAX);
        goto fail;
    }

    p->n_accounts = n_accounts;
    p->n_devices = n_devices;
    size_t storage = n_accounts * (account_len + 1) + n_devices * (device_len + 1) + 1;
    p->id_storage = malloc(storage);
    p->accounts = calloc(n_accounts + 1, sizeof(*p->accounts));
    p->devices = calloc(n_devices + 1, sizeof(*p->devices));
    p->device_account = calloc(n_devices + 1, sizeof(*p->device_account));
    p->device = calloc(n_devices + 1, sizeof(*p->device));
    if (!p->id_storage || !p->accounts || !p->devices || !p->device_account || !p->device) {
        HB_ERROR("plan: out of memory for %zu devices", n_devices);
        goto fail;
    }

    char *next = p->id_storage, *end = p->id_storage + storage;
    size_t d = 0;
    for (size_t a = 0; a < n_accounts; a++) {
        /* The sizes above make every id fit; snprintf only guards that arithmetic. */
        int n = snprintf(next, (size_t)(end - next), "%s%0*zu", params->account_prefix,
                         account_width, a);
        if (n < 0 || n >= end - next) {
            HB_ERROR("plan: id storage miscomputed");
            goto fail;
        }
        p->accounts[a] = next;
        next += n + 1;
        for (unsigned k = 0; k < counts[a]; k++, d++) {
            n = snprintf(next, (size_t)(end - next), "%s-dev%0*u", p->accounts[a], device_width, k);
            if (n < 0 || n >= end - next || !hb_id_valid(next, (size_t)n)) {
                HB_ERROR("plan: device id '%s' is not a valid id", next);
                goto fail;
            }
            p->devices[d] = next;
            p->device_account[d] = a;
            next += n + 1;

            struct plan_device *dev = &p->device[d];
            struct schedule_window w = schedule_window(r, params->churn, params->duration_ms);
            dev->account = a;
            dev->start_ms = w.start_ms;
            dev->stop_ms = w.stop_ms;
            dev->media = (unsigned)rng_range(r, 1, 9999);
            dev->bitrate = bitrates[rng_range(r, 0, COUNT(bitrates) - 1)];
            dev->agent = (unsigned)rng_range(r, 0, COUNT(agents) - 1);
        }
        if (!hb_id_valid(p->accounts[a], strlen(p->accounts[a]))) {
            HB_ERROR("plan: account id '%s' is not a valid id", p->accounts[a]);
            goto fail;
        }
    }
    free(counts);
    return true;
fail:
    free(counts);
    plan_finish(p);
    return false;
}

void plan_finish(struct plan *p)
{
    free(p->id_storage);
    free(p->accounts);
    free(p->devices);
    free(p->device_account);
    free(p->device);
    memset(p, 0, sizeof(*p));
}

struct truth_ids plan_truth_ids(const struct plan *p)
{
    struct truth_ids ids = {
        .n_accounts = p->n_accounts,
        .accounts = p->accounts,
        .n_devices = p->n_devices,
        .devices = p->devices,
        .device_account = p->device_account,
    };
    return ids;
}

void plan_agent(const struct plan_device *d, const char **os, const char **browser,
                const char **model)
{
    const struct agent *ag = &agents[d->agent % COUNT(agents)];
    *os = ag->os;
    *browser = ag->browser;
    *model = ag->device;
}
