/* Account and device identifiers: the one alphabet every component agrees on. */
#ifndef HB_IDS_H
#define HB_IDS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest account or device id, in bytes. */
#define HB_ID_MAX 64

/* True when s[0..len) is 1..HB_ID_MAX bytes of A-Z a-z 0-9 . _ - : and nothing else.
 * s need not be NUL-terminated; a NUL byte inside the range makes it invalid. */
bool hb_id_valid(const char *s, size_t len);

#endif
