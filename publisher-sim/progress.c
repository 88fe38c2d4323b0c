/* Progress lines and the sum of the workers' counters. The terminal form stays under 100
 * columns for 200,000 devices so that rewriting it with \r never wraps. */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void progress_sum(struct sim_stats *total, const struct sim_stats *parts, size_t n)
{
    memset(total, 0, sizeof(*total));
    bool all_connected = true;
    for (size_t i = 0; i < n; i++) {
        const struct sim_stats *p = &parts[i];
        total->devices += p->devices;
        total->connected += p->connected;
        total->connecting += p->connecting;
        total->connected_max += p->connected_max;
        total->ever_connected += p->ever_connected;
        total->connects += p->connects;
        total->published += p->published;
        total->acked += p->acked;
        total->errors += p->errors;
        total->connect_failed += p->connect_failed;
        total->refused += p->refused;
        total->dropped += p->dropped;
        total->token_errors += p->token_errors;
        total->lost += p->lost;
        total->skipped += p->skipped;
        total->steady_sent += p->steady_sent;
        total->steady_held += p->steady_held;
        if (p->steady_ms > total->steady_ms)
            total->steady_ms = p->steady_ms;
        if (i == 0 || p->start_ms < total->start_ms)
            total->start_ms = p->start_ms;
        if (i == 0 || p->end_ms < total->end_ms)
            total->end_ms = p->end_ms;
        if (p->all_connected_ms == 0)
            all_connected = false;
        else if (p->all_connected_ms > total->all_connected_ms)
            total->all_connected_ms = p->all_connected_ms;
        total->interrupted = total->interrupted || p->interrupted;
    }
    if (!all_connected || n == 0)
        total->all_connected_ms = 0;
}

int progress_format(char *buf, size_t size, const struct progress_view *v, bool terminal)
{
    if (terminal)
        return snprintf(buf, size,
                        "hb-sim %7.1fs  connected %zu/%zu  connecting %zu  failed %" PRIu64
                        "  hb/s %.0f  errors %" PRIu64 "  lost %" PRIu64,
                        v->elapsed_s, v->connected, v->devices, v->connecting, v->failed,
                        v->hb_per_s, v->errors, v->lost);
    return snprintf(buf, size,
                    "hb-sim: %.1fs connected=%zu/%zu connecting=%zu failed=%" PRIu64
                    " hb_per_s=%.0f errors=%" PRIu64 " lost=%" PRIu64,
                    v->elapsed_s, v->connected, v->devices, v->connecting, v->failed, v->hb_per_s,
                    v->errors, v->lost);
}
