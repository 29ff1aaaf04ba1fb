/*
 * cmd_version.c - `capstan version`: version, git revision, build flavour, compiler.
 *
 * The build flavour is read from the compiler's own macros (optimisation, NDEBUG,
 * sanitizers), so it describes the code actually compiled, whatever the build type's name.
 */
#include "cli/cli.h"

#include <stdio.h>

#ifndef CS_VERSION
#define CS_VERSION "unknown"
#endif
#ifndef CS_GIT_REV
#define CS_GIT_REV "unknown"
#endif

#if defined(__clang__)
#define COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define COMPILER "gcc " __VERSION__
#else
#define COMPILER "unknown"
#endif

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZE ", ASan"
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZE ", ASan"
#endif
#endif
#ifndef SANITIZE
#define SANITIZE ""
#endif

#ifdef __OPTIMIZE__
#define OPT "optimised"
#else
#define OPT "unoptimised"
#endif
#ifdef NDEBUG
#define ASSERTS "assertions off"
#else
#define ASSERTS "assertions on"
#endif

static const char usage[] = "usage: capstan version\n\n"
                            "Prints capstan's version, git revision, build flavour and "
                            "compiler.\n";

static int version_main(int argc, char **argv)
{
    static const cs_cli_spec spec = {"version", usage, "", NULL};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, NULL, NULL, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first != argc)
        return cs_cli_usage_error("version", "unexpected argument '%s'", argv[first]);
    printf("capstan %s\n"
           "git rev:  %s\n"
           "build:    %s, %s%s\n"
           "compiler: %s\n",
           CS_VERSION, CS_GIT_REV, OPT, ASSERTS, SANITIZE, COMPILER);
    return CS_CLI_OK;
}

const cs_cli_command cs_cli_version_cmd = {"version", "print version and build information",
                                           version_main};
