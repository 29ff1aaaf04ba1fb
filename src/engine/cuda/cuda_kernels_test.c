/*
 * cuda_kernels_test.c - checks the embedded CUDA fatbin without a GPU, so that a mismatch
 * between the host's kernel names (kernels.h) and the device code fails here rather than in
 * cuModuleGetFunction on a GPU machine:
 * - the by-value parameter structs have the layout the .cu files static_assert;
 * - cs__cuda_fatbin holds exactly one sm_90 ELF image and one compute_90 PTX image (both
 *   compressed), and every kernel of CS_CUDA_KERNELS is a global function of the ELF and an
 *   .entry of the PTX (read from the build's uncompressed twin of the same images), with
 *   no kernel in either that the list lacks;
 * - each kernel file's `ptxas -v` report (saved by the build) lists every kernel, none of
 *   which spills to local memory;
 * - where cuobjdump is installed beside nvcc, it agrees (sm_90 ELF, compute_90 PTX, names).
 * In a build without nvcc the suite is skipped with one line saying so (the layout checks,
 * at compile time, still run).
 */
#define _GNU_SOURCE /* memmem */
#include "engine/cuda/kernels.h"

#include <dirent.h>
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#ifndef CS_CUDA_LOG_DIR
#define CS_CUDA_LOG_DIR ""
#endif
#ifndef CS_CUDA_BIN_DIR
#define CS_CUDA_BIN_DIR ""
#endif
#ifndef CS_CUDA_N_SOURCES
#define CS_CUDA_N_SOURCES 0
#endif

/* The same sizes as the .cu files assert, and the offsets of the fields after padding. */
_Static_assert(sizeof(cs_cuda_bcast) == CS_CUDA_BCAST_SIZE, "cs_cuda_bcast");
_Static_assert(offsetof(cs_cuda_bcast, dims) == 8, "cs_cuda_bcast.dims");
_Static_assert(offsetof(cs_cuda_bcast, b_strides) == 136, "cs_cuda_bcast.b_strides");
_Static_assert(sizeof(cs_cuda_unary_args) == CS_CUDA_UNARY_ARGS_SIZE, "cs_cuda_unary_args");
_Static_assert(sizeof(cs_cuda_reduce_args) == CS_CUDA_REDUCE_ARGS_SIZE, "cs_cuda_reduce_args");
_Static_assert(sizeof(cs_cuda_strided) == CS_CUDA_STRIDED_SIZE, "cs_cuda_strided");
_Static_assert(offsetof(cs_cuda_strided, dims) == 16, "cs_cuda_strided.dims");
_Static_assert(sizeof(cs_cuda_gather_args) == CS_CUDA_GATHER_ARGS_SIZE, "cs_cuda_gather_args");
_Static_assert(sizeof(cs_cuda_concat_args) == CS_CUDA_CONCAT_ARGS_SIZE, "cs_cuda_concat_args");
_Static_assert(sizeof(cs_cuda_bias_act_args) == CS_CUDA_BIAS_ACT_ARGS_SIZE, "cs_cuda_bias_act");
_Static_assert(offsetof(cs_cuda_bias_act_args, lo) == 24, "cs_cuda_bias_act_args.lo");

#define NAME_ENTRY(suffix) CS_CUDA_KERNEL_NAME(suffix),
static const char *const names[] = {CS_CUDA_KERNELS(NAME_ENTRY)};
#define N_NAMES ((int)(sizeof names / sizeof names[0]))

/* --- the fatbin ------------------------------------------------------------------------- */

/* The fatbin container (as fatbinary writes it; little-endian): a 16-byte header, then
 * entries of a header_size-byte header followed by `size` bytes of image. An image that
 * fatbinary compressed has a flag set and its uncompressed size at byte 56. */
#define FATBIN_MAGIC      0xBA55ED50u
#define FATBIN_KIND_PTX   1
#define FATBIN_KIND_ELF   2
#define FATBIN_COMPRESSED (0x2000u | 0x8000u) /* LZ4 and the newer (ZSTD) flag */

typedef struct image {
    int kind;
    unsigned arch;
    bool compressed;
    const unsigned char *data;
    size_t size, plain_size; /* plain_size: uncompressed, whether or not it is */
} image;

static uint64_t rd(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* The images of a fatbin, which must be one sm_90 ELF and one compute_90 PTX. */
static void read_images(const unsigned char *f, size_t n, image *elf, image *ptx)
{
    assert_true(n >= 16);
    assert_int_equal(rd(f, 4), FATBIN_MAGIC);
    size_t hdr = rd(f + 6, 2), body = rd(f + 8, 8);
    assert_true(hdr + body <= n);
    int n_elf = 0, n_ptx = 0;
    for (size_t at = hdr; at < hdr + body;) {
        const unsigned char *e = f + at;
        assert_true(at + 64 <= n);
        size_t ehdr = rd(e + 4, 4), size = rd(e + 8, 8);
        assert_true(ehdr >= 64 && at + ehdr + size <= n);
        bool z = (rd(e + 40, 8) & FATBIN_COMPRESSED) != 0;
        image im = {(int)rd(e, 2), (unsigned)rd(e + 28, 4), z, e + ehdr,
                    size,          z ? rd(e + 56, 8) : size};
        assert_int_equal(im.arch, 90);
        if (im.kind == FATBIN_KIND_ELF)
            *elf = im, n_elf++;
        else if (im.kind == FATBIN_KIND_PTX)
            *ptx = im, n_ptx++;
        else
            fail_msg("fatbin image has kind %d, not ELF (2) or PTX (1)", im.kind);
        at += ehdr + size;
    }
    assert_int_equal(n_elf, 1);
    assert_int_equal(n_ptx, 1);
}

static unsigned char *read_whole(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    unsigned char *b = malloc((size_t)len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return b;
}

static int index_of(const char *name, size_t len)
{
    for (int i = 0; i < N_NAMES; i++)
        if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0) return i;
    return -1;
}

/* Marks seen[] for each global function of a CUDA ELF; returns how many there are and
 * prints any that kernels.h does not list. */
static int elf_kernels(const image *im, bool *seen)
{
    const unsigned char *b = im->data;
    assert_true(im->size >= sizeof(Elf64_Ehdr));
    Elf64_Ehdr eh;
    memcpy(&eh, b, sizeof eh);
    assert_memory_equal(eh.e_ident, ELFMAG, SELFMAG);
    assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS64);
    assert_int_equal(eh.e_machine, 190); /* EM_CUDA */
    assert_true(eh.e_shoff + (size_t)eh.e_shnum * sizeof(Elf64_Shdr) <= im->size);
    int n = 0;
    for (int s = 0; s < eh.e_shnum; s++) {
        Elf64_Shdr sh, str;
        memcpy(&sh, b + eh.e_shoff + (size_t)s * sizeof sh, sizeof sh);
        if (sh.sh_type != SHT_SYMTAB) continue;
        assert_true(sh.sh_link < eh.e_shnum);
        memcpy(&str, b + eh.e_shoff + (size_t)sh.sh_link * sizeof str, sizeof str);
        assert_true(sh.sh_offset + sh.sh_size <= im->size);
        assert_true(str.sh_offset + str.sh_size <= im->size);
        for (size_t o = 0; o + sizeof(Elf64_Sym) <= sh.sh_size; o += sizeof(Elf64_Sym)) {
            Elf64_Sym sym;
            memcpy(&sym, b + sh.sh_offset + o, sizeof sym);
            if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || ELF64_ST_BIND(sym.st_info) != STB_GLOBAL)
                continue;
            assert_true(sym.st_name < str.sh_size);
            const char *name = (const char *)b + str.sh_offset + sym.st_name;
            size_t len = strnlen(name, str.sh_size - sym.st_name);
            int i = index_of(name, len);
            if (i < 0)
                printf("sm_90 ELF has kernel %.*s, not in kernels.h\n", (int)len, name);
            else
                seen[i] = true;
            n++;
        }
    }
    return n;
}

/* The same for the PTX: every `.entry NAME(`. */
static int ptx_kernels(const image *im, bool *seen)
{
    const char *p = (const char *)im->data, *end = p + im->size;
    int n = 0;
    static const char tag[] = ".entry ";
    for (const char *q = p; (q = memmem(q, (size_t)(end - q), tag, sizeof tag - 1)); n++) {
        q += sizeof tag - 1;
        const char *paren = memchr(q, '(', (size_t)(end - q));
        assert_non_null(paren);
        int i = index_of(q, (size_t)(paren - q));
        if (i < 0)
            printf("PTX has kernel %.*s, not in kernels.h\n", (int)(paren - q), q);
        else
            seen[i] = true;
    }
    assert_non_null(memmem(p, im->size, ".target sm_90", 13));
    return n;
}

/* The embedded fatbin is compressed (fatbinary --compress-all: a tenth of the size), so its
 * names are read from kernels.fatbin, the uncompressed twin made from the same cubin and
 * PTX; the embedded images must have the twin's kinds, architecture and ELF size. */
static void test_fatbin_has_every_kernel(void **state)
{
    image elf, ptx, zelf, zptx;
    read_images(cs__cuda_fatbin, cs__cuda_fatbin_size, &zelf, &zptx);
    size_t n;
    unsigned char *twin = read_whole(CS_CUDA_LOG_DIR "/kernels.fatbin", &n);
    read_images(twin, n, &elf, &ptx);
    assert_false(elf.compressed);
    assert_false(ptx.compressed);
    assert_int_equal(zelf.plain_size, elf.size);
    /* fatbinary counts the PTX's terminating NUL in one of the two sizes. */
    assert_true(zptx.plain_size + 1 >= ptx.size && zptx.plain_size <= ptx.size + 1);

    bool in_elf[N_NAMES] = {0}, in_ptx[N_NAMES] = {0};
    int n_elf = elf_kernels(&elf, in_elf), n_ptx = ptx_kernels(&ptx, in_ptx);
    int missing = 0;
    for (int i = 0; i < N_NAMES; i++) {
        if (!in_elf[i]) printf("%s: not in the sm_90 ELF\n", names[i]), missing++;
        if (!in_ptx[i]) printf("%s: not in the compute_90 PTX\n", names[i]), missing++;
    }
    assert_int_equal(missing, 0);
    assert_int_equal(n_elf, N_NAMES);
    assert_int_equal(n_ptx, N_NAMES);
    printf("cuda_kernels: %d kernels in sm_90 ELF (%zu bytes) and compute_90 PTX (%zu bytes); "
           "%zu bytes embedded\n",
           N_NAMES, elf.size, ptx.size, cs__cuda_fatbin_size);
    free(twin);
}

/* --- ptxas reports ---------------------------------------------------------------------- */

static void test_no_kernel_spills(void **state)
{
    DIR *d = opendir(CS_CUDA_LOG_DIR);
    assert_non_null(d);
    int logs = 0, entries = 0, spills = 0, max_regs = 0;
    bool seen[N_NAMES] = {0};
    struct dirent *de;
    char path[4096], line[1024], fn[256] = "";
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (len < 11 || strcmp(de->d_name + len - 10, ".ptxas.log") != 0) continue;
        snprintf(path, sizeof path, "%s/%s", CS_CUDA_LOG_DIR, de->d_name);
        FILE *f = fopen(path, "r");
        assert_non_null(f);
        logs++;
        while (fgets(line, sizeof line, f)) {
            const char *p;
            long stack, st, ld, regs;
            if ((p = strstr(line, "Compiling entry function '"))) {
                p += strlen("Compiling entry function '");
                const char *q = strchr(p, '\'');
                assert_non_null(q);
                snprintf(fn, sizeof fn, "%.*s", (int)(q - p), p);
                int i = index_of(p, (size_t)(q - p));
                if (i >= 0) seen[i] = true;
                entries++;
            } else if ((p = strstr(line, "bytes stack frame")) &&
                       sscanf(line,
                              " %ld bytes stack frame, %ld bytes spill stores, "
                              "%ld bytes spill loads",
                              &stack, &st, &ld) == 3) {
                if (st || ld) printf("%s: spills %ld bytes (stores), %ld (loads)\n", fn, st, ld);
                spills += st || ld;
            } else if ((p = strstr(line, "Used ")) && sscanf(p, "Used %ld registers", &regs) == 1) {
                if (regs > max_regs) max_regs = (int)regs;
            }
        }
        fclose(f);
    }
    closedir(d);
    assert_int_equal(logs, CS_CUDA_N_SOURCES);
    for (int i = 0; i < N_NAMES; i++)
        if (!seen[i]) printf("%s: not in any ptxas report\n", names[i]);
    for (int i = 0; i < N_NAMES; i++) assert_true(seen[i]);
    assert_int_equal(entries, N_NAMES);
    assert_int_equal(spills, 0);
    printf("cuda_kernels: %d kernels in %d files, none spills, at most %d registers\n", entries,
           logs, max_regs);
}

/* --- cuobjdump, where installed --------------------------------------------------------- */

static char *run(const char *fmt, const char *tool, const char *file)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, fmt, tool, file);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 20, n = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (size_t r; (r = fread(out + n, 1, cap - 1 - n, p)) > 0;) {
        n += r;
        if (n == cap - 1) {
            char *bigger = realloc(out, cap *= 2);
            assert_non_null(bigger);
            out = bigger;
        }
    }
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
    return out;
}

static void test_cuobjdump_agrees(void **state)
{
    const char *tool = CS_CUDA_BIN_DIR "/cuobjdump";
    if (access(tool, X_OK) != 0) {
        printf("cuda_kernels: cuobjdump skipped, %s is not installed\n", tool);
        skip();
    }
    char fatbin[4096];
    snprintf(fatbin, sizeof fatbin, "%s/kernels.fatbin", CS_CUDA_LOG_DIR);
    char *elf = run("'%s' --list-elf '%s'", tool, fatbin);
    char *ptx = run("'%s' --list-ptx '%s'", tool, fatbin);
    char *sym = run("'%s' --dump-elf-symbols '%s'", tool, fatbin);
    assert_non_null(strstr(elf, "sm_90"));
    assert_non_null(strstr(ptx, "sm_90"));
    for (int i = 0; i < N_NAMES; i++)
        if (!strstr(sym, names[i])) fail_msg("%s: not in cuobjdump --dump-elf-symbols", names[i]);
    free(elf);
    free(ptx);
    free(sym);
}

/* Exit status 77 tells ctest the suite was skipped (SKIP_RETURN_CODE in CMakeLists.txt). */
int main(void)
{
    if (!cs__cuda_kernels_built()) {
        printf("cuda_kernels: skipped, this build has no CUDA kernels (built without nvcc)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fatbin_has_every_kernel),
        cmocka_unit_test(test_no_kernel_spills),
        cmocka_unit_test(test_cuobjdump_agrees),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
