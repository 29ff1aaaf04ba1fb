/*
 * cel_test.c - the CEL selector subset against one test GPU: a table of expressions with
 * their expected outcome (true, false, runtime error, compile error at a column), plus
 * nesting and length bounds, the cost limit, semantic versions and concurrent evaluation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/alloc.h"
#include "devices/cel.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the test device ---------------------------------------------------------------- */

typedef struct attr_row {
    const char *domain, *name;
    cs_cel_attr_type type;
    int64_t i;
    const char *s;
} attr_row;

static const attr_row attrs[] = {
    {"gpu.nvidia.com", "productName", CS_CEL_ATTR_STRING, 0, "NVIDIA H100 80GB HBM3"},
    {"gpu.nvidia.com", "index", CS_CEL_ATTR_INT, 3, NULL},
    {"gpu.nvidia.com", "uuid", CS_CEL_ATTR_STRING, 0, "GPU-5c2a9e1f"},
    {"gpu.nvidia.com", "cudaComputeCapability", CS_CEL_ATTR_VERSION, 0, "9.0.0"},
    {"gpu.nvidia.com", "driverVersion", CS_CEL_ATTR_VERSION, 0, "550.54.15"},
    {"gpu.nvidia.com", "type", CS_CEL_ATTR_STRING, 0, "gpu"},
    {"gpu.nvidia.com", "mig-capable", CS_CEL_ATTR_BOOL, 1, NULL},
    {"resource.kubernetes.io", "pcieRoot", CS_CEL_ATTR_STRING, 0, "pci0000:00"},
    {"dra.example.com", "numa", CS_CEL_ATTR_INT, 1, NULL},
    {"dra.example.com", "goodPattern", CS_CEL_ATTR_STRING, 0, "^NVIDIA H[0-9]+"},
    {"dra.example.com", "badPattern", CS_CEL_ATTR_STRING, 0, "("},
    {"dra.example.com", "badVersion", CS_CEL_ATTR_VERSION, 0, "9.0"},
};

static bool get_attr(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    for (size_t k = 0; k < sizeof attrs / sizeof *attrs; k++) {
        const attr_row *r = &attrs[k];
        if (strcmp(r->domain, domain) || strcmp(r->name, name)) continue;
        out->type = r->type;
        out->i = r->i;
        out->b = r->i != 0;
        out->s = r->s;
        return true;
    }
    return false;
}

static bool get_capacity(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    const char *text = NULL;
    if (!strcmp(domain, "gpu.nvidia.com") && !strcmp(name, "memory")) text = "80Gi";
    if (!strcmp(domain, "gpu.nvidia.com") && !strcmp(name, "multiprocessors")) text = "132";
    if (!text) return false;
    out->type = CS_CEL_ATTR_QUANTITY;
    return cs_quantity_parse(text, &out->q, NULL) == CS_OK;
}

/* Qualified names as a ResourceSlice writes them: bare in the driver's domain. */
static const char *get_entry(void *ud, bool capacity, size_t i)
{
    static char names[sizeof attrs / sizeof *attrs][96];
    static const char *const caps[] = {"memory", "multiprocessors"};
    if (capacity) return i < 2 ? caps[i] : NULL;
    if (i >= sizeof attrs / sizeof *attrs) return NULL;
    if (!strcmp(attrs[i].domain, "gpu.nvidia.com")) return attrs[i].name;
    snprintf(names[i], sizeof names[i], "%s/%s", attrs[i].domain, attrs[i].name);
    return names[i];
}

static const cs_cel_env gpu = {"gpu.nvidia.com", get_attr, get_capacity, NULL, false, get_entry};

/* ---- the table ---------------------------------------------------------------------- */

enum { T, F, RT, CE, LIM };

typedef struct row {
    const char *expr;
    int want;
    int col; /* CE: the column the message must name (0: any) */
} row;

#define A "device.attributes[\"gpu.nvidia.com\"]"
#define C "device.capacity[\"gpu.nvidia.com\"]"

static const row rows[] = {
    /* device fields and attribute access */
    {"device.driver == \"gpu.nvidia.com\"", T},
    {"device.driver == \"other\"", F},
    /* device.allowMultipleAllocations (resource.k8s.io/v1 in 1.34): false when unset. */
    {"device.allowMultipleAllocations", F},
    {"!device.allowMultipleAllocations && has(device.allowMultipleAllocations)", T},
    {"device.allowMultipleAllocations == 1", CE},
    {"device.allowMultiple", CE},
    {A ".productName == \"NVIDIA H100 80GB HBM3\"", T},
    {A "[\"productName\"] == \"NVIDIA H100 80GB HBM3\"", T},
    {A ".index == 3", T},
    {A "[\"mig-capable\"]", T},
    {A "[\"mig-capable\"] == true", T},
    {"device.attributes[\"dra.example.com\"].numa == 1", T},
    {"device.attributes[\"resource.kubernetes.io\"].pcieRoot.startsWith(\"pci\")", T},
    {"device.attributes[device.driver].index == 3", T},
    {C ".memory == quantity(\"80Gi\")", T},
    /* strings */
    {A ".productName.startsWith(\"NVIDIA\")", T},
    {A ".productName.endsWith(\"HBM3\")", T},
    {A ".productName.contains(\"H100\")", T},
    {A ".productName.contains(\"A100\")", F},
    {A ".productName.matches(\"^NVIDIA H[0-9]+ [0-9]+GB\")", T},
    {A ".productName.matches(\"a{2}\")", F},
    {"matches(" A ".uuid, \"^GPU-[0-9a-f]+$\")", T},
    {A ".productName.matches(device.attributes[\"dra.example.com\"].goodPattern)", T},
    {"\"abc\".matches(device.attributes[\"dra.example.com\"].badPattern)", RT},
    {"size(\"h\\u00e9llo\") == 5 && \"abc\".size() == 3 && size([1, 2, 3]) == 3", T},
    {"\"\" .startsWith(\"\") && \"abc\".contains(\"\")", T},
    /* literals and escapes */
    {"\"a\\\"b\" == 'a\"b'", T},
    {"\"\\x41\\101\\u00e9\" == \"AA\xc3\xa9\"", T},
    {"r\"\\n\" != \"\\n\" && size(r\"\\n\") == 2", T},
    {"'''two\nlines'''.contains(\"\\n\")", T},
    {"\"\\t\".size() == 1 && \"\\\\\".size() == 1", T},
    {"0x10 == 16 && -9223372036854775808 < 0", T},
    {"1.5e3 > 1499 && .5 < 1", T},
    /* lists, in, has */
    {A ".index in [1, 2, 3]", T},
    {A ".index in [4, 5]", F},
    {A ".type in [\"gpu\", \"vgpu\"]", T},
    {A ".index in [\"3\"]", F}, /* dyn: a value of another type is simply not there */
    {A ".index in []", F},
    {"[1, 2] == [1, 2] && [1, 2] != [2, 1] && [[1], [2]] == [[1], [2]]", T},
    {"[1, 2, 3][1] == 2", T},
    {"[1][5] == 1", RT},
    {"[1, 2,][1] == 2", T},
    {"\"uuid\" in " A, T},
    {"\"nope\" in " A, F},
    {"has(" A ".uuid)", T},
    {"has(" A ".missing)", F},
    {"has(device.attributes[\"nope.example.com\"].uuid)", F},
    {"has(" C ".memory) && !has(" C ".bandwidth)", T},
    {"has(device.driver)", T},
    {"has(" A "[\"uuid\"])", CE, 1},
    {"has(1)", CE, 1},
    /* macros over lists (cel-go's all, exists, exists_one, map, filter) */
    {"[1, 2, 3].all(x, x > 0)", T},
    {"[1, 2, 3].all(x, x > 1)", F},
    {"[].all(x, x > 1) && ![].exists(x, x > 1)", T},
    {"[1, 2, 3].exists(x, x == 2)", T},
    {"[1, 2, 3].exists(x, x == 4)", F},
    {"[1, 2, 3].exists_one(x, x > 2)", T},
    {"[1, 2, 3].exists_one(x, x > 1)", F},
    {"[1, 2, 3].map(x, x * 2) == [2, 4, 6]", T},
    {"[1, 2, 3].map(x, x > 1, x * 10) == [20, 30]", T},
    {"[1, 2, 3, 4].filter(x, x % 2 == 0) == [2, 4]", T},
    {"[1, 2].all(x, [3, 4].all(y, y > x))", T},
    {"[[1, 2], [3]].exists(l, l.exists(x, x == 3))", T},
    {"[1, 2].map(x, [x, x]) == [[1, 1], [2, 2]]", T},
    {"[\"a\", \"b\"].all(s, s.size() == 1)", T},
    {"[1, 2].all(x, x > 0) && x > 0", CE, 25},
    {"[1].all(1, true)", CE, 9},
    {"[1].all(x, 1)", CE, 12},
    {"1.all(x, true)", CE, 3},
    {"[1].exists(x, \"a\".startsWith(x))", CE},
    /* errors in all/exists are absorbed when another element decides, as in cel-go */
    {"[0, 1].all(x, 1 / x > 5)", F},
    {"[1, 0].all(x, 1 / x > 5)", F},
    {"[1, 0].all(x, 1 / x >= 1)", RT},
    {"[0, 1].exists(x, 1 / x == 1)", T},
    {"[1, 0].exists(x, 1 / x == 2)", RT},
    {"[0, 1].exists_one(x, 1 / x == 1)", RT},
    {"[0, 1].map(x, 1 / x) == [1]", RT},
    {"[0, 1].filter(x, 1 / x == 1) == [1]", RT},
    {"[1, \"a\"].all(x, x == 1)", RT}, /* like A.index == "3": an error here */
    {"[1, \"a\"].exists(x, x == 1)", T},
    /* the attribute and capacity maps: domain -> name -> value, as Kubernetes builds them */
    {"\"gpu.nvidia.com\" in device.attributes", T},
    {"\"dra.example.com\" in device.attributes && \"resource.kubernetes.io\" in device.attributes",
     T},
    {"\"nope.example.com\" in device.attributes", F},
    {"\"gpu.nvidia.com\" in device.capacity && !(\"dra.example.com\" in device.capacity)", T},
    {"\"gpu.nvidia.com/memory\" in device.capacity", F}, /* keys are domains, not names */
    {"\"memory\" in device.capacity[\"gpu.nvidia.com\"]", T},
    {"size(device.attributes) == 3 && device.attributes.size() == 3", T},
    {"size(" A ") == 7 && size(device.capacity[\"gpu.nvidia.com\"]) == 2", T},
    {"size(device.attributes[\"nope.example.com\"]) == 0", T},
    {"device.attributes.exists(d, d.endsWith(\".nvidia.com\"))", T},
    {"device.attributes.all(d, d.contains(\".\"))", T},
    {"device.attributes.exists_one(d, d.startsWith(\"dra.\"))", T},
    {"device.attributes.filter(d, d.endsWith(\".com\")).size() == 2", T},
    {A ".exists(n, n == \"uuid\")", T},
    {A ".all(n, n != \"memory\")", T},
    {"device.capacity[\"gpu.nvidia.com\"].all(n, device.capacity[\"gpu.nvidia.com\"][n]"
     ".isGreaterThan(quantity(\"100\")))",
     T},
    {"device.attributes.exists(d, has(device.attributes[d].numa) && "
     "device.attributes[d].numa == 1)",
     T},
    {"device.attributes.all(d, device.attributes[d].all(n, n.size() > 0))", T},
    {A ".all(n, " A "[n] != 0)", RT},   /* a string attribute compared with an int */
    {A ".exists(n, " A "[n] == 3)", T}, /* index == 3 decides; others absorbed */
    {"device.attributes == device.capacity", CE, 8},
    {"device.attributes", CE},
    /* cel.bind (ext.Bindings, as Kubernetes' DRA environment enables it) */
    {"cel.bind(dra, device.attributes[\"dra.example.com\"], dra.numa == 1 && has(dra.goodPattern))",
     T},
    {"cel.bind(x, 2, x * x == 4)", T},
    {"cel.bind(x, 2, cel.bind(y, x + 1, x * y == 6))", T},
    {"cel.bind(x, 1, cel.bind(x, 2, x == 2)) ", T}, /* the inner name shadows */
    {"cel.bind(m, device.capacity, m[\"gpu.nvidia.com\"].memory == quantity(\"80Gi\"))", T},
    {"cel.bind(x, 1 / 0, true)", T}, /* an unused error value does not surface */
    {"cel.bind(x, 1 / 0, x == 1)", RT},
    {"cel.bind(l, [1, 2, 3], l.all(v, v > 0) && l.size() == 3)", T},
    {"cel.bind(x, x, true)", CE, 13},
    {"cel.bind(1, 2, true)", CE, 10},
    {"cel.unbind(x, 1, true)", CE, 5},
    /* string extensions Kubernetes enables (ext.Strings) */
    {"\"a,b,c\".split(\",\") == [\"a\", \"b\", \"c\"]", T},
    {"\"a,b,c\".split(\",\", 2) == [\"a\", \"b,c\"]", T},
    {"\"a,b,c\".split(\",\", 0) == [] && \"a,b\".split(\",\", -1).size() == 2", T},
    {"\"a,\".split(\",\") == [\"a\", \"\"] && \"\".split(\",\") == [\"\"]", T},
    {"\"h\\u00e9\".split(\"\") == [\"h\", \"\\u00e9\"] && \"\".split(\"\") == []", T},
    {A ".productName.split(\" \").exists(w, w == \"H100\")", T},
    {A ".productName.lowerAscii() == \"nvidia h100 80gb hbm3\"", T},
    {A ".uuid.upperAscii() == \"GPU-5C2A9E1F\"", T},
    {"\"a\".split(1)", CE},
    /* quantities */
    {C ".memory.compareTo(quantity(\"40Gi\")) == 1", T},
    {C ".memory.compareTo(quantity(\"80Gi\")) == 0", T},
    {C ".memory.isGreaterThan(quantity(\"40Gi\"))", T},
    {C ".memory.isLessThan(quantity(\"81Gi\"))", T},
    {C ".memory.isLessThan(quantity(\"80Gi\"))", F},
    {"quantity(\"80Gi\") == quantity(\"81920Mi\") && quantity(\"1\") == quantity(\"1000m\")", T},
    {"quantity(\"1\") == quantity(\"1001m\")", F},
    {C ".memory.add(quantity(\"16Gi\")) == quantity(\"96Gi\")", T},
    {C ".memory.sub(quantity(\"16Gi\")).isGreaterThan(quantity(\"60Gi\"))", T},
    {"quantity(\"1\").add(2).asInteger() == 3 && quantity(\"5\").sub(2).asInteger() == 3", T},
    {C ".memory.asInteger() == 85899345920", T},
    {"quantity(\"1.5\").asInteger() == 1", RT},
    {"quantity(\"1.5\").asApproximateFloat() > 1.4", T},
    {"quantity(\"-2\").sign() == -1 && quantity(\"0\").sign() == 0", T},
    {"quantity(\"1500m\").isInteger() == false && quantity(\"2k\").isInteger()", T},
    {"isQuantity(\"40Gi\") && !isQuantity(\"40Gb\")", T},
    {"quantity(\"40Gb\") == quantity(\"1\")", RT},
    /* exact beyond the int64 milli range, as Kubernetes' quantities (cel_quantity_test.c) */
    {"quantity(\"8Pi\").add(quantity(\"8Pi\")) == quantity(\"16Pi\")", T},
    {"quantity(\"1\") < quantity(\"2\")", CE, 15},
    /* semantic versions */
    {A ".cudaComputeCapability.isGreaterThan(semver(\"8.0.0\"))", T},
    {A ".cudaComputeCapability.compareTo(semver(\"9.0.0\")) == 0", T},
    {A ".cudaComputeCapability == semver(\"9.0.0\")", T},
    {A ".driverVersion.isLessThan(semver(\"560.0.0\"))", T},
    {A ".driverVersion.major() == 550 && " A ".driverVersion.minor() == 54 && " A
       ".driverVersion.patch() == 15",
     T},
    {"semver(\"1.0.0-alpha\").isLessThan(semver(\"1.0.0\"))", T},
    {"semver(\"1.0.0\").isGreaterThan(semver(\"1.0.0\"))", F},
    {"semver(\"v1.2\", true) == semver(\"1.2.0\")", T},
    {"isSemver(\"1.2.3\") && !isSemver(\"1.2\") && isSemver(\"v01.2\", true)", T},
    {"semver(\"1.2\") == semver(\"1.2.0\")", RT},
    {"device.attributes[\"dra.example.com\"].badVersion.major() == 9", RT},
    {"has(device.attributes[\"dra.example.com\"].badVersion)", T},
    /* operators and precedence */
    {"1 + 2 * 3 == 7 && (1 + 2) * 3 == 9 && 10 - 4 - 3 == 3", T},
    {"7 / 2 == 3 && 7 % 2 == 1 && -7 / 2 == -3 && -7 % 2 == -1", T},
    {"true || false && false", T},
    {"(true || false) && false", F},
    {"!false && !!true", T},
    {"1 < 2 == true", T},
    {"1 < 1.5 && 2.5 >= 2 && -1.5 < -1", T},
    {"\"abc\" < \"abd\" && \"ab\" < \"abc\" && false < true", T},
    {"1 == 1.0", CE, 3},
    /* ternaries */
    {A ".index == 3 ? true : false", T},
    {A ".index > 5 ? false : " A ".index > 2 ? true : false", T},
    {"false ? false : true ? false : true", F},
    {"(" A ".index > 2 ? \"big\" : \"small\") == \"big\"", T},
    {A ".index ? true : false", RT},
    {"true ? 1 : \"a\"", CE, 6},
    {"1 ? true : false", CE, 1},
    /* errors are values: && and || absorb them commutatively */
    {A ".missing == 1", RT},
    {"device.attributes[\"nope.example.com\"].x == 1", RT},
    {"false && " A ".missing == 1", F},
    {A ".missing == 1 && false", F},
    {"true || " A ".missing == 1", T},
    {A ".missing == 1 || true", T},
    {A ".missing == 1 && true", RT},
    {"false || " A ".missing == 1", RT},
    {"1 / 0 == 1 || true", T},
    {A "[\"mig-capable\"] && " A ".index", RT},
    {A ".index == 1 || " A ".index", RT},
    /* types */
    {A ".index == \"3\"", RT},
    {A ".productName > 1", RT},
    {"device.driver == 1", CE, 15},
    {"1 == \"a\"", CE, 3},
    {A ".productName.startsWith(1)", CE, 49},
    {"1 in [\"a\"]", CE, 3},
    {"-\"a\" == \"b\"", CE, 1},
    {"!1", CE, 1},
    {"1 + 1", CE, 3},
    {"quantity(1) == quantity(\"1\")", CE, 1},
    {"\"a\".foo()", CE, 5},
    {"device.driver.size", CE, 15},
    /* integer overflow */
    {"9223372036854775807 + 1 > 0", RT},
    {"-9223372036854775807 - 2 < 0", RT},
    {"9223372036854775807 * 2 > 0", RT},
    {"-(-9223372036854775807 - 1) > 0", RT},
    {"1 / 0 == 0", RT},
    {"1 % 0 == 0", RT},
    {"9223372036854775808 > 0", CE, 1},
    {"- -9223372036854775808 > 0", CE, 1},
    /* syntax */
    {"device.driver == ", CE, 18},
    {"(1 == 1", CE, 8},
    {"1 == 1 1", CE, 8},
    {"foo == 1", CE, 1},
    {"device == 1", CE, 1},
    {"device.attributes == 1", CE, 8},
    {"device.nope == 1", CE, 8},
    {"\"abc", CE, 1},
    {"\"a\\qb\" == \"a\"", CE, 3},
    {"\"a\nb\" == \"a\"", CE, 3},
    {"1u == 1", CE, 1},
    {"{} == 1", CE, 1},
    {"null == 1", CE, 1},
    {"1 == 1 # 2", CE, 8},
    {"\"abc\".matches(\"(\")", CE, 15},
    {"\"aa\".matches(\"(a)\\\\1\")", CE, 14},
    {"\"a\".matches(\"((a{100}){100}){100}\")", CE, 13},
    {"\"aa\".matches(\"a+++++++++++++++++++++++++++++++++++++++++\")", CE, 14}, /* fuzz OOM */
    {"\"aa\".matches(\"a{2}+\") || \"aa\".matches(\"a**\")", CE, 14},
    {"\"aa\".matches(\"a+?\") && \"ab\".matches(\"(a)+b?\")", T},
    {"1 == 1 &&\n  foo", CE, 0},
    {"", CE, 1},
    {"true // a comment", T},
};

static void run_row(const row *r)
{
    cs_cel_program *p = NULL;
    cs_error err;
    cs_error_clear(&err);
    cs_status rc = cs_cel_compile(r->expr, &p, &err);
    if (r->want == CE) {
        if (rc != CS_ERR_PARSE)
            fail_msg("%s: compiled (%s), expected a compile error", r->expr, cs_strerror(rc));
        char col[32];
        snprintf(col, sizeof col, "column %d:", r->col);
        if (r->col && !strstr(err.msg, col))
            fail_msg("%s: message \"%s\" should name %s", r->expr, err.msg, col);
        assert_null(p);
        return;
    }
    if (rc != CS_OK) fail_msg("%s: %s", r->expr, err.msg);
    bool result = false;
    rc = cs_cel_eval(p, &gpu, 0, &result, &err);
    if (r->want == RT) {
        if (rc != CS_ERR_INVALID)
            fail_msg("%s: got %s (%d), expected a runtime error", r->expr, cs_strerror(rc), result);
        assert_true(strncmp(err.msg, "column ", 7) == 0);
    } else {
        if (rc != CS_OK) fail_msg("%s: %s", r->expr, err.msg);
        if (result != (r->want == T)) fail_msg("%s: got %d", r->expr, result);
    }
    cs_cel_free(p);
}

static void test_table(void **state)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) run_row(&rows[i]);
}

/* A line break moves the position to "line 2, column 3". */
static void test_line_numbers(void **state)
{
    cs_cel_program *p = NULL;
    cs_error err;
    assert_int_equal(cs_cel_compile("1 == 1 &&\n  foo", &p, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "line 2, column 3"));
    assert_non_null(strstr(err.msg, "'foo'"));
}

static char *repeat3(const char *head, const char *mid, int n, const char *tail)
{
    size_t len = strlen(head) + strlen(mid) * (size_t)n + strlen(tail) + 1;
    char *s = malloc(len);
    assert_non_null(s);
    strcpy(s, head);
    for (int i = 0; i < n; i++) strcat(s, mid);
    strcat(s, tail);
    return s;
}

static cs_status compile_only(const char *expr, cs_error *err)
{
    cs_cel_program *p = NULL;
    cs_status rc = cs_cel_compile(expr, &p, err);
    cs_cel_free(p);
    return rc;
}

/* Nesting past the bounds is refused at compile time; long && chains are balanced. */
static void test_bounds(void **state)
{
    cs_error err;
    char *s = repeat3("", "(", 70, "true");
    char *deep = repeat3(s, ")", 70, "");
    assert_int_equal(compile_only(deep, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "nested"));
    free(s);
    free(deep);

    s = repeat3("", "!", 70, "true");
    assert_int_equal(compile_only(s, &err), CS_ERR_PARSE);
    free(s);
    s = repeat3("", "[", 70, "");
    assert_int_equal(compile_only(s, &err), CS_ERR_PARSE);
    free(s);

    s = repeat3("1", " + 1", 200, " > 0");
    assert_int_equal(compile_only(s, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "levels deep"));
    free(s);

    s = repeat3("false", " || false", 1000, " || true");
    cs_cel_program *p = NULL;
    assert_int_equal(cs_cel_compile(s, &p, &err), CS_OK);
    bool r = false;
    assert_int_equal(cs_cel_eval(p, &gpu, 0, &r, &err), CS_OK);
    assert_true(r);
    cs_cel_free(p);
    free(s);

    s = repeat3("true", " && true", 1300, ""); /* 10.4 KB: over the length limit */
    assert_int_equal(compile_only(s, &err), CS_ERR_PARSE);
    assert_non_null(strstr(err.msg, "limit"));
    free(s);
}

/* A tiny limit stops a long expression with CS_ERR_LIMIT, even where an error elsewhere
 * would have been absorbed; the default limit lets it run. */
static void test_cost_limit(void **state)
{
    char *s = repeat3(A ".productName.contains(\"HBM3\")", " && 1 + 2 * 3 == 7", 40, "");
    cs_cel_program *p = NULL;
    cs_error err;
    assert_int_equal(cs_cel_compile(s, &p, &err), CS_OK);
    bool r = false;
    assert_int_equal(cs_cel_eval(p, &gpu, 20, &r, &err), CS_ERR_LIMIT);
    assert_non_null(strstr(err.msg, "cost limit"));
    assert_int_equal(cs_cel_eval(p, &gpu, 0, &r, &err), CS_OK);
    assert_true(r);
    cs_cel_free(p);
    free(s);

    /* String work counts by length: one long literal against a limit just above the
     * node count fails. */
    s = repeat3("\"", "x", 5000, "\".contains(\"y\")");
    assert_int_equal(cs_cel_compile(s, &p, &err), CS_OK);
    assert_int_equal(cs_cel_eval(p, &gpu, 100, &r, &err), CS_ERR_LIMIT);
    assert_int_equal(cs_cel_eval(p, &gpu, 10000, &r, &err), CS_OK);
    assert_false(r);
    cs_cel_free(p);
    free(s);
}

/* Issue #10: a 10 KB selector over 256 devices held the allocator lock for 2.7 s. Now a
 * selector whose estimate passes the limit is refused at compile time, naming the estimate
 * and the limit, and one that compiles is stopped at run time by the budget on every
 * device whose attributes are larger than the estimate assumes (here a 64 KiB string). */
static char *long_name;

static bool get_long_attr(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    if (strcmp(name, "productName")) return get_attr(ud, domain, name, out);
    out->type = CS_CEL_ATTR_STRING;
    out->s = long_name;
    return true;
}

static void test_issue10_large_selector(void **state)
{
    /* Nested macros over two 1,201-element lists: 1.4e6 iterations of a regex match. */
    char *list = repeat3("[0", ", 12", 1200, "]");
    size_t len = strlen(list) * 2 + 128;
    char *expr = malloc(len);
    assert_non_null(expr);
    snprintf(expr, len, "%s.all(a, %s.all(b, " A ".productName.matches(\"^NV\")))", list, list);
    assert_true(strlen(expr) > 9000 && strlen(expr) <= 10240);
    cs_error err;
    cs_cel_program *p = NULL;
    assert_int_equal(cs_cel_compile(expr, &p, &err), CS_ERR_PARSE);
    assert_null(p);
    assert_non_null(strstr(err.msg, "exceeds cost limit"));
    assert_non_null(strstr(err.msg, "estimated cost"));
    assert_non_null(strstr(err.msg, "the limit is 1000000"));
    free(list);
    free(expr);

    /* 10 KB of alternatives, each reading the product name. */
    expr = repeat3("false", " || " A ".productName.contains(\"zzzz\")", 135, "");
    assert_true(strlen(expr) > 9000 && strlen(expr) <= 10240);
    assert_int_equal(cs_cel_compile(expr, &p, &err), CS_OK);
    long_name = malloc(64 * 1024 + 1);
    assert_non_null(long_name);
    memset(long_name, 'x', 64 * 1024);
    long_name[64 * 1024] = '\0';
    cs_cel_env env = gpu;
    env.attribute = get_long_attr;
    for (int dev = 0; dev < 256; dev++) {
        bool r = true;
        assert_int_equal(cs_cel_eval(p, &env, 0, &r, &err), CS_ERR_LIMIT);
        assert_non_null(strstr(err.msg, "cost limit of 1000000"));
    }
    bool r = true; /* the same selector on the real device runs and answers */
    assert_int_equal(cs_cel_eval(p, &gpu, 0, &r, &err), CS_OK);
    assert_false(r);
    cs_cel_free(p);
    free(long_name);
    free(expr);
}

/* Compile fails cleanly at every allocation the compiler makes. */
static void test_alloc_failure(void **state)
{
    const char *expr = A ".productName.matches(\"^NVIDIA\") && [1, 2][0] == 1";
    for (long n = 0;; n++) {
        cs_cel_program *p = NULL;
        cs_error err;
        cs_alloc_fail_after(n);
        cs_status rc = cs_cel_compile(expr, &p, &err);
        cs_alloc_fail_after(-1);
        if (rc == CS_OK) {
            bool r = false;
            assert_int_equal(cs_cel_eval(p, &gpu, 0, &r, &err), CS_OK);
            assert_true(r);
            cs_cel_free(p);
            break;
        }
        assert_int_equal(rc, CS_ERR_NOMEM);
        assert_null(p);
    }
}

static void test_semver(void **state)
{
    static const char *const order[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
                                        "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
                                        "1.0.0-rc.1",  "1.0.0",         "1.0.1",
                                        "1.1.0",       "2.0.0",         "10.0.0"};
    size_t n = sizeof order / sizeof *order;
    cs_semver v[12];
    for (size_t i = 0; i < n; i++) assert_int_equal(cs_semver_parse(order[i], &v[i], NULL), CS_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            assert_int_equal(cs_semver_cmp(&v[i], &v[j]), (i > j) - (i < j));
    cs_semver a, b;
    assert_int_equal(cs_semver_parse("1.2.3+build.5", &a, NULL), CS_OK);
    assert_int_equal(cs_semver_parse("1.2.3", &b, NULL), CS_OK);
    assert_int_equal(cs_semver_cmp(&a, &b), 0);
    static const char *const bad[] = {"",
                                      "1.2",
                                      "01.2.3",
                                      "1.2.3-",
                                      "1.2.3-01",
                                      "1.2.3+",
                                      "1.2.3.4",
                                      "a.b.c",
                                      "1.2.3-a..b",
                                      "v1.2.3",
                                      "99999999999999999999.0.0"};
    cs_error err;
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (cs_semver_parse(bad[i], &a, &err) != CS_ERR_INVALID) fail_msg("accepted '%s'", bad[i]);
    assert_non_null(strstr(err.msg, "semantic version"));
}

static const cs_cel_program *shared;

static void *eval_many(void *arg)
{
    for (int i = 0; i < 2000; i++) {
        bool r = false;
        cs_error err;
        if (cs_cel_eval(shared, &gpu, 0, &r, &err) != CS_OK || !r) return (void *)1;
    }
    return NULL;
}

/* One program, four threads: evaluation writes nothing into the program. */
static void test_threads(void **state)
{
    cs_cel_program *p = NULL;
    cs_error err;
    assert_int_equal(cs_cel_compile(A ".productName.matches(\"H1[0-9]0\") && " A
                                      ".index in [1, 2, 3] && " C
                                      ".memory.isGreaterThan(quantity(\"40Gi\"))",
                                    &p, &err),
                     CS_OK);
    shared = p;
    pthread_t t[4];
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&t[i], NULL, eval_many, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *ret = (void *)1;
        pthread_join(t[i], &ret);
        assert_null(ret);
    }
    cs_cel_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),         cmocka_unit_test(test_line_numbers),
        cmocka_unit_test(test_bounds),        cmocka_unit_test(test_cost_limit),
        cmocka_unit_test(test_alloc_failure), cmocka_unit_test(test_semver),
        cmocka_unit_test(test_threads),       cmocka_unit_test(test_issue10_large_selector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
