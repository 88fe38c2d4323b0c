/* The one command-line parser: options are declared in tables (common/options.h) and this file
 * turns them into getopt_long's table, checks every value by its declared type, and prints the
 * help text from the declarations. It writes only into the struct it is given, so a failed
 * parse leaves no setting half applied. */
#include "options.h"

#include "config.h"
#include "ids.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HELP_COLUMN 24
#define OPTION_CODE_BASE 1000 /* getopt codes of declared options: above any short option */

bool hb_parse_long(const char *value, long min, long max, long *out)
{
    /* strtol would skip leading blanks and take a '+': a number here is digits only. */
    if (value == NULL || !(isdigit((unsigned char)value[0]) ||
                           (value[0] == '-' && isdigit((unsigned char)value[1]))))
        return false;
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

bool hb_parse_double(const char *value, double min, double max, double *out)
{
    if (value == NULL || *value == '\0')
        return false;
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Reports "FROM: " (nothing when from is NULL) followed by template with its one '%s' or
 * '%.80s' replaced by value. */
static void complain(const char *from, const char *template, const char *value)
{
    const char *hole = strstr(template, "%s");
    int precision = INT_MAX, skip = 2;
    if (hole == NULL && (hole = strstr(template, "%.80s")) != NULL) {
        precision = 80;
        skip = 5;
    }
    if (hole == NULL) {
        hole = template + strlen(template);
        skip = 0;
        value = "";
    }
    HB_ERROR("%s%s%.*s%.*s%s", from ? from : "", from ? ": " : "", (int)(hole - template), template,
             precision, value, hole + skip);
}

static void *field(const struct hb_option *o, void *base)
{
    return (char *)base + o->offset;
}

static bool store_integer(const struct hb_option *o, void *base, long v)
{
    /* The range check has run, so the value fits the field whatever its signedness. */
    if (o->size == sizeof(int32_t)) {
        int32_t x = (int32_t)v;
        memcpy(field(o, base), &x, sizeof(x));
    } else if (o->size == sizeof(int64_t)) {
        int64_t x = v;
        memcpy(field(o, base), &x, sizeof(x));
    } else {
        HB_ERROR("--%s: a field of %zu bytes cannot hold a number", o->name, o->size);
        return false;
    }
    return true;
}

/* Checks value and stores it. from names where it came from for the message. */
static bool set_value(const struct hb_option *o, void *base, const char *value, const char *from)
{
    long l;
    double d;
    enum hb_log_level level;
    const char *error = o->error;
    bool ok = true;
    switch (o->type) {
    case HB_OPTION_FLAG:
        *(bool *)field(o, base) = true;
        return true;
    case HB_OPTION_CLEAR:
        *(const char **)field(o, base) = NULL;
        return true;
    case HB_OPTION_STRING:
    case HB_OPTION_ID:
        if (o->type == HB_OPTION_ID)
            ok = hb_id_valid(value, strlen(value));
        if (ok && o->valid != NULL)
            ok = o->valid(value);
        if (ok)
            *(const char **)field(o, base) = value;
        break;
    case HB_OPTION_STRINGS: {
        size_t *count = (size_t *)((char *)base + o->count);
        if (*count == o->max_count) {
            HB_ERROR("%s: %s", from, o->error);
            return false;
        }
        ((const char **)field(o, base))[(*count)++] = value;
        return true;
    }
    case HB_OPTION_INTEGER:
        ok = hb_parse_long(value, o->min, o->max, &l);
        if (ok)
            return store_integer(o, base, l);
        if (error == NULL) {
            char generic[96];
            snprintf(generic, sizeof(generic), "expected a whole number in %ld..%ld, got '%%s'",
                     o->min, o->max);
            complain(from, generic, value);
            return false;
        }
        break;
    case HB_OPTION_DOUBLE:
        ok = hb_parse_double(value, o->dmin, o->dmax, &d);
        if (ok)
            *(double *)field(o, base) = d;
        break;
    case HB_OPTION_LOG_LEVEL:
        if (error == NULL)
            error = "expected error, warn, info or debug, got '%s'";
        ok = hb_log_level_parse(value, &level);
        if (ok)
            *(enum hb_log_level *)field(o, base) = level;
        break;
    case HB_OPTION_CUSTOM:
        ok = o->parse(base, value);
        if (!ok && error == NULL)
            return false; /* reported by parse */
        break;
    case HB_OPTION_HEADING:
        break;
    }
    if (!ok)
        complain(from, error ? error : "unusable value '%s'", value);
    return ok;
}

bool hb_option_apply(const struct hb_option *o, void *base, const char *value)
{
    char from[80];
    snprintf(from, sizeof(from), "--%s", o->name);
    bool *given = (o->flags & HB_OPTION_GIVEN) ? (bool *)((char *)base + o->given) : NULL;
    /* The first command-line value of a repeatable option replaces the defaults'. */
    if (o->type == HB_OPTION_STRINGS && given != NULL && !*given)
        *(size_t *)((char *)base + o->count) = 0;
    if (!set_value(o, base, value, from))
        return false;
    if (given != NULL)
        *given = true;
    return true;
}

bool hb_options_init(const struct hb_option *options, size_t n_options, void *base)
{
    for (size_t i = 0; i < n_options; i++) {
        const struct hb_option *o = &options[i];
        char from[80];
        snprintf(from, sizeof(from), "--%s (default)", o->name);
        if (o->def != NULL && !set_value(o, base, o->def, from))
            return false;
    }
    for (size_t i = 0; i < n_options; i++) {
        const struct hb_option *o = &options[i];
        const char *value = o->env ? getenv(o->env) : NULL;
        if (value == NULL || *value == '\0')
            continue;
        if (o->flags & HB_OPTION_ENV_LENIENT) {
            /* Try it on a copy, so an unusable value leaves the default and says nothing. */
            if (o->type == HB_OPTION_LOG_LEVEL) {
                enum hb_log_level level;
                if (hb_log_level_parse(value, &level))
                    *(enum hb_log_level *)field(o, base) = level;
            }
            continue;
        }
        if (o->type == HB_OPTION_STRINGS)
            *(size_t *)((char *)base + o->count) = 0; /* the environment's replaces the default */
        if (!set_value(o, base, value, o->env))
            return false;
    }
    return true;
}

static bool takes_argument(const struct hb_option *o)
{
    return o->type != HB_OPTION_FLAG && o->type != HB_OPTION_CLEAR;
}

/* Prints "  --name METAVAR" and the help text in columns, continuation lines indented. */
static void print_option_help(const struct hb_option *o)
{
    if (o->type == HB_OPTION_HEADING) {
        printf("%s\n", o->help);
        return;
    }
    int n = printf("  --%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
    if (n < HELP_COLUMN)
        printf("%*s", HELP_COLUMN - n, "");
    else
        printf("\n%*s", HELP_COLUMN, "");
    for (const char *p = o->help; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        printf("%.*s\n", (int)len, p);
        p += len;
        if (*p == '\n' && *++p != '\0')
            printf("%*s", HELP_COLUMN, "");
    }
}

static void print_help(const struct hb_options_spec *spec)
{
    fputs(spec->usage, stdout);
    for (size_t g = 0; g < spec->n_groups; g++) {
        for (size_t i = 0; i < spec->groups[g].n_options; i++)
            print_option_help(&spec->groups[g].options[i]);
    }
    fputs("  -h, --help            show this help\n"
          "  -V, --version         show the version\n",
          stdout);
    if (spec->epilogue != NULL)
        fputs(spec->epilogue, stdout);
}

/* A declared option with the group it belongs to. */
struct entry {
    const struct hb_option *option;
    size_t base;
};

/* Lists the options of spec (headings left out) in getopt's order. Returns their number, or
 * -1 after reporting a table that does not fit or a getopt_order name that is not declared. */
static int collect(const struct hb_options_spec *spec, struct entry *entries)
{
    int n = 0;
    for (size_t g = 0; g < spec->n_groups; g++) {
        for (size_t i = 0; i < spec->groups[g].n_options; i++) {
            const struct hb_option *o = &spec->groups[g].options[i];
            if (o->type == HB_OPTION_HEADING)
                continue;
            if (n == HB_OPTIONS_MAX) {
                HB_ERROR("%s: more than %d options", spec->program, HB_OPTIONS_MAX);
                return -1;
            }
            entries[n++] = (struct entry){o, spec->groups[g].base};
        }
    }
    if (spec->getopt_order == NULL)
        return n;
    /* Move each named option to the next place, in the order given. */
    int placed = 0;
    for (const char *const *name = spec->getopt_order; *name != NULL; name++) {
        int at = placed;
        while (at < n && strcmp(entries[at].option->name, *name) != 0)
            at++;
        if (at == n) {
            HB_ERROR("%s: getopt_order names no option '%s'", spec->program, *name);
            return -1;
        }
        struct entry e = entries[at];
        memmove(&entries[placed + 1], &entries[placed], (size_t)(at - placed) * sizeof(e));
        entries[placed++] = e;
    }
    return n;
}

enum hb_options_status hb_options_parse(const struct hb_options_spec *spec, void *opts, int argc,
                                        char **argv, int *first_operand)
{
    for (size_t g = 0; g < spec->n_groups; g++) {
        const struct hb_option_group *grp = &spec->groups[g];
        if (!hb_options_init(grp->options, grp->n_options, (char *)opts + grp->base))
            return HB_OPTIONS_USAGE;
    }
    struct entry entries[HB_OPTIONS_MAX];
    int n = collect(spec, entries);
    if (n < 0)
        return HB_OPTIONS_USAGE;
    struct option longopts[HB_OPTIONS_MAX + 3];
    for (int i = 0; i < n; i++) {
        longopts[i] =
            (struct option){entries[i].option->name,
                            takes_argument(entries[i].option) ? required_argument : no_argument,
                            NULL, OPTION_CODE_BASE + i};
    }
    longopts[n] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n + 1] = (struct option){"version", no_argument, NULL, 'V'};
    longopts[n + 2] = (struct option){NULL, 0, NULL, 0};

    optind = 0; /* glibc: start afresh, even after an earlier parse stopped half-way */
    int code;
    while ((code = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        if (code >= OPTION_CODE_BASE && code < OPTION_CODE_BASE + n) {
            const struct entry *e = &entries[code - OPTION_CODE_BASE];
            if (!hb_option_apply(e->option, (char *)opts + e->base, optarg))
                return HB_OPTIONS_USAGE;
        } else if (code == 'h') {
            print_help(spec);
            return HB_OPTIONS_EXIT;
        } else if (code == 'V') {
            printf("%s %s\n", spec->program, HB_VERSION);
            return HB_OPTIONS_EXIT;
        } else {
            fprintf(stderr, "Try '%s --help'.\n", spec->program);
            return HB_OPTIONS_USAGE;
        }
    }
    if (!spec->operands && optind < argc) {
        complain(NULL, spec->unexpected ? spec->unexpected : "unexpected argument '%s'",
                 argv[optind]);
        return HB_OPTIONS_USAGE;
    }
    if (first_operand != NULL)
        *first_operand = optind;
    return HB_OPTIONS_RUN;
}
