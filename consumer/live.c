/* Live viewer counts on the writer thread. Each device is in a hash (by account/device) and in a
 * list ordered by when it was last seen, so a heartbeat costs one lookup and a move to the tail,
 * and expiry and eviction pop from the head; each count changes only when a device joins,
 * leaves or switches media, and a changed topic waits on a dirty list for its next publish. */
#include "live.h"

#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <utlist.h>

#define LIVE_SWEEP_MS 100
#define LIVE_PUBLISH_MS 1000

struct live_topic {
    char name[HB_ID_MAX + 1];
    bool is_media;
    bool is_dirty;
    long count;     /* devices counted now */
    long published; /* the value last handed to the broker, -1 before the first */
    int64_t published_ms;
    struct live_topic *prev, *next; /* the dirty list */
    UT_hash_handle hh;
};

struct live_device {
    char key[2 * HB_ID_MAX + 2];        /* account/device */
    struct live_topic *account, *media; /* media may be NULL */
    int64_t seen_ms;
    struct live_device *prev, *next; /* the lru list */
    UT_hash_handle hh;
};

bool live_init(struct live *l, const struct live_config *cfg)
{
    memset(l, 0, sizeof(*l));
    if (cfg->prefix == NULL || strlen(cfg->prefix) >= sizeof(l->prefix)) {
        HB_ERROR("live: prefix too long");
        return false;
    }
    snprintf(l->prefix, sizeof(l->prefix), "%s", cfg->prefix);
    l->window_ms = cfg->window_ms;
    l->max_devices = cfg->max_devices > 0 ? cfg->max_devices : 1;
    l->control = cfg->control;
    if (l->control == NULL) {
        char err[256];
        l->control = hb_control_create(&cfg->control_cfg, err, sizeof(err));
        if (l->control == NULL) {
            HB_ERROR("live: count publisher: %s", err);
            return false;
        }
        l->own_control = true;
    }
    return true;
}

static void topic_free(struct live *l, struct live_topic *t)
{
    if (t->is_dirty)
        DL_DELETE(l->dirty, t);
    if (t->is_media)
        HASH_DEL(l->media, t);
    else
        HASH_DEL(l->accounts, t);
    free(t);
    atomic_fetch_sub(&l->n_topics, 1);
}

void live_finish(struct live *l)
{
    struct live_device *d, *dtmp;
    HASH_ITER(hh, l->devices, d, dtmp)
    {
        HASH_DEL(l->devices, d);
        free(d);
    }
    struct live_topic *t, *ttmp;
    HASH_ITER(hh, l->media, t, ttmp)
    {
        HASH_DEL(l->media, t);
        free(t);
    }
    HASH_ITER(hh, l->accounts, t, ttmp)
    {
        HASH_DEL(l->accounts, t);
        free(t);
    }
    if (l->own_control)
        hb_control_destroy(l->control);
    memset(l, 0, sizeof(*l));
}

static void mark_dirty(struct live *l, struct live_topic *t)
{
    if (!t->is_dirty) {
        DL_APPEND(l->dirty, t);
        t->is_dirty = true;
    }
}

/* The topic named name (one more device counted in it), created when new; NULL when out of
 * memory (the device then does not count there). */
static struct live_topic *topic_join(struct live *l, bool is_media, const char *name)
{
    struct live_topic **table = is_media ? &l->media : &l->accounts;
    struct live_topic *t = NULL;
    HASH_FIND_STR(*table, name, t);
    if (t == NULL) {
        t = calloc(1, sizeof(*t));
        if (t == NULL) {
            HB_ERROR("live: out of memory");
            return NULL;
        }
        snprintf(t->name, sizeof(t->name), "%s", name);
        t->is_media = is_media;
        t->published = -1;
        HASH_ADD_STR(*table, name, t);
        atomic_fetch_add(&l->n_topics, 1);
    }
    t->count++;
    mark_dirty(l, t);
    return t;
}

/* One device fewer in t (NULL is a no-op); the topic stays until its 0 is published. */
static void topic_leave(struct live *l, struct live_topic *t)
{
    if (t == NULL)
        return;
    t->count--;
    mark_dirty(l, t);
}

static void device_remove(struct live *l, struct live_device *d)
{
    topic_leave(l, d->account);
    topic_leave(l, d->media);
    HASH_DEL(l->devices, d);
    DL_DELETE(l->lru, d);
    free(d);
    atomic_fetch_sub(&l->n_devices, 1);
}

void live_note(struct live *l, const struct queue_entry *e)
{
    char key[sizeof(((struct live_device *)0)->key)];
    int keylen = snprintf(key, sizeof(key), "%s/%s", e->account, e->device);
    struct live_device *d = NULL;
    HASH_FIND(hh, l->devices, key, (size_t)keylen, d);
    if (e->stopped) {
        if (d != NULL)
            device_remove(l, d);
        return;
    }
    if (d == NULL) {
        if (atomic_load(&l->n_devices) >= l->max_devices && l->lru != NULL) {
            device_remove(l, l->lru);
            atomic_fetch_add(&l->evictions, 1);
        }
        d = calloc(1, sizeof(*d));
        if (d == NULL || (d->account = topic_join(l, false, e->account)) == NULL) {
            HB_ERROR("live: out of memory; a device is not counted");
            free(d);
            return;
        }
        memcpy(d->key, key, (size_t)keylen + 1);
        HASH_ADD(hh, l->devices, key, (size_t)keylen, d);
        atomic_fetch_add(&l->n_devices, 1);
    } else {
        DL_DELETE(l->lru, d);
    }
    DL_APPEND(l->lru, d);
    d->seen_ms = e->received_ms;
    const char *was = d->media != NULL ? d->media->name : "";
    if (strcmp(was, e->media) != 0) {
        topic_leave(l, d->media);
        d->media = e->media[0] != '\0' ? topic_join(l, true, e->media) : NULL;
    }
}

/* Publishes t's count now; true when handed to the broker. */
static bool publish(struct live *l, struct live_topic *t)
{
    char topic[sizeof(l->prefix) + HB_ID_MAX + 16], payload[HB_ID_MAX + 64];
    const char *kind = t->is_media ? "media" : "account";
    snprintf(topic, sizeof(topic), "%s/%s/%s", l->prefix, kind, t->name);
    int len = snprintf(payload, sizeof(payload), "{\"%s\":\"%s\",\"watching\":%ld}", kind, t->name,
                       t->count);
    return hb_control_publish(l->control, topic, payload, (size_t)len, true);
}

/* Every count above 0 waits to be published again, at once. */
static void republish_all(struct live *l)
{
    struct live_topic *tables[2] = {l->accounts, l->media};
    size_t n = 0;
    for (int i = 0; i < 2; i++) {
        for (struct live_topic *t = tables[i]; t != NULL; t = t->hh.next) {
            if (t->count > 0) {
                t->published = -1;
                t->published_ms = 0;
                mark_dirty(l, t);
                n++;
            }
        }
    }
    if (n > 0)
        HB_INFO("live: connected again; publishing %zu counts again", n);
}

void live_tick(struct live *l, int64_t now_ms)
{
    if (now_ms < l->next_sweep_ms)
        return;
    l->next_sweep_ms = now_ms + LIVE_SWEEP_MS;
    while (l->lru != NULL && now_ms - l->lru->seen_ms > l->window_ms)
        device_remove(l, l->lru);

    bool connected = hb_control_connected(l->control);
    unsigned long connects = hb_control_connects(l->control);
    if (connected && connects != l->connects) {
        l->connects = connects;
        republish_all(l);
    }
    struct live_topic *t, *tmp;
    DL_FOREACH_SAFE(l->dirty, t, tmp)
    {
        if (t->count != t->published) {
            if (now_ms - t->published_ms < LIVE_PUBLISH_MS)
                continue; /* published less than a second ago: the change waits */
            if (!connected && t->count == 0) {
                atomic_fetch_add(&l->dropped, 1); /* else zeros pile up while the broker is down */
                topic_free(l, t);
                continue;
            }
            if (!connected)
                continue;
            if (!publish(l, t)) {
                atomic_fetch_add(&l->publish_failures, 1);
                continue;
            }
            atomic_fetch_add(&l->publishes, 1);
            t->published = t->count;
            t->published_ms = now_ms;
        }
        DL_DELETE(l->dirty, t);
        t->is_dirty = false;
        if (t->count == 0)
            topic_free(l, t);
    }
}
