/*
 * dra_bench.c - the DRA allocator (src/devices/dra_alloc.c) against a simulated GPU fleet.
 *
 * usage: cs-dra-bench [--nodes N] [--per-root 2|4] [--demand PCT] [--seed S] [--runs R]
 *                     [--policy first|best-fit|both]
 *
 * The fleet (seeded): N nodes (1,000), each publishing one ResourceSlice of driver
 * gpu.nvidia.com (pool = node name, nodeName set) with 8 GPUs whose attributes are those
 * discover_nvml.c publishes for a real H100 (type, uuid, productName, architecture,
 * cudaComputeCapability, driverVersion, pciBusID, resource.kubernetes.io/pcieRoot, index,
 * minor), 80Gi of memory with allowMultipleAllocations and a requestPolicy (default 80Gi,
 * validRange 1Gi..80Gi step 1Gi), so that a claim without a memory request takes the whole
 * GPU and a claim asking 10Gi shares it. --per-root GPUs hang off one PCIe root complex (4:
 * two roots per node, 2: four roots). The PCI domain in pcieRoot is the node's number, so
 * a root names one node's root complex even when every slice is eligible.
 *
 * The claim stream (seeded): ExactCount claims of 1, 2, 4 and 8 GPUs, the 2- and 4-GPU
 * ones half of the time with matchAttribute on pcieRoot, and 1-GPU claims sharing 10Gi of
 * a GPU's memory (the weights are in `mix`), until the stream asks for --demand percent
 * (110) of the fleet's GPUs, a share counting for 10/80 of one, so that the fleet fills
 * and claims start to fail. Claims are allocated one after another, each allocation
 * counting for the next; a claim that fails stays unallocated and the stream goes on.
 *
 * Three measurements, each reported apart from YAML parse time:
 *  1. fleet: the whole fleet and the whole stream in one cs_dra_allocate call with every
 *     slice eligible (no --node): the allocator's raw rate per claim against 8,000 devices.
 *  2. per node, as a scheduler filters: one cs_dra_set per node; each claim is read into a
 *     node's set and allocated there with --node, nodes tried in order until one takes it
 *     (nodes the benchmark's own bookkeeping shows without enough free GPUs or memory are
 *     skipped, as a scheduler's resource-fit filter would). Per-claim time is the sum of
 *     the allocate calls it took; p50/p99 are over claims. A claim no node can hold makes
 *     no call at all here, so failed claims cost nothing in this mode.
 *  For both: the share of GPUs (any allocation) and of GPU memory in use when the first
 *  claim fails, per policy.
 *  3. unsatisfiable: 1,000 free GPUs (125 nodes) and a claim for 8 with matchAttribute on
 *     pcieRoot, which no root can satisfy; then the same 1,000 GPUs with all but 7 carrying
 *     a 41Gi share (one per GPU) and a claim for 8 whole GPUs with matchAttribute on productName
 * (every GPU matches, so only the search can say no). The time of the whole allocate call, p50 and
 * max over --runs; the answer "cannot be allocated" is checked every run.
 */
#include "devices/dra.h"

#include "base/clock.h"
#include "base/sbuf.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GPUS      8
#define GIB_MILLI (1024LL * 1024 * 1024 * 1000)
#define GPU_MEM   (80 * GIB_MILLI)

/* A claim of the stream: count GPUs, on one PCIe root or not, whole GPUs (share_gi 0) or
 * share_gi GiB of each GPU's memory. */
typedef struct spec {
    int count;
    bool same_root;
    int share_gi;
} spec;

static const struct {
    int weight;
    spec s;
} mix[] = {
    {30, {1, false, 0}}, {25, {1, false, 10}}, {10, {2, false, 0}}, {10, {2, true, 0}},
    {5, {4, false, 0}},  {5, {4, true, 0}},    {15, {8, false, 0}},
};

static uint64_t next_rand(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void put_class(cs_sbuf *y)
{
    cs_sbuf_puts(y, "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\n"
                    "metadata: {name: gpu.nvidia.com}\nspec:\n  selectors:\n"
                    "  - cel: {expression: \"device.driver == 'gpu.nvidia.com' && "
                    "device.attributes['gpu.nvidia.com'].type == 'gpu'\"}\n");
}

static void put_node(cs_sbuf *y, uint64_t *rng, int node, int per_root)
{
    cs_sbuf_printf(y,
                   "---\napiVersion: resource.k8s.io/v1\nkind: ResourceSlice\n"
                   "metadata: {name: node-%04d-gpu.nvidia.com}\nspec:\n  driver: gpu.nvidia.com\n"
                   "  pool: {name: node-%04d, generation: 1, resourceSliceCount: 1}\n"
                   "  nodeName: node-%04d\n  devices:\n",
                   node, node, node);
    for (int i = 0; i < GPUS; i++) {
        uint64_t a = next_rand(rng), b = next_rand(rng);
        int root_bus = (i / per_root) * 0x40, bus = root_bus + 0x10 + (i % per_root) * 8;
        cs_sbuf_printf(y,
                       "  - name: gpu-%d\n    allowMultipleAllocations: true\n    attributes:\n"
                       "      type: {string: gpu}\n"
                       "      uuid: {string: GPU-%08x-%04x-%04x-%04x-%012llx}\n"
                       "      productName: {string: NVIDIA H100 80GB HBM3}\n"
                       "      architecture: {string: Hopper}\n"
                       "      cudaComputeCapability: {version: 9.0.0}\n"
                       "      driverVersion: {version: 550.54.15}\n"
                       "      pciBusID: {string: \"%08X:%02X:00.0\"}\n"
                       "      resource.kubernetes.io/pcieRoot: {string: \"pci%04x:%02x\"}\n"
                       "      index: {int: %d}\n      minor: {int: %d}\n"
                       "    capacity:\n      memory:\n        value: 80Gi\n"
                       "        requestPolicy: {default: 80Gi, validRange: {min: 1Gi, max: 80Gi, "
                       "step: 1Gi}}\n",
                       i, (unsigned)(a >> 32), (unsigned)(a >> 16) & 0xffff, (unsigned)a & 0xffff,
                       (unsigned)(b >> 48), (unsigned long long)(b & 0xffffffffffffull), node, bus,
                       node, root_bus, i, i);
    }
}

static void put_claim(cs_sbuf *y, int id, const spec *s, const char *match)
{
    cs_sbuf_printf(y,
                   "---\napiVersion: resource.k8s.io/v1\nkind: ResourceClaim\n"
                   "metadata: {name: claim-%05d, namespace: bench}\nspec:\n  devices:\n"
                   "    requests:\n    - name: gpus\n"
                   "      exactly: {deviceClassName: gpu.nvidia.com, count: %d",
                   id, s->count);
    if (s->share_gi) cs_sbuf_printf(y, ", capacity: {requests: {memory: %dGi}}", s->share_gi);
    cs_sbuf_puts(y, "}\n");
    if (match) cs_sbuf_printf(y, "    constraints: [{matchAttribute: %s}]\n", match);
}

/* The seeded stream, until it asks for demand percent of the fleet's GPUs. */
static spec *make_stream(int nodes, int demand_pct, uint64_t seed, int *n_out)
{
    int total = 0, cap = 1024, n = 0;
    for (size_t i = 0; i < sizeof mix / sizeof mix[0]; i++) total += mix[i].weight;
    spec *out = malloc(cap * sizeof *out);
    double demand = 0;
    while (out && demand < (double)nodes * GPUS * demand_pct / 100) {
        int w = (int)(next_rand(&seed) % (uint64_t)total);
        size_t k = 0;
        while (w >= mix[k].weight) w -= mix[k++].weight;
        if (n == cap) {
            spec *grown = realloc(out, (cap *= 2) * sizeof *out);
            if (!grown) free(out);
            out = grown;
            if (!out) break;
        }
        out[n++] = mix[k].s;
        demand += mix[k].s.share_gi ? mix[k].s.share_gi / 80.0 : mix[k].s.count;
    }
    *n_out = n;
    return out;
}

/* ---- what is in use, from the claims' results ---- */

typedef struct usage {
    int64_t *mem; /* milli-bytes consumed per GPU, node * GPUS + index */
    int nodes;
} usage;

static void account(usage *u, const cs_dra_claim *c)
{
    for (size_t i = 0; i < c->n_results; i++) {
        const cs_dra_result *r = &c->results[i];
        int g = atoi(r->pool + strlen("node-")) * GPUS + atoi(r->device + strlen("gpu-"));
        for (size_t k = 0; k < r->n_consumed; k++)
            if (!strcmp(r->consumed[k].name, "memory")) u->mem[g] += r->consumed[k].value.milli;
    }
}

static void shares_in_use(const usage *u, double *gpus, double *mem)
{
    int used = 0;
    double sum = 0;
    for (int g = 0; g < u->nodes * GPUS; g++) {
        used += u->mem[g] > 0;
        sum += (double)u->mem[g];
    }
    *gpus = 100.0 * used / (u->nodes * GPUS);
    *mem = 100.0 * sum / ((double)GPU_MEM * u->nodes * GPUS);
}

/* Whether node could hold claim s at all: enough untouched GPUs, or one with room for a
 * share. Necessary, not sufficient (a pcieRoot constraint may still fail). */
static bool may_fit(const usage *u, int node, const spec *s)
{
    int free_gpus = 0;
    for (int i = 0; i < GPUS; i++) {
        int64_t m = u->mem[node * GPUS + i];
        if (s->share_gi && m + s->share_gi * GIB_MILLI <= GPU_MEM) return true;
        free_gpus += m == 0;
    }
    return !s->share_gi && free_gpus >= s->count;
}

/* ---- results ---- */

typedef struct result {
    const char *policy, *mode;
    int claims, allocated, first_fail;
    double parse_s, alloc_s, p50_us, p99_us, attempts;
    double gpus_at_fail, mem_at_fail, gpus_end, mem_end;
} result;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what, const cs_error *err)
{
    fprintf(stderr, "cs-dra-bench: %s: %s\n", what, err ? err->msg : "out of memory");
    exit(1);
}

static const char *root_match(const spec *s)
{
    return s->same_root ? "resource.kubernetes.io/pcieRoot" : NULL;
}

/* Measurement 1: everything in one set, one allocate call, every slice eligible. */
static result run_fleet(int nodes, int per_root, uint64_t seed, const spec *st, int n,
                        cs_dra_policy policy)
{
    result res = {.mode = "fleet, one call", .claims = n, .first_fail = -1};
    cs_sbuf y;
    cs_sbuf_init(&y, 0);
    uint64_t rng = seed;
    put_class(&y);
    for (int i = 0; i < nodes; i++) put_node(&y, &rng, i, per_root);
    for (int i = 0; i < n; i++) put_claim(&y, i, &st[i], root_match(&st[i]));
    cs_dra_set set;
    cs_error err;
    cs_dra_set_init(&set);
    uint64_t t0 = cs_now_ns();
    if (cs_dra_read(&set, y.data, y.len, "fleet", &err) != CS_OK) die("read", &err);
    uint64_t t1 = cs_now_ns();
    cs_dra_options opt = {.policy = policy};
    if (cs_dra_allocate(&set, &opt, &err) != CS_OK) die("allocate", &err);
    uint64_t t2 = cs_now_ns();
    res.parse_s = (double)(t1 - t0) / 1e9;
    res.alloc_s = (double)(t2 - t1) / 1e9;
    usage u = {calloc((size_t)nodes * GPUS, sizeof *u.mem), nodes};
    if (!u.mem) die("usage", NULL);
    for (int i = 0; i < n; i++) {
        const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set.claims, (size_t)i);
        if (c->state == CS_DRA_FAILED) die(c->reason, NULL);
        if (c->state != CS_DRA_ALLOCATED && res.first_fail < 0) {
            res.first_fail = i;
            shares_in_use(&u, &res.gpus_at_fail, &res.mem_at_fail);
        }
        if (c->state == CS_DRA_ALLOCATED) res.allocated++;
        account(&u, c);
    }
    shares_in_use(&u, &res.gpus_end, &res.mem_end);
    free(u.mem);
    cs_dra_set_free(&set);
    cs_sbuf_free(&y);
    return res;
}

/* Measurement 2: one set per node; each claim tried on nodes in order until one takes it. */
static result run_nodes(int nodes, int per_root, uint64_t seed, const spec *st, int n,
                        cs_dra_policy policy)
{
    result res = {.mode = "per node", .claims = n, .first_fail = -1};
    cs_dra_set *sets = calloc((size_t)nodes, sizeof *sets);
    usage u = {calloc((size_t)nodes * GPUS, sizeof *u.mem), nodes};
    double *us = calloc((size_t)n + 1, sizeof *us);
    if (!sets || !u.mem || !us) die("sets", NULL);
    cs_sbuf y;
    cs_sbuf_init(&y, 0);
    cs_error err;
    uint64_t rng = seed, parse_ns = 0, alloc_ns = 0, t0;
    for (int i = 0; i < nodes; i++) {
        cs_sbuf_clear(&y);
        put_class(&y);
        put_node(&y, &rng, i, per_root);
        cs_dra_set_init(&sets[i]);
        t0 = cs_now_ns();
        if (cs_dra_read(&sets[i], y.data, y.len, "node", &err) != CS_OK) die("read", &err);
        parse_ns += cs_now_ns() - t0;
    }
    long attempts = 0;
    for (int i = 0; i < n; i++) {
        cs_sbuf_clear(&y);
        put_claim(&y, i, &st[i], root_match(&st[i]));
        uint64_t claim_ns = 0;
        bool done = false;
        for (int node = 0; node < nodes && !done; node++) {
            if (!may_fit(&u, node, &st[i])) continue;
            char name[32];
            snprintf(name, sizeof name, "node-%04d", node);
            cs_dra_options opt = {.node = name, .policy = policy};
            t0 = cs_now_ns();
            if (cs_dra_read(&sets[node], y.data, y.len, "claim", &err) != CS_OK) die("read", &err);
            uint64_t t1 = cs_now_ns();
            if (cs_dra_allocate(&sets[node], &opt, &err) != CS_OK) die("allocate", &err);
            uint64_t t2 = cs_now_ns();
            parse_ns += t1 - t0;
            claim_ns += t2 - t1;
            attempts++;
            cs_vec *cv = &sets[node].claims;
            const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(cv, cv->len - 1);
            if (c->state == CS_DRA_FAILED) die(c->reason, NULL);
            if (c->state == CS_DRA_ALLOCATED) {
                account(&u, c);
                done = true;
            }
        }
        if (!done && res.first_fail < 0) {
            res.first_fail = i;
            shares_in_use(&u, &res.gpus_at_fail, &res.mem_at_fail);
        }
        res.allocated += done;
        alloc_ns += claim_ns;
        us[i] = (double)claim_ns / 1e3;
    }
    shares_in_use(&u, &res.gpus_end, &res.mem_end);
    qsort(us, (size_t)n, sizeof *us, cmp_double);
    res.p50_us = us[n / 2];
    res.p99_us = us[n * 99 / 100];
    res.attempts = (double)attempts / n;
    res.parse_s = (double)parse_ns / 1e9;
    res.alloc_s = (double)alloc_ns / 1e9;
    for (int i = 0; i < nodes; i++) cs_dra_set_free(&sets[i]);
    free(sets);
    free(u.mem);
    free(us);
    cs_sbuf_free(&y);
    return res;
}

/* Measurement 3: the time of one allocate call that must answer "cannot be allocated".
 * Each run reads a fresh copy of the claim (not timed); the set keeps the earlier,
 * unallocatable copies, which cost nothing. Returns the p50; *max gets the slowest. */
static double unsatisfiable_ms(const char *fleet, size_t len, const spec *s, const char *match,
                               cs_dra_policy policy, int runs, double *max)
{
    cs_dra_set set;
    cs_error err;
    cs_dra_set_init(&set);
    if (cs_dra_read(&set, fleet, len, "fleet", &err) != CS_OK) die("read", &err);
    cs_dra_options opt = {.policy = policy};
    if (cs_dra_allocate(&set, &opt, &err) != CS_OK) die("allocate", &err);
    double *ms = calloc((size_t)runs, sizeof *ms);
    cs_sbuf y;
    cs_sbuf_init(&y, 0);
    if (!ms) die("runs", NULL);
    for (int r = 0; r < runs; r++) {
        cs_sbuf_clear(&y);
        put_claim(&y, 90000 + r, s, match);
        if (cs_dra_read(&set, y.data, y.len, "claim", &err) != CS_OK) die("read", &err);
        uint64_t t0 = cs_now_ns();
        if (cs_dra_allocate(&set, &opt, &err) != CS_OK) die("allocate", &err);
        ms[r] = (double)(cs_now_ns() - t0) / 1e6;
        const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set.claims, set.claims.len - 1);
        if (c->state != CS_DRA_UNALLOCATABLE || strstr(c->reason, "search steps")) {
            fprintf(stderr, "cs-dra-bench: unsatisfiable claim got state %d (%s)\n", c->state,
                    c->reason ? c->reason : "allocated");
            exit(1);
        }
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp_double);
    double p50 = ms[runs / 2];
    *max = ms[runs - 1];
    free(ms);
    cs_sbuf_free(&y);
    cs_dra_set_free(&set);
    return p50;
}

static const char *policy_name(cs_dra_policy p)
{
    return p == CS_DRA_POLICY_FIRST ? "first" : "best-fit";
}

static void print_stream(const result *r)
{
    char p50[32] = "-", p99[32] = "-", att[32] = "-", fail[32] = "none";
    if (r->p50_us > 0) {
        snprintf(p50, sizeof p50, "%.0f", r->p50_us);
        snprintf(p99, sizeof p99, "%.0f", r->p99_us);
        snprintf(att, sizeof att, "%.2f", r->attempts);
    }
    if (r->first_fail >= 0) snprintf(fail, sizeof fail, "%d", r->first_fail + 1);
    printf("| %s | %s | %d / %d | %.0f | %.0f | %s | %s | %s | %.2f | %s | %.2f%% | %.2f%% | "
           "%.2f%% | %.2f%% |\n",
           r->mode, r->policy, r->allocated, r->claims, r->claims / r->alloc_s,
           1e6 * r->alloc_s / r->claims, p50, p99, att, r->parse_s, fail, r->gpus_at_fail,
           r->mem_at_fail, r->gpus_end, r->mem_end);
}

int main(int argc, char **argv)
{
    int nodes = 1000, per_root = 4, demand = 110, runs = 100;
    uint64_t seed = 1;
    const char *policy = "both";
    static const struct option opts[] = {{"nodes", required_argument, 0, 'n'},
                                         {"per-root", required_argument, 0, 'p'},
                                         {"demand", required_argument, 0, 'd'},
                                         {"seed", required_argument, 0, 's'},
                                         {"runs", required_argument, 0, 'r'},
                                         {"policy", required_argument, 0, 'P'},
                                         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': nodes = atoi(optarg); break;
        case 'p': per_root = atoi(optarg); break;
        case 'd': demand = atoi(optarg); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'r': runs = atoi(optarg); break;
        case 'P': policy = optarg; break;
        default: return 2;
        }
    }
    bool first = !strcmp(policy, "first") || !strcmp(policy, "both");
    bool best = !strcmp(policy, "best-fit") || !strcmp(policy, "both");
    if (nodes < 1 || nodes > 9999 || (per_root != 2 && per_root != 4) || demand < 1 || runs < 1 ||
        !(first || best)) {
        fprintf(stderr,
                "usage: cs-dra-bench [--nodes N] [--per-root 2|4] [--demand PCT] [--seed S] "
                "[--runs R] [--policy first|best-fit|both]\n");
        return 2;
    }
    int n;
    spec *st = make_stream(nodes, demand, seed, &n);
    if (!st) die("stream", NULL);
    printf("%d nodes x %d GPUs (%d per PCIe root), %d claims, seed %llu\n\n", nodes, GPUS, per_root,
           n, (unsigned long long)seed);
    printf("| mode | policy | allocated | claims/s | mean us/claim | p50 us | p99 us | "
           "allocate calls/claim | parse s | first failure (claim #) | GPUs in use then | "
           "GPU memory then | GPUs in use at end | GPU memory at end |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    cs_dra_policy pols[2];
    int n_pols = 0;
    if (first) pols[n_pols++] = CS_DRA_POLICY_FIRST;
    if (best) pols[n_pols++] = CS_DRA_POLICY_BEST_FIT;
    for (int i = 0; i < n_pols; i++) {
        result r = run_fleet(nodes, per_root, seed, st, n, pols[i]);
        r.policy = policy_name(pols[i]);
        print_stream(&r);
    }
    for (int i = 0; i < n_pols; i++) {
        result r = run_nodes(nodes, per_root, seed, st, n, pols[i]);
        r.policy = policy_name(pols[i]);
        print_stream(&r);
    }
    free(st);

    /* 1,000 GPUs: 125 nodes. The second fleet shares 10Gi of every GPU but the last 7
     * (claims of 8 shares fill node after node in device order; one more takes 1). */
    cs_sbuf fleet, used;
    cs_sbuf_init(&fleet, 0);
    uint64_t rng = seed;
    put_class(&fleet);
    for (int i = 0; i < 125; i++) put_node(&fleet, &rng, i, per_root);
    cs_sbuf_init(&used, 0);
    cs_sbuf_append(&used, fleet.data, fleet.len);
    spec eight_shares = {8, false, 41}, one_share = {1, false, 41};
    for (int i = 0; i < 124; i++) put_claim(&used, i, &eight_shares, NULL);
    put_claim(&used, 124, &one_share, NULL);
    spec eight = {8, true, 0};
    printf("\n| unsatisfiable claim, 1,000 GPUs | policy | p50 ms | max ms | runs | bound |\n");
    printf("|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_pols; i++) {
        double max, p50 = unsatisfiable_ms(fleet.data, fleet.len, &eight,
                                           "resource.kubernetes.io/pcieRoot", pols[i], runs, &max);
        printf("| 8 GPUs, matchAttribute pcieRoot, all free | %s | %.3f | %.3f | %d | 10 ms |\n",
               policy_name(pols[i]), p50, max, runs);
        p50 = unsatisfiable_ms(used.data, used.len, &eight, "gpu.nvidia.com/productName", pols[i],
                               runs, &max);
        printf("| 8 whole GPUs, matchAttribute productName, 7 free | %s | %.3f | %.3f | %d | "
               "10 ms |\n",
               policy_name(pols[i]), p50, max, runs);
    }
    cs_sbuf_free(&fleet);
    cs_sbuf_free(&used);
    return 0;
}
