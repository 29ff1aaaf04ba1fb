/*
 * dra_test.c - unit tests for what the YAML conformance suite (tests/dra) does not reach:
 * read -> write -> read round trips with fields capstan does not interpret, unknown-field
 * and malformed-YAML errors with line numbers, YAML features refused on purpose,
 * consumable-capacity rounding at its edges, allocation failure at every point, and the
 * unsatisfiable-claim timing check (correctness asserted, time printed).
 */
#include "devices/dra_int.h"

#include "base/alloc.h"
#include "base/clock.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static const char sample[] =
    "apiVersion: resource.k8s.io/v1\n"
    "kind: DeviceClass\n"
    "metadata: {name: gpu, labels: {team: ml}}\n"
    "spec:\n"
    "  selectors: [{cel: {expression: 'device.driver == \"gpu.example.com\"'}}]\n"
    "  config: [{opaque: {driver: gpu.example.com, parameters: {sharing: 'true'}}}]\n"
    "---\n"
    "apiVersion: resource.k8s.io/v1\n"
    "kind: ResourceSlice\n"
    "metadata: {name: s, uid: 1234, resourceVersion: \"77\"}\n"
    "spec:\n"
    "  driver: gpu.example.com\n"
    "  pool: {name: p, generation: 3, resourceSliceCount: 1}\n"
    "  nodeName: node-1\n"
    "  devices:\n"
    "  - name: gpu-0\n"
    "    attributes: {model: {string: \"true\"}, cc: {version: 9.0.0}, numa: {int: -1}}\n"
    "    capacity: {memory: {value: 80Gi}}\n"
    "---\n"
    "apiVersion: resource.k8s.io/v1\n"
    "kind: ResourceClaim\n"
    "metadata:\n"
    "  name: c\n"
    "  namespace: team-a\n"
    "  annotations: {note: \"keep: me\", empty: ''}\n"
    "  finalizers: [x]\n"
    "spec:\n"
    "  devices:\n"
    "    requests:\n"
    "    - name: r\n"
    "      exactly:\n"
    "        deviceClassName: gpu\n"
    "        tolerations: [{key: k, operator: Exists, effect: NoSchedule}]\n"
    "    config:\n"
    "    - requests: [r]\n"
    "      opaque: {driver: gpu.example.com, parameters: {n: 1.5, list: [a, null, 3]}}\n"
    "status:\n"
    "  reservedFor: [{resource: pods, name: p, uid: abc}]\n";

static char *write_all(cs_dra_set *set, bool json)
{
    cs_sbuf out;
    cs_sbuf_init(&out, 0);
    cs_error err;
    assert_int_equal(cs_dra_write_claims(set, json, &out, &err), CS_OK);
    return cs_sbuf_take(&out);
}

static void round_trip(void **state)
{
    cs_dra_set a, b, c;
    cs_error err;
    cs_dra_set_init(&a);
    cs_dra_set_init(&b);
    cs_dra_set_init(&c);
    assert_int_equal(cs_dra_read(&a, sample, strlen(sample), "sample", &err), CS_OK);
    const cs_dra_slice *s = *(cs_dra_slice **)cs_vec_at(&a.slices, 0);
    assert_int_equal(s->generation, 3);
    assert_string_equal(s->devices[0].attrs[0].value.s, "true");
    assert_int_equal(s->devices[0].attrs[2].value.i, -1);
    cs_dra_options opt = {.node = "node-1"};
    assert_int_equal(cs_dra_allocate(&a, &opt, &err), CS_OK);
    char *first = write_all(&a, false);
    /* Metadata and status fields capstan does not interpret survive, quoting included. */
    assert_non_null(strstr(first, "note: 'keep: me'"));
    assert_non_null(strstr(first, "reservedFor:"));
    assert_non_null(strstr(first, "source: FromClass"));
    assert_non_null(strstr(first, "operator: Exists"));
    assert_non_null(strstr(first, "- null"));
    /* The output is input again: an allocated claim reads back unchanged. */
    assert_int_equal(cs_dra_read(&b, first, strlen(first), "first", &err), CS_OK);
    char *second = write_all(&b, false);
    assert_string_equal(first, second);
    const cs_dra_claim *claim = *(cs_dra_claim **)cs_vec_at(&b.claims, 0);
    assert_true(claim->allocated_on_input);
    assert_int_equal(claim->n_results, 1);
    assert_string_equal(claim->results[0].device, "gpu-0");
    /* JSON keeps YAML's types: numbers and null stay unquoted, quoted strings stay strings. */
    char *json = write_all(&b, true);
    assert_non_null(strstr(json, "\"n\": 1.5"));
    assert_non_null(strstr(json, "null"));
    assert_non_null(strstr(json, "\"kind\": \"List\""));
    assert_int_equal(cs_dra_read(&c, json, strlen(json), "json", &err), CS_OK);
    assert_int_equal(c.claims.len, 1);
    cs_free(first);
    cs_free(second);
    cs_free(json);
    cs_dra_set_free(&a);
    cs_dra_set_free(&b);
    cs_dra_set_free(&c);
}

/* Reads text and expects a failure whose message contains every given fragment. */
static void expect_error(const char *text, int n, ...)
{
    cs_dra_set set;
    cs_error err;
    cs_dra_set_init(&set);
    assert_int_not_equal(cs_dra_read(&set, text, strlen(text), "in.yaml", &err), CS_OK);
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++) {
        const char *want = va_arg(ap, const char *);
        if (!strstr(err.msg, want)) fail_msg("'%s' lacks '%s'", err.msg, want);
    }
    va_end(ap);
    cs_dra_set_free(&set);
}

static void errors_name_field_and_line(void **state)
{
    expect_error("apiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nmetadata: {name: s}\n"
                 "spec:\n  driver: d\n  pool: {name: p}\n  nodeName: n\n"
                 "  devices:\n  - name: x\n    atributes: {}\n",
                 3, "ResourceSlice s: spec.devices[0].atributes: unknown field", "(line 10)", "");
    expect_error("kind: DeviceClass\napiVersion: resource.k8s.io/v1\nmetadata: {name: c}\n"
                 "spec: {selectors: [{cel: {expression: 'device.driver =='}}]}\n",
                 2, "DeviceClass c: spec.selectors[0].cel.expression", "column");
    expect_error("a: [1, 2\nb: 3\n", 2, "in.yaml: line ", "");
    expect_error("kind: ResourceClaim\napiVersion: resource.k8s.io/v1\nmetadata: {name: c}\n"
                 "spec: {devices: {requests: [{name: r, exactly: {deviceClassName: g, count: "
                 "x}}]}}\n",
                 2, "spec.devices.requests[0].exactly.count: 'x' is not an integer", "(line 4)");
    expect_error("kind: ResourceClaim\napiVersion: resource.k8s.io/v1beta1\nmetadata: {name: c}\n",
                 1, "apiVersion must be resource.k8s.io/v1");
    expect_error("kind: ResourceSlice\napiVersion: resource.k8s.io/v1\nmetadata: {name: s}\n"
                 "spec: {driver: d, pool: {name: p}, allNodes: true,\n"
                 "  devices: [{name: a, nodeName: n}]}\n",
                 1, "spec.devices[0]: nodeName, allNodes and nodeSelector need");
    expect_error("kind: ResourceSlice\napiVersion: resource.k8s.io/v1\nmetadata: {name: s}\n"
                 "spec: {driver: d, pool: {name: p}, nodeSelector: {nodeSelectorTerms: [\n"
                 "  {matchFields: [{key: metadata.name, operator: Exists}]}]}}\n",
                 2,
                 "spec.nodeSelector.nodeSelectorTerms[0].matchFields[0]: operator: must be In or "
                 "NotIn",
                 "(line 5)");
    expect_error("kind: ResourceClaim\napiVersion: resource.k8s.io/v1\nmetadata: {name: c}\n"
                 "spec: {devices: {requests: [{name: r, exactly: {deviceClassName: g}}],\n"
                 "  constraints: [{matchAttribute: numa}]}}\n",
                 1, "must be fully qualified");
    expect_error("kind: ResourceClaim\napiVersion: resource.k8s.io/v1\nmetadata: {name: c}\n"
                 "spec: {devices: {requests: [{name: r, exactly: {deviceClassName: g}}],\n"
                 "  constraints: [{requests: [q], matchAttribute: a/b}]}}\n",
                 1, "'q' is not a request of this claim");
}

static void refused_yaml(void **state)
{
    expect_error("a: &x {b: 1}\nc: *x\n", 2, "anchors", "line 1");
    expect_error("{a: 1, a: 2}\n", 1, "duplicate key 'a'");
    char deep[400];
    size_t n = 0;
    for (int i = 0; i < 100; i++) deep[n++] = '[';
    deep[n] = '\0';
    expect_error(deep, 1, "nesting deeper than 64");
}

static void capacity_rounding(void **state)
{
    cs_quantity vals[] = {{10, 0}, {50, 0}, {100, 0}};
    cs_dra_capacity range = {.value = {1000, 0},
                             .has_policy = true,
                             .has_range = true,
                             .has_max = true,
                             .has_step = true,
                             .has_default = true,
                             .def = {7, 0},
                             .min = {10, 0},
                             .max = {100, 0},
                             .step = {20, 0}};
    cs_dra_capacity valid = {
        .value = {1000, 0}, .has_policy = true, .valid_values = vals, .n_valid_values = 3};
    cs_dra_capacity none = {.value = {1000, 0}};
    struct {
        const cs_dra_capacity *cap;
        int64_t req; /* -1: not requested */
        bool ok;
        int64_t want;
    } cases[] = {
        {&range, 1, true, 10},   {&range, 10, true, 10},   {&range, 11, true, 30},
        {&range, 90, true, 90},  {&range, 91, false, 0},   {&range, -1, true, 7},
        {&valid, 1, true, 10},   {&valid, 50, true, 50},   {&valid, 51, true, 100},
        {&valid, 101, false, 0}, {&valid, -1, true, 1000}, {&none, 3, true, 3},
        {&none, -1, true, 1000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cs_quantity req = {cases[i].req, 0}, out = {0, 0};
        bool ok = cs__dra_consumed(cases[i].cap, cases[i].req < 0 ? NULL : &req, &out);
        assert_int_equal(ok, cases[i].ok);
        if (ok) assert_int_equal(out.milli, cases[i].want);
    }
}

/* Every allocation in read, allocate and write fails once in turn: errors, never crashes
 * or leaks (the sanitizer build checks the leaks). */
static void allocation_failures(void **state)
{
    for (long n = 0; n < 100000; n++) {
        cs_dra_set set;
        cs_error err;
        cs_sbuf out;
        cs_sbuf_init(&out, 0);
        cs_dra_set_init(&set);
        cs_alloc_fail_after(n);
        cs_dra_options opt = {.policy = CS_DRA_POLICY_BEST_FIT};
        bool ok = cs_dra_read(&set, sample, strlen(sample), "sample", &err) == CS_OK &&
                  cs_dra_allocate(&set, &opt, &err) == CS_OK &&
                  cs_dra_write_claims(&set, n % 2, &out, &err) == CS_OK;
        cs_alloc_fail_after(-1);
        cs_sbuf_free(&out);
        cs_dra_set_free(&set);
        if (ok) return;
    }
    fail_msg("never succeeded");
}

/* 1,000 devices, a claim for 8 that must share a NUMA node, and no node has 8: the
 * answer must be "cannot be allocated" (asserted) and fast (printed, not asserted). */
static void unsatisfiable_is_fast(void **state)
{
    cs_sbuf y;
    cs_sbuf_init(&y, 0);
    cs_sbuf_puts(&y,
                 "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata: {name: gpu}\n"
                 "spec: {selectors: [{cel: {expression: 'device.driver == \"g.example.com\"'}}]}\n"
                 "---\napiVersion: resource.k8s.io/v1\nkind: ResourceSlice\n"
                 "metadata: {name: s}\nspec:\n  driver: g.example.com\n"
                 "  pool: {name: p, generation: 1, resourceSliceCount: 1}\n"
                 "  allNodes: true\n  devices:\n");
    for (int i = 0; i < 1000; i++)
        cs_sbuf_printf(&y, "  - {name: d%d, attributes: {numa: {int: %d}}}\n", i, i % 143);
    cs_sbuf_puts(&y, "---\napiVersion: resource.k8s.io/v1\nkind: ResourceClaim\n"
                     "metadata: {name: eight}\nspec:\n  devices:\n"
                     "    requests: [{name: r, exactly: {deviceClassName: gpu, count: 8}}]\n"
                     "    constraints: [{matchAttribute: g.example.com/numa}]\n");
    cs_dra_set set;
    cs_error err;
    cs_dra_set_init(&set);
    assert_int_equal(cs_dra_read(&set, y.data, y.len, "gen", &err), CS_OK);
    cs_dra_options opt = {.policy = CS_DRA_POLICY_FIRST};
    uint64_t t0 = cs_now_ns();
    assert_int_equal(cs_dra_allocate(&set, &opt, &err), CS_OK);
    uint64_t t1 = cs_now_ns();
    const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set.claims, 0);
    assert_int_equal(c->state, CS_DRA_UNALLOCATABLE);
    assert_null(strstr(c->reason, "search steps"));
    printf("unsatisfiable claim (8 devices, matchAttribute, 1000 devices): %.3f ms\n",
           (double)(t1 - t0) / 1e6);
    cs_dra_set_free(&set);
    cs_sbuf_free(&y);
}

/* Claims read after an allocate call must see what that call allocated: a second
 * cs_dra_allocate on the same set (a scheduler adding claims one at a time) must not hand
 * out a device again, exclusive or shared past its capacity. */
static void later_calls_see_earlier_allocations(void **state)
{
    static const char fleet[] =
        "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata: {name: gpu}\n"
        "spec: {selectors: [{cel: {expression: 'device.driver == \"g.example.com\"'}}]}\n"
        "---\napiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nmetadata: {name: s}\n"
        "spec:\n  driver: g.example.com\n  pool: {name: p, generation: 1, resourceSliceCount: 1}\n"
        "  nodeName: n\n  devices:\n  - {name: d0, attributes: {whole: {bool: true}}}\n"
        "  - {name: d1, attributes: {whole: {bool: false}}, allowMultipleAllocations: true,\n"
        "     capacity: {memory: {value: 8Gi}}}\n";
    static const char whole[] =
        "apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: w}\n"
        "spec: {devices: {requests: [{name: r, exactly: {deviceClassName: gpu, selectors: "
        "[{cel: {expression: 'device.attributes[\"g.example.com\"].whole'}}]}}]}}\n";
    static const char share[] =
        "apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: s}\n"
        "spec: {devices: {requests: [{name: r, exactly: {deviceClassName: gpu, "
        "capacity: {requests: {memory: 6Gi}}}}]}}\n";
    const char *docs[] = {whole, whole, share, share};
    const cs_dra_claim_state want[] = {CS_DRA_ALLOCATED, CS_DRA_UNALLOCATABLE, CS_DRA_ALLOCATED,
                                       CS_DRA_UNALLOCATABLE};
    cs_dra_set set;
    cs_error err;
    cs_dra_options opt = {.policy = CS_DRA_POLICY_FIRST};
    cs_dra_set_init(&set);
    assert_int_equal(cs_dra_read(&set, fleet, strlen(fleet), "fleet", &err), CS_OK);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(cs_dra_read(&set, docs[i], strlen(docs[i]), "claim", &err), CS_OK);
        assert_int_equal(cs_dra_allocate(&set, &opt, &err), CS_OK);
        const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set.claims, i);
        assert_int_equal(c->state, want[i]);
    }
    cs_dra_set_free(&set);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(errors_name_field_and_line),
        cmocka_unit_test(refused_yaml),
        cmocka_unit_test(capacity_rounding),
        cmocka_unit_test(allocation_failures),
        cmocka_unit_test(unsatisfiable_is_fast),
        cmocka_unit_test(later_calls_see_earlier_allocations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
