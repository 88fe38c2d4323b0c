/* Heartbeat payloads from a template: text with {{placeholders}} for what a player would
 * report (send time, ids, bitrate, media, play time, user agent, sequence number). A template
 * is compiled once into parts, so rendering a heartbeat is a few copies and number
 * conversions. */
#ifndef HB_SIM_PAYLOAD_H
#define HB_SIM_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Largest payload the simulator renders, bytes. The consumer's default --payload-max is 1024. */
#define PAYLOAD_MAX 4096
/* Largest template file, bytes. */
#define PAYLOAD_TEMPLATE_MAX 65536

/* The built-in template: a realistic player heartbeat, under 256 bytes once rendered. */
extern const char payload_default_template[];

/* What the placeholders stand for, for one heartbeat. Strings must be JSON-safe as they are
 * (ids and the agent table are). */
struct payload_values {
    int64_t ts_ms;       /* {{ts}}: send time, Unix ms */
    const char *device;  /* {{device}} */
    const char *account; /* {{account}} */
    unsigned bitrate;    /* {{bitrate}}: kbit/s */
    unsigned media;      /* {{media}}: rendered m-0042 */
    int64_t play_ms;     /* {{play_time}}: seconds with one decimal, 123.4 */
    const char *os;      /* {{os}} */
    const char *browser; /* {{browser}} */
    const char *model;   /* {{model}} */
    uint64_t seq;        /* {{seq}}: heartbeats this device sent before, from 0 */
};

struct payload_part;

struct payload_template {
    char *text; /* owned copy of the template */
    struct payload_part *parts;
    size_t n_parts;
};

/* Compiles text[0..len) into t. Placeholders are {{name}} with a name from payload_values;
 * anything else between {{ and }} is an error. Returns false with a reason in err (t is then
 * empty and safe to finish). The template is not checked as JSON here: see payload_check. */
bool payload_compile(struct payload_template *t, const char *text, size_t len, char *err,
                     size_t errlen);

/* Reads and compiles a template file (at most PAYLOAD_TEMPLATE_MAX bytes; trailing newlines
 * and blanks are dropped) and checks it with payload_check. False with a reason in err. */
bool payload_load(struct payload_template *t, const char *path, size_t *longest, char *err,
                  size_t errlen);

/* Frees the template; a zeroed or finished one is a no-op. */
void payload_finish(struct payload_template *t);

/* Writes the payload for v into buf (NUL-terminated). Returns its length, or -1 when it does
 * not fit in size - 1 bytes. */
int payload_render(const struct payload_template *t, const struct payload_values *v, char *buf,
                   size_t size);

/* Inserts members (JSON object members without braces, e.g. "\"started\":1") before the
 * closing brace of the JSON object rendered in buf[0..len), with a comma unless the object is
 * empty. Returns the new length, or -1 when buf holds no object or size is too small. */
int payload_add_members(char *buf, size_t len, size_t size, const char *members);

/* Renders t with the longest values it can take and checks that the result is what the
 * consumer accepts: a JSON object (with a numeric "ts" when the template has {{ts}}) that fits
 * PAYLOAD_MAX. Stores the longest rendering's length in *longest (to compare with the
 * consumer's --payload-max). False with a reason in err. */
bool payload_check(const struct payload_template *t, size_t *longest, char *err, size_t errlen);

#endif
