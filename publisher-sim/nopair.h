/* One descriptor per simulated connection instead of three: refuses libmosquitto's internal
 * wake-up socket pair, which an external event loop never uses (see nopair.c). */
#ifndef HB_SIM_NOPAIR_H
#define HB_SIM_NOPAIR_H

#include <stdbool.h>

/* While on, every socketpair(AF_UNIX, ...) of this process fails with EMFILE (and is counted);
 * other calls go to the kernel. Off at start. Call before creating clients. */
void nopair_enable(bool on);

/* How many socket pairs were refused so far. Zero after creating a client with refusing on
 * means the interposition is not in effect (e.g. a static libmosquitto): each client then
 * holds three descriptors. */
unsigned long nopair_refused(void);

#endif
