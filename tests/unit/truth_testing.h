/* A helper for the simulator's unit tests that compare a truth's JSON Lines with text. */
#ifndef HB_TRUTH_TESTING_H
#define HB_TRUTH_TESTING_H

#include "truth.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* What truth_write(t, f, n) writes, as a malloc'd string; NULL when it failed. */
static inline char *truth_to_string(const struct truth *t, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f == NULL)
        return NULL;
    bool ok = truth_write(t, f, n);
    fclose(f);
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}

#endif
