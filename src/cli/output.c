/*
 * output.c - the printers in output.h: -o parsing, tables sized to their content, -o name,
 * pretty JSON, YAML written through libyaml's emitter from a jansson value, and the
 * kubectl-describe style of `model show`.
 *
 * A table is built whole before it is printed (each cell a malloc'd string) so that every
 * column is as wide as its widest cell: O(rows x columns) memory, which the server's page
 * limits (1000 rows) keep small. Widths count UTF-8 characters, not bytes.
 */
#include "cli/output.h"

#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yaml.h>

#define CELL_MAX 1024
#define GAP      "   " /* between columns, as kubectl's tabwriter pads */

int cs_cli_output_parse(const char *cmd, const char *arg, cs_cli_format *out)
{
    static const struct {
        const char *name;
        cs_cli_format f;
    } formats[] = {{"json", CS_CLI_OUT_JSON},
                   {"yaml", CS_CLI_OUT_YAML},
                   {"wide", CS_CLI_OUT_WIDE},
                   {"name", CS_CLI_OUT_NAME}};
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
        if (!strcasecmp(arg, formats[i].name)) {
            *out = formats[i].f;
            return CS_CLI_CONTINUE;
        }
    return cs_cli_usage_error(cmd, "-o/--output expects json, yaml, wide or name, got '%s'", arg);
}

/* --- cell text ---------------------------------------------------------------------------- */

void cs_cli_size_text(uint64_t bytes, char *buf, size_t cap)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, cap, "%" PRIu64 "B", bytes);
        return;
    }
    double v = (double)bytes / 1024;
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0]) v /= 1024, u++;
    char num[32];
    snprintf(num, sizeof num, v < 100 ? "%.1f" : "%.0f", v);
    size_t n = strlen(num);
    if (n > 2 && !strcmp(num + n - 2, ".0")) num[n - 2] = '\0';
    snprintf(buf, cap, "%s%s", num, units[u]);
}

int64_t cs_cli_parse_time(const char *s)
{
    struct tm tm = {0};
    int used = 0;
    if (!s ||
        sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &used) != 6 ||
        used != 19)
        return -1;
    const char *p = s + used;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++) {
        }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int hh, mm, n = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &hh, &mm, &n) != 2 || n != 5) return -1;
        offset = (hh * 3600 + mm * 60) * (*p == '+' ? 1 : -1);
        p += 6;
    } else {
        return -1;
    }
    if (*p) return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (int64_t)t - offset;
}

void cs_cli_age_text(const char *rfc3339, int64_t now_s, char *buf, size_t cap)
{
    int64_t t = cs_cli_parse_time(rfc3339);
    if (t < 0)
        snprintf(buf, cap, "-");
    else
        cs_cli_duration_text(now_s - t, buf, cap);
}

void cs_cli_duration_text(int64_t s, char *buf, size_t cap)
{
    /* kubectl's ShortHumanDuration */
    if (s < 0) s = 0;
    if (s < 60)
        snprintf(buf, cap, "%" PRId64 "s", s);
    else if (s < 3600)
        snprintf(buf, cap, "%" PRId64 "m", s / 60);
    else if (s < 86400)
        snprintf(buf, cap, "%" PRId64 "h", s / 3600);
    else if (s < 365 * 86400)
        snprintf(buf, cap, "%" PRId64 "d", s / 86400);
    else
        snprintf(buf, cap, "%" PRId64 "y", s / (365 * 86400));
}

/* The value at a dotted path ("metadata.name") under j, or NULL. */
static const json_t *at_path(const json_t *j, const char *path)
{
    char key[128];
    while (j && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (n >= sizeof key) return NULL;
        memcpy(key, path, n);
        key[n] = '\0';
        j = json_object_get(j, key);
        path = dot ? dot + 1 : path + n;
    }
    return j;
}

/* A scalar as text; "-" for null, missing and the empty string. */
static void scalar_text(const json_t *v, char *buf, size_t cap)
{
    switch (v ? json_typeof(v) : JSON_NULL) {
    case JSON_STRING:
        snprintf(buf, cap, "%s", json_string_length(v) ? json_string_value(v) : "-");
        break;
    case JSON_INTEGER: snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v)); break;
    case JSON_REAL: snprintf(buf, cap, "%g", json_real_value(v)); break;
    case JSON_TRUE: snprintf(buf, cap, "true"); break;
    case JSON_FALSE: snprintf(buf, cap, "false"); break;
    case JSON_NULL: snprintf(buf, cap, "-"); break;
    default: {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(buf, cap, "%s", s ? s : "-");
        free(s);
    }
    }
}

static void labels_text(const json_t *labels, char *buf, size_t cap)
{
    size_t n = 0;
    const char *k;
    json_t *v;
    buf[0] = '\0';
    json_object_foreach((json_t *)labels, k, v)
    {
        int w = snprintf(buf + n, cap - n, "%s%s=%s", n ? "," : "", k,
                         json_is_string(v) ? json_string_value(v) : "");
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
    if (!buf[0]) snprintf(buf, cap, "-");
}

static void cell_text(const cs_cli_column *c, const json_t *item, int64_t now, char *buf,
                      size_t cap)
{
    if (c->text) {
        c->text(item, buf, cap);
        if (!buf[0]) snprintf(buf, cap, "-");
        return;
    }
    const json_t *v = at_path(item, c->path);
    switch (c->cell) {
    case CS_CLI_CELL_SIZE:
        if (json_is_integer(v) && json_integer_value(v) >= 0)
            cs_cli_size_text((uint64_t)json_integer_value(v), buf, cap);
        else
            scalar_text(v, buf, cap);
        break;
    case CS_CLI_CELL_AGE:
        if (json_is_string(v))
            cs_cli_age_text(json_string_value(v), now, buf, cap);
        else
            snprintf(buf, cap, "-");
        break;
    case CS_CLI_CELL_LABELS: labels_text(v, buf, cap); break;
    default: scalar_text(v, buf, cap); break;
    }
}

/* Characters, not bytes: UTF-8 continuation bytes take no column. */
static size_t width(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static void item_name(const cs_cli_view *v, const json_t *item, char *buf, size_t cap)
{
    if (v->name)
        v->name(item, buf, cap);
    else
        scalar_text(at_path(item, v->name_path), buf, cap);
}

/* --- tables --------------------------------------------------------------------------------- */

static int table(const char *cmd, const cs_cli_view *v, const json_t *items, bool wide)
{
    size_t rows = json_is_array(items) ? json_array_size(items) : 0, cols = 0;
    size_t idx[64];
    for (size_t c = 0; c < v->n_columns && cols < 64; c++)
        if (wide || !v->columns[c].wide) idx[cols++] = c;
    char **cells = calloc((rows + 1) * cols, sizeof *cells);
    size_t *w = calloc(cols, sizeof *w);
    char buf[CELL_MAX];
    int rc = CS_CLI_RUNTIME;
    if (!cells || !w) goto out;
    int64_t now = (int64_t)time(NULL);
    for (size_t r = 0; r <= rows; r++)
        for (size_t c = 0; c < cols; c++) {
            const cs_cli_column *col = &v->columns[idx[c]];
            if (r == 0)
                snprintf(buf, sizeof buf, "%s", col->header);
            else
                cell_text(col, json_array_get(items, r - 1), now, buf, sizeof buf);
            if (!(cells[r * cols + c] = strdup(buf))) goto out;
            size_t n = width(buf);
            if (n > w[c]) w[c] = n;
        }
    for (size_t r = 0; r <= rows; r++) {
        for (size_t c = 0; c < cols; c++) {
            const char *s = cells[r * cols + c];
            fputs(s, stdout);
            if (c + 1 < cols) printf("%*s" GAP, (int)(w[c] - width(s)), "");
        }
        putchar('\n');
    }
    rc = CS_CLI_OK;
out:
    for (size_t i = 0; cells && i < (rows + 1) * cols; i++) free(cells[i]);
    free(cells);
    free(w);
    if (rc != CS_CLI_OK) cs_cli_error(cmd, "out of memory");
    return rc;
}

/* --- YAML ----------------------------------------------------------------------------------- */

/* A string YAML would read back as the same string when written plain: letters first, then
 * a small safe set, and no word YAML 1.1 gives another type (true, no, null, ~). Anything
 * else (numbers, times, "a: b", "#x", leading '-') is double-quoted, which libyaml escapes. */
static bool plain_ok(const char *s)
{
    static const char *const words[] = {"true", "false", "yes", "no",  "on",
                                        "off",  "y",     "n",   "null"};
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == '/'))
        return false;
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (!strcasecmp(s, words[i])) return false;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("_./-=@+", c) || (c == ' ' && p[1] && p[1] != ' ' && p[1] != '#');
        if (!ok) return false;
    }
    return true;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, bool is_string)
{
    yaml_event_t ev;
    bool plain = !is_string || plain_ok(s);
    if (!yaml_scalar_event_initialize(
            &ev, NULL, NULL, (yaml_char_t *)s, (int)strlen(s), plain, !plain,
            plain ? YAML_PLAIN_SCALAR_STYLE : YAML_DOUBLE_QUOTED_SCALAR_STYLE))
        return 0;
    return yaml_emitter_emit(e, &ev);
}

/* Recursion is bounded by jansson's parse depth for the server's answers. */
static int emit_json(yaml_emitter_t *e, const json_t *j)
{
    yaml_event_t ev;
    char num[64];
    switch (json_typeof(j)) {
    case JSON_OBJECT: {
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)j, k,
                            v) if (!emit_scalar(e, k, true) || !emit_json(e, v)) return 0;
        yaml_mapping_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_ARRAY: {
        if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
            !yaml_emitter_emit(e, &ev))
            return 0;
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) if (!emit_json(e, v)) return 0;
        yaml_sequence_end_event_initialize(&ev);
        return yaml_emitter_emit(e, &ev);
    }
    case JSON_STRING: return emit_scalar(e, json_string_value(j), true);
    case JSON_INTEGER:
        snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
        break;
    case JSON_REAL:
        snprintf(num, sizeof num, "%.17g", json_real_value(j));
        if (!strpbrk(num, ".eEn")) strcat(num, ".0"); /* stays a float when read back */
        break;
    case JSON_TRUE: snprintf(num, sizeof num, "true"); break;
    case JSON_FALSE: snprintf(num, sizeof num, "false"); break;
    default: snprintf(num, sizeof num, "null"); break;
    }
    return emit_scalar(e, num, false);
}

static int yaml_out(void *ud, unsigned char *buf, size_t size)
{
    return fwrite(buf, 1, size, ud) == size;
}

int cs_cli_print_yaml_doc(const json_t *j, bool marker)
{
    yaml_emitter_t e;
    if (!yaml_emitter_initialize(&e)) return CS_CLI_RUNTIME;
    yaml_emitter_set_output(&e, yaml_out, stdout);
    yaml_emitter_set_unicode(&e, 1);
    yaml_emitter_set_width(&e, -1);
    yaml_emitter_set_indent(&e, 2);
    yaml_event_t ev;
    yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
    int ok = yaml_emitter_emit(&e, &ev);
    yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, !marker);
    ok = ok && yaml_emitter_emit(&e, &ev) && emit_json(&e, j ? j : json_null());
    yaml_document_end_event_initialize(&ev, 1);
    ok = ok && yaml_emitter_emit(&e, &ev);
    yaml_stream_end_event_initialize(&ev);
    ok = ok && yaml_emitter_emit(&e, &ev) && yaml_emitter_flush(&e);
    yaml_emitter_delete(&e);
    return ok ? CS_CLI_OK : CS_CLI_RUNTIME;
}

int cs_cli_print_yaml(const json_t *j)
{
    return cs_cli_print_yaml_doc(j, false);
}

int cs_cli_print_json(const json_t *j)
{
    char *s = json_dumps(j ? j : json_null(), JSON_INDENT(2) | JSON_ENCODE_ANY);
    if (!s) return CS_CLI_RUNTIME;
    printf("%s\n", s);
    free(s);
    return CS_CLI_OK;
}

/* --- the printer -------------------------------------------------------------------------- */

int cs_cli_output(const char *cmd, cs_cli_format fmt, const cs_cli_view *view, const json_t *whole,
                  const json_t *items)
{
    int rc = CS_CLI_OK;
    switch (fmt) {
    case CS_CLI_OUT_JSON: rc = cs_cli_print_json(whole); break;
    case CS_CLI_OUT_YAML: rc = cs_cli_print_yaml(whole); break;
    case CS_CLI_OUT_NAME: {
        size_t i;
        json_t *it;
        char buf[CELL_MAX];
        json_array_foreach(items, i, it)
        {
            item_name(view, it, buf, sizeof buf);
            printf("%s/%s\n", view->kind, buf);
        }
        return CS_CLI_OK;
    }
    default: return table(cmd, view, items, fmt == CS_CLI_OUT_WIDE);
    }
    if (rc != CS_CLI_OK) cs_cli_error(cmd, "cannot write the output (out of memory?)");
    return rc;
}

/* --- describe ------------------------------------------------------------------------------ */

/* "created_at" -> "Created At", "readyInstances" -> "Ready Instances", "io_schema" -> "IO
 * Schema". */
static void key_text(const char *k, char *buf, size_t cap)
{
    static const char *const upper[] = {"id", "io", "uri", "url", "ttl", "cpu", "gpu"};
    size_t n = 0;
    const char *p = k;
    while (*p && n + 1 < cap) {
        while (*p == '_' || *p == '-') p++;
        const char *start = p;
        if (*p) p++;
        while (*p && *p != '_' && *p != '-' && !(*p >= 'A' && *p <= 'Z')) p++;
        size_t len = (size_t)(p - start);
        if (!len) break;
        bool up = false;
        for (size_t i = 0; i < sizeof upper / sizeof upper[0]; i++)
            up |= strlen(upper[i]) == len && !strncasecmp(start, upper[i], len);
        if (n && n + 1 < cap) buf[n++] = ' ';
        for (size_t i = 0; i < len && n + 1 < cap; i++) {
            char c = start[i];
            if ((up || i == 0) && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
            buf[n++] = c;
        }
    }
    buf[n] = '\0';
}

static bool is_size_key(const char *k)
{
    size_t n = strlen(k);
    return !strcmp(k, "size") || (n > 6 && !strcmp(k + n - 6, "_bytes")) ||
           (n > 5 && !strcmp(k + n - 5, "Bytes"));
}

/* The user's own keys (labels, annotations, metadata, alias names) are printed as k=v, never
 * renamed. */
static bool is_user_map(const char *k)
{
    return !strcmp(k, "labels") || !strcmp(k, "annotations") || !strcmp(k, "metadata") ||
           !strcmp(k, "aliases");
}

static bool is_scalar(const json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

/* An inline value: a scalar, or an empty or all-scalar array; false for a section. */
static bool inline_text(const char *key, const json_t *v, int64_t now, char *buf, size_t cap)
{
    if (json_is_string(v) && cs_cli_parse_time(json_string_value(v)) >= 0) {
        char age[32];
        cs_cli_age_text(json_string_value(v), now, age, sizeof age);
        snprintf(buf, cap, "%s (%s ago)", json_string_value(v), age);
        return true;
    }
    if (json_is_integer(v) && key && is_size_key(key) && json_integer_value(v) >= 1024) {
        char s[32];
        cs_cli_size_text((uint64_t)json_integer_value(v), s, sizeof s);
        snprintf(buf, cap, "%s (%" JSON_INTEGER_FORMAT " bytes)", s, json_integer_value(v));
        return true;
    }
    if (is_scalar(v)) {
        scalar_text(v, buf, cap);
        return true;
    }
    if (json_is_object(v)) {
        if (json_object_size(v)) return false;
        snprintf(buf, cap, "-");
        return true;
    }
    size_t i, n = 0;
    json_t *e;
    json_array_foreach(v, i, e) if (!is_scalar(e)) return false;
    buf[0] = '\0';
    json_array_foreach(v, i, e)
    {
        char s[256];
        scalar_text(e, s, sizeof s);
        int w = snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", s);
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
    if (!buf[0]) snprintf(buf, cap, "-");
    return true;
}

static void describe_object(const json_t *obj, int indent, int64_t now);

static void describe_value(const char *key, const json_t *v, int indent, int64_t now)
{
    if (json_is_object(v) && key && is_user_map(key)) {
        const char *k;
        json_t *x;
        char s[CELL_MAX];
        json_object_foreach((json_t *)v, k, x)
        {
            scalar_text(x, s, sizeof s);
            printf("%*s%s=%s\n", indent, "", k, s);
        }
    } else if (json_is_object(v)) {
        describe_object(v, indent, now);
    } else { /* an array of sections: each element a block, the first line marked '-' */
        size_t i;
        json_t *e;
        char s[CELL_MAX];
        json_array_foreach(v, i, e)
        {
            if (json_is_object(e) && json_object_size(e)) {
                printf("%*s-\n", indent, "");
                describe_object(e, indent + 2, now);
            } else {
                inline_text(NULL, e, now, s, sizeof s);
                printf("%*s- %s\n", indent, "", s);
            }
        }
    }
}

/* Keys that lead a description, in this order, as kubectl's Name comes first. */
static const char *const lead_keys[] = {"name", "model", "version", "state", "description"};

static int lead_rank(const char *k)
{
    for (size_t i = 0; i < sizeof lead_keys / sizeof lead_keys[0]; i++)
        if (!strcmp(k, lead_keys[i])) return (int)i;
    return -1;
}

static void describe_key(const char *k, const json_t *v, size_t w, int indent, int64_t now)
{
    char name[128], s[CELL_MAX];
    key_text(k, name, sizeof name);
    if (is_user_map(k) && json_is_object(v) && json_object_size(v)) {
        printf("%*s%s:\n", indent, "", name);
        describe_value(k, v, indent + 2, now);
    } else if (inline_text(k, v, now, s, sizeof s)) {
        printf("%*s%s:%*s %s\n", indent, "", name, (int)(w - strlen(name)), "", s);
    } else {
        printf("%*s%s:\n", indent, "", name);
        describe_value(k, v, indent + 2, now);
    }
}

/* The lead keys, then the other one-line values, then the sections; O(keys) per pass. */
static void describe_object(const json_t *obj, int indent, int64_t now)
{
    const char *k;
    json_t *v;
    char name[128], s[CELL_MAX];
    size_t w = 0;
    json_object_foreach((json_t *)obj, k, v)
    {
        key_text(k, name, sizeof name);
        if (strlen(name) > w) w = strlen(name);
    }
    for (size_t i = 0; i < sizeof lead_keys / sizeof lead_keys[0]; i++)
        if ((v = json_object_get(obj, lead_keys[i]))) describe_key(lead_keys[i], v, w, indent, now);
    for (int pass = 0; pass < 2; pass++) json_object_foreach((json_t *)obj, k, v)
        {
            bool line = !(is_user_map(k) && json_is_object(v) && json_object_size(v)) &&
                        inline_text(k, v, now, s, sizeof s);
            if (lead_rank(k) < 0 && line == (pass == 0)) describe_key(k, v, w, indent, now);
        }
}

int cs_cli_describe(const char *cmd, const json_t *obj)
{
    if (!json_is_object(obj)) return cs_cli_error(cmd, "the server's answer is not an object");
    describe_object(obj, 0, (int64_t)time(NULL));
    return CS_CLI_OK;
}
