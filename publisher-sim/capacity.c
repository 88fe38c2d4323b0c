/* Fitting a run to the machine. A worker holds fds_per_connection descriptors per device plus
 * a fixed reserve, so the open-file limit sets how many devices one process may drive; the
 * worker count follows, and the messages name the knob to turn (--workers, ulimit -n, more
 * brokers or source addresses, the port range). */
#include "capacity.h"

#include <stdio.h>

static size_t ceil_div(size_t a, size_t b)
{
    return b == 0 ? 0 : a / b + (a % b != 0);
}

bool capacity_plan(const struct capacity_input *in, struct capacity_plan *out, char *problem,
                   size_t len)
{
    *out = (struct capacity_plan){0};
    unsigned per_fd = in->fds_per_connection ? in->fds_per_connection : 1;
    uint64_t usable =
        in->fd_limit > CAPACITY_RESERVED_FDS ? in->fd_limit - CAPACITY_RESERVED_FDS : 0;
    size_t per_worker_max = (size_t)(usable / per_fd);
    out->per_worker_max = per_worker_max;
    if (per_worker_max == 0) {
        snprintf(problem, len,
                 "the open-file limit (%llu) leaves no room for connections: raise it with "
                 "ulimit -n (hard limit %llu)",
                 (unsigned long long)in->fd_limit, (unsigned long long)in->fd_hard);
        return false;
    }
    unsigned workers = in->workers;
    if (workers == 0) {
        size_t need = ceil_div(in->devices, per_worker_max);
        if (need > in->workers_max) {
            snprintf(problem, len,
                     "%zu devices need %zu worker processes of at most %zu connections each "
                     "(open-file limit %llu, %u per connection), more than %u: raise ulimit -n "
                     "(hard limit %llu) or run hb-sim on several machines",
                     in->devices, need, per_worker_max, (unsigned long long)in->fd_limit, per_fd,
                     in->workers_max, (unsigned long long)in->fd_hard);
            return false;
        }
        workers = need ? (unsigned)need : 1;
    }
    if (in->devices > 0 && workers > in->devices)
        workers = (unsigned)in->devices; /* no worker without a device */
    size_t per_worker = ceil_div(in->devices, workers);
    if (per_worker > per_worker_max) {
        size_t need = ceil_div(in->devices, per_worker_max);
        snprintf(problem, len,
                 "--workers %u puts up to %zu connections in one process, %llu open files with "
                 "%u per connection, but the limit is %llu: use --workers %zu or more (or leave "
                 "--workers out), or raise ulimit -n (hard limit %llu)",
                 workers, per_worker,
                 (unsigned long long)per_worker * per_fd + CAPACITY_RESERVED_FDS, per_fd,
                 (unsigned long long)in->fd_limit, need, (unsigned long long)in->fd_hard);
        return false;
    }
    out->workers = workers;
    out->per_worker = per_worker;
    return true;
}

bool capacity_ports(const struct capacity_input *in, const struct capacity_plan *plan,
                    char *problem, size_t len)
{
    (void)plan;
    size_t pools = in->n_sources ? in->n_sources : in->n_brokers;
    size_t per_pool = ceil_div(in->devices, pools ? pools : 1);
    /* Linux hands out ports of one parity first (even ones to connect(), odd ones to bind()).
     * Past half the range every new connection scans the whole exhausted half before trying
     * the other, and a ramp of thousands of connects per second stalls in the kernel. */
    unsigned fast = in->ports / 2;
    if (in->ports == 0 || per_pool <= fast)
        return true;
    size_t need = ceil_div(in->devices, fast);
    if (in->n_sources > 0)
        snprintf(problem, len,
                 "up to %zu connections are bound to one source address, more than half of its "
                 "%u ephemeral ports (net.ipv4.ip_local_port_range; beyond half, every connect "
                 "scans the exhausted half first and the ramp stalls; all brokers share an "
                 "address's ports): give at least %zu addresses with --source-address (a range "
                 "such as 127.0.0.2-127.0.0.%zu), or widen the port range",
                 per_pool, in->ports, need, need + 1 > 254 ? (size_t)254 : need + 1);
    else
        snprintf(problem, len,
                 "up to %zu connections go to one broker address, more than half of the %u "
                 "ephemeral ports of a (source address, broker address) pair "
                 "(net.ipv4.ip_local_port_range; beyond half, every connect scans the exhausted "
                 "half first and the ramp stalls): spread the connections over local addresses "
                 "with --source-address (at least %zu, e.g. 127.0.0.2-127.0.0.%zu), or add "
                 "--broker addresses, or widen the port range",
                 per_pool, in->ports, need, need + 1 > 254 ? (size_t)254 : need + 1);
    return false;
}
