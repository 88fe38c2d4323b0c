/* One worker process of a fleet: a simulator on its slice of the devices that reports its
 * counters, and at the end its part of the truth, to the parent over a pipe. */
#ifndef HB_SIM_WORKER_H
#define HB_SIM_WORKER_H

#include <stdint.h>

#include "sim.h"

/* How often a worker reports its counters, milliseconds. */
#define WORKER_REPORT_MS 500

/* Runs the simulator cfg (its slice, rate, seed and signals already set; report is set here)
 * from start_ms, sending WIRE_REPORT messages to fd while it runs, then a final one and its
 * WIRE_TRUTH. Returns the process's exit status: 0, or 1 when the run or a send failed. */
int worker_run(const struct sim_config *cfg, int fd, int64_t start_ms);

#endif
