/* The plays truth (--plays-truth): one JSON Lines event per admission, refusal, stop by
 * control, release and vanishing, for hb-check --verify-plays. */
#ifndef HB_SIM_PLAYLOG_H
#define HB_SIM_PLAYLOG_H

#include <stdbool.h>
#include <stdint.h>

/* Opens (truncating) path for appending; the descriptor is shared by every worker of a fleet
 * (forked later), each event being one write(). Returns the descriptor or -1 (reported). */
int playlog_open(const char *path);

/* Appends {"t":T,"event":E,"account":A,"device":D[,members]} and a newline to fd; members is
 * NULL or JSON object members without braces (e.g. "\"limit\":2"). Ids need no escaping (they
 * follow the id alphabet). fd < 0: nothing. False when the write failed (reported once). */
bool playlog_event(int fd, int64_t t_ms, const char *event, const char *account, const char *device,
                   const char *members);

#endif
