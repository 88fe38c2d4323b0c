/* Declared command-line options. A program lists its options in tables: long name, environment
 * variable, default, the checked type of the value, the field it fills and its help text. One
 * parser fills a fresh struct from the defaults, the environment and argv, in that order, and
 * changes nothing else: a program applies what it parsed (the log level, ...) only on success. */
#ifndef HB_OPTIONS_H
#define HB_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

enum hb_option_type {
    HB_OPTION_FLAG,      /* no argument: sets a bool field to true */
    HB_OPTION_CLEAR,     /* no argument: sets a const char * field to NULL */
    HB_OPTION_STRING,    /* a const char * into argv or the environment; .valid checks it */
    HB_OPTION_ID,        /* a const char *: 1..64 bytes of the id alphabet (common/ids.h) */
    HB_OPTION_STRINGS,   /* repeatable: const char *field[.max_count], count at .count */
    HB_OPTION_INTEGER,   /* a whole number in [.min, .max] into an integer field of 4 or 8 bytes */
    HB_OPTION_DOUBLE,    /* a finite number in [.dmin, .dmax] into a double */
    HB_OPTION_LOG_LEVEL, /* error, warn, info or debug into an enum hb_log_level */
    HB_OPTION_CUSTOM,    /* .parse checks and stores the value */
    HB_OPTION_HEADING,   /* not an option: .help is a line of its own in the help text */
};

/* Flags of an option. */
enum {
    HB_OPTION_GIVEN = 1 << 0, /* set the bool at .given when the option is on the command line */
    HB_OPTION_ENV_LENIENT = 1 << 1, /* HB_OPTION_LOG_LEVEL: an unusable environment value is
                                     * ignored, not an error */
};

/* Where a field is: use HB_OPTION_FIELD(struct type, member) in a declaration. */
#define HB_OPTION_FIELD(type, member)                                                              \
    .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

struct hb_option {
    enum hb_option_type type;
    const char *name;    /* long name without "--" */
    const char *metavar; /* the argument's name in the help; NULL for options without one */
    const char *env;     /* environment variable or NULL; an empty value counts as unset */
    const char *def;     /* default, parsed like a value (NULL: the field stays zero) */
    size_t offset, size; /* the field filled, from HB_OPTION_FIELD */
    size_t count;        /* HB_OPTION_STRINGS: offset of the size_t number of values */
    size_t max_count;    /* HB_OPTION_STRINGS: most values */
    size_t given;        /* with HB_OPTION_GIVEN: offset of a bool */
    unsigned flags;
    long min, max;     /* HB_OPTION_INTEGER */
    double dmin, dmax; /* HB_OPTION_DOUBLE */
    /* HB_OPTION_STRING: whether the value is acceptable (NULL: any). */
    bool (*valid)(const char *value);
    /* HB_OPTION_CUSTOM: checks value and stores it into opts (the whole struct the table
     * describes). Returns false when value is unusable: after reporting why itself when .error
     * is NULL. */
    bool (*parse)(void *opts, const char *value);
    /* The complaint about an unusable value, after "--name: " or "ENV: ". It holds the value
     * once, as '%s' or as '%.80s' (at most 80 bytes of it); NULL for a type's own message. */
    const char *error;
    /* Help text after the option's name and metavar; each '\n' starts an indented line. */
    const char *help;
};

/* A table of options filling the struct at offset .base of the parsed struct. */
struct hb_option_group {
    const struct hb_option *options;
    size_t n_options;
    size_t base;
};

#define HB_OPTION_GROUPS_MAX 4
#define HB_OPTIONS_MAX 64 /* options of one program, all groups together */

struct hb_options_spec {
    const char *program;  /* for --version and "Try 'PROGRAM --help'." */
    const char *usage;    /* help text before the options */
    const char *epilogue; /* help text after "-h, --help" and "-V, --version" */
    struct hb_option_group groups[HB_OPTION_GROUPS_MAX]; /* in the order of the help text */
    size_t n_groups;
    /* Long names in the order getopt lists them when an abbreviation is ambiguous, when that
     * differs from the help text's order (NULL-terminated; NULL: the help text's order). */
    const char *const *getopt_order;
    bool operands; /* arguments other than options are allowed; else they are an error */
    /* The complaint about an operand when they are not allowed, holding it as '%s' or '%.80s'
     * (NULL: "unexpected argument '%s'"). */
    const char *unexpected;
};

/* What a program does after hb_options_parse. */
enum hb_options_status {
    HB_OPTIONS_RUN = 0,   /* the struct is filled: run */
    HB_OPTIONS_EXIT = 1,  /* --help or --version was printed: exit successfully */
    HB_OPTIONS_USAGE = 2, /* a usage error was reported: exit with status 2 */
};

/* Fills opts, a zeroed struct, from the options' defaults, then their environment variables,
 * then argv (getopt_long). Reports the first unusable value ("--name: ..." or "ENV: ...") and
 * stops there. Touches nothing but opts and stdout/stderr. Strings in opts point into argv, the
 * environment or the tables. *first_operand (when not NULL) gets the index of the first
 * operand in argv, which getopt_long may have permuted. */
enum hb_options_status hb_options_parse(const struct hb_options_spec *spec, void *opts, int argc,
                                        char **argv, int *first_operand);

/* Fills the fields of one group from its defaults and then its environment variables. Returns
 * false after reporting the first unusable value. */
bool hb_options_init(const struct hb_option *options, size_t n_options, void *base);

/* Applies one command-line value (NULL for options without an argument) of option o to the
 * struct at base, as "--name". Returns false after reporting why it is unusable. */
bool hb_option_apply(const struct hb_option *o, void *base, const char *value);

/* Parses a whole number in [min, max], digits only with an optional leading '-'; false when
 * value is not entirely such a number. */
bool hb_parse_long(const char *value, long min, long max, long *out);

/* Parses a finite number in [min, max] (strtod syntax, the whole string); false otherwise. */
bool hb_parse_double(const char *value, double min, double max, double *out);

#endif
