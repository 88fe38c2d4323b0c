/* The key id default shared by hb-token and hb-tokend, so a token minted by either names the
 * same kid for the same key file, and the broker plugin's default matches it. */
#include "keyfile.h"

#include "ids.h"
#include "log.h"

#include <string.h>

bool keyfile_default_kid(const char *path, char kid[HB_ID_MAX + 1])
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot != base ? (size_t)(dot - base) : strlen(base);
    if (!hb_id_valid(base, len)) {
        HB_ERROR("the key file name '%.80s' gives no valid key id (1-64 bytes of A-Z a-z 0-9 . _ "
                 "- : before the extension); pass --kid",
                 base);
        return false;
    }
    memcpy(kid, base, len);
    kid[len] = '\0';
    return true;
}

bool keyfile_load(struct hb_key *key, const char *path, const char *kid)
{
    char default_kid[HB_ID_MAX + 1];
    if (kid == NULL) {
        if (!keyfile_default_kid(path, default_kid))
            return false;
        kid = default_kid;
    }
    char err[512];
    if (!hb_key_load(key, kid, path, err, sizeof(err))) {
        HB_ERROR("%s", err);
        return false;
    }
    return true;
}
