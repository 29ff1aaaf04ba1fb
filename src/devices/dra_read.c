/*
 * dra_read.c - Kubernetes YAML to DRA objects (DeviceClass, ResourceSlice, ResourceClaim).
 *
 * The stream is parsed into trees (ytree.c) and each document is decoded field by field.
 * Inside the parts capstan interprets (a class's spec, a slice's spec, a claim's
 * spec.devices) unknown fields are errors, because a misspelt `alocationMode` would
 * otherwise change an allocation silently; the API fields capstan knows but does not use
 * are listed as accepted, and everything outside those parts (metadata, status fields
 * other than the allocation) is kept verbatim in the tree the writer prints. Decoding is
 * O(input); every object and its strings live in the set's arena.
 */
#include "devices/dra_int.h"

#include "base/alloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

cs_status cs__dra_fail(cs__dra_ctx *c, int line, const char *fmt, ...)
{
    char msg[CS_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    char where[32] = "";
    if (line > 0) snprintf(where, sizeof where, " (line %d)", line);
    if (!c->kind) /* a part of another object: its path says where */
        return cs_error_set(c->err, CS_ERR_INVALID, "%s%s%s%s", c->path, c->path[0] ? ": " : "",
                            msg, where);
    return cs_error_set(c->err, CS_ERR_INVALID, "%s %s: %s%s%s%s", c->kind,
                        c->name ? c->name : "(unnamed)", c->path, c->path[0] ? ": " : "", msg,
                        where);
}

/* Appends ".key" or "[i]" to the path for the duration of a sub-decoder; returns the old
 * length for pop(). Paths longer than the buffer are cut, never overflowed. */
static size_t push(cs__dra_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static size_t push(cs__dra_ctx *c, const char *fmt, ...)
{
    size_t n = strlen(c->path);
    va_list ap;
    va_start(ap, fmt);
    if (n < sizeof c->path) vsnprintf(c->path + n, sizeof c->path - n, fmt, ap);
    va_end(ap);
    return n;
}

static void pop(cs__dra_ctx *c, size_t n)
{
    c->path[n] = '\0';
}

static cs_status nomem(cs__dra_ctx *c)
{
    return cs_error_set(c->err, CS_ERR_NOMEM, "out of memory reading %s %s", c->kind ? c->kind : "",
                        c->kind && c->name ? c->name : c->path);
}

static cs_status expect_kind(cs__dra_ctx *c, const cs_ynode *n, cs_ynode_kind kind)
{
    static const char *const names[] = {"a scalar", "a map", "a list"};
    if (n->kind == kind) return CS_OK;
    return cs__dra_fail(c, n->line, "must be %s", names[kind]);
}

/* Fails on the first key of map m that is not in `known` (NULL-terminated). */
static cs_status check_fields(cs__dra_ctx *c, const cs_ynode *m, const char *const *known)
{
    for (size_t i = 0; i < m->n; i++) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, m->keys[i]) == 0;
        if (!ok) {
            size_t mark = push(c, "%s%s", c->path[0] ? "." : "", m->keys[i]);
            cs_status rc = cs__dra_fail(c, m->items[i]->line, "unknown field");
            pop(c, mark);
            return rc;
        }
    }
    return CS_OK;
}

/* Sub-decoders run with the path extended by the field name. */
#define FIELD(c, key) push((c), "%s%s", (c)->path[0] ? "." : "", (key))

static cs_status get_str(cs__dra_ctx *c, const cs_ynode *m, const char *key, bool required,
                         const char **out)
{
    const cs_ynode *v = cs_ynode_get(m, key);
    *out = NULL;
    size_t mark = FIELD(c, key);
    cs_status rc = CS_OK;
    if (!v) {
        if (required) rc = cs__dra_fail(c, m->line, "required");
    } else if ((rc = expect_kind(c, v, CS_YNODE_SCALAR)) == CS_OK) {
        if (required && !v->s[0]) rc = cs__dra_fail(c, v->line, "must not be empty");
        *out = v->s;
    }
    pop(c, mark);
    return rc;
}

static cs_status parse_int(cs__dra_ctx *c, const cs_ynode *v, int64_t *out)
{
    cs_status rc = expect_kind(c, v, CS_YNODE_SCALAR);
    if (rc != CS_OK) return rc;
    char *end;
    errno = 0;
    long long x = strtoll(v->s, &end, 10);
    if (v->quoted || !v->s[0] || *end || errno)
        return cs__dra_fail(c, v->line, "'%s' is not an integer", v->s);
    *out = x;
    return CS_OK;
}

static cs_status get_int(cs__dra_ctx *c, const cs_ynode *m, const char *key, int64_t *out)
{
    const cs_ynode *v = cs_ynode_get(m, key);
    if (!v) return CS_OK;
    size_t mark = FIELD(c, key);
    cs_status rc = parse_int(c, v, out);
    pop(c, mark);
    return rc;
}

static cs_status parse_bool(cs__dra_ctx *c, const cs_ynode *v, bool *out)
{
    cs_status rc = expect_kind(c, v, CS_YNODE_SCALAR);
    if (rc != CS_OK) return rc;
    if (!v->quoted && strcmp(v->s, "true") == 0)
        *out = true;
    else if (!v->quoted && strcmp(v->s, "false") == 0)
        *out = false;
    else
        return cs__dra_fail(c, v->line, "'%s' is not true or false", v->s);
    return CS_OK;
}

static cs_status get_bool(cs__dra_ctx *c, const cs_ynode *m, const char *key, bool *out)
{
    const cs_ynode *v = cs_ynode_get(m, key);
    if (!v) return CS_OK;
    size_t mark = FIELD(c, key);
    cs_status rc = parse_bool(c, v, out);
    pop(c, mark);
    return rc;
}

static cs_status parse_qty(cs__dra_ctx *c, const cs_ynode *v, cs_quantity *out)
{
    cs_status rc = expect_kind(c, v, CS_YNODE_SCALAR);
    if (rc != CS_OK) return rc;
    cs_error qerr;
    if (cs_quantity_parse(v->s, out, &qerr) != CS_OK)
        return cs__dra_fail(c, v->line, "'%s' is not a quantity: %s", v->s, qerr.msg);
    return CS_OK;
}

static cs_status get_qty(cs__dra_ctx *c, const cs_ynode *m, const char *key, bool *has,
                         cs_quantity *out)
{
    const cs_ynode *v = cs_ynode_get(m, key);
    *has = v != NULL;
    if (!v) return CS_OK;
    size_t mark = FIELD(c, key);
    cs_status rc = parse_qty(c, v, out);
    pop(c, mark);
    return rc;
}

/* Allocates n zeroed elements for a decoded list (NULL with n == 0 is fine). */
static void *array(cs__dra_ctx *c, size_t n, size_t size)
{
    return n ? cs_arena_zalloc(c->a, n * size, 16) : NULL;
}

/* Looks up an optional list field: *seq is NULL when absent, else a checked sequence. */
static cs_status get_seq(cs__dra_ctx *c, const cs_ynode *m, const char *key, const cs_ynode **seq)
{
    *seq = cs_ynode_get(m, key);
    if (!*seq) return CS_OK;
    size_t mark = FIELD(c, key);
    cs_status rc = expect_kind(c, *seq, CS_YNODE_SEQ);
    pop(c, mark);
    return rc;
}

/* A map[name]quantity, or map[name]{value: quantity} when `wrapped` (Counter). */
static cs_status qty_map(cs__dra_ctx *c, const cs_ynode *m, bool wrapped, cs_dra_qty_entry **out,
                         size_t *n_out)
{
    cs_status rc = expect_kind(c, m, CS_YNODE_MAP);
    if (rc != CS_OK) return rc;
    cs_dra_qty_entry *e = array(c, m->n, sizeof *e);
    if (m->n && !e) return nomem(c);
    for (size_t i = 0; rc == CS_OK && i < m->n; i++) {
        size_t mark = FIELD(c, m->keys[i]);
        e[i].name = m->keys[i];
        const cs_ynode *v = m->items[i];
        if (wrapped) {
            static const char *const known[] = {"value", NULL};
            bool has = false;
            rc = expect_kind(c, v, CS_YNODE_MAP);
            if (rc == CS_OK) rc = check_fields(c, v, known);
            if (rc == CS_OK) rc = get_qty(c, v, "value", &has, &e[i].value);
            if (rc == CS_OK && !has) rc = cs__dra_fail(c, v->line, "value: required");
        } else {
            rc = parse_qty(c, v, &e[i].value);
        }
        pop(c, mark);
    }
    *out = e;
    *n_out = m->n;
    return rc;
}

/* Decodes each item of an optional list field with fn(c, item, &out[i]). */
typedef cs_status (*item_fn)(cs__dra_ctx *c, const cs_ynode *item, void *out);

static cs_status list(cs__dra_ctx *c, const cs_ynode *m, const char *key, size_t elem_size,
                      item_fn fn, void **out, size_t *n_out)
{
    const cs_ynode *seq;
    cs_status rc = get_seq(c, m, key, &seq);
    *out = NULL;
    *n_out = 0;
    if (rc != CS_OK || !seq) return rc;
    char *items = array(c, seq->n, elem_size);
    if (seq->n && !items) return nomem(c);
    for (size_t i = 0; rc == CS_OK && i < seq->n; i++) {
        size_t mark = push(c, "%s%s[%zu]", c->path[0] ? "." : "", key, i);
        rc = fn(c, seq->items[i], items + i * elem_size);
        pop(c, mark);
    }
    *out = items;
    *n_out = seq->n;
    return rc;
}

#define LIST(c, m, key, arr, n, fn) \
    list((c), (m), (key), sizeof *(arr), (item_fn)(fn), (void **)&(arr), &(n))

static cs_status decode_selector(cs__dra_ctx *c, const cs_ynode *v, cs_dra_selector *out)
{
    static const char *const known[] = {"cel", NULL};
    static const char *const cel_known[] = {"expression", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    const cs_ynode *cel = cs_ynode_get(v, "cel");
    if (rc == CS_OK && !cel) rc = cs__dra_fail(c, v->line, "cel: required");
    size_t mark = FIELD(c, "cel");
    if (rc == CS_OK) rc = expect_kind(c, cel, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, cel, cel_known);
    if (rc == CS_OK) rc = get_str(c, cel, "expression", true, &out->expr);
    pop(c, mark);
    return rc;
}

/* ---- DeviceClass ---- */

static cs_status decode_class(cs__dra_ctx *c, const cs_ynode *spec, cs_dra_class *cls)
{
    static const char *const known[] = {"selectors", "config", "extendedResourceName", NULL};
    cs_status rc = expect_kind(c, spec, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, spec, known);
    if (rc == CS_OK)
        rc = LIST(c, spec, "selectors", cls->selectors, cls->n_selectors, decode_selector);
    const cs_ynode *config = NULL;
    if (rc == CS_OK) rc = get_seq(c, spec, "config", &config);
    cls->config = (cs_ynode *)config;
    return rc;
}

/* ---- ResourceSlice ---- */

static cs_status decode_attr_value(cs__dra_ctx *c, const cs_ynode *v, cs_dra_attr *a)
{
    static const char *const known[] = {"int", "bool", "string", "version", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc != CS_OK) return rc;
    if (v->n != 1)
        return cs__dra_fail(c, v->line, "must set exactly one of int, bool, string, version");
    const char *type = v->keys[0];
    const cs_ynode *x = v->items[0];
    size_t mark = FIELD(c, type);
    if (strcmp(type, "int") == 0) {
        a->value.type = CS_CEL_ATTR_INT;
        rc = parse_int(c, x, &a->value.i);
    } else if (strcmp(type, "bool") == 0) {
        a->value.type = CS_CEL_ATTR_BOOL;
        rc = parse_bool(c, x, &a->value.b);
    } else {
        a->value.type = strcmp(type, "string") == 0 ? CS_CEL_ATTR_STRING : CS_CEL_ATTR_VERSION;
        rc = expect_kind(c, x, CS_YNODE_SCALAR);
        a->value.s = x->s;
        cs_semver sv;
        cs_error verr;
        if (rc == CS_OK && a->value.type == CS_CEL_ATTR_VERSION &&
            cs_semver_parse(x->s, &sv, &verr) != CS_OK)
            rc = cs__dra_fail(c, x->line, "'%s' is not a semantic version: %s", x->s, verr.msg);
    }
    pop(c, mark);
    return rc;
}

static cs_status decode_policy(cs__dra_ctx *c, const cs_ynode *p, cs_dra_capacity *cap)
{
    static const char *const known[] = {"default", "validValues", "validRange", NULL};
    static const char *const range_known[] = {"min", "max", "step", NULL};
    cs_status rc = expect_kind(c, p, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, p, known);
    cap->has_policy = true;
    if (rc == CS_OK) rc = get_qty(c, p, "default", &cap->has_default, &cap->def);
    const cs_ynode *vals = NULL;
    if (rc == CS_OK) rc = get_seq(c, p, "validValues", &vals);
    if (rc == CS_OK && vals) {
        cap->valid_values = array(c, vals->n, sizeof *cap->valid_values);
        if (vals->n && !cap->valid_values) return nomem(c);
        cap->n_valid_values = vals->n;
        for (size_t i = 0; rc == CS_OK && i < vals->n; i++) {
            size_t mark = push(c, ".validValues[%zu]", i);
            rc = parse_qty(c, vals->items[i], &cap->valid_values[i]);
            if (rc == CS_OK && i > 0 &&
                cs_quantity_cmp(cap->valid_values[i - 1], cap->valid_values[i]) >= 0)
                rc = cs__dra_fail(c, vals->items[i]->line, "must be in ascending order");
            pop(c, mark);
        }
    }
    const cs_ynode *range = cs_ynode_get(p, "validRange");
    if (rc == CS_OK && range) {
        size_t mark = FIELD(c, "validRange");
        bool has_min = false;
        rc = expect_kind(c, range, CS_YNODE_MAP);
        if (rc == CS_OK) rc = check_fields(c, range, range_known);
        if (rc == CS_OK) rc = get_qty(c, range, "min", &has_min, &cap->min);
        if (rc == CS_OK) rc = get_qty(c, range, "max", &cap->has_max, &cap->max);
        if (rc == CS_OK) rc = get_qty(c, range, "step", &cap->has_step, &cap->step);
        if (rc == CS_OK && !has_min) rc = cs__dra_fail(c, range->line, "min: required");
        if (rc == CS_OK && cap->has_step && cap->step.milli <= 0)
            rc = cs__dra_fail(c, range->line, "step: must be > 0");
        cap->has_range = true;
        pop(c, mark);
    }
    if (rc == CS_OK && vals && range)
        rc = cs__dra_fail(c, p->line, "validValues and validRange are mutually exclusive");
    return rc;
}

static cs_status decode_capacity(cs__dra_ctx *c, const cs_ynode *v, cs_dra_capacity *cap)
{
    static const char *const known[] = {"value", "requestPolicy", NULL};
    bool has = false;
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = get_qty(c, v, "value", &has, &cap->value);
    if (rc == CS_OK && !has) rc = cs__dra_fail(c, v->line, "value: required");
    const cs_ynode *p = cs_ynode_get(v, "requestPolicy");
    if (rc == CS_OK && p) {
        size_t mark = FIELD(c, "requestPolicy");
        rc = decode_policy(c, p, cap);
        pop(c, mark);
    }
    return rc;
}

static cs_status decode_counter_set(cs__dra_ctx *c, const cs_ynode *v, cs_dra_counter_set *cs,
                                    const char *name_key)
{
    const char *const known[] = {name_key, "counters", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = get_str(c, v, name_key, true, &cs->name);
    const cs_ynode *m = cs_ynode_get(v, "counters");
    if (rc == CS_OK && !m) rc = cs__dra_fail(c, v->line, "counters: required");
    size_t mark = FIELD(c, "counters");
    if (rc == CS_OK) rc = qty_map(c, m, true, &cs->counters, &cs->n_counters);
    pop(c, mark);
    return rc;
}

static cs_status decode_shared(cs__dra_ctx *c, const cs_ynode *v, cs_dra_counter_set *cs)
{
    return decode_counter_set(c, v, cs, "name");
}

static cs_status decode_consumption(cs__dra_ctx *c, const cs_ynode *v, cs_dra_counter_set *cs)
{
    return decode_counter_set(c, v, cs, "counterSet");
}

static cs_status decode_taint(cs__dra_ctx *c, const cs_ynode *v, cs_dra_taint *t)
{
    static const char *const known[] = {"key", "value", "effect", "timeAdded", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = get_str(c, v, "key", true, &t->key);
    if (rc == CS_OK) rc = get_str(c, v, "value", false, &t->value);
    if (rc == CS_OK) rc = get_str(c, v, "effect", true, &t->effect);
    return rc;
}

/* A map decoded entry by entry: fn(c, value, &out[i]) after out[i].name = key. The element
 * type must start with `const char *name`. */
static cs_status named_map(cs__dra_ctx *c, const cs_ynode *m, const char *key, size_t elem_size,
                           item_fn fn, void **out, size_t *n_out)
{
    const cs_ynode *v = cs_ynode_get(m, key);
    *out = NULL;
    *n_out = 0;
    if (!v) return CS_OK;
    size_t mark = FIELD(c, key);
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    char *items = rc == CS_OK ? array(c, v->n, elem_size) : NULL;
    if (rc == CS_OK && v->n && !items) rc = nomem(c);
    for (size_t i = 0; rc == CS_OK && i < v->n; i++) {
        size_t inner = FIELD(c, v->keys[i]);
        memcpy(items + i * elem_size, &v->keys[i], sizeof(const char *));
        rc = fn(c, v->items[i], items + i * elem_size);
        pop(c, inner);
    }
    pop(c, mark);
    *out = items;
    *n_out = rc == CS_OK ? v->n : 0;
    return rc;
}

/* A core/v1 NodeSelector at m[key], checked as the API server checks a slice's: exactly one
 * term; requirements with a key, a known operator and the values that operator takes;
 * matchFields only on metadata.name. Kept as written (*out) for matching and writing. */
static cs_status decode_requirement(cs__dra_ctx *c, const cs_ynode *r, bool field)
{
    static const char *const known[] = {"key", "operator", "values", NULL};
    static const char *const ops[] = {"In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt", NULL};
    const char *key, *op;
    cs_status rc = expect_kind(c, r, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, r, known);
    if (rc == CS_OK) rc = get_str(c, r, "key", true, &key);
    if (rc == CS_OK) rc = get_str(c, r, "operator", true, &op);
    if (rc != CS_OK) return rc;
    size_t k = 0;
    while (ops[k] && strcmp(ops[k], op)) k++;
    if (!ops[k] || (field && k > 1))
        return cs__dra_fail(c, r->line, "operator: must be %s, not '%s'",
                            field ? "In or NotIn" : "In, NotIn, Exists, DoesNotExist, Gt or Lt",
                            op);
    if (field && strcmp(key, "metadata.name"))
        return cs__dra_fail(c, r->line, "key: must be metadata.name, not '%s'", key);
    const cs_ynode *values = cs_ynode_get(r, "values");
    size_t n = values ? values->n : 0;
    if (values && (rc = expect_kind(c, values, CS_YNODE_SEQ)) != CS_OK) return rc;
    for (size_t i = 0; i < n; i++)
        if ((rc = expect_kind(c, values->items[i], CS_YNODE_SCALAR)) != CS_OK) return rc;
    if (k <= 1 && n == 0) return cs__dra_fail(c, r->line, "values: must be non-empty for %s", op);
    if ((k == 2 || k == 3) && n)
        return cs__dra_fail(c, r->line, "values: must be empty for %s", op);
    if (k >= 4 && n != 1) return cs__dra_fail(c, r->line, "values: must have one value for %s", op);
    return CS_OK;
}

static cs_status decode_node_selector(cs__dra_ctx *c, const cs_ynode *m, const cs_ynode **out)
{
    static const char *const known[] = {"nodeSelectorTerms", NULL};
    static const char *const term_known[] = {"matchExpressions", "matchFields", NULL};
    static const char *const lists[] = {"matchExpressions", "matchFields"};
    const cs_ynode *sel = cs_ynode_get(m, "nodeSelector");
    *out = sel;
    if (!sel) return CS_OK;
    size_t mark = FIELD(c, "nodeSelector");
    cs_status rc = expect_kind(c, sel, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, sel, known);
    const cs_ynode *terms = cs_ynode_get(sel, "nodeSelectorTerms");
    size_t inner = FIELD(c, "nodeSelectorTerms");
    if (rc == CS_OK && !terms) rc = cs__dra_fail(c, sel->line, "required");
    if (rc == CS_OK) rc = expect_kind(c, terms, CS_YNODE_SEQ);
    if (rc == CS_OK && terms->n != 1)
        rc = cs__dra_fail(c, terms->line, "must have exactly one node selector term");
    const cs_ynode *term = rc == CS_OK ? terms->items[0] : NULL;
    size_t tm = push(c, "[0]");
    if (rc == CS_OK) rc = expect_kind(c, term, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, term, term_known);
    for (size_t l = 0; rc == CS_OK && l < 2; l++) {
        const cs_ynode *reqs = cs_ynode_get(term, lists[l]);
        size_t lm = FIELD(c, lists[l]);
        if (reqs) rc = expect_kind(c, reqs, CS_YNODE_SEQ);
        for (size_t i = 0; rc == CS_OK && reqs && i < reqs->n; i++) {
            size_t im = push(c, "[%zu]", i);
            rc = decode_requirement(c, reqs->items[i], l == 1);
            pop(c, im);
        }
        pop(c, lm);
    }
    pop(c, tm);
    pop(c, inner);
    pop(c, mark);
    return rc;
}

static cs_status decode_device(cs__dra_ctx *c, const cs_ynode *v, cs_dra_device *d)
{
    static const char *const known[] = {"name",
                                        "attributes",
                                        "capacity",
                                        "consumesCounters",
                                        "taints",
                                        "allowMultipleAllocations",
                                        "nodeName",
                                        "allNodes",
                                        "nodeSelector",
                                        "bindsToNode",
                                        "bindingConditions",
                                        "bindingFailureConditions",
                                        NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = get_str(c, v, "name", true, &d->name);
    if (rc == CS_OK)
        rc = named_map(c, v, "attributes", sizeof *d->attrs, (item_fn)decode_attr_value,
                       (void **)&d->attrs, &d->n_attrs);
    if (rc == CS_OK)
        rc = named_map(c, v, "capacity", sizeof *d->caps, (item_fn)decode_capacity,
                       (void **)&d->caps, &d->n_caps);
    if (rc == CS_OK)
        rc = LIST(c, v, "consumesCounters", d->consumes, d->n_consumes, decode_consumption);
    if (rc == CS_OK) rc = LIST(c, v, "taints", d->taints, d->n_taints, decode_taint);
    if (rc == CS_OK) rc = get_bool(c, v, "allowMultipleAllocations", &d->allow_multiple);
    if (rc == CS_OK) rc = get_str(c, v, "nodeName", false, &d->node_name);
    if (rc == CS_OK) rc = get_bool(c, v, "allNodes", &d->all_nodes);
    if (rc == CS_OK) rc = decode_node_selector(c, v, &d->node_sel);
    if (rc == CS_OK) rc = get_seq(c, v, "bindingConditions", &d->binding_conditions);
    if (rc == CS_OK) rc = get_seq(c, v, "bindingFailureConditions", &d->binding_failure_conditions);
    return rc;
}

static cs_status decode_slice(cs__dra_ctx *c, const cs_ynode *spec, cs_dra_slice *s)
{
    static const char *const known[] = {"driver",
                                        "pool",
                                        "nodeName",
                                        "allNodes",
                                        "nodeSelector",
                                        "devices",
                                        "sharedCounters",
                                        "perDeviceNodeSelection",
                                        NULL};
    static const char *const pool_known[] = {"name", "generation", "resourceSliceCount", NULL};
    cs_status rc = expect_kind(c, spec, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, spec, known);
    if (rc == CS_OK) rc = get_str(c, spec, "driver", true, &s->driver);
    const cs_ynode *pool = cs_ynode_get(spec, "pool");
    if (rc == CS_OK && !pool) rc = cs__dra_fail(c, spec->line, "pool: required");
    if (rc == CS_OK) {
        size_t mark = FIELD(c, "pool");
        rc = expect_kind(c, pool, CS_YNODE_MAP);
        if (rc == CS_OK) rc = check_fields(c, pool, pool_known);
        if (rc == CS_OK) rc = get_str(c, pool, "name", true, &s->pool);
        s->slice_count = 1;
        if (rc == CS_OK) rc = get_int(c, pool, "generation", &s->generation);
        if (rc == CS_OK) rc = get_int(c, pool, "resourceSliceCount", &s->slice_count);
        if (rc == CS_OK && s->slice_count < 1)
            rc = cs__dra_fail(c, pool->line, "resourceSliceCount: must be >= 1");
        pop(c, mark);
    }
    if (rc == CS_OK) rc = get_str(c, spec, "nodeName", false, &s->node_name);
    if (rc == CS_OK) rc = get_bool(c, spec, "allNodes", &s->all_nodes);
    if (rc == CS_OK) rc = decode_node_selector(c, spec, &s->node_sel);
    if (rc == CS_OK) rc = get_bool(c, spec, "perDeviceNodeSelection", &s->per_device);
    if (rc == CS_OK) rc = LIST(c, spec, "devices", s->devices, s->n_devices, decode_device);
    if (rc == CS_OK) rc = LIST(c, spec, "sharedCounters", s->shared, s->n_shared, decode_shared);
    return rc;
}

/* ---- ResourceClaim ---- */

static cs_status decode_toleration(cs__dra_ctx *c, const cs_ynode *v, cs_dra_toleration *t)
{
    static const char *const known[] = {"key",    "operator",          "value",
                                        "effect", "tolerationSeconds", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = get_str(c, v, "key", false, &t->key);
    if (rc == CS_OK) rc = get_str(c, v, "operator", false, &t->op);
    if (rc == CS_OK) rc = get_str(c, v, "value", false, &t->value);
    if (rc == CS_OK) rc = get_str(c, v, "effect", false, &t->effect);
    if (rc == CS_OK && t->op && strcmp(t->op, "Exists") && strcmp(t->op, "Equal"))
        rc = cs__dra_fail(c, v->line, "operator: must be Exists or Equal, not '%s'", t->op);
    return rc;
}

/* The fields an `exactly` request and a firstAvailable sub-request share. */
static cs_status decode_exact(cs__dra_ctx *c, const cs_ynode *v, cs_dra_request *r, bool sub)
{
    static const char *const known[] = {"deviceClassName", "selectors",   "allocationMode", "count",
                                        "adminAccess",     "tolerations", "capacity",       NULL};
    static const char *const sub_known[] = {
        "name",  "deviceClassName", "selectors", "allocationMode",
        "count", "tolerations",     "capacity",  NULL};
    static const char *const cap_known[] = {"requests", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, sub ? sub_known : known);
    if (rc == CS_OK && sub) rc = get_str(c, v, "name", true, &r->name);
    if (rc == CS_OK) rc = get_str(c, v, "deviceClassName", true, &r->class_name);
    if (rc == CS_OK) rc = LIST(c, v, "selectors", r->selectors, r->n_selectors, decode_selector);
    const char *mode = NULL;
    if (rc == CS_OK) rc = get_str(c, v, "allocationMode", false, &mode);
    r->mode = CS_DRA_EXACT_COUNT;
    if (rc == CS_OK && mode && strcmp(mode, "All") == 0)
        r->mode = CS_DRA_ALL;
    else if (rc == CS_OK && mode && strcmp(mode, "ExactCount") != 0)
        rc = cs__dra_fail(c, v->line, "allocationMode: must be ExactCount or All, not '%s'", mode);
    r->count = CS_DRA_COUNT_UNSET;
    if (rc == CS_OK) rc = get_int(c, v, "count", &r->count);
    if (rc == CS_OK) rc = get_bool(c, v, "adminAccess", &r->admin_access);
    if (rc == CS_OK)
        rc = LIST(c, v, "tolerations", r->tolerations, r->n_tolerations, decode_toleration);
    r->tolerations_node = cs_ynode_get(v, "tolerations");
    const cs_ynode *cap = cs_ynode_get(v, "capacity");
    if (rc == CS_OK && cap) {
        size_t mark = FIELD(c, "capacity");
        rc = expect_kind(c, cap, CS_YNODE_MAP);
        if (rc == CS_OK) rc = check_fields(c, cap, cap_known);
        const cs_ynode *reqs = cs_ynode_get(cap, "requests");
        if (rc == CS_OK && reqs) {
            size_t inner = FIELD(c, "requests");
            rc = qty_map(c, reqs, false, &r->cap_requests, &r->n_cap_requests);
            pop(c, inner);
        }
        pop(c, mark);
    }
    return rc;
}

static cs_status decode_sub(cs__dra_ctx *c, const cs_ynode *v, cs_dra_request *r)
{
    return decode_exact(c, v, r, true);
}

static cs_status decode_request(cs__dra_ctx *c, const cs_ynode *v, cs_dra_request *r)
{
    static const char *const known[] = {"name", "exactly", "firstAvailable", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = get_str(c, v, "name", true, &r->name);
    const cs_ynode *exactly = cs_ynode_get(v, "exactly");
    const cs_ynode *first = cs_ynode_get(v, "firstAvailable");
    if (rc == CS_OK && !exactly == !first)
        rc = cs__dra_fail(c, v->line, "must set exactly one of exactly and firstAvailable");
    if (rc == CS_OK && exactly) {
        size_t mark = FIELD(c, "exactly");
        rc = decode_exact(c, exactly, r, false);
        pop(c, mark);
    }
    if (rc == CS_OK && first) {
        rc = LIST(c, v, "firstAvailable", r->subs, r->n_subs, decode_sub);
        if (rc == CS_OK && r->n_subs == 0)
            rc = cs__dra_fail(c, first->line, "firstAvailable: must not be empty");
    }
    return rc;
}

static cs_status decode_name_list(cs__dra_ctx *c, const cs_ynode *v, const char **out)
{
    cs_status rc = expect_kind(c, v, CS_YNODE_SCALAR);
    *out = v->s;
    return rc;
}

static cs_status decode_constraint(cs__dra_ctx *c, const cs_ynode *v, cs_dra_constraint *k)
{
    static const char *const known[] = {"requests", "matchAttribute", "distinctAttribute", NULL};
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = check_fields(c, v, known);
    if (rc == CS_OK) rc = LIST(c, v, "requests", k->requests, k->n_requests, decode_name_list);
    if (rc == CS_OK) rc = get_str(c, v, "matchAttribute", false, &k->match_attr);
    if (rc == CS_OK) rc = get_str(c, v, "distinctAttribute", false, &k->distinct_attr);
    if (rc == CS_OK && !k->match_attr == !k->distinct_attr)
        rc = cs__dra_fail(c, v->line,
                          "must set exactly one of matchAttribute and "
                          "distinctAttribute");
    const char *attr = k->match_attr ? k->match_attr : k->distinct_attr;
    if (rc == CS_OK && !strchr(attr, '/'))
        rc = cs__dra_fail(c, v->line,
                          "attribute '%s' must be fully qualified (domain/name, e.g. "
                          "gpu.example.com/%s)",
                          attr, attr);
    return rc;
}

/* status.allocation.devices.results[]: only what allocation needs; other fields are
 * written back as read. */
static cs_status decode_result(cs__dra_ctx *c, const cs_ynode *v, cs_dra_result *r)
{
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    if (rc == CS_OK) rc = get_str(c, v, "request", true, &r->request);
    if (rc == CS_OK) rc = get_str(c, v, "driver", true, &r->driver);
    if (rc == CS_OK) rc = get_str(c, v, "pool", true, &r->pool);
    if (rc == CS_OK) rc = get_str(c, v, "device", true, &r->device);
    if (rc == CS_OK) rc = get_bool(c, v, "adminAccess", &r->admin_access);
    if (rc == CS_OK) rc = get_str(c, v, "shareID", false, &r->share_id);
    const cs_ynode *cc = cs_ynode_get(v, "consumedCapacity");
    if (rc == CS_OK && cc) {
        size_t mark = FIELD(c, "consumedCapacity");
        rc = qty_map(c, cc, false, &r->consumed, &r->n_consumed);
        pop(c, mark);
    }
    return rc;
}

/* status.devices[]: the CPUs a result on a coreCPUs device holds (data.cpus), matched to
 * the result by driver, pool, device and shareID. Other entries and fields are kept as
 * read; a result without an entry holds capacity but no particular CPUs. */
static cs_status decode_device_status(cs__dra_ctx *c, const cs_ynode *v, cs_dra_claim *claim)
{
    cs_status rc = expect_kind(c, v, CS_YNODE_MAP);
    const char *driver = NULL, *pool = NULL, *device = NULL, *share = NULL;
    if (rc == CS_OK) rc = get_str(c, v, "driver", true, &driver);
    if (rc == CS_OK) rc = get_str(c, v, "pool", true, &pool);
    if (rc == CS_OK) rc = get_str(c, v, "device", true, &device);
    if (rc == CS_OK) rc = get_str(c, v, "shareID", false, &share);
    const cs_ynode *cpus = cs_ynode_get(cs_ynode_get(v, "data"), "cpus");
    if (rc != CS_OK || !cpus) return rc;
    size_t mark = FIELD(c, "data.cpus");
    rc = expect_kind(c, cpus, CS_YNODE_SEQ);
    cs_dra_result *r = NULL;
    for (size_t i = 0; rc == CS_OK && !r && i < claim->n_results; i++) {
        cs_dra_result *x = &claim->results[i];
        if (!strcmp(x->driver, driver) && !strcmp(x->pool, pool) && !strcmp(x->device, device) &&
            !x->share_id == !share && (!share || !strcmp(x->share_id, share)))
            r = x;
    }
    if (rc == CS_OK && !r)
        rc = cs__dra_fail(c, v->line, "no allocation result for device %s/%s/%s", driver, pool,
                          device);
    int *out = rc == CS_OK ? array(c, cpus->n, sizeof *out) : NULL;
    if (rc == CS_OK && cpus->n && !out) rc = nomem(c);
    for (size_t i = 0; rc == CS_OK && i < cpus->n; i++) {
        int64_t cpu = 0;
        size_t inner = push(c, "[%zu]", i);
        rc = parse_int(c, cpus->items[i], &cpu);
        if (rc == CS_OK && (cpu < 0 || cpu > 65535))
            rc = cs__dra_fail(c, cpus->items[i]->line, "must be a CPU number 0..65535");
        out[i] = (int)cpu;
        pop(c, inner);
    }
    if (rc == CS_OK) {
        r->cpus = out;
        r->n_cpus = cpus->n;
    }
    pop(c, mark);
    return rc;
}

cs_status cs__dra_decode_requests(cs_dra_set *set, cs__dra_ctx *c, const cs_ynode *seq,
                                  cs_dra_request **out, size_t *n)
{
    cs_status rc = expect_kind(c, seq, CS_YNODE_SEQ);
    *out = NULL;
    *n = 0;
    if (rc != CS_OK) return rc;
    cs_dra_request *items = array(c, seq->n, sizeof *items);
    if (seq->n && !items) return nomem(c);
    for (size_t i = 0; rc == CS_OK && i < seq->n; i++) {
        size_t mark = push(c, "[%zu]", i);
        rc = decode_request(c, seq->items[i], &items[i]);
        pop(c, mark);
    }
    if (rc == CS_OK) rc = cs__dra_check_requests(set, c, items, seq->n);
    *out = items;
    *n = seq->n;
    return rc;
}

static cs_status decode_claim(cs__dra_ctx *c, const cs_ynode *doc, cs_dra_claim *claim)
{
    static const char *const known[] = {"devices", NULL};
    static const char *const dev_known[] = {"requests", "constraints", "config", NULL};
    const cs_ynode *spec = cs_ynode_get(doc, "spec");
    size_t mark = FIELD(c, "spec");
    cs_status rc =
        spec ? expect_kind(c, spec, CS_YNODE_MAP) : cs__dra_fail(c, doc->line, "required");
    if (rc == CS_OK) rc = check_fields(c, spec, known);
    const cs_ynode *dev = cs_ynode_get(spec, "devices");
    if (rc == CS_OK && dev) {
        size_t inner = FIELD(c, "devices");
        rc = expect_kind(c, dev, CS_YNODE_MAP);
        if (rc == CS_OK) rc = check_fields(c, dev, dev_known);
        if (rc == CS_OK)
            rc = LIST(c, dev, "requests", claim->requests, claim->n_requests, decode_request);
        if (rc == CS_OK)
            rc = LIST(c, dev, "constraints", claim->constraints, claim->n_constraints,
                      decode_constraint);
        const cs_ynode *config = NULL;
        if (rc == CS_OK) rc = get_seq(c, dev, "config", &config);
        claim->config = (cs_ynode *)config;
        pop(c, inner);
    }
    pop(c, mark);
    const cs_ynode *alloc = cs_ynode_get(cs_ynode_get(doc, "status"), "allocation");
    if (rc == CS_OK && alloc) {
        mark = FIELD(c, "status.allocation.devices");
        const cs_ynode *devices = cs_ynode_get(alloc, "devices");
        claim->allocated_on_input = true;
        claim->state = CS_DRA_ALLOCATED;
        if (devices)
            rc = LIST(c, devices, "results", claim->results, claim->n_results, decode_result);
        pop(c, mark);
        const cs_ynode *st = NULL;
        mark = FIELD(c, "status");
        if (rc == CS_OK) rc = get_seq(c, cs_ynode_get(doc, "status"), "devices", &st);
        pop(c, mark);
        for (size_t i = 0; rc == CS_OK && st && i < st->n; i++) {
            mark = push(c, "status.devices[%zu]", i);
            rc = decode_device_status(c, st->items[i], claim);
            pop(c, mark);
        }
    }
    return rc;
}

/* ---- documents ---- */

static cs_status decode_doc(cs_dra_set *set, cs_ynode *doc, const char *source, cs_error *err);

static cs_status push_ptr(cs_vec *v, void *p, cs_error *err)
{
    if (v->len >= CS_DRA_MAX_OBJECTS)
        return cs_error_set(err, CS_ERR_LIMIT, "more than %d objects of one kind",
                            CS_DRA_MAX_OBJECTS);
    if (cs_vec_push(v, &p) != CS_OK)
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading DRA objects");
    return CS_OK;
}

static cs_status decode_object(cs_dra_set *set, cs_ynode *doc, const char *kind, cs_error *err)
{
    cs__dra_ctx c = {.a = &set->arena, .kind = kind, .err = err};
    const cs_ynode *md = cs_ynode_get(doc, "metadata");
    c.name = cs_ynode_str(md, "name");
    if (!c.name || !c.name[0])
        return cs__dra_fail(&c, md ? md->line : doc->line, "metadata.name: required");
    if (strcmp(kind, "ResourceClaim") == 0) {
        cs_dra_claim *claim = cs_arena_zalloc(c.a, sizeof *claim, 16);
        if (!claim) return nomem(&c);
        claim->name = c.name;
        claim->namespace_ = cs_ynode_str(md, "namespace");
        claim->doc = doc;
        cs_status rc = decode_claim(&c, doc, claim);
        if (rc == CS_OK) rc = cs__dra_validate_claim(set, claim, err);
        return rc == CS_OK ? push_ptr(&set->claims, claim, err) : rc;
    }
    const cs_ynode *spec = cs_ynode_get(doc, "spec");
    size_t mark = FIELD(&c, "spec");
    cs_status rc = spec ? CS_OK : cs__dra_fail(&c, doc->line, "required");
    if (rc == CS_OK && strcmp(kind, "DeviceClass") == 0) {
        cs_dra_class *cls = cs_arena_zalloc(c.a, sizeof *cls, 16);
        if (!cls) return nomem(&c);
        cls->name = c.name;
        cls->doc = doc;
        rc = decode_class(&c, spec, cls);
        if (rc == CS_OK) rc = cs__dra_validate_class(set, cls, err);
        if (rc == CS_OK) rc = push_ptr(&set->classes, cls, err);
    } else if (rc == CS_OK) {
        cs_dra_slice *s = cs_arena_zalloc(c.a, sizeof *s, 16);
        if (!s) return nomem(&c);
        s->name = c.name;
        s->doc = doc;
        rc = decode_slice(&c, spec, s);
        if (rc == CS_OK) rc = cs__dra_validate_slice(s, err);
        if (rc == CS_OK) rc = push_ptr(&set->slices, s, err);
    }
    pop(&c, mark);
    return rc;
}

static cs_status decode_doc(cs_dra_set *set, cs_ynode *doc, const char *source, cs_error *err)
{
    if (doc->kind != CS_YNODE_MAP)
        return cs_error_set(err, CS_ERR_INVALID, "%s: line %d: a document must be an object",
                            source, doc->line);
    const char *kind = cs_ynode_str(doc, "kind");
    const char *api = cs_ynode_str(doc, "apiVersion");
    if (!kind)
        return cs_error_set(err, CS_ERR_INVALID, "%s: line %d: object without kind", source,
                            doc->line);
    if (strcmp(kind, "List") == 0) {
        const cs_ynode *items = cs_ynode_get(doc, "items");
        if (!items || items->kind != CS_YNODE_SEQ)
            return cs_error_set(err, CS_ERR_INVALID, "%s: line %d: List without items", source,
                                doc->line);
        for (size_t i = 0; i < items->n; i++) {
            cs_status rc = decode_doc(set, items->items[i], source, err);
            if (rc != CS_OK) return rc;
        }
        return CS_OK;
    }
    if (strcmp(kind, "DeviceClass") && strcmp(kind, "ResourceSlice") &&
        strcmp(kind, "ResourceClaim"))
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s: line %d: kind %s is not DeviceClass, ResourceSlice or "
                            "ResourceClaim",
                            source, doc->line, kind);
    if (!api || (strcmp(api, "resource.k8s.io/v1") && strcmp(api, "resource.k8s.io/v1beta2")))
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s: line %d: %s: apiVersion must be resource.k8s.io/v1 (or "
                            "v1beta2), not '%s'",
                            source, doc->line, kind, api ? api : "");
    return decode_object(set, doc, kind, err);
}

cs_status cs__dra_read_doc(cs_dra_set *set, cs_ynode *doc, const char *source, cs_error *err)
{
    return decode_doc(set, doc, source, err);
}

void cs_dra_set_init(cs_dra_set *set)
{
    memset(set, 0, sizeof *set);
    cs_arena_init(&set->arena, 64 * 1024);
    cs_vec_init(&set->streams, sizeof(cs_ystream));
    cs_vec_init(&set->classes, sizeof(cs_dra_class *));
    cs_vec_init(&set->slices, sizeof(cs_dra_slice *));
    cs_vec_init(&set->claims, sizeof(cs_dra_claim *));
    cs_vec_init(&set->programs, sizeof(cs_cel_program *));
}

void cs_dra_set_free(cs_dra_set *set)
{
    for (size_t i = 0; i < set->programs.len; i++)
        cs_cel_free(*(cs_cel_program **)cs_vec_at(&set->programs, i));
    for (size_t i = 0; i < set->streams.len; i++) cs_ystream_free(cs_vec_at(&set->streams, i));
    cs_vec_free(&set->programs);
    cs_vec_free(&set->streams);
    cs_vec_free(&set->classes);
    cs_vec_free(&set->slices);
    cs_vec_free(&set->claims);
    cs_arena_free(&set->arena);
}

cs_status cs_dra_read(cs_dra_set *set, const char *text, size_t len, const char *source,
                      cs_error *err)
{
    cs_ystream s;
    cs_status rc = cs_ystream_parse(&s, text, len, err);
    if (rc != CS_OK) {
        cs_ystream_free(&s);
        return cs_error_prefix(err, "%s: ", source);
    }
    if (cs_vec_push(&set->streams, &s) != CS_OK) {
        cs_ystream_free(&s);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory reading %s", source);
    }
    size_t n_classes = set->classes.len, n_slices = set->slices.len, n_claims = set->claims.len;
    for (size_t i = 0; rc == CS_OK && i < s.n_docs; i++)
        rc = decode_doc(set, s.docs[i], source, err);
    if (rc != CS_OK) { /* keep what the set had; the stream's arena stays until set_free */
        set->classes.len = n_classes;
        set->slices.len = n_slices;
        set->claims.len = n_claims;
    }
    return rc;
}
