/* Unit tests of hb-sim's capacity planning (publisher-sim/capacity.c): the worker count the
 * open-file limit calls for, and the advice when a run cannot fit. */
#include "capacity.h"

#include "testing.h"

#include <string.h>

static struct capacity_input input(size_t devices)
{
    struct capacity_input in = {
        .devices = devices,
        .workers_max = 256,
        .fd_limit = 20000,
        .fd_hard = 20000,
        .fds_per_connection = 1,
        .n_brokers = 12,
        .ports = 28232,
    };
    return in;
}

static void test_workers_follow_the_open_file_limit(void)
{
    struct capacity_input in = input(200000);
    struct capacity_plan p;
    char err[512];
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    CHECK_INT(p.per_worker_max, 20000 - CAPACITY_RESERVED_FDS);
    CHECK_INT(p.workers, 11); /* 200000 / 19936 = 10.03 */
    CHECK_INT(p.per_worker, 18182);
    in.fds_per_connection = 3; /* libmosquitto's socket pair in effect */
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    CHECK_INT(p.per_worker_max, 6645);
    CHECK_INT(p.workers, 31);
}

static void test_small_runs_get_one_worker_and_never_more_than_devices(void)
{
    struct capacity_input in = input(100);
    struct capacity_plan p;
    char err[512];
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    CHECK_INT(p.workers, 1);
    in.workers = 8;
    in.devices = 3;
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    CHECK_INT(p.workers, 3);
    CHECK_INT(p.per_worker, 1);
    in.devices = 0;
    in.workers = 0;
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    CHECK_INT(p.workers, 1);
}

static void test_too_few_requested_workers_say_how_many(void)
{
    struct capacity_input in = input(200000);
    in.workers = 4;
    struct capacity_plan p;
    char err[512];
    CHECK(!capacity_plan(&in, &p, err, sizeof(err)));
    CHECK(strstr(err, "--workers 4 puts up to 50000 connections in one process") != NULL);
    CHECK(strstr(err, "use --workers 11 or more") != NULL);
    CHECK(strstr(err, "ulimit -n (hard limit 20000)") != NULL);
}

static void test_a_tiny_limit_is_refused_with_the_hard_limit(void)
{
    struct capacity_input in = input(1000000);
    in.fd_limit = in.fd_hard = 1024;
    struct capacity_plan p;
    char err[512];
    CHECK(!capacity_plan(&in, &p, err, sizeof(err)));
    CHECK(strstr(err, "more than 256") != NULL && strstr(err, "raise ulimit -n") != NULL);
    in.fd_limit = 10;
    CHECK(!capacity_plan(&in, &p, err, sizeof(err)));
    CHECK(strstr(err, "leaves no room") != NULL);
}

static void test_ports_per_broker_without_sources(void)
{
    struct capacity_input in = input(200000);
    struct capacity_plan p;
    char err[512];
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    /* 16667 connections per broker: past half of 28232 ports. */
    CHECK(!capacity_ports(&in, &p, err, sizeof(err)));
    CHECK(strstr(err, "up to 16667 connections go to one broker address") != NULL);
    CHECK(strstr(err, "--source-address (at least 15, e.g. 127.0.0.2-127.0.0.16)") != NULL);
    in.n_brokers = 15;
    CHECK(capacity_ports(&in, &p, err, sizeof(err)));
}

static void test_ports_per_source_address_are_shared_by_brokers(void)
{
    struct capacity_input in = input(200000);
    in.n_sources = 10; /* 20000 per address, whatever the brokers */
    struct capacity_plan p;
    char err[512];
    CHECK(capacity_plan(&in, &p, err, sizeof(err)));
    CHECK(!capacity_ports(&in, &p, err, sizeof(err)));
    CHECK(strstr(err, "up to 20000 connections are bound to one source address") != NULL);
    CHECK(strstr(err, "at least 15 addresses") != NULL);
    in.n_sources = 20;
    CHECK(capacity_ports(&in, &p, err, sizeof(err)));
    in.ports = 0; /* unknown: nothing to say */
    in.n_sources = 1;
    CHECK(capacity_ports(&in, &p, err, sizeof(err)));
}

int main(void)
{
    RUN(test_workers_follow_the_open_file_limit);
    RUN(test_small_runs_get_one_worker_and_never_more_than_devices);
    RUN(test_too_few_requested_workers_say_how_many);
    RUN(test_a_tiny_limit_is_refused_with_the_hard_limit);
    RUN(test_ports_per_broker_without_sources);
    RUN(test_ports_per_source_address_are_shared_by_brokers);
    return TESTING_DONE();
}
