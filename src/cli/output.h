/*
 * output.h - how every listing and show command prints its result, in kubectl's idiom: one
 * parser for -o/--output (json, yaml, wide, name; case-insensitive) and one printer that
 * turns a JSON result (the server's answer, or one built locally) into a table whose
 * columns fit their content, one `kind/NAME` per line, pretty JSON or YAML.
 *
 * Tables show sizes in binary units (1.5MiB) and times as ages (5m, 3d); JSON and YAML keep
 * the values as they are (sizes in bytes, times in RFC 3339 with Z). A missing value is `-`.
 */
#ifndef CS_CLI_OUTPUT_H
#define CS_CLI_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

typedef enum cs_cli_format {
    CS_CLI_OUT_DEFAULT = 0, /* no -o: the command's table (or description) */
    CS_CLI_OUT_WIDE,        /* the table with more columns */
    CS_CLI_OUT_NAME,        /* kind/NAME, one per line */
    CS_CLI_OUT_JSON,        /* pretty JSON, 2-space indent */
    CS_CLI_OUT_YAML,        /* YAML, strings quoted where YAML would read them as another type */
} cs_cli_format;

/* Parses an -o value (json, yaml, wide, name, any case) into *out. Returns CS_CLI_CONTINUE,
 * or CS_CLI_USAGE after reporting for cmd a line naming the allowed values. */
int cs_cli_output_parse(const char *cmd, const char *arg, cs_cli_format *out);

/* How a column's cell is written in a table. */
typedef enum cs_cli_cell {
    CS_CLI_CELL_TEXT,   /* a string, number or boolean as it is */
    CS_CLI_CELL_SIZE,   /* a byte count in binary units: 512B, 1.5KiB, 20MiB */
    CS_CLI_CELL_AGE,    /* an RFC 3339 time as its age: 45s, 5m, 3h, 12d, 2y */
    CS_CLI_CELL_LABELS, /* an object of strings: k=v,k2=v2 */
} cs_cli_cell;

/* One table column: the value at `path` (dotted keys into an item, "metadata.name"), or
 * what `text` writes into buf when set. `wide` columns show only with -o wide. */
typedef struct cs_cli_column {
    const char *header;
    const char *path;
    cs_cli_cell cell;
    bool wide;
    void (*text)(const json_t *item, char *buf, size_t cap);
} cs_cli_column;

/* A kind of result: its name for -o name and its table. */
typedef struct cs_cli_view {
    const char *kind;      /* "model", "deployment.capstan.dev" */
    const char *name_path; /* dotted keys to an item's name */
    /* Optional, instead of name_path: the item's name (e.g. "digits:3") into buf. */
    void (*name)(const json_t *item, char *buf, size_t cap);
    const cs_cli_column *columns;
    size_t n_columns;
} cs_cli_view;

/* Prints a result as fmt: json and yaml print `whole` (a page, an object); name and the
 * table print each element of `items` (an array; NULL or not an array prints no rows, a
 * table still its header). CS_CLI_OK, or CS_CLI_RUNTIME after reporting for cmd when out of
 * memory. Allocates one cell array per call, O(rows x columns). */
int cs_cli_output(const char *cmd, cs_cli_format fmt, const cs_cli_view *view, const json_t *whole,
                  const json_t *items);

/* As kubectl describe: `Key: value` lines, keys made readable ("created_at" -> "Created
 * At"), nested objects and arrays as sections indented by two spaces (labels, annotations,
 * metadata and aliases as k=v lines, their keys as given), times with their age
 * ("2026-01-02T03:04:05Z (5m ago)"), keys named size or *_bytes with binary units, nulls
 * and empty strings as `-`. */
int cs_cli_describe(const char *cmd, const json_t *obj);

/* j as YAML on stdout (CS_CLI_RUNTIME when out of memory), with a leading `---` when marker
 * is set (one document of several); JSON pretty on stdout. */
int cs_cli_print_yaml(const json_t *j);
int cs_cli_print_yaml_doc(const json_t *j, bool marker);
int cs_cli_print_json(const json_t *j);

/* Table text helpers, also for commands that print their own lines: bytes in binary units
 * ("512B", "1.5KiB", "64MiB"); the age of an RFC 3339 time at now_s (Unix seconds) as
 * "5m", "3d" ("-" when it does not parse); the Unix seconds of an RFC 3339 time (-1 when it
 * does not parse). */
void cs_cli_size_text(uint64_t bytes, char *buf, size_t cap);
void cs_cli_age_text(const char *rfc3339, int64_t now_s, char *buf, size_t cap);
/* Seconds as kubectl's short durations: 45s, 5m, 3h, 12d, 2y (negative as 0s). */
void cs_cli_duration_text(int64_t seconds, char *buf, size_t cap);
int64_t cs_cli_parse_time(const char *rfc3339);

#endif
