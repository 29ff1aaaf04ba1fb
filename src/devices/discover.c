/*
 * discover.c - runs the discovery drivers and writes their ResourceSlices as YAML or JSON
 * (a v1 List); the CLI's devices table is built from the JSON (src/cli/cmd_devices.c).
 *
 * The YAML is what `capstan --devices FILE.yaml` and `capstan dra allocate -f` read back,
 * and what a Kubernetes cluster accepts: resource.k8s.io/v1 ResourceSlice objects named
 * <node>-<driver>-<slice>. Strings are written double-quoted with JSON escapes (valid YAML),
 * so no product name can break the document.
 */
#include "devices/discover.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

cs_status cs_discover(cs_discovery *d, cs_error *err)
{
    memset(d, 0, sizeof *d);
    cs_arena_init(&d->arena, 16 * 1024);
    char host[256] = "localhost";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "localhost");
    const char *node = cs_arena_strndup(&d->arena, host, sizeof host);
    if (!node) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    cs_status rc = cs__discover_cpu(d, node, err);
    if (rc == CS_OK) rc = cs__discover_nvml(d, node, err);
    if (rc != CS_OK) cs_discovery_free(d);
    return rc;
}

void cs_discovery_free(cs_discovery *d)
{
    cs_arena_free(&d->arena);
    memset(d, 0, sizeof *d);
}

static const char *attr_kind(cs_cel_attr_type t)
{
    switch (t) {
    case CS_CEL_ATTR_INT: return "int";
    case CS_CEL_ATTR_BOOL: return "bool";
    case CS_CEL_ATTR_VERSION: return "version";
    default: return "string";
    }
}

/* A JSON-escaped, double-quoted string (also a valid YAML scalar). */
static cs_status put_quoted(cs_sbuf *out, const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *q = j ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!q) return CS_ERR_NOMEM;
    cs_status rc = cs_sbuf_puts(out, q);
    free(q);
    return rc;
}

static void slice_name(const cs_disc_slice *s, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s-%s-%s", s->node, s->driver, s->name);
    for (char *p = buf; *p; p++)
        if (*p == '_' || *p == '/') *p = '-';
}

/* A capacity's requestPolicy as YAML under `indent` (nothing without one). */
static cs_status put_policy(cs_sbuf *out, const char *indent, const cs_disc_cap *c)
{
    if (!c->has_policy) return CS_OK;
    char def[64], min[64], step[64];
    cs_quantity_format(c->def, def, sizeof def);
    cs_quantity_format(c->min, min, sizeof min);
    cs_quantity_format(c->step, step, sizeof step);
    cs_status rc = cs_sbuf_printf(out,
                                  "%s  requestPolicy:\n%s    default: \"%s\"\n%s    validRange:\n"
                                  "%s      min: \"%s\"\n",
                                  indent, indent, def, indent, indent, min);
    if (rc == CS_OK && c->has_step)
        rc = cs_sbuf_printf(out, "%s      step: \"%s\"\n", indent, step);
    return rc;
}

static cs_status put_quantities(cs_sbuf *out, const char *indent, const cs_disc_cap *caps, int n,
                                bool wrap_value)
{
    cs_status rc = CS_OK;
    for (int i = 0; i < n && rc == CS_OK; i++) {
        char q[64];
        cs_quantity_format(caps[i].value, q, sizeof q);
        rc = wrap_value ? cs_sbuf_printf(out, "%s%s:\n%s  value: \"%s\"\n", indent, caps[i].name,
                                         indent, q)
                        : cs_sbuf_printf(out, "%s%s: \"%s\"\n", indent, caps[i].name, q);
        if (rc == CS_OK && wrap_value) rc = put_policy(out, indent, &caps[i]);
    }
    return rc;
}

static cs_status write_device(cs_sbuf *out, const cs_disc_device *dev)
{
    cs_status rc = cs_sbuf_printf(out, "  - name: \"%s\"\n%s    attributes:\n", dev->name,
                                  dev->shared ? "    allowMultipleAllocations: true\n" : "");
    for (int i = 0; i < dev->n_attrs && rc == CS_OK; i++) {
        const cs_cel_attr *v = &dev->attrs[i].value;
        if ((rc = cs_sbuf_puts(out, "      "))) break;
        if ((rc = put_quoted(out, dev->attrs[i].name))) break;
        if (v->type == CS_CEL_ATTR_INT)
            rc = cs_sbuf_printf(out, ":\n        int: %lld\n", (long long)v->i);
        else if (v->type == CS_CEL_ATTR_BOOL)
            rc = cs_sbuf_printf(out, ":\n        bool: %s\n", v->b ? "true" : "false");
        else if ((rc = cs_sbuf_printf(out, ":\n        %s: ", attr_kind(v->type))) == CS_OK &&
                 (rc = put_quoted(out, v->s)) == CS_OK)
            rc = cs_sbuf_puts(out, "\n");
    }
    if (rc == CS_OK && dev->n_caps) rc = cs_sbuf_puts(out, "    capacity:\n");
    if (rc == CS_OK) rc = put_quantities(out, "      ", dev->caps, dev->n_caps, true);
    if (rc == CS_OK && dev->counter_set) {
        rc = cs_sbuf_printf(out,
                            "    consumesCounters:\n    - counterSet: \"%s\"\n      counters:\n",
                            dev->counter_set);
        if (rc == CS_OK) rc = put_quantities(out, "        ", dev->consumes, dev->n_consumes, true);
    }
    return rc;
}

cs_status cs_discovery_write_yaml(const cs_discovery *d, cs_sbuf *out)
{
    cs_status rc = CS_OK;
    for (int i = 0; i < d->n_slices && rc == CS_OK; i++) {
        const cs_disc_slice *s = &d->slices[i];
        char name[300];
        slice_name(s, name, sizeof name);
        rc = cs_sbuf_printf(out,
                            "---\napiVersion: resource.k8s.io/v1\nkind: ResourceSlice\n"
                            "metadata:\n  name: \"%s\"\nspec:\n  driver: %s\n  nodeName: \"%s\"\n"
                            "  pool:\n    name: \"%s\"\n    generation: 1\n"
                            "    resourceSliceCount: %d\n",
                            name, s->driver, s->node, s->pool, s->pool_slices);
        if (rc == CS_OK && s->n_counter_sets) rc = cs_sbuf_puts(out, "  sharedCounters:\n");
        for (int k = 0; k < s->n_counter_sets && rc == CS_OK; k++) {
            const cs_disc_counter_set *c = &s->counter_sets[k];
            rc = cs_sbuf_printf(out, "  - name: \"%s\"\n    counters:\n", c->name);
            if (rc == CS_OK) rc = put_quantities(out, "      ", c->counters, c->n_counters, true);
        }
        if (rc == CS_OK && !s->n_counter_sets)
            rc = cs_sbuf_puts(out, s->n_devices ? "  devices:\n" : "  devices: []\n");
        for (int k = 0; k < s->n_devices && rc == CS_OK; k++)
            rc = write_device(out, &s->devices[k]);
    }
    return rc;
}

static json_t *quantities_json(const cs_disc_cap *caps, int n)
{
    json_t *o = json_object();
    for (int i = 0; i < n && o; i++) {
        char q[64];
        cs_quantity_format(caps[i].value, q, sizeof q);
        json_t *c = json_pack("{s:s}", "value", q);
        if (c && caps[i].has_policy) {
            char def[64], min[64], step[64];
            cs_quantity_format(caps[i].def, def, sizeof def);
            cs_quantity_format(caps[i].min, min, sizeof min);
            cs_quantity_format(caps[i].step, step, sizeof step);
            json_t *range = json_pack("{s:s}", "min", min);
            if (range && caps[i].has_step) json_object_set_new(range, "step", json_string(step));
            json_object_set_new(c, "requestPolicy",
                                json_pack("{s:s, s:o}", "default", def, "validRange", range));
        }
        json_object_set_new(o, caps[i].name, c);
    }
    return o;
}

static json_t *device_json(const cs_disc_device *dev)
{
    json_t *attrs = json_object();
    for (int i = 0; i < dev->n_attrs && attrs; i++) {
        const cs_cel_attr *v = &dev->attrs[i].value;
        json_t *val = v->type == CS_CEL_ATTR_INT    ? json_integer(v->i)
                      : v->type == CS_CEL_ATTR_BOOL ? json_boolean(v->b)
                                                    : json_string(v->s ? v->s : "");
        json_object_set_new(attrs, dev->attrs[i].name, json_pack("{s:o}", attr_kind(v->type), val));
    }
    json_t *o = json_pack("{s:s, s:o, s:o}", "name", dev->name, "attributes", attrs, "capacity",
                          quantities_json(dev->caps, dev->n_caps));
    if (o && dev->shared) json_object_set_new(o, "allowMultipleAllocations", json_true());
    if (o && dev->counter_set)
        json_object_set_new(o, "consumesCounters",
                            json_pack("[{s:s, s:o}]", "counterSet", dev->counter_set, "counters",
                                      quantities_json(dev->consumes, dev->n_consumes)));
    return o;
}

cs_status cs_discovery_write_json(const cs_discovery *d, cs_sbuf *out, cs_error *err)
{
    json_t *items = json_array();
    for (int i = 0; i < d->n_slices && items; i++) {
        const cs_disc_slice *s = &d->slices[i];
        char name[300];
        slice_name(s, name, sizeof name);
        json_t *spec = json_pack("{s:s, s:s, s:{s:s, s:i, s:i}}", "driver", s->driver, "nodeName",
                                 s->node, "pool", "name", s->pool, "generation", 1,
                                 "resourceSliceCount", s->pool_slices);
        if (s->n_counter_sets) {
            json_t *sets = json_array();
            for (int k = 0; k < s->n_counter_sets; k++)
                json_array_append_new(
                    sets, json_pack("{s:s, s:o}", "name", s->counter_sets[k].name, "counters",
                                    quantities_json(s->counter_sets[k].counters,
                                                    s->counter_sets[k].n_counters)));
            json_object_set_new(spec, "sharedCounters", sets);
        } else {
            json_t *devs = json_array();
            for (int k = 0; k < s->n_devices; k++)
                json_array_append_new(devs, device_json(&s->devices[k]));
            json_object_set_new(spec, "devices", devs);
        }
        json_array_append_new(items, json_pack("{s:s, s:s, s:{s:s}, s:o}", "apiVersion",
                                               "resource.k8s.io/v1", "kind", "ResourceSlice",
                                               "metadata", "name", name, "spec", spec));
    }
    json_t *list = json_pack("{s:s, s:s, s:o}", "apiVersion", "v1", "kind", "List", "items", items);
    char *text = list ? json_dumps(list, JSON_INDENT(2)) : NULL;
    json_decref(list);
    if (!text) return cs_error_set(err, CS_ERR_NOMEM, "out of memory writing JSON");
    cs_status rc = cs_sbuf_puts(out, text);
    if (rc == CS_OK) rc = cs_sbuf_puts(out, "\n");
    free(text);
    return rc;
}
