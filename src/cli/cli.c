/*
 * cli.c - the helpers in cli.h: option parsing with built-in --help, error lines, and the
 * values of flags that mean sizes (Kubernetes quantities, src/devices/quantity.c) and times
 * (durations, src/base/clock.h).
 */
#include "cli/cli.h"

#include "base/clock.h"
#include "devices/quantity.h"

#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LONGOPTS 64

static void vreport(const char *cmd, const char *fmt, va_list ap, const char *suffix)
{
    fprintf(stderr, "capstan: %s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "%s\n", suffix);
}

int cs_cli_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap, "");
    va_end(ap);
    return CS_CLI_RUNTIME;
}

int cs_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    char hint[128];
    snprintf(hint, sizeof hint, " (see 'capstan %s --help')", cmd);
    va_list ap;
    va_start(ap, fmt);
    vreport(cmd, fmt, ap, hint);
    va_end(ap);
    return CS_CLI_USAGE;
}

/* Optimal string alignment distance: insertions, deletions, substitutions and adjacent
 * transpositions, each costing 1; words longer than 63 characters are never near. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return SIZE_MAX;
    size_t d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *cs_cli_nearest(const char *word, const void *table, size_t n, size_t stride)
{
    size_t len = strlen(word), limit = len >= 5 ? 2 : 1, best = SIZE_MAX;
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *name = *(const char *const *)((const char *)table + i * stride);
        if (!name) break;
        size_t d = distance(word, name);
        if (d <= limit && d < len && d < best) best = d, found = name;
    }
    return found;
}

int cs_cli_parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* Bytes as the shortest exact quantity: "1Ki", "4Gi", "500". */
static void qty_text(uint64_t b, char *buf, size_t cap)
{
    static const char *const units[] = {"", "Ki", "Mi", "Gi", "Ti", "Pi"};
    size_t u = 0;
    while (b && b % 1024 == 0 && u + 1 < sizeof units / sizeof units[0]) b /= 1024, u++;
    snprintf(buf, cap, "%llu%s", (unsigned long long)b, units[u]);
}

int cs_cli_parse_device(const char *cmd, const char *arg, const char **out)
{
    cs_device d;
    cs_error err;
    if (cs_device_parse(arg, &d, &err) != CS_OK)
        return cs_cli_usage_error(cmd, "--device: %s", err.msg);
    *out = arg;
    return CS_CLI_CONTINUE;
}

int cs_cli_parse_precision(const char *cmd, const char *arg, cs_precision *out)
{
    cs_error err;
    if (cs_precision_parse(arg, out, &err) != CS_OK)
        return cs_cli_usage_error(cmd, "--precision: %s", err.msg);
    return CS_CLI_CONTINUE;
}

int cs_cli_parse_size(const char *cmd, const char *flag, const char *arg, uint64_t min,
                      uint64_t max, uint64_t *out)
{
    cs_quantity q;
    cs_error err;
    uint64_t v = 0;
    bool ok = cs_quantity_parse(arg, &q, &err) == CS_OK && q.milli >= 0;
    if (ok) v = (uint64_t)(q.milli / 1000 + (q.milli % 1000 != 0));
    if (ok && v >= min && v <= max) {
        *out = v;
        return CS_CLI_CONTINUE;
    }
    char lo[32], hi[32];
    qty_text(min, lo, sizeof lo);
    qty_text(max, hi, sizeof hi);
    return cs_cli_usage_error(cmd,
                              "%s expects a size in bytes from %s to %s, as a number or a "
                              "Kubernetes quantity (512Ki, 64Mi, 2Gi, 1G), got '%s'",
                              flag, lo, hi, arg);
}

/* Seconds in the largest exact unit: "24h", "90s", "0s". */
static void secs_text(int64_t s, char *buf, size_t cap)
{
    if (s && s % 86400 == 0)
        snprintf(buf, cap, "%lldd", (long long)(s / 86400));
    else if (s && s % 3600 == 0)
        snprintf(buf, cap, "%lldh", (long long)(s / 3600));
    else if (s && s % 60 == 0)
        snprintf(buf, cap, "%lldm", (long long)(s / 60));
    else
        snprintf(buf, cap, "%llds", (long long)s);
}

int cs_cli_parse_seconds(const char *cmd, const char *flag, const char *arg, int64_t min_s,
                         int64_t max_s, int64_t *out_s)
{
    long n;
    int64_t ns, s = -1;
    if (cs_cli_parse_int(arg, 0, LONG_MAX, &n) == 0)
        s = n;
    else if (cs_duration_parse(arg, &ns) == 0)
        s = ns / 1000000000 + (ns % 1000000000 != 0);
    if (s >= min_s && s <= max_s) {
        *out_s = s;
        return CS_CLI_CONTINUE;
    }
    char lo[32], hi[32];
    secs_text(min_s, lo, sizeof lo);
    secs_text(max_s, hi, sizeof hi);
    return cs_cli_usage_error(cmd,
                              "%s expects a duration from %s to %s, such as 30s, 5m, 1h30m or 2d "
                              "(units ns, us, ms, s, m, h, d; a bare number is seconds), got '%s'",
                              flag, lo, hi, arg);
}

int cs_cli_one_operand(const char *cmd, const char *what, int argc, char **argv, int first)
{
    if (first == argc) return cs_cli_usage_error(cmd, "missing %s", what);
    if (argc - first > 1)
        return cs_cli_usage_error(cmd, "unexpected argument '%s'", argv[first + 1]);
    return CS_CLI_CONTINUE;
}

int cs_cli_parse(const cs_cli_spec *spec, int argc, char **argv, cs_cli_opt_fn fn, void *ctx,
                 int *first_operand)
{
    /* Our own copies of the option lists with -h/--help added; a leading ':' makes
     * getopt report a missing argument as ':' rather than printing its own message. */
    struct option longopts[MAX_LONGOPTS + 2];
    int n = 0;
    for (const struct option *o = spec->longopts; o && o->name; o++) {
        assert(n < MAX_LONGOPTS);
        longopts[n++] = *o;
    }
    longopts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[n] = (struct option){0};
    char shortopts[64];
    snprintf(shortopts, sizeof shortopts, ":h%s", spec->shortopts ? spec->shortopts : "");

    optind = 0; /* 0, not 1: also resets getopt's internal state between commands */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const char *bad = argv[optind - 1];
        switch (opt) {
        case 'h': fputs(spec->usage, stdout); return CS_CLI_OK;
        case ':': return cs_cli_usage_error(spec->cmd, "option '%s' needs a value", bad);
        case '?':
            if (optopt && strncmp(bad, "--", 2) != 0)
                return cs_cli_usage_error(spec->cmd, "unknown option '-%c'", optopt);
            {
                const char *word = bad + 2, *eq = strchr(word, '=');
                char name[64];
                snprintf(name, sizeof name, "%.*s", eq ? (int)(eq - word) : (int)strlen(word),
                         word);
                const char *near = cs_cli_nearest(name, longopts, (size_t)n, sizeof longopts[0]);
                if (near)
                    return cs_cli_usage_error(
                        spec->cmd, "unknown option '%s' (did you mean '--%s'?)", bad, near);
                return cs_cli_usage_error(spec->cmd, "unknown option '%s'", bad);
            }
        default: {
            assert(fn); /* getopt only returns options the spec declares */
            int rc = fn(ctx, opt, optarg);
            if (rc != CS_CLI_CONTINUE) return rc;
        }
        }
    }
    *first_operand = optind;
    return CS_CLI_CONTINUE;
}
