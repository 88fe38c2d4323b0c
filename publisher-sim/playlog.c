/* Writes the plays truth. Each event is formatted whole and written with one write() on an
 * O_APPEND descriptor, so the lines of the fleet's worker processes never interleave inside a
 * line; hb-check sorts them by time. */
#include "playlog.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int playlog_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        HB_ERROR("--plays-truth %s: %s", path, strerror(errno));
    return fd;
}

bool playlog_event(int fd, int64_t t_ms, const char *event, const char *account, const char *device,
                   const char *members)
{
    static bool reported;
    if (fd < 0)
        return true;
    char line[8192];
    int n =
        snprintf(line, sizeof(line),
                 "{\"t\":%" PRId64 ",\"event\":\"%s\",\"account\":\"%s\",\"device\":\"%s\"%s%s}\n",
                 t_ms, event, account, device, members ? "," : "", members ? members : "");
    if (n < 0 || (size_t)n >= sizeof(line)) {
        HB_ERROR("plays truth: a %s event of %s is too long", event, device);
        return false;
    }
    ssize_t w = write(fd, line, (size_t)n);
    if (w != n) {
        if (!reported)
            HB_ERROR("plays truth: write: %s", w < 0 ? strerror(errno) : "short write");
        reported = true;
        return false;
    }
    return true;
}
