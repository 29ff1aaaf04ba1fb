/*
 * pbtxt_test.c - the protobuf text reader and Triton's model configuration on it: Triton's
 * own example config.pbtxt read field by field, every syntax form (colons, lists, repeated
 * fields, <...>, comments, strings with escapes, separators), the errors with their lines,
 * the depth bound, truncated input at every length, and the strict and lenient readings of
 * unknown fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/pbtxt.h"
#include "api/triton_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *parse_ok(const char *text)
{
    json_t *j = NULL;
    cs_error err;
    cs_status rc = cs_pbtxt_parse(text, strlen(text), &j, &err);
    if (rc != CS_OK) fail_msg("parse failed: %s", err.msg);
    return j;
}

static void expect_json(const char *text, const char *want)
{
    json_t *j = parse_ok(text);
    json_error_t jerr;
    json_t *w = json_loads(want, 0, &jerr);
    assert_non_null(w);
    if (!json_equal(j, w)) {
        char *got = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("%s\n  read as %s\n  want    %s", text, got, want);
    }
    json_decref(j);
    json_decref(w);
}

static void expect_error(const char *text, cs_status code, const char *part)
{
    json_t *j = (json_t *)1;
    cs_error err;
    cs_status rc = cs_pbtxt_parse(text, strlen(text), &j, &err);
    if (rc != code) fail_msg("'%s': status %d, want %d (%s)", text, rc, code, err.msg);
    assert_null(j);
    if (!strstr(err.msg, part)) fail_msg("'%s': message '%s' lacks '%s'", text, err.msg, part);
}

static const char triton_example[] =
    "# From Triton's model configuration guide, for an ONNX model.\n"
    "name: \"densenet_onnx\"\n"
    "platform: \"onnxruntime_onnx\"\n"
    "max_batch_size : 8\n"
    "input [\n"
    "  {\n"
    "    name: \"data_0\"\n"
    "    data_type: TYPE_FP32\n"
    "    format: FORMAT_NCHW\n"
    "    dims: [ 3, 224, 224 ]\n"
    "  }\n"
    "]\n"
    "output [\n"
    "  {\n"
    "    name: \"fc6_1\"\n"
    "    data_type: TYPE_FP32\n"
    "    dims: [ 1000 ]\n"
    "    label_filename: \"densenet_labels.txt\"\n"
    "  }\n"
    "]\n"
    "instance_group [ { count: 2 kind: KIND_CPU }, { count: 1, kind: KIND_CPU } ]\n"
    "dynamic_batching {\n"
    "  preferred_batch_size: [ 4, 8 ]\n"
    "  max_queue_delay_microseconds: 100\n"
    "}\n"
    "version_policy: { specific { versions: 1 versions: 3 } }\n"
    "model_warmup [ { name: \"w\" batch_size: 1 } ]\n";

static void test_triton_example(void **state)
{
    (void)state;
    json_t *j = parse_ok(triton_example);
    cs_triton_config tc;
    char warnings[256];
    cs_error err;
    assert_int_equal(cs_triton_config_read(j, false, &tc, warnings, sizeof warnings, &err), CS_OK);
    assert_string_equal(tc.name, "densenet_onnx");
    assert_int_equal(tc.max_batch_size, 8);
    assert_int_equal(tc.n_inputs, 1);
    assert_string_equal(tc.inputs[0].name, "data_0");
    assert_int_equal(tc.inputs[0].dtype, CS_DTYPE_FLOAT32);
    assert_int_equal(tc.inputs[0].rank, 3);
    assert_int_equal(tc.inputs[0].dims[2], 224);
    assert_int_equal(tc.n_outputs, 1);
    assert_int_equal(tc.outputs[0].dims[0], 1000);
    assert_int_equal(tc.instances, 3);
    assert_true(tc.dynamic_batching);
    assert_int_equal(tc.n_preferred, 2);
    assert_int_equal(tc.preferred[1], 8);
    assert_int_equal(tc.max_queue_delay_us, 100);
    assert_int_equal(tc.policy, CS_TRITON_POLICY_SPECIFIC);
    assert_int_equal(tc.n_versions, 2);
    assert_int_equal(tc.versions[1], 3);
    assert_string_equal(warnings, "model_warmup"); /* skipped, named */
    /* Strictly (the API's `config`), the same field is an error naming it. */
    assert_int_equal(cs_triton_config_read(j, true, &tc, NULL, 0, &err), CS_ERR_INVALID);
    assert_non_null(strstr(err.msg, "model_warmup"));
    json_decref(j);
}

static void test_syntax_forms(void **state)
{
    (void)state;
    expect_json("", "{}");
    expect_json("a: 1 b: -2 c: 1.5 d: 1e3 e: 0x10 f: 2.5f", "{\"a\":1,\"b\":-2,\"c\":1.5,"
                                                            "\"d\":1000.0,\"e\":16,\"f\":2.5}");
    expect_json("a: true b: false c: True d: KIND_GPU", "{\"a\":true,\"b\":false,\"c\":true,"
                                                        "\"d\":\"KIND_GPU\"}");
    expect_json("s: 'one' \"two\" t: \"\\n\\t\\\"\\\\\\101\\x42\"",
                "{\"s\":\"onetwo\",\"t\":\"\\n\\t\\\"\\\\AB\"}");
    expect_json("m { a: 1 } n: { b: 2 } o < c: 3 >", "{\"m\":{\"a\":1},\"n\":{\"b\":2},"
                                                     "\"o\":{\"c\":3}}");
    expect_json("d: 1 d: 2 d: [3, 4]", "{\"d\":[1,2,3,4]}");
    expect_json("d: [] e [ {x: 1}, {x: 2} ]", "{\"d\":[],\"e\":[{\"x\":1},{\"x\":2}]}");
    expect_json("a: 1; b: 2, # a comment\n c: 3 # to the end", "{\"a\":1,\"b\":2,\"c\":3}");
    expect_json("g { x: 1 } g { x: 2 }", "{\"g\":[{\"x\":1},{\"x\":2}]}");
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("a 1", CS_ERR_PARSE, "':'");
    expect_error("a:", CS_ERR_PARSE, "expected a value");
    expect_error("a: \"open", CS_ERR_PARSE, "not closed");
    expect_error("a: \"two\nlines\"", CS_ERR_PARSE, "line 1");
    expect_error("\n\nm { a: 1", CS_ERR_PARSE, "line 3");
    expect_error("a: [1, 2", CS_ERR_PARSE, "list");
    expect_error("a: [1 2]", CS_ERR_PARSE, "list");
    expect_error("a: [[1]]", CS_ERR_PARSE, "expected a value");
    expect_error("a: 1x", CS_ERR_PARSE, "number");
    expect_error("a: -inf", CS_ERR_PARSE, "number");
    expect_error("a: -nan", CS_ERR_PARSE, "number");
    expect_error("a: 1e999", CS_ERR_PARSE, "number");
    expect_error("}", CS_ERR_PARSE, "field name");
    expect_error("3: 1", CS_ERR_PARSE, "field name");
    expect_error("a: \"\\x\"", CS_ERR_PARSE, "hex");
    expect_error("a: \"\xff\"", CS_ERR_PARSE, "UTF-8");
}

static void test_depth_bound(void **state)
{
    (void)state;
    char deep[4 * (CS_PBTXT_MAX_DEPTH + 2) + 8];
    size_t n = 0;
    for (int i = 0; i <= CS_PBTXT_MAX_DEPTH; i++) n += (size_t)sprintf(deep + n, "a {");
    deep[n] = '\0';
    expect_error(deep, CS_ERR_LIMIT, "deeper");
    n = 0;
    for (int i = 0; i < CS_PBTXT_MAX_DEPTH; i++) n += (size_t)sprintf(deep + n, "a{");
    for (int i = 0; i < CS_PBTXT_MAX_DEPTH; i++) deep[n++] = '}';
    deep[n] = '\0';
    json_decref(parse_ok(deep));
}

/* Every prefix of a real file either reads or fails cleanly (no crash, no leak: ASan). */
static void test_every_prefix(void **state)
{
    (void)state;
    size_t len = strlen(triton_example);
    for (size_t n = 0; n <= len; n++) {
        json_t *j = NULL;
        cs_error err;
        if (cs_pbtxt_parse(triton_example, n, &j, &err) == CS_OK) {
            cs_triton_config tc;
            (void)cs_triton_config_read(j, false, &tc, NULL, 0, &err);
            json_decref(j);
        } else {
            assert_null(j);
            assert_true(err.msg[0] != '\0');
        }
    }
}

static void test_config_values(void **state)
{
    (void)state;
    static const struct {
        const char *text, *part;
    } bad[] = {
        {"max_batch_size: -1", "max_batch_size"},
        {"max_batch_size: \"x\"", "integer"},
        {"platform: \"tensorrt_plan\"", "ONNX"},
        {"input { data_type: TYPE_FP32 }", "name"},
        {"input { name: \"x\" data_type: TYPE_FLOAT }", "data_type"},
        {"input { name: \"x\" dims: [1,2,3,4,5,6,7,8,9] }", "8 dimensions"},
        {"instance_group { count: 0 }", "count"},
        {"instance_group { kind: KIND_MODEL }", "kind"},
        {"dynamic_batching { preferred_batch_size: [1,2,3,4,5,6,7,8,9] }", "8 sizes"},
        {"max_batch_size: 2 dynamic_batching { preferred_batch_size: 4 }", "above"},
        {"version_policy { latest { num_versions: 0 } }", "num_versions"},
        {"version_policy { newest { } }", "latest, all or specific"},
        {"version_policy { specific { } }", "versions"},
        {"default_model_filename: \"model.plan\"", "model.onnx"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = parse_ok(bad[i].text);
        cs_triton_config tc;
        cs_error err;
        assert_int_equal(cs_triton_config_read(j, false, &tc, NULL, 0, &err), CS_ERR_INVALID);
        if (!strstr(err.msg, bad[i].part))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].text, err.msg, bad[i].part);
        json_decref(j);
    }
    /* JSON as Triton writes it: 64-bit integers as strings, repeated fields of one. */
    json_error_t jerr;
    json_t *j = json_loads("{\"max_batch_size\": 4, \"input\": {\"name\": \"x\", \"dims\": "
                           "[\"-1\", \"3\"]}, \"dynamic_batching\": "
                           "{\"max_queue_delay_microseconds\": \"250\"}}",
                           0, &jerr);
    cs_triton_config tc;
    cs_error err;
    assert_int_equal(cs_triton_config_read(j, true, &tc, NULL, 0, &err), CS_OK);
    assert_int_equal(tc.inputs[0].dims[0], -1);
    assert_int_equal(tc.inputs[0].dims[1], 3);
    assert_int_equal(tc.max_queue_delay_us, 250);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_triton_example), cmocka_unit_test(test_syntax_forms),
        cmocka_unit_test(test_errors),         cmocka_unit_test(test_depth_bound),
        cmocka_unit_test(test_every_prefix),   cmocka_unit_test(test_config_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
