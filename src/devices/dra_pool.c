/*
 * dra_pool.c - the inventory one allocation works on: which pools a node sees, which of
 * their devices are already in use, and how much of each shared counter and shared
 * capacity is consumed.
 *
 * Pools follow Kubernetes' GatherPools: slices are grouped by (driver, pool); a pool counts
 * when one of its slices serves the node, and then the newest generation among those
 * slices; a pool whose generation has another number of slices than resourceSliceCount is
 * incomplete (never used, an error for allocationMode All); a pool with duplicate device
 * names or devices consuming counters it does not define is invalid. The devices of the
 * pool's slices for other nodes are kept as foreign: never allocated here, but their
 * allocations consume the pool's shared counters and they count in the pool's checks. Devices that
 * list coreCPUs also track which of those CPUs an allocation holds (read back from claims'
 * status.devices), and hand the lowest free ones to each new allocation. Everything is allocated in
 * the caller's arena; building is O(slices + devices) with hash lookups.
 */
#include "devices/dra_int.h"

#include <stdio.h>
#include <string.h>

static char *key3(cs_arena *a, const char *x, const char *y, const char *z)
{
    size_t n = strlen(x) + strlen(y) + (z ? strlen(z) : 0) + 3;
    char *k = cs_arena_alloc(a, n, 1);
    if (k) snprintf(k, n, "%s\x1f%s\x1f%s", x, y, z ? z : "");
    return k;
}

int cs__dra_find_set(const cs__dra_pool *p, const char *name)
{
    for (size_t i = 0; i < p->n_sets; i++)
        if (strcmp(p->sets[i]->name, name) == 0) return (int)i;
    return -1;
}

int cs__dra_find_counter(const cs_dra_counter_set *s, const char *name)
{
    for (size_t i = 0; i < s->n_counters; i++)
        if (strcmp(s->counters[i].name, name) == 0) return (int)i;
    return -1;
}

/* Newest generation per pool and the pools in order of first appearance. */
typedef struct pool_acc {
    bool relevant; /* some slice serves the node */
    int64_t generation;
    size_t n_slices, n_devices, n_sets;
    int64_t announced;
} pool_acc;

static cs_status nomem(cs_error *err)
{
    return cs_error_set(err, CS_ERR_NOMEM, "out of memory gathering resource pools");
}

/* Checks a pool's devices: unique names and counters that exist. */
static void check_pool(cs_arena *a, cs__dra_inv *inv, size_t first, size_t n, cs__dra_pool *p)
{
    cs_map names;
    cs_map_init(&names);
    for (size_t i = first; i < first + n && !p->invalid; i++) {
        const cs_dra_device *d = inv->devs[i].d;
        if (cs_map_get(&names, d->name)) {
            p->invalid = "duplicate device name";
            char *why = cs_arena_alloc(a, strlen(d->name) + 32, 1);
            if (why) sprintf(why, "duplicate device name %s", d->name);
            if (why) p->invalid = why;
        } else if (cs_map_put(&names, d->name, (void *)d) != CS_OK) {
            p->invalid = "out of memory checking device names";
        }
        for (size_t j = 0; j < d->n_consumes && !p->invalid; j++) {
            int s = cs__dra_find_set(p, d->consumes[j].name);
            for (size_t k = 0; s >= 0 && k < d->consumes[j].n_counters; k++)
                if (cs__dra_find_counter(p->sets[s], d->consumes[j].counters[k].name) < 0) s = -1;
            if (s < 0) p->invalid = "a device consumes a counter the pool does not define";
        }
    }
    cs_map_free(&names);
}

cs_status cs__dra_inventory(const cs_dra_set *set, const cs_dra_options *opt, cs_arena *a,
                            cs__dra_inv *inv, cs_error *err)
{
    memset(inv, 0, sizeof *inv);
    cs_map_init(&inv->index);
    size_t n_slices = set->slices.len;
    cs_dra_slice *const *slices = set->slices.data;
    cs_map pools;
    cs_map_init(&pools);
    cs_status rc = CS_OK;
    pool_acc *acc = cs_arena_zalloc(a, (n_slices + 1) * sizeof *acc, 16);
    size_t *pool_of = cs_arena_zalloc(a, (n_slices + 1) * sizeof *pool_of, 16);
    const cs_dra_slice **first = cs_arena_zalloc(a, (n_slices + 1) * sizeof *first, 16);
    if (!acc || !pool_of || !first) rc = nomem(err);
    /* Pass 1: pools and their newest generation. */
    for (size_t i = 0; rc == CS_OK && i < n_slices; i++) {
        const cs_dra_slice *s = slices[i];
        char *k = key3(a, s->driver, s->pool, NULL);
        if (!k) {
            rc = nomem(err); /* and free the map below */
            break;
        }
        size_t pi = (size_t)(uintptr_t)cs_map_get(&pools, k);
        if (!pi) {
            pi = ++inv->n_pools;
            first[pi - 1] = s;
            if (cs_map_put(&pools, k, (void *)(uintptr_t)pi) != CS_OK) rc = nomem(err);
        }
        pool_of[i] = pi - 1;
        pool_acc *p = &acc[pi - 1];
        if (cs__dra_slice_eligible(s, opt) && (!p->relevant || s->generation > p->generation)) {
            p->relevant = true;
            p->generation = s->generation;
        }
    }
    cs_map_free(&pools);
    /* Pass 2: count what the newest generation holds. */
    for (size_t i = 0; rc == CS_OK && i < n_slices; i++) {
        const cs_dra_slice *s = slices[i];
        pool_acc *p = &acc[pool_of[i]];
        if (!p->relevant || s->generation != p->generation) continue;
        p->n_slices++;
        p->announced = s->slice_count;
        p->n_sets += s->n_shared;
        p->n_devices += s->n_devices;
        inv->n_devs += s->n_devices;
    }
    if (rc == CS_OK) {
        inv->pools = cs_arena_zalloc(a, (inv->n_pools + 1) * sizeof *inv->pools, 16);
        inv->devs = cs_arena_zalloc(a, (inv->n_devs + 1) * sizeof *inv->devs, 16);
        if (!inv->pools || !inv->devs) rc = nomem(err);
    }
    /* Pass 3: pools in order of first appearance, devices grouped by pool. */
    size_t next = 0;
    for (size_t pi = 0; rc == CS_OK && pi < inv->n_pools; pi++) {
        cs__dra_pool *p = &inv->pools[pi];
        p->driver = first[pi]->driver;
        p->name = first[pi]->pool;
        p->incomplete = acc[pi].relevant && (int64_t)acc[pi].n_slices != acc[pi].announced;
        p->sets = cs_arena_zalloc(a, (acc[pi].n_sets + 1) * sizeof *p->sets, 16);
        p->used = cs_arena_zalloc(a, (acc[pi].n_sets + 1) * sizeof *p->used, 16);
        if (!p->sets || !p->used) return nomem(err);
        size_t pool_first = next;
        for (size_t i = 0; i < n_slices; i++) {
            const cs_dra_slice *s = slices[i];
            if (pool_of[i] != pi || !acc[pi].relevant || s->generation != acc[pi].generation)
                continue;
            for (size_t j = 0; j < s->n_shared; j++) {
                p->used[p->n_sets] =
                    cs_arena_zalloc(a, (s->shared[j].n_counters + 1) * sizeof(int64_t), 16);
                if (!p->used[p->n_sets]) return nomem(err);
                if (cs__dra_find_set(p, s->shared[j].name) >= 0)
                    p->invalid = "duplicate counter set";
                p->sets[p->n_sets++] = &s->shared[j];
            }
            bool here = cs__dra_slice_eligible(s, opt);
            for (size_t j = 0; j < s->n_devices; j++) {
                cs__dra_dev *d = &inv->devs[next++];
                d->foreign = !here || !cs__dra_device_eligible(s, &s->devices[j], opt);
                d->d = &s->devices[j];
                d->slice = s;
                d->pool = pi;
                d->consumed = cs_arena_zalloc(a, (d->d->n_caps + 1) * sizeof(int64_t), 16);
                if (!d->consumed) return nomem(err);
                const cs_dra_attr *cpus = cs__dra_find_attr(d->d, s->driver, CS_DRA_CORE_CPUS);
                if (cpus && cpus->value.type == CS_CEL_ATTR_STRING &&
                    !cs__dra_cpulist(cpus->value.s, a, &d->cpus, &d->n_cpus)) {
                    d->cpu_taken = cs_arena_zalloc(a, d->n_cpus, 1);
                    if (!d->cpu_taken) return nomem(err);
                }
            }
        }
        if (!p->invalid) check_pool(a, inv, pool_first, next - pool_first, p);
        for (size_t i = pool_first; i < next && !p->invalid; i++) {
            char *k = key3(a, p->driver, p->name, inv->devs[i].d->name);
            if (!k || cs_map_put(&inv->index, k, (void *)(uintptr_t)(i + 1)) != CS_OK)
                return nomem(err);
        }
    }
    for (size_t i = 0; rc == CS_OK && i < set->claims.len; i++) {
        const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set->claims, i);
        if (c->state == CS_DRA_ALLOCATED) cs__dra_commit(inv, c);
    }
    return rc;
}

void cs__dra_inventory_free(cs__dra_inv *inv)
{
    cs_map_free(&inv->index);
}

void cs__dra_commit(cs__dra_inv *inv, const cs_dra_claim *claim)
{
    char key[1024];
    for (size_t i = 0; i < claim->n_results; i++) {
        const cs_dra_result *r = &claim->results[i];
        if (r->admin_access) continue; /* admin access never makes a device busy */
        snprintf(key, sizeof key, "%s\x1f%s\x1f%s", r->driver, r->pool, r->device);
        size_t di = (size_t)(uintptr_t)cs_map_get(&inv->index, key);
        if (!di) continue; /* a device of an obsolete or unseen pool */
        cs__dra_dev *d = &inv->devs[di - 1];
        cs__dra_pool *p = &inv->pools[d->pool];
        bool first_use = !d->used && d->shares == 0;
        if (d->d->allow_multiple && r->share_id) {
            d->shares++;
            for (size_t j = 0; j < r->n_consumed; j++)
                for (size_t k = 0; k < d->d->n_caps; k++)
                    if (strcmp(d->d->caps[k].name, r->consumed[j].name) == 0)
                        d->consumed[k] += r->consumed[j].value.milli;
        } else {
            d->used = true; /* allocated dedicated, a shareable device too: never shared */
        }
        for (size_t j = 0; j < r->n_cpus && d->cpu_taken; j++)
            for (size_t k = 0; k < d->n_cpus; k++)
                if (d->cpus[k] == r->cpus[j]) d->cpu_taken[k] = 1;
        /* A shared device consumes its counters once, with its first allocation. */
        for (size_t j = 0; first_use && j < d->d->n_consumes; j++) {
            const cs_dra_counter_set *c = &d->d->consumes[j];
            int s = cs__dra_find_set(p, c->name);
            for (size_t k = 0; s >= 0 && k < c->n_counters; k++) {
                int ci = cs__dra_find_counter(p->sets[s], c->counters[k].name);
                if (ci >= 0) p->used[s][ci] += c->counters[k].value.milli;
            }
        }
    }
}

/* How many cores result r takes of device d: what it consumes of capacity cores on a
 * shared device (rounded up to whole cores), every core of an exclusive one. */
static size_t cores_taken(const cs__dra_dev *d, const cs_dra_result *r)
{
    if (!d->d->allow_multiple) return d->n_cpus;
    const cs_dra_capacity *cap = cs__dra_find_cap(d->d, d->slice->driver, CS_DRA_CORES);
    for (size_t i = 0; cap && i < r->n_consumed; i++)
        if (strcmp(r->consumed[i].name, cap->name) == 0)
            return (size_t)((r->consumed[i].value.milli + 999) / 1000);
    return 0;
}

cs_status cs__dra_assign_cpus(cs_dra_set *set, cs__dra_inv *inv, cs_dra_claim *claim)
{
    char key[1024];
    for (size_t i = 0; i < claim->n_results; i++) {
        cs_dra_result *r = &claim->results[i];
        if (r->admin_access) continue;
        snprintf(key, sizeof key, "%s\x1f%s\x1f%s", r->driver, r->pool, r->device);
        size_t di = (size_t)(uintptr_t)cs_map_get(&inv->index, key);
        cs__dra_dev *d = di ? &inv->devs[di - 1] : NULL;
        if (!d || !d->cpu_taken) continue;
        size_t want = cores_taken(d, r), got = 0;
        int *cpus = want ? cs_arena_alloc(&set->arena, want * sizeof *cpus, 16) : NULL;
        if (want && !cpus) return CS_ERR_NOMEM;
        /* The capacity check admitted `want` cores, and every taken CPU belongs to consumed
         * capacity, so enough are free. */
        for (size_t k = 0; k < d->n_cpus && got < want; k++)
            if (!d->cpu_taken[k]) {
                d->cpu_taken[k] = 1;
                cpus[got++] = d->cpus[k];
            }
        r->cpus = cpus;
        r->n_cpus = got;
    }
    return CS_OK;
}
