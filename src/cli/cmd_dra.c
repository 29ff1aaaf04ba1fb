/*
 * cmd_dra.c - `capstan dra allocate -f FILE.yaml [--node NAME] [--policy first|best-fit]
 * [-o json|yaml|wide|name]`: Kubernetes DRA allocation on a file of objects.
 *
 * Reads DeviceClasses, ResourceSlices and ResourceClaims (resource.k8s.io/v1), allocates
 * the claims without status.allocation as one pod's claims (together, all or none, as
 * Kubernetes' scheduler does), or with --each one by one in file order (each allocation
 * counting for the claims after it), and prints every claim. Invalid input exits 2 with the
 * reader's message (object, field, line); a claim that cannot be allocated is not an error:
 * it is printed with the annotation dra.capstan.io/unallocated and the reason, which also
 * goes to stderr. By default the claims are a table (claim, state, devices, reason; wide
 * adds each request's device and the node); -o yaml and -o json are the claim objects.
 */
#include "cli/cli.h"

#include "base/alloc.h"
#include "base/sbuf.h"
#include "cli/output.h"
#include "devices/dra.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define MAX_INPUT (64u << 20) /* 64 MiB of YAML is far beyond any real fleet file */

static const char usage[] =
    "usage: capstan dra allocate -f FILE.yaml [--node NAME] [--policy first|best-fit]\n"
    "                            [--node-labels K=V,...] [-o json|yaml|wide|name]\n"
    "                            [--max-steps N]"
    "                            [--each]\n\n"
    "Allocates Kubernetes DRA ResourceClaims (resource.k8s.io/v1) against the DeviceClasses\n"
    "and ResourceSlices in the same files, with the semantics of Kubernetes' structured\n"
    "allocator, and prints every claim with status.allocation filled in. Claims that already\n"
    "have status.allocation count as allocated; the others are one pod's claims, allocated\n"
    "together as Kubernetes does (all or none), or with --each one by one in file order.\n"
    "A claim that cannot be allocated gets the annotation dra.capstan.io/unallocated with\n"
    "the reason ('cannot be allocated: ...', or the error Kubernetes would report).\n\n"
    "options:\n"
    "  -f, --file FILE     a multi-document YAML file ('-' for stdin); repeatable\n"
    "      --node NAME     allocate for this node: slices of other nodes are ignored\n"
    "                      (default: every slice is eligible)\n"
    "      --node-labels L the node's labels, K=V,K2=V2 (with --node), for slices and\n"
    "                      devices selected by a nodeSelector\n"
    "      --policy P      first (Kubernetes' answer, the default) or best-fit (keep large\n"
    "                      devices and whole GPUs free)\n"
    "  -o, --output F      a table by default; wide (each request's device, the node),\n"
    "                      name (resourceclaim/NAME), yaml (the claims, a YAML stream)\n"
    "                      or json (a v1 List); any case\n"
    "      --max-steps N   search steps per pod (default 2000000)\n"
    "      --each          each pending claim is a pod of its own, allocated in file order\n"
    "                      (each allocation counts for the claims after it)\n"
    "  -h, --help          show this help\n\n"
    "Exit status: 0 claims printed (allocated or not), 1 a file cannot be read, 2 invalid\n"
    "input or usage.\n";

enum { OPT_NODE = 256, OPT_NODE_LABELS, OPT_POLICY, OPT_MAX_STEPS, OPT_EACH };

typedef struct dra_opts {
    const char *files[16];
    int n_files;
    cs_cli_format out;
    cs_dra_options alloc;
} dra_opts;

/* "k=v,k2=v2": every item has a non-empty key and an '='. */
static bool labels_ok(const char *s)
{
    for (;;) {
        const char *end = strchr(s, ',');
        size_t n = end ? (size_t)(end - s) : strlen(s);
        const char *eq = memchr(s, '=', n);
        if (!eq || eq == s) return false;
        if (!end) return true;
        s = end + 1;
    }
}

static int on_option(void *ctx, int opt, const char *arg)
{
    dra_opts *o = ctx;
    long n;
    switch (opt) {
    case 'f':
        if (o->n_files == 16) return cs_cli_usage_error("dra", "at most 16 files");
        o->files[o->n_files++] = arg;
        return CS_CLI_CONTINUE;
    case 'o': return cs_cli_output_parse("dra", arg, &o->out);
    case OPT_NODE: o->alloc.node = arg; return CS_CLI_CONTINUE;
    case OPT_NODE_LABELS:
        if (!labels_ok(arg))
            return cs_cli_usage_error("dra", "--node-labels expects K=V,K2=V2, got '%s'", arg);
        o->alloc.node_labels = arg;
        return CS_CLI_CONTINUE;
    case OPT_POLICY:
        if (strcmp(arg, "first") && strcmp(arg, "best-fit"))
            return cs_cli_usage_error("dra", "--policy expects first or best-fit, got '%s'", arg);
        o->alloc.policy = strcmp(arg, "first") ? CS_DRA_POLICY_BEST_FIT : CS_DRA_POLICY_FIRST;
        return CS_CLI_CONTINUE;
    case OPT_EACH: o->alloc.pod = false; return CS_CLI_CONTINUE;
    default: /* OPT_MAX_STEPS */
        if (cs_cli_parse_int(arg, 1, 1000000000L, &n) != 0)
            return cs_cli_usage_error("dra", "--max-steps expects 1..1000000000, got '%s'", arg);
        o->alloc.max_steps = (uint64_t)n;
        return CS_CLI_CONTINUE;
    }
}

/* Reads a whole file (or stdin) into a bounded buffer; returns NULL after reporting. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cs_cli_error("dra", "%s: %s", path, strerror(errno));
        return NULL;
    }
    cs_sbuf b;
    cs_sbuf_init(&b, MAX_INPUT);
    char chunk[65536];
    size_t n;
    cs_status rc = CS_OK;
    while (rc == CS_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = cs_sbuf_append(&b, chunk, n);
    bool bad = ferror(f);
    if (f != stdin) fclose(f);
    if (rc != CS_OK || bad) {
        cs_cli_error("dra", "%s: %s", path,
                     bad                  ? "read error"
                     : rc == CS_ERR_LIMIT ? "larger than 64 MiB"
                                          : "out of memory");
        cs_sbuf_free(&b);
        return NULL;
    }
    *len = b.len;
    return cs_sbuf_take(&b);
}

static const json_t *results(const json_t *claim)
{
    return json_object_get(
        json_object_get(json_object_get(json_object_get(claim, "status"), "allocation"), "devices"),
        "results");
}

static const char *unallocated(const json_t *claim)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(claim, "metadata"), "annotations"),
                        "dra.capstan.io/unallocated"));
}

static void state_text(const json_t *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", json_array_size(results(c)) ? "allocated" : "unallocated");
}

/* "pool/device,..." or with the request first in wide, "req=driver/pool/device,...". */
static void devices_text(const json_t *c, char *buf, size_t cap, bool wide)
{
    size_t i, n = 0;
    json_t *r;
    buf[0] = '\0';
    json_array_foreach(results(c), i, r)
    {
        const char *req = json_string_value(json_object_get(r, "request"));
        const char *drv = json_string_value(json_object_get(r, "driver"));
        const char *pool = json_string_value(json_object_get(r, "pool"));
        const char *dev = json_string_value(json_object_get(r, "device"));
        int w = wide ? snprintf(buf + n, cap - n, "%s%s=%s/%s/%s", n ? "," : "", req ? req : "",
                                drv ? drv : "", pool ? pool : "", dev ? dev : "")
                     : snprintf(buf + n, cap - n, "%s%s/%s", n ? "," : "", pool ? pool : "",
                                dev ? dev : "");
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

static void devices_short(const json_t *c, char *buf, size_t cap)
{
    devices_text(c, buf, cap, false);
}

static void devices_wide(const json_t *c, char *buf, size_t cap)
{
    devices_text(c, buf, cap, true);
}

/* The node a claim is bound to: the value of its nodeSelector's metadata.name match. */
static void node_text(const json_t *c, char *buf, size_t cap)
{
    const json_t *terms =
        json_object_get(json_object_get(json_object_get(json_object_get(c, "status"), "allocation"),
                                        "nodeSelector"),
                        "nodeSelectorTerms");
    const json_t *f = json_array_get(json_object_get(json_array_get(terms, 0), "matchFields"), 0);
    const char *v = json_string_value(json_array_get(json_object_get(f, "values"), 0));
    snprintf(buf, cap, "%s", v ? v : "");
}

static void reason_text(const json_t *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", unallocated(c) ? unallocated(c) : "");
}

static const cs_cli_column columns[] = {
    {"CLAIM", "metadata.name", CS_CLI_CELL_TEXT, false, NULL},
    {"STATE", NULL, CS_CLI_CELL_TEXT, false, state_text},
    {"DEVICES", NULL, CS_CLI_CELL_TEXT, false, devices_short},
    {"REQUESTS", NULL, CS_CLI_CELL_TEXT, true, devices_wide},
    {"NODE", NULL, CS_CLI_CELL_TEXT, true, node_text},
    {"REASON", NULL, CS_CLI_CELL_TEXT, false, reason_text},
};
static const cs_cli_view view = {"resourceclaim", "metadata.name", NULL, columns,
                                 sizeof columns / sizeof columns[0]};

/* The table, the names or the List itself (JSON, pretty as every -o json is) from the
 * claims' JSON List. */
static int print_table(cs_cli_format f, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *list = json_loadb(json, len, 0, &jerr);
    if (!list) return cs_cli_error("dra", "cannot read the claims back: %s", jerr.text);
    int rc = cs_cli_output("dra", f, &view, list, json_object_get(list, "items"));
    json_decref(list);
    return rc;
}

static int allocate_main(dra_opts *o)
{
    cs_dra_set set;
    cs_dra_set_init(&set);
    cs_error err;
    int rc = CS_CLI_OK;
    for (int i = 0; rc == CS_CLI_OK && i < o->n_files; i++) {
        size_t len = 0;
        char *text = slurp(o->files[i], &len);
        if (!text) {
            rc = CS_CLI_RUNTIME;
            break;
        }
        if (cs_dra_read(&set, text, len, o->files[i], &err) != CS_OK) {
            fprintf(stderr, "capstan: dra: %s\n", err.msg);
            rc = err.code == CS_ERR_NOMEM ? CS_CLI_RUNTIME : CS_CLI_USAGE;
        }
        cs_free(text);
    }
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    if (rc == CS_CLI_OK && cs_dra_allocate(&set, &o->alloc, &err) != CS_OK)
        rc = cs_cli_error("dra", "%s", err.msg);
    bool json = o->out != CS_CLI_OUT_YAML;
    if (rc == CS_CLI_OK && cs_dra_write_claims(&set, json, &out, &err) != CS_OK)
        rc = cs_cli_error("dra", "%s", err.msg);
    for (size_t i = 0; rc == CS_CLI_OK && i < set.claims.len; i++) {
        const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set.claims, i);
        if (c->reason) fprintf(stderr, "capstan: dra: ResourceClaim %s: %s\n", c->name, c->reason);
    }
    if (rc == CS_CLI_OK && o->out == CS_CLI_OUT_YAML)
        fwrite(out.data, 1, out.len, stdout);
    else if (rc == CS_CLI_OK)
        rc = print_table(o->out, out.data, out.len);
    cs_sbuf_free(&out);
    cs_dra_set_free(&set);
    return rc;
}

static int dra_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"file", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"node", required_argument, NULL, OPT_NODE},
        {"node-labels", required_argument, NULL, OPT_NODE_LABELS},
        {"policy", required_argument, NULL, OPT_POLICY},
        {"max-steps", required_argument, NULL, OPT_MAX_STEPS},
        {"each", no_argument, NULL, OPT_EACH},
        {0}};
    static const cs_cli_spec spec = {"dra", usage, "f:o:", longopts};
    dra_opts o = {.alloc.pod = true};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first == argc) return cs_cli_usage_error("dra", "missing subcommand (allocate)");
    static const char *const subs[] = {"allocate"};
    if (strcmp(argv[first], "allocate") != 0 &&
        cs_cli_nearest(argv[first], subs, 1, sizeof subs[0]))
        return cs_cli_usage_error("dra", "unknown subcommand '%s' (did you mean 'allocate'?)",
                                  argv[first]);
    if (strcmp(argv[first], "allocate") != 0)
        return cs_cli_usage_error("dra", "unknown subcommand '%s' (expected allocate)",
                                  argv[first]);
    if (argc - first > 1)
        return cs_cli_usage_error("dra", "unexpected argument '%s'", argv[first + 1]);
    if (o.n_files == 0) return cs_cli_usage_error("dra", "allocate needs -f FILE.yaml");
    if (o.alloc.node_labels && !o.alloc.node)
        return cs_cli_usage_error("dra", "--node-labels needs --node NAME");
    return allocate_main(&o);
}

const cs_cli_command cs_cli_dra_cmd = {"dra", "allocate Kubernetes DRA claims (dra allocate -f)",
                                       dra_main};
