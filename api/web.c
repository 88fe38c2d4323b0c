/* hb-api's pages (--web-root DIR): the device page, the dashboard, their scripts and the vendored
 * mqtt.js, read from disk per request (bounded) so a page can be edited without a restart. URLs
 * never become paths: a URL is one of a few fixed names or one flat file name (a strict alphabet,
 * a known extension) looked up in DIR/public, so nothing else on disk can be reached. */
#include "api.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define WEB_FILE_MAX (2 * 1024 * 1024) /* mqtt.min.js is 342 kB */
#define WEB_NAME_MAX 64
#define WEB_DEVICE_PAGE "public/index.html"
#define WEB_MQTT_JS "node_modules/mqtt/dist/mqtt.min.js"

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".png", "image/png"},
    {".svg", "image/svg+xml"},
    {".json", "application/json"},
    {".ico", "image/x-icon"},
};

static const struct {
    const char *url, *file;
} fixed[] = {
    {"/", WEB_DEVICE_PAGE},
    {"/play", WEB_DEVICE_PAGE},
    {"/dashboard", "public/dashboard.html"},
    {"/vendor/mqtt.min.js", WEB_MQTT_JS},
};

static struct hb_ratelimit web_log = {.burst = 10, .window_ms = 10000};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot != NULL && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* The file (relative to the root) a URL names, or NULL: fixed names, else "/NAME" with NAME of
 * [A-Za-z0-9_.-], starting with a letter or digit, without "..", and of a known type. */
static const char *file_of(const char *url, char *buf, size_t buflen)
{
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (strcmp(url, fixed[i].url) == 0)
            return fixed[i].file;
    const char *name = url + 1;
    size_t n = strlen(name);
    if (url[0] != '/' || n == 0 || n > WEB_NAME_MAX || strstr(name, "..") != NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || strchr("_.-", c) == NULL))
            return NULL;
    }
    if (type_of(name) == NULL)
        return NULL;
    snprintf(buf, buflen, "public/%s", name);
    return buf;
}

/* Reads root/rel, a regular file of at most WEB_FILE_MAX bytes, into a malloc'd buffer. NULL
 * with errno set (ENOENT for anything that is not such a file). */
static char *read_file(const char *root, const char *rel, size_t *len)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", root, rel) >= sizeof(path)) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    struct stat st;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > WEB_FILE_MAX) {
        errno = ENOENT;
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf != NULL && got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            free(buf);
            buf = NULL;
            errno = r == 0 ? EIO : errno;
            break;
        }
        got += (size_t)r;
    }
    *len = got;
out:
    close(fd);
    return buf;
}

bool api_web_check(const char *root, char *err, size_t errlen)
{
    size_t len = 0;
    char *page = read_file(root, WEB_DEVICE_PAGE, &len);
    if (page == NULL) {
        snprintf(err, errlen, "%s/%s: %s", root, WEB_DEVICE_PAGE, strerror(errno));
        return false;
    }
    free(page);
    char *mqtt = read_file(root, WEB_MQTT_JS, &len);
    if (mqtt == NULL)
        HB_WARN("--web-root %s: no %s (%s): run scripts/deps.sh; the device page needs it", root,
                WEB_MQTT_JS, strerror(errno));
    free(mqtt);
    return true;
}

void api_web_get(struct api *a, struct hb_httpd_request *req)
{
    static const char missing[] = "not found\n";
    char buf[WEB_NAME_MAX + 16];
    bool dashboard = strncmp(req->path, "/dashboard", 10) == 0;
    if (dashboard && a->set.dashboard && strcmp(req->path, "/dashboard/data") == 0) {
        api_dashboard_data(a, req);
        return;
    }
    /* Operational data: the page and its script only with --dashboard (or the demo). */
    const char *rel = dashboard && !a->set.dashboard ? NULL : file_of(req->path, buf, sizeof(buf));
    size_t len = 0;
    char *body = rel ? read_file(a->set.web_root, rel, &len) : NULL;
    if (body == NULL) {
        bool absent = rel == NULL || errno == ENOENT || errno == ELOOP || errno == ENOTDIR;
        long suppressed = 0;
        if (!absent && hb_ratelimit_allow(&web_log, &suppressed))
            HB_WARN("--web-root: cannot read %s: %s (%ld similar suppressed)", rel, strerror(errno),
                    suppressed);
        hb_httpd_reply_text(req, absent ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR,
                            "text/plain; charset=utf-8", missing, sizeof(missing) - 1);
        return;
    }
    hb_httpd_reply_text(req, MHD_HTTP_OK, type_of(rel), body, len);
    free(body);
}
