/*
 * cmd_devices.c - `capstan devices`: this machine's devices as DRA ResourceSlices.
 */
#include "cli/cli.h"

#include "base/sbuf.h"
#include "devices/discover.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: capstan devices [-o table|yaml|json]\n\n"
    "Discovers this machine's devices and prints them as Kubernetes DRA ResourceSlices\n"
    "(resource.k8s.io/v1): NUMA nodes through hwloc (driver cpu.capstan.dev) and NVIDIA\n"
    "GPUs through NVML (driver gpu.nvidia.com; none when no NVIDIA driver is installed).\n"
    "The YAML output is what --devices FILE.yaml and `capstan dra allocate -f` read.\n\n"
    "options:\n"
    "  -o, --output FORMAT   table (default), yaml or json\n";

typedef struct opts {
    const char *format;
} opts;

static int on_opt(void *ctx, int opt, const char *arg)
{
    opts *o = ctx;
    if (opt != 'o') return CS_CLI_CONTINUE;
    if (strcmp(arg, "table") && strcmp(arg, "yaml") && strcmp(arg, "json"))
        return cs_cli_usage_error("devices", "output format '%s' is not table, yaml or json", arg);
    o->format = arg;
    return CS_CLI_CONTINUE;
}

static int devices_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {NULL, 0, NULL, 0}};
    static const cs_cli_spec spec = {"devices", usage, "o:", longopts};
    opts o = {"table"};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_opt, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first != argc)
        return cs_cli_usage_error("devices", "unexpected argument '%s'", argv[first]);
    cs_discovery d;
    cs_error err;
    if (cs_discover(&d, &err) != CS_OK) return cs_cli_error("devices", "%s", err.msg);
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_status st = !strcmp(o.format, "yaml")   ? cs_discovery_write_yaml(&d, &out)
                   : !strcmp(o.format, "json") ? cs_discovery_write_json(&d, &out, &err)
                                               : cs_discovery_write_table(&d, &out);
    cs_discovery_free(&d);
    if (st != CS_OK) {
        cs_sbuf_free(&out);
        return cs_cli_error("devices", "cannot write the device list: %s", cs_strerror(st));
    }
    fputs(out.data, stdout);
    cs_sbuf_free(&out);
    return CS_CLI_OK;
}

const cs_cli_command cs_cli_devices_cmd = {"devices",
                                           "list this machine's devices as DRA "
                                           "ResourceSlices",
                                           devices_main};
