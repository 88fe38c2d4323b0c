/* Small files that hold secrets: signing keys, HMAC secrets, tokens. Read whole, size-bounded,
 * and wiped from memory when freed. */
#ifndef HB_SECRETFILE_H
#define HB_SECRETFILE_H

#include <stdbool.h>
#include <stddef.h>

/* Reads the regular file at path (at most max bytes) into a new NUL-terminated buffer: *out
 * holds *len bytes plus the NUL. On failure writes why into err (the path and strerror, never
 * file contents) and returns false; *out is then untouched. Free with hb_secret_free. */
bool hb_secret_file_read(const char *path, size_t max, char **out, size_t *len, char *err,
                         size_t errlen);

/* Length of s[0..len) without one trailing "\n" or "\r\n" (as `echo` and editors leave it). */
size_t hb_secret_trim_newline(const char *s, size_t len);

/* Overwrites len bytes of p with zeros, then frees it. NULL is a no-op. */
void hb_secret_free(void *p, size_t len);

#endif
