/* "ADDR:PORT" parsing for listeners. The last colon separates the port unless the host is in
 * brackets, so "[::1]:9102" is IPv6 and "localhost:9102" a name. */
#include "listen.h"

#include "config.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

bool hb_listen_parse(const char *listen, struct sockaddr_storage *addr, char *err, size_t errlen)
{
    char host[256];
    const char *port;
    if (listen[0] == '[') {
        const char *end = strchr(listen, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - listen - 1) >= sizeof(host))
            goto bad;
        memcpy(host, listen + 1, (size_t)(end - listen - 1));
        host[end - listen - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(listen, ':');
        if (colon == NULL || (size_t)(colon - listen) >= sizeof(host))
            goto bad;
        memcpy(host, listen, (size_t)(colon - listen));
        host[colon - listen] = '\0';
        port = colon + 1;
    }
    long port_n;
    if (host[0] == '\0' || !hb_parse_long(port, 0, 65535, &port_n))
        goto bad;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%.80s: %s", listen, gai_strerror(rc));
        return false;
    }
    memset(addr, 0, sizeof(*addr));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return true;
bad:
    snprintf(err, errlen, "expected ADDR:PORT or [IPv6]:PORT, got '%.80s'", listen);
    return false;
}
