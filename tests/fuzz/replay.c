/* Replays fuzz inputs without libFuzzer: runs the target linked with it once on every file of
 * the directories and files named on the command line. This is how the seed corpus runs in the
 * unit suite with gcc and in the sanitizer build. Exits 1 when a path cannot be read or a
 * directory holds no input; a violated invariant aborts inside the target. */
#include "fuzz.h"

static bool run_one(const char *path, const uint8_t *data, size_t size, void *arg)
{
    LLVMFuzzerTestOneInput(data, size);
    return true;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = fuzz_corpus_each(argv[i], run_one, NULL);
        if (n <= 0) {
            fprintf(stderr, "%s: %s\n", argv[i], n == 0 ? "no inputs" : "cannot be replayed");
            return 1;
        }
        total += n;
    }
    printf("replayed %ld inputs\n", total);
    return 0;
}
