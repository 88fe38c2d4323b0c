/* Formatting of Redis keys. The account id is validated again here so that no caller can
 * build a key from unchecked input. */
#include "key.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int hb_key_format(char *buf, size_t size, const char *account, int64_t interval_start_ms)
{
    if (size > 0)
        buf[0] = '\0';
    if (!hb_id_valid(account, strnlen(account, HB_ID_MAX + 1)))
        return -1;
    int n = snprintf(buf, size, "hb:{%s}:%" PRId64, account, interval_start_ms);
    if (n < 0 || (size_t)n >= size) {
        if (size > 0)
            buf[0] = '\0';
        return -1;
    }
    return n;
}
