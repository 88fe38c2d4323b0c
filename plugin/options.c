/* Option parsing of the broker plugin. Keys are numbered slots (key_file, key_file_2, ...) so
 * an operator adds the next key for a rotation overlap and removes the old one afterwards. */
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "ids.h"
#include "log.h"
#include "options.h"

struct key_slot {
    const char *file;
    const char *kid;
};

/* "key_file" -> slot 0, "key_file_N" -> slot N-1 for N in 2..HB_KEYRING_MAX; -1 when name is
 * not stem or stem_N, -2 when N is out of range. */
static int slot_of(const char *name, const char *stem)
{
    size_t n = strlen(stem);
    if (strncmp(name, stem, n) != 0)
        return -1;
    if (name[n] == '\0')
        return 0;
    if (name[n] != '_')
        return -1;
    long v;
    if (!hb_parse_long(name + n + 1, 2, HB_KEYRING_MAX, &v))
        return -2;
    return (int)v - 1;
}

static bool set_once(const char **slot, const char *value, const char *key, char *err,
                     size_t errlen)
{
    if (*slot != NULL) {
        hb_set_err(err, errlen, "plugin_opt_%s is given twice", key);
        return false;
    }
    *slot = value;
    return true;
}

/* The options that are single values. */
struct scalars {
    const char *prefix, *max_bytes, *revoked_file;
};

static bool parse_one(struct key_slot *slots, struct scalars *sc, const struct hb_auth_option *o,
                      char *err, size_t errlen)
{
    const char *key = o->key ? o->key : "";
    const char *value = o->value ? o->value : "";
    int file_slot = slot_of(key, "key_file");
    int id_slot = slot_of(key, "key_id");
    if (file_slot == -2 || id_slot == -2) {
        hb_set_err(err, errlen, "plugin_opt_%s: keys are numbered 2..%d after the first", key,
                   HB_KEYRING_MAX);
        return false;
    }
    if (file_slot >= 0) {
        if (value[0] == '\0') {
            hb_set_err(err, errlen, "plugin_opt_%s needs a file path", key);
            return false;
        }
        return set_once(&slots[file_slot].file, value, key, err, errlen);
    }
    if (id_slot >= 0)
        return set_once(&slots[id_slot].kid, value, key, err, errlen);
    if (strcmp(key, "topic_prefix") == 0)
        return set_once(&sc->prefix, value, key, err, errlen);
    if (strcmp(key, "max_token_bytes") == 0)
        return set_once(&sc->max_bytes, value, key, err, errlen);
    if (strcmp(key, "revoked_file") == 0) {
        if (value[0] == '\0') {
            hb_set_err(err, errlen, "plugin_opt_revoked_file needs a file path");
            return false;
        }
        return set_once(&sc->revoked_file, value, key, err, errlen);
    }
    hb_set_err(err, errlen,
               "unknown option plugin_opt_%s (known: key_file[_N], key_id[_N], topic_prefix, "
               "max_token_bytes, revoked_file)",
               key);
    return false;
}

static bool load_keys(struct hb_auth_options *out, const struct key_slot *slots, char *err,
                      size_t errlen)
{
    for (int i = 0; i < HB_KEYRING_MAX; i++) {
        char name[16];
        if (i == 0)
            snprintf(name, sizeof(name), "key_file");
        else
            snprintf(name, sizeof(name), "key_file_%d", i + 1);
        if (slots[i].file == NULL) {
            if (slots[i].kid != NULL) {
                hb_set_err(err, errlen, "plugin_opt_key_id%s is set but plugin_opt_%s is not",
                           name + strlen("key_file"), name);
                return false;
            }
            continue;
        }
        char kid[HB_ID_MAX + 1];
        if (slots[i].kid != NULL) {
            if (!hb_id_valid(slots[i].kid, strlen(slots[i].kid))) {
                hb_set_err(err, errlen,
                           "plugin_opt_key_id%s '%.80s' is not 1-64 bytes of A-Z a-z 0-9 . _ - :",
                           name + strlen("key_file"), slots[i].kid);
                return false;
            }
            snprintf(kid, sizeof(kid), "%s", slots[i].kid);
        } else if (!hb_key_default_kid(slots[i].file, kid, sizeof(kid))) {
            hb_set_err(err, errlen,
                       "plugin_opt_%s: the file name of '%.200s' is no valid kid; set "
                       "plugin_opt_key_id%s",
                       name, slots[i].file, name + strlen("key_file"));
            return false;
        }
        struct hb_key key;
        char why[256] = "";
        if (!hb_key_load(&key, kid, slots[i].file, why, sizeof(why))) {
            hb_set_err(err, errlen, "plugin_opt_%s: cannot load key '%s' from %.200s: %s", name,
                       kid, slots[i].file, why);
            return false;
        }
        if (!hb_keyring_add(&out->ring, &key, why, sizeof(why))) {
            hb_key_finish(&key);
            hb_set_err(err, errlen, "plugin_opt_%s: key '%s': %s", name, kid, why);
            return false;
        }
    }
    if (out->ring.n == 0) {
        hb_set_err(err, errlen, "no key configured: set plugin_opt_key_file PATH");
        return false;
    }
    return true;
}

bool hb_auth_options_parse(struct hb_auth_options *out, const struct hb_auth_option *opts, size_t n,
                           char *err, size_t errlen)
{
    struct key_slot slots[HB_KEYRING_MAX];
    struct scalars sc = {NULL, NULL, NULL};
    memset(out, 0, sizeof(*out));
    memset(slots, 0, sizeof(slots));

    for (size_t i = 0; i < n; i++) {
        if (!parse_one(slots, &sc, &opts[i], err, errlen))
            return false;
    }
    const char *prefix = sc.prefix, *max_bytes = sc.max_bytes;

    if (prefix == NULL)
        prefix = HB_DEFAULT_TOPIC_PREFIX;
    if (!hb_topic_prefix_valid(prefix)) {
        hb_set_err(err, errlen,
                   "plugin_opt_topic_prefix '%.80s': 1..64 bytes of A-Z a-z 0-9 . _ - : and '/' "
                   "between levels",
                   prefix);
        return false;
    }
    snprintf(out->topic_prefix, sizeof(out->topic_prefix), "%s", prefix);

    long max = HB_TOKEN_MAX;
    if (max_bytes != NULL && !hb_parse_long(max_bytes, 64, HB_TOKEN_MAX, &max)) {
        hb_set_err(err, errlen, "plugin_opt_max_token_bytes '%.40s': a whole number in 64..%d",
                   max_bytes, HB_TOKEN_MAX);
        return false;
    }
    out->max_token_bytes = (size_t)max;

    if (!load_keys(out, slots, err, errlen)) {
        hb_keyring_finish(&out->ring);
        return false;
    }
    if (!hb_revoked_init(&out->revoked, sc.revoked_file)) {
        hb_set_err(err, errlen, "out of memory");
        hb_auth_options_finish(out);
        return false;
    }
    char why[512];
    if (hb_revoked_refresh(&out->revoked, why, sizeof(why)) < 0) {
        hb_set_err(err, errlen, "plugin_opt_revoked_file: %s", why);
        hb_auth_options_finish(out);
        return false;
    }
    return true;
}

void hb_auth_options_finish(struct hb_auth_options *o)
{
    hb_keyring_finish(&o->ring);
    hb_revoked_finish(&o->revoked);
    memset(o, 0, sizeof(*o));
}
