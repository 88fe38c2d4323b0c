/* A minimal unit-test harness: each test is a function; failed checks print file:line and the
 * values, and the program exits non-zero when any check failed. */
#ifndef HB_TESTING_H
#define HB_TESTING_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int testing_failures;
static int testing_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        testing_checks++;                                                                          \
        if (!(cond)) {                                                                             \
            testing_failures++;                                                                    \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long testing_a = (long long)(a), testing_b = (long long)(b);                          \
        testing_checks++;                                                                          \
        if (testing_a != testing_b) {                                                              \
            testing_failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__, __LINE__, #a, #b,  \
                    testing_a, testing_b);                                                         \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *testing_a = (a), *testing_b = (b);                                             \
        testing_checks++;                                                                          \
        if (strcmp(testing_a, testing_b) != 0) {                                                   \
            testing_failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a,  \
                    #b, testing_a, testing_b);                                                     \
        }                                                                                          \
    } while (0)

#define RUN(test)                                                                                  \
    do {                                                                                           \
        int testing_before = testing_failures;                                                     \
        test();                                                                                    \
        fprintf(stderr, "%s %s\n", testing_failures == testing_before ? "ok  " : "FAIL", #test);   \
    } while (0)

#define TESTING_DONE()                                                                             \
    (fprintf(stderr, "%d checks, %d failed\n", testing_checks, testing_failures),                  \
     testing_failures ? 1 : 0)

#endif
