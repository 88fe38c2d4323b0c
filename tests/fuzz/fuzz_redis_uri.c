/* Fuzz target for Redis URIs (hb_redis_uri_parse) on a NUL-terminated copy of the input. The
 * oracles: a refused URI leaves the output untouched and says why; an accepted one is
 * well-formed and, written back as a URI, parses to the same fields. */
#include "redis.h"

#include "fuzz.h"

static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

/* addr written back in the canonical form of the URI grammar (redis.h). */
static void format_uri(const struct hb_redis_addr *addr, char *out, size_t size)
{
    int n;
    if (addr->cluster) {
        n = snprintf(out, size, "redis-cluster://%s:%s@", addr->user, addr->password);
        for (size_t i = 0; i < addr->n_seeds && n > 0 && (size_t)n < size; i++)
            n += snprintf(out + n, size - (size_t)n, "%s%s:%d", i ? "," : "", addr->seeds[i].host,
                          addr->seeds[i].port);
    } else if (addr->path[0]) {
        n = snprintf(out, size, "unix://%s?db=%d", addr->path, addr->db);
    } else {
        n = snprintf(out, size, "redis://%s:%s@%s:%d/%d", addr->user, addr->password, addr->host,
                     addr->port, addr->db);
    }
    FUZZ_ASSERT(n > 0 && (size_t)n < size);
}

static void check_accepted(const struct hb_redis_addr *addr)
{
    FUZZ_ASSERT(terminated(addr->host, sizeof(addr->host)));
    FUZZ_ASSERT(terminated(addr->path, sizeof(addr->path)));
    FUZZ_ASSERT(terminated(addr->user, sizeof(addr->user)));
    FUZZ_ASSERT(terminated(addr->password, sizeof(addr->password)));
    FUZZ_ASSERT((addr->host[0] == '\0') != (addr->path[0] == '\0'));
    FUZZ_ASSERT(addr->db >= 0);
    if (addr->cluster) {
        FUZZ_ASSERT(addr->n_seeds >= 1 && addr->n_seeds <= HB_REDIS_SEEDS_MAX && addr->db == 0);
        FUZZ_ASSERT(strcmp(addr->host, addr->seeds[0].host) == 0);
        FUZZ_ASSERT(addr->port == addr->seeds[0].port);
    }
    if (addr->path[0] != '\0') {
        FUZZ_ASSERT(addr->path[0] == '/' && strchr(addr->path, '?') == NULL);
        FUZZ_ASSERT(addr->user[0] == '\0' && addr->password[0] == '\0' && addr->port == 0);
    } else {
        FUZZ_ASSERT(addr->port >= 1 && addr->port <= 65535);
        FUZZ_ASSERT(strpbrk(addr->host, "/@") == NULL && strchr(addr->user, ':') == NULL);
    }

    char uri[1024], err[256] = "";
    struct hb_redis_addr again;
    format_uri(addr, uri, sizeof(uri));
    if (!hb_redis_uri_parse(uri, &again, err, sizeof(err))) {
        fprintf(stderr, "'%s' refused: %s\n", uri, err);
        FUZZ_ASSERT(!"the URI written back from an accepted one parses");
    }
    FUZZ_ASSERT(memcmp(&again, addr, sizeof(again)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *uri = fuzz_strndup(data, size);
    struct hb_redis_addr addr, before;
    memset(&addr, 0xa5, sizeof(addr));
    before = addr;
    char err[256] = "";
    if (hb_redis_uri_parse(uri, &addr, err, sizeof(err))) {
        check_accepted(&addr);
    } else {
        FUZZ_ASSERT(memcmp(&addr, &before, sizeof(addr)) == 0);
        FUZZ_ASSERT(err[0] != '\0' && terminated(err, sizeof(err)));
    }
    free(uri);
    return 0;
}
