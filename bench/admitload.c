/* hb-admitload: an open-loop HTTP load for POST /v1/plays at a fixed rate, for the admission
 * benchmark's "p99 at 20,000/s" (wrk has no fixed rate and wrk2 is not in Debian). Request i is
 * due at start + i/rate whatever happened before; its latency runs from that due time to the
 * end of its response, so a server that falls behind shows its queueing in the percentiles
 * (no coordinated omission). One epoll loop, keep-alive connections, at most one request in
 * flight per connection; a due request with no idle connection waits and its wait counts. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CONN_MAX 1024
#define IN_MAX 16384

struct conn {
    int fd;
    bool busy;
    int64_t due_ns; /* of the request in flight */
    char out[512];
    size_t out_len, out_off;
    char in[IN_MAX];
    size_t in_len;
};

struct load {
    const char *host, *api_key;
    int port, connections, accounts, limit;
    double rate, duration_s, drain_s;
    long count;
    struct conn *conns;
    int ep;
    uint32_t rng;
    int64_t *lat_us; /* one per completed request */
    long done, ok, refused, other, errors;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint32_t next_rand(struct load *l)
{
    l->rng ^= l->rng << 13;
    l->rng ^= l->rng >> 17;
    l->rng ^= l->rng << 5;
    return l->rng;
}

static bool conn_open(struct load *l, struct conn *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)l->port)};
    if (inet_pton(AF_INET, l->host, &sa.sin_addr) != 1) {
        fprintf(stderr, "hb-admitload: --host must be an IPv4 address\n");
        return false;
    }
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "hb-admitload: connect: %s\n", strerror(errno));
        return false;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    return epoll_ctl(l->ep, EPOLL_CTL_ADD, c->fd, &ev) == 0;
}

/* The request body mirrors admission/admit.lua: 95 % from one of the account's home devices. */
static void conn_send(struct load *l, struct conn *c, int64_t due_ns)
{
    char body[128];
    unsigned a = 1 + next_rand(l) % (unsigned)l->accounts;
    unsigned d =
        next_rand(l) % 100 < 95 ? 1 + next_rand(l) % (unsigned)l->limit : 101 + next_rand(l) % 1000;
    int blen = snprintf(body, sizeof(body), "{\"account\":\"acct%u\",\"device\":\"dev%u\"}", a, d);
    int n = snprintf(c->out, sizeof(c->out),
                     "POST /v1/plays HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     l->host, l->port, l->api_key, blen, body);
    c->out_len = (size_t)n;
    c->out_off = 0;
    c->busy = true;
    c->due_ns = due_ns;
    ssize_t w = write(c->fd, c->out, c->out_len);
    if (w > 0)
        c->out_off = (size_t)w;
    if (c->out_off < c->out_len) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
        epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
}

/* A whole response at the start of c->in: its length, or 0 when more bytes are needed. */
static size_t response_len(struct conn *c, int *status)
{
    c->in[c->in_len < IN_MAX ? c->in_len : IN_MAX - 1] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (end == NULL)
        return 0;
    *status = atoi(c->in + 9);
    size_t clen = 0;
    for (char *p = strchr(c->in, '\n'); p != NULL && p < end; p = strchr(p + 1, '\n')) {
        if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
            clen = strtoul(p + 16, NULL, 10);
    }
    size_t total = (size_t)(end + 4 - c->in) + clen;
    return c->in_len >= total ? total : 0;
}

static void conn_read(struct load *l, struct conn *c)
{
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->in_len, IN_MAX - 1 - c->in_len);
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (r <= 0) {
            fprintf(stderr, "hb-admitload: connection closed by the server\n");
            exit(1);
        }
        c->in_len += (size_t)r;
        int status = 0;
        size_t n = response_len(c, &status);
        if (n == 0) {
            if (c->in_len >= IN_MAX - 1) {
                fprintf(stderr, "hb-admitload: response too large\n");
                exit(1);
            }
            continue;
        }
        l->lat_us[l->done++] = (now_ns() - c->due_ns) / 1000;
        if (status == 200)
            l->ok++;
        else if (status == 409)
            l->refused++;
        else
            l->other++;
        memmove(c->in, c->in + n, c->in_len - n);
        c->in_len -= n;
        c->busy = false;
        return;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, long n, double q)
{
    if (n == 0)
        return -1;
    long i = (long)(q * (double)n);
    return v[i < n ? i : n - 1];
}

static int run(struct load *l)
{
    long total = l->count > 0 ? l->count : (long)(l->rate * l->duration_s);
    l->lat_us = calloc((size_t)total + 1, sizeof(*l->lat_us));
    l->conns = calloc((size_t)l->connections, sizeof(*l->conns));
    l->ep = epoll_create1(0);
    if (l->lat_us == NULL || l->conns == NULL || l->ep < 0)
        return 1;
    for (int i = 0; i < l->connections; i++) {
        if (!conn_open(l, &l->conns[i]))
            return 1;
    }
    int64_t start = now_ns();
    long next = 0;
    int64_t deadline = 0;
    struct epoll_event evs[64];
    while (l->done < next || next < total) {
        int64_t t = now_ns();
        long due = (long)((double)(t - start) * l->rate / 1e9) + 1;
        if (due > total)
            due = total;
        for (int i = 0; i < l->connections && next < due; i++) {
            struct conn *c = &l->conns[i];
            if (!c->busy) {
                conn_send(l, c, start + (int64_t)((double)next * 1e9 / l->rate));
                next++;
            }
        }
        if (next == total && deadline == 0)
            deadline = t + (int64_t)(l->drain_s * 1e9);
        if (deadline != 0 && t > deadline)
            break;
        int64_t wait_ns =
            next < total ? start + (int64_t)((double)next * 1e9 / l->rate) - t : 1000000;
        if (wait_ns < 0)
            wait_ns = 0;
        struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        int n =
            epoll_pwait2(l->ep, evs, 64, next < due ? &(struct timespec){0, 200000} : &ts, NULL);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (evs[i].events & EPOLLOUT && c->out_off < c->out_len) {
                ssize_t w = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
                if (w > 0)
                    c->out_off += (size_t)w;
                if (c->out_off == c->out_len) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(l->ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                conn_read(l, c);
        }
    }
    double secs = (double)(now_ns() - start) / 1e9;
    qsort(l->lat_us, (size_t)l->done, sizeof(*l->lat_us), cmp_i64);
    printf("{\"rate\":%.0f,\"scheduled\":%ld,\"sent\":%ld,\"done\":%ld,\"unanswered\":%ld,"
           "\"ok\":%ld,\"refused\":%ld,\"other\":%ld,\"seconds\":%.3f,\"achieved_per_s\":%.1f,"
           "\"p50_us\":%lld,\"p90_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,\"max_us\":%lld}\n",
           l->rate, total, next, l->done, total - l->done, l->ok, l->refused, l->other, secs,
           (double)l->done / secs, (long long)pct(l->lat_us, l->done, 0.5),
           (long long)pct(l->lat_us, l->done, 0.9), (long long)pct(l->lat_us, l->done, 0.99),
           (long long)pct(l->lat_us, l->done, 0.999),
           (long long)(l->done ? l->lat_us[l->done - 1] : -1));
    return 0;
}

static const char usage[] =
    "Usage: hb-admitload --port P --api-key KEY [OPTION]...\n"
    "POST /v1/plays at a fixed rate (open loop); prints one JSON line of latency percentiles\n"
    "measured from each request's due time.\n"
    "  --host IPV4          server address (default 127.0.0.1)\n"
    "  --port P             server port\n"
    "  --api-key KEY        Authorization: Bearer KEY\n"
    "  --rate N             requests per second (default 20000)\n"
    "  --duration S         seconds of load (default 10)\n"
    "  --count N            send N requests instead of rate x duration\n"
    "  --connections N      keep-alive connections (default 64)\n"
    "  --accounts N         accounts acct1..acctN (default 100000)\n"
    "  --limit N            home devices per account (default 3)\n"
    "  --drain S            wait at most S seconds for the last answers (default 10)\n";

int main(int argc, char **argv)
{
    struct load l = {.host = "127.0.0.1",
                     .connections = 64,
                     .accounts = 100000,
                     .limit = 3,
                     .rate = 20000,
                     .duration_s = 10,
                     .drain_s = 10};
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"api-key", required_argument, NULL, 'k'},
        {"rate", required_argument, NULL, 'r'},
        {"duration", required_argument, NULL, 'd'},
        {"count", required_argument, NULL, 'n'},
        {"connections", required_argument, NULL, 'c'},
        {"accounts", required_argument, NULL, 'a'},
        {"limit", required_argument, NULL, 'l'},
        {"drain", required_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int o;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case 'H':
            l.host = optarg;
            break;
        case 'p':
            l.port = atoi(optarg);
            break;
        case 'k':
            l.api_key = optarg;
            break;
        case 'r':
            l.rate = atof(optarg);
            break;
        case 'd':
            l.duration_s = atof(optarg);
            break;
        case 'n':
            l.count = atol(optarg);
            break;
        case 'c':
            l.connections = atoi(optarg);
            break;
        case 'a':
            l.accounts = atoi(optarg);
            break;
        case 'l':
            l.limit = atoi(optarg);
            break;
        case 'D':
            l.drain_s = atof(optarg);
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (l.port <= 0 || l.api_key == NULL || strlen(l.api_key) > 200 || l.rate <= 0 ||
        l.connections < 1 || l.connections > CONN_MAX || l.accounts < 1 || l.limit < 1) {
        fputs(usage, stderr);
        return 2;
    }
    l.rng = (uint32_t)now_ns() | 1u;
    return run(&l);
}
