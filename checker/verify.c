/* The truth comparison. Lines are grouped by interval so each group is read with one pipelined
 * hb_check_interval call; a match means the very same set of device ids, not just a count. */
#include "verify.h"

#include "check.h"
#include "ids.h"
#include "interval.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

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
    cJSON_ArrayForEach(d, devices) {
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

/* Compares one group of lines of the same interval. */
static int verify_group(redisContext *c, struct truth_line *lines, size_t n, bool verbose,
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
            print_difference(out, results[i].device_ids, results[i].n_device_ids,
                             lines[i].devices, lines[i].n_devices);
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

int verify_truth(redisContext *c, FILE *in, int interval_s, int64_t now_ms, bool verbose,
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
        ssize_t len = getline(&text, &text_cap, in);
        struct truth_line t;
        bool have = false;
        if (len >= 0) {
            lineno++;
            if (strspn(text, " \t\r\n") == (size_t)len)
                continue;
            if (!parse_line(text, &t) || hb_interval_start(t.interval_start, interval_ms) !=
                                             t.interval_start) {
                HB_ERROR("truth line %ld: not a truth object of a %ds interval", lineno,
                         interval_s);
                report->bad_lines++;
                continue;
            }
            have = true;
        }
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
