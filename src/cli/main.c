/*
 * main.c - the capstan command: finds the subcommand in a table and runs it.
 *
 * `capstan help [COMMAND]`, `capstan --help` and `capstan COMMAND --help` print usage to
 * stdout and exit 0; an unknown command exits 2 with a hint. Each command lives in its own
 * cmd_<name>.c and parses its own options through cs_cli_parse (cli.h).
 */
#include "cli/cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int help_main(int argc, char **argv);

static const cs_cli_command help_cmd = {"help", "show commands, or one command's usage", help_main};

static const cs_cli_command *const commands[] = {
    &cs_cli_apply_cmd,   &cs_cli_bench_cmd, &cs_cli_delete_cmd,  &cs_cli_describe_cmd,
    &cs_cli_devices_cmd, &cs_cli_dra_cmd,   &cs_cli_get_cmd,     &cs_cli_inspect_cmd,
    &cs_cli_k8s_cmd,     &cs_cli_model_cmd, &cs_cli_rollout_cmd, &cs_cli_run_cmd,
    &cs_cli_scale_cmd,   &cs_cli_serve_cmd, &cs_cli_token_cmd,   &cs_cli_version_cmd,
    &help_cmd,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static const cs_cli_command *find(const char *name)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(commands[i]->name, name) == 0) return commands[i];
    return NULL;
}

/* The command nearest to an unknown name, for "did you mean" (NULL when none is close). */
static const char *nearest_command(const char *name)
{
    const char *names[N_COMMANDS];
    for (size_t i = 0; i < N_COMMANDS; i++) names[i] = commands[i]->name;
    return cs_cli_nearest(name, names, N_COMMANDS, sizeof names[0]);
}

static void print_overview(FILE *f)
{
    fputs("usage: capstan COMMAND [OPTIONS] [ARGS]\n\n"
          "capstan runs ONNX models: inspect them, run them on .npy tensors.\n\n"
          "commands:\n",
          f);
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i]->name, commands[i]->summary);
    fputs("\n'capstan COMMAND --help' shows a command's options.\n"
          "Exit status: 0 success, 1 runtime error, 2 usage error.\n",
          f);
}

static const char help_usage[] = "usage: capstan help [COMMAND]\n\n"
                                 "Lists the commands, or shows COMMAND's usage.\n";

static int help_main(int argc, char **argv)
{
    static const cs_cli_spec spec = {"help", help_usage, "", NULL};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, NULL, NULL, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first == argc) {
        print_overview(stdout);
        return CS_CLI_OK;
    }
    if (argc - first > 1) return cs_cli_usage_error("help", "expected at most one command");
    const cs_cli_command *c = find(argv[first]);
    if (!c) {
        const char *near = nearest_command(argv[first]);
        if (near)
            return cs_cli_usage_error("help", "unknown command '%s' (did you mean '%s'?)",
                                      argv[first], near);
        return cs_cli_usage_error("help", "unknown command '%s'", argv[first]);
    }
    char *sub[] = {(char *)c->name, "--help", NULL};
    return c->fn(2, sub);
}

int main(int argc, char **argv)
{
    /* Before any thread exists (setenv is not thread-safe): OpenBLAS, loaded at the first
     * session, starts no threads of its own; the engine splits products itself. */
    setenv("OPENBLAS_NUM_THREADS", "1", 0);
    if (argc < 2) {
        print_overview(stderr);
        return CS_CLI_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) name = "help";
    if (strcmp(name, "--version") == 0) name = "version";
    const cs_cli_command *c = find(name);
    if (!c) {
        const char *near = nearest_command(name);
        fprintf(stderr, "capstan: unknown command '%s'", argv[1]);
        if (near) fprintf(stderr, " (did you mean '%s'?)", near);
        fprintf(stderr, "; run 'capstan help' for the list of commands\n");
        return CS_CLI_USAGE;
    }
    argv[1] = (char *)c->name;
    return c->fn(argc - 1, argv + 1);
}
