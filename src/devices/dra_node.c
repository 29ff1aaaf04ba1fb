/*
 * dra_node.c - which nodes a ResourceSlice's devices serve: core/v1 NodeSelector matching
 * against the node given to the allocator (its name and its labels), as Kubernetes'
 * GatherPools and nodeMatches do.
 *
 * A NodeSelector's terms are ORed; the requirements of one term (matchExpressions on labels,
 * matchFields on metadata.name) are ANDed; a term without requirements matches no node.
 * Labels come as "k=v,k2=v2" and are looked up by scanning that string: a node has few labels
 * and a selector few requirements, so a match is O(labels x requirements) with no allocation.
 */
#include "devices/dra_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The value of label `key` in "k=v,..." (not NUL-terminated: *len bytes), or NULL. */
static const char *label(const char *labels, const char *key, size_t *len)
{
    size_t kl = strlen(key);
    for (const char *p = labels; p && *p;) {
        const char *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (eq && (size_t)(eq - p) == kl && memcmp(p, key, kl) == 0) {
            *len = (size_t)(end - eq - 1);
            return eq + 1;
        }
        p = *end ? end + 1 : end;
    }
    return NULL;
}

static bool listed(const cs_ynode *values, const char *v, size_t len)
{
    for (size_t i = 0; values && i < values->n; i++)
        if (strlen(values->items[i]->s) == len && memcmp(values->items[i]->s, v, len) == 0)
            return true;
    return false;
}

/* Gt and Lt compare the label and the single value as integers; anything else fails. */
static bool compare_int(const char *v, size_t len, const cs_ynode *values, int sign)
{
    char buf[32];
    if (!values || values->n != 1 || len == 0 || len >= sizeof buf) return false;
    memcpy(buf, v, len);
    buf[len] = 0;
    char *end;
    errno = 0;
    long long have = strtoll(buf, &end, 10);
    if (*end || errno) return false;
    long long want = strtoll(values->items[0]->s, &end, 10);
    if (*end || errno) return false;
    return sign > 0 ? have > want : have < want;
}

/* One requirement; `v` is the label's (or field's) value, NULL when the node lacks it. */
static bool requirement(const cs_ynode *r, const char *v, size_t len)
{
    const char *op = cs_ynode_str(r, "operator");
    const cs_ynode *values = cs_ynode_get(r, "values");
    if (!strcmp(op, "In")) return v && listed(values, v, len);
    if (!strcmp(op, "NotIn")) return !v || !listed(values, v, len);
    if (!strcmp(op, "Exists")) return v != NULL;
    if (!strcmp(op, "DoesNotExist")) return v == NULL;
    return v && compare_int(v, len, values, !strcmp(op, "Gt") ? 1 : -1);
}

static bool term_matches(const cs_ynode *term, const cs_dra_options *opt)
{
    const cs_ynode *exprs = cs_ynode_get(term, "matchExpressions");
    const cs_ynode *fields = cs_ynode_get(term, "matchFields");
    size_t n = (exprs ? exprs->n : 0) + (fields ? fields->n : 0);
    for (size_t i = 0; exprs && i < exprs->n; i++) {
        size_t len = 0;
        const char *v = label(opt->node_labels, cs_ynode_str(exprs->items[i], "key"), &len);
        if (!requirement(exprs->items[i], v, len)) return false;
    }
    for (size_t i = 0; fields && i < fields->n; i++) /* the reader allows only metadata.name */
        if (!requirement(fields->items[i], opt->node, strlen(opt->node))) return false;
    return n > 0;
}

static bool selector_matches(const cs_ynode *sel, const cs_dra_options *opt)
{
    const cs_ynode *terms = cs_ynode_get(sel, "nodeSelectorTerms");
    for (size_t i = 0; terms && i < terms->n; i++)
        if (term_matches(terms->items[i], opt)) return true;
    return false;
}

bool cs__dra_node_matches(const char *node_name, bool all_nodes, const cs_ynode *sel,
                          const cs_dra_options *opt)
{
    if (!opt->node || all_nodes) return true;
    if (node_name) return strcmp(node_name, opt->node) == 0;
    return sel && selector_matches(sel, opt);
}

bool cs__dra_slice_eligible(const cs_dra_slice *s, const cs_dra_options *opt)
{
    return s->per_device || cs__dra_node_matches(s->node_name, s->all_nodes, s->node_sel, opt);
}

bool cs__dra_device_eligible(const cs_dra_slice *s, const cs_dra_device *d,
                             const cs_dra_options *opt)
{
    return !s->per_device || cs__dra_node_matches(d->node_name, d->all_nodes, d->node_sel, opt);
}
