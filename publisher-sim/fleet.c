/* The fleet's parent: forks the workers, then only listens. Each worker writes framed
 * messages to its own pipe; the parent polls the pipes and its signalfd, keeps each worker's
 * latest counters, prints their sum as progress, merges the truths, and reaps the workers. A
 * worker that dies stops the run: its devices' truth would be missing. */
#include "fleet.h"

#include "interval.h"
#include "log.h"
#include "procstat.h"
#include "progress.h"
#include "rng.h"
#include "wire.h"
#include "worker.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct worker_slot {
    pid_t pid; /* 0 once reaped */
    int fd;    /* read end of its pipe, -1 once closed */
    struct wire_reader reader;
    struct wire_report last; /* its latest counters */
    bool final, truth;       /* its final report and its truth arrived */
};

struct fleet {
    const struct fleet_config *cfg;
    struct worker_slot *w;
    struct sim_stats *scratch; /* [n], for summing */
    struct pollfd *pfd;        /* [n + 1] */
    unsigned n;
    unsigned live; /* pipes still open */
    struct truth *truth;
    struct fleet_result *out;
    int64_t start_ms;
    int sigfd;
    unsigned user_signals;
    bool failed;   /* a worker failed or sent something unusable */
    bool stopping; /* the others were told to stop because of it */
    bool held;     /* the workers were told when the hold ends */

    int64_t next_progress;
    int64_t last_progress_ms;
    uint64_t last_published;
    double hb_per_s;
    bool line_open; /* a progress line is showing on the terminal */
    uint64_t parent_rss, parent_pss;
};

/* Sends sig to every worker still running. */
static void signal_workers(struct fleet *f, int sig)
{
    for (unsigned i = 0; i < f->n; i++)
        if (f->w[i].pid > 0 && kill(f->w[i].pid, sig) < 0 && errno != ESRCH)
            HB_WARN("hb-sim: kill(%d, %s): %s", (int)f->w[i].pid, strsignal(sig), strerror(errno));
}

static void totals(const struct fleet *f, struct sim_stats *total)
{
    for (unsigned i = 0; i < f->n; i++)
        f->scratch[i] = f->w[i].last.stats;
    progress_sum(total, f->scratch, f->n);
}

/* Ends the terminal's progress line so that a log line does not overwrite it. */
static void end_line(struct fleet *f)
{
    if (f->line_open) {
        fputc('\n', stderr);
        f->line_open = false;
    }
}

static void fail_run(struct fleet *f)
{
    f->failed = true;
    if (!f->stopping) {
        f->stopping = true;
        signal_workers(f, SIGUSR1);
    }
}

/* --hold: once every device of every worker has connected, tells each worker when the run
 * ends (SIM_HOLD_SIGNAL carries ms after the start), so all of them stop together. */
static void hold(struct fleet *f, const struct sim_stats *t)
{
    if (f->cfg->hold_ms <= 0 || f->held || t->all_connected_ms == 0)
        return;
    f->held = true;
    int64_t end = t->all_connected_ms + f->cfg->hold_ms - f->start_ms;
    union sigval v = {.sival_int = end > INT32_MAX ? INT32_MAX : (int)end};
    for (unsigned i = 0; i < f->n; i++)
        if (f->w[i].pid > 0 && sigqueue(f->w[i].pid, SIM_HOLD_SIGNAL, v) < 0 && errno != ESRCH)
            HB_WARN("hb-sim: sigqueue(%d): %s", (int)f->w[i].pid, strerror(errno));
}

/* After a report: the peak of connected devices (and the memory it took), and the published
 * count at the moment every device had connected. */
static void sample(struct fleet *f)
{
    struct sim_stats t;
    totals(f, &t);
    if (t.connected > f->out->connected_peak) {
        f->out->connected_peak = t.connected;
        uint64_t rss = f->parent_rss, pss = f->parent_pss;
        for (unsigned i = 0; i < f->n; i++) {
            rss += f->w[i].last.rss_kib;
            pss += f->w[i].last.pss_kib;
        }
        f->out->rss_kib = rss;
        f->out->pss_kib = pss;
    }
    if (t.all_connected_ms != 0 && f->out->published_at_all == 0)
        f->out->published_at_all = t.published ? t.published : 1;
    hold(f, &t);
}

static void on_message(struct fleet *f, unsigned i, uint32_t type, const void *data, size_t len)
{
    struct worker_slot *w = &f->w[i];
    char err[256];
    if (type == WIRE_REPORT && len == sizeof(struct wire_report)) {
        memcpy(&w->last, data, sizeof(w->last));
        w->final = w->last.final;
        sample(f);
    } else if (type == WIRE_TRUTH) {
        if (!wire_merge_truth(f->truth, data, len, err, sizeof(err))) {
            end_line(f);
            HB_ERROR("hb-sim: worker %u: %s", i, err);
            fail_run(f);
            return;
        }
        w->truth = true;
    } else {
        end_line(f);
        HB_ERROR("hb-sim: worker %u sent an unknown message (type %" PRIu32 ", %zu bytes)", i, type,
                 len);
        fail_run(f);
    }
}

/* Reaps worker i after its pipe closed, and judges how it ended. */
static void reap(struct fleet *f, unsigned i)
{
    struct worker_slot *w = &f->w[i];
    int status = 0;
    pid_t r;
    while ((r = waitpid(w->pid, &status, 0)) < 0 && errno == EINTR)
        ;
    pid_t pid = w->pid;
    w->pid = 0;
    if (r < 0) {
        end_line(f);
        HB_ERROR("hb-sim: waitpid(%d): %s", (int)pid, strerror(errno));
        fail_run(f);
        return;
    }
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (clean && w->final && w->truth)
        return;
    f->out->workers_failed++;
    end_line(f);
    if (WIFSIGNALED(status))
        HB_ERROR("hb-sim: worker %u (pid %d) was killed by %s%s", i, (int)pid,
                 strsignal(WTERMSIG(status)), w->truth ? "" : "; its devices' truth is lost");
    else
        HB_ERROR("hb-sim: worker %u (pid %d) exited with status %d%s", i, (int)pid,
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                 w->truth ? "" : " before sending its truth");
    fail_run(f);
}

static void read_worker(struct fleet *f, unsigned i)
{
    struct worker_slot *w = &f->w[i];
    int rc = wire_reader_fill(&w->reader, w->fd);
    uint32_t type;
    const void *data;
    size_t len;
    while (wire_reader_next(&w->reader, &type, &data, &len))
        on_message(f, i, type, data, len);
    if (rc > 0)
        return;
    if (rc < 0) {
        end_line(f);
        HB_ERROR("hb-sim: reading worker %u: %s", i, strerror(errno));
    } else if (wire_reader_pending(&w->reader) > 0) {
        end_line(f);
        HB_ERROR("hb-sim: worker %u ended in the middle of a message", i);
    }
    close(w->fd);
    w->fd = -1;
    f->live--;
    reap(f, i);
}

static void handle_signals(struct fleet *f)
{
    struct signalfd_siginfo si;
    ssize_t n;
    while ((n = read(f->sigfd, &si, sizeof(si))) == (ssize_t)sizeof(si)) {
        f->user_signals++;
        end_line(f);
        if (f->user_signals == 1) {
            HB_INFO("hb-sim: %s: ending the run early (again: do not wait for devices)",
                    strsignal((int)si.ssi_signo));
            signal_workers(f, SIGTERM);
        } else {
            HB_INFO("hb-sim: %s again: not waiting for the remaining devices",
                    strsignal((int)si.ssi_signo));
            signal_workers(f, SIGUSR1);
        }
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        HB_WARN("hb-sim: reading signals: %s", strerror(errno));
}

static void print_progress(struct fleet *f, int64_t now, bool last)
{
    struct sim_stats t;
    totals(f, &t);
    /* The rate over the last period; a last line right after the previous one keeps it. */
    double dt = (double)(now - f->last_progress_ms) / 1000.0;
    if (dt >= 0.25) {
        f->hb_per_s = (double)(t.published - f->last_published) / dt;
        f->last_published = t.published;
        f->last_progress_ms = now;
    }
    struct progress_view v = {
        .elapsed_s = (double)(now - f->start_ms) / 1000.0,
        .devices = f->cfg->sim.n_devices, /* planned, also before the first reports */
        .connected = t.connected,
        .connecting = t.connecting,
        .failed = t.connect_failed + t.refused,
        .errors = t.errors,
        .lost = t.lost,
        .hb_per_s = f->hb_per_s,
    };
    char line[256];
    progress_format(line, sizeof(line), &v, f->cfg->terminal);
    if (f->cfg->terminal) {
        fprintf(stderr, "\r%s\033[K%s", line, last ? "\n" : "");
        fflush(stderr);
        f->line_open = !last;
    } else {
        HB_INFO("%s", line);
    }
}

/* Forks worker i on its slice. Returns false (after reporting why) when it could not. */
static bool spawn(struct fleet *f, unsigned i, size_t first, size_t n, double rate, uint64_t seed,
                  const sigset_t *worker_signals)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        HB_ERROR("hb-sim: pipe: %s", strerror(errno));
        return false;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        HB_ERROR("hb-sim: fork: %s", strerror(errno));
        close(p[0]);
        close(p[1]);
        return false;
    }
    if (pid == 0) {
        close(p[0]);
        for (unsigned k = 0; k < i; k++)
            close(f->w[k].fd);
        /* A worker outlives no parent: SIGTERM ends its run gracefully, and its reports then
         * fail with EPIPE, which stops it at once. */
        if (prctl(PR_SET_PDEATHSIG, SIGTERM) < 0 || getppid() != parent)
            _exit(1);
        /* A terminal's ^C goes to the whole process group; the parent forwards it once. */
        signal(SIGINT, SIG_IGN);
        struct sim_config sc = f->cfg->sim;
        sc.first_device = first;
        sc.n_devices = n;
        sc.connect_rate = rate;
        sc.seed = seed;
        sc.signals = worker_signals;
        exit(worker_run(&sc, p[1], f->start_ms));
    }
    close(p[1]);
    if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
        HB_WARN("hb-sim: fcntl(O_NONBLOCK): %s", strerror(errno));
    f->w[i].pid = pid;
    f->w[i].fd = p[0];
    f->live++;
    return true;
}

static void fleet_finish(struct fleet *f)
{
    if (f->w != NULL) {
        for (unsigned i = 0; i < f->n; i++) {
            if (f->w[i].fd >= 0)
                close(f->w[i].fd);
            if (f->w[i].pid > 0) {
                kill(f->w[i].pid, SIGKILL);
                while (waitpid(f->w[i].pid, NULL, 0) < 0 && errno == EINTR)
                    ;
            }
            wire_reader_finish(&f->w[i].reader);
        }
    }
    if (f->sigfd >= 0)
        close(f->sigfd);
    free(f->w);
    free(f->scratch);
    free(f->pfd);
}

int fleet_run(const struct fleet_config *cfg, const sigset_t *signals, int64_t start_ms,
              struct truth *truth, struct fleet_result *out)
{
    memset(out, 0, sizeof(*out));
    struct fleet f = {
        .cfg = cfg,
        .n = cfg->workers,
        .truth = truth,
        .out = out,
        .start_ms = start_ms,
        .sigfd = -1,
        .last_progress_ms = start_ms,
    };
    f.w = calloc(f.n, sizeof(*f.w));
    f.scratch = calloc(f.n, sizeof(*f.scratch));
    f.pfd = calloc(f.n + 1, sizeof(*f.pfd));
    if (f.w == NULL || f.scratch == NULL || f.pfd == NULL) {
        HB_ERROR("hb-sim: out of memory for %u workers", f.n);
        fleet_finish(&f);
        return -1;
    }
    for (unsigned i = 0; i < f.n; i++)
        f.w[i].fd = -1;

    sigset_t worker_signals;
    sigemptyset(&worker_signals);
    sigaddset(&worker_signals, SIGTERM);
    sigaddset(&worker_signals, SIGUSR1);
    sigaddset(&worker_signals, SIM_HOLD_SIGNAL);
    /* Blocked before the fork, so a worker that has no signalfd yet keeps it pending. */
    sigset_t hold_signal;
    sigemptyset(&hold_signal);
    sigaddset(&hold_signal, SIM_HOLD_SIGNAL);
    if (sigprocmask(SIG_BLOCK, &hold_signal, NULL) < 0)
        HB_WARN("hb-sim: sigprocmask: %s", strerror(errno));
    struct rng seeds;
    rng_seed(&seeds, cfg->seed);
    size_t devices = cfg->sim.n_devices, first = cfg->sim.first_device;
    for (unsigned i = 0; i < f.n; i++) {
        /* Slices differ by at most one device; a worker's seed depends only on its index. */
        size_t n = devices / f.n + (i < devices % f.n);
        if (!spawn(&f, i, first, n, cfg->connect_rate / f.n, rng_next(&seeds), &worker_signals)) {
            signal_workers(&f, SIGKILL);
            fleet_finish(&f);
            return -1;
        }
        first += n;
    }
    f.sigfd = signalfd(-1, signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (f.sigfd < 0)
        HB_WARN("hb-sim: signalfd: %s; signals will not end the run gracefully", strerror(errno));
    procstat_memory(&f.parent_rss, &f.parent_pss);
    bool progress = cfg->progress_s > 0;
    int64_t progress_ms = (int64_t)(cfg->progress_s * 1000.0);
    f.next_progress = start_ms + progress_ms;

    while (f.live > 0) {
        nfds_t nfds = 0;
        if (f.sigfd >= 0)
            f.pfd[nfds++] = (struct pollfd){.fd = f.sigfd, .events = POLLIN};
        for (unsigned i = 0; i < f.n; i++)
            if (f.w[i].fd >= 0)
                f.pfd[nfds++] = (struct pollfd){.fd = f.w[i].fd, .events = POLLIN};
        int64_t now = hb_now_ms();
        int timeout = 1000;
        if (progress)
            timeout = f.next_progress > now ? (int)(f.next_progress - now) : 0;
        int n = poll(f.pfd, nfds, timeout);
        if (n < 0 && errno != EINTR) {
            HB_ERROR("hb-sim: poll: %s", strerror(errno));
            fail_run(&f);
            break;
        }
        for (nfds_t k = 0; n > 0 && k < nfds; k++) {
            if (f.pfd[k].revents == 0)
                continue;
            if (f.pfd[k].fd == f.sigfd) {
                handle_signals(&f);
                continue;
            }
            for (unsigned i = 0; i < f.n; i++)
                if (f.w[i].fd == f.pfd[k].fd)
                    read_worker(&f, i);
        }
        now = hb_now_ms();
        if (progress && now >= f.next_progress) {
            procstat_memory(&f.parent_rss, &f.parent_pss);
            print_progress(&f, now, false);
            while (f.next_progress <= now)
                f.next_progress += progress_ms;
        }
    }
    if (progress)
        print_progress(&f, hb_now_ms(), true);
    totals(&f, &out->total);
    uint32_t fds = 0;
    for (unsigned i = 0; i < f.n; i++) {
        if (f.w[i].last.fds == 0 && f.w[i].last.stats.devices > 0) {
            fds = 0;
            break;
        }
        fds += f.w[i].last.fds;
    }
    out->fds = fds;
    bool failed = f.failed;
    fleet_finish(&f);
    return failed ? -1 : 0;
}
