/* Interval arithmetic: intervals are aligned to Unix-epoch multiples of their length (UTC),
 * and every time here is Unix milliseconds. */
#ifndef HB_INTERVAL_H
#define HB_INTERVAL_H

#include <stdint.h>

/* Current wall-clock time, Unix milliseconds (CLOCK_REALTIME). */
int64_t hb_now_ms(void);

/* Milliseconds of CLOCK_MONOTONIC: for timeouts and backoff, never for binning. */
int64_t hb_monotonic_ms(void);

/* Start of the interval that contains t_ms. Rounds down, also for times before the epoch.
 * interval_ms must be > 0. */
int64_t hb_interval_start(int64_t t_ms, int64_t interval_ms);

/* Start of the last complete interval at t_ms: the one before the interval containing t_ms. */
int64_t hb_interval_previous(int64_t t_ms, int64_t interval_ms);

/* Milliseconds a key of the interval starting at start_ms must still live at now_ms: until the
 * end of the interval after its own (start + 2 * interval). Never more than 2 * interval_ms;
 * zero or less when the key is already past its life. */
int64_t hb_interval_ttl_ms(int64_t start_ms, int64_t interval_ms, int64_t now_ms);

#endif
