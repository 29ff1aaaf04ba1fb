/*
 * dra_alloc.c - the structured allocator: fills ResourceClaims' status.allocation with
 * the semantics of Kubernetes' allocator (staging/.../dynamic-resource-allocation/
 * structured), claim after claim, each allocation counting for the claims after it.
 *
 * Per claim, every request (and firstAvailable sub-request) first gets its candidate
 * list: the devices of complete, valid pools that pass the class and request CEL
 * selectors, whose taints are tolerated and whose capacity can hold the request at all.
 * Then a depth-first search picks devices request by request, as Kubernetes does, with
 * three differences that keep the answer the same but bound the work:
 *  - within a request it enumerates combinations, not permutations (each next device
 *    comes after the previous one in candidate order), and stops a branch as soon as too
 *    few candidates remain;
 *  - before searching, each matchAttribute constraint counts, per attribute value, how
 *    many candidates every request it covers has (and how many distinct devices they
 *    share): devices whose value cannot reach the counts are dropped, so an unsatisfiable
 *    claim usually fails in O(candidates) without searching; while searching, a bound
 *    value prunes a branch when fewer matching candidates remain than devices needed;
 *  - the search is bounded by a step budget (cs_dra_options.max_steps).
 * Once a claim has its devices, results on devices listing coreCPUs get concrete CPUs
 * (cs__dra_assign_cpus), so the search itself counts cores only as capacity.
 * Worst case the search is still exponential in the devices a claim needs (at most 32);
 * the pruning makes the common infeasible cases linear.
 *
 * --policy best-fit only changes candidate order, so the first solution is a greedy best
 * fit: devices already shared or partitions of an already used counter set come first,
 * then devices whose PCIe root (resource.kubernetes.io/pcieRoot) and then whose pool
 * (node) already has a device in use, then smaller devices: whole GPUs, whole PCIe roots,
 * whole nodes and large devices stay free for the claims that need them.
 */
#include "devices/dra_int.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pclaim pclaim;

/* One request or sub-request with its candidates. */
typedef struct alt {
    const cs_dra_request *r;
    pclaim *pc;       /* the claim it belongs to */
    const char *name; /* "req" or "req/sub" */
    const char *base; /* the request's name */
    size_t need;
    size_t *cand;
    size_t n_cand;
    size_t n_tainted; /* devices that matched but have a taint the request does not tolerate */
} alt;

typedef struct choice {
    size_t dev;
    const alt *a;
    bool marked_used, took_counters;
    int64_t *consumed; /* per device capacity, for shared devices; else NULL */
} choice;

typedef struct cstate { /* a matchAttribute constraint's current value */
    const cs_dra_attr *value;
    size_t count;
} cstate;

/* One claim of the pod being allocated. */
struct pclaim {
    cs_dra_claim *claim;
    alt **alts;     /* per request */
    size_t *n_alts; /* per request */
    size_t *selected;
    size_t n_results; /* devices chosen for it so far */
    cstate cons[CS_DRA_MAX_REQUESTS];
};

/* The search over all claims of one pod: choices are made claim after claim, request
 * after request, and a dead end anywhere backtracks into the claims before it. */
typedef struct search {
    cs__dra_inv *inv;
    cs_arena *a;
    pclaim *pc;
    size_t n_pc;
    choice *chosen; /* CS_DRA_MAX_RESULTS per claim */
    size_t n_chosen;
    uint32_t *pod_use; /* per device: dedicated choices of this pod (admin access too) */
    uint64_t steps, max_steps;
    const char *failure; /* an error, as Kubernetes' allocator would return */
    bool out_of_steps;
} search;

enum { FOUND = 1, NONE = 0, STOP = -1, TAINTED = 2 }; /* TAINTED: suitable() only */

static bool applies(const cs_dra_constraint *k, const alt *a)
{
    if (!k->n_requests) return true;
    for (size_t i = 0; i < k->n_requests; i++)
        if (!strcmp(k->requests[i], a->base) || !strcmp(k->requests[i], a->name)) return true;
    return false;
}

static bool attr_equal(const cs_dra_attr *x, const cs_dra_attr *y)
{
    if (x->value.type != y->value.type) return false;
    switch (x->value.type) {
    case CS_CEL_ATTR_INT: return x->value.i == y->value.i;
    case CS_CEL_ATTR_BOOL: return x->value.b == y->value.b;
    default: return strcmp(x->value.s, y->value.s) == 0;
    }
}

static const cs_dra_attr *dev_attr(const search *s, size_t dev, const char *name)
{
    const cs__dra_dev *d = &s->inv->devs[dev];
    return cs__dra_find_attr(d->d, d->slice->driver, name);
}

/* ---- CEL environment over one device ---- */

typedef struct env_dev {
    const cs__dra_dev *d;
} env_dev;

static bool split_match(const char *entry, const char *driver, const char *domain, const char *name)
{
    const char *slash = strchr(entry, '/');
    if (!slash) return !strcmp(domain, driver) && !strcmp(entry, name);
    return (size_t)(slash - entry) == strlen(domain) && !strncmp(entry, domain, slash - entry) &&
           !strcmp(slash + 1, name);
}

static bool env_attr(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    const cs__dra_dev *d = ((env_dev *)ud)->d;
    for (size_t i = 0; i < d->d->n_attrs; i++)
        if (split_match(d->d->attrs[i].name, d->slice->driver, domain, name)) {
            *out = d->d->attrs[i].value;
            return true;
        }
    return false;
}

static bool env_cap(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    const cs__dra_dev *d = ((env_dev *)ud)->d;
    for (size_t i = 0; i < d->d->n_caps; i++)
        if (split_match(d->d->caps[i].name, d->slice->driver, domain, name)) {
            memset(out, 0, sizeof *out);
            out->type = CS_CEL_ATTR_QUANTITY;
            out->q = d->d->caps[i].value;
            return true;
        }
    return false;
}

static const char *env_entry(void *ud, bool capacity, size_t i)
{
    const cs__dra_dev *d = ((env_dev *)ud)->d;
    if (capacity) return i < d->d->n_caps ? d->d->caps[i].name : NULL;
    return i < d->d->n_attrs ? d->d->attrs[i].name : NULL;
}

/* All selectors true? CEL runtime errors are errors of the claim, as in Kubernetes. */
static int selectors_match(search *s, const cs__dra_dev *d, const cs_dra_selector *sel, size_t n,
                           const char *owner)
{
    env_dev ed = {d};
    cs_cel_env env = {d->slice->driver, env_attr, env_cap, &ed, d->d->allow_multiple, env_entry};
    for (size_t i = 0; i < n; i++) {
        bool ok = false;
        cs_error err;
        if (cs_cel_eval(sel[i].prog, &env, 0, &ok, &err) != CS_OK) {
            char *msg = cs_arena_alloc(s->a, CS_ERROR_MSG_MAX + 256, 1);
            if (msg)
                snprintf(msg, CS_ERROR_MSG_MAX + 256,
                         "%s: selector #%zu on device %s/%s/%s: CEL runtime error: %s", owner, i,
                         d->slice->driver, d->slice->pool, d->d->name, err.msg);
            s->failure = msg ? msg : "CEL runtime error";
            return STOP;
        }
        if (!ok) return NONE;
    }
    return FOUND;
}

/* Static checks of one device for one (sub)request: selectors, taints, capacity. */
static int suitable(search *s, const alt *a, size_t dev, bool all_mode)
{
    const cs__dra_dev *d = &s->inv->devs[dev];
    const cs__dra_pool *p = &s->inv->pools[d->pool];
    if (d->foreign || p->incomplete || p->invalid) return NONE;
    if (!all_mode && !a->r->admin_access && d->used) return NONE;
    char owner[300];
    snprintf(owner, sizeof owner, "class %s", a->r->cls->name);
    int rc = selectors_match(s, d, a->r->cls->selectors, a->r->cls->n_selectors, owner);
    if (rc != FOUND) return rc;
    snprintf(owner, sizeof owner, "claim %s, request %s", a->pc->claim->name, a->name);
    rc = selectors_match(s, d, a->r->selectors, a->r->n_selectors, owner);
    if (rc != FOUND) return rc;
    for (size_t i = 0; i < d->d->n_taints; i++) {
        const cs_dra_taint *t = &d->d->taints[i];
        if (strcmp(t->effect, "None") && !cs__dra_tolerates(a->r, t)) return TAINTED;
    }
    for (size_t i = 0; i < a->r->n_cap_requests; i++) {
        const cs_dra_qty_entry *q = &a->r->cap_requests[i];
        const cs_dra_capacity *cap = cs__dra_find_cap(d->d, d->slice->driver, q->name);
        cs_quantity use;
        if (!cap) return NONE;
        if (!d->d->allow_multiple) {
            if (cs_quantity_cmp(q->value, cap->value) > 0) return NONE;
        } else if (!cs__dra_consumed(cap, &q->value, &use) ||
                   cs_quantity_cmp(use, cap->value) > 0) {
            return NONE;
        } else if (all_mode && d->consumed[cap - d->d->caps] + use.milli > cap->value.milli) {
            return NONE; /* All leaves out a shared device that earlier claims filled */
        }
    }
    return FOUND;
}

/* ---- dynamic checks while searching ---- */

static bool counters_fit(search *s, const cs__dra_dev *d, int sign, bool apply)
{
    cs__dra_pool *p = &s->inv->pools[d->pool];
    for (size_t j = 0; j < d->d->n_consumes; j++) {
        const cs_dra_counter_set *c = &d->d->consumes[j];
        int si = cs__dra_find_set(p, c->name);
        for (size_t k = 0; si >= 0 && k < c->n_counters; k++) {
            int ci = cs__dra_find_counter(p->sets[si], c->counters[k].name);
            if (ci < 0) continue; /* impossible: check_pool made such pools invalid */
            int64_t v = c->counters[k].value.milli;
            if (apply)
                p->used[si][ci] += sign * v;
            else if (p->used[si][ci] + v > p->sets[si]->counters[ci].value.milli)
                return false;
        }
    }
    return true;
}

/* Consumed capacity of one allocation of a shared device, or false when it does not fit
 * next to what is already consumed. */
static bool capacity_fits(search *s, const alt *a, const cs__dra_dev *d, int64_t *out)
{
    for (size_t k = 0; k < d->d->n_caps; k++) {
        const cs_dra_capacity *cap = &d->d->caps[k];
        const cs_quantity *req = NULL;
        for (size_t i = 0; i < a->r->n_cap_requests; i++)
            if (cs__dra_find_cap(d->d, d->slice->driver, a->r->cap_requests[i].name) == cap)
                req = &a->r->cap_requests[i].value;
        cs_quantity use;
        if (!cs__dra_consumed(cap, req, &use)) return false;
        if (d->consumed[k] + use.milli > cap->value.milli) return false;
        out[k] = use.milli;
    }
    return true;
}

/* Whether dev is already among the choices of a's claim. O(its choices), at most 32. */
static bool in_claim(const search *s, const alt *a, size_t dev)
{
    for (size_t j = s->n_chosen; j-- > 0 && s->chosen[j].a->pc == a->pc;)
        if (s->chosen[j].dev == dev) return true;
    return false;
}

/* Tries to add dev for alt a; on success records the choice and updates state. As in
 * Kubernetes, a dedicated device is in use once allocated or chosen by any claim of the
 * pod (admin access only needs it not to be in the same claim twice); a device that allows
 * multiple allocations is never marked in use by a share, but one allocated without a
 * share (dedicated) stays in use. */
static bool try_add(search *s, const alt *a, size_t dev, bool *constraint_failed)
{
    cs__dra_dev *d = &s->inv->devs[dev];
    pclaim *pc = a->pc;
    bool shared = d->d->allow_multiple;
    if (!a->r->admin_access && (d->used || s->pod_use[dev])) return false;
    if (!shared && a->r->admin_access && in_claim(s, a, dev)) return false;
    bool takes_counters = d->d->n_consumes && !(shared && d->shares);
    if (takes_counters && !counters_fit(s, d, 0, false)) return false;
    int64_t *consumed = NULL;
    if (shared) {
        consumed = cs_arena_alloc(s->a, (d->d->n_caps + 1) * sizeof *consumed, 16);
        if (!consumed || !capacity_fits(s, a, d, consumed)) return false;
    }
    const cs_dra_claim *c = pc->claim;
    for (size_t i = 0; i < c->n_constraints; i++) {
        const cs_dra_constraint *k = &c->constraints[i];
        if (!applies(k, a)) continue;
        const char *name = k->match_attr ? k->match_attr : k->distinct_attr;
        const cs_dra_attr *v = dev_attr(s, dev, name);
        bool ok = v != NULL;
        if (ok && k->match_attr && pc->cons[i].count) ok = attr_equal(v, pc->cons[i].value);
        for (size_t j = s->n_chosen;
             ok && k->distinct_attr && j-- > 0 && s->chosen[j].a->pc == pc;) {
            if (!applies(k, s->chosen[j].a)) continue;
            const cs_dra_attr *w = dev_attr(s, s->chosen[j].dev, name);
            if (w && attr_equal(v, w)) ok = false;
        }
        if (!ok) {
            *constraint_failed = true;
            return false;
        }
    }
    for (size_t i = 0; i < c->n_constraints; i++)
        if (c->constraints[i].match_attr && applies(&c->constraints[i], a)) {
            if (!pc->cons[i].count++)
                pc->cons[i].value = dev_attr(s, dev, c->constraints[i].match_attr);
        }
    choice *ch = &s->chosen[s->n_chosen++];
    pc->n_results++;
    *ch = (choice){dev, a, false, takes_counters, consumed};
    if (takes_counters) counters_fit(s, d, 1, true);
    if (shared) {
        d->shares++;
        for (size_t k = 0; k < d->d->n_caps; k++) d->consumed[k] += consumed[k];
    } else {
        s->pod_use[dev]++;
        ch->marked_used = true;
    }
    return true;
}

static void undo(search *s)
{
    choice *ch = &s->chosen[--s->n_chosen];
    cs__dra_dev *d = &s->inv->devs[ch->dev];
    pclaim *pc = ch->a->pc;
    const cs_dra_claim *c = pc->claim;
    pc->n_results--;
    for (size_t i = 0; i < c->n_constraints; i++)
        if (c->constraints[i].match_attr && applies(&c->constraints[i], ch->a)) pc->cons[i].count--;
    if (ch->took_counters) counters_fit(s, d, -1, true);
    if (ch->consumed) {
        d->shares--;
        for (size_t k = 0; k < d->d->n_caps; k++) d->consumed[k] -= ch->consumed[k];
    }
    if (ch->marked_used) s->pod_use[ch->dev]--;
}

static int next_request(search *s, size_t ci, size_t ri);

/* Whether a matchAttribute constraint applying to a already has a value, and whether
 * device dev matches every such value. O(constraints). */
static bool any_bound(const alt *a)
{
    const cs_dra_claim *c = a->pc->claim;
    for (size_t k = 0; k < c->n_constraints; k++)
        if (c->constraints[k].match_attr && a->pc->cons[k].count && applies(&c->constraints[k], a))
            return true;
    return false;
}

static bool matches_bound(const search *s, const alt *a, size_t dev)
{
    const cs_dra_claim *c = a->pc->claim;
    for (size_t k = 0; k < c->n_constraints; k++) {
        const cs_dra_constraint *ct = &c->constraints[k];
        if (!ct->match_attr || !a->pc->cons[k].count || !applies(ct, a)) continue;
        const cs_dra_attr *v = dev_attr(s, dev, ct->match_attr);
        if (!v || !attr_equal(v, a->pc->cons[k].value)) return false;
    }
    return true;
}

/* Picks device number k of alt a (of request ri of claim ci), candidates from position
 * start on. */
static int pick(search *s, size_t ci, size_t ri, const alt *a, size_t k, size_t start)
{
    if (k == a->need) return next_request(s, ci, ri + 1);
    if (++s->steps > s->max_steps) {
        s->out_of_steps = true;
        return STOP;
    }
    if (a->r->mode == CS_DRA_ALL) {
        bool cf = false;
        if (!try_add(s, a, a->cand[k], &cf)) {
            if (!cf) return NONE;
            const cs__dra_dev *d = &s->inv->devs[a->cand[k]];
            char *msg = cs_arena_alloc(s->a, 512, 1);
            if (msg)
                snprintf(msg, 512,
                         "claim %s, request %s: cannot add device %s/%s/%s because a claim "
                         "constraint would not be satisfied",
                         a->pc->claim->name, a->name, d->slice->driver, d->slice->pool, d->d->name);
            s->failure = msg ? msg : "a claim constraint would not be satisfied";
            return STOP;
        }
        int rc = pick(s, ci, ri, a, k + 1, 0);
        if (rc != FOUND) undo(s);
        return rc;
    }
    /* With a bound value, count the matching candidates left once (O(candidates)) and
     * stop as soon as they cannot fill the request. */
    bool bound = any_bound(a);
    size_t avail = 0;
    for (size_t i = start; bound && i < a->n_cand; i++) avail += matches_bound(s, a, a->cand[i]);
    for (size_t i = start; i < a->n_cand; i++) {
        if (a->n_cand - i < a->need - k) break;
        if (bound && avail < a->need - k) break;
        if (bound && !matches_bound(s, a, a->cand[i])) continue;
        avail -= bound;
        bool cf = false;
        if (try_add(s, a, a->cand[i], &cf)) {
            int rc = pick(s, ci, ri, a, k + 1, i + 1);
            if (rc == FOUND) return FOUND;
            undo(s);
            if (rc == STOP) return STOP;
        }
    }
    return NONE;
}

/* The fewest devices requests ri.. of claim pc can take (each request's smallest
 * alternative). O(requests x alternatives). */
static size_t min_rest(const pclaim *pc, size_t ri)
{
    size_t total = 0;
    for (; ri < pc->claim->n_requests; ri++) {
        size_t least = SIZE_MAX;
        for (size_t j = 0; j < pc->n_alts[ri]; j++) {
            const alt *a = &pc->alts[ri][j];
            if (a->r->mode == CS_DRA_ALL && a->n_cand == 0) continue;
            if (a->need < least) least = a->need;
        }
        total += least == SIZE_MAX ? 0 : least;
    }
    return total;
}

/* Tries the alternatives of request ri of claim ci in order (firstAvailable order), then
 * the claims after it. An alternative that would take the claim over CS_DRA_MAX_RESULTS
 * with the fewest devices the remaining requests need has no solution and is skipped, as
 * Kubernetes skips it when the limit is reached; this prunes the same branches earlier. */
static int next_request(search *s, size_t ci, size_t ri)
{
    if (ci == s->n_pc) return FOUND;
    pclaim *pc = &s->pc[ci];
    if (ri == pc->claim->n_requests) return next_request(s, ci + 1, 0);
    size_t rest = min_rest(pc, ri + 1);
    for (size_t j = 0; j < pc->n_alts[ri]; j++) {
        const alt *a = &pc->alts[ri][j];
        if (pc->n_results + a->need + rest > CS_DRA_MAX_RESULTS) continue;
        if (a->r->mode == CS_DRA_ALL && a->n_cand == 0) continue;
        pc->selected[ri] = j;
        int rc = pick(s, ci, ri, a, 0, 0);
        if (rc != NONE) return rc;
    }
    return NONE;
}

/* ---- preparing one claim ---- */

static int fail(search *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(search *s, const char *fmt, ...)
{
    char *msg = cs_arena_alloc(s->a, CS_ERROR_MSG_MAX, 1);
    va_list ap;
    va_start(ap, fmt);
    if (msg) vsnprintf(msg, CS_ERROR_MSG_MAX, fmt, ap);
    va_end(ap);
    s->failure = msg ? msg : "out of memory";
    return STOP;
}

static const cs_dra_class *find_class(const cs_dra_set *set, const char *name)
{
    for (size_t i = 0; i < set->classes.len; i++) {
        const cs_dra_class *c = *(cs_dra_class **)cs_vec_at(&set->classes, i);
        if (strcmp(c->name, name) == 0) return c;
    }
    return NULL;
}

/* Fills alt a for (sub)request r: its class and candidates. O(devices x selectors). */
static int build_alt(search *s, const cs_dra_set *set, alt *a, cs_dra_request *r)
{
    const cs_dra_claim *claim = a->pc->claim;
    a->r = r;
    r->cls = find_class(set, r->class_name);
    if (!r->cls)
        return fail(s, "claim %s, request %s: could not retrieve device class %s: not found",
                    claim->name, a->name, r->class_name);
    if (r->mode == CS_DRA_ALL)
        for (size_t i = 0; i < s->inv->n_pools; i++) {
            const cs__dra_pool *p = &s->inv->pools[i];
            if (p->incomplete || p->invalid)
                return fail(s,
                            "claim %s, request %s: asks for all devices, but resource pool "
                            "%s/%s is currently %s%s%s",
                            claim->name, a->name, p->driver, p->name,
                            p->incomplete ? "being updated" : "invalid", p->invalid ? ": " : "",
                            p->invalid ? p->invalid : "");
        }
    a->cand = cs_arena_alloc(s->a, (s->inv->n_devs + 1) * sizeof *a->cand, 16);
    if (!a->cand) return fail(s, "out of memory");
    for (size_t dev = 0; dev < s->inv->n_devs; dev++) {
        int rc = suitable(s, a, dev, r->mode == CS_DRA_ALL);
        if (rc == STOP) return STOP;
        if (rc == FOUND) a->cand[a->n_cand++] = dev;
        if (rc == TAINTED && !s->inv->devs[dev].used) a->n_tainted++;
    }
    a->need = r->mode == CS_DRA_ALL ? a->n_cand : (size_t)r->count;
    return FOUND;
}

/* A map key for an attribute value: its type and its text. */
static const char *value_key(char *buf, size_t cap, const cs_dra_attr *v)
{
    switch (v->value.type) {
    case CS_CEL_ATTR_INT: snprintf(buf, cap, "i%" PRId64, v->value.i); break;
    case CS_CEL_ATTR_BOOL: snprintf(buf, cap, "b%d", v->value.b); break;
    default:
        snprintf(buf, cap, "%c%s", v->value.type == CS_CEL_ATTR_STRING ? 's' : 'v', v->value.s);
    }
    return buf;
}

/* Drops candidates that can never satisfy matchAttribute constraint ci: those without the
 * attribute, and, when every request it covers is a plain ExactCount request, those whose
 * value too few candidates share (per request, and in distinct devices for all of them, a
 * device that allows multiple allocations counting for every request).
 * O(candidates of the covered requests) with hash lookups. */
static int prefilter(search *s, pclaim *pc, size_t ci, uint32_t *seen, uint32_t pass)
{
    const cs_dra_constraint *k = &pc->claim->constraints[ci];
    bool plain = true;
    size_t total = 0;
    for (size_t ri = 0; ri < pc->claim->n_requests; ri++)
        for (size_t j = 0; j < pc->n_alts[ri]; j++) {
            alt *a = &pc->alts[ri][j];
            if (!applies(k, a)) continue;
            size_t n = 0;
            for (size_t i = 0; i < a->n_cand; i++)
                if (a->r->mode == CS_DRA_ALL || dev_attr(s, a->cand[i], k->match_attr))
                    a->cand[n++] = a->cand[i];
            a->n_cand = n;
            plain &= pc->n_alts[ri] == 1 && a->r->mode == CS_DRA_EXACT_COUNT;
            total += a->need;
        }
    if (!plain || total == 0) return FOUND;
    cs_map ids;
    cs_map_init(&ids);
    size_t n_values = 0, n_alts = 0;
    char key[300];
    /* Pass 1: value ids and, per value, distinct devices over all covered requests. */
    size_t *uni = cs_arena_zalloc(s->a, (s->inv->n_devs + 1) * sizeof *uni, 16);
    size_t *vid = cs_arena_zalloc(s->a, (s->inv->n_devs + 1) * sizeof *vid, 16);
    if (!uni || !vid) goto nomem;
    for (size_t ri = 0; ri < pc->claim->n_requests; ri++) {
        alt *a = &pc->alts[ri][0];
        if (!applies(k, a)) continue;
        n_alts++;
        for (size_t i = 0; i < a->n_cand; i++) {
            size_t dev = a->cand[i];
            if (seen[dev] == pass) continue;
            seen[dev] = pass;
            value_key(key, sizeof key, dev_attr(s, dev, k->match_attr));
            size_t id = (size_t)(uintptr_t)cs_map_get(&ids, key);
            if (!id) {
                id = ++n_values;
                if (cs_map_put(&ids, key, (void *)(uintptr_t)id) != CS_OK) goto nomem;
            }
            vid[dev] = id - 1;
            /* A device that allows multiple allocations can serve every request. */
            uni[id - 1] += s->inv->devs[dev].d->allow_multiple ? total : 1;
        }
    }
    /* Pass 2: per request, candidates per value; a value short anywhere is infeasible. */
    bool *bad = cs_arena_zalloc(s->a, n_values + 1, 1);
    size_t *cnt = cs_arena_zalloc(s->a, (n_values + 1) * sizeof *cnt, 16);
    if (!bad || !cnt) goto nomem;
    for (size_t v = 0; v < n_values; v++) bad[v] = uni[v] < total;
    for (size_t ri = 0; ri < pc->claim->n_requests; ri++) {
        alt *a = &pc->alts[ri][0];
        if (!applies(k, a)) continue;
        memset(cnt, 0, n_values * sizeof *cnt);
        for (size_t i = 0; i < a->n_cand; i++) cnt[vid[a->cand[i]]]++;
        for (size_t v = 0; v < n_values; v++) bad[v] |= cnt[v] < a->need;
    }
    for (size_t ri = 0; ri < pc->claim->n_requests; ri++) {
        alt *a = &pc->alts[ri][0];
        if (!applies(k, a)) continue;
        size_t n = 0;
        for (size_t i = 0; i < a->n_cand; i++)
            if (!bad[vid[a->cand[i]]]) a->cand[n++] = a->cand[i];
        a->n_cand = n;
    }
    cs_map_free(&ids);
    return FOUND;
nomem:
    cs_map_free(&ids);
    return fail(s, "out of memory");
}

/* ---- best fit: candidate order ---- */

typedef struct fit_key {
    int fresh;     /* 0: shares a device or counter set already in use */
    int cold_root; /* 0: another device under the same PCIe root is in use */
    int cold_pool; /* 0: another device of the same pool (node) is in use */
    int64_t size;  /* total capacity and counters, milli-units */
    size_t order, dev;
} fit_key;

static int cmp_fit(const void *x, const void *y)
{
    const fit_key *a = x, *b = y;
    if (a->fresh != b->fresh) return a->fresh - b->fresh;
    if (a->cold_root != b->cold_root) return a->cold_root - b->cold_root;
    if (a->cold_pool != b->cold_pool) return a->cold_pool - b->cold_pool;
    if (a->size != b->size) return a->size < b->size ? -1 : 1;
    return a->order < b->order ? -1 : a->order > b->order;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

#define PCIE_ROOT "resource.kubernetes.io/pcieRoot"

static const char *pcie_root(const cs_dra_device *d)
{
    for (size_t i = 0; i < d->n_attrs; i++)
        if (!strcmp(d->attrs[i].name, PCIE_ROOT) && d->attrs[i].value.type == CS_CEL_ATTR_STRING)
            return d->attrs[i].value.s;
    return NULL;
}

/* Marks which pools and which (pool, PCIe root) groups have a device in use. O(devices)
 * per request with one map lookup each; the pool marks are a plain array. */
static int mark_busy(search *s, bool *pool_busy, cs_map *root_busy)
{
    for (size_t i = 0; i < s->inv->n_devs; i++) {
        const cs__dra_dev *d = &s->inv->devs[i];
        if (d->foreign || (!d->used && !d->shares)) continue;
        pool_busy[d->pool] = true;
        const char *root = pcie_root(d->d);
        char key[512];
        if (!root) continue;
        snprintf(key, sizeof key, "%zu\x1f%s", d->pool, root);
        if (cs_map_put(root_busy, key, (void *)1) != CS_OK) return fail(s, "out of memory");
    }
    return FOUND;
}

static int sort_best_fit(search *s, alt *a)
{
    fit_key *keys = cs_arena_alloc(s->a, (a->n_cand + 1) * sizeof *keys, 16);
    bool *pool_busy = cs_arena_zalloc(s->a, s->inv->n_pools + 1, 1);
    if (!keys || !pool_busy) return fail(s, "out of memory");
    cs_map root_busy;
    cs_map_init(&root_busy);
    if (mark_busy(s, pool_busy, &root_busy) == STOP) {
        cs_map_free(&root_busy);
        return STOP;
    }
    for (size_t i = 0; i < a->n_cand; i++) {
        const cs__dra_dev *d = &s->inv->devs[a->cand[i]];
        const cs__dra_pool *p = &s->inv->pools[d->pool];
        fit_key *k = &keys[i];
        *k = (fit_key){1, 1, !pool_busy[d->pool], 0, i, a->cand[i]};
        const char *root = pcie_root(d->d);
        if (root) {
            char key[512];
            snprintf(key, sizeof key, "%zu\x1f%s", d->pool, root);
            k->cold_root = cs_map_get(&root_busy, key) == NULL;
        }
        if (d->shares) k->fresh = 0;
        for (size_t c = 0; c < d->d->n_caps; c++)
            k->size = sat_add(k->size, d->d->caps[c].value.milli);
        for (size_t c = 0; c < d->d->n_consumes; c++) {
            const cs_dra_counter_set *cs = &d->d->consumes[c];
            int si = cs__dra_find_set(p, cs->name);
            for (size_t j = 0; j < cs->n_counters; j++) {
                k->size = sat_add(k->size, cs->counters[j].value.milli);
                int ci = si >= 0 ? cs__dra_find_counter(p->sets[si], cs->counters[j].name) : -1;
                if (ci >= 0 && p->used[si][ci] > 0) k->fresh = 0;
            }
        }
    }
    cs_map_free(&root_busy);
    qsort(keys, a->n_cand, sizeof *keys, cmp_fit);
    for (size_t i = 0; i < a->n_cand; i++) a->cand[i] = keys[i].dev;
    return FOUND;
}

/* ---- one claim ---- */

static char *set_strdup(cs_dra_set *set, const char *s)
{
    return cs_arena_strndup(&set->arena, s, strlen(s));
}

/* A share ID as Kubernetes writes one (a UUID), derived from the claim, the result's
 * position and the device, so that the same input gives the same output. */
static const char *share_id(cs_dra_set *set, const cs_dra_claim *c, size_t i, const cs__dra_dev *d)
{
    uint64_t h[2] = {14695981039346656037ull, 1099511628211ull * 31};
    char buf[900];
    snprintf(buf, sizeof buf, "%s/%s/%zu/%s/%s/%s", c->namespace_ ? c->namespace_ : "", c->name, i,
             d->slice->driver, d->slice->pool, d->d->name);
    for (int k = 0; k < 2; k++)
        for (const char *p = buf; *p; p++) h[k] = (h[k] ^ (unsigned char)*p) * 1099511628211ull;
    snprintf(buf, sizeof buf,
             "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-%04" PRIx64 "-%012" PRIx64, h[0] >> 32,
             (h[0] >> 16) & 0xffff, h[0] & 0xfff, 0x8000 | (h[1] >> 48 & 0x3fff),
             (uint64_t)(h[1] & 0xffffffffffffull));
    return set_strdup(set, buf);
}

/* Copies the choices of claim pc, chosen[first, first + pc->n_results), into the claim
 * (in the set's arena). */
static cs_status record(cs_dra_set *set, search *s, pclaim *pc, size_t first)
{
    cs_arena *a = &set->arena;
    cs_dra_claim *claim = pc->claim;
    size_t n = pc->n_results;
    claim->results = cs_arena_zalloc(a, (n + 1) * sizeof *claim->results, 16);
    claim->chosen = cs_arena_zalloc(a, (claim->n_requests + 1) * sizeof *claim->chosen, 16);
    claim->chosen_names =
        cs_arena_zalloc(a, (claim->n_requests + 1) * sizeof *claim->chosen_names, 16);
    if (!claim->results || !claim->chosen || !claim->chosen_names) return CS_ERR_NOMEM;
    for (size_t ri = 0; ri < claim->n_requests; ri++) {
        const alt *al = &pc->alts[ri][pc->selected[ri]];
        claim->chosen[ri] = al->r;
        claim->chosen_names[ri] = set_strdup(set, al->name);
    }
    for (size_t i = 0; i < n; i++) {
        const choice *ch = &s->chosen[first + i];
        const cs__dra_dev *d = &s->inv->devs[ch->dev];
        cs_dra_result *r = &claim->results[i];
        r->request = set_strdup(set, ch->a->name);
        r->driver = d->slice->driver;
        r->pool = d->slice->pool;
        r->device = d->d->name;
        r->admin_access = ch->a->r->admin_access;
        r->req = ch->a->r;
        r->slice = d->slice;
        r->dev = d->d;
        if (!r->request) return CS_ERR_NOMEM;
        if (!ch->consumed) continue;
        r->share_id = share_id(set, claim, i, d);
        r->consumed = cs_arena_zalloc(a, (d->d->n_caps + 1) * sizeof *r->consumed, 16);
        if (!r->share_id || !r->consumed) return CS_ERR_NOMEM;
        r->n_consumed = d->d->n_caps;
        for (size_t k = 0; k < d->d->n_caps; k++) {
            r->consumed[k].name = d->d->caps[k].name;
            r->consumed[k].value = (cs_quantity){ch->consumed[k], d->d->caps[k].value.format};
        }
    }
    claim->n_results = n;
    return CS_OK;
}

/* Whether too few of a's candidates can take it now because the claims held have used
 * up their capacity, and if so the reason, naming the requested amount and the device
 * with the most left. O(candidates x capacities). */
static bool capacity_short(search *s, const alt *a)
{
    if (a->r->mode == CS_DRA_ALL || !a->r->n_cap_requests) return false;
    const cs_dra_qty_entry *q = &a->r->cap_requests[0];
    size_t fit = 0;
    const cs__dra_dev *best = NULL;
    int64_t best_free = -1, best_total = 0;
    for (size_t i = 0; i < a->n_cand; i++) {
        const cs__dra_dev *d = &s->inv->devs[a->cand[i]];
        if (!d->d->allow_multiple) {
            fit += !d->used;
            continue;
        }
        int64_t *use = cs_arena_alloc(s->a, (d->d->n_caps + 1) * sizeof *use, 16);
        if (!use) return false;
        if (capacity_fits(s, a, d, use)) {
            fit++;
            continue;
        }
        for (size_t k = 0; k < d->d->n_caps; k++)
            if (cs__dra_find_cap(d->d, d->slice->driver, q->name) == &d->d->caps[k] &&
                d->d->caps[k].value.milli - d->consumed[k] > best_free) {
                best = d;
                best_free = d->d->caps[k].value.milli - d->consumed[k];
                best_total = d->d->caps[k].value.milli;
            }
    }
    if (fit >= a->need) return false;
    char want[64], left[64] = "", total[64] = "", most[400] = "";
    cs_quantity_format(q->value, want, sizeof want);
    if (best) {
        cs_quantity_format((cs_quantity){best_free, q->value.format}, left, sizeof left);
        cs_quantity_format((cs_quantity){best_total, q->value.format}, total, sizeof total);
        snprintf(most, sizeof most, " (the most free: %s/%s/%s with %s of %s)", best->slice->driver,
                 best->slice->pool, best->d->name, left, total);
    }
    if (a->need == 1)
        fail(s, "cannot be allocated: request %s: no device of class %s has %s %s free%s", a->name,
             a->r->cls->name, want, q->name, most);
    else
        fail(s,
             "cannot be allocated: request %s: %zu devices of class %s have %s %s free, %zu "
             "needed%s",
             a->name, fit, a->r->cls->name, want, q->name, a->need, most);
    return true;
}

/* Why claim pc has no solution on its own, for people, or NULL when each request alone
 * could be met. */
static const char *why_not(search *s, const pclaim *pc)
{
    const cs_dra_claim *c = pc->claim;
    for (size_t ri = 0; ri < c->n_requests; ri++) {
        bool short_all = true;
        const alt *a0 = &pc->alts[ri][0];
        for (size_t j = 0; j < pc->n_alts[ri]; j++) {
            const alt *a = &pc->alts[ri][j];
            short_all &= a->r->mode == CS_DRA_ALL ? a->n_cand == 0 : a->n_cand < a->need;
        }
        if (short_all) {
            char tainted[96] = "";
            if (a0->n_tainted)
                snprintf(tainted, sizeof tainted,
                         "; %zu more refused because of taints the request does not tolerate",
                         a0->n_tainted);
            const char *name = a0->r == &c->requests[ri] ? a0->name : c->requests[ri].name;
            if (a0->r->mode == CS_DRA_ALL)
                fail(s,
                     "cannot be allocated: request %s: needs all matching devices, and none "
                     "is free%s",
                     name, tainted);
            else
                fail(s, "cannot be allocated: request %s: %zu matching devices free, %zu needed%s",
                     name, a0->n_cand, a0->need, tainted);
            return s->failure;
        }
    }
    for (size_t ri = 0; ri < c->n_requests; ri++)
        if (pc->n_alts[ri] == 1 && capacity_short(s, &pc->alts[ri][0])) return s->failure;
    return NULL;
}

static int prepare(cs_dra_set *set, search *s, pclaim *pc, const cs_dra_options *opt,
                   uint32_t *seen, uint32_t *pass)
{
    cs_dra_claim *claim = pc->claim;
    size_t nr = claim->n_requests;
    pc->alts = cs_arena_zalloc(s->a, (nr + 1) * sizeof *pc->alts, 16);
    pc->n_alts = cs_arena_zalloc(s->a, (nr + 1) * sizeof *pc->n_alts, 16);
    pc->selected = cs_arena_zalloc(s->a, (nr + 1) * sizeof *pc->selected, 16);
    if (!pc->alts || !pc->n_alts || !pc->selected) return fail(s, "out of memory");
    size_t min_total = 0;
    for (size_t ri = 0; ri < nr; ri++) {
        cs_dra_request *r = &claim->requests[ri];
        size_t n = r->n_subs ? r->n_subs : 1, min_need = SIZE_MAX;
        pc->alts[ri] = cs_arena_zalloc(s->a, n * sizeof **pc->alts, 16);
        if (!pc->alts[ri]) return fail(s, "out of memory");
        pc->n_alts[ri] = n;
        for (size_t j = 0; j < n; j++) {
            alt *a = &pc->alts[ri][j];
            cs_dra_request *sub = r->n_subs ? &r->subs[j] : r;
            a->pc = pc;
            a->base = r->name;
            a->name = r->name;
            if (r->n_subs) {
                size_t len = strlen(r->name) + strlen(sub->name) + 2;
                char *nm = cs_arena_alloc(s->a, len, 1);
                if (!nm) return fail(s, "out of memory");
                snprintf(nm, len, "%s/%s", r->name, sub->name);
                a->name = nm;
            }
            int rc = build_alt(s, set, a, sub);
            if (rc == STOP) return STOP;
            if (opt->policy == CS_DRA_POLICY_BEST_FIT && sort_best_fit(s, a) == STOP) return STOP;
            if (a->need < min_need) min_need = a->need;
        }
        min_total += min_need;
    }
    if (min_total > CS_DRA_MAX_RESULTS)
        return fail(s, "claim %s: number of requested devices %zu exceeds the claim limit of %d",
                    claim->name, min_total, CS_DRA_MAX_RESULTS);
    for (size_t ci = 0; ci < claim->n_constraints; ci++)
        if (claim->constraints[ci].match_attr && prefilter(s, pc, ci, seen, ++*pass) == STOP)
            return STOP;
    return FOUND;
}

/* Sets every claim of the pod to state with reason (in the set's arena); with a culprit,
 * the others say that claim is why. */
static cs_status settle(cs_dra_set *set, cs_dra_claim **claims, size_t n, cs_dra_claim_state state,
                        const char *why, const cs_dra_claim *culprit)
{
    for (size_t i = 0; i < n; i++) {
        char other[CS_ERROR_MSG_MAX];
        const char *reason = why;
        if (culprit && culprit != claims[i]) {
            snprintf(other, sizeof other,
                     "cannot be allocated: claim %s of the same pod cannot be allocated: %s",
                     culprit->name, why);
            reason = other;
        }
        claims[i]->state = state;
        claims[i]->reason = set_strdup(set, reason);
        if (!claims[i]->reason) return CS_ERR_NOMEM;
    }
    return CS_OK;
}

/* Allocates the claims of one pod together, all or none, as Kubernetes' Allocate does
 * for a pod's claims: one search over every request of every claim. */
static cs_status allocate_pod(cs_dra_set *set, cs__dra_inv *inv, cs_dra_claim **claims, size_t n,
                              const cs_dra_options *opt, cs_arena *scratch, uint32_t *pod_use,
                              uint32_t *seen, uint32_t *pass)
{
    search s = {.inv = inv, .a = scratch, .pod_use = pod_use};
    s.max_steps = opt->max_steps ? opt->max_steps : CS_DRA_DEFAULT_STEPS;
    s.pc = cs_arena_zalloc(scratch, (n + 1) * sizeof *s.pc, 16);
    s.chosen = cs_arena_alloc(scratch, (n * CS_DRA_MAX_RESULTS + 1) * sizeof *s.chosen, 16);
    int rc = s.pc && s.chosen ? FOUND : fail(&s, "out of memory");
    if (rc != STOP) s.n_pc = n;
    for (size_t i = 0; rc != STOP && i < n; i++) {
        s.pc[i].claim = claims[i];
        rc = prepare(set, &s, &s.pc[i], opt, seen, pass);
    }
    if (rc != STOP) rc = next_request(&s, 0, 0);
    cs_status st = CS_OK;
    if (rc == FOUND) {
        for (size_t i = 0, first = 0; st == CS_OK && i < n; first += s.pc[i++].n_results) {
            st = record(set, &s, &s.pc[i], first);
            if (st == CS_OK) st = cs__dra_assign_cpus(set, inv, claims[i]);
            claims[i]->state = CS_DRA_ALLOCATED;
        }
        /* Dedicated devices are now in use for later pods; admin access never makes a
         * device busy. */
        for (size_t i = 0; i < s.n_chosen; i++) {
            const choice *ch = &s.chosen[i];
            if (ch->marked_used) pod_use[ch->dev] = 0;
            if (ch->a->r->admin_access) {
                if (ch->took_counters) counters_fit(&s, &inv->devs[ch->dev], -1, true);
            } else if (ch->marked_used) {
                inv->devs[ch->dev].used = true;
            }
        }
    } else if (s.failure && !s.out_of_steps) {
        st = settle(set, claims, n, CS_DRA_FAILED, s.failure, NULL);
    } else {
        /* As Kubernetes: no solution while some pool is invalid is an error, because the
         * invalid pool might have held one. */
        for (size_t i = 0; !s.out_of_steps && i < inv->n_pools; i++)
            if (inv->pools[i].invalid) {
                fail(&s, "invalid resource pools were encountered: %s/%s: %s", inv->pools[i].driver,
                     inv->pools[i].name, inv->pools[i].invalid);
                st = settle(set, claims, n, CS_DRA_FAILED, s.failure, NULL);
                goto out;
            }
        const char *why = NULL;
        const cs_dra_claim *culprit = NULL;
        if (s.out_of_steps) {
            fail(&s, "cannot be allocated: no solution found within %" PRIu64 " search steps",
                 s.max_steps);
            why = s.failure;
        }
        for (size_t i = 0; !why && i < s.n_pc; i++)
            if ((why = why_not(&s, &s.pc[i])) != NULL && n > 1) culprit = claims[i];
        if (!why)
            why = n == 1 ? "cannot be allocated: the matching devices are in use, or no "
                           "combination of them satisfies the claim's constraints"
                         : "cannot be allocated: the pod's claims cannot be allocated "
                           "together: the matching devices are in use, or no combination of "
                           "them satisfies the claims' constraints";
        st = settle(set, claims, n, CS_DRA_UNALLOCATABLE, why, culprit);
    }
out:
    cs_arena_reset(scratch);
    return st;
}

cs_status cs_dra_allocate(cs_dra_set *set, const cs_dra_options *opt, cs_error *err)
{
    cs_arena inv_arena, scratch;
    cs_arena_init(&inv_arena, 64 * 1024);
    cs_arena_init(&scratch, 64 * 1024);
    cs__dra_inv inv;
    cs_status rc = cs__dra_inventory(set, opt, &inv_arena, &inv, err);
    uint32_t *pod_use = NULL, *seen = NULL, pass = 0;
    cs_dra_claim **pending = NULL;
    size_t n_pending = 0;
    if (rc == CS_OK) {
        pod_use = cs_arena_zalloc(&inv_arena, (inv.n_devs + 1) * sizeof *pod_use, 16);
        seen = cs_arena_zalloc(&inv_arena, (inv.n_devs + 1) * sizeof *seen, 16);
        pending = cs_arena_alloc(&inv_arena, (set->claims.len + 1) * sizeof *pending, 16);
        if (!pod_use || !seen || !pending)
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory allocating claims");
    }
    for (size_t i = 0; rc == CS_OK && i < set->claims.len; i++) {
        cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set->claims, i);
        if (c->state == CS_DRA_PENDING) pending[n_pending++] = c;
    }
    /* One pod holding every pending claim, or a pod per claim in file order. */
    size_t per_pod = opt->pod ? n_pending : 1;
    for (size_t i = 0; rc == CS_OK && i < n_pending; i += per_pod) {
        rc = allocate_pod(set, &inv, pending + i, per_pod, opt, &scratch, pod_use, seen, &pass);
        if (rc != CS_OK)
            cs_error_set(err, rc, "ResourceClaim %s: out of memory recording the allocation",
                         pending[i]->name);
    }
    cs__dra_inventory_free(&inv);
    cs_arena_free(&scratch);
    cs_arena_free(&inv_arena);
    return rc;
}
