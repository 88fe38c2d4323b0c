/* A strict, allocation-free JSON validator for heartbeat payloads (RFC 8259). It exists for
 * the consumer's hot path: paho runs the message callback on its only receive thread, and a
 * full parse that builds a tree (cJSON) costs several allocations per heartbeat there. */
#ifndef HB_JSON_H
#define HB_JSON_H

#include <stdbool.h>
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

/* A member met by hb_json_scan: one of the top-level object (parent == NULL), or of an object
 * that is the value of a top-level member (parent is that member's key). Texts are raw slices of
 * the document: a key or a string value includes its quotes, escapes undecoded; a value spans
 * exactly its token, or its whole object or array. */
struct hb_json_member {
    const char *parent;
    size_t parent_len;
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
};

/* Called once per member, in document order, after the member's value was validated; the
 * members of an object inside a top-level member come before that member. */
typedef void hb_json_visit(void *ctx, const struct hb_json_member *m);

/* Validates text[0..len) as hb_json_check does and, in the same pass, calls visit (when not
 * NULL) for every member of the top-level object and of the objects directly inside it. The text
 * may still prove invalid after some calls: keep what visit gathered only when the result is
 * HB_JSON_OBJECT. */
enum hb_json_kind hb_json_scan(const char *text, size_t len, hb_json_visit *visit, void *ctx);

/* A "ts" value as hb_json_check reads it: a number token shorter than 32 bytes in (0, 1e15),
 * truncated to whole milliseconds; -1 for anything else. */
int64_t hb_json_ts(const char *value, size_t len);

#endif
