/*
 * dra_device.c - per-device rules the allocator applies to one candidate: attribute and
 * capacity lookup by qualified name, consumable capacity under a requestPolicy, taint
 * toleration and the coreCPUs list. Each is O(entries of one device) and allocates
 * nothing but a parsed list.
 */
#include "devices/dra_int.h"

#include <string.h>

/* True when qualified ("domain/name" or "name") names `entry` of a device of `driver`:
 * the same text, or one side bare and the other qualified with the driver's domain. */
static bool same_name(const char *entry, const char *driver, const char *qualified)
{
    if (strcmp(entry, qualified) == 0) return true;
    const char *a = strchr(entry, '/'), *b = strchr(qualified, '/');
    size_t dl = strlen(driver);
    if (!a && b)
        return (size_t)(b - qualified) == dl && !strncmp(qualified, driver, dl) &&
               !strcmp(b + 1, entry);
    if (a && !b)
        return (size_t)(a - entry) == dl && !strncmp(entry, driver, dl) &&
               !strcmp(a + 1, qualified);
    return false;
}

const cs_dra_attr *cs__dra_find_attr(const cs_dra_device *d, const char *driver,
                                     const char *qualified)
{
    for (size_t i = 0; i < d->n_attrs; i++)
        if (same_name(d->attrs[i].name, driver, qualified)) return &d->attrs[i];
    return NULL;
}

const cs_dra_capacity *cs__dra_find_cap(const cs_dra_device *d, const char *driver,
                                        const char *qualified)
{
    for (size_t i = 0; i < d->n_caps; i++)
        if (same_name(d->caps[i].name, driver, qualified)) return &d->caps[i];
    return NULL;
}

/* Rounds a request up to the policy: validValues takes the smallest value >= the request;
 * validRange lifts a request below min to min, then rounds up to min + k*step, and a
 * result above max does not fit. Without a policy the request is taken as is. */
bool cs__dra_consumed(const cs_dra_capacity *cap, const cs_quantity *requested, cs_quantity *out)
{
    if (!requested) {
        *out = cap->has_default ? cap->def : cap->value;
        return true;
    }
    *out = *requested;
    if (cap->n_valid_values) {
        for (size_t i = 0; i < cap->n_valid_values; i++)
            if (cs_quantity_cmp(cap->valid_values[i], *requested) >= 0) {
                *out = cap->valid_values[i];
                return true;
            }
        return false;
    }
    if (cap->has_range) {
        int64_t v = requested->milli;
        if (v < cap->min.milli) v = cap->min.milli;
        if (cap->has_step) {
            int64_t k = (v - cap->min.milli + cap->step.milli - 1) / cap->step.milli;
            v = cap->min.milli + k * cap->step.milli;
        }
        if (cap->has_max && v > cap->max.milli) return false;
        out->milli = v;
    }
    return true;
}

static const char *cpu_number(const char **p, int *out)
{
    if (**p < '0' || **p > '9') return "expected a CPU number";
    long v = 0;
    while (**p >= '0' && **p <= '9' && v <= 65535) v = v * 10 + (*(*p)++ - '0');
    if (v > 65535) return "CPU numbers go up to 65535";
    *out = (int)v;
    return NULL;
}

const char *cs__dra_cpulist(const char *s, cs_arena *a, int **out, size_t *n)
{
    unsigned char seen[65536 / 8] = {0};
    size_t count = 0, cap = 0;
    int *list = NULL;
    if (out) *out = NULL;
    *n = 0;
    for (const char *p = s; *p;) {
        int lo, hi;
        const char *why = cpu_number(&p, &lo);
        hi = lo;
        if (!why && *p == '-') {
            p++;
            why = cpu_number(&p, &hi);
            if (!why && hi < lo) why = "a range must go upwards (\"0-3\")";
        }
        if (!why && *p && *p != ',') why = "expected ',' or '-' after a CPU number";
        if (why) return why;
        if (*p == ',' && !*++p) return "expected a CPU number after ','";
        for (int cpu = lo; cpu <= hi; cpu++) {
            if (seen[cpu / 8] & (1u << (cpu % 8))) return "lists a CPU twice";
            seen[cpu / 8] |= (unsigned char)(1u << (cpu % 8));
            if (++count > CS_DRA_MAX_CPUS) return "more than 4096 CPUs";
            if (!a) continue;
            if (count > cap) {
                size_t ncap = cap ? cap * 2 : 64;
                int *grown = cs_arena_alloc(a, ncap * sizeof *grown, 16);
                if (!grown) return "out of memory";
                if (cap) memcpy(grown, list, cap * sizeof *grown);
                list = grown;
                cap = ncap;
            }
            list[count - 1] = cpu;
        }
    }
    if (!count) return "must list at least one CPU";
    if (out) *out = list;
    *n = count;
    return NULL;
}

/* Kubernetes' ToleratesTaint: an empty effect matches every effect, an empty key with
 * Exists matches every key, Equal (the default) compares values. */
bool cs__dra_tolerates(const cs_dra_request *r, const cs_dra_taint *t)
{
    for (size_t i = 0; i < r->n_tolerations; i++) {
        const cs_dra_toleration *tol = &r->tolerations[i];
        if (tol->effect && tol->effect[0] && strcmp(tol->effect, t->effect) != 0) continue;
        if (tol->key && tol->key[0] && strcmp(tol->key, t->key) != 0) continue;
        if (tol->op && strcmp(tol->op, "Exists") == 0) return true;
        if (!(tol->key && tol->key[0])) continue; /* Equal needs a key */
        const char *tv = t->value ? t->value : "", *v = tol->value ? tol->value : "";
        if (strcmp(tv, v) == 0) return true;
    }
    return false;
}
