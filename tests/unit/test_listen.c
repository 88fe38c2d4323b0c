/* Unit tests of listen-address parsing (common/listen.c), shared by hb-tokend and the
 * consumer's --metrics. */
#include "listen.h"

#include "testing.h"

#include <arpa/inet.h>
#include <netinet/in.h>

static void test_listen_ipv4_ipv6_and_names(void)
{
    struct sockaddr_storage a;
    char err[256];
    CHECK(hb_listen_parse("127.0.0.1:9102", &a, err, sizeof(err)));
    CHECK_INT(a.ss_family, AF_INET);
    CHECK_INT(ntohs(((struct sockaddr_in *)&a)->sin_port), 9102);
    CHECK_INT(ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr), INADDR_LOOPBACK);
    CHECK(hb_listen_parse("[::1]:0", &a, err, sizeof(err)));
    CHECK_INT(a.ss_family, AF_INET6);
    CHECK_INT(ntohs(((struct sockaddr_in6 *)&a)->sin6_port), 0);
    CHECK(hb_listen_parse("0.0.0.0:65535", &a, err, sizeof(err)));
    CHECK_INT(ntohs(((struct sockaddr_in *)&a)->sin_port), 65535);
}

static void test_listen_refusals_say_why(void)
{
    static const char *const bad[] = {"9102",      ":9102",       "127.0.0.1:", "127.0.0.1:65536",
                                      "[::1]9102", "[::1:9102",   "host:-1",    "host:12a",
                                      "[]:80",     "127.0.0.1:+1"};
    struct sockaddr_storage a;
    char err[256];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        CHECK(!hb_listen_parse(bad[i], &a, err, sizeof(err)));
        CHECK(strstr(err, "expected ADDR:PORT or [IPv6]:PORT") != NULL);
    }
}

int main(void)
{
    RUN(test_listen_ipv4_ipv6_and_names);
    RUN(test_listen_refusals_say_why);
    return TESTING_DONE();
}
