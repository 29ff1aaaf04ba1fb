/*
 * dra_state.c - a server's devices, classes and claims (see dra_state.h).
 *
 * Objects are kept as their JSON text, not as one long-lived cs_dra_set: a set only grows
 * (one arena, no per-object free), so keeping one alive across releases and refused claims
 * would leak a little with every request. Creating a claim instead builds a fresh set from
 * the texts - the slices, every class, every claim held (each carries status.allocation,
 * so it counts as allocated) and the new claim last - lets cs_dra_allocate allocate the one
 * pending claim, keeps that claim's JSON and frees the set. That costs O(fleet + claims
 * held) parsing per created claim, the same order as the allocator's own inventory pass,
 * and memory stays what the live objects need. Reads cost a copy of their output.
 *
 * Locking: one mutex over the classes and claims (the slices never change after
 * cs_dra_state_new). A claim's creation holds it through the parse and the search (at most
 * CS_DRA_DEFAULT_STEPS steps), which serialises creations: each sees the allocations
 * before it, so two claims never get the same device, and a release is visible to the
 * next creation at once.
 */
#include "devices/dra_state.h"

#include "base/alloc.h"
#include "base/vec.h"
#include "devices/discover.h"
#include "devices/dra_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define MAX_FILE (64u << 20) /* of --devices YAML: far beyond any real fleet */

typedef struct obj {
    char *name; /* one allocation: name, NUL, json, NUL */
    const char *json;
    size_t len;
} obj;

struct cs_dra_state {
    pthread_mutex_t mu;
    cs_dra_options alloc;
    char *slices; /* the ResourceSlices as a JSON v1 List, read back for every claim */
    size_t slices_len;
    cs_vec objs[2]; /* obj per cs_dra_kind, in creation order */
};

static const char *const kind_names[] = {"DeviceClass", "ResourceClaim"};

/* The classes a server has unless its --devices file defines them: one per driver that
 * discovery publishes, selecting that driver's devices. */
static const char *const default_drivers[] = {"gpu.nvidia.com", "cpu.capstan.dev"};

/* ---- JSON lists ---- */

static cs_status list_open(cs_sbuf *out)
{
    return cs_sbuf_puts(out, "{\n\"apiVersion\": \"v1\",\n\"kind\": \"List\",\n\"items\": [");
}

static cs_status list_item(cs_sbuf *out, size_t i, const char *json, size_t len)
{
    cs_status rc = cs_sbuf_puts(out, i ? ",\n" : "\n");
    return rc == CS_OK ? cs_sbuf_append(out, json, len) : rc;
}

static cs_status list_close(cs_sbuf *out)
{
    return cs_sbuf_puts(out, "\n]\n}\n");
}

/* ---- the objects held ---- */

/* Kubernetes' DNS subdomain rule; it also keeps names usable as URL path segments. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CS_DRA_NAME_MAX) return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && ((c != '-' && c != '.') || i == 0 || i == n - 1)) return false;
    }
    return true;
}

/* O(objects of the kind); bounded by CS_DRA_STATE_MAX_OBJS. Caller holds the lock. */
static size_t find(const cs_dra_state *st, cs_dra_kind kind, const char *name)
{
    const cs_vec *v = &st->objs[kind];
    for (size_t i = 0; i < v->len; i++)
        if (strcmp(((const obj *)cs_vec_at(v, i))->name, name) == 0) return i;
    return SIZE_MAX;
}

/* Checks that a new object may be kept under name. Caller holds the lock. */
static cs_status admit(const cs_dra_state *st, cs_dra_kind kind, const char *name, cs_error *err)
{
    if (!valid_name(name))
        return cs_error_set(err, CS_ERR_INVALID,
                            "%s '%.80s': metadata.name must be a DNS subdomain: lowercase "
                            "letters, digits, '-' and '.', starting and ending with a letter "
                            "or digit, at most %d characters",
                            kind_names[kind], name, CS_DRA_NAME_MAX);
    if (find(st, kind, name) != SIZE_MAX)
        return cs_error_set(err, CS_ERR_EXISTS, "%s %s already exists", kind_names[kind], name);
    if (st->objs[kind].len >= CS_DRA_STATE_MAX_OBJS)
        return cs_error_set(err, CS_ERR_LIMIT, "at most %d %s objects are held; delete some first",
                            CS_DRA_STATE_MAX_OBJS, kind_names[kind]);
    return CS_OK;
}

/* Keeps a copy of name and json. Caller holds the lock and has admitted the name. */
static cs_status keep(cs_dra_state *st, cs_dra_kind kind, const char *name, const cs_sbuf *json,
                      cs_error *err)
{
    size_t n = strlen(name);
    char *mem = cs_malloc(n + 1 + json->len + 1);
    if (!mem) return cs_error_set(err, CS_ERR_NOMEM, "out of memory keeping %s", name);
    memcpy(mem, name, n + 1);
    memcpy(mem + n + 1, json->data, json->len + 1);
    obj o = {mem, mem + n + 1, json->len};
    if (cs_vec_push(&st->objs[kind], &o) != CS_OK) {
        cs_free(mem);
        return cs_error_set(err, CS_ERR_NOMEM, "out of memory keeping %s", name);
    }
    return CS_OK;
}

/* Admits and keeps one object of a set (a class or an allocated claim) as JSON. */
static cs_status keep_object(cs_dra_state *st, cs_dra_kind kind, const void *o, cs_sbuf *out,
                             cs_error *err)
{
    const cs_dra_class *cls = o;
    const cs_dra_claim *claim = o;
    const char *name = kind == CS_DRA_KIND_CLASS ? cls->name : claim->name;
    cs_sbuf json;
    cs_sbuf_init(&json, 0);
    cs_status rc = admit(st, kind, name, err);
    if (rc == CS_OK && kind == CS_DRA_KIND_CLAIM) rc = cs_dra_write_claim(claim, true, &json, err);
    if (rc == CS_OK && kind == CS_DRA_KIND_CLASS && (rc = cs_ynode_write_json(cls->doc, &json)))
        cs_error_set(err, rc, "writing DeviceClass %s: %s", name, cs_strerror(rc));
    if (rc == CS_OK && out && (rc = cs_sbuf_append(out, json.data, json.len)) != CS_OK)
        cs_error_set(err, rc, "writing %s %s: %s", kind_names[kind], name, cs_strerror(rc));
    if (rc == CS_OK) rc = keep(st, kind, name, &json, err);
    cs_sbuf_free(&json);
    return rc;
}

/* Reads the slices and every object held into set. They were valid when they came in, so
 * this fails only when memory runs out. Caller holds the lock. */
static cs_status read_held(const cs_dra_state *st, cs_dra_set *set, cs_error *err)
{
    cs_status rc = cs_dra_read(set, st->slices, st->slices_len, "devices", err);
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; rc == CS_OK && i < st->objs[k].len; i++) {
            const obj *o = cs_vec_at(&st->objs[k], i);
            rc = cs_dra_read(set, o->json, o->len, o->name, err);
        }
    return rc;
}

/* The one object read into set after the first `before` classes and claims (and no
 * slice), which must be of `kind`; NULL with err set otherwise. */
static void *one_object(const cs_dra_set *set, const size_t before[3], cs_dra_kind kind,
                        cs_error *err)
{
    size_t classes = set->classes.len - before[0], claims = set->claims.len - before[1];
    size_t slices = set->slices.len - before[2];
    size_t want = kind == CS_DRA_KIND_CLASS ? classes : claims;
    if (want != 1 || classes + claims + slices != 1) {
        cs_error_set(err, CS_ERR_INVALID,
                     "expected one %s (resource.k8s.io/v1), got %zu DeviceClass, %zu "
                     "ResourceClaim and %zu ResourceSlice objects",
                     kind_names[kind], classes, claims, slices);
        return NULL;
    }
    const cs_vec *v = kind == CS_DRA_KIND_CLASS ? &set->classes : &set->claims;
    return *(void **)cs_vec_at(v, v->len - 1);
}

/* Reads the new object, from text or from io's builder, into set. */
static cs_status read_input(cs_dra_set *set, const char *text, size_t len,
                            const cs__dra_claim_io *io, cs_error *err)
{
    if (!io) return cs_dra_read(set, text, len, "input", err);
    cs_ynode *doc = NULL;
    cs_status rc = io->build(&set->arena, io->ud, &doc, err);
    return rc == CS_OK ? cs__dra_read_doc(set, doc, "input", err) : rc;
}

static cs_status create(cs_dra_state *st, cs_dra_kind kind, const char *text, size_t len,
                        const cs__dra_claim_io *io, cs_sbuf *out, bool *created, cs_error *err)
{
    *created = false;
    cs_dra_set set;
    cs_dra_set_init(&set);
    pthread_mutex_lock(&st->mu);
    /* A class is checked on its own; a claim is allocated among everything held. */
    cs_status rc = kind == CS_DRA_KIND_CLAIM ? read_held(st, &set, err) : CS_OK;
    size_t before[3] = {set.classes.len, set.claims.len, set.slices.len};
    if (rc == CS_OK && (rc = read_input(&set, text, len, io, err)) == CS_ERR_LIMIT)
        rc = err->code = CS_ERR_INVALID; /* too large an input is the input's fault */
    void *o = rc == CS_OK ? one_object(&set, before, kind, err) : NULL;
    cs_dra_claim *claim = o;
    if (rc == CS_OK && !o) rc = CS_ERR_INVALID;
    if (rc == CS_OK && kind == CS_DRA_KIND_CLAIM && claim->allocated_on_input)
        rc = cs_error_set(err, CS_ERR_INVALID,
                          "ResourceClaim %s: status.allocation: must not be set (the server "
                          "allocates the claim)",
                          claim->name);
    if (rc == CS_OK && kind == CS_DRA_KIND_CLAIM) {
        rc = admit(st, kind, claim->name, err);
        if (rc == CS_OK) rc = cs_dra_allocate(&set, &st->alloc, err);
        if (rc == CS_OK && claim->state != CS_DRA_ALLOCATED) {
            cs_error_set(err, CS_OK, "ResourceClaim %s: %s", claim->name, claim->reason);
            goto out; /* refused: nothing is kept */
        }
        if (rc == CS_OK && io && io->take) rc = io->take(claim, io->ud, err);
    }
    if (rc == CS_OK) rc = keep_object(st, kind, o, out, err);
    *created = rc == CS_OK;
out:
    pthread_mutex_unlock(&st->mu);
    cs_dra_set_free(&set);
    return rc;
}

cs_status cs_dra_state_create(cs_dra_state *st, cs_dra_kind kind, const char *text, size_t len,
                              cs_sbuf *out, bool *created, cs_error *err)
{
    return create(st, kind, text, len, NULL, out, created, err);
}

cs_status cs__dra_state_claim(cs_dra_state *st, const cs__dra_claim_io *io, bool *created,
                              cs_error *err)
{
    return create(st, CS_DRA_KIND_CLAIM, NULL, 0, io, NULL, created, err);
}

cs_status cs_dra_state_devices(cs_dra_state *st, cs_sbuf *out)
{
    /* No lock: the slices are written once, before any other thread sees st. */
    return cs_sbuf_append(out, st->slices, st->slices_len);
}

cs_status cs_dra_state_list(cs_dra_state *st, cs_dra_kind kind, cs_sbuf *out)
{
    pthread_mutex_lock(&st->mu);
    const cs_vec *v = &st->objs[kind];
    cs_status rc = list_open(out);
    for (size_t i = 0; rc == CS_OK && i < v->len; i++) {
        const obj *o = cs_vec_at(v, i);
        rc = list_item(out, i, o->json, o->len);
    }
    if (rc == CS_OK) rc = list_close(out);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

static cs_status not_found(cs_dra_kind kind, const char *name, cs_error *err)
{
    return cs_error_set(err, CS_ERR_NOT_FOUND, "%s %.253s not found", kind_names[kind], name);
}

cs_status cs_dra_state_get(cs_dra_state *st, cs_dra_kind kind, const char *name, cs_sbuf *out,
                           cs_error *err)
{
    pthread_mutex_lock(&st->mu);
    size_t i = find(st, kind, name);
    const obj *o = i == SIZE_MAX ? NULL : cs_vec_at(&st->objs[kind], i);
    cs_status rc = o ? cs_sbuf_append(out, o->json, o->len) : not_found(kind, name, err);
    if (o && rc != CS_OK) cs_error_set(err, rc, "writing %s: %s", name, cs_strerror(rc));
    pthread_mutex_unlock(&st->mu);
    return rc;
}

cs_status cs_dra_state_delete(cs_dra_state *st, cs_dra_kind kind, const char *name, cs_sbuf *out,
                              cs_error *err)
{
    pthread_mutex_lock(&st->mu);
    cs_vec *v = &st->objs[kind];
    size_t i = find(st, kind, name);
    cs_status rc = CS_OK;
    if (i == SIZE_MAX) {
        rc = not_found(kind, name, err);
    } else {
        /* The answer is written before the object goes, so a failure removes nothing. */
        obj *o = cs_vec_at(v, i);
        rc = out ? cs_sbuf_append(out, o->json, o->len) : CS_OK;
        if (rc != CS_OK) {
            cs_error_set(err, rc, "writing %s: %s", name, cs_strerror(rc));
        } else {
            cs_free(o->name);
            memmove(o, o + 1, (v->len - i - 1) * sizeof *o);
            v->len--;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

/* ---- start ---- */

static cs_status read_file(const char *path, cs_sbuf *text, cs_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cs_error_set(err, CS_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    char chunk[65536];
    size_t n;
    cs_status rc = CS_OK;
    while (rc == CS_OK && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = cs_sbuf_append(text, chunk, n);
    if (rc == CS_OK && ferror(f))
        rc = cs_error_set(err, CS_ERR_IO, "cannot read %s", path);
    else if (rc != CS_OK)
        cs_error_set(err, rc, "%s: %s", path,
                     rc == CS_ERR_LIMIT ? "larger than 64 MiB" : cs_strerror(rc));
    fclose(f);
    return rc;
}

static cs_status discover_yaml(cs_sbuf *text, cs_error *err)
{
    cs_discovery d;
    cs_status rc = cs_discover(&d, err);
    if (rc != CS_OK) return rc;
    if ((rc = cs_discovery_write_yaml(&d, text)) != CS_OK)
        cs_error_set(err, rc, "writing the discovered devices: %s", cs_strerror(rc));
    cs_discovery_free(&d);
    return rc;
}

static bool set_has_class(const cs_dra_set *set, const char *name)
{
    for (size_t i = 0; i < set->classes.len; i++)
        if (strcmp((*(cs_dra_class **)cs_vec_at(&set->classes, i))->name, name) == 0) return true;
    return false;
}

/* Adds to set the default classes it does not define. */
static cs_status add_default_classes(cs_dra_set *set, cs_error *err)
{
    cs_status rc = CS_OK;
    for (size_t i = 0; rc == CS_OK && i < sizeof default_drivers / sizeof *default_drivers; i++) {
        const char *d = default_drivers[i];
        if (set_has_class(set, d)) continue;
        char yaml[512];
        int n = snprintf(yaml, sizeof yaml,
                         "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\n"
                         "metadata: {name: %s}\n"
                         "spec:\n  selectors:\n  - cel: {expression: 'device.driver == \"%s\"'}\n",
                         d, d);
        rc = cs_dra_read(set, yaml, (size_t)n, "default classes", err);
    }
    return rc;
}

/* The slices of set as the JSON List that GET serves and every claim creation reads. */
static cs_status write_slices(cs_dra_state *st, const cs_dra_set *set, cs_error *err)
{
    cs_sbuf b;
    cs_sbuf_init(&b, 0);
    cs_status rc = list_open(&b);
    for (size_t i = 0; rc == CS_OK && i < set->slices.len; i++) {
        rc = cs_sbuf_puts(&b, i ? ",\n" : "\n");
        if (rc == CS_OK)
            rc = cs_ynode_write_json((*(cs_dra_slice **)cs_vec_at(&set->slices, i))->doc, &b);
    }
    if (rc == CS_OK) rc = list_close(&b);
    if (rc != CS_OK) {
        cs_sbuf_free(&b);
        return cs_error_set(err, rc, "writing the devices: %s", cs_strerror(rc));
    }
    st->slices_len = b.len;
    st->slices = cs_sbuf_take(&b);
    return CS_OK;
}

/* Keeps every class of set, then allocates its claims in file order and keeps them. */
static cs_status load(cs_dra_state *st, cs_dra_set *set, const char *source, cs_error *err)
{
    cs_status rc = write_slices(st, set, err);
    for (size_t i = 0; rc == CS_OK && i < set->classes.len; i++)
        rc = keep_object(st, CS_DRA_KIND_CLASS, *(void **)cs_vec_at(&set->classes, i), NULL, err);
    if (rc == CS_OK && set->claims.len) rc = cs_dra_allocate(set, &st->alloc, err);
    for (size_t i = 0; rc == CS_OK && i < set->claims.len; i++) {
        const cs_dra_claim *c = *(cs_dra_claim **)cs_vec_at(&set->claims, i);
        if (c->state != CS_DRA_ALLOCATED)
            return cs_error_set(err, CS_ERR_INVALID, "%s: ResourceClaim %s: %s", source, c->name,
                                c->reason);
        rc = keep_object(st, CS_DRA_KIND_CLAIM, c, NULL, err);
    }
    return rc;
}

cs_status cs_dra_state_new(const cs_dra_state_options *o, cs_dra_state **out, cs_error *err)
{
    *out = NULL;
    cs_dra_state *st = cs_calloc(1, sizeof *st);
    if (!st) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&st->mu, NULL);
    cs_vec_init(&st->objs[CS_DRA_KIND_CLASS], sizeof(obj));
    cs_vec_init(&st->objs[CS_DRA_KIND_CLAIM], sizeof(obj));
    st->alloc.policy = o->policy;
    const char *source = o->devices_file ? o->devices_file : "discovered devices";
    cs_sbuf text;
    cs_sbuf_init(&text, MAX_FILE);
    cs_dra_set set;
    cs_dra_set_init(&set);
    cs_status rc =
        o->devices_file ? read_file(o->devices_file, &text, err) : discover_yaml(&text, err);
    /* The reader names the input in syntax errors only; objects are named by kind and name. */
    if (rc == CS_OK && (rc = cs_dra_read(&set, text.data, text.len, source, err)) != CS_OK &&
        strncmp(err->msg, source, strlen(source)) != 0)
        cs_error_prefix(err, "%s: ", source);
    if (rc == CS_OK) rc = add_default_classes(&set, err);
    if (rc == CS_OK) rc = load(st, &set, source, err);
    cs_dra_set_free(&set);
    cs_sbuf_free(&text);
    if (rc != CS_OK) {
        cs_dra_state_free(st);
        return rc;
    }
    *out = st;
    return CS_OK;
}

void cs_dra_state_free(cs_dra_state *st)
{
    if (!st) return;
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < st->objs[k].len; i++)
            cs_free(((obj *)cs_vec_at(&st->objs[k], i))->name);
        cs_vec_free(&st->objs[k]);
    }
    cs_free(st->slices);
    pthread_mutex_destroy(&st->mu);
    cs_free(st);
}
