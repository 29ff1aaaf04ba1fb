/*
 * metrics.c - the metric registry and its Prometheus text exposition (format 0.0.4).
 *
 * A registry holds families in registration order; a family holds its series in creation
 * order plus an index from label values to series. Both levels take a mutex only to find
 * or create (cs_metrics_family, cs_metric_get) and to render; the hot path does not lock:
 * a counter or gauge is one atomic 64-bit word holding a double's bit pattern (add is a
 * compare-and-swap loop), and a histogram is one atomic count per bucket plus an atomic
 * sum. A histogram keeps per-bucket (not cumulative) counts, so an observation touches
 * one bucket; rendering accumulates them and derives _count from the same pass, so _count
 * always equals the +Inf bucket even while observations race with a scrape.
 *
 * Names, label values and series live in per-family arenas: nothing is freed before the
 * registry, which is what keeps series pointers stable.
 */
#include "obs/metrics.h"

#include "base/alloc.h"
#include "base/arena.h"
#include "base/map.h"
#include "base/sbuf.h"
#include "base/vec.h"
#include "obs/process.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double cs_metrics_latency_buckets[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
const int cs_metrics_latency_bucket_count =
    (int)(sizeof cs_metrics_latency_buckets / sizeof cs_metrics_latency_buckets[0]);

/* Bounds that keep a scrape small and a typo from allocating without limit. */
#define MAX_LABELS  16
#define MAX_BUCKETS 128
#define MAX_NAME    200
#define MAX_HELP    1024
#define RENDER_MAX  (64u << 20)
#define ARENA_BLOCK 4096

struct cs_metric {
    const cs_metric_family *family;
    const char **values; /* the family's n_labels label values */
    /* Counter or gauge: the value; histogram: the sum. A double's bits, so that plain
     * 64-bit atomics (lock-free on every target we build for) carry it. */
    _Atomic uint64_t bits;
    _Atomic uint64_t *buckets; /* histogram: n_bounds + 1 counts, the last for +Inf */
};

struct cs_metric_family {
    cs_metric_type type;
    const char *name, *help;
    const char **labels;
    int n_labels;
    double *bounds; /* histogram upper bounds, +Inf implied */
    int n_bounds;
    pthread_mutex_t lock; /* guards arena, series and index */
    cs_arena arena;
    cs_vec series; /* cs_metric *, creation order */
    cs_map index;  /* series key (see series_key) -> cs_metric * */
};

struct cs_metrics {
    pthread_mutex_t lock; /* guards arena, families and by_name */
    cs_arena arena;       /* the families themselves and their names */
    cs_vec families;      /* cs_metric_family *, registration order */
    cs_map by_name;
};

static uint64_t to_bits(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double from_bits(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static void atomic_add_double(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(p, &old, to_bits(from_bits(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

cs_status cs_metrics_new(cs_metrics **out, cs_error *err)
{
    *out = NULL;
    cs_metrics *r = cs_calloc(1, sizeof *r);
    if (!r) return cs_error_set(err, CS_ERR_NOMEM, "metrics registry: out of memory");
    if (pthread_mutex_init(&r->lock, NULL) != 0) {
        cs_free(r);
        return cs_error_set(err, CS_ERR_INTERNAL, "metrics registry: cannot create a mutex");
    }
    cs_arena_init(&r->arena, ARENA_BLOCK);
    cs_vec_init(&r->families, sizeof(cs_metric_family *));
    cs_map_init(&r->by_name);
    *out = r;
    return CS_OK;
}

static void family_free(cs_metric_family *f)
{
    pthread_mutex_destroy(&f->lock);
    cs_map_free(&f->index);
    cs_vec_free(&f->series);
    cs_arena_free(&f->arena);
}

void cs_metrics_free(cs_metrics *r)
{
    if (!r) return;
    for (size_t i = 0; i < r->families.len; i++)
        family_free(*(cs_metric_family **)cs_vec_at(&r->families, i));
    cs_map_free(&r->by_name);
    cs_vec_free(&r->families);
    cs_arena_free(&r->arena);
    pthread_mutex_destroy(&r->lock);
    cs_free(r);
}

/* Prometheus names: [a-zA-Z_:][a-zA-Z0-9_:]* for metrics, no colon for labels. */
static int valid_name(const char *s, int colon)
{
    if (!s || !*s || strlen(s) > MAX_NAME) return 0;
    for (const char *p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p > s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

static int count_labels(const char *const *labels)
{
    int n = 0;
    while (labels && labels[n]) n++;
    return n;
}

/* Label names must be valid, not reserved ("__" prefix, a histogram's "le") and unique. */
static int valid_labels(cs_metric_type type, const char *const *labels, int n)
{
    if (n > MAX_LABELS) return 0;
    for (int i = 0; i < n; i++) {
        if (!valid_name(labels[i], 0) || strncmp(labels[i], "__", 2) == 0) return 0;
        if (type == CS_METRIC_HISTOGRAM && strcmp(labels[i], "le") == 0) return 0;
        for (int j = 0; j < i; j++)
            if (strcmp(labels[i], labels[j]) == 0) return 0;
    }
    return 1;
}

/* Bounds must increase strictly; a trailing +Inf is accepted and dropped (it is implied).
 * Returns the number of finite bounds kept, or -1. */
static int normalise_bounds(const double *b, int n)
{
    if (n < 0 || (n > 0 && !b)) return -1;
    if (n > 0 && b[n - 1] == INFINITY) n--;
    if (n > MAX_BUCKETS) return -1;
    for (int i = 0; i < n; i++)
        if (!isfinite(b[i]) || (i > 0 && !(b[i] > b[i - 1]))) return -1;
    return n;
}

static int family_matches(const cs_metric_family *f, cs_metric_type type, const char *const *labels,
                          int n_labels, const double *bounds, int n_bounds)
{
    if (f->type != type || f->n_labels != n_labels) return 0;
    for (int i = 0; i < n_labels; i++)
        if (strcmp(f->labels[i], labels[i]) != 0) return 0;
    if (type != CS_METRIC_HISTOGRAM) return 1;
    if (f->n_bounds != n_bounds) return 0;
    return n_bounds == 0 || memcmp(f->bounds, bounds, (size_t)n_bounds * sizeof *bounds) == 0;
}

/* Builds a family in the registry's arena. On failure the arena keeps what was carved
 * (it is released with the registry); nothing else is held. */
static cs_metric_family *family_new(cs_arena *a, cs_metric_type type, const char *name,
                                    const char *help, const char *const *labels, int n_labels,
                                    const double *bounds, int n_bounds)
{
    cs_metric_family *f = cs_arena_zalloc(a, sizeof *f, alignof(cs_metric_family));
    if (!f) return NULL;
    f->type = type;
    f->n_labels = n_labels;
    f->n_bounds = n_bounds;
    f->name = cs_arena_strndup(a, name, MAX_NAME);
    f->help = cs_arena_strndup(a, help ? help : "", MAX_HELP);
    f->labels = cs_arena_alloc(a, (size_t)(n_labels + 1) * sizeof *f->labels, alignof(char *));
    f->bounds = cs_arena_alloc(a, (size_t)(n_bounds + 1) * sizeof *f->bounds, alignof(double));
    if (!f->name || !f->help || !f->labels || !f->bounds) return NULL;
    for (int i = 0; i < n_labels; i++)
        if (!(f->labels[i] = cs_arena_strndup(a, labels[i], MAX_NAME))) return NULL;
    if (n_bounds) memcpy(f->bounds, bounds, (size_t)n_bounds * sizeof *bounds);
    if (pthread_mutex_init(&f->lock, NULL) != 0) return NULL;
    cs_arena_init(&f->arena, ARENA_BLOCK);
    cs_vec_init(&f->series, sizeof(cs_metric *));
    cs_map_init(&f->index);
    return f;
}

cs_metric_family *cs_metrics_family(cs_metrics *r, cs_metric_type type, const char *name,
                                    const char *help, const char *const *labels,
                                    const double *buckets, int n_buckets)
{
    if (!r || type < CS_METRIC_COUNTER || type > CS_METRIC_HISTOGRAM) return NULL;
    /* process_* names belong to the process metrics every rendering appends. */
    if (!valid_name(name, 1) || strncmp(name, "process_", 8) == 0) return NULL;
    int n_labels = count_labels(labels);
    if (!valid_labels(type, labels, n_labels)) return NULL;
    int n_bounds = 0;
    if (type == CS_METRIC_HISTOGRAM) {
        if (!buckets) {
            buckets = cs_metrics_latency_buckets;
            n_buckets = cs_metrics_latency_bucket_count;
        }
        if ((n_bounds = normalise_bounds(buckets, n_buckets)) < 0) return NULL;
    }

    pthread_mutex_lock(&r->lock);
    cs_metric_family *f = cs_map_get(&r->by_name, name);
    if (f) {
        if (!family_matches(f, type, labels, n_labels, buckets, n_bounds)) f = NULL;
        goto out;
    }
    if (cs_vec_reserve(&r->families, r->families.len + 1) != CS_OK) goto out;
    f = family_new(&r->arena, type, name, help, labels, n_labels, buckets, n_bounds);
    if (!f) goto out;
    if (cs_map_put(&r->by_name, f->name, f) != CS_OK) {
        family_free(f);
        f = NULL;
        goto out;
    }
    cs_vec_push(&r->families, &f); /* cannot fail: room was reserved */
out:
    pthread_mutex_unlock(&r->lock);
    return f;
}

/* The index key of a set of label values: each value prefixed by its length, so that no
 * value (whatever bytes it holds) can make two different sets collide. Small keys go in
 * the caller's buffer, so the usual lookup allocates nothing; larger ones are malloc'd. */
static char *series_key(const char *const *values, int n, char *buf, size_t size)
{
    size_t need = 1;
    for (int i = 0; i < n; i++) need += strlen(values[i]) + 21;
    char *key = need <= size ? buf : cs_malloc(need);
    if (!key) return NULL;
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(values[i]);
        at += (size_t)snprintf(key + at, need - at, "%zu:", len);
        memcpy(key + at, values[i], len);
        at += len;
    }
    key[at] = '\0';
    return key;
}

/* Creates a series in the family's arena; the caller holds f->lock. */
static cs_metric *series_new(cs_metric_family *f, const char *const *values)
{
    cs_arena *a = &f->arena;
    cs_metric *m = cs_arena_zalloc(a, sizeof *m, alignof(cs_metric));
    if (!m) return NULL;
    m->family = f;
    m->values = cs_arena_alloc(a, (size_t)(f->n_labels + 1) * sizeof *m->values, alignof(char *));
    if (!m->values) return NULL;
    for (int i = 0; i < f->n_labels; i++)
        if (!(m->values[i] = cs_arena_strndup(a, values[i], SIZE_MAX))) return NULL;
    atomic_init(&m->bits, to_bits(0.0));
    if (f->type == CS_METRIC_HISTOGRAM) {
        size_t n = (size_t)f->n_bounds + 1;
        m->buckets = cs_arena_alloc(a, n * sizeof *m->buckets, alignof(_Atomic uint64_t));
        if (!m->buckets) return NULL;
        for (size_t i = 0; i < n; i++) atomic_init(&m->buckets[i], 0);
    }
    return m;
}

cs_metric *cs_metric_get(cs_metric_family *f, const char *const *values)
{
    if (!f || (f->n_labels > 0 && !values)) return NULL;
    for (int i = 0; i < f->n_labels; i++)
        if (!values[i]) return NULL;
    char buf[256];
    char *key = series_key(values, f->n_labels, buf, sizeof buf);
    if (!key) return NULL;

    pthread_mutex_lock(&f->lock);
    cs_metric *m = cs_map_get(&f->index, key);
    if (m) goto out;
    if (cs_vec_reserve(&f->series, f->series.len + 1) != CS_OK) goto out;
    m = series_new(f, values);
    if (!m) goto out;
    if (cs_map_put(&f->index, key, m) != CS_OK) {
        m = NULL; /* its arena memory goes with the family */
        goto out;
    }
    cs_vec_push(&f->series, &m); /* cannot fail: room was reserved */
out:
    pthread_mutex_unlock(&f->lock);
    if (key != buf) cs_free(key);
    return m;
}

/* Misuse (observe on a counter, a negative counter increment) is a broken contract:
 * asserted in debug builds and ignored in release ones, so a counter never goes down. */
void cs_metric_add(cs_metric *m, double v)
{
    assert(m && m->family->type != CS_METRIC_HISTOGRAM);
    assert(m->family->type != CS_METRIC_COUNTER || v >= 0);
    if (!m || m->family->type == CS_METRIC_HISTOGRAM) return;
    if (m->family->type == CS_METRIC_COUNTER && !(v >= 0)) return;
    atomic_add_double(&m->bits, v);
}

void cs_metric_set(cs_metric *m, double v)
{
    assert(m && m->family->type == CS_METRIC_GAUGE);
    if (!m || m->family->type != CS_METRIC_GAUGE) return;
    atomic_store_explicit(&m->bits, to_bits(v), memory_order_relaxed);
}

/* O(log buckets): a binary search for the first bound >= v. NaN lands in +Inf, as in the
 * reference clients. */
void cs_metric_observe(cs_metric *m, double v)
{
    assert(m && m->family->type == CS_METRIC_HISTOGRAM);
    if (!m || m->family->type != CS_METRIC_HISTOGRAM) return;
    const double *b = m->family->bounds;
    int lo = 0, hi = m->family->n_bounds;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (v <= b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    atomic_fetch_add_explicit(&m->buckets[lo], 1, memory_order_relaxed);
    atomic_add_double(&m->bits, v);
}

static uint64_t bucket_count(const cs_metric *m, int i)
{
    return atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
}

double cs_metric_value(const cs_metric *m)
{
    if (!m) return 0;
    if (m->family->type != CS_METRIC_HISTOGRAM)
        return from_bits(atomic_load_explicit(&m->bits, memory_order_relaxed));
    uint64_t n = 0;
    for (int i = 0; i <= m->family->n_bounds; i++) n += bucket_count(m, i);
    return (double)n;
}

int cs_metric_buckets(const cs_metric *m, uint64_t *counts, int max, const double **bounds)
{
    if (!m || m->family->type != CS_METRIC_HISTOGRAM) return 0;
    int n = m->family->n_bounds + 1;
    for (int i = 0; i < n && i < max; i++) counts[i] = bucket_count(m, i);
    *bounds = m->family->bounds;
    return n;
}

double cs_metric_quantile(double q, const uint64_t *counts, int n, const double *bounds)
{
    uint64_t total = 0;
    for (int i = 0; i < n; i++) total += counts[i];
    if (!total || n < 1) return NAN;
    double rank = q * (double)total, below = 0;
    for (int i = 0; i < n; i++) {
        if (below + (double)counts[i] >= rank && counts[i]) {
            if (i == n - 1) return n > 1 ? bounds[n - 2] : 0; /* +Inf: the highest bound */
            double lo = i ? bounds[i - 1] : 0;
            return lo + (bounds[i] - lo) * (rank - below) / (double)counts[i];
        }
        below += (double)counts[i];
    }
    return n > 1 ? bounds[n - 2] : 0;
}

/* ---- rendering -------------------------------------------------------------------- */

/* The output with a sticky status: after the first failure every write is skipped, so
 * the render loop reads straight down and checks once at the end. */
typedef struct writer {
    cs_sbuf b;
    cs_status rc;
} writer;

static void put(writer *o, const char *s, size_t n)
{
    if (o->rc == CS_OK) o->rc = cs_sbuf_append(&o->b, s, n);
}

static void put_str(writer *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Escapes for label values (backslash, quote, newline) or HELP text (no quote). Runs of
 * plain bytes go out in one append. */
static void put_escaped(writer *o, const char *s, int quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = *s == '\\'           ? "\\\\"
                          : *s == '\n'         ? "\\n"
                          : quote && *s == '"' ? "\\\""
                                               : NULL;
        if (!esc) continue;
        put(o, run, (size_t)(s - run));
        put_str(o, esc);
        run = s + 1;
    }
    put(o, run, (size_t)(s - run));
}

/* The shorter of %.15g and %.17g that reads back as the same double, so 0.1 prints as
 * 0.1 and large counters stay exact; Prometheus spells the specials +Inf, -Inf, NaN.
 * Assumes the "C" numeric locale (the server never calls setlocale). */
static void put_double(writer *o, double v)
{
    if (isnan(v) || isinf(v)) {
        put_str(o, isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "%.15g", v);
    if (strtod(buf, NULL) != v) snprintf(buf, sizeof buf, "%.17g", v);
    put_str(o, buf);
}

static void put_u64(writer *o, uint64_t v)
{
    char buf[24];
    snprintf(buf, sizeof buf, "%llu", (unsigned long long)v);
    put_str(o, buf);
}

/* One sample line's name and label set: name{l1="v1",...,le="b"} with a trailing space.
 * A label whose value is empty is left out: to Prometheus the two are the same series, and
 * so a route without a model shows no model="". le_bound is NULL outside histogram
 * buckets; +Inf is passed as INFINITY. */
static void put_series(writer *o, const cs_metric_family *f, const char *suffix, const cs_metric *m,
                       const double *le_bound)
{
    put_str(o, f->name);
    put_str(o, suffix);
    bool any = false;
    for (int i = 0; i < f->n_labels; i++) any = any || m->values[i][0];
    if (any || le_bound) {
        put_str(o, "{");
        bool first = true;
        for (int i = 0; i < f->n_labels; i++) {
            if (!m->values[i][0]) continue;
            if (!first) put_str(o, ",");
            first = false;
            put_str(o, f->labels[i]);
            put_str(o, "=\"");
            put_escaped(o, m->values[i], 1);
            put_str(o, "\"");
        }
        if (le_bound) {
            put_str(o, first ? "le=\"" : ",le=\"");
            put_double(o, *le_bound);
            put_str(o, "\"");
        }
        put_str(o, "}");
    }
    put_str(o, " ");
}

static const char *const type_names[] = {
    [CS_METRIC_COUNTER] = "counter",
    [CS_METRIC_GAUGE] = "gauge",
    [CS_METRIC_HISTOGRAM] = "histogram",
};

static void put_header(writer *o, const char *name, const char *help, cs_metric_type type)
{
    put_str(o, "# HELP ");
    put_str(o, name);
    put_str(o, " ");
    put_escaped(o, help, 0);
    put_str(o, "\n# TYPE ");
    put_str(o, name);
    put_str(o, " ");
    put_str(o, type_names[type]);
    put_str(o, "\n");
}

/* Buckets are read one by one, so a scrape racing observations may see a bucket count a
 * little ahead of _sum; _count is the +Inf bucket itself, so those two always agree. */
static void put_histogram(writer *o, const cs_metric_family *f, const cs_metric *m)
{
    static const double inf = INFINITY;
    uint64_t cumulative = 0;
    for (int i = 0; i <= f->n_bounds; i++) {
        cumulative += bucket_count(m, i);
        put_series(o, f, "_bucket", m, i < f->n_bounds ? &f->bounds[i] : &inf);
        put_u64(o, cumulative);
        put_str(o, "\n");
    }
    put_series(o, f, "_sum", m, NULL);
    put_double(o, from_bits(atomic_load_explicit(&m->bits, memory_order_relaxed)));
    put_str(o, "\n");
    put_series(o, f, "_count", m, NULL);
    put_u64(o, cumulative);
    put_str(o, "\n");
}

/* A family without series renders nothing, as in the reference clients: a HELP/TYPE
 * header with no samples only confuses dashboards. */
static void put_family(writer *o, cs_metric_family *f)
{
    pthread_mutex_lock(&f->lock);
    if (f->series.len) put_header(o, f->name, f->help, f->type);
    for (size_t i = 0; i < f->series.len; i++) {
        const cs_metric *m = *(cs_metric **)cs_vec_at(&f->series, i);
        if (f->type == CS_METRIC_HISTOGRAM) {
            put_histogram(o, f, m);
        } else {
            put_series(o, f, "", m, NULL);
            put_double(o, cs_metric_value(m));
            put_str(o, "\n");
        }
    }
    pthread_mutex_unlock(&f->lock);
}

static const struct {
    const char *name, *help;
    cs_metric_type type;
    size_t offset;
} process_metrics[] = {
    {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
     CS_METRIC_COUNTER, offsetof(cs__obs_process, cpu_seconds)},
    {"process_resident_memory_bytes", "Resident memory size in bytes.", CS_METRIC_GAUGE,
     offsetof(cs__obs_process, resident_bytes)},
    {"process_virtual_memory_bytes", "Virtual memory size in bytes.", CS_METRIC_GAUGE,
     offsetof(cs__obs_process, virtual_bytes)},
    {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
     CS_METRIC_GAUGE, offsetof(cs__obs_process, start_time_seconds)},
    {"process_threads", "Number of OS threads in the process.", CS_METRIC_GAUGE,
     offsetof(cs__obs_process, threads)},
    {"process_open_fds", "Number of open file descriptors.", CS_METRIC_GAUGE,
     offsetof(cs__obs_process, open_fds)},
    {"process_max_fds", "Maximum number of open file descriptors.", CS_METRIC_GAUGE,
     offsetof(cs__obs_process, max_fds)},
};

/* Figures the system could not give are left out rather than rendered as NaN. */
static void put_process(writer *o)
{
    cs__obs_process p;
    cs__obs_process_read(&p);
    for (size_t i = 0; i < sizeof process_metrics / sizeof process_metrics[0]; i++) {
        double v;
        memcpy(&v, (const char *)&p + process_metrics[i].offset, sizeof v);
        if (isnan(v)) continue;
        put_header(o, process_metrics[i].name, process_metrics[i].help, process_metrics[i].type);
        put_str(o, process_metrics[i].name);
        put_str(o, " ");
        put_double(o, v);
        put_str(o, "\n");
    }
}

/* Holds the registry lock for the whole walk (registration waits, the hot path does not)
 * and each family's lock while its series are written. */
cs_status cs_metrics_render(cs_metrics *r, char **out, size_t *len, cs_error *err)
{
    *out = NULL;
    if (len) *len = 0;
    writer o = {.rc = CS_OK};
    cs_sbuf_init(&o.b, RENDER_MAX);
    pthread_mutex_lock(&r->lock);
    for (size_t i = 0; i < r->families.len && o.rc == CS_OK; i++)
        put_family(&o, *(cs_metric_family **)cs_vec_at(&r->families, i));
    pthread_mutex_unlock(&r->lock);
    put_process(&o);
    size_t n = o.b.len;
    if (o.rc == CS_OK && !(*out = cs_sbuf_take(&o.b))) o.rc = CS_ERR_NOMEM;
    if (o.rc != CS_OK) {
        cs_sbuf_free(&o.b);
        if (o.rc == CS_ERR_LIMIT)
            return cs_error_set(err, o.rc, "metrics: the rendering exceeds %u MiB",
                                RENDER_MAX >> 20);
        return cs_error_set(err, o.rc, "metrics: out of memory while rendering");
    }
    if (len) *len = n;
    return CS_OK;
}
