/* The plays invariant checker. The events are replayed in time order against a table of the
 * devices the truth has seen: "playing" is what the truth says (admitted, not yet ended),
 * while "active for the service" also keeps a device for a grace period after it vanished and
 * a short lag after it released, since the service can only learn of those later. */
#include "plays_verify.h"

#include "ids.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

enum pv_kind { PV_ADMITTED, PV_REFUSED, PV_STOPPED, PV_RELEASED, PV_VANISHED };

static const char *const pv_names[] = {"admitted", "refused", "stopped", "released", "vanished"};

struct pv_event {
    int64_t t;
    enum pv_kind kind;
    size_t line;
    long limit;
    char account[HB_ID_MAX + 1], device[HB_ID_MAX + 1];
    cJSON *ids; /* admitted: evicted; refused: active */
};

struct pv_device {
    const char *account, *device;              /* borrowed from the events */
    int64_t admitted_at, ended_at, evicted_at; /* -1: not */
    enum pv_kind end;
    bool flagged; /* a late stop after eviction was reported */
};

struct pv {
    const struct plays_verify_config *cfg;
    FILE *out;
    struct plays_verify_report *rep;
    struct pv_device *dev;
    size_t n_dev, cap_dev;
};

static void violation(struct pv *v, const struct pv_event *e, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void violation(struct pv *v, const struct pv_event *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(v->out, "plays: line %zu, t=%" PRId64 ", %s/%s: ", e->line, e->t, e->account,
            e->device);
    vfprintf(v->out, fmt, ap);
    fputc('\n', v->out);
    va_end(ap);
    v->rep->violations++;
}

static bool copy_id(char *dst, const cJSON *s)
{
    if (!cJSON_IsString(s) || strlen(s->valuestring) > HB_ID_MAX ||
        !hb_id_valid(s->valuestring, strlen(s->valuestring)))
        return false;
    strcpy(dst, s->valuestring);
    return true;
}

/* One line into e; false when it is not a plays event. */
static bool parse_event(const char *line, struct pv_event *e)
{
    memset(e, 0, sizeof(*e));
    cJSON *j = cJSON_Parse(line);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "t");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(j, "event");
    const cJSON *limit = cJSON_GetObjectItemCaseSensitive(j, "limit");
    bool ok = cJSON_IsNumber(t) && cJSON_IsString(ev) &&
              copy_id(e->account, cJSON_GetObjectItemCaseSensitive(j, "account")) &&
              copy_id(e->device, cJSON_GetObjectItemCaseSensitive(j, "device"));
    size_t k = 0;
    while (ok && k < sizeof(pv_names) / sizeof(pv_names[0]) && strcmp(ev->valuestring, pv_names[k]))
        k++;
    ok = ok && k < sizeof(pv_names) / sizeof(pv_names[0]);
    if (ok) {
        e->t = (int64_t)t->valuedouble;
        e->kind = (enum pv_kind)k;
    }
    if (ok && (e->kind == PV_ADMITTED || e->kind == PV_REFUSED)) {
        cJSON *ids = cJSON_DetachItemFromObjectCaseSensitive(j, e->kind == PV_ADMITTED ? "evicted"
                                                                                       : "active");
        ok = cJSON_IsNumber(limit) && cJSON_IsArray(ids);
        const cJSON *it;
        cJSON_ArrayForEach(it, ids)
        {
            char id[HB_ID_MAX + 1];
            ok = ok && copy_id(id, it);
        }
        e->limit = ok ? (long)limit->valuedouble : 0;
        e->ids = ids;
    }
    cJSON_Delete(j);
    if (!ok) {
        cJSON_Delete(e->ids);
        e->ids = NULL;
    }
    return ok;
}

static struct pv_device *find(struct pv *v, const char *account, const char *device)
{
    for (size_t i = 0; i < v->n_dev; i++)
        if (strcmp(v->dev[i].device, device) == 0 && strcmp(v->dev[i].account, account) == 0)
            return &v->dev[i];
    return NULL;
}

static struct pv_device *find_or_add(struct pv *v, const char *account, const char *device)
{
    struct pv_device *d = find(v, account, device);
    if (d != NULL)
        return d;
    if (v->n_dev == v->cap_dev) {
        size_t cap = v->cap_dev ? 2 * v->cap_dev : 64;
        struct pv_device *n = realloc(v->dev, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        v->dev = n;
        v->cap_dev = cap;
    }
    d = &v->dev[v->n_dev++];
    *d = (struct pv_device){account, device, -1, -1, -1, PV_ADMITTED, false};
    return d;
}

/* Admitted and not ended: playing by the truth (evicted ones included until they stop). */
static bool playing(const struct pv_device *d)
{
    return d->admitted_at >= 0 && d->ended_at < 0;
}

/* Whether the service may still count d at t. */
static bool active_for_service(const struct pv *v, const struct pv_device *d, int64_t t)
{
    if (d->admitted_at < 0 || d->evicted_at >= 0)
        return false;
    if (d->ended_at < 0)
        return true;
    int64_t window = d->end == PV_VANISHED ? v->cfg->grace_ms : v->cfg->lag_ms;
    return t - d->ended_at < window;
}

/* Evicted devices still playing a grace period after their eviction. */
static void check_late(struct pv *v, const struct pv_event *e)
{
    for (size_t i = 0; i < v->n_dev; i++) {
        struct pv_device *d = &v->dev[i];
        if (d->evicted_at >= 0 && playing(d) && !d->flagged &&
            e->t - d->evicted_at > v->cfg->grace_ms) {
            d->flagged = true;
            violation(v, e, "%s was evicted at %" PRId64 " and still plays after the grace period",
                      d->device, d->evicted_at);
        }
    }
}

static void on_eviction(struct pv *v, const struct pv_event *e, const char *id)
{
    struct pv_device *x = find(v, e->account, id);
    v->rep->evicted++;
    if (v->cfg->policy != HB_POLICY_EVICT_OLDEST)
        violation(v, e, "evicted %s under block_new", id);
    if (x == NULL || !active_for_service(v, x, e->t)) {
        violation(v, e, "evicted %s, which was not active", id);
        return;
    }
    for (size_t i = 0; i < v->n_dev; i++) {
        const struct pv_device *o = &v->dev[i];
        if (strcmp(o->account, e->account) == 0 && active_for_service(v, o, e->t) &&
            o->admitted_at < x->admitted_at) {
            violation(v, e, "evicted %s (since %" PRId64 ") but %s (since %" PRId64 ") is older",
                      id, x->admitted_at, o->device, o->admitted_at);
            break;
        }
    }
    x->evicted_at = e->t;
}

static void on_admitted(struct pv *v, const struct pv_event *e, struct pv_device *d)
{
    v->rep->admitted++;
    const cJSON *it;
    cJSON_ArrayForEach(it, e->ids) on_eviction(v, e, it->valuestring);
    if (!playing(d) || d->evicted_at >= 0)
        d->admitted_at = e->t; /* else admitted again while playing: the same play */
    d->ended_at = d->evicted_at = -1;
    d->flagged = false;
    long n = 0;
    for (size_t i = 0; i < v->n_dev; i++) {
        const struct pv_device *o = &v->dev[i];
        n += strcmp(o->account, e->account) == 0 && playing(o) && o->evicted_at < 0;
    }
    if (n > e->limit)
        violation(v, e, "%ld devices play, limit %ld", n, e->limit);
}

static void on_refused(struct pv *v, const struct pv_event *e)
{
    v->rep->refused++;
    long n = 0;
    for (size_t i = 0; i < v->n_dev; i++)
        n += strcmp(v->dev[i].account, e->account) == 0 && active_for_service(v, &v->dev[i], e->t);
    if (n < e->limit)
        violation(v, e, "refused with %ld active, limit %ld", n, e->limit);
    const cJSON *it;
    cJSON_ArrayForEach(it, e->ids)
    {
        const struct pv_device *x = find(v, e->account, it->valuestring);
        if (x == NULL || x->admitted_at < 0)
            violation(v, e, "the refusal lists %s, never admitted", it->valuestring);
    }
}

static void on_end(struct pv *v, const struct pv_event *e, struct pv_device *d)
{
    long *count[] = {[PV_STOPPED] = &v->rep->stopped,
                     [PV_RELEASED] = &v->rep->released,
                     [PV_VANISHED] = &v->rep->vanished};
    (*count[e->kind])++;
    if (!playing(d)) {
        violation(v, e, "%s without playing", pv_names[e->kind]);
        return;
    }
    d->ended_at = e->t;
    d->end = e->kind;
}

static int by_time(const void *a, const void *b)
{
    const struct pv_event *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->line < y->line ? -1 : x->line > y->line; /* stable */
}

/* Reads every event of in into *events; false when out of memory. */
static bool read_events(struct pv *v, FILE *in, struct pv_event **events, size_t *n)
{
    char *line = NULL;
    size_t cap = 0, ecap = 0, lineno = 0;
    bool ok = true;
    *events = NULL;
    *n = 0;
    while (ok && getline(&line, &cap, in) >= 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0')
            continue;
        struct pv_event e;
        if (!parse_event(line, &e)) {
            fprintf(v->out, "plays: line %zu: not a plays event\n", lineno);
            v->rep->bad_lines++;
            continue;
        }
        e.line = lineno;
        if (*n == ecap) {
            ecap = ecap ? 2 * ecap : 256;
            struct pv_event *grown = realloc(*events, ecap * sizeof(**events));
            if (grown == NULL) {
                cJSON_Delete(e.ids);
                ok = false;
                break;
            }
            *events = grown;
        }
        (*events)[(*n)++] = e;
    }
    free(line);
    return ok;
}

bool plays_verify(FILE *in, const struct plays_verify_config *cfg, FILE *out,
                  struct plays_verify_report *rep)
{
    memset(rep, 0, sizeof(*rep));
    struct pv v = {.cfg = cfg, .out = out, .rep = rep};
    struct pv_event *ev;
    size_t n;
    bool ok = read_events(&v, in, &ev, &n);
    if (!ok)
        fprintf(out, "plays: out of memory\n");
    qsort(ev, n, sizeof(*ev), by_time);
    for (size_t i = 0; ok && i < n; i++) {
        struct pv_event *e = &ev[i];
        rep->events++;
        check_late(&v, e);
        struct pv_device *d = find_or_add(&v, e->account, e->device);
        if (d == NULL) {
            fprintf(out, "plays: out of memory\n");
            ok = false;
        } else if (e->kind == PV_ADMITTED) {
            on_admitted(&v, e, d);
        } else if (e->kind == PV_REFUSED) {
            on_refused(&v, e);
        } else {
            on_end(&v, e, d);
        }
    }
    if (ok && n > 0)
        check_late(&v, &ev[n - 1]);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(ev[i].ids);
    free(ev);
    free(v.dev);
    return ok && rep->violations == 0 && rep->bad_lines == 0;
}

int plays_verify_file(const char *path, const struct plays_verify_config *cfg)
{
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (in == NULL) {
        HB_ERROR("--verify-plays %s: %s", path, strerror(errno));
        return 2;
    }
    struct plays_verify_report r;
    bool ok = plays_verify(in, cfg, stdout, &r);
    if (in != stdin)
        fclose(in);
    printf("verify-plays: %ld events: %ld admitted, %ld refused, %ld evicted, %ld stopped, "
           "%ld released, %ld vanished; %ld violations, %ld bad lines\n",
           r.events, r.admitted, r.refused, r.evicted, r.stopped, r.released, r.vanished,
           r.violations, r.bad_lines);
    if (ok && r.events == 0) {
        HB_ERROR("verify-plays: no event in %s", path);
        return 1;
    }
    return ok ? 0 : 1;
}
