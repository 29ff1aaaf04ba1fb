/*
 * cel.h - the subset of CEL (Common Expression Language) that DRA device selectors use.
 *
 * An expression is compiled once (cs_cel_compile) and evaluated per device against an
 * environment that exposes `device.driver`, `device.attributes["domain"].name` and
 * `device.capacity["domain"].name`. Supported: literals (int, string, bool, lists),
 * `in`, `has()`, == != < <= > >=, && || !, ?:, + - * / % on ints, string startsWith,
 * endsWith, contains, matches (POSIX ERE), split, lowerAscii, upperAscii, size(), the
 * all/exists/exists_one/map/filter macros over lists and the attribute and capacity maps,
 * cel.bind, quantity("40Gi") and isQuantity with compareTo, isGreaterThan, isLessThan, add,
 * sub, sign, isInteger, asInteger, asApproximateFloat (exact decimals at nano precision,
 * up to 38 significant digits, as Kubernetes' arbitrary-precision quantities), and semver("1.2.3")
 * with compareTo, isGreaterThan, isLessThan, major, minor, patch. As in Kubernetes, && and
 * || absorb errors when the other side decides the result, and a runtime error (a missing
 * attribute, a type mismatch) means the device does not match. A cost limit bounds every
 * evaluation.
 */
#ifndef CS_DEVICES_CEL_H
#define CS_DEVICES_CEL_H

#include <stdbool.h>
#include <stdint.h>

#include "capstan/status.h"
#include "devices/quantity.h"

typedef struct cs_cel_program cs_cel_program;

/* A device attribute or capacity value as the environment hands it to the evaluator. */
typedef enum cs_cel_attr_type {
    CS_CEL_ATTR_INT,
    CS_CEL_ATTR_BOOL,
    CS_CEL_ATTR_STRING,
    CS_CEL_ATTR_VERSION, /* a semantic version string, e.g. "12.4.0" */
    CS_CEL_ATTR_QUANTITY,
} cs_cel_attr_type;

typedef struct cs_cel_attr {
    cs_cel_attr_type type;
    int64_t i;
    bool b;
    const char *s; /* STRING and VERSION; borrowed for the evaluation */
    cs_quantity q; /* QUANTITY */
} cs_cel_attr;

typedef struct cs_cel_env {
    const char *driver;
    /* device.attributes[domain][name]: fills out and returns true, or false when missing.
     * domain is the qualifier in the expression (a bare name means the driver's domain,
     * which the caller resolves: the evaluator passes `driver` as the domain then). */
    bool (*attribute)(void *ud, const char *domain, const char *name, cs_cel_attr *out);
    /* device.capacity[domain][name], likewise; values are QUANTITY. */
    bool (*capacity)(void *ud, const char *domain, const char *name, cs_cel_attr *out);
    void *ud;
    bool allow_multiple; /* device.allowMultipleAllocations */
    /* The qualified name ("domain/name", or a bare name in the driver's domain) of the
     * i-th attribute (capacity == false) or capacity, NULL past the last; borrowed for the
     * evaluation. Needed to iterate device.attributes and device.capacity with macros,
     * for size() and for `"domain" in device.attributes`; optional otherwise. */
    const char *(*entry)(void *ud, bool capacity, size_t i);
} cs_cel_env;

#define CS_CEL_DEFAULT_COST_LIMIT 1000000

/* Compiles expr. Errors are CS_ERR_PARSE with the 1-based column: "column 14: expected ')'".
 * The result must evaluate to bool; a program that cannot is a compile error too where
 * that is visible statically. */
cs_status cs_cel_compile(const char *expr, cs_cel_program **out, cs_error *err);
void cs_cel_free(cs_cel_program *p);

/* Evaluates p against env. CS_OK with *result on success; CS_ERR_INVALID for a runtime
 * error (the message says which: "no such key: memory"), CS_ERR_LIMIT when the cost limit
 * (units of work, 0 = the default) is exceeded. Thread-safe: a program may be evaluated
 * from many threads at once. */
cs_status cs_cel_eval(const cs_cel_program *p, const cs_cel_env *env, uint64_t cost_limit,
                      bool *result, cs_error *err);

/* Semantic versions (semver 2.0.0 precedence; build metadata ignored). */
typedef struct cs_semver {
    int64_t major, minor, patch;
    char pre[64]; /* pre-release, "" when none */
} cs_semver;
cs_status cs_semver_parse(const char *s, cs_semver *out, cs_error *err);
int cs_semver_cmp(const cs_semver *a, const cs_semver *b);

#endif
