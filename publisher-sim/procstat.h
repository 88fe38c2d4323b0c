/* This process's own resource use, from /proc: memory and open descriptors. */
#ifndef HB_SIM_PROCSTAT_H
#define HB_SIM_PROCSTAT_H

#include <stdint.h>

/* Resident memory (VmRSS) and proportional set size (Pss: pages shared with other processes,
 * e.g. a fork's parent, counted by share), in KiB. Either is 0 when unavailable. */
void procstat_memory(uint64_t *rss_kib, uint64_t *pss_kib);

/* Descriptors this process holds now, or 0 when /proc cannot tell. Reads the whole
 * descriptor table: call it rarely. */
uint32_t procstat_fds(void);

#endif
