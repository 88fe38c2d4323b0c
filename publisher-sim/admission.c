/* hb-sim's admission client: one blocking HTTP/1.1 request per device start, with
 * Connection: close so the answer ends at EOF (no chunking, no keep-alive state). Sockets get
 * SO_SNDTIMEO/SO_RCVTIMEO, so a stalled hb-api costs a device at most the timeout, never the
 * run. */
#include "admission.h"

#include "ids.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define ADMISSION_ANSWER_MAX 65536

static bool read_key(const char *path, char *out, size_t size, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return false;
    }
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL) {
        line[strcspn(line, "\r\n")] = '\0';
        char *p = line + strspn(line, " \t");
        if (*p == '\0' || *p == '#')
            continue;
        p[strcspn(p, " \t")] = '\0';
        if (strlen(p) >= size) {
            snprintf(err, errlen, "%s: the key is longer than %zu bytes", path, size - 1);
            break;
        }
        memcpy(out, p, strlen(p) + 1);
        found = true;
    }
    if (!found && ferror(f) == 0 && err[0] == '\0')
        snprintf(err, errlen, "%s: no key in the file", path);
    fclose(f);
    return found;
}

bool admission_api_init(struct admission_api *api, const char *url, const char *key_file, char *err,
                        size_t errlen)
{
    memset(api, 0, sizeof(*api));
    api->timeout_ms = 5000;
    err[0] = '\0';
    const char *p = url;
    if (strncmp(p, "http://", 7) != 0) {
        snprintf(err, errlen, "'%s': expected http://HOST:PORT", url);
        return false;
    }
    p += 7;
    const char *colon = strchr(p, ':');
    size_t hlen = colon ? (size_t)(colon - p) : 0;
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 0;
    if (colon == NULL || hlen == 0 || hlen >= sizeof(api->host) || port < 1 || port > 65535 ||
        (*end != '\0' && strcmp(end, "/") != 0)) {
        snprintf(err, errlen, "'%s': expected http://HOST:PORT", url);
        return false;
    }
    memcpy(api->host, p, hlen);
    api->host[hlen] = '\0';
    if (strcmp(api->host, "localhost") == 0)
        snprintf(api->host, sizeof(api->host), "127.0.0.1");
    struct in_addr a;
    if (inet_pton(AF_INET, api->host, &a) != 1) {
        snprintf(err, errlen, "'%s': the host must be an IPv4 address or localhost", url);
        return false;
    }
    api->port = (int)port;
    return read_key(key_file, api->key, sizeof(api->key), err, errlen);
}

void admission_answer_finish(struct admission_answer *a)
{
    free(a->token);
    free(a->ids);
    a->token = a->ids = NULL;
}

/* The ids of a JSON array of strings (evicted) or of objects with "device" (active), as a
 * compact JSON array of strings; NULL when an entry is malformed. */
static char *ids_of(const cJSON *arr)
{
    cJSON *out = cJSON_CreateArray();
    if (out == NULL)
        return NULL;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *s = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "device") : it;
        if (!cJSON_IsString(s) || !hb_id_valid(s->valuestring, strlen(s->valuestring)) ||
            !cJSON_AddItemToArray(out, cJSON_CreateString(s->valuestring))) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    char *text = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return text;
}

bool admission_parse(int status, const char *body, size_t len, struct admission_answer *out,
                     char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    out->status = status;
    if (status != 200 && status != 409) {
        snprintf(err, errlen, "HTTP %d: %.200s", status, body);
        return false;
    }
    cJSON *j = cJSON_ParseWithLength(body, len);
    const cJSON *allow = cJSON_GetObjectItemCaseSensitive(j, "allow");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(j, "limit");
    const cJSON *token = cJSON_GetObjectItemCaseSensitive(j, "token");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(j, status == 200 ? "evicted" : "active");
    bool ok = cJSON_IsObject(j) && cJSON_IsBool(allow) && cJSON_IsTrue(allow) == (status == 200) &&
              cJSON_IsNumber(limit) && (list == NULL || cJSON_IsArray(list));
    if (ok && status == 200)
        ok = cJSON_IsString(token) && *token->valuestring != '\0';
    if (ok && status == 409)
        ok = cJSON_IsString(reason) && strlen(reason->valuestring) < sizeof(out->reason) &&
             hb_id_valid(reason->valuestring, strlen(reason->valuestring));
    if (!ok) {
        snprintf(err, errlen, "HTTP %d with an unexpected body: %.200s", status, body);
        cJSON_Delete(j);
        return false;
    }
    out->allow = status == 200;
    out->limit = (long)limit->valuedouble;
    if (status == 200)
        out->token = strdup(token->valuestring);
    else
        snprintf(out->reason, sizeof(out->reason), "%s", reason->valuestring);
    out->ids = list ? ids_of(list) : strdup("[]");
    cJSON_Delete(j);
    if ((status == 200 && out->token == NULL) || out->ids == NULL) {
        snprintf(err, errlen, "HTTP %d: a malformed id list, or out of memory", status);
        return false;
    }
    return true;
}

static bool send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

/* Connects with both timeouts set; -1 with a reason in err. */
static int connect_api(const struct admission_api *api, char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    struct timeval tv = {.tv_sec = api->timeout_ms / 1000,
                         .tv_usec = api->timeout_ms % 1000 * 1000};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)api->port)};
    inet_pton(AF_INET, api->host, &sa.sin_addr);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        snprintf(err, errlen, "%s:%d: %s", api->host, api->port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

bool admission_request(const struct admission_api *api, const char *account, const char *device,
                       struct admission_answer *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    char body[256], req[1024];
    int blen =
        snprintf(body, sizeof(body), "{\"account\":\"%s\",\"device\":\"%s\"}", account, device);
    int rlen = snprintf(req, sizeof(req),
                        "POST /v1/plays HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                        "Content-Type: application/json\r\nContent-Length: %d\r\n"
                        "Connection: close\r\n\r\n%s",
                        api->host, api->port, api->key, blen, body);
    if (blen < 0 || (size_t)blen >= sizeof(body) || rlen < 0 || (size_t)rlen >= sizeof(req)) {
        snprintf(err, errlen, "request too long");
        return false;
    }
    int fd = connect_api(api, err, errlen);
    if (fd < 0)
        return false;
    char *buf = malloc(ADMISSION_ANSWER_MAX + 1);
    size_t got = 0;
    bool ok = buf != NULL && send_all(fd, req, (size_t)rlen);
    while (ok && got < ADMISSION_ANSWER_MAX) {
        ssize_t n = recv(fd, buf + got, ADMISSION_ANSWER_MAX - got, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            ok = false;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    int saved = errno;
    close(fd);
    if (!ok) {
        snprintf(err, errlen, "%s:%d: %s", api->host, api->port,
                 buf ? strerror(saved) : "out of memory");
        free(buf);
        return false;
    }
    buf[got] = '\0';
    int status = 0;
    const char *sep = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || sep == NULL) {
        snprintf(err, errlen, "%s:%d: not an HTTP answer", api->host, api->port);
        free(buf);
        return false;
    }
    ok = admission_parse(status, sep + 4, got - (size_t)(sep + 4 - buf), out, err, errlen);
    free(buf);
    return ok;
}
