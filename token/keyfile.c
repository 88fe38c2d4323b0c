/* The key id default shared by hb-token and hb-tokend, so a token minted by either names the
 * same kid for the same key file, and the broker plugin's default matches it. */
#include "keyfile.h"

#include "ids.h"
#include "log.h"

#include <string.h>

bool keyfile_default_kid(const char *path, char kid[HB_ID_MAX + 1])
{
    if (!hb_key_default_kid(path, kid, HB_ID_MAX + 1)) {
        HB_ERROR("the key file name '%.80s' gives no valid key id (1-64 bytes of A-Z a-z 0-9 . _ "
                 "- : before the extension); pass --kid",
                 path);
        return false;
    }
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
