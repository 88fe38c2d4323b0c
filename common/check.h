/* The read side: how many distinct devices each account had in one interval, read for many
 * accounts in one pipelined round trip. The checker program and any program that links the
 * library use this. */
#ifndef HB_CHECK_H
#define HB_CHECK_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hb_check_result {
    long long devices;  /* distinct devices; 0 when the key does not exist */
    char **device_ids;  /* with want_ids: the devices, sorted; else NULL */
    size_t n_device_ids;
};

/* For each of the n accounts, reads the hash of the interval starting at interval_start_ms
 * (HLEN, or HKEYS when want_ids) in one pipeline, and fills results[0..n). Invalid account ids
 * count 0 devices without a query. Returns 0, or -1 with a reason in err (connection or protocol
 * error; results are then undefined but safe to pass to hb_check_results_finish). */
int hb_check_interval(redisContext *c, const char *const *accounts, size_t n,
                      int64_t interval_start_ms, bool want_ids, struct hb_check_result *results,
                      char *err, size_t errlen);

/* Same, for the last complete interval at at_ms (hb_interval_previous). */
int hb_check_previous(redisContext *c, const char *const *accounts, size_t n, int64_t at_ms,
                      int interval_s, bool want_ids, struct hb_check_result *results, char *err,
                      size_t errlen);

/* Frees what hb_check_interval allocated in results[0..n); the array itself stays. */
void hb_check_results_finish(struct hb_check_result *results, size_t n);

#endif
