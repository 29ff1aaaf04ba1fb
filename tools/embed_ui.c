/*
 * embed_ui.c - a build step: turns the dashboard's files (ui/: .html, .css, .js and .svg)
 * into a C source with the table of src/api/ui_assets.h, so `capstan serve` needs no file
 * and no network to serve /ui.
 *
 * Each file is gzip-compressed here (zlib, level 9) so that the server never compresses at
 * run time, and hashed (sha256, its first 16 hex digits) for the ETag. In an HTML file,
 * `{{NAME}}` becomes `/ui/NAME?v=HASH` of the file NAME given on the same command line
 * (every other file is read first), so a page always names the exact bytes it was built
 * with and those URLs can be cached as immutable. A `{{NAME}}` that names no such file is an
 * error, as is a file of a type not listed below. Runs at build time only; it exits 1 with a
 * message on the first problem.
 *
 * Usage: embed_ui OUT.c FILE...
 */
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "embed_bytes.h"

#define MAX_FILES 32

typedef struct file {
    const char *path, *name, *type;
    unsigned char *data, *gz;
    size_t len, gz_len;
    char hash[17];
} file;

static file files[MAX_FILES];
static int n_files;

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "embed_ui: %s: %s\n", what, detail);
    exit(1);
}

static const char *type_of(const char *name)
{
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
    };
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i][0]) == 0) return types[i][1];
    die(name, "not .html, .css, .js or .svg");
    return NULL;
}

static void read_file(file *f)
{
    FILE *in = fopen(f->path, "rb");
    if (!in) die(f->path, "cannot open");
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    f->data = malloc((size_t)n + 1);
    if (n < 0 || !f->data || fread(f->data, 1, (size_t)n, in) != (size_t)n)
        die(f->path, "cannot read");
    fclose(in);
    f->len = (size_t)n;
}

/* Replaces every {{NAME}} in an HTML file by NAME's hashed URL. */
static void link_names(file *f)
{
    size_t cap = f->len * 2 + 4096, o = 0;
    unsigned char *out = malloc(cap);
    if (!out) die(f->path, "out of memory");
    for (size_t i = 0; i < f->len;) {
        const char *p = (const char *)f->data + i;
        const char *end = i + 2 < f->len && p[0] == '{' && p[1] == '{' ? strstr(p, "}}") : NULL;
        if (!end) {
            if (o + 1 >= cap) die(f->path, "too many references");
            out[o++] = f->data[i++];
            continue;
        }
        size_t n = (size_t)(end - p - 2);
        const file *t = NULL;
        for (int k = 0; k < n_files; k++)
            if (strlen(files[k].name) == n && memcmp(files[k].name, p + 2, n) == 0) t = &files[k];
        if (!t || !t->hash[0]) die(f->path, "{{...}} names no non-HTML file on the command line");
        int w = snprintf((char *)out + o, cap - o, "/ui/%s?v=%s", t->name, t->hash);
        if (w < 0 || (size_t)w >= cap - o) die(f->path, "too many references");
        o += (size_t)w;
        i += n + 4;
    }
    free(f->data);
    f->data = out;
    f->len = o;
}

static void digest(file *f)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(f->data, f->len, md);
    for (int i = 0; i < 8; i++) snprintf(f->hash + 2 * i, 3, "%02x", md[i]);
}

static void compress_gzip(file *f)
{
    z_stream z = {0};
    /* windowBits 15 + 16: a gzip wrapper rather than zlib's. */
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        die(f->path, "deflateInit2");
    size_t cap = deflateBound(&z, f->len) + 32;
    f->gz = malloc(cap);
    if (!f->gz) die(f->path, "out of memory");
    z.next_in = f->data;
    z.avail_in = (uInt)f->len;
    z.next_out = f->gz;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) die(f->path, "deflate");
    f->gz_len = cap - z.avail_out;
    deflateEnd(&z);
}

static bool is_html(const file *f)
{
    return strcmp(f->type, "text/html; charset=utf-8") == 0;
}

static void prepare(file *f)
{
    read_file(f);
    if (is_html(f)) link_names(f);
    digest(f);
    compress_gzip(f);
}

int main(int argc, char **argv)
{
    if (argc < 3) die("usage", "embed_ui OUT.c FILE...");
    if (argc - 2 > MAX_FILES) die("usage", "too many files");
    for (int i = 2; i < argc; i++) {
        file *f = &files[n_files++];
        f->path = argv[i];
        const char *slash = strrchr(argv[i], '/');
        f->name = slash ? slash + 1 : argv[i];
        f->type = type_of(f->name);
    }
    for (int pass = 0; pass < 2; pass++) /* other files first: HTML links to their hashes */
        for (int i = 0; i < n_files; i++)
            if (is_html(&files[i]) == (pass == 1)) prepare(&files[i]);

    FILE *out = fopen(argv[1], "w");
    if (!out) die(argv[1], "cannot write");
    fprintf(out, "/* Generated by tools/embed_ui.c from ui/: do not edit. */\n"
                 "#include \"api/ui_assets.h\"\n\n");
    char var[32];
    for (int i = 0; i < n_files; i++) {
        snprintf(var, sizeof var, "file%d", i);
        embed_put_bytes(out, "static const", var, files[i].data, files[i].len);
        snprintf(var, sizeof var, "file%d_gz", i);
        embed_put_bytes(out, "static const", var, files[i].gz, files[i].gz_len);
    }
    fprintf(out, "\nconst cs_ui_asset cs_ui_assets[] = {\n");
    for (int i = 0; i < n_files; i++)
        fprintf(out, "    {\"%s\", \"%s\", file%d, %zu, file%d_gz, %zu, \"%s\"},\n", files[i].name,
                files[i].type, i, files[i].len, i, files[i].gz_len, files[i].hash);
    fprintf(out, "};\nconst int cs_ui_n_assets = %d;\n", n_files);
    if (fclose(out) != 0) die(argv[1], "cannot write");
    return 0;
}
