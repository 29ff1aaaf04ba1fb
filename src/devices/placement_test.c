/*
 * placement_test.c - instances' claims through the structured API: NUMA nodes shared by
 * cores with concrete CPUs, a simulated GPU shared by memory, the reason a claim does not
 * fit, release, a deployment's JSON requests with field paths, and many threads claiming
 * and releasing at once without two claims ever holding one CPU.
 */
#include "devices/placement.h"

#include "base/alloc.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* Two NUMA nodes (4 and 2 cores) and a GPU whose 16Gi of memory claims share. */
static const char fleet[] =
    "apiVersion: resource.k8s.io/v1\n"
    "kind: ResourceSlice\n"
    "metadata: {name: cpu}\n"
    "spec:\n"
    "  driver: cpu.capstan.dev\n"
    "  pool: {name: node, generation: 1, resourceSliceCount: 1}\n"
    "  nodeName: node\n"
    "  devices:\n"
    "  - name: numa-0\n"
    "    allowMultipleAllocations: true\n"
    "    attributes: {numaNode: {int: 0}, coreCPUs: {string: '0-3'}}\n"
    "    capacity:\n"
    "      cores: {value: '4', requestPolicy: {default: '1', validRange: {min: '1', step: '1'}}}\n"
    "  - name: numa-1\n"
    "    allowMultipleAllocations: true\n"
    "    attributes: {numaNode: {int: 1}, coreCPUs: {string: '8,10'}}\n"
    "    capacity:\n"
    "      cores: {value: '2', requestPolicy: {default: '1', validRange: {min: '1', step: '1'}}}\n"
    "---\n"
    "apiVersion: resource.k8s.io/v1\n"
    "kind: ResourceSlice\n"
    "metadata: {name: gpu}\n"
    "spec:\n"
    "  driver: gpu.nvidia.com\n"
    "  pool: {name: node, generation: 1, resourceSliceCount: 1}\n"
    "  nodeName: node\n"
    "  devices:\n"
    "  - name: gpu-0\n"
    "    allowMultipleAllocations: true\n"
    "    attributes: {index: {int: 3}, productName: {string: simulated}}\n"
    "    capacity:\n"
    "      memory: {value: 16Gi, requestPolicy: {default: 1Gi, validRange: {min: 1Gi, step: "
    "1Gi}}}\n";

static cs_dra_state *open_fleet(const char *text)
{
    char path[] = "/tmp/cs-placement-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    cs_dra_state_options o = {.devices_file = path};
    cs_dra_state *st = NULL;
    cs_error err;
    cs_status rc = cs_dra_state_new(&o, &st, &err);
    unlink(path);
    if (rc != CS_OK) fail_msg("%s", err.msg);
    return st;
}

/* One request of `amount` of capacity `cap` from class `cls`. */
static cs_status claim1(cs_dra_state *st, const char *name, const char *cls, const char *cap,
                        cs_quantity amount, cs_placement *p, cs_error *err)
{
    cs_dra_qty_entry q = {cap, amount};
    cs_dra_request r = {.name = "r", .class_name = cls, .cap_requests = &q, .n_cap_requests = 1};
    return cs_placement_claim(st, name, &r, 1, p, err);
}

static cs_status cores(cs_dra_state *st, const char *name, int n, cs_placement *p, cs_error *err)
{
    return claim1(st, name, "cpu.capstan.dev", "cores", (cs_quantity){n * 1000, CS_QTY_DECIMAL_SI},
                  p, err);
}

static cs_status gib(cs_dra_state *st, const char *name, int n, cs_placement *p, cs_error *err)
{
    return claim1(st, name, "gpu.nvidia.com", "memory",
                  (cs_quantity){(int64_t)n * 1000 * (1 << 30), CS_QTY_BINARY_SI}, p, err);
}

static void expect_cpus(const cs_placement *p, const char *device, const int *want, size_t n)
{
    assert_int_equal(p->n_devices, 1);
    assert_string_equal(p->devices[0].driver, "cpu.capstan.dev");
    assert_string_equal(p->devices[0].pool, "node");
    assert_string_equal(p->devices[0].device, device);
    assert_non_null(p->devices[0].share_id);
    assert_int_equal(p->n_cpus, n);
    assert_int_equal(p->devices[0].n_cpus, n);
    for (size_t i = 0; i < n; i++) assert_int_equal(p->cpus[i], want[i]);
    assert_int_equal(p->gpu, -1);
}

static void numa_nodes_are_shared_by_cores(void **unused)
{
    cs_dra_state *st = open_fleet(fleet);
    cs_placement a, b, c, d;
    cs_error err;
    assert_int_equal(cores(st, "a", 3, &a, &err), CS_OK);
    expect_cpus(&a, "numa-0", (int[]){0, 1, 2}, 3);
    assert_int_equal(cores(st, "b", 2, &b, &err), CS_OK); /* numa-0 has 1 left */
    expect_cpus(&b, "numa-1", (int[]){8, 10}, 2);
    assert_int_equal(cores(st, "c", 1, &c, &err), CS_OK);
    expect_cpus(&c, "numa-0", (int[]){3}, 1);
    /* Every core is taken now. */
    assert_int_equal(cores(st, "d", 1, &d, &err), CS_ERR_NO_FIT);
    assert_string_equal(err.msg, "ResourceClaim d: cannot be allocated: request r: no device of "
                                 "class cpu.capstan.dev has 1 cores free (the most free: "
                                 "cpu.capstan.dev/node/numa-0 with 0 of 4)");
    assert_int_equal(d.n_devices, 0);
    assert_int_equal(cs_placement_release(st, "a", &err), CS_OK);
    assert_int_equal(cs_placement_release(st, "a", &err), CS_ERR_NOT_FOUND);
    assert_int_equal(cores(st, "d", 2, &d, &err), CS_OK); /* the lowest free CPUs */
    expect_cpus(&d, "numa-0", (int[]){0, 1}, 2);
    /* The claim as the API lists it reports its CPUs where Kubernetes drivers report
     * per-device data. */
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    assert_int_equal(cs_dra_state_get(st, CS_DRA_KIND_CLAIM, "d", &out, &err), CS_OK);
    json_error_t jerr;
    json_t *j = json_loads(out.data, 0, &jerr);
    assert_non_null(j);
    json_t *res = json_array_get(
        json_object_get(
            json_object_get(json_object_get(json_object_get(j, "status"), "allocation"), "devices"),
            "results"),
        0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(res, "consumedCapacity"), "cores")), "2");
    json_t *dev = json_array_get(json_object_get(json_object_get(j, "status"), "devices"), 0);
    assert_string_equal(json_string_value(json_object_get(dev, "device")), "numa-0");
    assert_string_equal(json_string_value(json_object_get(dev, "shareID")),
                        json_string_value(json_object_get(res, "shareID")));
    json_t *cpus = json_object_get(json_object_get(dev, "data"), "cpus");
    assert_int_equal(json_array_size(cpus), 2);
    assert_int_equal(json_integer_value(json_array_get(cpus, 0)), 0);
    assert_int_equal(json_integer_value(json_array_get(cpus, 1)), 1);
    json_decref(j);
    cs_sbuf_free(&out);
    cs_placement_free(&a);
    cs_placement_free(&b);
    cs_placement_free(&c);
    cs_placement_free(&d);
    cs_dra_state_free(st);
}

/* A claim asking for no cores takes the policy's default (1); more than a node has fits
 * nowhere and says so. */
static void default_and_too_large(void **unused)
{
    cs_dra_state *st = open_fleet(fleet);
    cs_placement p;
    cs_error err;
    cs_dra_request r = {.name = "cpu", .class_name = "cpu.capstan.dev"};
    assert_int_equal(cs_placement_claim(st, "one", &r, 1, &p, &err), CS_OK);
    expect_cpus(&p, "numa-0", (int[]){0}, 1);
    cs_placement_free(&p);
    assert_int_equal(cores(st, "big", 5, &p, &err), CS_ERR_NO_FIT);
    assert_non_null(strstr(err.msg, "request r: 0 matching devices free, 1 needed"));
    cs_placement_free(&p);
    cs_dra_state_free(st);
}

static void gpu_is_shared_by_memory(void **unused)
{
    cs_dra_state *st = open_fleet(fleet);
    cs_placement a, b, c;
    cs_error err;
    assert_int_equal(gib(st, "a", 8, &a, &err), CS_OK);
    assert_int_equal(a.gpu, 3);
    assert_int_equal(a.gpu_memory, 8LL << 30);
    assert_int_equal(a.n_cpus, 0);
    assert_string_equal(a.devices[0].device, "gpu-0");
    assert_int_equal(gib(st, "b", 6, &b, &err), CS_OK);
    assert_int_equal(b.gpu, 3);
    assert_int_equal(b.gpu_memory, 6LL << 30);
    assert_int_equal(gib(st, "c", 4, &c, &err), CS_ERR_NO_FIT);
    assert_string_equal(err.msg, "ResourceClaim c: cannot be allocated: request r: no device of "
                                 "class gpu.nvidia.com has 4Gi memory free (the most free: "
                                 "gpu.nvidia.com/node/gpu-0 with 2Gi of 16Gi)");
    assert_int_equal(cs_placement_release(st, "b", &err), CS_OK);
    assert_int_equal(gib(st, "c", 4, &c, &err), CS_OK);
    assert_int_equal(c.gpu_memory, 4LL << 30);
    /* A request below the step is rounded up to it, as Kubernetes rounds it. */
    cs_placement_free(&b);
    assert_int_equal(claim1(st, "d", "gpu.nvidia.com", "memory",
                            (cs_quantity){500LL * 1000 * (1 << 20), CS_QTY_BINARY_SI}, &b, &err),
                     CS_OK);
    assert_int_equal(b.gpu_memory, 1LL << 30);
    cs_placement_free(&a);
    cs_placement_free(&b);
    cs_placement_free(&c);
    cs_dra_state_free(st);
}

/* One claim with a CPU and a GPU request gets both; a class that does not exist and a
 * name in use are refused with what is wrong. */
static void several_requests_and_errors(void **unused)
{
    cs_dra_state *st = open_fleet(fleet);
    cs_placement p;
    cs_error err;
    cs_dra_qty_entry two = {"cores", {2000, CS_QTY_DECIMAL_SI}};
    cs_dra_request r[2] = {
        {.name = "cpu", .class_name = "cpu.capstan.dev", .cap_requests = &two, .n_cap_requests = 1},
        {.name = "gpu", .class_name = "gpu.nvidia.com"},
    };
    assert_int_equal(cs_placement_claim(st, "both", r, 2, &p, &err), CS_OK);
    assert_int_equal(p.n_devices, 2);
    assert_string_equal(p.devices[0].request, "cpu");
    assert_string_equal(p.devices[1].request, "gpu");
    assert_int_equal(p.n_cpus, 2);
    assert_int_equal(p.gpu, 3);
    assert_int_equal(p.gpu_memory, 1LL << 30); /* the policy's default */
    cs_placement_free(&p);
    assert_int_equal(cs_placement_claim(st, "both", r, 2, &p, &err), CS_ERR_EXISTS);
    cs_dra_request bad = {.name = "x", .class_name = "tpu.example.com"};
    assert_int_equal(cs_placement_claim(st, "x", &bad, 1, &p, &err), CS_ERR_NO_FIT);
    assert_non_null(strstr(err.msg, "tpu.example.com"));
    bad = (cs_dra_request){.name = "x", .class_name = "cpu.capstan.dev", .count = -1};
    assert_int_equal(cs_placement_claim(st, "x", &bad, 1, &p, &err), CS_ERR_INVALID);
    assert_string_equal(err.msg,
                        "ResourceClaim x: spec.devices.requests[0].exactly.count: must be > 0");
    assert_int_equal(cs_placement_claim(st, "Bad_Name", r, 1, &p, &err), CS_ERR_INVALID);
    cs_placement_free(&p);
    cs_dra_state_free(st);
}

static cs_status parse(const char *json, cs_arena *a, cs_dra_request **out, size_t *n,
                       cs_error *err)
{
    json_error_t jerr;
    json_t *j = json_loads(json, 0, &jerr);
    assert_non_null(j);
    cs_status rc =
        cs_placement_parse_requests(j, "spec.resources.devices.requests", a, out, n, err);
    json_decref(j);
    return rc;
}

static void deployment_requests_from_json(void **unused)
{
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_dra_request *r = NULL;
    size_t n = 0;
    cs_error err;
    assert_int_equal(parse("[{\"name\": \"cpu\", \"exactly\": {\"deviceClassName\": "
                           "\"cpu.capstan.dev\", \"capacity\": {\"requests\": {\"cores\": 2}}, "
                           "\"selectors\": [{\"cel\": {\"expression\": "
                           "\"device.attributes['cpu.capstan.dev'].numaNode == 1\"}}]}}]",
                           &a, &r, &n, &err),
                     CS_OK);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].class_name, "cpu.capstan.dev");
    assert_int_equal(r[0].count, 1);
    assert_int_equal(r[0].n_cap_requests, 1);
    assert_int_equal(r[0].cap_requests[0].value.milli, 2000);
    cs_dra_state *st = open_fleet(fleet);
    cs_placement p;
    assert_int_equal(cs_placement_claim(st, "web-0", r, n, &p, &err), CS_OK);
    expect_cpus(&p, "numa-1", (int[]){8, 10}, 2); /* the selector chose node 1 */
    cs_placement_free(&p);
    cs_dra_state_free(st);

    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"{}", "spec.resources.devices.requests: must be a list"},
        {"[{\"name\": \"g\", \"exactly\": {}}]",
         "spec.resources.devices.requests[0].exactly.deviceClassName: required"},
        {"[{\"name\": \"g\", \"exactly\": {\"deviceClassName\": \"c\", \"count\": 0}}]",
         "spec.resources.devices.requests[0].exactly.count: must be > 0"},
        {"[{\"name\": \"g\", \"exactly\": {\"deviceClassName\": \"c\", \"cout\": 2}}]",
         "spec.resources.devices.requests[0].exactly.cout: unknown field"},
        {"[{\"name\": \"g\", \"exactly\": {\"deviceClassName\": \"c\"}}, {\"name\": \"g\", "
         "\"exactly\": {\"deviceClassName\": \"c\"}}]",
         "spec.resources.devices.requests[1].name: duplicate 'g'"},
        {"[{\"name\": \"g\", \"exactly\": {\"deviceClassName\": \"c\", \"capacity\": "
         "{\"requests\": {\"cores\": \"lots\"}}}}]",
         "spec.resources.devices.requests[0].exactly.capacity.requests.cores: "},
        {"[{\"name\": \"g\", \"exactly\": {\"deviceClassName\": \"c\", \"selectors\": "
         "[{\"cel\": {\"expression\": \"device.\"}}]}}]",
         "spec.resources.devices.requests[0].exactly.selectors[0].cel.expression: "},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(parse(bad[i].json, &a, &r, &n, &err), CS_ERR_INVALID);
        if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
            fail_msg("%s: got '%s', want '%s...'", bad[i].json, err.msg, bad[i].msg);
        assert_null(r);
        assert_int_equal(n, 0);
    }
    cs_arena_free(&a);
}

/* An inventory whose coreCPUs do not match its cores is refused with the field. */
static void core_cpus_must_match_cores(void **unused)
{
    static const char *const bad[] = {"0-2", "0-3,3", "3-0", "0,,1", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[sizeof fleet + 64];
        const char *at = strstr(fleet, "'0-3'");
        snprintf(text, sizeof text, "%.*s'%s'%s", (int)(at - fleet), fleet, bad[i], at + 5);
        cs_dra_set set;
        cs_dra_set_init(&set);
        cs_error err;
        assert_int_equal(cs_dra_read(&set, text, strlen(text), "f", &err), CS_ERR_INVALID);
        assert_non_null(
            strstr(err.msg, "ResourceSlice cpu: spec.devices[0].attributes.coreCPUs: "));
        cs_dra_set_free(&set);
    }
}

/* A requestPolicy the API server would refuse is refused, with the field. */
static void request_policy_is_checked(void **unused)
{
    static const struct {
        const char *from, *to, *msg;
    } bad[] = {
        {"numa-0\n    allowMultipleAllocations: true\n", "numa-0\n",
         "spec.devices[0].capacity.cores.requestPolicy: needs allowMultipleAllocations: true"},
        {"{default: '1', validRange: {min: '1', step: '1'}}", "{validRange: {min: '1'}}",
         "spec.devices[0].capacity.cores.requestPolicy: default: required with validRange"},
        {"{default: '1', validRange: {min: '1', step: '1'}}",
         "{default: '0', validRange: {min: '1'}}",
         "spec.devices[0].capacity.cores.requestPolicy: default: must lie within validRange"},
        {"{default: '1', validRange: {min: '1', step: '1'}}",
         "{default: '3', validValues: ['1', '2']}",
         "spec.devices[0].capacity.cores.requestPolicy: default: must be one of validValues"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char text[sizeof fleet + 64];
        const char *at = strstr(fleet, bad[i].from);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - fleet), fleet, bad[i].to,
                 at + strlen(bad[i].from));
        cs_dra_set set;
        cs_dra_set_init(&set);
        cs_error err;
        assert_int_equal(cs_dra_read(&set, text, strlen(text), "f", &err), CS_ERR_INVALID);
        if (!strstr(err.msg, bad[i].msg)) fail_msg("got '%s', want '%s'", err.msg, bad[i].msg);
        cs_dra_set_free(&set);
    }
}

/* This machine's own devices: a claim for one core gets one CPU of this machine. */
static void discovered_cpus(void **unused)
{
    cs_dra_state_options o = {0};
    cs_dra_state *st = NULL;
    cs_error err;
    assert_int_equal(cs_dra_state_new(&o, &st, &err), CS_OK);
    cs_placement p;
    assert_int_equal(cores(st, "one", 1, &p, &err), CS_OK);
    assert_int_equal(p.n_cpus, 1);
    assert_true(p.cpus[0] >= 0 && p.cpus[0] < sysconf(_SC_NPROCESSORS_CONF));
    cs_placement_free(&p);
    cs_dra_state_free(st);
}

/* A claim the --devices file brings allocated keeps the CPUs its status.devices names. */
static void file_claim_keeps_its_cpus(void **unused)
{
    static const char held[] =
        "---\napiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: held}\n"
        "spec: {devices: {requests: [{name: r, exactly: {deviceClassName: cpu.capstan.dev}}]}}\n"
        "status:\n  allocation: {devices: {results: [{request: r, driver: cpu.capstan.dev, "
        "pool: node, device: numa-0, shareID: s1, consumedCapacity: {cores: '2'}}]}}\n"
        "  devices: [{driver: cpu.capstan.dev, pool: node, device: numa-0, shareID: s1, data: "
        "{cpus: [1, 2]}}]\n";
    char text[sizeof fleet + sizeof held];
    snprintf(text, sizeof text, "%s%s", fleet, held);
    cs_dra_state *st = open_fleet(text);
    cs_placement p;
    cs_error err;
    assert_int_equal(cores(st, "next", 2, &p, &err), CS_OK);
    expect_cpus(&p, "numa-0", (int[]){0, 3}, 2);
    cs_placement_free(&p);
    cs_dra_state_free(st);
}

static size_t n_claims(cs_dra_state *st)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    assert_int_equal(cs_dra_state_list(st, CS_DRA_KIND_CLAIM, &out), CS_OK);
    size_t n = 0;
    for (const char *p = out.data; (p = strstr(p, "\"kind\": \"ResourceClaim\"")); p++) n++;
    cs_sbuf_free(&out);
    return n;
}

/* Every allocation of a placement fails in turn: the call fails cleanly (out of memory,
 * said as such) and keeps nothing, until it succeeds. */
static void allocation_failure_keeps_nothing(void **unused)
{
    cs_dra_state *st = open_fleet(fleet);
    cs_placement p;
    cs_error err;
    cs_status rc = CS_ERR_NOMEM;
    for (long k = 0; k < 100000 && rc != CS_OK; k++) {
        cs_alloc_fail_after(k);
        rc = cores(st, "a", 1, &p, &err);
        cs_alloc_fail_after(-1);
        if (rc != CS_OK) {
            assert_non_null(strstr(err.msg, "out of memory"));
            assert_int_equal(n_claims(st), 0);
            assert_int_equal(p.n_devices, 0);
        }
        cs_placement_free(&p);
    }
    assert_int_equal(rc, CS_OK);
    assert_int_equal(n_claims(st), 1);
    cs_dra_state_free(st);
}

/* ---- threads ---- */

#define THREADS 8
#define ROUNDS  40

static cs_dra_state *shared_st;
static atomic_int owner[16];      /* CPU -> thread holding it + 1, 0 free */
static atomic_int placed, broken; /* fail_msg belongs to the main thread */

static void *churn(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        char name[32];
        snprintf(name, sizeof name, "t%d-%d", id, i);
        cs_placement p;
        cs_error err;
        cs_status rc = cores(shared_st, name, 1 + (i % 2), &p, &err);
        if (rc == CS_OK) {
            for (size_t k = 0; k < p.n_cpus; k++) {
                int free_ = 0;
                if (!atomic_compare_exchange_strong(&owner[p.cpus[k]], &free_, id + 1))
                    atomic_store(&broken, 1); /* a CPU held twice */
            }
            atomic_fetch_add(&placed, 1);
            for (size_t k = 0; k < p.n_cpus; k++) atomic_store(&owner[p.cpus[k]], 0);
            if (cs_placement_release(shared_st, name, &err) != CS_OK) atomic_store(&broken, 2);
        } else if (rc != CS_ERR_NO_FIT) {
            atomic_store(&broken, 3);
        }
        cs_placement_free(&p);
    }
    return NULL;
}

static void threads_never_share_a_cpu(void **unused)
{
    shared_st = open_fleet(fleet);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churn, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&broken), 0);
    assert_true(atomic_load(&placed) > 0);
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    assert_int_equal(cs_dra_state_list(shared_st, CS_DRA_KIND_CLAIM, &out), CS_OK);
    assert_null(strstr(out.data, "ResourceClaim")); /* everything was released */
    cs_sbuf_free(&out);
    cs_dra_state_free(shared_st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(numa_nodes_are_shared_by_cores),
        cmocka_unit_test(default_and_too_large),
        cmocka_unit_test(gpu_is_shared_by_memory),
        cmocka_unit_test(several_requests_and_errors),
        cmocka_unit_test(deployment_requests_from_json),
        cmocka_unit_test(core_cpus_must_match_cores),
        cmocka_unit_test(request_policy_is_checked),
        cmocka_unit_test(discovered_cpus),
        cmocka_unit_test(file_claim_keeps_its_cpus),
        cmocka_unit_test(allocation_failure_keeps_nothing),
        cmocka_unit_test(threads_never_share_a_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
