/*
 * placement.c - instances' claims as structs (see placement.h).
 *
 * A claim is built as a document tree from the request structs, in the arena of the set
 * the state allocates it in, and decoded by the same reader and checks a YAML claim goes
 * through, so both kinds of claim mean the same and are held (and listed) the same way.
 * The answer is copied out of the allocated claim before its set goes. A deployment's
 * JSON requests are turned into the same tree shape and decoded by the same request
 * decoder, so their errors carry the deployment's field path. Every call is O(the claim)
 * on top of what cs_dra_state's creation costs (O(fleet + claims held), under its lock).
 */
#include "devices/placement.h"

#include "devices/dra_int.h"

#include <stdio.h>
#include <string.h>

/* ---- requests to a document tree ---- */

typedef struct build {
    cs_arena *a;
    bool nomem;
} build;

static cs_ynode *node(build *b, cs_ynode_kind kind, size_t cap)
{
    cs_ynode *n = cs_ynode_new(b->a, kind, cap);
    b->nomem |= !n;
    return n;
}

/* A scalar copied into the arena; quoted ones are strings, plain ones keep YAML types. */
static cs_ynode *scalar(build *b, const char *s, bool quoted)
{
    const char *t = s ? cs_arena_strndup(b->a, s, strlen(s)) : NULL;
    cs_ynode *n = t ? cs_ynode_scalar(b->a, t, quoted) : NULL;
    b->nomem |= !n;
    return n;
}

static void put(cs_ynode *m, const char *key, cs_ynode *v)
{
    if (m && v) cs_ynode_put(m, key, v);
}

static void append(cs_ynode *seq, cs_ynode *v)
{
    if (seq && v) cs_ynode_append(seq, v);
}

static cs_ynode *tolerations(build *b, const cs_dra_request *r)
{
    if (r->tolerations_node) return r->tolerations_node;
    cs_ynode *seq = node(b, CS_YNODE_SEQ, r->n_tolerations);
    for (size_t i = 0; i < r->n_tolerations; i++) {
        const cs_dra_toleration *t = &r->tolerations[i];
        cs_ynode *m = node(b, CS_YNODE_MAP, 4);
        if (t->key) put(m, "key", scalar(b, t->key, true));
        if (t->op) put(m, "operator", scalar(b, t->op, true));
        if (t->value) put(m, "value", scalar(b, t->value, true));
        if (t->effect) put(m, "effect", scalar(b, t->effect, true));
        append(seq, m);
    }
    return seq;
}

/* The fields of an `exactly` request or a firstAvailable sub-request (with its name). */
static cs_ynode *exact(build *b, const cs_dra_request *r, bool sub)
{
    cs_ynode *m = node(b, CS_YNODE_MAP, 9);
    if (sub) put(m, "name", scalar(b, r->name, true));
    put(m, "deviceClassName", scalar(b, r->class_name ? r->class_name : "", true));
    if (r->n_selectors) {
        cs_ynode *sels = node(b, CS_YNODE_SEQ, r->n_selectors);
        for (size_t i = 0; i < r->n_selectors; i++) {
            cs_ynode *sel = node(b, CS_YNODE_MAP, 1), *cel = node(b, CS_YNODE_MAP, 1);
            put(cel, "expression", scalar(b, r->selectors[i].expr, true));
            put(sel, "cel", cel);
            append(sels, sel);
        }
        put(m, "selectors", sels);
    }
    if (r->mode == CS_DRA_ALL) put(m, "allocationMode", scalar(b, "All", true));
    if (r->mode == CS_DRA_EXACT_COUNT && r->count != CS_DRA_COUNT_UNSET && r->count != 0) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)r->count);
        put(m, "count", scalar(b, num, false));
    }
    if (r->admin_access) put(m, "adminAccess", scalar(b, "true", false));
    if (r->n_tolerations || r->tolerations_node) put(m, "tolerations", tolerations(b, r));
    if (r->n_cap_requests) {
        cs_ynode *cap = node(b, CS_YNODE_MAP, 1), *reqs = node(b, CS_YNODE_MAP, r->n_cap_requests);
        for (size_t i = 0; i < r->n_cap_requests; i++) {
            char q[64];
            cs_quantity_format(r->cap_requests[i].value, q, sizeof q);
            const char *key =
                cs_arena_strndup(b->a, r->cap_requests[i].name, strlen(r->cap_requests[i].name));
            b->nomem |= !key;
            if (key) put(reqs, key, scalar(b, q, true));
        }
        put(cap, "requests", reqs);
        put(m, "capacity", cap);
    }
    return m;
}

static cs_ynode *request(build *b, const cs_dra_request *r)
{
    cs_ynode *m = node(b, CS_YNODE_MAP, 2);
    put(m, "name", scalar(b, r->name ? r->name : "", true));
    if (!r->n_subs) {
        put(m, "exactly", exact(b, r, false));
        return m;
    }
    cs_ynode *subs = node(b, CS_YNODE_SEQ, r->n_subs);
    for (size_t i = 0; i < r->n_subs; i++) append(subs, exact(b, &r->subs[i], true));
    put(m, "firstAvailable", subs);
    return m;
}

typedef struct claim_io {
    const char *name;
    const cs_dra_request *requests;
    size_t n;
    cs_placement *out;
} claim_io;

static cs_status build_claim(cs_arena *a, void *ud, cs_ynode **doc, cs_error *err)
{
    const claim_io *io = ud;
    build b = {a, false};
    cs_ynode *d = node(&b, CS_YNODE_MAP, 4), *md = node(&b, CS_YNODE_MAP, 1);
    cs_ynode *spec = node(&b, CS_YNODE_MAP, 1), *devs = node(&b, CS_YNODE_MAP, 1);
    cs_ynode *reqs = node(&b, CS_YNODE_SEQ, io->n);
    put(d, "apiVersion", scalar(&b, "resource.k8s.io/v1", true));
    put(d, "kind", scalar(&b, "ResourceClaim", true));
    put(md, "name", scalar(&b, io->name, true));
    put(d, "metadata", md);
    for (size_t i = 0; i < io->n; i++) append(reqs, request(&b, &io->requests[i]));
    put(devs, "requests", reqs);
    put(spec, "devices", devs);
    put(d, "spec", spec);
    if (b.nomem)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory building claim %s", io->name);
    *doc = d;
    return CS_OK;
}

/* ---- the allocation to a cs_placement ---- */

static const char *copy(cs_placement *p, const char *s)
{
    return s ? cs_arena_strndup(&p->arena, s, strlen(s)) : NULL;
}

/* The memory a result holds of its device: what it consumed of a shared one, all of an
 * exclusive one. In bytes. */
static int64_t memory_of(const cs_dra_result *r)
{
    for (size_t i = 0; i < r->n_consumed; i++)
        if (strcmp(r->consumed[i].name, "memory") == 0) return r->consumed[i].value.milli / 1000;
    const cs_dra_capacity *cap = cs__dra_find_cap(r->dev, r->driver, "memory");
    return cap ? cap->value.milli / 1000 : 0;
}

static cs_status take_claim(const cs_dra_claim *claim, void *ud, cs_error *err)
{
    cs_placement *p = ((claim_io *)ud)->out;
    size_t n = claim->n_results, n_cpus = 0;
    for (size_t i = 0; i < n; i++) n_cpus += claim->results[i].n_cpus;
    p->devices = cs_arena_zalloc(&p->arena, (n + 1) * sizeof *p->devices, 16);
    p->cpus = cs_arena_zalloc(&p->arena, (n_cpus + 1) * sizeof *p->cpus, 16);
    bool nomem = !p->devices || !p->cpus;
    for (size_t i = 0; !nomem && i < n; i++) {
        const cs_dra_result *r = &claim->results[i];
        cs_placement_device *d = &p->devices[i];
        d->request = copy(p, r->request);
        d->driver = copy(p, r->driver);
        d->pool = copy(p, r->pool);
        d->device = copy(p, r->device);
        d->share_id = copy(p, r->share_id);
        nomem =
            !d->request || !d->driver || !d->pool || !d->device || (r->share_id && !d->share_id);
        d->cpus = p->cpus + p->n_cpus;
        d->n_cpus = r->n_cpus;
        if (r->n_cpus) memcpy(p->cpus + p->n_cpus, r->cpus, r->n_cpus * sizeof *r->cpus);
        p->n_cpus += r->n_cpus;
        if (r->n_cpus == 0) d->cpus = NULL;
        if (p->gpu < 0 && strcmp(r->driver, CS_PLACEMENT_GPU_DRIVER) == 0) {
            const cs_dra_attr *index = cs__dra_find_attr(r->dev, r->driver, "index");
            p->gpu = index && index->value.type == CS_CEL_ATTR_INT ? (int)index->value.i : 0;
            p->gpu_memory = memory_of(r);
        }
    }
    if (nomem) return cs_error_set(err, CS_ERR_NOMEM, "out of memory placing %s", claim->name);
    p->n_devices = n;
    return CS_OK;
}

static void placement_init(cs_placement *p)
{
    memset(p, 0, sizeof *p);
    cs_arena_init(&p->arena, 4096);
    p->gpu = -1;
}

cs_status cs_placement_claim(cs_dra_state *st, const char *claim_name,
                             const cs_dra_request *requests, size_t n, cs_placement *out,
                             cs_error *err)
{
    placement_init(out);
    claim_io io = {claim_name ? claim_name : "", requests, n, out};
    cs__dra_claim_io hooks = {build_claim, take_claim, &io};
    bool created = false;
    cs_status rc = cs__dra_state_claim(st, &hooks, &created, err);
    if (rc == CS_OK && !created) rc = err->code = CS_ERR_NO_FIT; /* err has the reason */
    if (rc != CS_OK) {
        cs_placement_free(out);
        placement_init(out);
    }
    return rc;
}

cs_status cs_placement_release(cs_dra_state *st, const char *claim_name, cs_error *err)
{
    return cs_dra_state_delete(st, CS_DRA_KIND_CLAIM, claim_name, NULL, err);
}

void cs_placement_free(cs_placement *p)
{
    cs_arena_free(&p->arena);
    memset(p, 0, sizeof *p);
    p->gpu = -1;
}

/* ---- a deployment's JSON requests ---- */

/* JSON to the reader's tree: strings stay strings, numbers and booleans plain scalars. */
static cs_ynode *from_json(build *b, const json_t *j)
{
    char num[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        cs_ynode *m = node(b, CS_YNODE_MAP, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k, v)
        {
            const char *key = cs_arena_strndup(b->a, k, strlen(k));
            b->nomem |= !key;
            if (key) put(m, key, from_json(b, v));
        }
        return m;
    }
    case JSON_ARRAY: {
        cs_ynode *seq = node(b, CS_YNODE_SEQ, json_array_size(j));
        for (size_t i = 0; i < json_array_size(j); i++)
            append(seq, from_json(b, json_array_get(j, i)));
        return seq;
    }
    case JSON_STRING: return scalar(b, json_string_value(j), true);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(j));
        return scalar(b, num, false);
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(j));
        return scalar(b, num, false);
    case JSON_TRUE: return scalar(b, "true", false);
    case JSON_FALSE: return scalar(b, "false", false);
    default: return scalar(b, "null", false);
    }
}

cs_status cs_placement_parse_requests(const json_t *requests, const char *path, cs_arena *a,
                                      cs_dra_request **out, size_t *n, cs_error *err)
{
    *out = NULL;
    *n = 0;
    build b = {a, false};
    cs_ynode *seq = requests ? from_json(&b, requests) : NULL;
    if (b.nomem) return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading %s", path);
    if (!seq) return cs_error_set(err, CS_ERR_INVALID, "%s: required", path);
    cs__dra_ctx c = {.a = a, .err = err};
    snprintf(c.path, sizeof c.path, "%s", path);
    /* The selectors are compiled to check them; the claim compiles them again. */
    cs_dra_set programs;
    cs_dra_set_init(&programs);
    cs_status rc = cs__dra_decode_requests(&programs, &c, seq, out, n);
    for (size_t i = 0; i < *n; i++) {
        cs_dra_request *r = &(*out)[i];
        for (size_t k = 0; k < r->n_selectors; k++) r->selectors[k].prog = NULL;
        for (size_t j = 0; j < r->n_subs; j++)
            for (size_t k = 0; k < r->subs[j].n_selectors; k++) r->subs[j].selectors[k].prog = NULL;
    }
    cs_dra_set_free(&programs);
    if (rc != CS_OK) {
        *out = NULL;
        *n = 0;
    }
    return rc;
}
