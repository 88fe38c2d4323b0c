/* Worker-to-parent messages: a 16-byte header (type, reserved, length) and the payload. The
 * writer blocks until the whole message is in the pipe; the parent reads every worker's pipe
 * without blocking and reassembles, so a large truth never stalls the progress of others. */
#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct wire_header {
    uint32_t type;
    uint32_t reserved;
    uint64_t len;
};

static bool write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        p += n;
        len -= (size_t)n;
    }
    return true;
}

bool wire_send(int fd, enum wire_type type, const void *data, size_t len)
{
    struct wire_header h = {.type = (uint32_t)type, .len = len};
    return write_all(fd, &h, sizeof(h)) && write_all(fd, data, len);
}

bool wire_send_truth(int fd, const struct truth *t, size_t first, size_t n)
{
    size_t first_word = first / 64;
    size_t end_word = n == 0 ? first_word : (first + n + 63) / 64;
    if (end_word > truth_words(t))
        end_word = truth_words(t);
    if (first_word > end_word)
        first_word = end_word;
    size_t n_words = end_word - first_word;
    size_t n_intervals = truth_intervals(t);
    struct wire_truth_head head = {
        .first_ms = truth_first_ms(t),
        .interval_ms = truth_interval_ms(t),
        .n_intervals = n_intervals,
        .first_word = first_word,
        .n_words = n_words,
    };
    size_t len = sizeof(head) + n_intervals * n_words * sizeof(uint64_t);
    unsigned char *buf = malloc(len);
    if (buf == NULL)
        return false;
    memcpy(buf, &head, sizeof(head));
    for (size_t k = 0; k < n_intervals; k++)
        memcpy(buf + sizeof(head) + k * n_words * sizeof(uint64_t), truth_bits(t, k) + first_word,
               n_words * sizeof(uint64_t));
    bool ok = wire_send(fd, WIRE_TRUTH, buf, len);
    int saved = errno;
    free(buf);
    errno = saved;
    return ok;
}

bool wire_merge_truth(struct truth *t, const void *payload, size_t len, char *err, size_t errlen)
{
    struct wire_truth_head head;
    if (len < sizeof(head)) {
        snprintf(err, errlen, "truth message of %zu bytes is too short", len);
        return false;
    }
    memcpy(&head, payload, sizeof(head));
    if (head.first_ms != truth_first_ms(t) || head.interval_ms != truth_interval_ms(t) ||
        head.n_intervals > truth_intervals(t) || head.first_word > truth_words(t) ||
        head.n_words > truth_words(t) - head.first_word ||
        len != sizeof(head) + head.n_intervals * head.n_words * sizeof(uint64_t)) {
        snprintf(err, errlen, "truth message does not match this run's truth");
        return false;
    }
    const unsigned char *words = (const unsigned char *)payload + sizeof(head);
    uint64_t chunk[256];
    for (size_t k = 0; k < head.n_intervals; k++) {
        /* The payload need not be aligned for uint64_t: copy through an aligned buffer. */
        for (size_t w = 0; w < head.n_words; w += 256) {
            size_t m = head.n_words - w < 256 ? head.n_words - w : 256;
            memcpy(chunk, words + (k * head.n_words + w) * sizeof(uint64_t), m * sizeof(uint64_t));
            truth_merge(t, k, head.first_word + w, chunk, m);
        }
    }
    return true;
}

int wire_reader_fill(struct wire_reader *r, int fd)
{
    for (;;) {
        if (r->len == 0)
            r->start = 0;
        if (r->start > 0 && r->start + r->len == r->cap) {
            memmove(r->buf, r->buf + r->start, r->len);
            r->start = 0;
        }
        size_t want = r->len >= sizeof(struct wire_header) ? 0 : 65536;
        if (r->len >= sizeof(struct wire_header)) {
            struct wire_header h;
            memcpy(&h, r->buf + r->start, sizeof(h));
            if (h.len > WIRE_MESSAGE_MAX) {
                errno = EMSGSIZE;
                return -1;
            }
            want = sizeof(h) + (size_t)h.len;
            want = want > r->len ? want - r->len : 0;
            if (want < 65536)
                want = 65536;
        }
        if (r->cap - r->start - r->len < want) {
            size_t cap = r->len + want;
            unsigned char *buf = malloc(cap);
            if (buf == NULL)
                return -1;
            if (r->len > 0)
                memcpy(buf, r->buf + r->start, r->len);
            free(r->buf);
            r->buf = buf;
            r->cap = cap;
            r->start = 0;
        }
        ssize_t n = read(fd, r->buf + r->start + r->len, r->cap - r->start - r->len);
        if (n > 0) {
            r->len += (size_t)n;
            continue;
        }
        if (n == 0)
            return 0;
        if (errno == EINTR)
            continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -1;
    }
}

bool wire_reader_next(struct wire_reader *r, uint32_t *type, const void **payload, size_t *len)
{
    struct wire_header h;
    if (r->len < sizeof(h))
        return false;
    memcpy(&h, r->buf + r->start, sizeof(h));
    if (h.len > WIRE_MESSAGE_MAX || r->len - sizeof(h) < h.len)
        return false;
    *type = h.type;
    *payload = r->buf + r->start + sizeof(h);
    *len = (size_t)h.len;
    r->start += sizeof(h) + (size_t)h.len;
    r->len -= sizeof(h) + (size_t)h.len;
    return true;
}

size_t wire_reader_pending(const struct wire_reader *r)
{
    return r->len;
}

void wire_reader_finish(struct wire_reader *r)
{
    free(r->buf);
    memset(r, 0, sizeof(*r));
}
