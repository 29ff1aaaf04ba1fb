/*
 * dra_validate.c - the checks Kubernetes' API server makes before an object is stored,
 * as far as allocation depends on them, and CEL compilation of every selector.
 *
 * A claim that fails here is invalid input (the CLI exits 2), not an unallocatable claim.
 * References to DeviceClasses are resolved later, at allocation, because a class may come
 * after the claim in a file and Kubernetes too reports a missing class per claim. Checks
 * are O(n^2) in the number of requests per claim (at most a few dozen).
 */
#include "devices/dra_int.h"

#include <stdio.h>
#include <string.h>

static cs_status compile(cs_dra_set *set, cs__dra_ctx *c, const char *field, cs_dra_selector *sel,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cs_error cerr;
        if (cs_cel_compile(sel[i].expr, &sel[i].prog, &cerr) != CS_OK) {
            cs_status rc =
                cs__dra_fail(c, 0, "%s.selectors[%zu].cel.expression: %s", field, i, cerr.msg);
            /* Out of memory is not the expression's fault: callers answer it differently. */
            if (cerr.code == CS_ERR_NOMEM) rc = c->err->code = CS_ERR_NOMEM;
            return rc;
        }
        if (cs_vec_push(&set->programs, &sel[i].prog) != CS_OK) {
            cs_cel_free(sel[i].prog);
            return cs_error_set(c->err, CS_ERR_NOMEM, "out of memory compiling selectors");
        }
    }
    return CS_OK;
}

cs_status cs__dra_validate_class(cs_dra_set *set, cs_dra_class *cls, cs_error *err)
{
    cs__dra_ctx c = {.kind = "DeviceClass", .name = cls->name, .err = err};
    return compile(set, &c, "spec", cls->selectors, cls->n_selectors);
}

cs_status cs__dra_validate_slice(cs_dra_slice *s, cs_error *err)
{
    cs__dra_ctx c = {.kind = "ResourceSlice", .name = s->name, .err = err};
    int where = (s->node_name != NULL) + s->all_nodes + (s->node_sel != NULL) + s->per_device;
    if (where != 1)
        return cs__dra_fail(&c, 0,
                            "spec: must set exactly one of nodeName, allNodes, nodeSelector "
                            "and perDeviceNodeSelection");
    /* Devices and sharedCounters may share a slice (1.34) or not (1.35): both are read. */
    if (s->generation < 0) return cs__dra_fail(&c, 0, "spec.pool.generation: must be >= 0");
    for (size_t i = 0; i < s->n_devices; i++) {
        const cs_dra_device *d = &s->devices[i];
        int at = (d->node_name != NULL) + d->all_nodes + (d->node_sel != NULL);
        if (at != (s->per_device ? 1 : 0))
            return cs__dra_fail(&c, 0,
                                s->per_device
                                    ? "spec.devices[%zu]: must set exactly one of nodeName, "
                                      "allNodes and nodeSelector (perDeviceNodeSelection)"
                                    : "spec.devices[%zu]: nodeName, allNodes and nodeSelector "
                                      "need spec.perDeviceNodeSelection",
                                i);
        for (size_t j = 0; j < d->n_caps; j++) {
            const cs_dra_capacity *cap = &d->caps[j];
            const char *why = NULL;
            if (cap->has_range && cap->has_max && cs_quantity_cmp(cap->min, cap->max) > 0)
                why = "validRange: min must be <= max";
            else if (cap->has_policy && !d->allow_multiple)
                why = "needs allowMultipleAllocations: true on the device";
            else if ((cap->has_range || cap->n_valid_values) && !cap->has_default)
                why = "default: required with validRange or validValues";
            else if (cap->has_range && (cs_quantity_cmp(cap->def, cap->min) < 0 ||
                                        (cap->has_max && cs_quantity_cmp(cap->def, cap->max) > 0)))
                why = "default: must lie within validRange";
            bool listed = !cap->n_valid_values;
            for (size_t k = 0; !listed && k < cap->n_valid_values; k++)
                listed = cs_quantity_cmp(cap->def, cap->valid_values[k]) == 0;
            if (!why && !listed) why = "default: must be one of validValues";
            if (why)
                return cs__dra_fail(&c, 0, "spec.devices[%zu].capacity.%s.requestPolicy: %s", i,
                                    cap->name, why);
        }
        const cs_dra_attr *cpus = cs__dra_find_attr(d, s->driver, CS_DRA_CORE_CPUS);
        if (cpus) {
            const cs_dra_capacity *cores = cs__dra_find_cap(d, s->driver, CS_DRA_CORES);
            size_t n = 0;
            const char *why = cpus->value.type == CS_CEL_ATTR_STRING
                                  ? cs__dra_cpulist(cpus->value.s, NULL, NULL, &n)
                                  : "must be a string (a cpulist such as \"0-3,8\")";
            if (!why && (!cores || cores->value.milli != (int64_t)n * 1000))
                why = "must list one CPU per core of capacity cores";
            if (why)
                return cs__dra_fail(&c, 0, "spec.devices[%zu].attributes.%s: %s", i,
                                    CS_DRA_CORE_CPUS, why);
        }
        for (size_t j = 0; j < d->n_taints; j++) {
            const char *e = d->taints[j].effect;
            if (strcmp(e, "NoSchedule") && strcmp(e, "NoExecute") && strcmp(e, "None"))
                return cs__dra_fail(&c, 0,
                                    "spec.devices[%zu].taints[%zu].effect: must be NoSchedule, "
                                    "NoExecute or None, not '%s'",
                                    i, j, e);
        }
    }
    return CS_OK;
}

static cs_status check_request(cs_dra_set *set, cs__dra_ctx *c, cs_dra_request *r,
                               const char *field)
{
    if (r->mode == CS_DRA_ALL && r->count != CS_DRA_COUNT_UNSET)
        return cs__dra_fail(c, 0, "%s.count: must not be set with allocationMode All", field);
    if (r->mode == CS_DRA_EXACT_COUNT && r->count == CS_DRA_COUNT_UNSET) r->count = 1;
    if (r->mode == CS_DRA_EXACT_COUNT && r->count <= 0)
        return cs__dra_fail(c, 0, "%s.count: must be > 0", field);
    for (size_t i = 0; i < r->n_tolerations; i++) {
        const cs_dra_toleration *t = &r->tolerations[i];
        if (t->op && strcmp(t->op, "Exists") == 0 && t->value && t->value[0])
            return cs__dra_fail(c, 0,
                                "%s.tolerations[%zu].value: must be empty with operator "
                                "Exists",
                                field, i);
    }
    return compile(set, c, field, r->selectors, r->n_selectors);
}

/* True when `name` is a request of the claim, or "req/sub" names one of its sub-requests. */
static bool names_request(const cs_dra_claim *claim, const char *name)
{
    const char *slash = strchr(name, '/');
    size_t len = slash ? (size_t)(slash - name) : strlen(name);
    for (size_t i = 0; i < claim->n_requests; i++) {
        const cs_dra_request *r = &claim->requests[i];
        if (strlen(r->name) != len || strncmp(r->name, name, len) != 0) continue;
        if (!slash) return true;
        for (size_t j = 0; j < r->n_subs; j++)
            if (strcmp(r->subs[j].name, slash + 1) == 0) return true;
    }
    return false;
}

cs_status cs__dra_check_requests(cs_dra_set *set, cs__dra_ctx *c, cs_dra_request *reqs, size_t n)
{
    char base[sizeof c->path], field[sizeof c->path + 64];
    snprintf(base, sizeof base, "%s", c->path);
    c->path[0] = '\0'; /* messages name the field themselves */
    cs_status rc = CS_OK;
    if (n > CS_DRA_MAX_REQUESTS)
        rc = cs__dra_fail(c, 0, "%s: at most %d requests", base, CS_DRA_MAX_REQUESTS);
    for (size_t i = 0; rc == CS_OK && i < n; i++) {
        cs_dra_request *r = &reqs[i];
        for (size_t j = 0; rc == CS_OK && j < i; j++)
            if (strcmp(reqs[j].name, r->name) == 0)
                rc = cs__dra_fail(c, 0, "%s[%zu].name: duplicate '%s'", base, i, r->name);
        if (rc == CS_OK && !r->n_subs) {
            snprintf(field, sizeof field, "%s[%zu].exactly", base, i);
            rc = check_request(set, c, r, field);
        }
        if (rc == CS_OK && r->n_subs > CS_DRA_MAX_REQUESTS)
            rc = cs__dra_fail(c, 0, "%s[%zu].firstAvailable: at most %d", base, i,
                              CS_DRA_MAX_REQUESTS);
        for (size_t j = 0; rc == CS_OK && j < r->n_subs; j++) {
            snprintf(field, sizeof field, "%s[%zu].firstAvailable[%zu]", base, i, j);
            for (size_t k = 0; rc == CS_OK && k < j; k++)
                if (strcmp(r->subs[k].name, r->subs[j].name) == 0)
                    rc = cs__dra_fail(c, 0, "%s.name: duplicate '%s'", field, r->subs[j].name);
            if (rc == CS_OK) rc = check_request(set, c, &r->subs[j], field);
        }
    }
    snprintf(c->path, sizeof c->path, "%s", base);
    return rc;
}

cs_status cs__dra_validate_claim(cs_dra_set *set, cs_dra_claim *claim, cs_error *err)
{
    cs__dra_ctx c = {.kind = "ResourceClaim", .name = claim->name, .err = err};
    if (claim->n_requests > CS_DRA_MAX_REQUESTS || claim->n_constraints > CS_DRA_MAX_REQUESTS)
        return cs__dra_fail(&c, 0, "spec.devices: at most %d requests and %d constraints",
                            CS_DRA_MAX_REQUESTS, CS_DRA_MAX_REQUESTS);
    snprintf(c.path, sizeof c.path, "spec.devices.requests");
    cs_status rc = cs__dra_check_requests(set, &c, claim->requests, claim->n_requests);
    c.path[0] = '\0';
    for (size_t i = 0; rc == CS_OK && i < claim->n_constraints; i++)
        for (size_t j = 0; j < claim->constraints[i].n_requests; j++)
            if (!names_request(claim, claim->constraints[i].requests[j]))
                return cs__dra_fail(&c, 0,
                                    "spec.devices.constraints[%zu].requests[%zu]: '%s' is not a "
                                    "request of this claim",
                                    i, j, claim->constraints[i].requests[j]);
    if (rc == CS_OK && claim->n_results > CS_DRA_MAX_RESULTS)
        return cs__dra_fail(&c, 0, "status.allocation.devices.results: more than %d results",
                            CS_DRA_MAX_RESULTS);
    return rc;
}
