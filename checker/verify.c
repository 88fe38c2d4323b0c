/* The truth comparison. Lines are grouped by interval so each group is read with one pipelined
 * hb_check_interval call; a match means the very same set of device ids, not just a count.
 * Over 500 lines: --follow (each interval as soon as the watermark says complete) shares the
 * truth reading and comparison of the one-shot mode. */
#include "verify.h"

#include "check.h"
#include "ids.h"
#include "interval.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

struct truth_line {
    int64_t interval_start;
    char account[HB_ID_MAX + 1];
    char **devices; /* sorted */
    size_t n_devices;
};

static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void truth_line_free(struct truth_line *t)
{
    for (size_t i = 0; i < t->n_devices; i++)
        free(t->devices[i]);
    free(t->devices);
    memset(t, 0, sizeof(*t));
}

/* Parses one JSON line; false when it is not a truth object. */
static bool parse_line(const char *text, struct truth_line *t)
{
    memset(t, 0, sizeof(*t));
    cJSON *root = cJSON_Parse(text);
    if (root == NULL)
        return false;
    bool ok = false;
    const cJSON *start = cJSON_GetObjectItemCaseSensitive(root, "interval_start");
    const cJSON *account = cJSON_GetObjectItemCaseSensitive(root, "account");
    const cJSON *devices = cJSON_GetObjectItemCaseSensitive(root, "devices");
    if (!cJSON_IsNumber(start) || !cJSON_IsString(account) || !cJSON_IsArray(devices) ||
        !hb_id_valid(account->valuestring, strlen(account->valuestring)))
        goto out;
    t->interval_start = (int64_t)start->valuedouble;
    strcpy(t->account, account->valuestring);
    int n = cJSON_GetArraySize(devices);
    t->devices = calloc((size_t)n + 1, sizeof(char *));
    if (t->devices == NULL)
        goto out;
    const cJSON *d;
    cJSON_ArrayForEach(d, devices)
    {
        if (!cJSON_IsString(d) || (t->devices[t->n_devices] = strdup(d->valuestring)) == NULL)
            goto out;
        t->n_devices++;
    }
    qsort(t->devices, t->n_devices, sizeof(char *), compare_strings);
    ok = true;
out:
    if (!ok)
        truth_line_free(t);
    cJSON_Delete(root);
    return ok;
}

/* Prints the ids in a but not in b (both sorted), comma-separated. */
static void print_difference(FILE *out, char *const *a, size_t na, char *const *b, size_t nb)
{
    size_t i = 0, j = 0;
    bool first = true;
    while (i < na) {
        int cmp = j < nb ? strcmp(a[i], b[j]) : -1;
        if (cmp < 0) {
            fprintf(out, "%s%s", first ? "" : ",", a[i++]);
            first = false;
        } else if (cmp > 0) {
            j++;
        } else {
            i++;
            j++;
        }
    }
    if (first)
        fputc('-', out);
}

static bool same_ids(const struct truth_line *t, const struct hb_check_result *r)
{
    if (t->n_devices != r->n_device_ids)
        return false;
    for (size_t i = 0; i < t->n_devices; i++) {
        if (strcmp(t->devices[i], r->device_ids[i]) != 0)
            return false;
    }
    return true;
}

/* Reads the next truth line into t: 1 when read, 0 for a blank or bad line (a bad one is
 * counted and logged), -1 at the end of the input. */
static int next_line(FILE *in, char **text, size_t *cap, long *lineno, int interval_s,
                     struct verify_report *report, struct truth_line *t)
{
    ssize_t len = getline(text, cap, in);
    if (len < 0)
        return -1;
    (*lineno)++;
    if (strspn(*text, " \t\r\n") == (size_t)len)
        return 0;
    if (!parse_line(*text, t) ||
        hb_interval_start(t->interval_start, (int64_t)interval_s * 1000) != t->interval_start) {
        HB_ERROR("truth line %ld: not a truth object of a %ds interval", *lineno, interval_s);
        report->bad_lines++;
        return 0;
    }
    return 1;
}

/* Compares one group of lines of the same interval. */
static int verify_group(struct rcluster *c, struct truth_line *lines, size_t n, bool verbose,
                        FILE *out, struct verify_report *report)
{
    const char **accounts = calloc(n, sizeof(char *));
    struct hb_check_result *results = calloc(n, sizeof(*results));
    int rc = -1;
    if (accounts == NULL || results == NULL) {
        HB_ERROR("verify: out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        accounts[i] = lines[i].account;
    char err[256];
    if (hb_check_interval(c, accounts, n, lines[0].interval_start, true, results, err,
                          sizeof(err)) < 0) {
        HB_ERROR("verify: %s", err);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        bool same = same_ids(&lines[i], &results[i]);
        report->checked++;
        if (!same)
            report->mismatched++;
        if (same && !verbose)
            continue;
        fprintf(out, "%s account=%s interval_start=%" PRId64 " expected=%zu got=%lld",
                same ? "ok" : "MISMATCH", lines[i].account, lines[i].interval_start,
                lines[i].n_devices, results[i].devices);
        if (!same) {
            fputs(" missing=", out);
            print_difference(out, lines[i].devices, lines[i].n_devices, results[i].device_ids,
                             results[i].n_device_ids);
            fputs(" extra=", out);
            print_difference(out, results[i].device_ids, results[i].n_device_ids, lines[i].devices,
                             lines[i].n_devices);
        }
        fputc('\n', out);
    }
    rc = 0;
out:
    if (results != NULL)
        hb_check_results_finish(results, n);
    free(results);
    free(accounts);
    return rc;
}

int verify_truth(struct rcluster *c, FILE *in, int interval_s, int64_t now_ms, bool verbose,
                 FILE *out, struct verify_report *report)
{
    memset(report, 0, sizeof(*report));
    int64_t interval_ms = (int64_t)interval_s * 1000;
    struct truth_line *group = NULL;
    size_t n = 0, cap = 0;
    char *text = NULL;
    size_t text_cap = 0;
    int rc = 0;
    long lineno = 0;

    for (;;) {
        struct truth_line t;
        int read = next_line(in, &text, &text_cap, &lineno, interval_s, report, &t);
        if (read == 0)
            continue;
        bool have = read > 0;
        /* Flush the group when the interval changes or the input ends. */
        if (n > 0 && (!have || t.interval_start != group[0].interval_start)) {
            if (verify_group(c, group, n, verbose, out, report) < 0)
                rc = -1;
            for (size_t i = 0; i < n; i++)
                truth_line_free(&group[i]);
            n = 0;
        }
        if (!have)
            break;
        if (rc < 0 || hb_interval_ttl_ms(t.interval_start, interval_ms, now_ms) <= 0) {
            report->skipped++;
            truth_line_free(&t);
            continue;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            struct truth_line *g = realloc(group, ncap * sizeof(*g));
            if (g == NULL) {
                HB_ERROR("verify: out of memory");
                truth_line_free(&t);
                rc = -1;
                break;
            }
            group = g;
            cap = ncap;
        }
        group[n++] = t;
    }
    for (size_t i = 0; i < n; i++)
        truth_line_free(&group[i]);
    free(group);
    free(text);
    return rc;
}

/* --follow: what Redis held for one interval, read when it was complete. */
struct snapshot {
    int64_t interval_start;
    bool complete;
    struct truth_line *accounts; /* devices as Redis had them */
    size_t n;
};

struct follow {
    struct snapshot *snaps;
    size_t n, cap;
};

/* Frees what a snapshot holds. */
static void snapshot_clear(struct snapshot *s)
{
    for (size_t j = 0; j < s->n; j++)
        truth_line_free(&s->accounts[j]);
    free(s->accounts);
    s->accounts = NULL;
    s->n = 0;
}

static void follow_finish(struct follow *f)
{
    for (size_t i = 0; i < f->n; i++)
        snapshot_clear(&f->snaps[i]);
    free(f->snaps);
}

/* Adds the hash at key (an HKEYS reply r) to the snapshot s as one account. */
static bool snapshot_add(struct snapshot *s, const char *key, const redisReply *r)
{
    const char *open = strchr(key, '{'), *close = strchr(key, '}');
    if (open == NULL || close == NULL || close - open - 1 > HB_ID_MAX)
        return true; /* not one of ours */
    struct truth_line *a = realloc(s->accounts, (s->n + 1) * sizeof(*a));
    if (a == NULL)
        return false;
    s->accounts = a;
    struct truth_line *t = &a[s->n];
    memset(t, 0, sizeof(*t));
    memcpy(t->account, open + 1, (size_t)(close - open - 1));
    t->interval_start = s->interval_start;
    t->devices = calloc(r->elements + 1, sizeof(char *));
    if (t->devices == NULL)
        return false;
    s->n++;
    for (size_t i = 0; i < r->elements; i++) {
        if ((t->devices[i] = strdup(r->element[i]->str)) == NULL)
            return false;
        t->n_devices++;
    }
    qsort(t->devices, t->n_devices, sizeof(char *), compare_strings);
    return true;
}

/* A list of key names. */
struct keylist {
    char **keys;
    size_t n, cap;
};

/* Adds key unless it is there already (a key met on two nodes while its slot migrates). */
static bool keylist_add(struct keylist *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->keys[i], key) == 0)
            return true;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **keys = realloc(l->keys, cap * sizeof(*keys));
        if (keys == NULL)
            return false;
        l->keys = keys;
        l->cap = cap;
    }
    if ((l->keys[l->n] = strdup(key)) == NULL)
        return false;
    l->n++;
    return true;
}

static void keylist_finish(struct keylist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->keys[i]);
    free(l->keys);
}

/* The keys matching pattern on one node into l: SCAN answers for the node's own keys only. */
static int scan_node(const struct hb_redis_addr *node, const char *pattern, struct keylist *l)
{
    char err[256];
    redisContext *n = hb_redis_connect(node, 5000, err, sizeof(err));
    if (n == NULL) {
        HB_ERROR("verify: SCAN: %s", err);
        return -1;
    }
    char cursor[32] = "0";
    int rc = 0;
    do {
        redisReply *r = redisCommand(n, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            HB_ERROR("verify: SCAN: %s", r == NULL ? n->errstr : "unexpected reply");
            freeReplyObject(r);
            rc = -1;
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        const redisReply *keys = r->element[1];
        for (size_t i = 0; i < keys->elements && rc == 0; i++) {
            if (!keylist_add(l, keys->element[i]->str)) {
                HB_ERROR("verify: out of memory");
                rc = -1;
            }
        }
        freeReplyObject(r);
    } while (rc == 0 && strcmp(cursor, "0") != 0);
    redisFree(n);
    return rc;
}

/* Reads every account's keys of the interval into s: SCAN for hb:{*}:<start> on every master,
 * then HKEYS of each key through c (one pipeline per node). */
static int snapshot_read(struct rcluster *c, struct snapshot *s)
{
    enum { MASTERS_MAX = 256 };
    char pattern[64], err[256];
    snprintf(pattern, sizeof(pattern), "hb:{*}:%" PRId64, s->interval_start);
    struct hb_redis_addr *masters = calloc(MASTERS_MAX, sizeof(*masters));
    int n = masters ? rcluster_masters(c, masters, MASTERS_MAX, err, sizeof(err)) : -1;
    if (n < 0)
        HB_ERROR("verify: %s", masters ? err : "out of memory");
    struct keylist l = {0};
    int rc = n < 0 ? -1 : 0;
    for (int i = 0; i < n && rc == 0; i++)
        rc = scan_node(&masters[i], pattern, &l);
    free(masters);
    /* A master that does not answer may have failed over: the next try asks the cluster for
     * its slot map again instead of scanning the dead address until the keys expire. */
    if (rc != 0 && n > 0)
        (void)rcluster_refresh(c, err, sizeof(err));
    rcluster_reset(c);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const char *argv[] = {"HKEYS", l.keys[i]};
        if (rcluster_append(c, l.keys[i], strlen(l.keys[i]), 2, argv, NULL) < 0)
            rc = -1;
    }
    if (rc == 0 && rcluster_exec(c, err, sizeof(err)) != 0) {
        HB_ERROR("verify: HKEYS: %s", err);
        rc = -1;
    }
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        const redisReply *h = rcluster_reply(c, i);
        if (h->type == REDIS_REPLY_ARRAY && !snapshot_add(s, l.keys[i], h)) {
            HB_ERROR("verify: out of memory");
            rc = -1;
        }
    }
    rcluster_reset(c);
    keylist_finish(&l);
    return rc;
}

/* Reads the interval starting at start when it is complete or about to expire. Returns 1 when
 * read, 0 when not yet, -1 on error. A Redis error (a failover, a cluster briefly down) is
 * tried again on the next call while the interval's keys have more than a second to live. */
static int follow_interval(struct rcluster *c, struct follow *f, int64_t start, int interval_s,
                           const char *group, int64_t now)
{
    char wm_key[HB_WATERMARK_KEY_MAX];
    hb_watermark_key(wm_key, sizeof(wm_key), group ? group : HB_WATERMARK_GROUP_DEFAULT);
    const char *argv[] = {"HGETALL", wm_key};
    char err[256];
    redisReply *r = rcluster_command(c, wm_key, strlen(wm_key), 2, argv, NULL, err, sizeof(err));
    int64_t interval_ms = (int64_t)interval_s * 1000;
    bool can_retry = hb_interval_ttl_ms(start, interval_ms, now) > 1000;
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (can_retry)
            HB_WARN("verify: watermark: %s; trying again", r == NULL ? err : "not a hash");
        else
            HB_ERROR("verify: watermark: %s", r == NULL ? err : "not a hash");
        freeReplyObject(r);
        return can_retry ? 0 : -1;
    }
    bool complete = hb_watermark_complete(r, start + interval_ms, now);
    freeReplyObject(r);
    if (!complete && hb_interval_ttl_ms(start, interval_ms, now) > interval_ms / 4)
        return 0;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        struct snapshot *s = realloc(f->snaps, cap * sizeof(*s));
        if (s == NULL)
            return -1;
        f->snaps = s;
        f->cap = cap;
    }
    struct snapshot *s = &f->snaps[f->n++];
    memset(s, 0, sizeof(*s));
    s->interval_start = start;
    s->complete = complete;
    if (snapshot_read(c, s) == 0)
        return 1;
    snapshot_clear(s);
    f->n--;
    return can_retry ? 0 : -1;
}

static const struct snapshot *follow_find(const struct follow *f, int64_t start)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->snaps[i].interval_start == start)
            return &f->snaps[i];
    }
    return NULL;
}

/* The truth file is complete when it ends with a newline and has not changed for a second. */
static bool truth_settled(const char *path, struct stat *last, int64_t *same_since, int64_t now)
{
    struct stat st;
    if (stat(path, &st) != 0 || st.st_size == 0)
        return false;
    if (st.st_size != last->st_size || st.st_mtim.tv_sec != last->st_mtim.tv_sec ||
        st.st_mtim.tv_nsec != last->st_mtim.tv_nsec) {
        *last = st;
        *same_since = now;
        return false;
    }
    if (now - *same_since < 1000)
        return false;
    FILE *in = fopen(path, "r");
    if (in == NULL || fseek(in, -1, SEEK_END) != 0) {
        if (in != NULL)
            fclose(in);
        return false;
    }
    bool ends = fgetc(in) == '\n';
    fclose(in);
    return ends;
}

/* The last interval the truth file names, or INT64_MIN. */
static int64_t truth_last_interval(const char *path, int interval_s)
{
    FILE *in = fopen(path, "r");
    int64_t last = INT64_MIN;
    char *text = NULL;
    size_t cap = 0;
    struct truth_line t;
    while (in != NULL && getline(&text, &cap, in) >= 0) {
        if (parse_line(text, &t)) {
            if (t.interval_start > last &&
                hb_interval_start(t.interval_start, (int64_t)interval_s * 1000) == t.interval_start)
                last = t.interval_start;
            truth_line_free(&t);
        }
    }
    free(text);
    if (in != NULL)
        fclose(in);
    return last;
}

/* Compares the truth with the snapshots, one summary line per interval. */
static int follow_compare(const struct follow *f, const char *path, int interval_s, bool verbose,
                          FILE *out, struct verify_report *report)
{
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        HB_ERROR("--verify %s: %s", path, strerror(errno));
        return -1;
    }
    char *text = NULL;
    size_t cap = 0;
    long lineno = 0;
    int64_t current = INT64_MIN;
    long checked = 0, mismatched = 0;
    const struct snapshot *snap = NULL;
    for (;;) {
        struct truth_line t;
        int read = next_line(in, &text, &cap, &lineno, interval_s, report, &t);
        if (read == 0)
            continue;
        bool have = read > 0;
        if (snap != NULL && (!have || t.interval_start != current)) {
            fprintf(out, "interval %" PRId64 ": %ld checked, %ld mismatched%s\n", current, checked,
                    mismatched, snap->complete ? "" : " (read incomplete)");
            snap = NULL;
        }
        if (!have)
            break;
        if (t.interval_start != current) {
            current = t.interval_start;
            checked = mismatched = 0;
            snap = follow_find(f, current);
            if (snap != NULL && !snap->complete)
                report->incomplete++;
        }
        if (snap == NULL) {
            report->skipped++;
            truth_line_free(&t);
            continue;
        }
        struct hb_check_result got = {0};
        for (size_t i = 0; i < snap->n; i++) {
            if (strcmp(snap->accounts[i].account, t.account) == 0) {
                got.device_ids = snap->accounts[i].devices;
                got.n_device_ids = snap->accounts[i].n_devices;
                got.devices = (long long)got.n_device_ids;
            }
        }
        bool same = same_ids(&t, &got);
        checked++;
        report->checked++;
        if (!same) {
            mismatched++;
            report->mismatched++;
        }
        if (!same || verbose) {
            fprintf(out, "%s account=%s interval_start=%" PRId64 " expected=%zu got=%lld",
                    same ? "ok" : "MISMATCH", t.account, t.interval_start, t.n_devices,
                    got.devices);
            if (!same) {
                fputs(" missing=", out);
                print_difference(out, t.devices, t.n_devices, got.device_ids, got.n_device_ids);
                fputs(" extra=", out);
                print_difference(out, got.device_ids, got.n_device_ids, t.devices, t.n_devices);
            }
            fputc('\n', out);
        }
        truth_line_free(&t);
    }
    free(text);
    fclose(in);
    return 0;
}

int verify_follow(struct rcluster *c, const char *path, int interval_s, const char *group,
                  bool verbose, FILE *out, struct verify_report *report)
{
    memset(report, 0, sizeof(*report));
    int64_t interval_ms = (int64_t)interval_s * 1000;
    /* The interval before the one in progress still lives: it is the first one read. */
    int64_t next = hb_interval_previous(hb_now_ms(), interval_ms);
    struct follow f = {0};
    struct stat last = {0};
    int64_t same_since = 0;
    int rc = 0;
    for (;;) {
        int64_t now = hb_now_ms();
        /* Read every interval that ended, in order, as each becomes complete. */
        while (rc == 0 && now >= next + interval_ms) {
            int got = follow_interval(c, &f, next, interval_s, group, now);
            if (got < 0)
                rc = -1;
            if (got <= 0)
                break;
            next += interval_ms;
        }
        if (rc < 0)
            break;
        if (truth_settled(path, &last, &same_since, hb_monotonic_ms())) {
            int64_t want = truth_last_interval(path, interval_s);
            if (want == INT64_MIN || want < next)
                break;
        }
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    if (rc == 0)
        rc = follow_compare(&f, path, interval_s, verbose, out, report);
    follow_finish(&f);
    return rc;
}
