/* Comparing what Redis holds with a simulator's truth file (JSON Lines of
 * {"interval_start": ms, "account": "...", "devices": [...]}), exactly: same device sets. */
#ifndef HB_VERIFY_H
#define HB_VERIFY_H

#include "rcluster.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct verify_report {
    long checked;    /* account-intervals compared */
    long mismatched; /* of those, with a different device set */
    long skipped;    /* intervals whose keys have already expired */
    long bad_lines;  /* truth lines that could not be read */
    long incomplete; /* --follow: intervals read before their watermark said complete */
};

/* Reads the truth from in and compares every line whose key should still exist at now_ms.
 * Prints one line per mismatch (and per match when verbose) to out. Returns 0 when the
 * comparison ran, -1 on a Redis error (reason on stderr). */
int verify_truth(struct rcluster *c, FILE *in, int interval_s, int64_t now_ms, bool verbose,
                 FILE *out, struct verify_report *report);

/* Follows a run while it happens: from now on, reads every account's device ids of each
 * interval as soon as the share group's watermark says the interval is complete (or, failing
 * that, just before its keys expire, counted in report->incomplete), so no interval expires
 * unread. When the truth file at path is complete (it exists, ends with a newline and has not
 * changed for a second) and every interval it names from the first one read on has been read,
 * compares each line like verify_truth and prints one summary line per interval. The first
 * interval read is the one before the call's; truth lines of earlier ones count as skipped. Returns
 * 0 when the comparison ran, -1 on a Redis or memory error (reason on stderr). */
int verify_follow(struct rcluster *c, const char *path, int interval_s, const char *group,
                  bool verbose, FILE *out, struct verify_report *report);

#endif
