/* hb-check: how many distinct devices each account had in the last complete interval. All
 * accounts of one call are read in one pipelined round trip (hb_check_previous in common/).
 * With --verify it compares Redis with a simulator's truth file instead. */
#include "check.h"
#include "config.h"
#include "ids.h"
#include "interval.h"
#include "log.h"
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
    int64_t at_ms;
    const char *verify_file;
    const char *share_group;
    bool follow;
};

enum { OPT_JSON = HB_OPT_FIRST_PROGRAM_OPTION, OPT_DEVICES, OPT_AT, OPT_VERIFY, OPT_VERBOSE,
       OPT_SHARE_GROUP, OPT_FOLLOW };

static const struct option long_options[] = {
    HB_CONFIG_LONG_OPTIONS,
    {"json", no_argument, NULL, OPT_JSON},
    {"devices", no_argument, NULL, OPT_DEVICES},
    {"at", required_argument, NULL, OPT_AT},
    {"verify", required_argument, NULL, OPT_VERIFY},
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"share-group", required_argument, NULL, OPT_SHARE_GROUP},
    {"follow", no_argument, NULL, OPT_FOLLOW},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "Usage: hb-check [OPTION]... ACCOUNT...\n"
    "       hb-check [OPTION]... --verify TRUTH.jsonl\n"
    "Print the number of distinct devices of each ACCOUNT in the last complete interval\n"
    "(the one before the interval containing now, or --at). ACCOUNT '-' reads ids from stdin,\n"
    "one per line.\n\n";

static const char usage_tail[] =
    "  --json                one JSON object per account per line\n"
    "  --devices             with --json, also list the device ids\n"
    "  --at UNIX_SECONDS     check as if it were this time\n"
    "  --verify FILE         compare Redis with a simulator truth file (JSON Lines); prints\n"
    "                        mismatches, exits 1 on any\n"
    "  --verbose             with --verify, print matching lines too\n"
    "  --follow              with --verify, compare each interval of a truth file that is still\n"
    "                        being written as soon as it is complete (see README)\n"
    "  --share-group NAME    the consumers' share group, whose watermark says whether an\n"
    "                        interval is complete (default hb-consumers)\n"
    "  -h, --help            show this help\n"
    "  -V, --version         show the version\n\n"
    "Exit status: 0 ok, 1 verify mismatch, 2 usage error, 3 Redis error, 4 an interval read\n"
    "was not complete (still being written, or a consumer is behind).\n";

/* Returns 0 to run, 1 to exit successfully, 2 on a usage error. */
static int parse_options(struct options *o, int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    if (!hb_config_init(&o->common))
        return 2;
    int opt;
    long at;
    while ((opt = getopt_long(argc, argv, "hV", long_options, NULL)) != -1) {
        int handled = hb_config_option(&o->common, opt, optarg);
        if (handled < 0)
            return 2;
        if (handled > 0)
            continue;
        switch (opt) {
        case OPT_JSON:
            o->json = true;
            break;
        case OPT_DEVICES:
            o->devices = true;
            break;
        case OPT_VERBOSE:
            o->verbose = true;
            break;
        case OPT_AT:
            if (!hb_parse_long(optarg, 0, 32503680000L, &at)) {
                HB_ERROR("--at: expected Unix seconds, got '%s'", optarg);
                return 2;
            }
            o->at_given = true;
            o->at_ms = (int64_t)at * 1000;
            break;
        case OPT_VERIFY:
            o->verify_file = optarg;
            break;
        case OPT_SHARE_GROUP:
            if (!hb_id_valid(optarg, strlen(optarg))) {
                HB_ERROR("--share-group: must be an id (A-Z a-z 0-9 . _ - :), got '%s'", optarg);
                return 2;
            }
            o->share_group = optarg;
            break;
        case OPT_FOLLOW:
            o->follow = true;
            break;
        case 'h':
            printf("%s%s%s", usage, hb_config_help, usage_tail);
            return 1;
        case 'V':
            printf("hb-check %s\n", HB_VERSION);
            return 1;
        default:
            fprintf(stderr, "Try 'hb-check --help'.\n");
            return 2;
        }
    }
    if (o->verify_file == NULL && optind >= argc) {
        HB_ERROR("no account given (use '-' to read them from stdin)");
        return 2;
    }
    if (!o->at_given)
        o->at_ms = hb_now_ms();
    return 0;
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

static int check_accounts(const struct options *o, redisContext *c, const struct accounts *a)
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
    while ((read = hb_check_previous_group(c, (const char *const *)a->ids, a->n, o->at_ms,
                                           o->common.interval_s, o->share_group,
                                           o->json && o->devices, results, err,
                                           sizeof(err))) == 0 &&
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

static int verify(const struct options *o, redisContext *c)
{
    /* --follow opens the file itself, when the run has written it. */
    FILE *in = strcmp(o->verify_file, "-") == 0 ? stdin
               : o->follow                        ? fopen("/dev/null", "r")
                                                  : fopen(o->verify_file, "r");
    if (in == NULL) {
        HB_ERROR("--verify %s: %s", o->verify_file, strerror(errno));
        return EXIT_USAGE;
    }
    struct verify_report rep;
    int rc = o->follow ? verify_follow(c, o->verify_file, o->common.interval_s, o->share_group,
                                       o->verbose, stdout, &rep)
                       : verify_truth(c, in, o->common.interval_s, o->at_ms, o->verbose,
                                      stdout, &rep);
    if (in != stdin)
        fclose(in);
    printf("verify: %ld checked, %ld mismatched, %ld skipped (expired), %ld bad lines",
           rep.checked, rep.mismatched, rep.skipped, rep.bad_lines);
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
    int rc = parse_options(&o, argc, argv);
    if (rc != 0)
        return rc == 1 ? 0 : EXIT_USAGE;

    struct accounts accounts = {0};
    for (int i = optind; i < argc; i++) {
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
    redisContext *c = hb_redis_connect(&addr, 5000, err, sizeof(err));
    if (c == NULL) {
        HB_ERROR("redis: %s", err);
        accounts_finish(&accounts);
        return EXIT_REDIS;
    }
    rc = o.verify_file ? verify(&o, c) : check_accounts(&o, c, &accounts);
    redisFree(c);
    accounts_finish(&accounts);
    return rc;
}
