/* Reading a fuzz corpus: a file, or the regular files of a directory in name order, each into a
 * buffer of its exact size, as libFuzzer hands inputs to a target. */
#include "fuzz.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

/* Reads path whole into a malloc'd buffer of exactly its size (at least one byte allocated). */
static uint8_t *read_input(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *buf = NULL;
    if (fstat(fileno(f), &st) != 0)
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
    else if ((buf = malloc(st.st_size > 0 ? (size_t)st.st_size : 1)) == NULL)
        fprintf(stderr, "%s: out of memory\n", path);
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "%s: short read\n", path);
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *size = buf ? (size_t)st.st_size : 0;
    return buf;
}

static bool run_file(const char *path, fuzz_input_fn *fn, void *arg)
{
    size_t size;
    uint8_t *data = read_input(path, &size);
    if (data == NULL)
        return false;
    bool ok = fn(path, data, size, arg);
    free(data);
    return ok;
}

static bool is_regular(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

long fuzz_corpus_each(const char *path, fuzz_input_fn *fn, void *arg)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return run_file(path, fn, arg) ? 1 : -1;

    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    long count = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        int len = snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        if (count >= 0 && len > 0 && (size_t)len < sizeof(file) && is_regular(file))
            count = run_file(file, fn, arg) ? count + 1 : -1;
        free(names[i]);
    }
    free(names);
    return count;
}
