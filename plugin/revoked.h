/* The revocation list: tokens the broker refuses before they expire, read from a text file the
 * operator edits (plugin_opt_revoked_file). One entry per line, '#' starts a comment:
 *   jti ID              the token whose jti claim is ID
 *   sub ACCOUNT BEFORE  every token of ACCOUNT (its sub claim; "consumer" for consumer
 *                       tokens) issued before Unix time BEFORE (iat < BEFORE), so tokens minted
 *                       after the incident still work
 * The file is re-read when it changes; a file that does not parse leaves the list in force. */
#ifndef HB_AUTH_REVOKED_H
#define HB_AUTH_REVOKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "token.h"

#define HB_REVOKED_FILE_MAX (16 * 1024 * 1024)
#define HB_REVOKED_ENTRIES_MAX 1000000

struct hb_revoked_entry;

struct hb_revoked {
    char *path;                       /* NULL: no list configured, nothing is revoked */
    struct hb_revoked_entry *entries; /* uthash, keyed by "j:<jti>" or "s:<sub>" */
    size_t n;
    /* What the list was read from, to notice a change cheaply. */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
};

/* Sets up an empty list for path (copied; NULL for none). False when out of memory. */
bool hb_revoked_init(struct hb_revoked *r, const char *path);
void hb_revoked_finish(struct hb_revoked *r);

/* Re-reads the file when it is not the one read last (device, inode, size or mtime differ).
 * Returns 1 when a new list is in force, 0 when nothing changed, -1 with the reason in err
 * (file and line) when it cannot be read or parsed: the previous list then stays in force. */
int hb_revoked_refresh(struct hb_revoked *r, char *err, size_t errlen);

/* Whether the list revokes a token with these claims. */
bool hb_revoked_has(const struct hb_revoked *r, const struct hb_token_claims *c);

#endif
