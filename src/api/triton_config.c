/*
 * triton_config.c - Triton's model configuration: read (JSON or config.pbtxt), checked
 * against a model, applied to its serving options, and written back as JSON. See
 * triton_config.h for the fields honoured.
 *
 * Protobuf's JSON mapping writes 64-bit integers as strings ("dims": ["-1", "8"]), so
 * integers are read from either form; a repeated field of one element may come as that
 * element alone (pbtxt's reading cannot tell). Everything is bounded by the fixed arrays of
 * cs_triton_config; reading costs O(size of j).
 */
#include "api/triton_config.h"

#include "api/api.h"
#include "api/pbtxt.h"
#include "base/alloc.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void cs_triton_config_defaults(cs_triton_config *tc)
{
    *tc = (cs_triton_config){.max_batch_size = -1,
                             .max_queue_delay_us = -1,
                             .policy = CS_TRITON_POLICY_LATEST,
                             .latest = 1};
}

typedef struct reader {
    bool strict;
    char *warnings;
    size_t cap;
    cs_error *err;
} reader;

/* A field tc does not honour: an error when strict, else a warning. */
static bool unknown(reader *rd, const char *where, const char *key)
{
    if (rd->strict) {
        cs_error_set(rd->err, CS_ERR_INVALID, "config: field '%s%s%s' is not supported", where,
                     where[0] ? "." : "", key);
        return false;
    }
    if (rd->warnings) {
        size_t n = strlen(rd->warnings);
        snprintf(rd->warnings + n, rd->cap - n, "%s%s%s%s", n ? ", " : "", where,
                 where[0] ? "." : "", key);
    }
    return true;
}

static bool bad(reader *rd, const char *field, const char *what)
{
    cs_error_set(rd->err, CS_ERR_INVALID, "config: %s %s", field, what);
    return false;
}

/* An integer (or its decimal string) in [lo, hi]. */
static bool int_of(reader *rd, const json_t *v, const char *field, int64_t lo, int64_t hi,
                   int64_t *out)
{
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *e;
        errno = 0;
        long long l = strtoll(json_string_value(v), &e, 10);
        if (errno || e == json_string_value(v) || *e) return bad(rd, field, "must be an integer");
        x = l;
    } else {
        return bad(rd, field, "must be an integer");
    }
    if (x < lo || x > hi) {
        cs_error_set(rd->err, CS_ERR_INVALID,
                     "config: %s is %" PRId64 ", allowed %" PRId64 "..%" PRId64, field, x, lo, hi);
        return false;
    }
    *out = x;
    return true;
}

/* v as a list: itself when an array, else a list of v alone. */
static size_t list_len(const json_t *v)
{
    return json_is_array(v) ? json_array_size(v) : 1;
}

static const json_t *list_at(const json_t *v, size_t i)
{
    return json_is_array(v) ? json_array_get(v, i) : v;
}

static bool string_of(reader *rd, const json_t *v, const char *field, char *out, size_t cap)
{
    if (!json_is_string(v) || json_string_length(v) >= cap || json_string_length(v) == 0)
        return bad(rd, field, "must be a non-empty string of fewer than 128 bytes");
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return true;
}

static bool read_io(reader *rd, const json_t *list, bool input, cs_triton_config *tc)
{
    const char *what = input ? "input" : "output";
    size_t n = list_len(list);
    if (n > CS_TRITON_MAX_IO) return bad(rd, what, "has more than 64 entries");
    for (size_t i = 0; i < n; i++) {
        const json_t *e = list_at(list, i);
        cs_triton_io *io = input ? &tc->inputs[i] : &tc->outputs[i];
        *io = (cs_triton_io){.dtype = CS_DTYPE_UNDEFINED, .rank = -1};
        char where[32];
        snprintf(where, sizeof where, "%s[%zu]", what, i);
        if (!json_is_object(e)) return bad(rd, where, "must be an object");
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)e, key, v)
        {
            char field[64];
            snprintf(field, sizeof field, "%s.%s", where, key);
            if (!strcmp(key, "name")) {
                if (!string_of(rd, v, field, io->name, sizeof io->name)) return false;
            } else if (!strcmp(key, "data_type")) {
                const char *s = json_string_value(v);
                if (s && !strncmp(s, "TYPE_", 5))
                    io->dtype =
                        !strcmp(s + 5, "STRING") ? CS_DTYPE_STRING : cs_v2_dtype_parse(s + 5);
                if (!s || strncmp(s, "TYPE_", 5) || io->dtype == CS_DTYPE_UNDEFINED ||
                    !strcmp(s + 5, "BYTES"))
                    return bad(rd, field,
                               "must be a Triton data type (TYPE_BOOL, TYPE_UINT8..TYPE_UINT64, "
                               "TYPE_INT8..TYPE_INT64, TYPE_FP16, TYPE_FP32, TYPE_FP64, TYPE_BF16, "
                               "TYPE_STRING)");
            } else if (!strcmp(key, "dims")) {
                size_t r = list_len(v);
                if (r > CS_MAX_RANK) return bad(rd, field, "has more than 8 dimensions");
                for (size_t d = 0; d < r; d++)
                    if (!int_of(rd, list_at(v, d), field, -1, INT32_MAX, &io->dims[d]))
                        return false;
                io->rank = (int)r;
            } else if (!strcmp(key, "format") || !strcmp(key, "is_shape_tensor") ||
                       !strcmp(key, "optional") || !strcmp(key, "allow_ragged_batch") ||
                       !strcmp(key, "label_filename") || !strcmp(key, "is_non_linear_format_io")) {
                /* Written by GET .../config (as Triton writes them) or descriptive only:
                 * read back, without effect. */
            } else if (!unknown(rd, where, key)) {
                return false;
            }
        }
        if (!io->name[0]) return bad(rd, where, "needs a \"name\"");
    }
    if (input)
        tc->n_inputs = (int)n;
    else
        tc->n_outputs = (int)n;
    return true;
}

static bool read_batching(reader *rd, const json_t *db, cs_triton_config *tc)
{
    if (!json_is_object(db)) return bad(rd, "dynamic_batching", "must be an object");
    tc->dynamic_batching = true;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)db, key, v)
    {
        if (!strcmp(key, "preferred_batch_size")) {
            size_t n = list_len(v);
            if (n > CS_RT_MAX_PREFERRED)
                return bad(rd, "dynamic_batching.preferred_batch_size", "has more than 8 sizes");
            for (size_t i = 0; i < n; i++) {
                int64_t x;
                if (!int_of(rd, list_at(v, i), "dynamic_batching.preferred_batch_size", 1, 65536,
                            &x))
                    return false;
                tc->preferred[i] = (int)x;
            }
            tc->n_preferred = (int)n;
        } else if (!strcmp(key, "max_queue_delay_microseconds")) {
            if (!int_of(rd, v, "dynamic_batching.max_queue_delay_microseconds", 0, 60000000,
                        &tc->max_queue_delay_us))
                return false;
        } else if (!unknown(rd, "dynamic_batching", key)) {
            return false;
        }
    }
    return true;
}

static bool read_instances(reader *rd, const json_t *groups, cs_triton_config *tc)
{
    int total = 0;
    for (size_t i = 0; i < list_len(groups); i++) {
        const json_t *g = list_at(groups, i);
        if (!json_is_object(g)) return bad(rd, "instance_group", "entries must be objects");
        int64_t count = 1; /* Triton's default */
        const char *key;
        const json_t *v;
        json_object_foreach((json_t *)g, key, v)
        {
            if (!strcmp(key, "count")) {
                if (!int_of(rd, v, "instance_group.count", 1, 256, &count)) return false;
            } else if (!strcmp(key, "kind")) {
                const char *k = json_string_value(v);
                if (!k ||
                    (strcmp(k, "KIND_CPU") && strcmp(k, "KIND_AUTO") && strcmp(k, "KIND_GPU")))
                    return bad(rd, "instance_group.kind",
                               "must be KIND_CPU, KIND_GPU or KIND_AUTO");
            } else if (!strcmp(key, "name") || !strcmp(key, "gpus")) {
                /* placement is the runtime's (DRA claims), not the file's */
            } else if (!unknown(rd, "instance_group", key)) {
                return false;
            }
        }
        total += (int)count;
        if (total > 256) return bad(rd, "instance_group", "counts add up to more than 256");
    }
    tc->instances = total;
    return true;
}

static bool read_policy(reader *rd, const json_t *vp, cs_triton_config *tc)
{
    const json_t *v;
    if (!json_is_object(vp) || json_object_size(vp) != 1)
        return bad(rd, "version_policy", "must hold one of latest, all or specific");
    if ((v = json_object_get(vp, "latest"))) {
        int64_t n = 1;
        const json_t *nv = json_object_get(v, "num_versions");
        if (!json_is_object(v)) return bad(rd, "version_policy.latest", "must be an object");
        if (nv &&
            !int_of(rd, nv, "version_policy.latest.num_versions", 1, CS_TRITON_MAX_VERSIONS, &n))
            return false;
        tc->policy = CS_TRITON_POLICY_LATEST;
        tc->latest = (int)n;
    } else if ((v = json_object_get(vp, "all"))) {
        tc->policy = CS_TRITON_POLICY_ALL;
    } else if ((v = json_object_get(vp, "specific"))) {
        const json_t *vs = json_object_get(v, "versions");
        size_t n = vs ? list_len(vs) : 0;
        if (n == 0 || n > CS_TRITON_MAX_VERSIONS)
            return bad(rd, "version_policy.specific.versions", "must list 1..64 versions");
        for (size_t i = 0; i < n; i++)
            if (!int_of(rd, list_at(vs, i), "version_policy.specific.versions", 1, INT64_MAX,
                        &tc->versions[i]))
                return false;
        tc->policy = CS_TRITON_POLICY_SPECIFIC;
        tc->n_versions = (int)n;
    } else {
        return bad(rd, "version_policy", "must be latest, all or specific");
    }
    return true;
}

cs_status cs_triton_config_read(const json_t *j, bool strict, cs_triton_config *tc, char *warnings,
                                size_t cap, cs_error *err)
{
    cs_error_clear(err);
    cs_triton_config_defaults(tc);
    if (warnings && cap) warnings[0] = '\0';
    reader rd = {strict, cap ? warnings : NULL, cap, err};
    if (!json_is_object(j)) return cs_error_set(err, CS_ERR_INVALID, "config must be an object");
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)j, key, v)
    {
        bool ok = true;
        if (!strcmp(key, "name")) {
            ok = string_of(&rd, v, "name", tc->name, sizeof tc->name);
        } else if (!strcmp(key, "platform") || !strcmp(key, "backend")) {
            const char *s = json_string_value(v);
            if (!s || (strcmp(s, "onnxruntime_onnx") && strcmp(s, "onnxruntime") &&
                       strcmp(s, "onnx_onnxv1") && strcmp(s, "onnx")))
                ok = bad(&rd, key,
                         "must name ONNX (onnxruntime_onnx, onnxruntime): capstan serves "
                         "ONNX models");
        } else if (!strcmp(key, "max_batch_size")) {
            int64_t x;
            ok = int_of(&rd, v, "max_batch_size", 0, 65536, &x);
            tc->max_batch_size = (int)x;
        } else if (!strcmp(key, "input") || !strcmp(key, "output")) {
            ok = read_io(&rd, v, key[0] == 'i', tc);
        } else if (!strcmp(key, "instance_group")) {
            ok = read_instances(&rd, v, tc);
        } else if (!strcmp(key, "dynamic_batching")) {
            ok = read_batching(&rd, v, tc);
        } else if (!strcmp(key, "version_policy")) {
            ok = read_policy(&rd, v, tc);
        } else if (!strcmp(key, "default_model_filename")) {
            const char *s = json_string_value(v);
            if (!s || strcmp(s, "model.onnx"))
                ok = bad(&rd, "default_model_filename", "must be model.onnx");
        } else {
            ok = unknown(&rd, "", key);
        }
        if (!ok) return err->code;
    }
    if (tc->n_preferred && tc->max_batch_size >= 0)
        for (int i = 0; i < tc->n_preferred; i++)
            if (tc->preferred[i] > tc->max_batch_size)
                return cs_error_set(err, CS_ERR_INVALID,
                                    "config: dynamic_batching.preferred_batch_size %d is above "
                                    "max_batch_size %d",
                                    tc->preferred[i], tc->max_batch_size);
    return CS_OK;
}

cs_status cs_triton_config_load(const char *path, cs_triton_config *tc, char *warnings, size_t cap,
                                cs_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return cs_error_set(err, CS_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
    size_t max = 1 << 20;
    char *buf = cs_malloc(max + 1);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    fclose(f);
    cs_status rc;
    json_t *j = NULL;
    if (!buf)
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    else if (n > max)
        rc = cs_error_set(err, CS_ERR_LIMIT, "%s: larger than 1 MiB", path);
    else if ((rc = cs_pbtxt_parse(buf, n, &j, err)) == CS_OK)
        rc = cs_triton_config_read(j, false, tc, warnings, cap, err);
    if (rc != CS_OK && buf) cs_error_prefix(err, "%s: ", path);
    json_decref(j);
    cs_free(buf);
    return rc;
}

/* Whether io (dims without the batch dimension when batched) fits v. */
static cs_status check_io(const cs_triton_io *io, cs_value_info v, bool batched, bool input,
                          cs_error *err)
{
    const char *what = input ? "input" : "output";
    if (io->dtype != CS_DTYPE_UNDEFINED && io->dtype != v.dtype)
        return cs_error_set(err, CS_ERR_INVALID, "config: %s '%s' has data_type %s, the model %s",
                            what, io->name, cs_dtype_name(io->dtype), cs_dtype_name(v.dtype));
    if (io->rank < 0 || v.rank < 0) return CS_OK;
    int off = batched ? 1 : 0;
    bool ok = v.rank == io->rank + off;
    for (int d = 0; ok && d < io->rank; d++)
        ok = io->dims[d] < 0 || v.dims[d + off] < 0 || io->dims[d] == v.dims[d + off];
    if (!ok)
        return cs_error_set(err, CS_ERR_INVALID,
                            "config: %s '%s': dims do not fit the model's shape (rank %d%s)", what,
                            io->name, v.rank, batched ? ", the first dimension the batch" : "");
    return CS_OK;
}

cs_status cs_triton_config_apply(const cs_triton_config *tc, const cs_model_t *m,
                                 cs_model_config *cfg, bool *batch_given, cs_error *err)
{
    bool batched = tc->max_batch_size > 0;
    for (int k = 0; k < 2; k++) {
        bool input = k == 0;
        int n = input ? tc->n_inputs : tc->n_outputs;
        for (int i = 0; i < n; i++) {
            const cs_triton_io *io = input ? &tc->inputs[i] : &tc->outputs[i];
            int count = input ? cs_model_input_count(m) : cs_model_output_count(m), j = 0;
            while (j < count &&
                   strcmp((input ? cs_model_input(m, j) : cs_model_output(m, j)).name, io->name))
                j++;
            if (j == count)
                return cs_error_set(err, CS_ERR_INVALID, "config: the model has no %s '%s'",
                                    input ? "input" : "output", io->name);
            cs_status rc = check_io(io, input ? cs_model_input(m, j) : cs_model_output(m, j),
                                    batched, input, err);
            if (rc != CS_OK) return rc;
        }
    }
    *batch_given = tc->max_batch_size >= 0;
    if (tc->max_batch_size >= 0) {
        cfg->max_batch_size = tc->max_batch_size;
        /* Without dynamic_batching, Triton runs requests as they come: no waiting. */
        cfg->max_queue_delay_us = 0;
        cfg->n_preferred = 0;
    }
    if (tc->dynamic_batching) {
        if (tc->max_queue_delay_us >= 0) cfg->max_queue_delay_us = (uint64_t)tc->max_queue_delay_us;
        memcpy(cfg->preferred_batch_sizes, tc->preferred, sizeof tc->preferred);
        cfg->n_preferred = tc->n_preferred;
    }
    if (tc->instances) cfg->instances = tc->instances;
    return CS_OK;
}

static json_t *io_json(const cs_model_t *m, bool input, bool batched)
{
    json_t *list = json_array();
    int n = input ? cs_model_input_count(m) : cs_model_output_count(m);
    for (int i = 0; list && i < n; i++) {
        cs_value_info v = input ? cs_model_input(m, i) : cs_model_output(m, i);
        json_t *dims = json_array();
        if (v.rank < 0) json_array_append_new(dims, json_integer(-1));
        for (int d = batched ? 1 : 0; dims && d < v.rank; d++)
            json_array_append_new(dims, json_integer(v.dims[d]));
        const char *dt = v.dtype == CS_DTYPE_STRING ? "STRING" : cs_v2_dtype_name(v.dtype);
        char type[32];
        snprintf(type, sizeof type, "TYPE_%s", dt ? dt : "INVALID");
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:o}", "name", v.name, "data_type",
                                                  type, "dims", dims)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

json_t *cs_triton_config_json(const char *name, const cs_model_t *m, const cs_model_config *cfg,
                              const cs_triton_config *policy)
{
    bool batched = cfg->max_batch_size > 0;
    json_t *vp = NULL;
    if (!policy || policy->policy == CS_TRITON_POLICY_LATEST) {
        vp = json_pack("{s:{s:i}}", "latest", "num_versions", policy ? policy->latest : 1);
    } else if (policy->policy == CS_TRITON_POLICY_ALL) {
        vp = json_pack("{s:{}}", "all");
    } else {
        json_t *vs = json_array();
        for (int i = 0; vs && i < policy->n_versions; i++)
            json_array_append_new(vs, json_integer(policy->versions[i]));
        vp = json_pack("{s:{s:o}}", "specific", "versions", vs);
    }
    char group[CS_TRITON_NAME_MAX + 8];
    snprintf(group, sizeof group, "%s_0", name);
    json_t *j =
        json_pack("{s:s, s:s, s:s, s:o, s:i, s:o, s:o, s:[{s:s, s:s, s:i}]}", "name", name,
                  "platform", "onnxruntime_onnx", "backend", "onnxruntime", "version_policy", vp,
                  "max_batch_size", cfg->max_batch_size, "input", io_json(m, true, batched),
                  "output", io_json(m, false, batched), "instance_group", "name", group, "kind",
                  "KIND_CPU", "count", cfg->instances);
    if (j && batched) {
        json_t *pref = json_array();
        for (int i = 0; pref && i < cfg->n_preferred; i++)
            json_array_append_new(pref, json_integer(cfg->preferred_batch_sizes[i]));
        json_object_set_new(j, "dynamic_batching",
                            json_pack("{s:o, s:I}", "preferred_batch_size", pref,
                                      "max_queue_delay_microseconds",
                                      (json_int_t)cfg->max_queue_delay_us));
    }
    return j;
}
