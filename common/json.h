/* A strict, allocation-free JSON validator for heartbeat payloads (RFC 8259). It exists for
 * the consumer's hot path: paho runs the message callback on its only receive thread, and a
 * full parse that builds a tree (cJSON) costs several allocations per heartbeat there. */
#ifndef HB_JSON_H
#define HB_JSON_H

#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted; deeper documents are not JSON we accept. */
#define HB_JSON_DEPTH_MAX 32

enum hb_json_kind {
    HB_JSON_INVALID = 0, /* not valid JSON (or nested deeper than HB_JSON_DEPTH_MAX) */
    HB_JSON_OBJECT,      /* valid JSON whose top-level value is an object */
    HB_JSON_OTHER,       /* valid JSON of another type (array, string, number, literal) */
};

/* Validates text[0..len) as exactly one JSON value with optional surrounding whitespace.
 * Strings must be valid UTF-8 without raw control bytes; numbers follow the RFC grammar (no
 * leading zeros, no hex, no NaN). For an object, the first top-level member named "ts" whose
 * value is a number in (0, 1e15) is stored in *ts (whole milliseconds); otherwise *ts = -1.
 * Never allocates and never reads outside the range. */
enum hb_json_kind hb_json_check(const char *text, size_t len, int64_t *ts);

#endif
