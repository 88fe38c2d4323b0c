/* Admission state in Redis: the Lua scripts that decide atomically, and their C wrappers.
 * Each script is the common prelude (entry codec, pruning, limits) plus its own body; the C
 * side runs it by its SHA-1 (EVALSHA) and sends the text only after NOSCRIPT, so a busy
 * instance ships each script once per Redis restart. Over 500 lines: about half is the Lua
 * text of the four scripts, kept beside the C that parses their replies. */
#include "plays.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAYS_KEY_MAX (16 + HB_ID_MAX + 2)

/* Entries are "since|last_seen|group|media"; ids never contain '|'. Lists are sorted oldest
 * first (since, then device id) so "the oldest" is the same on every instance. */
#define PRELUDE                                                                                    \
    "local function clock(arg)\n"                                                                  \
    "  local n = tonumber(arg)\n"                                                                  \
    "  if n and n > 0 then return n end\n"                                                         \
    "  local t = redis.call('TIME')\n"                                                             \
    "  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"                         \
    "end\n"                                                                                        \
    "local function encode(e) return e.s .. '|' .. e.l .. '|' .. e.g .. '|' .. e.m end\n"          \
    "local function older(a, b)\n"                                                                 \
    "  if a.s ~= b.s then return a.s < b.s end\n"                                                  \
    "  return a.d < b.d\n"                                                                         \
    "end\n"                                                                                        \
    "local function load(key, now, grace)\n"                                                       \
    "  local flat = redis.call('HGETALL', key)\n"                                                  \
    "  local list, stale = {}, {}\n"                                                               \
    "  for i = 1, #flat, 2 do\n"                                                                   \
    "    local s, l, g, m = string.match(flat[i + 1], '^(%d+)|(%d+)|([^|]*)|(.*)$')\n"             \
    "    if s == nil or tonumber(l) < now - grace then stale[#stale + 1] = flat[i]\n"              \
    "    else list[#list + 1] = {d = flat[i], s = tonumber(s), l = tonumber(l), g = g, m = m}\n"   \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end\n"                            \
    "  table.sort(list, older)\n"                                                                  \
    "  return list\n"                                                                              \
    "end\n"                                                                                        \
    "local function limits(key, devices, policy)\n"                                                \
    "  local lim = {devices = tonumber(devices), policy = policy, groups = {}, custom = 0}\n"      \
    "  local flat = redis.call('HGETALL', key)\n"                                                  \
    "  for i = 1, #flat, 2 do\n"                                                                   \
    "    local f, v = flat[i], flat[i + 1]\n"                                                      \
    "    if f == 'devices' then lim.devices = tonumber(v); lim.custom = 1\n"                       \
    "    elseif f == 'policy' then lim.policy = v\n"                                               \
    "    elseif string.sub(f, 1, 2) == 'g:' then lim.groups[string.sub(f, 3)] = tonumber(v)\n"     \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return lim\n"                                                                               \
    "end\n"                                                                                        \
    "local function count(list, g)\n"                                                              \
    "  local n = 0\n"                                                                              \
    "  for _, e in ipairs(list) do if g == nil or e.g == g then n = n + 1 end end\n"               \
    "  return n\n"                                                                                 \
    "end\n"                                                                                        \
    "local function room(list, lim, g)\n"                                                          \
    "  local gl = g ~= '' and lim.groups[g] or nil\n"                                              \
    "  if gl and count(list, g) >= gl then return 'group_limit' end\n"                             \
    "  if count(list, nil) >= lim.devices then return 'account_limit' end\n"                       \
    "  return nil\n"                                                                               \
    "end\n"                                                                                        \
    "local function reply(list)\n"                                                                 \
    "  local out = {}\n"                                                                           \
    "  for i, e in ipairs(list) do out[i] = {e.d, e.s, e.l, e.g, e.m} end\n"                       \
    "  return out\n"                                                                               \
    "end\n"                                                                                        \
    "local function save(key, list, grace)\n"                                                      \
    "  local flat = {}\n"                                                                          \
    "  for _, e in ipairs(list) do\n"                                                              \
    "    if e.dirty then flat[#flat + 1] = e.d; flat[#flat + 1] = encode(e) end\n"                 \
    "  end\n"                                                                                      \
    "  if #flat > 0 then redis.call('HSET', key, unpack(flat)) end\n"                              \
    "  if #list > 0 then redis.call('PEXPIRE', key, 2 * grace) end\n"                              \
    "end\n"

/* KEYS: plays, limits. ARGV: device, group, media, now, grace, default limit, default policy.
 * Returns {decision, limit, now, active, evicted, again}. */
static const char admit_lua[] =
    PRELUDE "local d, g, m = ARGV[1], ARGV[2], ARGV[3]\n"
            "local now, grace = clock(ARGV[4]), tonumber(ARGV[5])\n"
            "local list = load(KEYS[1], now, grace)\n"
            "local lim = limits(KEYS[2], ARGV[6], ARGV[7])\n"
            "for _, e in ipairs(list) do\n"
            "  if e.d == d then\n"
            "    e.l = now; e.dirty = true\n"
            "    if m ~= '' then e.m = m end\n"
            "    save(KEYS[1], list, grace)\n"
            "    return {'ok', lim.devices, now, reply(list), {}, 1}\n"
            "  end\n"
            "end\n"
            "local kept, evicted = {}, {}\n"
            "for i, e in ipairs(list) do kept[i] = e end\n"
            "local why = room(kept, lim, g)\n"
            "while why and lim.policy == 'evict_oldest' do\n"
            "  local victim = nil\n"
            "  for i, e in ipairs(kept) do\n"
            "    if why == 'account_limit' or e.g == g then victim = i; break end\n"
            "  end\n"
            "  if victim == nil then break end\n"
            "  evicted[#evicted + 1] = kept[victim].d\n"
            "  table.remove(kept, victim)\n"
            "  why = room(kept, lim, g)\n"
            "end\n"
            "if why then return {why, lim.devices, now, reply(list), {}, 0} end\n"
            "if #evicted > 0 then redis.call('HDEL', KEYS[1], unpack(evicted)) end\n"
            "kept[#kept + 1] = {d = d, s = now, l = now, g = g, m = m, dirty = true}\n"
            "save(KEYS[1], kept, grace)\n"
            "return {'ok', lim.devices, now, reply(kept), evicted, 0}\n";

/* KEYS: plays, limits. ARGV: now, grace, default limit, default policy.
 * Returns {now, active, devices, policy, {group, limit, ...}, custom}. */
static const char get_lua[] = PRELUDE
    "local now, grace = clock(ARGV[1]), tonumber(ARGV[2])\n"
    "local list = load(KEYS[1], now, grace)\n"
    "local lim = limits(KEYS[2], ARGV[3], ARGV[4])\n"
    "local groups = {}\n"
    "for g, n in pairs(lim.groups) do groups[#groups + 1] = g; groups[#groups + 1] = n end\n"
    "return {now, reply(list), lim.devices, lim.policy, groups, lim.custom}\n";

/* KEYS: limits. ARGV: devices, policy, then group, limit pairs. */
static const char set_limits_lua[] =
    "redis.call('DEL', KEYS[1])\n"
    "local flat = {'devices', ARGV[1], 'policy', ARGV[2]}\n"
    "for i = 3, #ARGV, 2 do flat[#flat + 1] = 'g:' .. ARGV[i]; flat[#flat + 1] = ARGV[i + 1] end\n"
    "redis.call('HSET', KEYS[1], unpack(flat))\n"
    "return 'OK'\n";

/* KEYS: plays, limits, ingest. ARGV: now, grace, default limit, default policy, then 5 per
 * report: device, stopped (1/0), start ms (0: unknown), group, media.
 * Returns {released, admitted, {device, reason, ...}, refreshed}. The ingest hash marks the
 * devices admitted here rather than by an admission: when one of them started after a pending
 * device, it gives way (healing after a loss of data, whatever order heartbeats come in). */
static const char touch_head[] = PRELUDE
    "local now, grace = clock(ARGV[1]), tonumber(ARGV[2])\n"
    "local list = load(KEYS[1], now, grace)\n"
    "local lim = limits(KEYS[2], ARGV[3], ARGV[4])\n"
    "local ingest, flat = {}, redis.call('HGETALL', KEYS[3])\n"
    "for i = 1, #flat, 2 do ingest[flat[i]] = true end\n"
    "local last, order = {}, {}\n"
    "for i = 5, #ARGV, 5 do\n"
    "  if last[ARGV[i]] == nil then order[#order + 1] = ARGV[i] end\n"
    "  local s = tonumber(ARGV[i + 2])\n"
    "  if s <= 0 or s > now then s = now end\n"
    "  last[ARGV[i]] = {d = ARGV[i], stopped = ARGV[i + 1] == '1', s = s, g = ARGV[i + 3],\n"
    "                   m = ARGV[i + 4]}\n"
    "end\n"
    "local kept, released, pending, refreshed = {}, {}, {}, 0\n"
    "for _, e in ipairs(list) do\n"
    "  local r = last[e.d]\n"
    "  if r and r.stopped then released[#released + 1] = e.d\n"
    "  else\n"
    "    if r then e.l = now; e.dirty = true; refreshed = refreshed + 1; last[e.d] = nil end\n"
    "    kept[#kept + 1] = e\n"
    "  end\n"
    "end\n"
    "for _, d in ipairs(order) do\n"
    "  local r = last[d]\n"
    "  if r and not r.stopped then pending[#pending + 1] = r end\n"
    "end\n"
    "table.sort(pending, older)\n";
/* (Two literals: C11 compilers need not take one longer than 4095 bytes.) */
static const char touch_tail[] =
    "local function give_way(r, why)\n"
    "  local victim = nil\n"
    "  for i, e in ipairs(kept) do\n"
    "    if ingest[e.d] and older(r, e) and (why == 'account_limit' or e.g == r.g) and\n"
    "       (victim == nil or older(kept[victim], e)) then victim = i end\n"
    "  end\n"
    "  if victim == nil then return nil end\n"
    "  local v = table.remove(kept, victim)\n"
    "  if room(kept, lim, r.g) == nil then return v end\n"
    "  table.insert(kept, victim, v)\n"
    "  return nil\n"
    "end\n"
    "local admitted, stop, gone = {}, {}, {}\n"
    "for _, r in ipairs(pending) do\n"
    "  local why = room(kept, lim, r.g)\n"
    "  local v = why and r.s < now and give_way(r, why)\n"
    "  if v then stop[#stop + 1] = v.d; stop[#stop + 1] = why; gone[#gone + 1] = v.d; why = nil "
    "end\n"
    "  if why then stop[#stop + 1] = r.d; stop[#stop + 1] = why\n"
    "  else\n"
    "    kept[#kept + 1] = {d = r.d, s = r.s, l = now, g = r.g, m = r.m, dirty = true}\n"
    "    admitted[#admitted + 1] = r.d\n"
    "    ingest[r.d] = true\n"
    "  end\n"
    "end\n"
    "for _, d in ipairs(released) do gone[#gone + 1] = d end\n"
    "if #gone > 0 then\n"
    "  redis.call('HDEL', KEYS[1], unpack(gone))\n"
    "  redis.call('HDEL', KEYS[3], unpack(gone))\n"
    "end\n"
    "if #admitted > 0 then\n"
    "  local marks = {}\n"
    "  for _, d in ipairs(admitted) do marks[#marks + 1] = d; marks[#marks + 1] = '1' end\n"
    "  redis.call('HSET', KEYS[3], unpack(marks))\n"
    "end\n"
    "save(KEYS[1], kept, grace)\n"
    "if #kept > 0 then redis.call('PEXPIRE', KEYS[3], 2 * grace) end\n"
    "return {released, admitted, stop, refreshed}\n";

struct script {
    const char *text;
    char sha[41];
};

static char touch_lua[sizeof(touch_head) + sizeof(touch_tail) - 1]; /* joined once */

static struct script scripts[] = {
    {admit_lua, ""}, {get_lua, ""}, {set_limits_lua, ""}, {touch_lua, ""}};
enum { SCRIPT_ADMIT, SCRIPT_GET, SCRIPT_SET_LIMITS, SCRIPT_TOUCH };

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *hb_play_policy_name(enum hb_play_policy p)
{
    return p == HB_POLICY_EVICT_OLDEST ? "evict_oldest" : "block_new";
}

bool hb_play_policy_parse(const char *name, enum hb_play_policy *out)
{
    if (strcmp(name, "block_new") == 0)
        *out = HB_POLICY_BLOCK_NEW;
    else if (strcmp(name, "evict_oldest") == 0)
        *out = HB_POLICY_EVICT_OLDEST;
    else
        return false;
    return true;
}

const char *hb_admit_decision_name(enum hb_admit_decision d)
{
    switch (d) {
    case HB_ADMIT_OK:
        return "ok";
    case HB_ADMIT_ACCOUNT_LIMIT:
        return "account_limit";
    case HB_ADMIT_GROUP_LIMIT:
        return "group_limit";
    }
    return "?";
}

const char *hb_plays_admit_script(void)
{
    return admit_lua;
}

static bool decision_parse(const char *s, enum hb_admit_decision *out)
{
    for (int d = HB_ADMIT_OK; d <= HB_ADMIT_GROUP_LIMIT; d++) {
        if (strcmp(s, hb_admit_decision_name((enum hb_admit_decision)d)) == 0) {
            *out = (enum hb_admit_decision)d;
            return true;
        }
    }
    return false;
}

static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

/* The SHA-1 of each script, as Redis names it (a digest, not a security use); a script whose
 * hash failed keeps an empty name. */
static void scripts_hash(void)
{
    memcpy(touch_lua, touch_head, sizeof(touch_head) - 1);
    memcpy(touch_lua + sizeof(touch_head) - 1, touch_tail, sizeof(touch_tail));
    for (size_t k = 0; k < sizeof(scripts) / sizeof(scripts[0]); k++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned mdlen = 0;
        const char *text = scripts[k].text;
        if (EVP_Digest(text, strlen(text), md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20)
            continue;
        for (unsigned i = 0; i < 20; i++)
            snprintf(scripts[k].sha + 2 * i, 3, "%02x", md[i]);
    }
}

/* Runs a script with argv[0..argc) after the command and SHA slots (argv[0], argv[1] are
 * filled here), routed by its first key argv[3] (every key of a script shares the account's
 * hash tag, so one node of a cluster holds them all). Returns the reply (caller frees) or NULL
 * with a reason; an error reply is turned into NULL too. */
static redisReply *run(struct rcluster *c, int id, int argc, const char **argv, size_t *lens,
                       char *err, size_t errlen)
{
    struct script *s = &scripts[id];
    pthread_once(&scripts_once, scripts_hash);
    if (s->sha[0] == '\0') {
        set_err(err, errlen, "cannot hash a script");
        return NULL;
    }
    argv[0] = "EVALSHA";
    argv[1] = s->sha;
    lens[0] = 7;
    lens[1] = 40;
    char why[256];
    redisReply *r = rcluster_command(c, argv[3], lens[3], argc, argv, lens, why, sizeof(why));
    if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argv[1] = s->text;
        lens[0] = 4;
        lens[1] = strlen(s->text);
        r = rcluster_command(c, argv[3], lens[3], argc, argv, lens, why, sizeof(why));
    }
    if (r == NULL) {
        set_err(err, errlen, "redis: %s", why);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(err, errlen, "redis: %.200s", r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

static bool keys_of(const char *account, char plays[PLAYS_KEY_MAX], char limits[PLAYS_KEY_MAX],
                    char *err, size_t errlen)
{
    if (account == NULL || !hb_id_valid(account, strlen(account))) {
        set_err(err, errlen, "invalid account id");
        return false;
    }
    snprintf(plays, PLAYS_KEY_MAX, "hb:plays:{%s}", account);
    snprintf(limits, PLAYS_KEY_MAX, "hb:limits:{%s}", account);
    return true;
}

/* The ingest marks of account (keys_of checked the id). */
static void ingest_key(const char *account, char key[PLAYS_KEY_MAX])
{
    snprintf(key, PLAYS_KEY_MAX, "hb:ingest:{%s}", account);
}

static bool optional_id(const char *s)
{
    return s == NULL || s[0] == '\0' || hb_id_valid(s, strlen(s));
}

static bool is_int(const redisReply *r)
{
    return r->type == REDIS_REPLY_INTEGER;
}

static bool copy_str(char *dst, size_t size, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING || r->len >= size)
        return false;
    memcpy(dst, r->str, r->len);
    dst[r->len] = '\0';
    return true;
}

/* Active list {{device, since, last_seen, group, media}, ...} into out. */
static bool parse_active(const redisReply *r, struct hb_admission *out)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    if (r->elements > 0) {
        out->active = calloc(r->elements, sizeof(*out->active));
        if (out->active == NULL)
            return false;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct hb_play *p = &out->active[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 5 ||
            !copy_str(p->device, sizeof(p->device), e->element[0]) || !is_int(e->element[1]) ||
            !is_int(e->element[2]) || !copy_str(p->group, sizeof(p->group), e->element[3]) ||
            !copy_str(p->media, sizeof(p->media), e->element[4]))
            return false;
        p->since_ms = e->element[1]->integer;
        p->last_seen_ms = e->element[2]->integer;
        out->n_active++;
    }
    return true;
}

static bool parse_evicted(const redisReply *r, struct hb_admission *out)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    if (r->elements > 0) {
        out->evicted = calloc(r->elements, sizeof(*out->evicted));
        if (out->evicted == NULL)
            return false;
    }
    for (size_t i = 0; i < r->elements; i++) {
        if (!copy_str(out->evicted[i], sizeof(out->evicted[i]), r->element[i]))
            return false;
        out->n_evicted++;
    }
    return true;
}

void hb_admission_finish(struct hb_admission *a)
{
    free(a->active);
    free(a->evicted);
    memset(a, 0, sizeof(*a));
}

int hb_plays_admit(struct rcluster *c, const struct hb_plays_config *cfg, const char *account,
                   const char *device, const char *group, const char *media, int64_t now_ms,
                   struct hb_admission *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    char plays[PLAYS_KEY_MAX], limits[PLAYS_KEY_MAX];
    if (!keys_of(account, plays, limits, err, errlen))
        return -1;
    if (device == NULL || !hb_id_valid(device, strlen(device)) || !optional_id(group) ||
        !optional_id(media)) {
        set_err(err, errlen, "invalid device, group or media id");
        return -1;
    }
    char now[24], grace[24], limit[24];
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(grace, sizeof(grace), "%" PRId64, cfg->grace_ms);
    snprintf(limit, sizeof(limit), "%ld", cfg->defaults.devices);
    const char *argv[] = {NULL,
                          NULL,
                          "2",
                          plays,
                          limits,
                          device,
                          group ? group : "",
                          media ? media : "",
                          now,
                          grace,
                          limit,
                          hb_play_policy_name(cfg->defaults.policy)};
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 2; i < sizeof(argv) / sizeof(argv[0]); i++)
        lens[i] = strlen(argv[i]);
    redisReply *r =
        run(c, SCRIPT_ADMIT, (int)(sizeof(argv) / sizeof(argv[0])), argv, lens, err, errlen);
    if (r == NULL)
        return -1;
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 6 &&
              r->element[0]->type == REDIS_REPLY_STRING &&
              decision_parse(r->element[0]->str, &out->decision) && is_int(r->element[1]) &&
              is_int(r->element[2]) && is_int(r->element[5]) && parse_active(r->element[3], out) &&
              parse_evicted(r->element[4], out);
    if (ok) {
        out->limit = (long)r->element[1]->integer;
        out->now_ms = r->element[2]->integer;
        out->again = r->element[5]->integer == 1;
    }
    freeReplyObject(r);
    if (!ok) {
        hb_admission_finish(out);
        set_err(err, errlen, "redis: unexpected reply to the admission script");
        return -1;
    }
    return 0;
}

int hb_plays_release(struct rcluster *c, const char *account, const char *device, char *err,
                     size_t errlen)
{
    char plays[PLAYS_KEY_MAX], limits[PLAYS_KEY_MAX];
    if (!keys_of(account, plays, limits, err, errlen))
        return -1;
    if (device == NULL || !hb_id_valid(device, strlen(device))) {
        set_err(err, errlen, "invalid device id");
        return -1;
    }
    const char *argv[] = {"HDEL", plays, device};
    char why[256];
    redisReply *r = rcluster_command(c, plays, strlen(plays), 3, argv, NULL, why, sizeof(why));
    if (r == NULL) {
        set_err(err, errlen, "redis: %s", why);
        return -1;
    }
    int rc = r->type == REDIS_REPLY_INTEGER ? (r->integer > 0 ? 1 : 0) : -1;
    if (rc < 0)
        set_err(err, errlen, "redis: %.200s",
                r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to HDEL");
    freeReplyObject(r);
    return rc;
}

static bool parse_groups(const redisReply *r, struct hb_limits *limits)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return false;
    for (size_t i = 0; i + 1 < r->elements && limits->n_groups < HB_PLAYS_GROUPS_MAX; i += 2) {
        struct hb_group_limit *g = &limits->groups[limits->n_groups];
        if (!copy_str(g->group, sizeof(g->group), r->element[i]) || !is_int(r->element[i + 1]))
            return false;
        g->devices = (long)r->element[i + 1]->integer;
        limits->n_groups++;
    }
    return true;
}

int hb_plays_get(struct rcluster *c, const struct hb_plays_config *cfg, const char *account,
                 int64_t now_ms, struct hb_admission *out, struct hb_limits *limits, bool *custom,
                 char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    memset(limits, 0, sizeof(*limits));
    char plays[PLAYS_KEY_MAX], limkey[PLAYS_KEY_MAX];
    if (!keys_of(account, plays, limkey, err, errlen))
        return -1;
    char now[24], grace[24], limit[24];
    snprintf(now, sizeof(now), "%" PRId64, now_ms);
    snprintf(grace, sizeof(grace), "%" PRId64, cfg->grace_ms);
    snprintf(limit, sizeof(limit), "%ld", cfg->defaults.devices);
    const char *argv[] = {NULL,  NULL,   "2",
                          plays, limkey, now,
                          grace, limit,  hb_play_policy_name(cfg->defaults.policy)};
    size_t lens[sizeof(argv) / sizeof(argv[0])];
    for (size_t i = 2; i < sizeof(argv) / sizeof(argv[0]); i++)
        lens[i] = strlen(argv[i]);
    redisReply *r =
        run(c, SCRIPT_GET, (int)(sizeof(argv) / sizeof(argv[0])), argv, lens, err, errlen);
    if (r == NULL)
        return -1;
    bool ok = r->type == REDIS_REPLY_ARRAY && r->elements == 6 && is_int(r->element[0]) &&
              parse_active(r->element[1], out) && is_int(r->element[2]) &&
              r->element[3]->type == REDIS_REPLY_STRING &&
              hb_play_policy_parse(r->element[3]->str, &limits->policy) &&
              parse_groups(r->element[4], limits) && is_int(r->element[5]);
    if (ok) {
        out->now_ms = r->element[0]->integer;
        limits->devices = out->limit = (long)r->element[2]->integer;
        *custom = r->element[5]->integer == 1;
    }
    freeReplyObject(r);
    if (!ok) {
        hb_admission_finish(out);
        set_err(err, errlen, "redis: unexpected reply to the read script");
        return -1;
    }
    return 0;
}

int hb_plays_set_limits(struct rcluster *c, const char *account, const struct hb_limits *limits,
                        char *err, size_t errlen)
{
    char plays[PLAYS_KEY_MAX], limkey[PLAYS_KEY_MAX];
    if (!keys_of(account, plays, limkey, err, errlen))
        return -1;
    if (limits->devices < 0 || limits->devices > HB_PLAYS_LIMIT_MAX ||
        limits->n_groups > HB_PLAYS_GROUPS_MAX) {
        set_err(err, errlen, "limits out of range");
        return -1;
    }
    enum { FIXED = 6 };
    const char *argv[FIXED + 2 * HB_PLAYS_GROUPS_MAX];
    size_t lens[FIXED + 2 * HB_PLAYS_GROUPS_MAX];
    char numbers[1 + HB_PLAYS_GROUPS_MAX][24];
    snprintf(numbers[0], sizeof(numbers[0]), "%ld", limits->devices);
    argv[2] = "1";
    argv[3] = limkey;
    argv[4] = numbers[0];
    argv[5] = hb_play_policy_name(limits->policy);
    int argc = FIXED;
    for (size_t i = 0; i < limits->n_groups; i++) {
        const struct hb_group_limit *g = &limits->groups[i];
        if (!hb_id_valid(g->group, strlen(g->group)) || g->devices < 0 ||
            g->devices > HB_PLAYS_LIMIT_MAX) {
            set_err(err, errlen, "group limit out of range");
            return -1;
        }
        snprintf(numbers[1 + i], sizeof(numbers[1 + i]), "%ld", g->devices);
        argv[argc++] = g->group;
        argv[argc++] = numbers[1 + i];
    }
    for (int i = 2; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r = run(c, SCRIPT_SET_LIMITS, argc, argv, lens, err, errlen);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

void hb_touch_result_finish(struct hb_touch_result *r)
{
    free(r->released);
    free(r->admitted);
    free(r->stop);
    free(r->stop_reason);
    free(r->displaced);
    memset(r, 0, sizeof(*r));
}

/* The report whose device is name (the reply names only devices that were sent). */
static const char *borrowed(const struct hb_touch_report *reports, size_t n, const redisReply *r)
{
    if (r->type != REDIS_REPLY_STRING)
        return NULL;
    for (size_t i = n; i-- > 0;)
        if (strlen(reports[i].device) == r->len && memcmp(reports[i].device, r->str, r->len) == 0)
            return reports[i].device;
    return NULL;
}

static bool parse_names(const redisReply *r, const struct hb_touch_report *reports, size_t n,
                        const char ***out, size_t *count)
{
    if (r->type != REDIS_REPLY_ARRAY)
        return false;
    *out = calloc(r->elements ? r->elements : 1, sizeof(**out));
    if (*out == NULL)
        return false;
    for (size_t i = 0; i < r->elements; i++) {
        if (((*out)[i] = borrowed(reports, n, r->element[i])) == NULL)
            return false;
        (*count)++;
    }
    return true;
}

static bool parse_stops(const redisReply *r, const struct hb_touch_report *reports, size_t n,
                        struct hb_touch_result *out)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return false;
    size_t k = r->elements / 2;
    out->stop = calloc(k ? k : 1, sizeof(*out->stop));
    out->stop_reason = calloc(k ? k : 1, sizeof(*out->stop_reason));
    out->displaced = calloc(k ? k : 1, sizeof(*out->displaced));
    if (out->stop == NULL || out->stop_reason == NULL || out->displaced == NULL)
        return false;
    for (size_t i = 0; i < k; i++) {
        const redisReply *why = r->element[2 * i + 1];
        out->stop[i] = borrowed(reports, n, r->element[2 * i]);
        if (out->stop[i] == NULL) {
            /* Not reported in this call: a device that gave way (healing). */
            if (!copy_str(out->displaced[out->n_displaced], HB_ID_MAX + 1, r->element[2 * i]))
                return false;
            out->stop[i] = out->displaced[out->n_displaced++];
        }
        if (why->type != REDIS_REPLY_STRING || !decision_parse(why->str, &out->stop_reason[i]))
            return false;
        out->n_stop++;
    }
    return true;
}

/* The arguments of one touch script call; argv[0..2) (command and SHA) are filled by the
 * sender. Owned arrays: touch_args_finish frees them. */
struct touch_args {
    const char **argv;
    size_t *lens;
    char (*starts)[24];
    size_t argc;
    char plays[PLAYS_KEY_MAX], limkey[PLAYS_KEY_MAX], ingest[PLAYS_KEY_MAX];
    char now[24], grace[24], limit[24];
};

static void touch_args_finish(struct touch_args *t)
{
    free(t->starts);
    free(t->lens);
    free(t->argv);
}

/* Fills t for the touch of account with reports[0..n). 0, or -1 with a reason (t is then
 * finished already). */
static int touch_args_init(struct touch_args *t, const struct hb_plays_config *cfg,
                           const char *account, const struct hb_touch_report *reports, size_t n,
                           int64_t now_ms, char *err, size_t errlen)
{
    memset(t, 0, sizeof(*t));
    if (!keys_of(account, t->plays, t->limkey, err, errlen))
        return -1;
    if (n > HB_PLAYS_TOUCH_MAX) {
        set_err(err, errlen, "more than %d reports", HB_PLAYS_TOUCH_MAX);
        return -1;
    }
    ingest_key(account, t->ingest);
    enum { FIXED = 10, PER = 5 };
    t->argc = FIXED + PER * n;
    t->argv = calloc(t->argc, sizeof(*t->argv));
    t->lens = calloc(t->argc, sizeof(*t->lens));
    t->starts = calloc(n ? n : 1, sizeof(*t->starts));
    if (t->argv == NULL || t->lens == NULL || t->starts == NULL) {
        touch_args_finish(t);
        set_err(err, errlen, "out of memory");
        return -1;
    }
    snprintf(t->now, sizeof(t->now), "%" PRId64, now_ms);
    snprintf(t->grace, sizeof(t->grace), "%" PRId64, cfg->grace_ms);
    snprintf(t->limit, sizeof(t->limit), "%ld", cfg->defaults.devices);
    t->argv[0] = "EVALSHA";
    t->argv[1] = "";
    t->argv[2] = "3";
    t->argv[3] = t->plays;
    t->argv[4] = t->limkey;
    t->argv[5] = t->ingest;
    t->argv[6] = t->now;
    t->argv[7] = t->grace;
    t->argv[8] = t->limit;
    t->argv[9] = hb_play_policy_name(cfg->defaults.policy);
    for (size_t i = 0; i < n; i++) {
        const struct hb_touch_report *r = &reports[i];
        if (r->device == NULL || !hb_id_valid(r->device, strlen(r->device)) ||
            !optional_id(r->group) || !optional_id(r->media)) {
            touch_args_finish(t);
            set_err(err, errlen, "invalid device, group or media id in report %zu", i);
            return -1;
        }
        snprintf(t->starts[i], sizeof(t->starts[i]), "%" PRId64, r->start_ms > 0 ? r->start_ms : 0);
        const char **a = t->argv + FIXED + PER * i;
        a[0] = r->device;
        a[1] = r->stopped ? "1" : "0";
        a[2] = t->starts[i];
        a[3] = r->group ? r->group : "";
        a[4] = r->media ? r->media : "";
    }
    for (size_t i = 0; i < t->argc; i++)
        t->lens[i] = strlen(t->argv[i]);
    return 0;
}

/* Reads a touch script's reply into out. 0, or -1 with a reason. */
static int touch_parse(const redisReply *r, const struct hb_touch_report *reports, size_t n,
                       struct hb_touch_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (r->type == REDIS_REPLY_ERROR) {
        set_err(err, errlen, "redis: %.200s", r->str);
        return -1;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        !parse_names(r->element[0], reports, n, &out->released, &out->n_released) ||
        !parse_names(r->element[1], reports, n, &out->admitted, &out->n_admitted) ||
        !parse_stops(r->element[2], reports, n, out) || !is_int(r->element[3])) {
        hb_touch_result_finish(out);
        set_err(err, errlen, "redis: unexpected reply to the touch script");
        return -1;
    }
    out->n_refreshed = (size_t)r->element[3]->integer;
    return 0;
}

const char *hb_plays_touch_script(void)
{
    pthread_once(&scripts_once, scripts_hash);
    return scripts[SCRIPT_TOUCH].text;
}

long hb_plays_touch_append(struct rcluster *c, const struct hb_plays_config *cfg,
                           const char *account, const struct hb_touch_report *reports, size_t n,
                           int64_t now_ms, char *err, size_t errlen)
{
    pthread_once(&scripts_once, scripts_hash);
    const char *sha = scripts[SCRIPT_TOUCH].sha;
    if (sha[0] == '\0') {
        set_err(err, errlen, "cannot hash a script");
        return -1;
    }
    struct touch_args t;
    if (touch_args_init(&t, cfg, account, reports, n, now_ms, err, errlen) != 0)
        return -1;
    t.argv[1] = sha;
    t.lens[1] = 40;
    long index = rcluster_append(c, t.plays, strlen(t.plays), (int)t.argc, t.argv, t.lens);
    touch_args_finish(&t);
    if (index < 0)
        set_err(err, errlen, "out of memory");
    return index;
}

int hb_plays_touch_read(struct rcluster *c, long index, const struct hb_touch_report *reports,
                        size_t n, struct hb_touch_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    const redisReply *r = rcluster_reply(c, (size_t)index);
    if (r == NULL) {
        set_err(err, errlen, "redis: not delivered");
        return -2;
    }
    return touch_parse(r, reports, n, out, err, errlen);
}

int hb_plays_touch(struct rcluster *c, const struct hb_plays_config *cfg, const char *account,
                   const struct hb_touch_report *reports, size_t n, int64_t now_ms,
                   struct hb_touch_result *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    struct touch_args t;
    if (touch_args_init(&t, cfg, account, reports, n, now_ms, err, errlen) != 0)
        return -1;
    redisReply *r = run(c, SCRIPT_TOUCH, (int)t.argc, t.argv, t.lens, err, errlen);
    touch_args_finish(&t);
    if (r == NULL)
        return -1;
    int rc = touch_parse(r, reports, n, out, err, errlen);
    freeReplyObject(r);
    return rc;
}
