/*
 * conformance.c - runs ONNX's backend test folders against the engine.
 *
 * Each folder under DATA/SUITE holds model.onnx and test_data_set_N folders of
 * input_K.pb and output_K.pb tensors.
 * Every test runs in a forked child with a time limit, so a crash or a hang is reported as
 * that test's failure and the suite goes on. Outputs are compared with rtol 1e-3 and atol
 * 1e-7 (NaN equals NaN), integers and bools exactly. A baseline file lists the tests that
 * passed before; any of them failing now fails the run (a regression), while new passes
 * are only reported. Prints one line per test and `conformance: P passed, F failed,
 * U unsupported`.
 *
 * The cross-backend check (as ggml's test-backend-ops): with --against-reference, each
 * test's inputs run on the session given by --device and --threads and on a one-thread CPU
 * session of the reference kernels' paths (no fused activations, no prepacked weights), and
 * every output of the first must match the second's within --rtol/--atol (sessions return
 * outputs in host memory, whatever their device). A baseline test must pass.
 * --device xor|xor-half runs on the test backends of xor_backend.c, which check that the
 * planner moves every value across the host/device boundary its kernels need.
 *
 * usage: cs-conformance --suite NAME --data DIR [--filter SUBSTR] [--baseline FILE]
 *                       [--write-baseline] [--timeout SECONDS] [--device DEV]
 *                       [--threads N] [--against-reference] [--rtol R] [--atol A] [-v]
 */
#include "capstan/engine.h"
#include "engine/backend.h"
#include "engine/onnx.h"
#include "xor_backend.h"

#include "base/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_IO 64

/* Test data paths are short; a truncated path would only make a test fail to open. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

enum verdict { PASS, FAIL, UNSUPPORTED };

/* Set once in main(), before any test forks. */
static double rel_tol = 1e-3, abs_tol = 1e-7;
static const char *device = "cpu";
static int threads = 1;
static bool against_reference = false;

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

static int load_tensor(const char *path, cs_arena *a, cs_tensor *t, const char **name, char *why,
                       size_t cap)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) {
        snprintf(why, cap, "cannot read %s", path);
        return -1;
    }
    cs_error err = {0};
    cs_status rc = cs__onnx_parse_tensor((const uint8_t *)buf, len, a, t, name, &err);
    free(buf);
    if (rc) {
        snprintf(why, cap, "%s: %s", path, err.msg);
        return rc == CS_ERR_UNSUPPORTED ? -2 : -1;
    }
    return 0;
}

static bool values_equal(const cs_tensor *got, cs_tensor *want, char *why, size_t cap,
                         const char *name)
{
    /* ONNX's test data stores bfloat16 tensors as uint16 (numpy has no bfloat16). */
    if (got->dtype == CS_DTYPE_BFLOAT16 && want->dtype == CS_DTYPE_UINT16)
        want->dtype = CS_DTYPE_BFLOAT16;
    if (got->dtype != want->dtype) {
        snprintf(why, cap, "output '%s': expected %s, got %s", name, cs_dtype_name(want->dtype),
                 cs_dtype_name(got->dtype));
        return false;
    }
    bool shape_ok = got->rank == want->rank;
    for (int d = 0; shape_ok && d < got->rank; d++) shape_ok = got->dims[d] == want->dims[d];
    if (!shape_ok) {
        snprintf(why, cap, "output '%s': shape differs (rank %d vs expected %d)", name, got->rank,
                 want->rank);
        return false;
    }
    int64_t n = cs_tensor_numel(want);
    bool is_float = want->dtype == CS_DTYPE_FLOAT32 || want->dtype == CS_DTYPE_FLOAT64 ||
                    want->dtype == CS_DTYPE_FLOAT16 || want->dtype == CS_DTYPE_BFLOAT16;
    size_t es = cs_dtype_size(want->dtype);
    for (int64_t i = 0; i < n; i++) {
        if (!is_float) {
            if (memcmp((char *)got->data + i * es, (char *)want->data + i * es, es)) {
                snprintf(why, cap, "output '%s'[%lld]: expected %lld, got %lld", name, (long long)i,
                         (long long)cs_tensor_get_i64(want, i),
                         (long long)cs_tensor_get_i64(got, i));
                return false;
            }
            continue;
        }
        double g = cs_tensor_get_f64(got, i), w = cs_tensor_get_f64(want, i);
        if (isnan(w) && isnan(g)) continue;
        if (g == w) continue;
        if (!(fabs(g - w) <= abs_tol + rel_tol * fabs(w))) {
            snprintf(why, cap, "output '%s'[%lld]: expected %.9g, got %.9g", name, (long long)i, w,
                     g);
            return false;
        }
    }
    return true;
}

/* Runs one test folder; returns the verdict and fills why. Runs in the child process. */
static enum verdict run_test(const char *dir, char *why, size_t cap)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    cs_model_t *m = NULL;
    cs_session_t *s = NULL, *ref = NULL;
    cs_error err = {0};
    cs_status rc = cs_model_load_file(path, &m, &err);
    if (rc) {
        snprintf(why, cap, "%s", err.msg);
        return rc == CS_ERR_UNSUPPORTED ? UNSUPPORTED : FAIL;
    }
    enum verdict v = PASS;
    cs_arena a;
    cs_arena_init(&a, 1 << 20);
    cs_session_options opts = {.threads = threads, .device = device};
    cs_session_options ref_opts = {.threads = 1};
    const cs__backend *test_be = cs_test_xor_backend(device);
    if ((rc = test_be ? cs__session_new_on(m, &opts, test_be, &s, &err)
                      : cs_session_new(m, &opts, &s, &err)) ||
        (against_reference && (rc = cs_session_new(m, &ref_opts, &ref, &err)))) {
        snprintf(why, cap, "%s", err.msg);
        v = FAIL;
        goto out;
    }
    if (ref) cs__session_set_reference(ref);
    for (int set = 0;; set++) {
        char sdir[4200];
        snprintf(sdir, sizeof sdir, "%s/test_data_set_%d", dir, set);
        struct stat st;
        if (stat(sdir, &st) != 0) break;
        cs_arena_reset(&a);
        cs_tensor ins[MAX_IO], want[MAX_IO], got[MAX_IO], ref_out[MAX_IO];
        const char *in_names[MAX_IO], *want_names[MAX_IO];
        int n_in = 0, n_want = 0;
        for (; n_in < MAX_IO; n_in++) {
            snprintf(path, sizeof path, "%s/input_%d.pb", sdir, n_in);
            if (stat(path, &st) != 0) break;
            int r = load_tensor(path, &a, &ins[n_in], &in_names[n_in], why, cap);
            if (r) {
                v = r == -2 ? UNSUPPORTED : FAIL;
                goto out;
            }
        }
        for (; n_want < MAX_IO; n_want++) {
            snprintf(path, sizeof path, "%s/output_%d.pb", sdir, n_want);
            if (stat(path, &st) != 0) break;
            int r = load_tensor(path, &a, &want[n_want], &want_names[n_want], why, cap);
            if (r) {
                v = r == -2 ? UNSUPPORTED : FAIL;
                goto out;
            }
        }
        /* Name inputs: by the tensor's own name when the model has it, else by position
         * among the inputs without an initializer. */
        int free_inputs[MAX_IO], n_free = 0;
        for (int i = 0; i < cs_model_input_count(m) && n_free < MAX_IO; i++) {
            const char *nm = cs_model_input(m, i).name;
            bool has_default = false;
            for (int k = 0; k < m->n_values; k++)
                if (m->values[k].init && !strcmp(m->values[k].name, nm)) has_default = true;
            if (!has_default) free_inputs[n_free++] = i;
        }
        for (int k = 0; k < n_in; k++) {
            bool found = false;
            for (int i = 0; i < cs_model_input_count(m) && !found; i++)
                found = !strcmp(cs_model_input(m, i).name, in_names[k]);
            if (!found) {
                if (k >= n_free) {
                    snprintf(why, cap, "test has more inputs than the model");
                    v = FAIL;
                    goto out;
                }
                in_names[k] = cs_model_input(m, free_inputs[k]).name;
            }
            for (int i = 0; i < cs_model_input_count(m); i++) {
                cs_value_info info = cs_model_input(m, i);
                if (!strcmp(info.name, in_names[k]) && info.dtype == CS_DTYPE_BFLOAT16 &&
                    ins[k].dtype == CS_DTYPE_UINT16)
                    ins[k].dtype = CS_DTYPE_BFLOAT16; /* stored as uint16, as outputs are */
            }
        }
        int n_out = cs_model_output_count(m);
        if (n_out > MAX_IO || n_want > n_out) {
            snprintf(why, cap, "test expects %d outputs, the model has %d", n_want, n_out);
            v = FAIL;
            goto out;
        }
        if (ref && (rc = cs_session_run(ref, n_in, in_names, ins, n_out, ref_out, &err))) {
            snprintf(why, cap, "reference: %s", err.msg);
            v = rc == CS_ERR_UNSUPPORTED ? UNSUPPORTED : FAIL;
            goto out;
        }
        if ((rc = cs_session_run(s, n_in, in_names, ins, n_out, got, &err))) {
            snprintf(why, cap, "%s", err.msg);
            v = rc == CS_ERR_UNSUPPORTED ? UNSUPPORTED : FAIL;
            goto out;
        }
        for (int j = 0; j < n_out; j++) {
            if (ref && !values_equal(&got[j], &ref_out[j], why, cap, cs_model_output(m, j).name)) {
                v = FAIL;
                goto out;
            }
        }
        for (int k = 0; k < n_want && !ref; k++) {
            int j = k;
            for (int o = 0; o < n_out; o++)
                if (!strcmp(cs_model_output(m, o).name, want_names[k])) j = o;
            if (!values_equal(&got[j], &want[k], why, cap, cs_model_output(m, j).name)) {
                v = FAIL;
                goto out;
            }
        }
    }
out:
    cs_arena_free(&a);
    cs_session_free(s);
    cs_session_free(ref);
    cs_model_free(m);
    return v;
}

/* Forks, runs the test in the child with a time limit, and reads its verdict line. */
static enum verdict run_isolated(const char *dir, int timeout_s, char *why, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0) {
        snprintf(why, cap, "pipe: %s", strerror(errno));
        return FAIL;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(why, cap, "fork: %s", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return FAIL;
    }
    if (pid == 0) {
        close(fds[0]);
        char msg[1024] = "";
        enum verdict v = run_test(dir, msg, sizeof msg);
        char line[1100];
        int n = snprintf(line, sizeof line, "%d %s", (int)v, msg);
        if (write(fds[1], line, (size_t)(n < (int)sizeof line ? n : (int)sizeof line - 1)) < 0)
            _exit(3);
        close(fds[1]);
        _exit(0);
    }
    close(fds[1]);
    char line[1100] = "";
    size_t got = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    bool timed_out = false;
    for (;;) {
        struct pollfd pfd = {fds[0], POLLIN, 0};
        int r = poll(&pfd, 1, 200);
        if (r > 0) {
            ssize_t n = read(fds[0], line + got, sizeof line - 1 - got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > timeout_s) {
            kill(pid, SIGKILL);
            timed_out = true;
            break;
        }
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    line[got] = '\0';
    if (timed_out) {
        snprintf(why, cap, "hang: no result within %d s", timeout_s);
        return FAIL;
    }
    if (WIFSIGNALED(status)) {
        snprintf(why, cap, "crash: signal %d", WTERMSIG(status));
        return FAIL;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got < 2) {
        snprintf(why, cap, "child exited with status %d", WEXITSTATUS(status));
        return FAIL;
    }
    snprintf(why, cap, "%s", line + 2);
    return (enum verdict)(line[0] - '0');
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_list(char **list, size_t n, const char *name)
{
    return n && bsearch(&name, list, n, sizeof *list, cmp_str) != NULL;
}

static size_t read_lines(const char *path, char ***out)
{
    size_t len, n = 0;
    char *buf = read_file(path, &len);
    *out = NULL;
    if (!buf) return 0;
    buf[len] = '\0';
    size_t cap = 16;
    char **lines = malloc(cap * sizeof *lines);
    for (char *save = NULL, *tok = strtok_r(buf, "\n", &save); tok && lines;
         tok = strtok_r(NULL, "\n", &save)) {
        if (!*tok || *tok == '#') continue;
        if (n == cap) lines = realloc(lines, (cap *= 2) * sizeof *lines);
        if (lines) lines[n++] = strdup(tok);
    }
    free(buf);
    if (lines) qsort(lines, n, sizeof *lines, cmp_str);
    *out = lines;
    return lines ? n : 0;
}

int main(int argc, char **argv)
{
    const char *suite = "node", *data = "/usr/share/libonnx-testdata/data", *filter = NULL,
               *baseline = NULL;
    bool write_baseline = false, verbose = false;
    int timeout_s = 120;
    static const struct option opts[] = {
        {"suite", required_argument, 0, 's'},
        {"data", required_argument, 0, 'd'},
        {"filter", required_argument, 0, 'f'},
        {"baseline", required_argument, 0, 'b'},
        {"write-baseline", no_argument, 0, 'w'},
        {"timeout", required_argument, 0, 't'},
        {"verbose", no_argument, 0, 'v'},
        {"device", required_argument, 0, 'D'},
        {"threads", required_argument, 0, 'T'},
        {"against-reference", no_argument, 0, 'R'},
        {"rtol", required_argument, 0, 'r'},
        {"atol", required_argument, 0, 'a'},
        {0, 0, 0, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "s:d:f:b:wt:v", opts, NULL)) != -1) {
        switch (c) {
        case 's': suite = optarg; break;
        case 'd': data = optarg; break;
        case 'f': filter = optarg; break;
        case 'b': baseline = optarg; break;
        case 'w': write_baseline = true; break;
        case 't': timeout_s = atoi(optarg); break;
        case 'v': verbose = true; break;
        case 'D': device = optarg; break;
        case 'T': threads = atoi(optarg); break;
        case 'R': against_reference = true; break;
        case 'r': rel_tol = atof(optarg); break;
        case 'a': abs_tol = atof(optarg); break;
        default:
            fprintf(stderr, "usage: cs-conformance --suite NAME --data DIR [--filter SUBSTR] "
                            "[--baseline FILE] [--write-baseline] [--timeout S] [--device DEV] "
                            "[--threads N] [--against-reference] [--rtol R] [--atol A] [-v]\n");
            return 2;
        }
    }
    char root[4096];
    snprintf(root, sizeof root, "%s/%s", data, suite);
    struct dirent **ents;
    int n = scandir(root, &ents, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "cs-conformance: cannot read %s: %s\n", root, strerror(errno));
        return 2;
    }
    char **base = NULL;
    size_t n_base = baseline && !write_baseline ? read_lines(baseline, &base) : 0;
    FILE *bf = write_baseline && baseline ? fopen(baseline, "w") : NULL;
    if (write_baseline && baseline && !bf) {
        fprintf(stderr, "cs-conformance: cannot write %s\n", baseline);
        return 2;
    }
    int counts[3] = {0}, regressions = 0, new_passes = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        char dir[8300], model[8400];
        snprintf(dir, sizeof dir, "%s/%s", root, name);
        snprintf(model, sizeof model, "%s/model.onnx", dir);
        struct stat st;
        bool skip = name[0] == '.' || stat(model, &st) != 0 || (filter && !strstr(name, filter));
        if (skip) {
            free(ents[i]);
            continue;
        }
        char why[1100] = "";
        enum verdict v = run_isolated(dir, timeout_s, why, sizeof why);
        counts[v]++;
        bool was = in_list(base, n_base, name);
        static const char *const tags[] = {"PASS", "FAIL", "UNSUPPORTED"};
        if (v == PASS) {
            if (bf) fprintf(bf, "%s\n", name);
            if (baseline && !write_baseline && !was) new_passes++;
            printf("PASS %s%s\n", name, baseline && !write_baseline && !was ? " (new)" : "");
        } else {
            if (was) regressions++;
            printf("%s %s%s", was ? "REGRESSION" : tags[v], name, verbose || was ? ": " : "");
            printf("%s\n", verbose || was ? why : "");
        }
        free(ents[i]);
    }
    free(ents);
    if (bf) fclose(bf);
    for (size_t i = 0; i < n_base; i++) free(base[i]);
    free(base);
    printf("conformance: %d passed, %d failed, %d unsupported\n", counts[PASS], counts[FAIL],
           counts[UNSUPPORTED]);
    if (new_passes)
        printf("conformance: %d tests pass that the baseline does not list; update it with "
               "--write-baseline\n",
               new_passes);
    if (regressions) {
        printf("conformance: %d regressions against %s\n", regressions, baseline);
        return 1;
    }
    return 0;
}
