/* Comparing what Redis holds with a simulator's truth file (JSON Lines of
 * {"interval_start": ms, "account": "...", "devices": [...]}), exactly: same device sets. */
#ifndef HB_VERIFY_H
#define HB_VERIFY_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct verify_report {
    long checked;    /* account-intervals compared */
    long mismatched; /* of those, with a different device set */
    long skipped;    /* intervals whose keys have already expired */
    long bad_lines;  /* truth lines that could not be read */
};

/* Reads the truth from in and compares every line whose key should still exist at now_ms.
 * Prints one line per mismatch (and per match when verbose) to out. Returns 0 when the
 * comparison ran, -1 on a Redis error (reason on stderr). */
int verify_truth(redisContext *c, FILE *in, int interval_s, int64_t now_ms, bool verbose,
                 FILE *out, struct verify_report *report);

#endif
