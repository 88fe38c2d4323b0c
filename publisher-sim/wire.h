/* What a worker process tells the fleet's parent over its pipe: counters while it runs, its
 * final counters, and its part of the truth. Framed messages (type, length, bytes) between
 * processes of one executable, so structs travel as they are in memory. */
#ifndef HB_SIM_WIRE_H
#define HB_SIM_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sim.h"
#include "truth.h"

enum wire_type {
    WIRE_REPORT = 1, /* struct wire_report */
    WIRE_TRUTH = 2,  /* struct wire_truth_head, then n_intervals * n_words uint64_t */
};

/* Largest message accepted, bytes: a truth of 2^31 device-intervals. */
#define WIRE_MESSAGE_MAX (UINT64_C(1) << 28)

struct wire_report {
    struct sim_stats stats;
    uint64_t rss_kib; /* the worker's resident memory (VmRSS) */
    uint64_t pss_kib; /* its proportional share, shared pages counted once (Pss); 0: unknown */
    uint32_t fds;     /* descriptors it holds (counted when final) */
    bool final;       /* the run is over; no report follows */
};

struct wire_truth_head {
    int64_t first_ms;
    int64_t interval_ms;
    uint64_t n_intervals;
    uint64_t first_word; /* the words of each interval's bitmap that follow */
    uint64_t n_words;
};

/* Writes one message (blocking, whole). Returns false with errno set on failure; EPIPE means
 * the reader is gone (SIGPIPE must be ignored). */
bool wire_send(int fd, enum wire_type type, const void *data, size_t len);

/* Sends the part of truth t that covers devices [first, first + n): the bitmap words holding
 * them, for every interval. Returns false as wire_send does. */
bool wire_send_truth(int fd, const struct truth *t, size_t first, size_t n);

/* ORs a WIRE_TRUTH payload into t, which must be a truth of the same run (same first interval
 * and length; at least as many intervals). False with a reason in err when it does not fit. */
bool wire_merge_truth(struct truth *t, const void *payload, size_t len, char *err, size_t errlen);

/* Reassembles messages from a non-blocking pipe. Zero-initialize. */
struct wire_reader {
    unsigned char *buf;
    size_t start, len, cap; /* unread bytes are buf[start, start + len) */
};

/* Reads what fd has now. Returns 1 after reading something (or nothing yet: EAGAIN), 0 at end
 * of file, -1 on an error (errno set) or a message over WIRE_MESSAGE_MAX. */
int wire_reader_fill(struct wire_reader *r, int fd);

/* Takes the next complete message, if there is one: its type and payload (borrowed, valid
 * until the next call on r). */
bool wire_reader_next(struct wire_reader *r, uint32_t *type, const void **payload, size_t *len);

/* Bytes of an incomplete message left at the end (0 after a clean end). */
size_t wire_reader_pending(const struct wire_reader *r);

void wire_reader_finish(struct wire_reader *r);

#endif
