/*
 * onnx.c - the ONNX reader: ModelProto bytes in, the engine's graph (graph.h) out.
 *
 * It decodes the subset of ONNX the engine runs: the model header, opset imports and
 * metadata, one graph with nodes, attributes, initializers and typed inputs/outputs, and
 * tensors with raw or typed data, inline or in external files. Strings and small arrays
 * are copied into the model's arena; tensor payloads stay in the mapped file when they are
 * suitably aligned (else they are copied once). Every length and count is checked against
 * the buffer and against fixed limits, so a hostile file fails with a message instead of
 * reading out of bounds or allocating without bound. Cost: two passes over each message
 * (count, then fill), linear in the file size.
 */
#include "engine/onnx.h"

#include "base/alloc.h"
#include "engine/pb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct reader {
    cs_model_t *m; /* NULL when decoding a lone tensor */
    cs_arena *arena;
    const char *base_dir;
    bool copy_data; /* copy tensor payloads even when aligned (buffer is temporary) */
    cs_error *err;
} reader;

static cs_status malformed(reader *r, const char *what)
{
    return cs_error_set(r->err, CS_ERR_PARSE, "malformed ONNX: %s", what);
}

static cs_status nomem(reader *r)
{
    return cs_error_set(r->err, CS_ERR_NOMEM, "out of memory while reading the model");
}

static const char *dup_bytes(reader *r, const uint8_t *p, size_t n)
{
    char *s = cs_arena_alloc(r->arena, n + 1, 1);
    if (!s) return NULL;
    if (n) memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* Counts the occurrences of field `num` in a message (a LEN-packed run counts once). */
static size_t count_field(const uint8_t *buf, size_t len, uint32_t num)
{
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    size_t n = 0;
    while (pb_next(&pr, &f))
        if (f.num == num) n++;
    return n;
}

/* Iterates the scalars of a repeated numeric field, packed or not. */
typedef struct rep_iter {
    pb_reader msg, packed;
    uint32_t num;
    int elem_wire;
    bool in_packed;
} rep_iter;

static rep_iter rep_init(const uint8_t *buf, size_t len, uint32_t num, int elem_wire)
{
    rep_iter it = {pb_init(buf, len), pb_init(NULL, 0), num, elem_wire, false};
    return it;
}

static bool rep_next(rep_iter *it, uint64_t *v, bool *bad)
{
    for (;;) {
        if (it->in_packed) {
            pb_reader *p = &it->packed;
            if (p->p < p->end) {
                if (it->elem_wire == PB_VARINT) {
                    if (pb_varint(p, v)) return true;
                } else {
                    size_t w = it->elem_wire == PB_FIXED32 ? 4 : 8;
                    if ((size_t)(p->end - p->p) >= w) {
                        uint64_t x = 0;
                        for (int i = (int)w - 1; i >= 0; i--) x = (x << 8) | p->p[i];
                        p->p += w;
                        *v = x;
                        return true;
                    }
                }
                *bad = true;
                return false;
            }
            it->in_packed = false;
        }
        pb_field f;
        if (!pb_next(&it->msg, &f)) {
            if (it->msg.bad) *bad = true;
            return false;
        }
        if (f.num != it->num) continue;
        if (f.wire == PB_LEN) {
            it->packed = pb_init(f.data, f.len);
            it->in_packed = true;
        } else if (f.wire == it->elem_wire) {
            *v = f.v;
            return true;
        } else {
            *bad = true;
            return false;
        }
    }
}

static size_t rep_count(const uint8_t *buf, size_t len, uint32_t num, int elem_wire, bool *bad)
{
    rep_iter it = rep_init(buf, len, num, elem_wire);
    uint64_t v;
    size_t n = 0;
    while (rep_next(&it, &v, bad)) n++;
    return n;
}

/* --- tensors ------------------------------------------------------------------------- */

enum {
    T_DIMS = 1,
    T_DATA_TYPE = 2,
    T_SEGMENT = 3,
    T_FLOAT_DATA = 4,
    T_INT32_DATA = 5,
    T_STRING_DATA = 6,
    T_INT64_DATA = 7,
    T_NAME = 8,
    T_RAW_DATA = 9,
    T_DOUBLE_DATA = 10,
    T_UINT64_DATA = 11,
    T_EXTERNAL_DATA = 13,
    T_DATA_LOCATION = 14,
};

/* Whether `path` (after symlinks) lies inside the folder `dir` (after symlinks). */
static bool inside(const char *dir, const char *path)
{
    char rd[PATH_MAX], rp[PATH_MAX];
    if (!realpath(dir, rd) || !realpath(path, rp)) return false;
    size_t n = strlen(rd);
    if (n == 1) return true; /* the root holds everything */
    return !strncmp(rd, rp, n) && rp[n] == '/';
}

/* Maps an external data file into memory and records the mapping on the model. The file
 * must be a regular file inside the model's folder once symlinks are resolved, so a model
 * reads only what was shipped beside it; a model loaded without a folder (a buffer, or a
 * content-addressed artifact whose folder holds other artifacts) may have no external data.
 * Messages name the location as the model wrote it, never the folder. */
static cs_status map_external(reader *r, const char *location, uint64_t offset, int64_t length,
                              size_t need, const void **out)
{
    if (!r->base_dir)
        return cs_error_set(r->err, CS_ERR_PARSE,
                            "external data (location '%s') is not allowed here: the model must "
                            "carry its tensor data inline",
                            location);
    if (location[0] == '/' || strstr(location, ".."))
        return cs_error_set(r->err, CS_ERR_INVALID,
                            "external data location '%s' must be a relative path inside the "
                            "model's folder",
                            location);
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", r->base_dir, location) >= (int)sizeof path)
        return cs_error_set(r->err, CS_ERR_INVALID, "external data path is too long");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cs_error_set(r->err, errno == ENOENT ? CS_ERR_PARSE : CS_ERR_IO,
                            "cannot open external data '%s': %s", location, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || !inside(r->base_dir, path)) {
        close(fd);
        return cs_error_set(r->err, CS_ERR_INVALID,
                            "external data location '%s' must be a regular file inside the "
                            "model's folder (a symlink may not lead out of it)",
                            location);
    }
    size_t size = (size_t)st.st_size;
    if (length >= 0 && (uint64_t)length != need)
        return close(fd), cs_error_set(r->err, CS_ERR_PARSE,
                                       "external data '%s': length %lld does not match the "
                                       "tensor's %zu bytes",
                                       location, (long long)length, need);
    if (offset > size || need > size - offset)
        return close(fd), cs_error_set(r->err, CS_ERR_PARSE,
                                       "external data '%s' is %zu bytes, too short for %zu bytes "
                                       "at offset %llu",
                                       location, size, need, (unsigned long long)offset);
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (size && map == MAP_FAILED)
        return cs_error_set(r->err, CS_ERR_IO, "cannot map external data '%s'", location);
    cs_model_t *m = r->m;
    void **maps = cs_realloc(m->ext_maps, (size_t)(m->n_ext + 1) * sizeof *maps);
    if (!maps) return munmap(map, size), nomem(r);
    m->ext_maps = maps;
    size_t *lens = cs_realloc(m->ext_lens, (size_t)(m->n_ext + 1) * sizeof *lens);
    if (!lens) return munmap(map, size), nomem(r);
    m->ext_lens = lens;
    m->ext_maps[m->n_ext] = map;
    m->ext_lens[m->n_ext] = size;
    m->n_ext++;
    *out = (const uint8_t *)map + offset;
    return CS_OK;
}

/* Stores one decoded typed-field scalar as element i of a tensor of type dt. */
static void put_scalar(void *data, cs_dtype dt, size_t i, uint64_t v, int field)
{
    switch (dt) {
    case CS_DTYPE_FLOAT32: {
        uint32_t b = (uint32_t)v;
        memcpy((float *)data + i, &b, 4);
        break;
    }
    case CS_DTYPE_FLOAT64: memcpy((double *)data + i, &v, 8); break;
    case CS_DTYPE_INT64: ((int64_t *)data)[i] = (int64_t)v; break;
    case CS_DTYPE_UINT64: ((uint64_t *)data)[i] = v; break;
    case CS_DTYPE_UINT32: ((uint32_t *)data)[i] = (uint32_t)v; break;
    case CS_DTYPE_INT32: ((int32_t *)data)[i] = (int32_t)v; break;
    case CS_DTYPE_INT16: ((int16_t *)data)[i] = (int16_t)v; break;
    case CS_DTYPE_UINT16:
    case CS_DTYPE_FLOAT16:
    case CS_DTYPE_BFLOAT16: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case CS_DTYPE_INT8: ((int8_t *)data)[i] = (int8_t)v; break;
    case CS_DTYPE_UINT8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case CS_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    default: break;
    }
    (void)field;
}

/* Which typed field holds a dtype's values, and its element wire type. */
static int typed_field(cs_dtype dt, int *wire)
{
    switch (dt) {
    case CS_DTYPE_FLOAT32: *wire = PB_FIXED32; return T_FLOAT_DATA;
    case CS_DTYPE_FLOAT64: *wire = PB_FIXED64; return T_DOUBLE_DATA;
    case CS_DTYPE_INT64: *wire = PB_VARINT; return T_INT64_DATA;
    case CS_DTYPE_UINT32:
    case CS_DTYPE_UINT64: *wire = PB_VARINT; return T_UINT64_DATA;
    default: *wire = PB_VARINT; return T_INT32_DATA;
    }
}

static cs_status parse_tensor(reader *r, const uint8_t *buf, size_t len, cs_tensor *t,
                              const char **name_out)
{
    memset(t, 0, sizeof *t);
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    const uint8_t *raw = NULL;
    size_t raw_len = 0;
    bool has_raw = false, external = false;
    const char *name = "";
    int64_t dt = 0;
    /* external_data entries: location, offset, length */
    const char *location = NULL;
    uint64_t ext_offset = 0;
    int64_t ext_length = -1;

    rep_iter dims = rep_init(buf, len, T_DIMS, PB_VARINT);
    uint64_t dv;
    bool bad = false;
    while (rep_next(&dims, &dv, &bad)) {
        if (t->rank == CS_MAX_RANK)
            return cs_error_set(r->err, CS_ERR_UNSUPPORTED, "tensor has more than %d dimensions",
                                CS_MAX_RANK);
        t->dims[t->rank++] = (int64_t)dv;
    }
    if (bad) return malformed(r, "bad tensor dims");

    while (pb_next(&pr, &f)) {
        switch (f.num) {
        case T_DATA_TYPE: dt = (int64_t)f.v; break;
        case T_NAME:
            if (f.wire != PB_LEN) return malformed(r, "tensor name");
            if (!(name = dup_bytes(r, f.data, f.len))) return nomem(r);
            break;
        case T_RAW_DATA:
            if (f.wire != PB_LEN) return malformed(r, "tensor raw_data");
            raw = f.data;
            raw_len = f.len;
            has_raw = true;
            break;
        case T_DATA_LOCATION: external = f.v == 1; break;
        case T_SEGMENT:
            return cs_error_set(r->err, CS_ERR_UNSUPPORTED, "segmented tensors are not supported");
        case T_EXTERNAL_DATA: {
            if (f.wire != PB_LEN) return malformed(r, "tensor external_data");
            pb_reader er = pb_init(f.data, f.len);
            pb_field ef;
            const uint8_t *k = NULL, *v = NULL;
            size_t kl = 0, vl = 0;
            while (pb_next(&er, &ef)) {
                if (ef.wire != PB_LEN) continue;
                if (ef.num == 1) k = ef.data, kl = ef.len;
                if (ef.num == 2) v = ef.data, vl = ef.len;
            }
            if (er.bad || !k) return malformed(r, "tensor external_data entry");
            const char *val = dup_bytes(r, v ? v : (const uint8_t *)"", vl);
            if (!val) return nomem(r);
            if (kl == 8 && !memcmp(k, "location", 8)) location = val;
            if (kl == 6 && !memcmp(k, "offset", 6)) ext_offset = strtoull(val, NULL, 10);
            if (kl == 6 && !memcmp(k, "length", 6)) ext_length = strtoll(val, NULL, 10);
            break;
        }
        default: break;
        }
    }
    if (pr.bad) return malformed(r, "truncated tensor");
    if (name_out) *name_out = name;

    t->dtype = (cs_dtype)dt;
    size_t esize = cs_dtype_size(t->dtype);
    if (dt == CS_DTYPE_STRING)
        return cs_error_set(r->err, CS_ERR_UNSUPPORTED,
                            "tensor '%s': string tensors are not "
                            "supported",
                            name);
    if (esize == 0)
        return cs_error_set(r->err, CS_ERR_UNSUPPORTED,
                            "tensor '%s': unsupported element type %lld", name, (long long)dt);
    int64_t numel = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 0 || (t->dims[i] && numel > CS_ONNX_MAX_DIMS_NUMEL / t->dims[i]))
            return cs_error_set(r->err, CS_ERR_PARSE, "tensor '%s': invalid dimension %lld", name,
                                (long long)t->dims[i]);
        numel *= t->dims[i];
    }
    size_t bytes = (size_t)numel * esize;

    if (external) {
        if (!location) return malformed(r, "external tensor without a location");
        const void *p;
        cs_status rc = map_external(r, location, ext_offset, ext_length, bytes, &p);
        if (rc) return cs_error_prefix(r->err, "tensor '%s': ", name);
        raw = p;
        raw_len = bytes;
        has_raw = true;
    }
    if (has_raw) {
        if (raw_len != bytes)
            return cs_error_set(r->err, CS_ERR_PARSE,
                                "tensor '%s': raw_data has %zu bytes, its shape needs %zu", name,
                                raw_len, bytes);
        if (!r->copy_data && ((uintptr_t)raw % esize) == 0 && bytes) {
            t->data = (void *)raw; /* zero-copy: the weights stay in the mapped file */
        } else {
            if (!(t->data = cs_arena_alloc(r->arena, bytes ? bytes : 1, 64))) return nomem(r);
            if (bytes) memcpy(t->data, raw, bytes);
        }
        return CS_OK;
    }

    int wire;
    int field = typed_field(t->dtype, &wire);
    size_t n = rep_count(buf, len, (uint32_t)field, wire, &bad);
    if (bad) return malformed(r, "bad typed tensor data");
    if (n != (size_t)numel)
        return cs_error_set(r->err, CS_ERR_PARSE,
                            "tensor '%s' holds %zu values, its shape needs %lld", name, n,
                            (long long)numel);
    if (!(t->data = cs_arena_alloc(r->arena, bytes ? bytes : 1, 64))) return nomem(r);
    rep_iter it = rep_init(buf, len, (uint32_t)field, wire);
    uint64_t v;
    for (size_t i = 0; i < n && rep_next(&it, &v, &bad); i++)
        put_scalar(t->data, t->dtype, i, v, field);
    return CS_OK;
}

cs_status cs__onnx_parse_tensor(const uint8_t *buf, size_t len, cs_arena *arena, cs_tensor *t,
                                const char **name, cs_error *err)
{
    reader r = {NULL, arena, NULL, true, err};
    return parse_tensor(&r, buf, len, t, name);
}

/* --- names to value ids ------------------------------------------------------------- */

typedef struct name_table {
    const char **names;
    int *ids;
    size_t cap;
} name_table;

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (uint8_t)*s++) * 1099511628211ull;
    return h;
}

static bool names_init(name_table *t, cs_arena *a, size_t n)
{
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->cap = cap;
    t->names = cs_arena_zalloc(a, cap * sizeof *t->names, 8);
    t->ids = cs_arena_alloc(a, cap * sizeof *t->ids, 8);
    return t->names && t->ids;
}

/* Returns the slot for name: either holding it, or empty. */
static size_t names_slot(const name_table *t, const char *name)
{
    size_t i = hash_str(name) & (t->cap - 1);
    while (t->names[i] && strcmp(t->names[i], name)) i = (i + 1) & (t->cap - 1);
    return i;
}

static int names_get(const name_table *t, const char *name)
{
    size_t i = names_slot(t, name);
    return t->names[i] ? t->ids[i] : -1;
}

/* --- type information ------------------------------------------------------------------ */

/* Reads a ValueInfoProto's name and tensor type into v. Non-tensor types leave dtype
 * UNDEFINED and set *is_tensor false. */
static cs_status parse_value_info(reader *r, const uint8_t *buf, size_t len, cs__value *v,
                                  bool *is_tensor)
{
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    v->rank = -1;
    *is_tensor = true;
    while (pb_next(&pr, &f)) {
        if (f.wire != PB_LEN) continue;
        if (f.num == 1) {
            if (!(v->name = dup_bytes(r, f.data, f.len))) return nomem(r);
        } else if (f.num == 2) { /* TypeProto */
            pb_reader tr = pb_init(f.data, f.len);
            pb_field tf;
            bool saw_tensor = false;
            while (pb_next(&tr, &tf)) {
                if (tf.wire != PB_LEN) continue;
                if (tf.num != 1) {
                    if (tf.num == 4 || tf.num == 5 || tf.num == 8 || tf.num == 9)
                        *is_tensor = false;
                    continue;
                }
                saw_tensor = true;
                pb_reader ttr = pb_init(tf.data, tf.len);
                pb_field ttf;
                while (pb_next(&ttr, &ttf)) {
                    if (ttf.num == 1 && ttf.wire == PB_VARINT) v->dtype = (cs_dtype)ttf.v;
                    if (ttf.num != 2 || ttf.wire != PB_LEN) continue;
                    v->rank = 0; /* a shape is present, maybe with no dims: a scalar */
                    pb_reader sr = pb_init(ttf.data, ttf.len);
                    pb_field sf;
                    while (pb_next(&sr, &sf)) {
                        if (sf.num != 1 || sf.wire != PB_LEN) continue;
                        if (v->rank == CS_MAX_RANK)
                            return cs_error_set(r->err, CS_ERR_UNSUPPORTED,
                                                "value '%s' has more than %d dimensions",
                                                v->name ? v->name : "", CS_MAX_RANK);
                        int d = v->rank++;
                        v->dims[d] = -1;
                        v->dim_names[d] = NULL;
                        pb_reader dr = pb_init(sf.data, sf.len);
                        pb_field df;
                        while (pb_next(&dr, &df)) {
                            if (df.num == 1 && df.wire == PB_VARINT) v->dims[d] = (int64_t)df.v;
                            if (df.num == 2 && df.wire == PB_LEN &&
                                !(v->dim_names[d] = dup_bytes(r, df.data, df.len)))
                                return nomem(r);
                        }
                        if (dr.bad) return malformed(r, "bad dimension");
                        if (v->dims[d] < -1) return malformed(r, "negative dimension");
                    }
                    if (sr.bad) return malformed(r, "bad shape");
                }
                if (ttr.bad) return malformed(r, "bad tensor type");
            }
            if (tr.bad) return malformed(r, "bad type");
            if (saw_tensor) *is_tensor = true;
        }
    }
    if (pr.bad) return malformed(r, "bad value info");
    if (!v->name) v->name = "";
    return CS_OK;
}

/* --- attributes and nodes ---------------------------------------------------------------- */

static cs_status parse_attr(reader *r, const uint8_t *buf, size_t len, cs__attr *a)
{
    memset(a, 0, sizeof *a);
    bool bad = false;
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    size_t n_strings = 0;
    while (pb_next(&pr, &f)) {
        switch (f.num) {
        case 1:
            if (f.wire != PB_LEN || !(a->name = dup_bytes(r, f.data, f.len)))
                return f.wire != PB_LEN ? malformed(r, "attribute name") : nomem(r);
            break;
        case 20: a->type = (cs__attr_type)f.v; break;
        case 2: {
            uint32_t b = (uint32_t)f.v;
            memcpy(&a->f, &b, 4);
            if (!a->type) a->type = CS__ATTR_FLOAT;
            break;
        }
        case 3:
            a->i = (int64_t)f.v;
            if (!a->type) a->type = CS__ATTR_INT;
            break;
        case 4:
            if (f.wire != PB_LEN) return malformed(r, "attribute string");
            if (!(a->s = dup_bytes(r, f.data, f.len))) return nomem(r);
            a->s_len = f.len;
            if (!a->type) a->type = CS__ATTR_STRING;
            break;
        case 5: {
            if (f.wire != PB_LEN) return malformed(r, "attribute tensor");
            cs_tensor *t = cs_arena_alloc(r->arena, sizeof *t, 8);
            if (!t) return nomem(r);
            cs_status rc = parse_tensor(r, f.data, f.len, t, NULL);
            if (rc) return rc;
            a->t = t;
            if (!a->type) a->type = CS__ATTR_TENSOR;
            break;
        }
        case 9: n_strings++; break;
        case 21:
            return cs_error_set(r->err, CS_ERR_UNSUPPORTED,
                                "attribute references (ref_attr_name) are only valid in functions");
        default: break;
        }
    }
    if (pr.bad) return malformed(r, "truncated attribute");
    if (!a->name) return malformed(r, "attribute without a name");

    if (a->type == CS__ATTR_FLOATS || a->type == CS__ATTR_INTS) {
        bool floats = a->type == CS__ATTR_FLOATS;
        int wire = floats ? PB_FIXED32 : PB_VARINT;
        uint32_t num = floats ? 7 : 8;
        size_t n = rep_count(buf, len, num, wire, &bad);
        if (bad || n > (size_t)1 << 24) return malformed(r, "bad attribute list");
        void *vals = cs_arena_alloc(r->arena, (n ? n : 1) * (floats ? 4 : 8), 8);
        if (!vals) return nomem(r);
        rep_iter it = rep_init(buf, len, num, wire);
        uint64_t v;
        for (size_t i = 0; i < n && rep_next(&it, &v, &bad); i++) {
            if (floats) {
                uint32_t b = (uint32_t)v;
                memcpy((float *)vals + i, &b, 4);
            } else {
                ((int64_t *)vals)[i] = (int64_t)v;
            }
        }
        a->n = (int)n;
        if (floats)
            a->floats = vals;
        else
            a->ints = vals;
    } else if (a->type == CS__ATTR_STRINGS) {
        const char **ss = cs_arena_alloc(r->arena, (n_strings ? n_strings : 1) * sizeof *ss, 8);
        if (!ss) return nomem(r);
        pb_reader sr = pb_init(buf, len);
        size_t k = 0;
        while (pb_next(&sr, &f))
            if (f.num == 9 && f.wire == PB_LEN && !(ss[k++] = dup_bytes(r, f.data, f.len)))
                return nomem(r);
        a->strings = ss;
        a->n = (int)k;
    }
    return CS_OK;
}

/* Reads a NodeProto's names and attributes; input/output names go to in_names/out_names
 * (arena arrays) for resolution once every value is known. */
static cs_status parse_node(reader *r, const uint8_t *buf, size_t len, cs__node *n,
                            const char ***in_names, const char ***out_names)
{
    memset(n, 0, sizeof *n);
    n->n_in = (int)count_field(buf, len, 1);
    n->n_out = (int)count_field(buf, len, 2);
    n->n_attr = (int)count_field(buf, len, 5);
    const char **ins = cs_arena_alloc(r->arena, (size_t)(n->n_in + 1) * sizeof *ins, 8);
    const char **outs = cs_arena_alloc(r->arena, (size_t)(n->n_out + 1) * sizeof *outs, 8);
    n->attr = cs_arena_zalloc(r->arena, (size_t)(n->n_attr + 1) * sizeof *n->attr, 8);
    n->in = cs_arena_alloc(r->arena, (size_t)(n->n_in + 1) * sizeof *n->in, 8);
    n->out = cs_arena_alloc(r->arena, (size_t)(n->n_out + 1) * sizeof *n->out, 8);
    if (!ins || !outs || !n->attr || !n->in || !n->out) return nomem(r);
    n->name = n->op_type = n->domain = "";
    int ki = 0, ko = 0, ka = 0;
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    while (pb_next(&pr, &f)) {
        if (f.wire != PB_LEN) continue;
        const char *s = NULL;
        if (f.num != 5 && !(s = dup_bytes(r, f.data, f.len))) return nomem(r);
        switch (f.num) {
        case 1: ins[ki++] = s; break;
        case 2: outs[ko++] = s; break;
        case 3: n->name = s; break;
        case 4: n->op_type = s; break;
        case 7: n->domain = s; break;
        case 5: {
            cs_status rc = parse_attr(r, f.data, f.len, &n->attr[ka++]);
            if (rc) return cs_error_prefix(r->err, "node '%s': ", n->name);
            break;
        }
        default: break;
        }
    }
    if (pr.bad) return malformed(r, "truncated node");
    n->n_in = ki; /* the counts above included fields of the wrong wire type */
    n->n_out = ko;
    n->n_attr = ka;
    if (!n->op_type[0]) return malformed(r, "node without op_type");
    *in_names = ins;
    *out_names = outs;
    return CS_OK;
}

/* --- the graph ------------------------------------------------------------------------- */

enum {
    G_NODE = 1,
    G_NAME = 2,
    G_INITIALIZER = 5,
    G_INPUT = 11,
    G_OUTPUT = 12,
    G_VALUE_INFO = 13,
    G_SPARSE_INITIALIZER = 15
};

/* Orders nodes so every input is produced before use (ONNX requires it, but producers do
 * not always comply). O(nodes^2) in the worst case, linear for sorted graphs. Fails on a
 * cycle. */
static cs_status topo_sort(reader *r, cs_model_t *m)
{
    char *ready = cs_arena_zalloc(r->arena, (size_t)m->n_values + 1, 1);
    char *done = cs_arena_zalloc(r->arena, (size_t)m->n_nodes + 1, 1);
    cs__node *sorted = cs_arena_alloc(r->arena, (size_t)(m->n_nodes + 1) * sizeof *sorted, 8);
    if (!ready || !done || !sorted) return nomem(r);
    for (int v = 0; v < m->n_values; v++) ready[v] = m->values[v].producer < 0;
    int placed = 0;
    while (placed < m->n_nodes) {
        int progress = 0;
        for (int i = 0; i < m->n_nodes; i++) {
            if (done[i]) continue;
            cs__node *n = &m->nodes[i];
            bool ok = true;
            for (int k = 0; k < n->n_in && ok; k++) ok = n->in[k] < 0 || ready[n->in[k]];
            if (!ok) continue;
            for (int k = 0; k < n->n_out; k++) ready[n->out[k]] = 1;
            sorted[placed++] = *n;
            done[i] = 1;
            progress = 1;
        }
        if (!progress)
            return cs_error_set(r->err, CS_ERR_PARSE,
                                "the graph has a cycle (or a node input "
                                "that no node produces)");
    }
    memcpy(m->nodes, sorted, (size_t)m->n_nodes * sizeof *sorted);
    for (int i = 0; i < m->n_nodes; i++)
        for (int k = 0; k < m->nodes[i].n_out; k++) m->values[m->nodes[i].out[k]].producer = i;
    return CS_OK;
}

static cs_status parse_graph(reader *r, const uint8_t *buf, size_t len)
{
    cs_model_t *m = r->m;
    cs_arena *a = r->arena;
    size_t n_nodes = count_field(buf, len, G_NODE), n_inits = count_field(buf, len, G_INITIALIZER),
           n_inputs = count_field(buf, len, G_INPUT), n_outputs = count_field(buf, len, G_OUTPUT);
    if (count_field(buf, len, G_SPARSE_INITIALIZER))
        return cs_error_set(r->err, CS_ERR_UNSUPPORTED, "sparse initializers are not supported");
    if (n_nodes > CS_ONNX_MAX_NODES) return malformed(r, "too many nodes");

    /* First pass over nodes: parse them and count their outputs. */
    m->nodes = cs_arena_zalloc(a, (n_nodes + 1) * sizeof *m->nodes, 8);
    const char ***in_names = cs_arena_alloc(a, (n_nodes + 1) * sizeof *in_names, 8);
    const char ***out_names = cs_arena_alloc(a, (n_nodes + 1) * sizeof *out_names, 8);
    if (!m->nodes || !in_names || !out_names) return nomem(r);
    size_t n_node_outputs = 0;
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    while (pb_next(&pr, &f)) {
        if (f.wire != PB_LEN) continue;
        if (f.num == G_NODE) {
            int i = m->n_nodes++;
            cs_status rc = parse_node(r, f.data, f.len, &m->nodes[i], &in_names[i], &out_names[i]);
            if (rc) return rc;
            n_node_outputs += (size_t)m->nodes[i].n_out;
        } else if (f.num == G_NAME) {
            if (!(m->graph_name = dup_bytes(r, f.data, f.len))) return nomem(r);
        }
    }
    if (pr.bad) return malformed(r, "truncated graph");

    size_t max_values = n_inputs + n_inits + n_node_outputs;
    m->values = cs_arena_zalloc(a, (max_values + 1) * sizeof *m->values, 8);
    m->inputs = cs_arena_alloc(a, (n_inputs + 1) * sizeof *m->inputs, 8);
    m->outputs = cs_arena_alloc(a, (n_outputs + 1) * sizeof *m->outputs, 8);
    name_table names;
    if (!m->values || !m->inputs || !m->outputs || !names_init(&names, a, max_values))
        return nomem(r);

    /* Graph inputs, then initializers (which may give an input its default). */
    pr = pb_init(buf, len);
    while (pb_next(&pr, &f)) {
        if (f.wire != PB_LEN || f.num != G_INPUT) continue;
        cs__value *v = &m->values[m->n_values];
        bool is_tensor;
        cs_status rc = parse_value_info(r, f.data, f.len, v, &is_tensor);
        if (rc) return rc;
        if (!is_tensor)
            return cs_error_set(r->err, CS_ERR_UNSUPPORTED,
                                "input '%s' is not a tensor (sequences, maps and optionals are "
                                "not supported)",
                                v->name);
        size_t slot = names_slot(&names, v->name);
        if (names.names[slot])
            return cs_error_set(r->err, CS_ERR_PARSE, "graph input '%s' is declared twice",
                                v->name);
        names.names[slot] = v->name;
        names.ids[slot] = m->n_values;
        v->producer = -1;
        v->is_input = 1;
        m->n_values++;
    }
    pr = pb_init(buf, len);
    while (pb_next(&pr, &f)) {
        if (f.wire != PB_LEN || f.num != G_INITIALIZER) continue;
        cs_tensor *t = cs_arena_alloc(a, sizeof *t, 8);
        const char *name;
        if (!t) return nomem(r);
        cs_status rc = parse_tensor(r, f.data, f.len, t, &name);
        if (rc) return rc;
        m->weight_bytes += (size_t)cs_tensor_numel(t) * cs_dtype_size(t->dtype);
        size_t slot = names_slot(&names, name);
        cs__value *v;
        if (names.names[slot]) {
            v = &m->values[names.ids[slot]];
            if (v->init)
                return cs_error_set(r->err, CS_ERR_PARSE, "initializer '%s' is given twice", name);
        } else {
            names.names[slot] = name;
            names.ids[slot] = m->n_values;
            v = &m->values[m->n_values++];
            v->name = name;
            v->producer = -1;
        }
        v->init = t;
        v->dtype = t->dtype;
        v->rank = t->rank;
        memcpy(v->dims, t->dims, sizeof v->dims);
    }
    /* The caller-facing inputs: every graph input (those with an initializer are optional
     * overrides, as ONNX IR 4 allows). Listed in declaration order. */
    for (int v = 0; v < m->n_values; v++)
        if (m->values[v].is_input) m->inputs[m->n_inputs++] = v;

    /* Node outputs define the remaining values; an unnamed output gets a fresh value. */
    for (int i = 0; i < m->n_nodes; i++) {
        cs__node *n = &m->nodes[i];
        for (int k = 0; k < n->n_out; k++) {
            const char *name = out_names[i][k];
            int id = m->n_values++;
            cs__value *v = &m->values[id];
            v->name = name;
            v->rank = -1;
            v->producer = i;
            n->out[k] = id;
            if (!name[0]) continue;
            size_t slot = names_slot(&names, name);
            if (names.names[slot])
                return cs_error_set(r->err, CS_ERR_PARSE,
                                    "value '%s' is produced twice (node '%s' and an earlier "
                                    "definition)",
                                    name, n->name);
            names.names[slot] = name;
            names.ids[slot] = id;
        }
    }
    for (int i = 0; i < m->n_nodes; i++) {
        cs__node *n = &m->nodes[i];
        for (int k = 0; k < n->n_in; k++) {
            const char *name = in_names[i][k];
            n->in[k] = name[0] ? names_get(&names, name) : -1;
            if (name[0] && n->in[k] < 0)
                return cs_error_set(r->err, CS_ERR_PARSE,
                                    "node '%s' (%s) reads '%s', which no node, input or "
                                    "initializer defines",
                                    n->name, n->op_type, name);
        }
    }

    /* Outputs and value_info: declared types and shapes. */
    pr = pb_init(buf, len);
    while (pb_next(&pr, &f)) {
        if (f.wire != PB_LEN || (f.num != G_OUTPUT && f.num != G_VALUE_INFO)) continue;
        cs__value info = {0};
        bool is_tensor;
        cs_status rc = parse_value_info(r, f.data, f.len, &info, &is_tensor);
        if (rc) return rc;
        int id = names_get(&names, info.name);
        if (f.num == G_VALUE_INFO) {
            if (id >= 0 && !m->values[id].init && !m->values[id].is_input) {
                cs__value *v = &m->values[id];
                v->dtype = info.dtype;
                v->rank = info.rank;
                memcpy(v->dims, info.dims, sizeof v->dims);
                memcpy(v->dim_names, info.dim_names, sizeof v->dim_names);
            }
            continue;
        }
        if (id < 0)
            return cs_error_set(r->err, CS_ERR_PARSE,
                                "graph output '%s' is not produced by any "
                                "node, input or initializer",
                                info.name);
        if (!is_tensor)
            return cs_error_set(r->err, CS_ERR_UNSUPPORTED,
                                "output '%s' is not a tensor (sequences, maps and optionals are "
                                "not supported)",
                                info.name);
        cs__value *v = &m->values[id];
        if (!v->init && !v->is_input) {
            v->dtype = info.dtype;
            v->rank = info.rank;
            memcpy(v->dims, info.dims, sizeof v->dims);
            memcpy(v->dim_names, info.dim_names, sizeof v->dim_names);
        }
        v->is_output = 1;
        m->outputs[m->n_outputs++] = id;
    }
    return topo_sort(r, m);
}

/* --- the model ------------------------------------------------------------------------- */

enum { M_IR_VERSION = 1, M_PRODUCER = 2, M_GRAPH = 7, M_OPSET = 8, M_METADATA = 14 };

cs_status cs__onnx_parse_model(cs_model_t *m, const uint8_t *buf, size_t len, const char *base_dir,
                               cs_error *err)
{
    reader r = {m, &m->arena, base_dir, false, err};
    m->producer = m->graph_name = "";
    size_t n_opsets = count_field(buf, len, M_OPSET), n_meta = count_field(buf, len, M_METADATA);
    m->opsets = cs_arena_zalloc(&m->arena, (n_opsets + 1) * sizeof *m->opsets, 8);
    m->meta = cs_arena_zalloc(&m->arena, (n_meta + 1) * sizeof *m->meta, 8);
    if (!m->opsets || !m->meta) return nomem(&r);
    const uint8_t *graph = NULL;
    size_t graph_len = 0;
    pb_reader pr = pb_init(buf, len);
    pb_field f;
    while (pb_next(&pr, &f)) {
        switch (f.num) {
        case M_IR_VERSION: m->ir_version = (int64_t)f.v; break;
        case M_PRODUCER:
            if (f.wire == PB_LEN && !(m->producer = dup_bytes(&r, f.data, f.len))) return nomem(&r);
            break;
        case M_GRAPH:
            if (f.wire != PB_LEN) return malformed(&r, "graph");
            graph = f.data;
            graph_len = f.len;
            break;
        case M_OPSET:
        case M_METADATA: {
            if (f.wire != PB_LEN) return malformed(&r, "opset_import or metadata_props");
            pb_reader sr = pb_init(f.data, f.len);
            pb_field sf;
            const char *key = "", *val = "";
            int64_t version = 0;
            while (pb_next(&sr, &sf)) {
                if (sf.num == 1 && sf.wire == PB_LEN && !(key = dup_bytes(&r, sf.data, sf.len)))
                    return nomem(&r);
                if (sf.num == 2 && sf.wire == PB_LEN && !(val = dup_bytes(&r, sf.data, sf.len)))
                    return nomem(&r);
                if (sf.num == 2 && sf.wire == PB_VARINT) version = (int64_t)sf.v;
            }
            if (sr.bad) return malformed(&r, "opset_import or metadata_props");
            if (f.num == M_OPSET)
                m->opsets[m->n_opsets++] = (cs__opset){key, version};
            else
                m->meta[m->n_meta++] = (cs__meta){key, val};
            break;
        }
        default: break;
        }
    }
    if (pr.bad) return malformed(&r, "truncated or corrupt model file");
    if (!graph) return cs_error_set(err, CS_ERR_PARSE, "malformed ONNX: the model has no graph");
    if (m->n_opsets == 0) /* IR version 1/2 models without opset_import mean opset 1 */
        m->opsets[m->n_opsets++] = (cs__opset){"", 1};
    cs_status rc = parse_graph(&r, graph, graph_len);
    if (rc) return rc;

    for (int i = 0; i < m->n_nodes; i++) {
        cs__node *n = &m->nodes[i];
        n->opset = cs_model_opset(m, n->domain);
        if (n->opset == 0)
            return cs_error_set(err, CS_ERR_UNSUPPORTED,
                                "node '%s' (%s) uses domain '%s', which the model does not import",
                                n->name, n->op_type, n->domain);
    }
    return CS_OK;
}
