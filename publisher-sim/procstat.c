/* /proc readers. Pss comes from smaps_rollup (one line per field, summed by the kernel), so
 * forked workers that share the plan with their parent are not counted many times over. */
#include "procstat.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The value in KiB of "field:" in a /proc file of "Name:   123 kB" lines; 0 when absent. */
static uint64_t field_kib(const char *path, const char *field)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f) != NULL) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            if (sscanf(line + n + 1, "%" SCNu64, &v) != 1)
                v = 0;
            break;
        }
    }
    fclose(f);
    return v;
}

void procstat_memory(uint64_t *rss_kib, uint64_t *pss_kib)
{
    *rss_kib = field_kib("/proc/self/status", "VmRSS");
    *pss_kib = field_kib("/proc/self/smaps_rollup", "Pss");
}

uint32_t procstat_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    uint32_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? n - 1 : 0; /* the directory's own descriptor */
}
