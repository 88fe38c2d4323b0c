/* The ground truth of a run: which devices of each account sent at least one heartbeat in
 * each complete interval, and its JSON Lines file (one line per interval and account). */
#ifndef HB_SIM_TRUTH_H
#define HB_SIM_TRUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The ids the truth names, borrowed: they must outlive the truth. Every id satisfies
 * hb_id_valid, so it needs no escaping in JSON. */
struct truth_ids {
    size_t n_accounts;
    const char *const *accounts; /* [n_accounts] */
    size_t n_devices;
    const char *const *devices;   /* [n_devices] */
    const size_t *device_account; /* [n_devices], index into accounts */
};

struct truth;

/* Creates an empty truth for n_intervals intervals of interval_ms starting at first_ms (a
 * boundary). Returns NULL (after reporting why) when out of memory or when ids are
 * inconsistent. The caller destroys it with truth_destroy. */
struct truth *truth_create(const struct truth_ids *ids, int64_t first_ms, int64_t interval_ms,
                           size_t n_intervals);

/* Frees the truth; NULL is a no-op. */
void truth_destroy(struct truth *t);

/* Records that device (an index into ids->devices) sent a heartbeat at sent_ms. Returns true
 * when sent_ms falls into one of the tracked intervals, false when it is outside them (the
 * heartbeat is then simply not part of the truth). */
bool truth_record(struct truth *t, size_t device, int64_t sent_ms);

/* Writes the first n_intervals tracked intervals (at most as many as were created) to out:
 * one line {"interval_start":MS,"account":"ID","devices":["ID",...]} per interval and account,
 * ordered by interval_start then account, devices sorted, [] for an account without any.
 * Returns false (after reporting why) when a write fails. */
bool truth_write(const struct truth *t, FILE *out, size_t n_intervals);

/* How many (interval, device) pairs are recorded among the first n_intervals intervals. */
size_t truth_count(const struct truth *t, size_t n_intervals);

/* The bitmaps, for moving a truth between processes: interval k's bitmap is truth_words(t)
 * 64-bit words, device d being bit d % 64 of word d / 64. */
size_t truth_words(const struct truth *t);
size_t truth_intervals(const struct truth *t);
int64_t truth_first_ms(const struct truth *t);
int64_t truth_interval_ms(const struct truth *t);

/* Interval k's bitmap (borrowed), or NULL when k is not tracked. */
const uint64_t *truth_bits(const struct truth *t, size_t k);

/* ORs words[0..n) into interval k's bitmap from word first_word on: the union with a truth of
 * the same run. Returns false (changing nothing) when k or the words are out of range. */
bool truth_merge(struct truth *t, size_t k, size_t first_word, const uint64_t *words, size_t n);

#endif
