/*
 * cmd_devices.c - `capstan devices`: this machine's devices as DRA ResourceSlices.
 *
 * -o yaml and -o json are the ResourceSlice documents the devices module writes (what
 * --devices FILE.yaml reads back); the table (and -o wide, -o name) has one row per device,
 * built here as JSON rows and printed through output.h, with byte capacities (quantities
 * written in Ki/Mi/Gi) in binary units.
 */
#include "cli/cli.h"

#include "base/sbuf.h"
#include "cli/output.h"
#include "devices/discover.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: capstan devices [-o json|yaml|wide|name]\n\n"
    "Discovers this machine's devices and prints them as Kubernetes DRA ResourceSlices\n"
    "(resource.k8s.io/v1): NUMA nodes through hwloc (driver cpu.capstan.dev) and NVIDIA\n"
    "GPUs through NVML (driver gpu.nvidia.com; none when no NVIDIA driver is installed).\n"
    "The YAML output is what --devices FILE.yaml and `capstan dra allocate -f` read.\n\n"
    "options:\n"
    "  -o, --output F   a table by default (one row per device); wide adds the node and\n"
    "                   the attributes; name prints device/DRIVER/POOL/DEVICE;\n"
    "                   json (a v1 List) or yaml (ResourceSlice documents); any case\n";

static int on_opt(void *ctx, int opt, const char *arg)
{
    return cs_cli_output_parse("devices", arg, ctx); /* -o is the only option */
}

/* A capacity as the table shows it: byte quantities (binary suffixes) in KiB/MiB/GiB. */
static void cap_text(const cs_disc_cap *c, char *buf, size_t cap)
{
    if (c->value.format == CS_QTY_BINARY_SI && c->value.milli >= 0)
        cs_cli_size_text((uint64_t)(c->value.milli / 1000), buf, cap);
    else
        cs_quantity_format(c->value, buf, cap);
}

/* One JSON row per device: driver, pool, device, node, capacity and attributes as
 * "k=v k=v" text. NULL when out of memory. */
static json_t *device_rows(const cs_discovery *d)
{
    json_t *rows = json_array();
    for (int i = 0; rows && i < d->n_slices; i++) {
        const cs_disc_slice *s = &d->slices[i];
        for (int k = 0; k < s->n_devices; k++) {
            const cs_disc_device *dev = &s->devices[k];
            cs_sbuf caps, attrs;
            cs_sbuf_init(&caps, 0);
            cs_sbuf_init(&attrs, 0);
            cs_status rc =
                cs_sbuf_puts(&caps, "") == CS_OK ? cs_sbuf_puts(&attrs, "") : CS_ERR_NOMEM;
            for (int c = 0; c < dev->n_caps && rc == CS_OK; c++) {
                char q[64];
                cap_text(&dev->caps[c], q, sizeof q);
                rc = cs_sbuf_printf(&caps, "%s%s=%s", c ? " " : "", dev->caps[c].name, q);
            }
            for (int a = 0; a < dev->n_attrs && rc == CS_OK; a++) {
                const cs_cel_attr *v = &dev->attrs[a].value;
                const char *sep = a ? " " : "";
                if (v->type == CS_CEL_ATTR_INT)
                    rc = cs_sbuf_printf(&attrs, "%s%s=%lld", sep, dev->attrs[a].name,
                                        (long long)v->i);
                else if (v->type == CS_CEL_ATTR_BOOL)
                    rc = cs_sbuf_printf(&attrs, "%s%s=%s", sep, dev->attrs[a].name,
                                        v->b ? "true" : "false");
                else
                    rc = cs_sbuf_printf(&attrs, "%s%s=\"%s\"", sep, dev->attrs[a].name, v->s);
            }
            json_t *row = rc != CS_OK
                              ? NULL
                              : json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s}", "driver", s->driver,
                                          "pool", s->pool, "device", dev->name, "node", s->node,
                                          "capacity", caps.data, "attributes", attrs.data);
            cs_sbuf_free(&caps);
            cs_sbuf_free(&attrs);
            if (json_array_append_new(rows, row) != 0) {
                json_decref(rows);
                return NULL;
            }
        }
    }
    return rows;
}

static void device_name(const json_t *row, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s/%s", json_string_value(json_object_get(row, "driver")),
             json_string_value(json_object_get(row, "pool")),
             json_string_value(json_object_get(row, "device")));
}

static const cs_cli_column columns[] = {
    {"DRIVER", "driver", CS_CLI_CELL_TEXT, false, NULL},
    {"POOL", "pool", CS_CLI_CELL_TEXT, false, NULL},
    {"DEVICE", "device", CS_CLI_CELL_TEXT, false, NULL},
    {"CAPACITY", "capacity", CS_CLI_CELL_TEXT, false, NULL},
    {"NODE", "node", CS_CLI_CELL_TEXT, true, NULL},
    {"ATTRIBUTES", "attributes", CS_CLI_CELL_TEXT, true, NULL},
};
static const cs_cli_view view = {"device", NULL, device_name, columns,
                                 sizeof columns / sizeof columns[0]};

static int devices_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    static const cs_cli_spec spec = {"devices", usage, "o:", longopts};
    cs_cli_format f = CS_CLI_OUT_DEFAULT;
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_opt, &f, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first != argc)
        return cs_cli_usage_error("devices", "unexpected argument '%s'", argv[first]);
    cs_discovery d;
    cs_error err;
    if (cs_discover(&d, &err) != CS_OK) return cs_cli_error("devices", "%s", err.msg);
    if (f == CS_CLI_OUT_JSON || f == CS_CLI_OUT_YAML) {
        cs_sbuf out;
        cs_sbuf_init(&out, 0);
        cs_status st = f == CS_CLI_OUT_YAML ? cs_discovery_write_yaml(&d, &out)
                                            : cs_discovery_write_json(&d, &out, &err);
        if (st == CS_OK) fputs(out.data, stdout);
        cs_sbuf_free(&out);
        cs_discovery_free(&d);
        if (st != CS_OK)
            return cs_cli_error("devices", "cannot write the device list: %s", cs_strerror(st));
        return CS_CLI_OK;
    }
    json_t *rows = device_rows(&d);
    rc = rows ? cs_cli_output("devices", f, &view, rows, rows)
              : cs_cli_error("devices", "out of memory");
    /* Why a driver found nothing: after the table, as comments; on stderr with -o name. */
    for (int i = 0; rc == CS_CLI_OK && i < d.n_notes; i++)
        fprintf(f == CS_CLI_OUT_NAME ? stderr : stdout, "# %s\n", d.notes[i]);
    json_decref(rows);
    cs_discovery_free(&d);
    return rc;
}

const cs_cli_command cs_cli_devices_cmd = {"devices",
                                           "list this machine's devices as DRA "
                                           "ResourceSlices",
                                           devices_main};
