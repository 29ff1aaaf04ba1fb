/*
 * dra_cases.c - the DRA conformance suite's runner: `dra_cases CAPSTAN CASES_DIR`.
 *
 * Each .yaml file in CASES_DIR is a multi-document stream of input objects plus one document of
 * `kind: Expect`:
 *
 *   kind: Expect
 *   node: node-1          # optional: --node
 *   nodeLabels: k=v,k2=v2 # optional: --node-labels
 *   policy: best-fit      # optional: --policy
 *   each: true            # optional: --each (each claim a pod of its own, in file order;
 *                         # by default the file's pending claims are one pod's)
 *   error: substring      # optional: the input is invalid (exit 2, message on stderr)
 *   claims:
 *     claim-0:
 *       results:          # in order; only the fields given are compared
 *       - {request: req-0, driver: gpu.example.com, pool: pool-a, device: dev-0}
 *       - {request: req-1, device: dev-3, consumedCapacity: {memory: 8Gi}}
 *       - {request: req-2, tolerations: [{key: k, operator: Exists}]}  # lists as JSON text
 *       - {request: req-3, bindingConditions: none}   # none: the field is absent
 *       nodeSelector: none  # optional: status.allocation.nodeSelector (none: absent)
 *       config:           # optional: status.allocation.devices.config, in order; only the
 *       - {source: FromClass, requests: [req-0]}   # keys given are compared (none: absent)
 *     claim-1: {unallocatable: true, reason: substring}   # reason: optional
 *     claim-2: {error: "asks for all devices"}
 *
 * The runner writes the input documents to a temporary file, runs the real binary
 * (`capstan dra allocate -f FILE -o yaml ...`) and compares what it prints, so the CLI is
 * what is tested. It prints one line per failure and `dra: N passed, M failed`.
 */
#include "base/alloc.h"
#include "base/sbuf.h"
#include "devices/quantity.h"
#include "devices/ytree.h"

#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *read_all(FILE *f, size_t *len)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 64u << 20);
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (cs_sbuf_append(&b, chunk, n) != CS_OK) break;
    *len = b.len;
    return cs_sbuf_take(&b);
}

static char *read_path(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = read_all(f, len);
    fclose(f);
    return s;
}

/* Reports a mismatch; always returns false. */
static bool mismatch(const char *file, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool mismatch(const char *file, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL %s: ", file);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    return false;
}

static bool same_qty(const char *a, const char *b)
{
    cs_quantity x, y;
    cs_error err;
    return a && b && cs_quantity_parse(a, &x, &err) == CS_OK &&
           cs_quantity_parse(b, &y, &err) == CS_OK && cs_quantity_cmp(x, y) == 0;
}

/* Whether got (maybe NULL) is want as JSON text; want "none" means absent. */
static bool same_json(const cs_ynode *want, const cs_ynode *got, char *why, size_t cap)
{
    if (want->kind == CS_YNODE_SCALAR && strcmp(want->s, "none") == 0) {
        snprintf(why, cap, "present");
        return got == NULL;
    }
    cs_sbuf a, b;
    cs_sbuf_init(&a, 0);
    cs_sbuf_init(&b, 0);
    bool same = got && cs_ynode_write_json(want, &a) == CS_OK &&
                cs_ynode_write_json(got, &b) == CS_OK && a.len == b.len &&
                memcmp(a.data, b.data, a.len) == 0;
    snprintf(why, cap, "%.*s", (int)b.len, b.data ? b.data : "(none)");
    cs_sbuf_free(&a);
    cs_sbuf_free(&b);
    return same;
}

static bool check_results(const char *file, const char *claim, const cs_ynode *want,
                          const cs_ynode *got)
{
    size_t n_got = got && got->kind == CS_YNODE_SEQ ? got->n : 0;
    if (want->n != n_got)
        return mismatch(file, "claim %s: %zu results, expected %zu", claim, n_got, want->n);
    for (size_t i = 0; i < want->n; i++) {
        const cs_ynode *w = want->items[i], *g = got->items[i];
        for (size_t k = 0; k < w->n; k++) {
            const char *key = w->keys[k];
            if (strcmp(key, "consumedCapacity") == 0) {
                const cs_ynode *wc = w->items[k], *gc = cs_ynode_get(g, key);
                size_t gn = gc ? gc->n : 0;
                if (gn != wc->n)
                    return mismatch(file,
                                    "claim %s: results[%zu].consumedCapacity has %zu "
                                    "entries, expected %zu",
                                    claim, i, gn, wc->n);
                for (size_t j = 0; j < wc->n; j++)
                    if (!same_qty(wc->items[j]->s, cs_ynode_str(gc, wc->keys[j])))
                        return mismatch(file,
                                        "claim %s: results[%zu].consumedCapacity.%s = %s, "
                                        "expected %s",
                                        claim, i, wc->keys[j],
                                        cs_ynode_str(gc, wc->keys[j])
                                            ? cs_ynode_str(gc, wc->keys[j])
                                            : "(none)",
                                        wc->items[j]->s);
                continue;
            }
            if (w->items[k]->kind != CS_YNODE_SCALAR) { /* tolerations, bindingConditions */
                char why[512];
                if (!same_json(w->items[k], cs_ynode_get(g, key), why, sizeof why))
                    return mismatch(file, "claim %s: results[%zu].%s is %s", claim, i, key, why);
                continue;
            }
            const char *gv = cs_ynode_str(g, key);
            const char *wv = w->items[k]->s;
            if (!gv && !cs_ynode_get(g, key) && wv && strcmp(wv, "none") == 0) continue;
            if (!gv) gv = strcmp(key, "adminAccess") == 0 ? "false" : "(none)";
            if (!wv || strcmp(gv, wv) != 0)
                return mismatch(file, "claim %s: results[%zu].%s = %s, expected %s", claim, i, key,
                                gv, wv ? wv : "?");
        }
    }
    return true;
}

static const cs_ynode *find_claim(const cs_ystream *out, const char *name)
{
    for (size_t i = 0; i < out->n_docs; i++) {
        const char *n = cs_ynode_str(cs_ynode_get(out->docs[i], "metadata"), "name");
        if (n && strcmp(n, name) == 0) return out->docs[i];
    }
    return NULL;
}

/* Compares status.allocation.nodeSelector as JSON text; want "none" means absent. */
static bool check_node_selector(const char *file, const char *claim, const cs_ynode *want,
                                const cs_ynode *got)
{
    if (!want) return true;
    if (want->kind == CS_YNODE_SCALAR && strcmp(want->s, "none") == 0)
        return got ? mismatch(file, "claim %s: has a nodeSelector, expected none", claim) : true;
    if (!got) return mismatch(file, "claim %s: no nodeSelector", claim);
    cs_sbuf a, b;
    cs_sbuf_init(&a, 0);
    cs_sbuf_init(&b, 0);
    bool same = cs_ynode_write_json(want, &a) == CS_OK && cs_ynode_write_json(got, &b) == CS_OK &&
                a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    if (!same)
        mismatch(file, "claim %s: nodeSelector %.*s, expected %.*s", claim, (int)b.len,
                 b.data ? b.data : "", (int)a.len, a.data ? a.data : "");
    cs_sbuf_free(&a);
    cs_sbuf_free(&b);
    return same;
}

static bool check_config(const char *file, const char *claim, const cs_ynode *want,
                         const cs_ynode *got)
{
    if (!want) return true;
    size_t n_got = got && got->kind == CS_YNODE_SEQ ? got->n : 0;
    if (want->n != n_got)
        return mismatch(file, "claim %s: %zu config entries, expected %zu", claim, n_got, want->n);
    char why[512];
    for (size_t i = 0; i < want->n; i++)
        for (size_t k = 0; k < want->items[i]->n; k++) {
            const char *key = want->items[i]->keys[k];
            if (!same_json(want->items[i]->items[k], cs_ynode_get(got->items[i], key), why,
                           sizeof why))
                return mismatch(file, "claim %s: config[%zu].%s is %s", claim, i, key, why);
        }
    return true;
}

static bool check_claim(const char *file, const char *name, const cs_ynode *want,
                        const cs_ystream *out)
{
    const cs_ynode *doc = find_claim(out, name);
    if (!doc) return mismatch(file, "claim %s not in the output", name);
    const char *reason = cs_ynode_str(cs_ynode_get(cs_ynode_get(doc, "metadata"), "annotations"),
                                      "dra.capstan.io/unallocated");
    const cs_ynode *results = cs_ynode_get(
        cs_ynode_get(cs_ynode_get(cs_ynode_get(doc, "status"), "allocation"), "devices"),
        "results");
    const char *err = cs_ynode_str(want, "error");
    if (cs_ynode_get(want, "unallocatable")) {
        if (!reason || strncmp(reason, "cannot be allocated", 19) != 0)
            return mismatch(file, "claim %s: expected unallocatable, got %s", name,
                            reason ? reason : "an allocation");
        const char *why = cs_ynode_str(want, "reason");
        if (why && !strstr(reason, why))
            return mismatch(file, "claim %s: reason '%s' lacks '%s'", name, reason, why);
        return true;
    }
    if (err) {
        if (!reason || !strncmp(reason, "cannot be allocated", 19) || !strstr(reason, err))
            return mismatch(file, "claim %s: expected an error with '%s', got %s", name, err,
                            reason ? reason : "an allocation");
        return true;
    }
    if (reason) return mismatch(file, "claim %s: not allocated: %s", name, reason);
    const cs_ynode *want_results = cs_ynode_get(want, "results");
    if (!want_results || want_results->kind != CS_YNODE_SEQ)
        return mismatch(file, "claim %s: Expect needs results, unallocatable or error", name);
    if (!check_results(file, name, want_results, results)) return false;
    const cs_ynode *alloc = cs_ynode_get(cs_ynode_get(doc, "status"), "allocation");
    if (!check_config(file, name, cs_ynode_get(want, "config"),
                      cs_ynode_get(cs_ynode_get(alloc, "devices"), "config")))
        return false;
    return check_node_selector(
        file, name, cs_ynode_get(want, "nodeSelector"),
        cs_ynode_get(cs_ynode_get(cs_ynode_get(doc, "status"), "allocation"), "nodeSelector"));
}

/* Runs capstan on the inputs; fills stdout text, stderr text and the exit status. */
static int run(const char *capstan, const char *input, const cs_ynode *expect, char **out,
               char **errtext)
{
    char errpath[] = "/tmp/dra_case_err_XXXXXX";
    int fd = mkstemp(errpath);
    if (fd < 0) return -1;
    close(fd);
    const char *node = cs_ynode_str(expect, "node"), *policy = cs_ynode_str(expect, "policy");
    const char *labels = cs_ynode_str(expect, "nodeLabels");
    const char *each = cs_ynode_str(expect, "each");
    char cmd[4096], labels_arg[1024] = "";
    if (labels) snprintf(labels_arg, sizeof labels_arg, " --node-labels '%s'", labels);
    snprintf(cmd, sizeof cmd, "'%s' dra allocate -f '%s' -o yaml%s%s%s%s%s%s 2>'%s'", capstan,
             input, node ? " --node " : "", node ? node : "", policy ? " --policy " : "",
             policy ? policy : "", labels_arg, each && !strcmp(each, "true") ? " --each" : "",
             errpath);
    FILE *p = popen(cmd, "r");
    size_t len;
    *out = p ? read_all(p, &len) : NULL;
    int status = p ? pclose(p) : -1;
    *errtext = read_path(errpath, &len);
    unlink(errpath);
    return status >= 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static bool run_case(const char *capstan, const char *file)
{
    size_t len;
    char *text = read_path(file, &len);
    if (!text) return mismatch(file, "cannot read");
    cs_ystream in;
    cs_error err;
    bool ok = false;
    char *out = NULL, *errtext = NULL;
    char input[] = "/tmp/dra_case_in_XXXXXX";
    int fd = -1;
    if (cs_ystream_parse(&in, text, len, &err) != CS_OK) {
        mismatch(file, "%s", err.msg);
        goto done;
    }
    const cs_ynode *expect = NULL;
    cs_sbuf inputs;
    cs_sbuf_init(&inputs, 0);
    for (size_t i = 0; i < in.n_docs; i++) {
        const char *kind = cs_ynode_str(in.docs[i], "kind");
        if (kind && strcmp(kind, "Expect") == 0)
            expect = in.docs[i];
        else
            cs_ynode_write_yaml(in.docs[i], &inputs);
    }
    fd = mkstemp(input);
    if (!expect || fd < 0 || write(fd, inputs.data, inputs.len) != (ssize_t)inputs.len) {
        cs_sbuf_free(&inputs);
        mismatch(file, "no kind: Expect document, or cannot write a temporary file");
        goto done;
    }
    cs_sbuf_free(&inputs);
    int code = run(capstan, input, expect, &out, &errtext);
    const char *want_err = cs_ynode_str(expect, "error");
    if (want_err) {
        ok = code == 2 && errtext && strstr(errtext, want_err);
        if (!ok)
            mismatch(file, "expected exit 2 with '%s', got exit %d: %s", want_err, code,
                     errtext ? errtext : "");
        goto done;
    }
    if (code != 0) {
        mismatch(file, "exit %d: %s", code, errtext ? errtext : "");
        goto done;
    }
    cs_ystream got;
    if (cs_ystream_parse(&got, out, strlen(out), &err) != CS_OK) {
        mismatch(file, "output is not YAML: %s", err.msg);
        cs_ystream_free(&got);
        goto done;
    }
    const cs_ynode *claims = cs_ynode_get(expect, "claims");
    ok = claims && claims->kind == CS_YNODE_MAP;
    if (!ok) mismatch(file, "Expect needs claims or error");
    for (size_t i = 0; ok && i < claims->n; i++)
        ok = check_claim(file, claims->keys[i], claims->items[i], &got);
    cs_ystream_free(&got);
done:
    if (fd >= 0) {
        close(fd);
        unlink(input);
    }
    cs_free(out);
    cs_free(errtext);
    cs_ystream_free(&in);
    cs_free(text);
    return ok;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: dra_cases CAPSTAN CASES_DIR\n");
        return 2;
    }
    char pattern[4096];
    snprintf(pattern, sizeof pattern, "%s/*.yaml", argv[2]);
    glob_t g;
    if (glob(pattern, 0, NULL, &g) != 0) {
        fprintf(stderr, "dra_cases: no cases match %s\n", pattern);
        return 1;
    }
    int passed = 0, failed = 0;
    for (size_t i = 0; i < g.gl_pathc; i++) {
        if (run_case(argv[1], g.gl_pathv[i]))
            passed++;
        else
            failed++;
    }
    globfree(&g);
    printf("dra: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
