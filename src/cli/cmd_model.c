/*
 * cmd_model.c - `capstan model ...`: the model registry from the command line, spoken over
 * the server's management API (/api/v1, docs/api.md), never by opening the store itself.
 *
 * Subcommands: push, pull, ls, show, alias set|rm, archive, rm, gc, audit. The server is
 * --server URL, else $CAPSTAN_SERVER, else http://127.0.0.1:8080. Listings print a table
 * sized to its content (or -o wide|name|json|yaml, output.h); show describes the model or
 * version as kubectl describe does; pull downloads a version's artifact into a temporary
 * file beside FILE, checks its sha256 against the registry's record and only then renames
 * it into place; a page that continues prints the token for
 * --page-token on stderr. A server error is one line with its message and HTTP status,
 * exit 1; a bad command line exits 2 (cli.h).
 */
#include "cli/cli.h"

#include "base/sbuf.h"
#include "cli/http_client.h"
#include "cli/output.h"
#include "registry/registry.h"

#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_LABELS       64
#define PROGRESS_MIN     ((long long)8 << 20) /* smaller pushes finish before a bar helps */
#define DEFAULT_SERVER   "http://127.0.0.1:8080"
#define HEADER_LABEL_MAX 512

static const char usage[] =
    "usage: capstan model push NAME FILE.onnx [--label K=V]... [--alias A] [--sign KEY.pem]\n"
    "                          [--description TEXT] [--source-uri URI] [--run-id ID]\n"
    "                          [--parent VERSION]\n"
    "       capstan model pull NAME[:VERSION|@ALIAS] -o FILE [--force]\n"
    "       capstan model ls [NAME] [--selector S] [--prefix P] [--desc] [--limit N]\n"
    "                        [--page-token T] [-o json|yaml|wide|name]\n"
    "       capstan model show NAME[:VERSION|@ALIAS] [-o json|yaml|wide|name]\n"
    "       capstan model alias set NAME ALIAS VERSION\n"
    "       capstan model alias rm NAME ALIAS\n"
    "       capstan model archive NAME:VERSION [--restore]\n"
    "       capstan model rm NAME[:VERSION]\n"
    "       capstan model gc [--yes]\n"
    "       capstan model audit [NAME] [--limit N] [--page-token T] [-o json|yaml|wide|name]\n\n"
    "Manages the model registry of a running `capstan serve`.\n\n"
    "  push     uploads FILE as NAME's next version (creating NAME when it is new), with\n"
    "           labels, a description, lineage (--source-uri, or --source, where it came\n"
    "           from, up to 2048 bytes; --run-id, the training run, up to 256; --parent, the\n"
    "           version of NAME it derives from: a number, an alias or latest, which must\n"
    "           exist) and optionally an alias pointing at it; --description takes up to\n"
    "           4096 bytes of UTF-8; --sign signs its sha256 digest with an ed25519 private\n"
    "           key (PEM, as `openssl genpkey -algorithm ed25519` writes), for\n"
    "           `serve --require-signed`\n"
    "  pull     downloads a version's artifact (default latest) to FILE (-o here is the\n"
    "           file), checking its sha256 against the registry's digest before FILE\n"
    "           appears; an existing FILE is kept unless --force\n"
    "  ls       lists models, or NAME's versions (--selector k=v,k!=v,k,!k on labels)\n"
    "  show     one model (with its aliases), or one version by number or alias (its\n"
    "           \"signer\" is the signing key's fingerprint, SHA256:<hex>, or null)\n"
    "  alias    points ALIAS at VERSION (moving what /v2/models/NAME serves for prod), or\n"
    "           removes it\n"
    "  archive  stops serving a version and hides it from `latest` (--restore undoes it)\n"
    "  rm       deletes a version, or a model without versions\n"
    "  gc       reports artifacts no version references; --yes removes them\n"
    "  audit    the registry's audit log, newest first\n\n"
    "options:\n"
    "  --server URL   the server (default $CAPSTAN_SERVER, else " DEFAULT_SERVER ")\n"
    "  --cacert FILE  CA certificates (PEM) that verify an https server (default\n"
    "                 $CAPSTAN_CACERT, else the system's store)\n"
    "  -o, --output F json, yaml (the server's answer; times in RFC 3339), wide (more\n"
    "                 columns), or name (model/NAME, model/NAME:VERSION); any case. By\n"
    "                 default listings are tables (sizes in KiB/MiB, times as ages) and\n"
    "                 show is a description; --json is -o json\n"
    "  -h, --help     show this help\n";

enum {
    OPT_SERVER = 256,
    OPT_JSON,
    OPT_LABEL,
    OPT_ALIAS,
    OPT_SOURCE,
    OPT_SELECTOR,
    OPT_PREFIX,
    OPT_DESC,
    OPT_LIMIT,
    OPT_PAGE_TOKEN,
    OPT_YES,
    OPT_RESTORE,
    OPT_CACERT,
    OPT_SIGN,
    OPT_DESCRIPTION,
    OPT_RUN_ID,
    OPT_PARENT,
    OPT_FORCE,
};

typedef struct model_opts {
    const char *server, *cacert, *alias, *source, *selector, *prefix, *page_token, *sign;
    const char *description, *run_id, *parent;
    const char *labels[MAX_LABELS];
    int n_labels;
    long limit;
    bool desc, yes, restore, force, json;
    const char *output; /* -o as given: a format (--json is -o json), or pull's FILE */
    cs_cli_format out;
} model_opts;

typedef struct ctx {
    model_opts o;
    cs_http http;
    cs_sbuf path; /* the request path being built */
} ctx;

static int on_option(void *user, int opt, const char *arg)
{
    model_opts *o = user;
    switch (opt) {
    case OPT_SERVER: o->server = arg; break;
    case OPT_CACERT: o->cacert = arg; break;
    case OPT_JSON: o->json = true; break;
    case 'o': o->output = arg; break;
    case OPT_LABEL:
        if (o->n_labels == MAX_LABELS)
            return cs_cli_usage_error("model", "at most %d --label options", MAX_LABELS);
        if (!strchr(arg, '=') || arg[0] == '=')
            return cs_cli_usage_error("model", "--label expects KEY=VALUE, got '%s'", arg);
        o->labels[o->n_labels++] = arg;
        break;
    case OPT_ALIAS: o->alias = arg; break;
    case OPT_SOURCE: o->source = arg; break;
    case OPT_SIGN: o->sign = arg; break;
    case OPT_DESCRIPTION: o->description = arg; break;
    case OPT_RUN_ID: o->run_id = arg; break;
    case OPT_PARENT: o->parent = arg; break;
    case OPT_FORCE: o->force = true; break;
    case OPT_SELECTOR: o->selector = arg; break;
    case OPT_PREFIX: o->prefix = arg; break;
    case OPT_DESC: o->desc = true; break;
    case OPT_LIMIT:
        if (cs_cli_parse_int(arg, 1, 1000, &o->limit) != 0)
            return cs_cli_usage_error("model", "--limit expects 1..1000, got '%s'", arg);
        break;
    case OPT_PAGE_TOKEN: o->page_token = arg; break;
    case OPT_YES: o->yes = true; break;
    default: o->restore = true; break; /* OPT_RESTORE */
    }
    return CS_CLI_CONTINUE;
}

/* --- requests --------------------------------------------------------------------------- */

/* Appends "/<escaped s>" to the path being built. */
static bool path_seg(ctx *c, const char *s)
{
    return cs_sbuf_puts(&c->path, "/") == CS_OK && cs_http_escape(&c->http, s, &c->path) == CS_OK;
}

/* Appends "?key=<escaped value>" or "&key=..." when value is set. */
static bool path_query(ctx *c, const char *key, const char *value)
{
    if (!value) return true;
    return cs_sbuf_printf(&c->path, "%s%s=", strchr(c->path.data, '?') ? "&" : "?", key) == CS_OK &&
           cs_http_escape(&c->http, value, &c->path) == CS_OK;
}

/* Sends the built path; on a 2xx answer returns the parsed JSON body (json_null() for an
 * empty one), its text staying in rep->body (the caller frees it either way); otherwise
 * reports and returns NULL with *rc the exit code. */
static json_t *call(ctx *c, const char *method, const char *body, cs_http_reply *rep, int *rc)
{
    cs_error err;
    json_t *j = cs_http_json(&c->http, method, c->path.data, body, rep, &err);
    *rc = j ? CS_CLI_OK : cs_cli_error("model", "%s", err.msg);
    return j;
}

/* Runs one call that changes something; prints the server's JSON with --json, else `done`. */
static int simple(ctx *c, const char *method, const char *body, const char *done)
{
    cs_http_reply rep;
    int rc;
    json_t *j = call(c, method, body, &rep, &rc);
    if (j && rep.body.len && (c->o.out == CS_CLI_OUT_JSON || c->o.out == CS_CLI_OUT_YAML))
        rc = cs_cli_output("model", c->o.out, NULL, j, NULL);
    else if (j)
        printf("%s\n", done);
    json_decref(j);
    cs_sbuf_free(&rep.body);
    return rc;
}

/* Splits NAME[:VERSION|@ALIAS] in place; *ref is NULL when none is given. */
static void split_ref(char *arg, const char **ref)
{
    char *sep = strpbrk(arg, ":@");
    *ref = NULL;
    if (sep) {
        *sep = '\0';
        *ref = sep + 1;
    }
}

static const char *str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* --- subcommands ------------------------------------------------------------------------ */

static int push(ctx *c, int argc, char **argv)
{
    if (argc != 2) return cs_cli_usage_error("model", "push expects NAME FILE.onnx");
    /* Free text travels in headers, as labels do; it may be longer than a label's
     * buffer, so these are built apart. Their limits are checked here before anything is
     * sent (the server checks them again for every client, naming the field). */
    const struct {
        const char *flag, *name, *value;
        size_t max;
    } meta[] = {{"--description", "X-Capstan-Description", c->o.description, CS_REGISTRY_TEXT_MAX},
                {"--source-uri", "X-Capstan-Source", c->o.source, CS_REGISTRY_URI_MAX},
                {"--run-id", "X-Capstan-Run-Id", c->o.run_id, CS_REGISTRY_RUN_ID_MAX},
                {"--parent", "X-Capstan-Parent-Version", c->o.parent, CS_REGISTRY_NAME_MAX}};
    char *text_hdr[4] = {NULL};
    for (size_t i = 0; i < 4; i++) {
        if (meta[i].value && strpbrk(meta[i].value, "\r\n"))
            return cs_cli_usage_error("model", "%s must be one line", meta[i].flag);
        if (meta[i].value && strlen(meta[i].value) > meta[i].max)
            return cs_cli_usage_error("model", "%s is %zu bytes: at most %zu are allowed",
                                      meta[i].flag, strlen(meta[i].value), meta[i].max);
    }
    const char *name = argv[0], *file = argv[1];
    cs_error err;
    /* Everything that can be known here is checked before the first request: a push that
     * fails half-way leaves a model without versions, or a version without its alias. */
    if (c->o.alias && cs_registry_alias_check(c->o.alias, &err) != CS_OK)
        return cs_cli_usage_error("model", "--alias: %s", err.msg);
    struct stat st;
    if (stat(file, &st) != 0) return cs_cli_error("model", "%s: cannot read it", file);
    if (!S_ISREG(st.st_mode))
        return cs_cli_error("model", "%s is %s: push takes one .onnx file", file,
                            S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    cs_http_reply rep;
    int rc = CS_CLI_OK;
    char hdr[MAX_LABELS + 4][HEADER_LABEL_MAX];
    const char *hdrs[MAX_LABELS + 8];
    int n = 0;
    if (c->o.sign) { /* the server checks the digest and the signature over it */
        char digest[80], sig[160], key[80];
        if (cs_registry_sign_file(c->o.sign, file, digest, sig, key, &err) != CS_OK)
            return cs_cli_error("model", "%s", err.msg);
        snprintf(hdr[n++], sizeof hdr[0], "X-Capstan-Digest: %s", digest);
        snprintf(hdr[n++], sizeof hdr[0], "X-Capstan-Signature: %s", sig);
        snprintf(hdr[n++], sizeof hdr[0], "X-Capstan-Signer-Key: %s", key);
        for (int i = 0; i < n; i++) hdrs[i] = hdr[i];
    }
    /* Create the model first; 409 means it exists, which is what push wants. */
    json_t *body = json_pack("{s:s}", "name", name);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) return cs_cli_error("model", "out of memory");
    cs_sbuf_puts(&c->path, "/api/v1/models");
    cs_status st_rc = cs_http_call(&c->http, "POST", c->path.data, text, &rep, &err);
    free(text);
    char msg[1024];
    if (st_rc != CS_OK) return cs_cli_error("model", "%s", err.msg);
    if (rep.status != 201 && rep.status != 409) {
        rc = cs_cli_error("model", "%s", cs_http_error_text(&rep, msg, sizeof msg));
        cs_sbuf_free(&rep.body);
        return rc;
    }
    cs_sbuf_free(&rep.body);

    for (int i = 0; i < c->o.n_labels; i++, n++) {
        snprintf(hdr[n], sizeof hdr[n], "X-Capstan-Label: %s", c->o.labels[i]);
        hdrs[n] = hdr[n];
    }
    cs_sbuf_clear(&c->path);
    if (!(cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, name) &&
          cs_sbuf_puts(&c->path, "/versions") == CS_OK))
        return cs_cli_error("model", "out of memory");
    for (size_t i = 0; i < 4; i++) {
        if (!meta[i].value) continue;
        size_t len = strlen(meta[i].name) + strlen(meta[i].value) + 3;
        if (!(text_hdr[i] = malloc(len))) {
            while (i > 0) free(text_hdr[--i]);
            return cs_cli_error("model", "out of memory");
        }
        snprintf(text_hdr[i], len, "%s: %s", meta[i].name, meta[i].value);
        hdrs[n++] = text_hdr[i];
    }
    c->http.progress = isatty(STDERR_FILENO) && st.st_size >= PROGRESS_MIN;
    st_rc = cs_http_upload(&c->http, c->path.data, file, hdrs, n, &rep, &err);
    for (size_t i = 0; i < 4; i++) free(text_hdr[i]);
    if (st_rc != CS_OK) return cs_cli_error("model", "%s", err.msg);
    if (rep.status != 201) {
        rc = cs_cli_error("model", "push %s: %s", file, cs_http_error_text(&rep, msg, sizeof msg));
        cs_sbuf_free(&rep.body);
        return rc;
    }
    json_error_t jerr;
    json_t *v = json_loadb(rep.body.data, rep.body.len, 0, &jerr);
    json_int_t version = json_integer_value(json_object_get(v, "version"));
    if (c->o.out == CS_CLI_OUT_JSON || c->o.out == CS_CLI_OUT_YAML)
        rc = cs_cli_output("model", c->o.out, NULL, v, NULL);
    else if (c->o.out == CS_CLI_OUT_NAME)
        printf("model/%s:%lld\n", name, (long long)version);
    else {
        char size[32];
        cs_cli_size_text((uint64_t)json_integer_value(json_object_get(v, "size")), size,
                         sizeof size);
        printf("%s: version %lld (%s, %s)\n", name, (long long)version, str(v, "digest"), size);
    }
    json_decref(v);
    cs_sbuf_free(&rep.body);
    if (!c->o.alias || rc != CS_CLI_OK) return rc;

    cs_sbuf_clear(&c->path);
    if (!(cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, name) &&
          cs_sbuf_puts(&c->path, "/aliases") == CS_OK && path_seg(c, c->o.alias)))
        return cs_cli_error("model", "out of memory");
    char b[64];
    snprintf(b, sizeof b, "{\"version\":%lld}", (long long)version);
    json_t *a = call(c, "PUT", b, &rep, &rc);
    if (a && c->o.out != CS_CLI_OUT_JSON && c->o.out != CS_CLI_OUT_YAML &&
        c->o.out != CS_CLI_OUT_NAME)
        printf("%s@%s -> %lld\n", name, c->o.alias, (long long)version);
    json_decref(a);
    cs_sbuf_free(&rep.body);
    return rc;
}

/* A download on its way to a temporary file, hashed as it is written. */
typedef struct pull_file {
    int fd;
    EVP_MD_CTX *md;
    long long bytes;
    int write_errno; /* 0, or why a write failed */
} pull_file;

static bool pull_sink(void *user, const char *p, size_t n)
{
    pull_file *f = user;
    if (EVP_DigestUpdate(f->md, p, n) != 1) {
        f->write_errno = ENOMEM;
        return false;
    }
    for (size_t done = 0; done < n;) {
        ssize_t w = write(f->fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            f->write_errno = w < 0 ? errno : EIO;
            return false;
        }
        done += (size_t)w;
    }
    f->bytes += (long long)n;
    return true;
}

/* Fetches the version's record (its number and digest) and then its artifact by number,
 * so an alias that moves between the two calls cannot mix versions; writes a temporary file
 * beside FILE and renames it into place only once its sha256 is the record's. Without
 * --force an existing FILE is kept, checked up front and again at the end (link(2) fails
 * when FILE appeared meanwhile). Any failure removes the temporary file. */
static int pull(ctx *c, int argc, char **argv)
{
    if (argc != 1) return cs_cli_usage_error("model", "pull expects NAME[:VERSION|@ALIAS] -o FILE");
    const char *file = c->o.output, *ref;
    if (!file || !*file)
        return cs_cli_usage_error("model", "pull needs -o FILE: where to write the artifact");
    split_ref(argv[0], &ref);
    if (ref && !*ref) return cs_cli_usage_error("model", "pull: empty version or alias");
    if (!c->o.force && access(file, F_OK) == 0)
        return cs_cli_error("model", "%s exists: --force replaces it", file);
    if (!(cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, argv[0]) &&
          cs_sbuf_puts(&c->path, "/versions") == CS_OK && path_seg(c, ref ? ref : "latest")))
        return cs_cli_error("model", "out of memory");
    cs_http_reply rep;
    int rc;
    json_t *v = call(c, "GET", NULL, &rep, &rc);
    cs_sbuf_free(&rep.body);
    if (!v) return rc;
    json_int_t number = json_integer_value(json_object_get(v, "version"));
    char want[80];
    snprintf(want, sizeof want, "%s", str(v, "digest"));
    json_decref(v);
    if (number <= 0 || strncmp(want, "sha256:", 7) != 0 || strlen(want) != 71)
        return cs_cli_error("model", "the server's record of %s has no version number or digest",
                            argv[0]);

    cs_sbuf_clear(&c->path);
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)number);
    if (!(cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, argv[0]) &&
          cs_sbuf_puts(&c->path, "/versions") == CS_OK && path_seg(c, num) &&
          cs_sbuf_puts(&c->path, "/artifact") == CS_OK))
        return cs_cli_error("model", "out of memory");
    cs_sbuf tmp;
    cs_sbuf_init(&tmp, 8192);
    if (cs_sbuf_printf(&tmp, "%s.pull-XXXXXX", file) != CS_OK) {
        cs_sbuf_free(&tmp);
        return cs_cli_error("model", "%s: the name is too long", file);
    }
    pull_file f = {.fd = mkstemp(tmp.data), .md = EVP_MD_CTX_new()};
    cs_error err;
    char msg[1024];
    bool placed = false, made = f.fd >= 0; /* the temporary file is ours to remove */
    rc = CS_CLI_RUNTIME;
    if (f.fd < 0) {
        rc = cs_cli_error("model", "%s: cannot create a file beside it: %s", file, strerror(errno));
        goto out;
    }
    mode_t mask = umask(0);
    umask(mask);
    if (!f.md || EVP_DigestInit_ex(f.md, EVP_sha256(), NULL) != 1 ||
        fchmod(f.fd, 0666 & ~mask) != 0) {
        rc = cs_cli_error("model", "cannot start the download: %s",
                          strerror(errno ? errno : ENOMEM));
        goto out;
    }
    const char *accept[] = {"Accept: application/octet-stream"};
    cs_status st = cs_http_download(&c->http, c->path.data, accept, 1, pull_sink, &f, &rep, &err);
    if (st != CS_OK || rep.status != 200) {
        if (f.write_errno)
            rc = cs_cli_error("model", "pull %s: writing %s: %s; %s was not written", argv[0],
                              tmp.data, strerror(f.write_errno), file);
        else if (st != CS_OK)
            rc = cs_cli_error("model", "pull %s: %s; %s was not written", argv[0], err.msg, file);
        else
            rc = cs_cli_error("model", "pull %s: %s", argv[0],
                              cs_http_error_text(&rep, msg, sizeof msg));
        cs_sbuf_free(&rep.body);
        goto out;
    }
    cs_sbuf_free(&rep.body);
    unsigned char h[32];
    unsigned hn = 0;
    char got[80] = "sha256:";
    if (EVP_DigestFinal_ex(f.md, h, &hn) != 1) hn = 0;
    for (unsigned i = 0; i < hn && i < 32; i++) snprintf(got + 7 + 2 * i, 3, "%02x", h[i]);
    if (strcmp(got, want) != 0) {
        rc = cs_cli_error("model",
                          "pull %s:%lld: the download hashes to %s, the registry records %s; "
                          "%s was not written",
                          argv[0], (long long)number, got, want, file);
        goto out;
    }
    if (fsync(f.fd) != 0 || close(f.fd) != 0) {
        f.fd = -1;
        rc = cs_cli_error("model", "%s: %s", tmp.data, strerror(errno));
        goto out;
    }
    f.fd = -1;
    if (c->o.force) {
        placed = rename(tmp.data, file) == 0;
    } else {
        placed = link(tmp.data, file) == 0;
        if (placed) unlink(tmp.data);
    }
    if (!placed) {
        rc = errno == EEXIST ? cs_cli_error("model", "%s exists: --force replaces it", file)
                             : cs_cli_error("model", "%s: %s", file, strerror(errno));
        goto out;
    }
    char size[32];
    cs_cli_size_text((uint64_t)f.bytes, size, sizeof size);
    printf("%s:%lld -> %s (%s, %s)\n", argv[0], (long long)number, file, want, size);
    rc = CS_CLI_OK;
out:
    if (f.fd >= 0) close(f.fd);
    if (made && !placed) unlink(tmp.data);
    EVP_MD_CTX_free(f.md);
    cs_sbuf_free(&tmp);
    return rc;
}

/* Prints the continuation token of a page, if any, on stderr. */
static void next_page(json_t *page)
{
    const char *t = json_string_value(json_object_get(page, "next_page_token"));
    if (t) fprintf(stderr, "more: --page-token %s\n", t);
}

/* A version's name for -o name: NAME:VERSION. */
static void version_name(const json_t *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s:%" JSON_INTEGER_FORMAT, str((json_t *)v, "model"),
             json_integer_value(json_object_get(v, "version")));
}

/* The digest cut to "sha256:" and 12 hex digits, as `docker images` shortens IDs. */
static void short_digest(const json_t *v, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.19s", str((json_t *)v, "digest"));
}

/* An audit entry's version, "-" when it concerns no version (0). */
static void audit_version(const json_t *v, char *buf, size_t cap)
{
    json_int_t n = json_integer_value(json_object_get(v, "version"));
    if (n > 0)
        snprintf(buf, cap, "%" JSON_INTEGER_FORMAT, n);
    else
        snprintf(buf, cap, "-");
}

static const cs_cli_column model_columns[] = {
    {"NAME", "name", CS_CLI_CELL_TEXT, false, NULL},
    {"LABELS", "labels", CS_CLI_CELL_LABELS, false, NULL},
    {"UPDATED", "updated_at", CS_CLI_CELL_AGE, false, NULL},
    {"AGE", "created_at", CS_CLI_CELL_AGE, false, NULL},
    {"CREATED-BY", "created_by", CS_CLI_CELL_TEXT, true, NULL},
    {"DESCRIPTION", "description", CS_CLI_CELL_TEXT, true, NULL},
};
static const cs_cli_view model_view = {"model", "name", NULL, model_columns,
                                       sizeof model_columns / sizeof model_columns[0]};

static const cs_cli_column version_columns[] = {
    {"VERSION", "version", CS_CLI_CELL_TEXT, false, NULL},
    {"STATE", "state", CS_CLI_CELL_TEXT, false, NULL},
    {"SIZE", "size", CS_CLI_CELL_SIZE, false, NULL},
    {"DIGEST", NULL, CS_CLI_CELL_TEXT, false, short_digest},
    {"LABELS", "labels", CS_CLI_CELL_LABELS, false, NULL},
    {"AGE", "created_at", CS_CLI_CELL_AGE, false, NULL},
    {"FORMAT", "format", CS_CLI_CELL_TEXT, true, NULL},
    {"CREATED-BY", "created_by", CS_CLI_CELL_TEXT, true, NULL},
    {"SOURCE", "lineage.source_uri", CS_CLI_CELL_TEXT, true, NULL},
    {"PARENT", "lineage.parent_version", CS_CLI_CELL_TEXT, true, NULL},
    {"SIGNER", "signer", CS_CLI_CELL_TEXT, true, NULL},
    {"DESCRIPTION", "description", CS_CLI_CELL_TEXT, true, NULL},
};
static const cs_cli_view version_view = {"model", NULL, version_name, version_columns,
                                         sizeof version_columns / sizeof version_columns[0]};

static const cs_cli_column audit_columns[] = {
    {"ID", "id", CS_CLI_CELL_TEXT, false, NULL},
    {"AGE", "at", CS_CLI_CELL_AGE, false, NULL},
    {"ACTOR", "actor", CS_CLI_CELL_TEXT, false, NULL},
    {"ACTION", "action", CS_CLI_CELL_TEXT, false, NULL},
    {"MODEL", "model", CS_CLI_CELL_TEXT, false, NULL},
    {"VERSION", NULL, CS_CLI_CELL_TEXT, false, audit_version},
    {"ALIAS", "alias", CS_CLI_CELL_TEXT, false, NULL},
    {"TIME", "at", CS_CLI_CELL_TEXT, true, NULL},
};
static const cs_cli_view audit_view = {"audit", "id", NULL, audit_columns,
                                       sizeof audit_columns / sizeof audit_columns[0]};

static int ls(ctx *c, int argc, char **argv)
{
    if (argc > 1) return cs_cli_usage_error("model", "ls expects at most one NAME");
    bool versions = argc == 1;
    char limit[16] = "";
    if (c->o.limit) snprintf(limit, sizeof limit, "%ld", c->o.limit);
    bool ok =
        cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK &&
        (!versions || (path_seg(c, argv[0]) && cs_sbuf_puts(&c->path, "/versions") == CS_OK)) &&
        path_query(c, "selector", c->o.selector) && path_query(c, "prefix", c->o.prefix) &&
        path_query(c, "order", c->o.desc ? "desc" : NULL) &&
        path_query(c, "limit", limit[0] ? limit : NULL) &&
        path_query(c, "page_token", c->o.page_token);
    if (!ok) return cs_cli_error("model", "out of memory");
    cs_http_reply rep;
    int rc;
    json_t *page = call(c, "GET", NULL, &rep, &rc);
    if (page)
        rc = cs_cli_output("model", c->o.out, versions ? &version_view : &model_view, page,
                           json_object_get(page, "items"));
    next_page(page);
    json_decref(page);
    cs_sbuf_free(&rep.body);
    return rc;
}

static int show(ctx *c, int argc, char **argv)
{
    if (argc != 1) return cs_cli_usage_error("model", "show expects NAME[:VERSION|@ALIAS]");
    const char *ref;
    split_ref(argv[0], &ref);
    if (ref && !*ref) return cs_cli_usage_error("model", "show: empty version or alias");
    bool ok = cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, argv[0]) &&
              (!ref || (cs_sbuf_puts(&c->path, "/versions") == CS_OK && path_seg(c, ref)));
    if (!ok) return cs_cli_error("model", "out of memory");
    cs_http_reply rep;
    int rc;
    json_t *j = call(c, "GET", NULL, &rep, &rc);
    if (j && c->o.out == CS_CLI_OUT_NAME) {
        char name[512];
        if (ref)
            version_name(j, name, sizeof name);
        else
            snprintf(name, sizeof name, "%s", str(j, "name"));
        printf("model/%s\n", name);
    } else if (j && (c->o.out == CS_CLI_OUT_JSON || c->o.out == CS_CLI_OUT_YAML)) {
        rc = cs_cli_output("model", c->o.out, NULL, j, NULL);
    } else if (j) {
        rc = cs_cli_describe("model", j);
    }
    json_decref(j);
    cs_sbuf_free(&rep.body);
    return rc;
}

static int alias(ctx *c, int argc, char **argv)
{
    bool set = argc == 4 && strcmp(argv[0], "set") == 0;
    bool rm = argc == 3 && strcmp(argv[0], "rm") == 0;
    long version = 0;
    if (!set && !rm)
        return cs_cli_usage_error("model", "alias expects 'set NAME ALIAS VERSION' or 'rm NAME "
                                           "ALIAS'");
    if (set && cs_cli_parse_int(argv[3], 1, 1L << 62, &version) != 0)
        return cs_cli_usage_error("model", "alias set: '%s' is not a version number", argv[3]);
    if (!(cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, argv[1]) &&
          cs_sbuf_puts(&c->path, "/aliases") == CS_OK && path_seg(c, argv[2])))
        return cs_cli_error("model", "out of memory");
    char body[64], done[256];
    snprintf(body, sizeof body, "{\"version\":%ld}", version);
    if (set)
        snprintf(done, sizeof done, "%s@%s -> %ld", argv[1], argv[2], version);
    else
        snprintf(done, sizeof done, "removed %s@%s", argv[1], argv[2]);
    return simple(c, set ? "PUT" : "DELETE", set ? body : NULL, done);
}

/* NAME:VERSION into the version's path; false (after reporting) when malformed. */
static int version_path(ctx *c, const char *cmd, char *arg, bool required, int *rc)
{
    const char *ref;
    split_ref(arg, &ref);
    long v;
    if ((required && !ref) || (ref && cs_cli_parse_int(ref, 1, 1L << 62, &v) != 0)) {
        *rc = cs_cli_usage_error("model", "%s expects NAME%s (a version number)", cmd,
                                 required ? ":VERSION" : "[:VERSION]");
        return 0;
    }
    if (!(cs_sbuf_puts(&c->path, "/api/v1/models") == CS_OK && path_seg(c, arg) &&
          (!ref || (cs_sbuf_puts(&c->path, "/versions") == CS_OK && path_seg(c, ref))))) {
        *rc = cs_cli_error("model", "out of memory");
        return 0;
    }
    return ref ? 2 : 1;
}

static int archive(ctx *c, int argc, char **argv)
{
    if (argc != 1) return cs_cli_usage_error("model", "archive expects NAME:VERSION");
    char done[256];
    snprintf(done, sizeof done, "%s %s", argv[0], c->o.restore ? "restored" : "archived");
    int rc;
    if (!version_path(c, "archive", argv[0], true, &rc)) return rc;
    return simple(c, "PATCH", c->o.restore ? "{\"state\":\"ready\"}" : "{\"state\":\"archived\"}",
                  done);
}

static int rm(ctx *c, int argc, char **argv)
{
    if (argc != 1) return cs_cli_usage_error("model", "rm expects NAME[:VERSION]");
    char done[256];
    snprintf(done, sizeof done, "deleted %s", argv[0]);
    int rc;
    if (!version_path(c, "rm", argv[0], false, &rc)) return rc;
    return simple(c, "DELETE", NULL, done);
}

static int gc(ctx *c, int argc, char **argv)
{
    if (argc != 0) return cs_cli_usage_error("model", "gc takes no arguments");
    cs_sbuf_puts(&c->path, c->o.yes ? "/api/v1/gc" : "/api/v1/gc?dry_run=true");
    cs_http_reply rep;
    int rc;
    json_t *j = call(c, "POST", NULL, &rep, &rc);
    if (j && (c->o.out == CS_CLI_OUT_JSON || c->o.out == CS_CLI_OUT_YAML))
        rc = cs_cli_output("model", c->o.out, NULL, j, NULL);
    else if (j)
        printf("%lld blobs, %lld unreferenced (%lld bytes), %lld removed%s\n",
               (long long)json_integer_value(json_object_get(j, "blobs")),
               (long long)json_integer_value(json_object_get(j, "unreferenced")),
               (long long)json_integer_value(json_object_get(j, "bytes")),
               (long long)json_integer_value(json_object_get(j, "removed")),
               c->o.yes ? "" : " (dry run: --yes removes them)");
    json_decref(j);
    cs_sbuf_free(&rep.body);
    return rc;
}

static int audit(ctx *c, int argc, char **argv)
{
    if (argc > 1) return cs_cli_usage_error("model", "audit expects at most one NAME");
    char limit[16] = "";
    if (c->o.limit) snprintf(limit, sizeof limit, "%ld", c->o.limit);
    if (!(cs_sbuf_puts(&c->path, "/api/v1/audit") == CS_OK &&
          path_query(c, "model", argc ? argv[0] : NULL) &&
          path_query(c, "limit", limit[0] ? limit : NULL) &&
          path_query(c, "page_token", c->o.page_token)))
        return cs_cli_error("model", "out of memory");
    cs_http_reply rep;
    int rc;
    json_t *page = call(c, "GET", NULL, &rep, &rc);
    if (page)
        rc = cs_cli_output("model", c->o.out, &audit_view, page, json_object_get(page, "items"));
    next_page(page);
    json_decref(page);
    cs_sbuf_free(&rep.body);
    return rc;
}

static const struct {
    const char *name;
    int (*fn)(ctx *c, int argc, char **argv);
} subcommands[] = {
    {"push", push},       {"pull", pull}, {"ls", ls}, {"show", show},   {"alias", alias},
    {"archive", archive}, {"rm", rm},     {"gc", gc}, {"audit", audit},
};

static int model_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"server", required_argument, NULL, OPT_SERVER},
        {"cacert", required_argument, NULL, OPT_CACERT},
        {"json", no_argument, NULL, OPT_JSON},
        {"output", required_argument, NULL, 'o'},
        {"label", required_argument, NULL, OPT_LABEL},
        {"alias", required_argument, NULL, OPT_ALIAS},
        {"source", required_argument, NULL, OPT_SOURCE},
        {"source-uri", required_argument, NULL, OPT_SOURCE},
        {"description", required_argument, NULL, OPT_DESCRIPTION},
        {"run-id", required_argument, NULL, OPT_RUN_ID},
        {"parent", required_argument, NULL, OPT_PARENT},
        {"force", no_argument, NULL, OPT_FORCE},
        {"sign", required_argument, NULL, OPT_SIGN},
        {"selector", required_argument, NULL, OPT_SELECTOR},
        {"prefix", required_argument, NULL, OPT_PREFIX},
        {"desc", no_argument, NULL, OPT_DESC},
        {"limit", required_argument, NULL, OPT_LIMIT},
        {"page-token", required_argument, NULL, OPT_PAGE_TOKEN},
        {"yes", no_argument, NULL, OPT_YES},
        {"restore", no_argument, NULL, OPT_RESTORE},
        {0}};
    static const cs_cli_spec spec = {"model", usage, "o:", longopts};
    ctx c = {0};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &c.o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first == argc)
        return cs_cli_usage_error("model", "expected a subcommand: push, pull, ls, show, alias, "
                                           "archive, rm, gc or audit");
    const char *sub = argv[first];
    size_t k = 0;
    while (k < sizeof subcommands / sizeof subcommands[0] && strcmp(subcommands[k].name, sub)) k++;
    if (k == sizeof subcommands / sizeof subcommands[0]) {
        const char *near = cs_cli_nearest(sub, subcommands, k, sizeof subcommands[0]);
        if (near)
            return cs_cli_usage_error("model", "unknown subcommand '%s' (did you mean '%s'?)", sub,
                                      near);
        return cs_cli_usage_error("model", "unknown subcommand '%s'", sub);
    }
    /* pull's -o is the file it writes (as curl's and docker save's are); elsewhere a format. */
    const char *format = subcommands[k].fn == pull ? NULL : c.o.output;
    if (!format && c.o.json) format = "json";
    if (format && cs_cli_output_parse("model", format, &c.o.out) != CS_CLI_CONTINUE)
        return CS_CLI_USAGE;
    char server[1024];
    cs_error err;
    cs_status st = cs_http_open(&c.http, c.o.server, c.o.cacert, server, sizeof server, &err);
    if (st == CS_ERR_INVALID) return cs_cli_usage_error("model", "%s", err.msg);
    if (st != CS_OK) return cs_cli_error("model", "%s", err.msg);
    cs_sbuf_init(&c.path, 8192);
    rc = subcommands[k].fn(&c, argc - first - 1, argv + first + 1);
    cs_sbuf_free(&c.path);
    cs_http_free(&c.http);
    return rc;
}

const cs_cli_command cs_cli_model_cmd = {"model", "manage the model registry of a running server",
                                         model_main};
