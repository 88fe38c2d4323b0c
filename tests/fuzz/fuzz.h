/* What every fuzz target in tests/fuzz shares: the libFuzzer entry point, an invariant check
 * that aborts (so libFuzzer, or the replay test, reports the input), and the corpus walk. A
 * target is linked either with libFuzzer (clang, -Dfuzzing=true) or with replay.c. */
#ifndef HB_FUZZ_H
#define HB_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Runs the code under test on data[0..size) and checks its invariants. Returns 0; a violated
 * invariant aborts. Never keeps data or anything it allocated. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Aborts with file:line and the condition when cond does not hold. */
#define FUZZ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* data[0..size) as a malloc'd NUL-terminated string; aborts when out of memory. */
static inline char *fuzz_strndup(const void *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Called with each input of a corpus: its path and its bytes, in a buffer of exactly size bytes
 * (so a read past the end is caught by AddressSanitizer). False stops the walk. */
typedef bool fuzz_input_fn(const char *path, const uint8_t *data, size_t size, void *arg);

/* Calls fn for path when it is a file, or for every regular file directly in it when it is a
 * directory. Returns the number of inputs, or -1 after printing why the walk failed (unreadable
 * path or file, fn returned false). */
long fuzz_corpus_each(const char *path, fuzz_input_fn *fn, void *arg);

#endif
