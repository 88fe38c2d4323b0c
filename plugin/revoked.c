/* The revocation list as a hash set. A refresh parses the whole file into a new set and swaps
 * it in only when every line parsed (partly applied lists would un-revoke tokens), so a bad
 * edit is reported and changes nothing. */
#include "revoked.h"

#include "config.h"
#include "ids.h"
#include "secretfile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <uthash.h>

struct hb_revoked_entry {
    char key[2 + HB_ID_MAX + 1]; /* "j:<jti>" or "s:<sub>" */
    int64_t before;              /* sub entries: iat below this is revoked */
    UT_hash_handle hh;
};

static void entries_free(struct hb_revoked_entry **entries)
{
    struct hb_revoked_entry *e, *tmp;
    HASH_ITER(hh, *entries, e, tmp)
    {
        HASH_DEL(*entries, e);
        free(e);
    }
}

bool hb_revoked_init(struct hb_revoked *r, const char *path)
{
    memset(r, 0, sizeof(*r));
    if (path == NULL)
        return true;
    r->path = strdup(path);
    return r->path != NULL;
}

void hb_revoked_finish(struct hb_revoked *r)
{
    entries_free(&r->entries);
    free(r->path);
    memset(r, 0, sizeof(*r));
}

/* Adds one entry; a repeated sub keeps the latest cut-off. False when out of memory. */
static bool entry_add(struct hb_revoked_entry **entries, size_t *n, char kind, const char *id,
                      int64_t before)
{
    char key[sizeof(((struct hb_revoked_entry *)0)->key)];
    snprintf(key, sizeof(key), "%c:%s", kind, id);
    struct hb_revoked_entry *e;
    HASH_FIND_STR(*entries, key, e);
    if (e != NULL) {
        if (before > e->before)
            e->before = before;
        return true;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return false;
    memcpy(e->key, key, sizeof(key));
    e->before = before;
    HASH_ADD_STR(*entries, key, e);
    (*n)++;
    return true;
}

/* Parses one line (NUL-terminated, no newline) into entries. False with the reason in err. */
static bool parse_line(char *line, struct hb_revoked_entry **entries, size_t *n, char *err,
                       size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash != NULL)
        *hash = '\0';
    char *save = NULL;
    char *kind = strtok_r(line, " \t\r", &save);
    if (kind == NULL)
        return true; /* blank or comment */
    char *id = strtok_r(NULL, " \t\r", &save);
    char *before = strtok_r(NULL, " \t\r", &save);
    char *extra = strtok_r(NULL, " \t\r", &save);
    if (id == NULL || !hb_id_valid(id, strlen(id)) || extra != NULL) {
        snprintf(err, errlen, "expected 'jti ID' or 'sub ACCOUNT BEFORE_UNIX_SECONDS'");
        return false;
    }
    if (*n >= HB_REVOKED_ENTRIES_MAX) {
        snprintf(err, errlen, "more than %d entries", HB_REVOKED_ENTRIES_MAX);
        return false;
    }
    bool ok;
    if (strcmp(kind, "jti") == 0 && before == NULL) {
        ok = entry_add(entries, n, 'j', id, 0);
    } else if (strcmp(kind, "sub") == 0 && before != NULL) {
        long t;
        if (!hb_parse_long(before, 0, 253402300799L, &t)) {
            snprintf(err, errlen, "'%.40s' is not a Unix time in seconds", before);
            return false;
        }
        ok = entry_add(entries, n, 's', id, t);
    } else {
        snprintf(err, errlen, "expected 'jti ID' or 'sub ACCOUNT BEFORE_UNIX_SECONDS'");
        return false;
    }
    if (!ok)
        snprintf(err, errlen, "out of memory");
    return ok;
}

int hb_revoked_refresh(struct hb_revoked *r, char *err, size_t errlen)
{
    if (r->path == NULL)
        return 0;
    struct stat st;
    if (stat(r->path, &st) != 0) {
        snprintf(err, errlen, "%s: %s", r->path, strerror(errno));
        return -1;
    }
    if (st.st_dev == r->dev && st.st_ino == r->ino && st.st_size == r->size &&
        st.st_mtim.tv_sec == r->mtime.tv_sec && st.st_mtim.tv_nsec == r->mtime.tv_nsec)
        return 0;
    char *text, why[256];
    size_t len;
    if (!hb_secret_file_read(r->path, HB_REVOKED_FILE_MAX, &text, &len, why, sizeof(why))) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    struct hb_revoked_entry *entries = NULL;
    size_t n = 0, line_no = 0;
    bool ok = strlen(text) == len;
    if (!ok)
        snprintf(err, errlen, "%s: contains a NUL byte; not a text file", r->path);
    for (char *line = text, *next; ok && line < text + len; line = next) {
        char *nl = memchr(line, '\n', (size_t)(text + len - line));
        next = nl ? nl + 1 : text + len;
        if (nl != NULL)
            *nl = '\0';
        line_no++;
        if (!parse_line(line, &entries, &n, why, sizeof(why))) {
            snprintf(err, errlen, "%s:%zu: %s", r->path, line_no, why);
            ok = false;
        }
    }
    hb_secret_free(text, len + 1);
    if (!ok) {
        entries_free(&entries);
        return -1;
    }
    entries_free(&r->entries);
    r->entries = entries;
    r->n = n;
    r->dev = st.st_dev;
    r->ino = st.st_ino;
    r->size = st.st_size;
    r->mtime = st.st_mtim;
    return 1;
}

bool hb_revoked_has(const struct hb_revoked *r, const struct hb_token_claims *c)
{
    if (r->entries == NULL)
        return false;
    char key[sizeof(((struct hb_revoked_entry *)0)->key)];
    struct hb_revoked_entry *e;
    if (c->jti[0] != '\0') {
        snprintf(key, sizeof(key), "j:%s", c->jti);
        HASH_FIND_STR(r->entries, key, e);
        if (e != NULL)
            return true;
    }
    snprintf(key, sizeof(key), "s:%s", c->sub);
    HASH_FIND_STR(r->entries, key, e);
    return e != NULL && c->iat < e->before;
}
