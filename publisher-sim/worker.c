/* A worker: the simulator on one slice, plus what the parent needs to show and merge. Its
 * truth spans the whole plan but only its own devices' bits are ever set, so the parent's OR
 * of all workers' truths is the run's truth. */
#include "worker.h"

#include "log.h"
#include "procstat.h"
#include "schedule.h"
#include "wire.h"

#include <errno.h>
#include <string.h>

/* Memory is read every this many reports: smaps_rollup walks the whole address space. */
#define WORKER_MEMORY_EVERY 4

struct worker {
    int fd;
    unsigned reports;
    uint64_t rss_kib, pss_kib;
    uint32_t fds; /* descriptors when all devices had connected, once measured */
};

static bool send_report(struct worker *w, const struct sim_stats *st, bool final)
{
    struct wire_report r;
    memset(&r, 0, sizeof(r)); /* padding too: the bytes go to another process */
    r.stats = *st;
    if (w->reports++ % WORKER_MEMORY_EVERY == 0 || final)
        procstat_memory(&w->rss_kib, &w->pss_kib);
    r.rss_kib = w->rss_kib;
    r.pss_kib = w->pss_kib;
    if (st->all_connected_ms != 0 && w->fds == 0 && st->devices > 0)
        w->fds = procstat_fds();
    r.fds = w->fds;
    r.final = final;
    return wire_send(w->fd, WIRE_REPORT, &r, sizeof(r));
}

static bool on_report(void *ctx, const struct sim_stats *st)
{
    return send_report(ctx, st, false);
}

int worker_run(const struct sim_config *cfg, int fd, int64_t start_ms)
{
    struct worker w = {.fd = fd};
    struct sim_config sc = *cfg;
    sc.report = on_report;
    sc.report_ctx = &w;
    sc.report_ms = WORKER_REPORT_MS;

    int64_t first;
    size_t planned =
        schedule_complete(start_ms, start_ms + cfg->duration_ms, cfg->interval_ms, &first);
    struct truth_ids ids = plan_truth_ids(cfg->plan);
    struct truth *truth = truth_create(&ids, first, cfg->interval_ms, planned);
    if (truth == NULL)
        return 1;
    struct sim *sim = sim_create(&sc);
    if (sim == NULL) {
        truth_destroy(truth);
        return 1;
    }
    int rc = sim_run(sim, start_ms, truth) == 0 ? 0 : 1;
    struct sim_stats st;
    sim_get_stats(sim, &st);
    if (!send_report(&w, &st, true) ||
        !wire_send_truth(fd, truth, cfg->first_device, cfg->n_devices)) {
        if (errno != EPIPE)
            HB_ERROR("hb-sim worker: reporting to the parent: %s", strerror(errno));
        rc = 1;
    }
    sim_destroy(sim);
    truth_destroy(truth);
    return rc;
}
