/* Listen addresses of the programs that serve HTTP (hb-tokend, hb-consumer's metrics). */
#ifndef HB_LISTEN_H
#define HB_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Resolves "host:port" or "[v6]:port" (numeric port 0-65535; host a name or a numeric
 * address) into addr. False with the reason in err when it is not of that form or the host
 * does not resolve. */
bool hb_listen_parse(const char *listen, struct sockaddr_storage *addr, char *err, size_t errlen);

#endif
