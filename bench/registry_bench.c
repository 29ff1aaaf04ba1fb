/*
 * registry_bench.c - the registry's two performance promises, measured against a peer in
 * the same run:
 *
 *   push:  pushing a large artifact (default 500 MB, a valid ONNX model made here) takes
 *          at most 1.5x the time of `cp` of the same file on the same disk. The push
 *          hashes, fsyncs and loads what it stores; cp does none of that, so the run also
 *          reports cp followed by `sync FILE` (the same durability) as a second peer,
 *          sha256 alone over the cached file (the floor of any hashing push), and a
 *          streamed push (a read callback, as an HTTP upload arrives) beside the push
 *          of a file descriptor (which the kernel copies).
 *   list:  listing 10,000 versions page by page (100 per page) on SQLite takes at most
 *          50 ms per page at p50.
 *
 * usage: registry_bench [--dir DIR] [--size-mb N] [--versions N] [--page N] [--runs N]
 * DIR (default ./registry-bench-data) must be on the disk under test; it is removed at
 * the end. Results go to stdout as text; BENCHMARKS.md records them with the command.
 */
#define _GNU_SOURCE
#include "base/arena.h"
#include "base/clock.h"
#include "registry/registry.h"

#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1 << 20)

/* --- a large valid ONNX model: y = x + w with one float initializer w ------------------ */

typedef struct pb {
    unsigned char b[512];
    size_t n;
} pb;

static void varint(pb *p, uint64_t v)
{
    do {
        p->b[p->n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7f) v >>= 7, n++;
    return n;
}

static void tag(pb *p, int field, int wire)
{
    varint(p, (uint64_t)field << 3 | (uint64_t)wire);
}

static void bytes(pb *p, int field, const void *data, size_t n)
{
    tag(p, field, 2);
    varint(p, n);
    memcpy(p->b + p->n, data, n);
    p->n += n;
}

static void str(pb *p, int field, const char *s)
{
    bytes(p, field, s, strlen(s));
}

static void msg(pb *p, int field, const pb *m)
{
    bytes(p, field, m->b, m->n);
}

/* ValueInfoProto: name, float tensor of shape [n]. */
static void value_info(pb *out, int field, const char *name, uint64_t n)
{
    pb dim = {0}, shape = {0}, tensor = {0}, type = {0}, vi = {0};
    tag(&dim, 1, 0);
    varint(&dim, n);
    msg(&shape, 1, &dim);
    tag(&tensor, 1, 0);
    varint(&tensor, 1); /* FLOAT */
    msg(&tensor, 2, &shape);
    msg(&type, 1, &tensor);
    str(&vi, 1, name);
    msg(&vi, 2, &type);
    msg(out, field, &vi);
}

static int write_all(int fd, const void *p, size_t n)
{
    return write(fd, p, n) == (ssize_t)n ? 0 : -1;
}

/* Writes the model to path with raw_bytes of weights; the weight bytes vary (xorshift)
 * so no layer below can shortcut them. */
static int make_model(const char *path, uint64_t raw_bytes)
{
    uint64_t floats = raw_bytes / 4;
    raw_bytes = floats * 4;
    pb node = {0}, opset = {0}, init_head = {0}, io = {0}, model_head = {0}, graph_head = {0};
    str(&node, 1, "x");
    str(&node, 1, "w");
    str(&node, 2, "y");
    str(&node, 4, "Add");
    tag(&init_head, 1, 0);
    varint(&init_head, floats);
    tag(&init_head, 2, 0);
    varint(&init_head, 1);
    str(&init_head, 8, "w");
    value_info(&io, 11, "x", floats);
    value_info(&io, 12, "y", floats);
    uint64_t init_len = init_head.n + 1 + varint_size(raw_bytes) + raw_bytes;
    /* The graph name pads the headers so that the weights start 64-byte aligned in the
     * file, where the engine maps them in place (an unaligned initializer costs the engine
     * one copy at load, as it would for any consumer). */
    char name[80];
    for (int pad = 0; pad < 64; pad++) {
        memset(name, 'g', (size_t)pad + 1);
        name[pad + 1] = '\0';
        graph_head.n = model_head.n = opset.n = 0;
        msg(&graph_head, 1, &node);
        str(&graph_head, 2, name);
        tag(&graph_head, 5, 2);
        varint(&graph_head, init_len);
        memcpy(graph_head.b + graph_head.n, init_head.b, init_head.n);
        graph_head.n += init_head.n;
        tag(&graph_head, 9, 2);
        varint(&graph_head, raw_bytes);
        uint64_t graph_len = graph_head.n + raw_bytes + io.n;
        tag(&model_head, 1, 0);
        varint(&model_head, 8); /* ir_version */
        tag(&opset, 2, 0);
        varint(&opset, 13);
        msg(&model_head, 8, &opset);
        tag(&model_head, 7, 2);
        varint(&model_head, graph_len);
        if ((model_head.n + graph_head.n) % 64 == 0) break;
    }

    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return -1;
    int rc = write_all(fd, model_head.b, model_head.n) | write_all(fd, graph_head.b, graph_head.n);
    uint32_t *buf = malloc(CHUNK);
    uint32_t x = 2463534242u;
    for (uint64_t left = raw_bytes; rc == 0 && left > 0;) {
        size_t n = left < CHUNK ? (size_t)left : CHUNK;
        for (size_t i = 0; i < n / 4; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf[i] = x & 0x3f7fffffu; /* finite floats */
        }
        rc = write_all(fd, buf, n);
        left -= n;
    }
    rc |= write_all(fd, io.b, io.n);
    free(buf);
    rc |= fsync(fd);
    close(fd);
    return rc;
}

/* --- timing helpers ---------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

static double run_shell(const char *cmd)
{
    uint64_t t0 = cs_now_ns();
    if (system(cmd) != 0) {
        fprintf(stderr, "registry_bench: '%s' failed\n", cmd);
        exit(1);
    }
    return cs_elapsed_s(t0);
}

static cs_registry_t *open_registry(const char *dir)
{
    cs_registry_options o = {.data_dir = dir};
    cs_registry_t *r = NULL;
    cs_error err = {0};
    if (cs_registry_open(&o, &r, &err) != CS_OK) {
        fprintf(stderr, "registry_bench: %s\n", err.msg);
        exit(1);
    }
    cs_arena a;
    cs_arena_init(&a, 4096);
    cs_error e2 = {0};
    cs_registry_model m;
    if (cs_registry_model_create(r, "bench", NULL, 0, NULL, "bench", &a, &m, &e2) != CS_OK &&
        e2.code != CS_ERR_EXISTS) {
        fprintf(stderr, "registry_bench: %s\n", e2.msg);
        exit(1);
    }
    cs_arena_free(&a);
    return r;
}

/* The stream a server sees: bytes handed over in user memory, 1 MiB at a time. */
static cs_status stream_read(void *user, void *buf, size_t cap, size_t *got, cs_error *err)
{
    ssize_t n = read(*(int *)user, buf, cap < CHUNK ? cap : CHUNK);
    if (n < 0) return cs_error_set(err, CS_ERR_IO, "read failed");
    *got = (size_t)n;
    return CS_OK;
}

/* sha256 of the file's bytes, mapped and resident before the clock starts. */
static double sha256_once(const char *path)
{
    int fd = open(path, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) exit(1);
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) exit(1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    uint64_t t0 = cs_now_ns();
    EVP_Digest(p, (size_t)st.st_size, md, &len, EVP_sha256(), NULL);
    double s = cs_elapsed_s(t0);
    munmap(p, (size_t)st.st_size);
    return s;
}

static double push_once(cs_registry_t *r, const char *path, bool stream,
                        cs_registry_push_timing *timing)
{
    cs_arena a;
    cs_arena_init(&a, 4096);
    int fd = open(path, O_RDONLY);
    cs_registry_push p = {.fd = fd, .timing = timing};
    if (stream) {
        p.read = stream_read;
        p.user = &fd;
    }
    cs_registry_version v;
    cs_error err = {0};
    uint64_t t0 = cs_now_ns();
    cs_status rc = cs_registry_push_version(r, "bench", &p, "bench", &a, &v, &err);
    double s = cs_elapsed_s(t0);
    close(fd);
    if (rc != CS_OK) {
        fprintf(stderr, "registry_bench: push: %s\n", err.msg);
        exit(1);
    }
    cs_arena_free(&a);
    return s;
}

/* --- the two benchmarks ---------------------------------------------------------------- */

static void bench_push(const char *dir, int size_mb, int runs)
{
    char model[512], copy[600], reg[600], cmd[2048];
    snprintf(model, sizeof model, "%s/big.onnx", dir);
    snprintf(copy, sizeof copy, "%s/big.copy", dir);
    snprintf(reg, sizeof reg, "%s/push", dir);
    if (make_model(model, (uint64_t)size_mb << 20) != 0) {
        perror("registry_bench: writing the model");
        exit(1);
    }
    double cp[16], cp_sync[16], push[16], stream[16], sha[16];
    cs_registry_push_timing t[16], ts[16];
    for (int i = 0; i < runs; i++) {
        /* Alternate the three so that page-cache and writeback state is shared fairly;
         * each target starts absent, as a push's blob does. */
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' && sync", copy, reg);
        run_shell(cmd);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", model, copy);
        cp[i] = run_shell(cmd);
        snprintf(cmd, sizeof cmd, "rm -f '%s' && sync", copy);
        run_shell(cmd);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s' && sync '%s'", model, copy, copy);
        cp_sync[i] = run_shell(cmd);
        snprintf(cmd, sizeof cmd, "rm -f '%s' && sync", copy);
        run_shell(cmd);
        /* The timing covers cs_registry_push_version only; opening is one-off. Each push
         * starts from an empty registry, so its blob is new. */
        for (int s = 0; s < 2; s++) {
            snprintf(cmd, sizeof cmd, "rm -rf '%s' && sync", reg);
            run_shell(cmd);
            cs_registry_t *r = open_registry(reg);
            if (s == 0)
                push[i] = push_once(r, model, false, &t[i]);
            else
                stream[i] = push_once(r, model, true, &ts[i]);
            cs_registry_close(r);
        }
        sha[i] = sha256_once(model);
        printf("  run %d: cp %.3f s, cp+sync %.3f s, sha256 alone %.3f s\n", i + 1, cp[i],
               cp_sync[i], sha[i]);
        for (int s = 0; s < 2; s++) {
            const cs_registry_push_timing *x = s ? &ts[i] : &t[i];
            printf("    %s %.3f s: copy %.3f (sha256 busy %.3f beside it), fsync %.3f, hash tail "
                   "%.3f, rename %.3f, schema %.3f, commit %.3f\n",
                   s ? "streamed push" : "push (fd)    ", s ? stream[i] : push[i], x->copy_s,
                   x->hash_s, x->fsync_s, x->hash_wait_s, x->rename_s, x->schema_s, x->commit_s);
        }
    }
    double c = median(cp, runs), cs = median(cp_sync, runs), p = median(push, runs),
           ps = median(stream, runs), h = median(sha, runs);
    printf("push %d MB (median of %d): push %.3f s, streamed push %.3f s, cp %.3f s, cp+sync "
           "%.3f s, sha256 alone %.3f s\n",
           size_mb, runs, p, ps, c, cs, h);
    printf("  push/cp = %.2fx (target <= 1.5x), push/(cp+sync) = %.2fx, push/sha256 = %.2fx, "
           "push %.0f MB/s\n",
           p / c, p / cs, p / h, size_mb / p);
    printf("  streamed push/cp = %.2fx, streamed push/(cp+sync) = %.2fx\n", ps / c, ps / cs);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s' '%s'", copy, reg, model);
    run_shell(cmd);
}

static void bench_list(const char *dir, int versions, int page, const char *digits)
{
    char reg[600];
    snprintf(reg, sizeof reg, "%s/list", dir);
    cs_registry_t *r = open_registry(reg);
    uint64_t t0 = cs_now_ns();
    for (int i = 0; i < versions; i++) push_once(r, digits, false, NULL);
    printf("list: pushed %d versions of digits.onnx in %.1f s (%.2f ms each)\n", versions,
           cs_elapsed_s(t0), cs_elapsed_s(t0) * 1e3 / versions);
    const char *orders[] = {"ascending", "descending"};
    for (int d = 0; d < 2; d++) {
        int pages = 0, total = 0;
        double *lat = calloc((size_t)versions / (size_t)page + 2, sizeof *lat);
        cs_arena a;
        cs_arena_init(&a, 1 << 20);
        cs_registry_list_opts o = {.limit = page, .descending = d == 1};
        const char *next = NULL;
        char token[600] = "";
        do {
            cs_registry_version *items;
            int n;
            cs_error err = {0};
            o.page_token = token;
            uint64_t t1 = cs_now_ns();
            if (cs_registry_version_list(r, "bench", &o, &a, &items, &n, &next, &err) != CS_OK) {
                fprintf(stderr, "registry_bench: list: %s\n", err.msg);
                exit(1);
            }
            lat[pages++] = cs_elapsed_s(t1) * 1e3;
            total += n;
            snprintf(token, sizeof token, "%s", next ? next : "");
            cs_arena_reset(&a);
        } while (next && pages <= versions / page);
        double p50 = median(lat, pages), p99 = lat[(pages * 99) / 100], max = lat[pages - 1];
        printf("list %d versions, %d per page, %s: %d pages, p50 %.2f ms, p99 %.2f ms, max %.2f "
               "ms (target p50 <= 50 ms)\n",
               total, page, orders[d], pages, p50, p99, max);
        cs_arena_free(&a);
        free(lat);
    }
    cs_registry_close(r);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", reg);
    run_shell(cmd);
}

int main(int argc, char **argv)
{
    const char *dir = "registry-bench-data";
    int size_mb = 500, versions = 10000, page = 100, runs = 3;
    for (int i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--dir") == 0 && v)
            dir = argv[++i];
        else if (strcmp(argv[i], "--size-mb") == 0 && v)
            size_mb = atoi(argv[++i]);
        else if (strcmp(argv[i], "--versions") == 0 && v)
            versions = atoi(argv[++i]);
        else if (strcmp(argv[i], "--page") == 0 && v)
            page = atoi(argv[++i]);
        else if (strcmp(argv[i], "--runs") == 0 && v)
            runs = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: registry_bench [--dir DIR] [--size-mb N] [--versions N] "
                            "[--page N] [--runs N]\n");
            return 2;
        }
    }
    if (size_mb < 1 || size_mb > 65536 || versions < 1 || versions > 1000000 || page < 1 ||
        page > CS_REGISTRY_PAGE_MAX || runs < 1 || runs > 16) {
        fprintf(stderr, "registry_bench: an option is out of range\n");
        return 2;
    }
    mkdir(dir, 0755);
    bench_push(dir, size_mb, runs);
    bench_list(dir, versions, page, CS_SOURCE_DIR "/models/digits.onnx");
    rmdir(dir);
    return 0;
}
