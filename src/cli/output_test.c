/*
 * output_test.c - the CLI's output module: -o parsing, binary sizes, ages, RFC 3339
 * parsing, tables sized to their content, -o name, YAML that reads back as the same JSON
 * (checked by libyaml's own parser), the describe layout, and the size and duration flags
 * of cli.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/cli.c"
#include "cli/output.c"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

/* Runs fn with stdout sent to a temporary file; returns what it printed (malloc'd). */
static char *capture(void (*fn)(void *), void *arg)
{
    char path[] = "/tmp/cs-output-test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    fn(arg);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    off_t n = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)n + 1);
    assert_int_equal(pread(fd, text, (size_t)n, 0), n);
    close(fd);
    unlink(path);
    return text;
}

static void test_parse_formats(void **state)
{
    cs_cli_format f;
    assert_int_equal(cs_cli_output_parse("t", "JSON", &f), CS_CLI_CONTINUE);
    assert_int_equal(f, CS_CLI_OUT_JSON);
    assert_int_equal(cs_cli_output_parse("t", "Yaml", &f), CS_CLI_CONTINUE);
    assert_int_equal(f, CS_CLI_OUT_YAML);
    assert_int_equal(cs_cli_output_parse("t", "wide", &f), CS_CLI_CONTINUE);
    assert_int_equal(f, CS_CLI_OUT_WIDE);
    assert_int_equal(cs_cli_output_parse("t", "NAME", &f), CS_CLI_CONTINUE);
    assert_int_equal(f, CS_CLI_OUT_NAME);
    assert_int_equal(cs_cli_output_parse("t", "table", &f), CS_CLI_USAGE);
    assert_int_equal(cs_cli_output_parse("t", "", &f), CS_CLI_USAGE);
}

static void test_sizes(void **state)
{
    char b[32];
    cs_cli_size_text(0, b, sizeof b);
    assert_string_equal(b, "0B");
    cs_cli_size_text(1023, b, sizeof b);
    assert_string_equal(b, "1023B");
    cs_cli_size_text(1024, b, sizeof b);
    assert_string_equal(b, "1KiB");
    cs_cli_size_text(1536, b, sizeof b);
    assert_string_equal(b, "1.5KiB");
    cs_cli_size_text(64u << 20, b, sizeof b);
    assert_string_equal(b, "64MiB");
    cs_cli_size_text(300u << 20, b, sizeof b);
    assert_string_equal(b, "300MiB");
    cs_cli_size_text((uint64_t)5 << 30, b, sizeof b);
    assert_string_equal(b, "5GiB");
}

static void test_times_and_ages(void **state)
{
    assert_int_equal(cs_cli_parse_time("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(cs_cli_parse_time("2026-01-02T03:04:05.123456789Z"), 1767323045);
    assert_int_equal(cs_cli_parse_time("2026-01-02T04:04:05+01:00"), 1767323045);
    assert_int_equal(cs_cli_parse_time("2026-01-02 03:04:05"), -1);
    assert_int_equal(cs_cli_parse_time("2026-01-02T03:04:05"), -1);
    assert_int_equal(cs_cli_parse_time("digits"), -1);
    char b[16];
    const char *t = "2026-01-02T03:04:05Z";
    int64_t at = 1767323045;
    cs_cli_age_text(t, at + 42, b, sizeof b);
    assert_string_equal(b, "42s");
    cs_cli_age_text(t, at + 5 * 60 + 59, b, sizeof b);
    assert_string_equal(b, "5m");
    cs_cli_age_text(t, at + 3 * 3600, b, sizeof b);
    assert_string_equal(b, "3h");
    cs_cli_age_text(t, at + 3 * 86400 + 100, b, sizeof b);
    assert_string_equal(b, "3d");
    cs_cli_age_text(t, at + 800 * 86400, b, sizeof b);
    assert_string_equal(b, "2y");
    cs_cli_age_text(t, at - 10, b, sizeof b); /* a clock behind the server's */
    assert_string_equal(b, "0s");
    cs_cli_age_text("never", at, b, sizeof b);
    assert_string_equal(b, "-");
}

static const cs_cli_column cols[] = {
    {"NAME", "name", CS_CLI_CELL_TEXT, false, NULL},
    {"SIZE", "size", CS_CLI_CELL_SIZE, false, NULL},
    {"LABELS", "labels", CS_CLI_CELL_LABELS, false, NULL},
    {"OWNER", "meta.owner", CS_CLI_CELL_TEXT, true, NULL},
};
static const cs_cli_view view = {"model", "name", NULL, cols, 4};

typedef struct out_args {
    cs_cli_format f;
    json_t *whole, *items;
} out_args;

static void run_output(void *p)
{
    out_args *a = p;
    assert_int_equal(cs_cli_output("t", a->f, &view, a->whole, a->items), CS_CLI_OK);
}

static void test_table_fits_content(void **state)
{
    json_t *items = json_loads("[{\"name\": \"a-very-long-model-name\", \"size\": 2048,"
                               "  \"labels\": {\"team\": \"x\"}, \"meta\": {\"owner\": \"ann\"}},"
                               " {\"name\": \"b\", \"size\": null, \"labels\": {}}]",
                               0, NULL);
    out_args a = {CS_CLI_OUT_DEFAULT, items, items};
    char *t = capture(run_output, &a);
    assert_string_equal(t, "NAME                     SIZE   LABELS\n"
                           "a-very-long-model-name   2KiB   team=x\n"
                           "b                        -      -\n");
    free(t);
    a.f = CS_CLI_OUT_WIDE;
    t = capture(run_output, &a);
    assert_string_equal(t, "NAME                     SIZE   LABELS   OWNER\n"
                           "a-very-long-model-name   2KiB   team=x   ann\n"
                           "b                        -      -        -\n");
    free(t);
    a.f = CS_CLI_OUT_NAME;
    t = capture(run_output, &a);
    assert_string_equal(t, "model/a-very-long-model-name\nmodel/b\n");
    free(t);
    a.f = CS_CLI_OUT_JSON;
    t = capture(run_output, &a);
    assert_non_null(strstr(t, "[\n  {\n    \"name\": \"a-very-long-model-name\","));
    free(t);
    json_decref(items);
}

/* Parses YAML text back into JSON with libyaml's parser (plain scalars typed as YAML 1.1
 * core would: ints, floats, booleans, null); enough for what the emitter writes. */
static json_t *yaml_to_json(yaml_parser_t *p);

static json_t *scalar_json(const yaml_event_t *ev)
{
    const char *s = (const char *)ev->data.scalar.value;
    if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return json_string(s);
    if (!strcmp(s, "null") || !strcmp(s, "~")) return json_null();
    if (!strcmp(s, "true")) return json_true();
    if (!strcmp(s, "false")) return json_false();
    /* A plain scalar that YAML 1.1 would type differently is exactly what must not appear. */
    assert_false(!strcasecmp(s, "yes") || !strcasecmp(s, "no") || !strcasecmp(s, "on") ||
                 !strcasecmp(s, "off") || !strcasecmp(s, "y") || !strcasecmp(s, "n"));
    char *end;
    long long i = strtoll(s, &end, 10);
    if (*s && !*end) return json_integer(i);
    double d = strtod(s, &end);
    if (*s && !*end) return json_real(d);
    assert_true((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == '/');
    return json_string(s);
}

static json_t *node_json(yaml_parser_t *p, yaml_event_t *ev)
{
    json_t *out = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
        out = scalar_json(ev);
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        out = json_object();
        for (;;) {
            yaml_event_t k;
            assert_true(yaml_parser_parse(p, &k));
            if (k.type == YAML_MAPPING_END_EVENT) {
                yaml_event_delete(&k);
                break;
            }
            char *key = strdup((const char *)k.data.scalar.value);
            yaml_event_delete(&k);
            json_object_set_new(out, key, yaml_to_json(p));
            free(key);
        }
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        out = json_array();
        for (;;) {
            yaml_event_t e;
            assert_true(yaml_parser_parse(p, &e));
            if (e.type == YAML_SEQUENCE_END_EVENT) {
                yaml_event_delete(&e);
                break;
            }
            json_array_append_new(out, node_json(p, &e));
            yaml_event_delete(&e);
        }
    }
    return out;
}

static json_t *yaml_to_json(yaml_parser_t *p)
{
    yaml_event_t ev;
    assert_true(yaml_parser_parse(p, &ev));
    json_t *j = node_json(p, &ev);
    yaml_event_delete(&ev);
    return j;
}

static void run_yaml(void *p)
{
    assert_int_equal(cs_cli_print_yaml(p), CS_CLI_OK);
}

static void test_yaml_reads_back(void **state)
{
    const char *src =
        "{\"name\": \"digits\", \"version\": 3, \"ratio\": 0.5, \"whole\": 2.0, \"on\": true,"
        " \"none\": null, \"empty\": \"\", \"words\": [\"yes\", \"No\", \"off\", \"y\", \"null\","
        " \"~\", \"true\"], \"numbers\": [\"1\", \"0x1f\", \"1e3\", \"-2\", \".5\", \"1_000\"],"
        " \"time\": \"2026-01-02T03:04:05.123Z\", \"colon\": \"a: b\", \"hash\": \"x #y\","
        " \"dash\": \"- item\", \"quote\": \"say \\\"hi\\\"\", \"newline\": \"a\\nb\","
        " \"unicode\": \"caf\\u00e9\", \"digest\": \"sha256:abc\", \"path\": \"/v2/models\","
        " \"nested\": {\"list\": [{\"a\": 1}, []], \"obj\": {}}, \"spaces\": \" x \"}";
    json_t *j = json_loads(src, 0, NULL);
    assert_non_null(j);
    char *text = capture(run_yaml, j);
    assert_null(strstr(text, "---")); /* one document: no marker */
    assert_non_null(strstr(text, "name: digits\n"));
    assert_non_null(strstr(text, "time: \"2026-01-02T03:04:05.123Z\"\n"));
    yaml_parser_t p;
    assert_true(yaml_parser_initialize(&p));
    yaml_parser_set_input_string(&p, (const unsigned char *)text, strlen(text));
    yaml_event_t ev;
    assert_true(yaml_parser_parse(&p, &ev)); /* stream start */
    yaml_event_delete(&ev);
    assert_true(yaml_parser_parse(&p, &ev)); /* document start */
    yaml_event_delete(&ev);
    json_t *back = yaml_to_json(&p);
    yaml_parser_delete(&p);
    char *a = json_dumps(j, JSON_SORT_KEYS), *b = json_dumps(back, JSON_SORT_KEYS);
    assert_string_equal(a, b);
    free(a);
    free(b);
    free(text);
    json_decref(back);
    json_decref(j);
}

static void run_describe(void *p)
{
    assert_int_equal(cs_cli_describe("t", p), CS_CLI_OK);
}

static void test_describe(void **state)
{
    json_t *j = json_loads("{\"name\": \"digits\", \"size\": 1536, \"run_id\": null,"
                           " \"labels\": {\"team\": \"vision\"},"
                           " \"io_schema\": {\"inputs\": [{\"name\": \"x\", \"shape\": [1, 8]}]},"
                           " \"created_at\": \"2026-01-02T03:04:05Z\"}",
                           0, NULL);
    char *t = capture(run_describe, j);
    assert_non_null(strstr(t, "Name:       digits\n"));
    assert_non_null(strstr(t, "Size:       1.5KiB (1536 bytes)\n"));
    assert_non_null(strstr(t, "Run ID:     -\n"));
    assert_non_null(strstr(t, "Labels:\n  team=vision\n"));
    assert_non_null(strstr(t, "IO Schema:\n  Inputs:\n    -\n      Name:  x\n      Shape: 1, 8\n"));
    assert_non_null(strstr(t, "Created At: 2026-01-02T03:04:05Z ("));
    free(t);
    json_decref(j);
}

static void test_flag_sizes_and_durations(void **state)
{
    uint64_t b;
    assert_int_equal(cs_cli_parse_size("t", "--x", "64Mi", 0, UINT64_MAX, &b), CS_CLI_CONTINUE);
    assert_int_equal(b, (uint64_t)64 << 20);
    assert_int_equal(cs_cli_parse_size("t", "--x", "1G", 0, UINT64_MAX, &b), CS_CLI_CONTINUE);
    assert_int_equal(b, 1000000000);
    assert_int_equal(cs_cli_parse_size("t", "--x", "1048576", 0, UINT64_MAX, &b), CS_CLI_CONTINUE);
    assert_int_equal(b, 1048576);
    assert_int_equal(cs_cli_parse_size("t", "--x", "1.5", 0, UINT64_MAX, &b), CS_CLI_CONTINUE);
    assert_int_equal(b, 2); /* a fraction of a byte rounds up */
    assert_int_equal(cs_cli_parse_size("t", "--x", "1Ki", 2048, 4096, &b), CS_CLI_USAGE);
    assert_int_equal(cs_cli_parse_size("t", "--x", "-1", 0, 10, &b), CS_CLI_USAGE);
    assert_int_equal(cs_cli_parse_size("t", "--x", "lots", 0, 10, &b), CS_CLI_USAGE);
    int64_t s;
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "30s", 0, 3600, &s), CS_CLI_CONTINUE);
    assert_int_equal(s, 30);
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "30", 0, 3600, &s), CS_CLI_CONTINUE);
    assert_int_equal(s, 30);
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "1h30m", 0, 86400, &s), CS_CLI_CONTINUE);
    assert_int_equal(s, 5400);
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "2d", 0, 86400 * 3, &s), CS_CLI_CONTINUE);
    assert_int_equal(s, 172800);
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "500ms", 1, 10, &s), CS_CLI_CONTINUE);
    assert_int_equal(s, 1); /* rounds up to whole seconds */
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "2h", 0, 3600, &s), CS_CLI_USAGE);
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "-1s", 0, 3600, &s), CS_CLI_USAGE);
    assert_int_equal(cs_cli_parse_seconds("t", "--y", "soon", 0, 3600, &s), CS_CLI_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_formats),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_times_and_ages),
        cmocka_unit_test(test_table_fits_content),
        cmocka_unit_test(test_yaml_reads_back),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_flag_sizes_and_durations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
