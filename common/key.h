/* The Redis key of an account's interval: hb:{<account>}:<interval start, Unix ms>.
 * The braces are a Redis Cluster hash tag, so an account's keys share a slot. */
#ifndef HB_KEY_H
#define HB_KEY_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"

/* "hb:{" + id + "}:" + up to 20 digits and a sign + NUL */
#define HB_KEY_MAX (4 + HB_ID_MAX + 2 + 21 + 1)

/* Writes the key into buf (at least HB_KEY_MAX bytes). Returns its length, or -1 when the
 * account id is invalid or buf is too small (buf is then an empty string). */
int hb_key_format(char *buf, size_t size, const char *account, int64_t interval_start_ms);

#endif
