/* The truth is one bitmap per interval, a bit per device, so recording is O(1) on the
 * publishing path, memory is n_intervals * n_devices bits, and the truths of workers that
 * drove disjoint devices merge by OR. The sort orders (accounts by id, each account's devices
 * by id) are computed only when the file is written. */
#include "truth.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct truth {
    struct truth_ids ids;
    int64_t first_ms;
    int64_t interval_ms;
    size_t n_intervals;
    size_t words;   /* 64-bit words per interval bitmap */
    uint64_t *bits; /* [n_intervals * words] */
};

/* The order the file lists ids in. */
struct truth_order {
    size_t *account_order; /* account indices sorted by id */
    size_t *device_order;  /* device indices grouped by account, sorted by id in a group */
    size_t *account_first; /* [n_accounts + 1]: account a's devices are device_order[first..] */
};

/* Sorts idx[0..n) by the ids they index in names. qsort has no context argument, so it sorts
 * pointers into names (compared through one more indirection) and turns them back into
 * indices. */
static int compare_id_refs(const void *a, const void *b)
{
    const char *const *x = *(const char *const *const *)a;
    const char *const *y = *(const char *const *const *)b;
    return strcmp(*x, *y);
}

static bool sort_by_id(size_t *idx, size_t n, const char *const *names)
{
    if (n < 2)
        return true;
    const char *const **refs = malloc(n * sizeof(*refs));
    if (refs == NULL) {
        HB_ERROR("truth: out of memory sorting %zu ids", n);
        return false;
    }
    for (size_t i = 0; i < n; i++)
        refs[i] = &names[idx[i]];
    qsort(refs, n, sizeof(*refs), compare_id_refs);
    for (size_t i = 0; i < n; i++)
        idx[i] = (size_t)(refs[i] - names);
    free(refs);
    return true;
}

static void order_finish(struct truth_order *o)
{
    free(o->account_order);
    free(o->device_order);
    free(o->account_first);
}

static bool order_init(struct truth_order *o, const struct truth_ids *ids)
{
    o->account_order = calloc(ids->n_accounts + 1, sizeof(size_t));
    o->device_order = calloc(ids->n_devices + 1, sizeof(size_t));
    o->account_first = calloc(ids->n_accounts + 1, sizeof(size_t));
    size_t *fill = calloc(ids->n_accounts + 1, sizeof(size_t));
    if (!o->account_order || !o->device_order || !o->account_first || !fill) {
        HB_ERROR("truth: out of memory sorting %zu devices", ids->n_devices);
        goto fail;
    }
    for (size_t a = 0; a < ids->n_accounts; a++)
        o->account_order[a] = a;
    if (!sort_by_id(o->account_order, ids->n_accounts, ids->accounts))
        goto fail;

    /* Counting sort of the devices by account, then sort each account's group by id. */
    for (size_t d = 0; d < ids->n_devices; d++)
        o->account_first[ids->device_account[d] + 1]++;
    for (size_t a = 0; a < ids->n_accounts; a++)
        o->account_first[a + 1] += o->account_first[a];
    for (size_t d = 0; d < ids->n_devices; d++) {
        size_t a = ids->device_account[d];
        o->device_order[o->account_first[a] + fill[a]++] = d;
    }
    for (size_t a = 0; a < ids->n_accounts; a++) {
        size_t first = o->account_first[a];
        if (!sort_by_id(o->device_order + first, o->account_first[a + 1] - first, ids->devices))
            goto fail;
    }
    free(fill);
    return true;
fail:
    free(fill);
    order_finish(o);
    return false;
}

struct truth *truth_create(const struct truth_ids *ids, int64_t first_ms, int64_t interval_ms,
                           size_t n_intervals)
{
    if (interval_ms <= 0) {
        HB_ERROR("truth: interval must be positive");
        return NULL;
    }
    struct truth *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        HB_ERROR("truth: out of memory");
        return NULL;
    }
    t->ids = *ids;
    t->first_ms = first_ms;
    t->interval_ms = interval_ms;
    t->n_intervals = n_intervals;
    t->words = (ids->n_devices + 63) / 64;
    if (t->words > 0 && n_intervals > SIZE_MAX / sizeof(uint64_t) / t->words) {
        HB_ERROR("truth: %zu intervals of %zu devices do not fit in memory", n_intervals,
                 ids->n_devices);
        goto fail;
    }
    for (size_t d = 0; d < ids->n_devices; d++) {
        if (ids->device_account[d] >= ids->n_accounts) {
            HB_ERROR("truth: device %zu names account %zu of %zu", d, ids->device_account[d],
                     ids->n_accounts);
            goto fail;
        }
    }
    /* calloc(0) may return NULL legitimately; ask for at least one element. */
    t->bits = calloc(n_intervals * t->words + 1, sizeof(uint64_t));
    if (t->bits == NULL) {
        HB_ERROR("truth: out of memory for %zu intervals of %zu devices: %s", n_intervals,
                 ids->n_devices, strerror(errno));
        goto fail;
    }
    return t;
fail:
    truth_destroy(t);
    return NULL;
}

void truth_destroy(struct truth *t)
{
    if (t == NULL)
        return;
    free(t->bits);
    free(t);
}

bool truth_record(struct truth *t, size_t device, int64_t sent_ms)
{
    if (device >= t->ids.n_devices || sent_ms < t->first_ms)
        return false;
    int64_t k = (sent_ms - t->first_ms) / t->interval_ms;
    if ((uint64_t)k >= t->n_intervals)
        return false;
    t->bits[(size_t)k * t->words + device / 64] |= UINT64_C(1) << (device % 64);
    return true;
}

static bool has(const struct truth *t, size_t k, size_t device)
{
    return (t->bits[k * t->words + device / 64] >> (device % 64)) & 1u;
}

size_t truth_count(const struct truth *t, size_t n_intervals)
{
    if (n_intervals > t->n_intervals)
        n_intervals = t->n_intervals;
    size_t n = 0;
    for (size_t k = 0; k < n_intervals; k++)
        for (size_t d = 0; d < t->ids.n_devices; d++)
            n += has(t, k, d);
    return n;
}

bool truth_write(const struct truth *t, FILE *out, size_t n_intervals)
{
    if (n_intervals > t->n_intervals)
        n_intervals = t->n_intervals;
    struct truth_order o;
    if (!order_init(&o, &t->ids))
        return false;
    for (size_t k = 0; k < n_intervals; k++) {
        long long start = (long long)(t->first_ms + (int64_t)k * t->interval_ms);
        for (size_t i = 0; i < t->ids.n_accounts; i++) {
            size_t a = o.account_order[i];
            fprintf(out, "{\"interval_start\":%lld,\"account\":\"%s\",\"devices\":[", start,
                    t->ids.accounts[a]);
            bool first = true;
            for (size_t j = o.account_first[a]; j < o.account_first[a + 1]; j++) {
                size_t d = o.device_order[j];
                if (!has(t, k, d))
                    continue;
                fprintf(out, "%s\"%s\"", first ? "" : ",", t->ids.devices[d]);
                first = false;
            }
            fputs("]}\n", out);
        }
        if (ferror(out))
            break;
    }
    order_finish(&o);
    if (fflush(out) != 0 || ferror(out)) {
        HB_ERROR("truth: write failed: %s", strerror(errno));
        return false;
    }
    return true;
}

size_t truth_words(const struct truth *t)
{
    return t->words;
}

size_t truth_intervals(const struct truth *t)
{
    return t->n_intervals;
}

int64_t truth_first_ms(const struct truth *t)
{
    return t->first_ms;
}

int64_t truth_interval_ms(const struct truth *t)
{
    return t->interval_ms;
}

const uint64_t *truth_bits(const struct truth *t, size_t k)
{
    return k < t->n_intervals ? t->bits + k * t->words : NULL;
}

bool truth_merge(struct truth *t, size_t k, size_t first_word, const uint64_t *words, size_t n)
{
    if (k >= t->n_intervals || first_word > t->words || n > t->words - first_word)
        return false;
    uint64_t *dst = t->bits + k * t->words + first_word;
    for (size_t i = 0; i < n; i++)
        dst[i] |= words[i];
    return true;
}
