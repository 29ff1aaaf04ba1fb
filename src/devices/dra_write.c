/*
 * dra_write.c - ResourceClaims back to Kubernetes YAML or JSON.
 *
 * A claim is written as it was read (every field, in its order) with status.allocation
 * added for claims allocated here, shaped as Kubernetes' allocator shapes it: results in
 * allocation order, then the configs (class configs first, once per class, then the
 * claim's own configs for the chosen requests, as 1.34 lists them), and a node selector for
 * node-local devices, and status.devices with the CPUs of the cores each result took (data.cpus). A
 * claim that could not be allocated gets the annotation
 * dra.capstan.io/unallocated with the reason. The new nodes are built in a scratch arena
 * that lives for one call; cost O(output).
 */
#include "devices/dra_int.h"

#include <stdio.h>
#include <string.h>

typedef struct wctx {
    cs_arena a;
    bool nomem;
} wctx;

static cs_ynode *node(wctx *w, cs_ynode_kind kind, size_t cap)
{
    cs_ynode *n = cs_ynode_new(&w->a, kind, cap);
    if (!n) w->nomem = true;
    return n;
}

static cs_ynode *str(wctx *w, const char *s)
{
    cs_ynode *n = s ? cs_ynode_scalar(&w->a, s, true) : NULL;
    if (!n) w->nomem = true;
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

/* A shallow copy of map m with room for `extra` more keys (an empty map when m is NULL). */
static cs_ynode *copy_map(wctx *w, const cs_ynode *m, size_t extra)
{
    size_t n = m && m->kind == CS_YNODE_MAP ? m->n : 0;
    cs_ynode *c = node(w, CS_YNODE_MAP, n + extra);
    for (size_t i = 0; c && i < n; i++) cs_ynode_put(c, m->keys[i], m->items[i]);
    return c;
}

static cs_ynode *quantity(wctx *w, cs_quantity q)
{
    char buf[64];
    cs_quantity_format(q, buf, sizeof buf);
    return str(w, cs_arena_strndup(&w->a, buf, strlen(buf)));
}

static cs_ynode *result_node(wctx *w, const cs_dra_result *r)
{
    cs_ynode *m = node(w, CS_YNODE_MAP, 8);
    put(m, "request", str(w, r->request));
    put(m, "driver", str(w, r->driver));
    put(m, "pool", str(w, r->pool));
    put(m, "device", str(w, r->device));
    if (r->admin_access) put(m, "adminAccess", cs_ynode_scalar(&w->a, "true", false));
    if (r->req && r->req->tolerations_node) put(m, "tolerations", r->req->tolerations_node);
    if (r->share_id) put(m, "shareID", str(w, r->share_id));
    if (r->dev && r->dev->binding_conditions)
        put(m, "bindingConditions", (cs_ynode *)r->dev->binding_conditions);
    if (r->dev && r->dev->binding_failure_conditions)
        put(m, "bindingFailureConditions", (cs_ynode *)r->dev->binding_failure_conditions);
    if (r->n_consumed) {
        cs_ynode *cc = node(w, CS_YNODE_MAP, r->n_consumed);
        for (size_t i = 0; i < r->n_consumed; i++)
            put(cc, r->consumed[i].name, quantity(w, r->consumed[i].value));
        put(m, "consumedCapacity", cc);
    }
    return m;
}

/* One DeviceAllocationConfiguration from a class or claim config item. */
static cs_ynode *config_node(wctx *w, const cs_ynode *item, const char *source)
{
    cs_ynode *m = node(w, CS_YNODE_MAP, (item ? item->n : 0) + 2);
    put(m, "source", str(w, source));
    for (size_t i = 0; m && item && item->kind == CS_YNODE_MAP && i < item->n; i++)
        if (strcmp(item->keys[i], "requests") != 0) cs_ynode_put(m, item->keys[i], item->items[i]);
    return m;
}

static bool lists(const cs_ynode *seq, const char *name)
{
    for (size_t i = 0; seq && seq->kind == CS_YNODE_SEQ && i < seq->n; i++)
        if (seq->items[i]->kind == CS_YNODE_SCALAR && !strcmp(seq->items[i]->s, name)) return true;
    return false;
}

/* status.allocation.devices.config as Kubernetes 1.34's allocator builds it: each class
 * config once per class, listing the requests ("req" or "req/sub") allocated through that
 * class; then each claim config with its requests as written: one with no requests once,
 * one with requests once for every request of the claim it names (by the request's name or
 * by its chosen "req/sub"), so a config naming two requests appears twice, as in 1.34. */
static cs_ynode *configs(wctx *w, const cs_dra_claim *c)
{
    size_t cap = c->config ? c->config->n * (c->n_requests + 1) : 0;
    for (size_t ri = 0; ri < c->n_requests; ri++)
        if (c->chosen[ri]->cls->config) cap += c->chosen[ri]->cls->config->n;
    cs_ynode *seq = node(w, CS_YNODE_SEQ, cap);
    if (!seq) return NULL;
    for (size_t ri = 0; ri < c->n_requests; ri++) {
        const cs_dra_class *cls = c->chosen[ri]->cls;
        size_t seen = ri;
        for (size_t j = 0; j < ri && seen == ri; j++)
            if (c->chosen[j]->cls == cls) seen = j;
        if (seen != ri) {
            for (size_t e = 0; e < seq->n; e++) {
                cs_ynode *reqs = cs_ynode_get(seq->items[e], "requests");
                if (lists(reqs, c->chosen_names[seen])) append(reqs, str(w, c->chosen_names[ri]));
            }
            continue;
        }
        for (size_t k = 0; cls->config && k < cls->config->n; k++) {
            cs_ynode *entry = config_node(w, cls->config->items[k], "FromClass");
            cs_ynode *reqs = node(w, CS_YNODE_SEQ, c->n_requests);
            append(reqs, str(w, c->chosen_names[ri]));
            put(entry, "requests", reqs);
            append(seq, entry);
        }
    }
    for (size_t i = 0; c->config && i < c->config->n; i++) {
        const cs_ynode *item = c->config->items[i];
        const cs_ynode *reqs = cs_ynode_get(item, "requests");
        if (!reqs || reqs->n == 0) {
            append(seq, config_node(w, item, "FromClaim"));
            continue;
        }
        for (size_t ri = 0; ri < c->n_requests; ri++) {
            bool sub = c->chosen[ri] != &c->requests[ri];
            if (!lists(reqs, c->requests[ri].name) && !(sub && lists(reqs, c->chosen_names[ri])))
                continue;
            cs_ynode *entry = config_node(w, item, "FromClaim");
            put(entry, "requests", (cs_ynode *)reqs);
            append(seq, entry);
        }
    }
    return seq;
}

/* Drops map entries whose value is NULL (cs_ynode_put with NULL marks them). */
static void compact(cs_ynode *m)
{
    size_t n = 0;
    for (size_t i = 0; m && i < m->n; i++)
        if (m->items[i]) {
            m->keys[n] = m->keys[i];
            m->items[n++] = m->items[i];
        }
    if (m) m->n = n;
}

/* Whether seq already holds a requirement equal to r (Semantic.DeepEqual in Kubernetes). */
static bool holds(wctx *w, const cs_ynode *seq, const cs_ynode *r)
{
    cs_sbuf a, b;
    bool same = false;
    cs_sbuf_init(&a, 0);
    cs_sbuf_init(&b, 0);
    if (cs_ynode_write_json(r, &a) != CS_OK) w->nomem = true;
    for (size_t i = 0; !same && !w->nomem && i < seq->n; i++) {
        b.len = 0;
        if (cs_ynode_write_json(seq->items[i], &b) != CS_OK) w->nomem = true;
        same = !w->nomem && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    }
    cs_sbuf_free(&a);
    cs_sbuf_free(&b);
    return same;
}

/* status.allocation.nodeSelector as Kubernetes' createNodeSelector writes it: a device local
 * to a node restricts the claim to that node (matchFields metadata.name In [node]); otherwise
 * the requirements of every nodeSelector device join one term, each once; allNodes devices
 * add nothing, and a claim usable everywhere gets no selector. */
static cs_ynode *node_selector(wctx *w, const cs_dra_claim *c)
{
    size_t n_expr = 0, n_field = 0;
    for (size_t i = 0; i < c->n_results; i++) {
        const cs_dra_slice *s = c->results[i].slice;
        const cs_dra_device *d = c->results[i].dev;
        const char *name = s->per_device ? d->node_name : s->node_name;
        const cs_ynode *sel = s->per_device ? d->node_sel : s->node_sel;
        if (name) {
            cs_ynode *values = node(w, CS_YNODE_SEQ, 1), *field = node(w, CS_YNODE_MAP, 3);
            put(field, "key", str(w, "metadata.name"));
            put(field, "operator", str(w, "In"));
            append(values, str(w, name));
            put(field, "values", values);
            cs_ynode *fields = node(w, CS_YNODE_SEQ, 1), *term = node(w, CS_YNODE_MAP, 1);
            cs_ynode *terms = node(w, CS_YNODE_SEQ, 1), *out = node(w, CS_YNODE_MAP, 1);
            append(fields, field);
            put(term, "matchFields", fields);
            append(terms, term);
            put(out, "nodeSelectorTerms", terms);
            return out;
        }
        const cs_ynode *t = sel ? cs_ynode_get(sel, "nodeSelectorTerms")->items[0] : NULL;
        const cs_ynode *e = cs_ynode_get(t, "matchExpressions"),
                       *f = cs_ynode_get(t, "matchFields");
        n_expr += e ? e->n : 0;
        n_field += f ? f->n : 0;
    }
    if (n_expr + n_field == 0) return NULL;
    cs_ynode *exprs = node(w, CS_YNODE_SEQ, n_expr), *fields = node(w, CS_YNODE_SEQ, n_field);
    for (size_t i = 0; exprs && fields && i < c->n_results; i++) {
        const cs_dra_slice *s = c->results[i].slice;
        const cs_ynode *sel = s->per_device ? c->results[i].dev->node_sel : s->node_sel;
        const cs_ynode *t = sel ? cs_ynode_get(sel, "nodeSelectorTerms")->items[0] : NULL;
        const cs_ynode *e = cs_ynode_get(t, "matchExpressions"),
                       *f = cs_ynode_get(t, "matchFields");
        for (size_t k = 0; e && k < e->n; k++)
            if (!holds(w, exprs, e->items[k])) append(exprs, e->items[k]);
        for (size_t k = 0; f && k < f->n; k++)
            if (!holds(w, fields, f->items[k])) append(fields, f->items[k]);
    }
    cs_ynode *term = node(w, CS_YNODE_MAP, 2), *terms = node(w, CS_YNODE_SEQ, 1);
    cs_ynode *out = node(w, CS_YNODE_MAP, 1);
    if (exprs && exprs->n) put(term, "matchExpressions", exprs);
    if (fields && fields->n) put(term, "matchFields", fields);
    append(terms, term);
    put(out, "nodeSelectorTerms", terms);
    return out;
}

static cs_ynode *allocation(wctx *w, const cs_dra_claim *c)
{
    cs_ynode *alloc = node(w, CS_YNODE_MAP, 2);
    cs_ynode *devices = node(w, CS_YNODE_MAP, 2);
    cs_ynode *results = node(w, CS_YNODE_SEQ, c->n_results);
    for (size_t i = 0; i < c->n_results; i++) append(results, result_node(w, &c->results[i]));
    put(devices, "results", results);
    cs_ynode *cfg = configs(w, c);
    for (size_t i = 0; cfg && i < cfg->n; i++) compact(cfg->items[i]);
    if (cfg && cfg->n) put(devices, "config", cfg);
    put(alloc, "devices", devices);
    put(alloc, "nodeSelector", node_selector(w, c));
    return alloc;
}

/* status.devices: what the driver reports per device (AllocatedDeviceStatus); capstan
 * reports the CPUs of the cores a result took, as data.cpus. NULL when no result has any. */
static cs_ynode *device_status(wctx *w, const cs_dra_claim *c)
{
    size_t n = 0;
    for (size_t i = 0; i < c->n_results; i++) n += c->results[i].n_cpus > 0;
    if (!n) return NULL;
    cs_ynode *seq = node(w, CS_YNODE_SEQ, n);
    for (size_t i = 0; seq && i < c->n_results; i++) {
        const cs_dra_result *r = &c->results[i];
        if (!r->n_cpus) continue;
        cs_ynode *m = node(w, CS_YNODE_MAP, 5), *data = node(w, CS_YNODE_MAP, 1);
        cs_ynode *cpus = node(w, CS_YNODE_SEQ, r->n_cpus);
        for (size_t k = 0; cpus && k < r->n_cpus; k++) {
            char num[16];
            snprintf(num, sizeof num, "%d", r->cpus[k]);
            const char *t = cs_arena_strndup(&w->a, num, sizeof num);
            cs_ynode *v = t ? cs_ynode_scalar(&w->a, t, false) : NULL;
            if (!v) w->nomem = true;
            append(cpus, v);
        }
        put(m, "driver", str(w, r->driver));
        put(m, "pool", str(w, r->pool));
        put(m, "device", str(w, r->device));
        if (r->share_id) put(m, "shareID", str(w, r->share_id));
        put(data, "cpus", cpus);
        put(m, "data", data);
        append(seq, m);
    }
    return seq;
}

static cs_ynode *claim_node(wctx *w, const cs_dra_claim *c)
{
    if (c->allocated_on_input || c->state == CS_DRA_PENDING) return c->doc;
    cs_ynode *doc = copy_map(w, c->doc, 2);
    if (c->state == CS_DRA_ALLOCATED) {
        cs_ynode *status = copy_map(w, cs_ynode_get(c->doc, "status"), 2);
        put(status, "allocation", allocation(w, c));
        put(status, "devices", device_status(w, c));
        put(doc, "status", status);
    } else {
        cs_ynode *md = copy_map(w, cs_ynode_get(c->doc, "metadata"), 1);
        cs_ynode *ann = copy_map(w, cs_ynode_get(md, "annotations"), 1);
        put(ann, CS_DRA_REASON_ANNOTATION, str(w, c->reason));
        put(md, "annotations", ann);
        put(doc, "metadata", md);
    }
    return doc;
}

/* One claim's document into out; both writers share it so a claim reads the same in a
 * stream and on its own. */
static cs_status write_one(wctx *w, const cs_dra_claim *c, bool json, cs_sbuf *out)
{
    cs_ynode *doc = claim_node(w, c);
    if (w->nomem || !doc) return CS_ERR_NOMEM;
    return json ? cs_ynode_write_json(doc, out) : cs_ynode_write_yaml(doc, out);
}

cs_status cs_dra_write_claims(cs_dra_set *set, bool json, cs_sbuf *out, cs_error *err)
{
    wctx w = {.nomem = false};
    cs_arena_init(&w.a, 64 * 1024);
    cs_status rc = CS_OK;
    if (json)
        rc = cs_sbuf_puts(out, "{\n\"apiVersion\": \"v1\",\n\"kind\": \"List\",\n\"items\": [");
    for (size_t i = 0; rc == CS_OK && i < set->claims.len; i++) {
        if (json) rc = cs_sbuf_puts(out, i ? ",\n" : "\n");
        if (rc == CS_OK)
            rc = write_one(&w, *(cs_dra_claim **)cs_vec_at(&set->claims, i), json, out);
    }
    if (rc == CS_OK && json) rc = cs_sbuf_puts(out, "\n]\n}\n");
    cs_arena_free(&w.a);
    if (rc != CS_OK) return cs_error_set(err, rc, "writing claims: %s", cs_strerror(rc));
    return CS_OK;
}

cs_status cs_dra_write_claim(const cs_dra_claim *claim, bool json, cs_sbuf *out, cs_error *err)
{
    wctx w = {.nomem = false};
    cs_arena_init(&w.a, 16 * 1024);
    cs_status rc = write_one(&w, claim, json, out);
    cs_arena_free(&w.a);
    if (rc != CS_OK)
        return cs_error_set(err, rc, "writing ResourceClaim %s: %s", claim->name, cs_strerror(rc));
    return CS_OK;
}
