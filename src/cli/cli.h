/*
 * cli.h - what every `capstan` subcommand shares: the command table entry, one option
 * parser (a getopt_long wrapper that also handles --help the same way everywhere), and
 * one-line error reporting with stable exit codes.
 *
 * Exit codes: 0 success, 1 runtime error (a file is missing, a model fails to load),
 * 2 usage error (unknown command or option, missing argument). Errors go to stderr as
 * one line, `capstan: <command>: <reason>`; help goes to stdout.
 */
#ifndef CS_CLI_H
#define CS_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>

#include "capstan/engine.h"

enum {
    CS_CLI_OK = 0,
    CS_CLI_RUNTIME = 1,
    CS_CLI_USAGE = 2,
    CS_CLI_CONTINUE = -1, /* from cs_cli_parse: options parsed, carry on */
};

/* A subcommand: `fn` gets argv with argv[0] set to the command's name. */
typedef struct cs_cli_command {
    const char *name;
    const char *summary; /* one line for `capstan help` */
    int (*fn)(int argc, char **argv);
} cs_cli_command;

extern const cs_cli_command cs_cli_version_cmd, cs_cli_inspect_cmd, cs_cli_run_cmd,
    cs_cli_devices_cmd, cs_cli_dra_cmd, cs_cli_serve_cmd;
extern const cs_cli_command cs_cli_apply_cmd, cs_cli_get_cmd, cs_cli_describe_cmd,
    cs_cli_delete_cmd, cs_cli_scale_cmd;
extern const cs_cli_command cs_cli_model_cmd, cs_cli_bench_cmd, cs_cli_token_cmd;
extern const cs_cli_command cs_cli_k8s_cmd;
extern const cs_cli_command cs_cli_rollout_cmd;

/* How a command's options look. `shortopts` and `longopts` are getopt_long's (longopts
 * terminated by a zero entry, at most 30 of them); -h/--help is added by the parser and
 * prints `usage` to stdout. */
typedef struct cs_cli_spec {
    const char *cmd;
    const char *usage;
    const char *shortopts;
    const struct option *longopts;
} cs_cli_spec;

/* Called for each option (may be NULL for a command without options) with getopt's value and its
 * argument (NULL when it takes none). Returns CS_CLI_CONTINUE, or an exit code after reporting the
 * problem. */
typedef int (*cs_cli_opt_fn)(void *ctx, int opt, const char *arg);

/* Parses argv's options (they may come before or after operands). Returns
 * CS_CLI_CONTINUE with *first_operand set to the index of the first operand, or an exit
 * code to return at once: CS_CLI_OK after printing help, CS_CLI_USAGE after reporting an
 * unknown option or a missing argument, or whatever `fn` returned. */
int cs_cli_parse(const cs_cli_spec *spec, int argc, char **argv, cs_cli_opt_fn fn, void *ctx,
                 int *first_operand);

/* After cs_cli_parse, for a command of one operand (`run MODEL.onnx`): CS_CLI_CONTINUE when
 * argv[first] is the only one, else CS_CLI_USAGE after `missing WHAT` or `unexpected
 * argument 'X'` (the second operand). */
int cs_cli_one_operand(const char *cmd, const char *what, int argc, char **argv, int first);

/* Prints `capstan: cmd: reason` to stderr; returns CS_CLI_RUNTIME. */
int cs_cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* As cs_cli_error with a pointer to --help on the same line; returns CS_CLI_USAGE. */
int cs_cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The name nearest to word among n table entries of `stride` bytes whose first member is a
 * `const char *` name (command tables, struct option arrays), or NULL when none is close:
 * edit distance (with transpositions) at most 1 for short words, 2 from 5 characters on,
 * and below the word's length. For "did you mean" hints; O(n x len^2). */
const char *cs_cli_nearest(const char *word, const void *table, size_t n, size_t stride);

/* Shared by the commands that read manifests (cmd_deploy.c): a whole file ("-" = stdin, at
 * most 16 MiB) appended to b, or CS_CLI_RUNTIME after reporting for cmd. Results are printed
 * through output.h. */
struct cs_sbuf;
int cs__cli_read_file(const char *cmd, const char *path, struct cs_sbuf *b);

/* --device DEV and --precision P, as cs_device_parse and cs_precision_parse take them:
 * CS_CLI_CONTINUE with *out set, or CS_CLI_USAGE after a line naming cmd and the flag. */
int cs_cli_parse_device(const char *cmd, const char *arg, const char **out);
int cs_cli_parse_precision(const char *cmd, const char *arg, cs_precision *out);

/* Parses a decimal integer in [min, max]; returns 0 on success. */
int cs_cli_parse_int(const char *s, long min, long max, long *out);

/* A flag that means a size: a Kubernetes quantity of bytes ("64Mi", "512Ki", "2G", "1e6",
 * "1048576"; a fraction of a byte rounds up) in [min, max]. Returns CS_CLI_CONTINUE with
 * *out set, or CS_CLI_USAGE after a line naming cmd, the flag, the accepted forms and the
 * range. */
int cs_cli_parse_size(const char *cmd, const char *flag, const char *arg, uint64_t min,
                      uint64_t max, uint64_t *out);

/* A flag that means a time: a Go/Kubernetes duration ("30s", "1h30m", "500ms", "2d"; units
 * ns us ms s m h d), or a bare number of seconds ("30", as these flags took before), in
 * [min_s, max_s] seconds; sub-second values round up to whole seconds. Returns
 * CS_CLI_CONTINUE with *out_s set, or CS_CLI_USAGE after a line naming cmd, the flag, the
 * accepted forms and the range. */
int cs_cli_parse_seconds(const char *cmd, const char *flag, const char *arg, int64_t min_s,
                         int64_t max_s, int64_t *out_s);

#endif
