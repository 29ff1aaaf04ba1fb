/*
 * cmd_run.c - `capstan run MODEL.onnx -i NAME=FILE.npy ... --out-dir DIR [--threads N]`.
 *
 * Reads each input from a .npy file, runs the model once in a fresh session and writes
 * every output to DIR/<name>.npy (DIR created with its parents, as mkdir -p). -o is the
 * output format in every other command, so here it is refused with a pointer to --out-dir. Input
 * checking (unknown, missing, repeated inputs, wrong type or shape) is the engine's: its messages
 * name the input and what it expected. Output names are turned into safe file names here; see the
 * usage text for the rule.
 */
#include "cli/cli.h"

#include "base/alloc.h"
#include "base/vec.h"
#include "capstan/engine.h"
#include "cli/npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char usage[] =
    "usage: capstan run MODEL.onnx -i NAME=FILE.npy [-i ...] --out-dir DIR [--threads N]\n"
    "                   [--device DEV] [--precision P]\n\n"
    "Runs the model once on inputs read from NumPy .npy files and writes each output to\n"
    "DIR/OUTPUT.npy (format 1.0, C order, little-endian). DIR is created with its parents\n"
    "if missing.\n\n"
    "options:\n"
    "  -i, --input NAME=FILE  the model input NAME, from FILE (.npy 1.0/2.0/3.0, C order,\n"
    "                         little-endian; f2 f4 f8 i1 i2 i4 i8 u1 u2 u4 u8 b1); once per\n"
    "                         input\n"
    "  --out-dir DIR          where the outputs go\n"
    "  -t, --threads N        worker threads (0 = one per core, the default; 1 = no pool)\n"
    "  --device DEV           where the session runs: cpu (the default) or cuda:N in\n"
    "                         builds with that backend\n"
    "  --precision P          fp32 (the default), tf32, fp16 or bf16 on backends that\n"
    "                         offer them\n"
    "  -h, --help             show this help\n\n"
    "Output file names: every character other than A-Z a-z 0-9 '.' '-' '_' becomes '_'\n"
    "(so 'block/conv:0' is written to block_conv_0.npy), a leading '.' becomes '_', and an\n"
    "empty name becomes output_<index>. Two outputs that map to the same file are an "
    "error.\n";

typedef struct run_input {
    const char *name, *file; /* borrowed from argv (name is cut at '=') */
} run_input;

typedef struct run_opts {
    cs_vec inputs; /* run_input */
    const char *out_dir;
    int threads;
    const char *device;
    cs_precision precision;
} run_opts;

static int on_option(void *ctx, int opt, const char *arg)
{
    run_opts *o = ctx;
    long n;
    switch (opt) {
    case 'i': {
        char *eq = strchr(arg, '=');
        if (!eq || eq == arg || !eq[1])
            return cs_cli_usage_error("run", "-i expects NAME=FILE.npy, got '%s'", arg);
        *eq = '\0'; /* argv strings are ours to edit */
        run_input in = {arg, eq + 1};
        if (cs_vec_push(&o->inputs, &in) != CS_OK) return cs_cli_error("run", "out of memory");
        return CS_CLI_CONTINUE;
    }
    case 'd': o->out_dir = arg; return CS_CLI_CONTINUE;
    case 'D': return cs_cli_parse_device("run", arg, &o->device);
    case 'P': return cs_cli_parse_precision("run", arg, &o->precision);
    case 'o':
        return cs_cli_usage_error("run", "-o/--output is no longer the output directory: use "
                                         "--out-dir DIR");
    default: /* 't' */
        if (cs_cli_parse_int(arg, 0, 256, &n) != 0)
            return cs_cli_usage_error("run", "--threads expects 0..256, got '%s'", arg);
        o->threads = (int)n;
        return CS_CLI_CONTINUE;
    }
}

/* mkdir -p: each missing component of dir, in order; an existing directory is fine, an
 * existing file is ENOTDIR. 0, or -1 with errno set. */
static int mkdir_parents(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path) {
        errno = n ? ENAMETOOLONG : ENOENT;
        return -1;
    }
    memcpy(path, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0') continue;
        char c = path[i];
        path[i] = '\0';
        struct stat st;
        if (mkdir(path, 0777) != 0 && errno != EEXIST) return -1;
        if (stat(path, &st) != 0) return -1;
        if (!S_ISDIR(st.st_mode)) {
            errno = ENOTDIR;
            return -1;
        }
        path[i] = c;
    }
    return 0;
}

/* Writes the safe file name for output j into buf (see the usage text). */
static void file_name(const char *name, int j, char *buf, size_t cap)
{
    if (!*name) {
        snprintf(buf, cap, "output_%d", j);
        return;
    }
    size_t n = 0;
    for (const char *p = name; *p && n + 1 < cap; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || (c == '.' && p != name);
        buf[n++] = ok ? c : '_';
    }
    buf[n] = '\0';
}

/* Writes every output; fails on the first that cannot be written. */
static int write_outputs(const cs_model_t *m, const cs_tensor *outs, const char *dir)
{
    int n = cs_model_output_count(m);
    char path[4096], prev[4096];
    for (int j = 0; j < n; j++) {
        const char *name = cs_model_output(m, j).name;
        char base[256];
        file_name(name, j, base, sizeof base);
        /* Outputs whose names map to the same file would overwrite each other. */
        for (int k = 0; k < j; k++) {
            file_name(cs_model_output(m, k).name, k, prev, sizeof prev);
            if (!strcmp(prev, base))
                return cs_cli_error("run", "outputs '%s' and '%s' would both be written to %s.npy",
                                    cs_model_output(m, k).name, name, base);
        }
        if ((size_t)snprintf(path, sizeof path, "%s/%s.npy", dir, base) >= sizeof path)
            return cs_cli_error("run", "output path for '%s' is too long", name);
        cs_error err;
        if (cs_npy_save(path, &outs[j], &err) != CS_OK)
            return cs_cli_error("run", "output '%s': %s", name, err.msg);
        printf("%s: %s [", path, cs_dtype_name(outs[j].dtype));
        for (int d = 0; d < outs[j].rank; d++)
            printf("%s%lld", d ? "," : "", (long long)outs[j].dims[d]);
        printf("]\n");
    }
    return CS_CLI_OK;
}

static int run_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"input", required_argument, NULL, 'i'},
                                             {"out-dir", required_argument, NULL, 'd'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"threads", required_argument, NULL, 't'},
                                             {"device", required_argument, NULL, 'D'},
                                             {"precision", required_argument, NULL, 'P'},
                                             {0}};
    static const cs_cli_spec spec = {"run", usage, "i:o:t:", longopts};
    run_opts o = {.threads = 0};
    cs_vec_init(&o.inputs, sizeof(run_input));
    cs_model_t *m = NULL;
    cs_session_t *s = NULL;
    cs_tensor *ins = NULL, *outs = NULL;
    const char **names = NULL;
    size_t n_in = 0;
    cs_error err;
    int first;

    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc == CS_CLI_CONTINUE) rc = cs_cli_one_operand("run", "MODEL.onnx", argc, argv, first);
    if (rc != CS_CLI_CONTINUE) goto out;
    rc = CS_CLI_USAGE;
    if (!o.out_dir) {
        cs_cli_usage_error("run", "missing --out-dir DIR");
        goto out;
    }

    rc = CS_CLI_RUNTIME;
    if (cs_model_load_file(argv[first], &m, &err) != CS_OK) {
        cs_cli_error("run", "%s", err.msg);
        goto out;
    }
    n_in = o.inputs.len;
    int n_out = cs_model_output_count(m);
    ins = cs_calloc(n_in, sizeof *ins);
    names = cs_calloc(n_in, sizeof *names);
    outs = cs_calloc((size_t)n_out, sizeof *outs);
    if (!ins || !names || !outs) {
        cs_cli_error("run", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n_in; i++) {
        const run_input *in = cs_vec_at(&o.inputs, i);
        names[i] = in->name;
        if (cs_npy_load(in->file, &ins[i], &err) != CS_OK) {
            cs_cli_error("run", "input '%s': %s", in->name, err.msg);
            goto out;
        }
    }
    cs_session_options so = {.threads = o.threads, .device = o.device, .precision = o.precision};
    if (cs_session_new(m, &so, &s, &err) != CS_OK ||
        cs_session_run(s, (int)n_in, names, ins, n_out, outs, &err) != CS_OK) {
        cs_cli_error("run", "%s", err.msg);
        goto out;
    }
    if (mkdir_parents(o.out_dir) != 0) {
        cs_cli_error("run", "--out-dir: cannot create %s: %s", o.out_dir, strerror(errno));
        goto out;
    }
    rc = write_outputs(m, outs, o.out_dir);
out:
    for (size_t i = 0; ins && i < n_in; i++) cs_free(ins[i].data);
    cs_free(ins);
    cs_free(names);
    cs_free(outs);
    cs_session_free(s);
    cs_model_free(m);
    cs_vec_free(&o.inputs);
    return rc;
}

const cs_cli_command cs_cli_run_cmd = {"run", "run a model on .npy inputs, write .npy outputs",
                                       run_main};
