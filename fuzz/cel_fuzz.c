/*
 * cel_fuzz.c - libFuzzer target for the CEL selector compiler and evaluator: arbitrary
 * bytes are compiled and, when they compile, evaluated against a fixed GPU under the
 * default cost limit. The first byte picks a tiny limit sometimes, to exercise stopping.
 */
#include "devices/cel.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool attribute(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    static const struct {
        const char *name;
        cs_cel_attr_type type;
        const char *s;
        int64_t i;
    } attrs[] = {
        {"productName", CS_CEL_ATTR_STRING, "NVIDIA H100 80GB HBM3", 0},
        {"index", CS_CEL_ATTR_INT, NULL, 3},
        {"cudaComputeCapability", CS_CEL_ATTR_VERSION, "9.0.0", 0},
        {"driverVersion", CS_CEL_ATTR_VERSION, "550.54.15", 0},
        {"badVersion", CS_CEL_ATTR_VERSION, "1.x", 0},
        {"mig-capable", CS_CEL_ATTR_BOOL, NULL, 1},
        {"pattern", CS_CEL_ATTR_STRING, "^NV(IDIA)?", 0},
    };
    if (strcmp(domain, "gpu.nvidia.com")) return false;
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++)
        if (!strcmp(attrs[i].name, name)) {
            out->type = attrs[i].type;
            out->s = attrs[i].s;
            out->i = attrs[i].i;
            out->b = attrs[i].i != 0;
            return true;
        }
    return false;
}

static bool capacity(void *ud, const char *domain, const char *name, cs_cel_attr *out)
{
    if (strcmp(domain, "gpu.nvidia.com") || strcmp(name, "memory")) return false;
    out->type = CS_CEL_ATTR_QUANTITY;
    return cs_quantity_parse("80Gi", &out->q, NULL) == CS_OK;
}

static const char *entry(void *ud, bool cap, size_t i)
{
    static const char *const attrs[] = {
        "productName", "index",   "cudaComputeCapability", "driverVersion", "badVersion",
        "mig-capable", "pattern", "other.example.com/x"};
    if (cap) return i == 0 ? "memory" : NULL;
    return i < sizeof attrs / sizeof *attrs ? attrs[i] : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16 * 1024) return 0;
    char *expr = malloc(size + 1);
    if (!expr) return 0;
    memcpy(expr, data, size);
    expr[size] = '\0';
    cs_cel_program *p = NULL;
    cs_error err;
    if (cs_cel_compile(expr, &p, &err) == CS_OK) {
        static const cs_cel_env env = {"gpu.nvidia.com", attribute, capacity, NULL, false, entry};
        bool r;
        cs_cel_eval(p, &env, size && data[0] == ' ' ? 10 : 0, &r, &err);
        cs_cel_free(p);
    }
    /* Quantities and versions parse the same bytes too. */
    cs_quantity q;
    if (cs_quantity_parse(expr, &q, NULL) == CS_OK) {
        char buf[64];
        cs_quantity_format(q, buf, sizeof buf);
        cs_quantity back;
        if (cs_quantity_parse(buf, &back, NULL) != CS_OK || back.milli != q.milli) abort();
    }
    cs_semver sv;
    if (cs_semver_parse(expr, &sv, NULL) == CS_OK && cs_semver_cmp(&sv, &sv) != 0) abort();
    free(expr);
    return 0;
}
