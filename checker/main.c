/* hb-check: how many distinct devices each account had in the last complete interval. All
 * accounts of one call are read in one pipelined round trip (hb_check_previous in common/).
 * With --verify it compares Redis with a simulator's truth file instead. */
#include "check.h"
#include "config.h"
#include "ids.h"
#include "interval.h"
#include "log.h"
#include "playopts.h"
#include "plays_verify.h"
#include "redis.h"
#include "verify.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Exit statuses. */
enum { EXIT_MISMATCH = 1, EXIT_USAGE = 2, EXIT_REDIS = 3, EXIT_INCOMPLETE = 4 };

/* How long a read waits for an incomplete interval (the consumers' watermark passes an
 * interval's end about 0.1-0.2 s after it) before it answers with EXIT_INCOMPLETE. */
#define COMPLETE_WAIT_MS 2000

struct options {
    struct hb_config common;
    bool json, devices, verbose;
    bool at_given;
    long at_s;
    int64_t at_ms; /* --at, or now */
    const char *verify_file;
    const char *share_group;
    bool follow;
    const char *plays_file;
    struct hb_play_options play; /* --verify-plays: the policy and grace period */
};

static const struct hb_option check_options[] = {
    {.type = HB_OPTION_FLAG,
     .name = "json",
     HB_OPTION_FIELD(struct options, json),
     .help = "one JSON object per account per line"},
    {.type = HB_OPTION_FLAG,
     .name = "devices",
     HB_OPTION_FIELD(struct options, devices),
     .help = "with --json, also list the device ids"},
    {.type = HB_OPTION_INTEGER,
     .name = "at",
     .metavar = "UNIX_SECONDS",
     HB_OPTION_FIELD(struct options, at_s),
     .min = 0,
     .max = 32503680000L,
     .flags = HB_OPTION_GIVEN,
     .given = offsetof(struct options, at_given),
     .error = "expected Unix seconds, got '%s'",
     .help = "check as if it were this time"},
    {.type = HB_OPTION_STRING,
     .name = "verify",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, verify_file),
     .help = "compare Redis with a simulator truth file (JSON Lines); prints\n"
             "mismatches, exits 1 on any"},
    {.type = HB_OPTION_STRING,
     .name = "verify-plays",
     .metavar = "FILE",
     HB_OPTION_FIELD(struct options, plays_file),
     .help = "check a simulator's plays truth (hb-sim --plays-truth) against\n"
             "--default-policy and --grace-seconds; needs no Redis"},
    {.type = HB_OPTION_FLAG,
     .name = "verbose",
     HB_OPTION_FIELD(struct options, verbose),
     .help = "with --verify, print matching lines too"},
    {.type = HB_OPTION_FLAG,
     .name = "follow",
     HB_OPTION_FIELD(struct options, follow),
     .help = "with --verify, compare each interval of a truth file that is still\n"
             "being written as soon as it is complete (see README)"},
    {.type = HB_OPTION_ID,
     .name = "share-group",
     .metavar = "NAME",
     HB_OPTION_FIELD(struct options, share_group),
     .error = "must be an id (A-Z a-z 0-9 . _ - :), got '%s'",
     .help = "the consumers' share group, whose watermark says whether an\n"
             "interval is complete (default hb-consumers)"},
};

static const struct hb_options_spec spec = {
    .program = "hb-check",
    .usage = "Usage: hb-check [OPTION]... ACCOUNT...\n"
             "       hb-check [OPTION]... --verify TRUTH.jsonl\n"
             "Print the number of distinct devices of each ACCOUNT in the last complete interval\n"
             "(the one before the interval containing now, or --at). ACCOUNT '-' reads ids from "
             "stdin,\none per line.\n\n",
    .epilogue =
        "\nExit status: 0 ok, 1 verify mismatch, 2 usage error, 3 Redis error, 4 an interval "
        "read\nwas not complete (still being written, or a consumer is behind).\n",
    .groups = {HB_CONFIG_GROUP(struct options, common),
               {check_options, sizeof(check_options) / sizeof(check_options[0]), 0},
               HB_PLAY_OPTIONS_GROUP(struct options, play)},
    .n_groups = 3,
    .operands = true,
};

/* Fills a fresh o from the environment and argv; *first_account gets the index in argv of the
 * first ACCOUNT. */
static enum hb_options_status parse_options(struct options *o, int argc, char **argv,
                                            int *first_account)
{
    memset(o, 0, sizeof(*o));
    enum hb_options_status status = hb_options_parse(&spec, o, argc, argv, first_account);
    if (status != HB_OPTIONS_RUN)
        return status;
    if (o->plays_file != NULL && !hb_play_options_check(&o->play))
        return HB_OPTIONS_USAGE;
    if (o->verify_file == NULL && o->plays_file == NULL && *first_account >= argc) {
        HB_ERROR("no account given (use '-' to read them from stdin)");
        return HB_OPTIONS_USAGE;
    }
    o->at_ms = o->at_given ? (int64_t)o->at_s * 1000 : hb_now_ms();
    return HB_OPTIONS_RUN;
}

/* A growing list of account ids. */
struct accounts {
    char **ids;
    size_t n, cap;
};

static bool accounts_add(struct accounts *a, const char *id, size_t len)
{
    if (!hb_id_valid(id, len)) {
        HB_ERROR("invalid account id '%.*s': 1-64 bytes of A-Z a-z 0-9 . _ - :",
                 (int)(len > 80 ? 80 : len), id);
        return false;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        char **ids = realloc(a->ids, cap * sizeof(*ids));
        if (ids == NULL)
            return false;
        a->ids = ids;
        a->cap = cap;
    }
    if ((a->ids[a->n] = strndup(id, len)) == NULL)
        return false;
    a->n++;
    return true;
}

static void accounts_finish(struct accounts *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ids[i]);
    free(a->ids);
}

static bool read_stdin(struct accounts *a)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    bool ok = true;
    while (ok && (len = getline(&line, &cap, stdin)) >= 0) {
        while (len > 0 && strchr(" \t\r\n", line[len - 1]) != NULL)
            len--;
        size_t skip = strspn(line, " \t");
        if ((size_t)len > skip)
            ok = accounts_add(a, line + skip, (size_t)len - skip);
    }
    free(line);
    return ok;
}

static void print_result(const struct options *o, const char *account, int64_t start,
                         const struct hb_check_result *r)
{
    if (!o->json) {
        printf("%s %lld\n", account, r->devices);
        return;
    }
    cJSON *obj = cJSON_CreateObject();
    if (obj == NULL)
        return;
    cJSON_AddStringToObject(obj, "account", account);
    cJSON_AddNumberToObject(obj, "interval_start", (double)start);
    cJSON_AddNumberToObject(obj, "interval_seconds", o->common.interval_s);
    cJSON_AddNumberToObject(obj, "devices", (double)r->devices);
    /* Only an incomplete row says so, so rows of complete intervals read as before. */
    if (!r->complete)
        cJSON_AddBoolToObject(obj, "complete", false);
    if (o->devices) {
        cJSON *ids = cJSON_AddArrayToObject(obj, "device_ids");
        for (size_t i = 0; ids != NULL && i < r->n_device_ids; i++)
            cJSON_AddItemToArray(ids, cJSON_CreateString(r->device_ids[i]));
    }
    char *text = cJSON_PrintUnformatted(obj);
    if (text != NULL)
        puts(text);
    free(text);
    cJSON_Delete(obj);
}

static int check_accounts(const struct options *o, struct rcluster *c, const struct accounts *a)
{
    struct hb_check_result *results = calloc(a->n ? a->n : 1, sizeof(*results));
    if (results == NULL) {
        HB_ERROR("out of memory");
        return EXIT_REDIS;
    }
    char err[256];
    int rc = 0;
    int64_t give_up = hb_monotonic_ms() + COMPLETE_WAIT_MS;
    int read;
    while ((read = hb_check_previous_group(
                c, (const char *const *)a->ids, a->n, o->at_ms, o->common.interval_s,
                o->share_group, o->json && o->devices, results, err, sizeof(err))) == 0 &&
           a->n > 0 && !results[0].complete && hb_monotonic_ms() < give_up) {
        hb_check_results_finish(results, a->n);
        nanosleep(&(struct timespec){0, 100 * 1000000L}, NULL);
    }
    if (read < 0) {
        HB_ERROR("redis: %s", err);
        rc = EXIT_REDIS;
    } else {
        if (a->n > 0 && !results[0].complete) {
            HB_WARN("the interval is not complete: heartbeats are still being written or a "
                    "consumer of share group %s is behind",
                    o->share_group ? o->share_group : HB_WATERMARK_GROUP_DEFAULT);
            rc = EXIT_INCOMPLETE;
        }
        int64_t start = hb_interval_previous(o->at_ms, (int64_t)o->common.interval_s * 1000);
        for (size_t i = 0; i < a->n; i++)
            print_result(o, a->ids[i], start, &results[i]);
    }
    hb_check_results_finish(results, a->n);
    free(results);
    return rc;
}

static int verify(const struct options *o, struct rcluster *c)
{
    /* --follow opens the file itself, when the run has written it. */
    FILE *in = strcmp(o->verify_file, "-") == 0 ? stdin
               : o->follow                      ? fopen("/dev/null", "r")
                                                : fopen(o->verify_file, "r");
    if (in == NULL) {
        HB_ERROR("--verify %s: %s", o->verify_file, strerror(errno));
        return EXIT_USAGE;
    }
    struct verify_report rep;
    int rc = o->follow
                 ? verify_follow(c, o->verify_file, o->common.interval_s, o->share_group,
                                 o->verbose, stdout, &rep)
                 : verify_truth(c, in, o->common.interval_s, o->at_ms, o->verbose, stdout, &rep);
    if (in != stdin)
        fclose(in);
    printf("verify: %ld checked, %ld mismatched, %ld skipped (expired), %ld bad lines", rep.checked,
           rep.mismatched, rep.skipped, rep.bad_lines);
    if (o->follow)
        printf(", %ld intervals read incomplete", rep.incomplete);
    putchar('\n');
    if (rc < 0)
        return EXIT_REDIS;
    if (rep.checked == 0) {
        HB_ERROR("verify: nothing was compared");
        return EXIT_MISMATCH;
    }
    if (rep.mismatched || rep.bad_lines)
        return EXIT_MISMATCH;
    return rep.incomplete ? EXIT_INCOMPLETE : 0;
}

int main(int argc, char **argv)
{
    struct options o;
    int first_account;
    enum hb_options_status status = parse_options(&o, argc, argv, &first_account);
    if (status != HB_OPTIONS_RUN)
        return status == HB_OPTIONS_EXIT ? 0 : EXIT_USAGE;

    if (o.plays_file != NULL) {
        struct plays_verify_config pc = {o.play.default_policy, o.play.grace_s * 1000,
                                         PLAYS_VERIFY_LAG_MS};
        return plays_verify_file(o.plays_file, &pc);
    }
    struct accounts accounts = {0};
    for (int i = first_account; i < argc; i++) {
        bool ok = strcmp(argv[i], "-") == 0 ? read_stdin(&accounts)
                                            : accounts_add(&accounts, argv[i], strlen(argv[i]));
        if (!ok) {
            accounts_finish(&accounts);
            return EXIT_USAGE;
        }
    }

    struct hb_redis_addr addr;
    char err[256];
    if (!hb_redis_uri_parse(o.common.redis, &addr, err, sizeof(err))) {
        HB_ERROR("--redis: %s", err);
        accounts_finish(&accounts);
        return EXIT_USAGE;
    }
    /* Reachable now (PING, or a cluster's slot map), or exit EXIT_REDIS at once. */
    struct rcluster *c = rcluster_create(&addr, 5000, err, sizeof(err));
    if (c == NULL || rcluster_refresh(c, err, sizeof(err)) != 0) {
        HB_ERROR("redis: %s", err);
        rcluster_destroy(c);
        accounts_finish(&accounts);
        return EXIT_REDIS;
    }
    int rc = o.verify_file ? verify(&o, c) : check_accounts(&o, c, &accounts);
    rcluster_destroy(c);
    accounts_finish(&accounts);
    return rc;
}
