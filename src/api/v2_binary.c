/*
 * v2_binary.c - Triton's binary tensor data extension.
 *
 * A binary request is a JSON header (Inference-Header-Content-Length bytes) followed by the
 * raw bytes of every input whose parameters carry binary_data_size, in input order:
 * little-endian, row-major, BOOL as one byte, BYTES as 4-byte length + bytes per element.
 * A header length of 0 means the body is the raw bytes of a single-input model's input.
 * Input bytes are copied once into 64-byte-aligned request memory: they sit at arbitrary
 * offsets in the body, and kernels may use aligned vector loads.
 */
#include "api/api.h"

#include <inttypes.h>
#include <string.h>

/* Checks that [p, p + len) is exactly n serialised BYTES elements. */
static bool bytes_well_formed(const char *p, size_t len, int64_t n)
{
    size_t off = 0;
    for (int64_t i = 0; i < n; i++) {
        uint32_t el;
        if (len - off < 4) return false;
        memcpy(&el, p + off, 4);
        if (len - off - 4 < el) return false;
        off += 4 + (size_t)el;
    }
    return off == len;
}

/* Points in->t at a copy of bytes [p, p + size) after checking size against the shape. */
static cs_status bind_bytes(cs_v2_input *in, const char *p, size_t size, cs_arena *a, cs_error *err)
{
    cs_tensor *t = &in->t;
    *t = (cs_tensor){.dtype = in->dtype, .rank = in->rank};
    memcpy(t->dims, in->dims, sizeof t->dims);
    int64_t n = cs_tensor_numel(t);
    if (in->dtype == CS_DTYPE_STRING) {
        if (!bytes_well_formed(p, size, n))
            return cs_error_set(err, CS_ERR_INVALID,
                                "input '%s': %zu bytes are not %" PRId64
                                " BYTES elements (4-byte length, then the bytes, each)",
                                in->name, size, n);
    } else if ((size_t)n * cs_dtype_size(in->dtype) != size) {
        return cs_error_set(
            err, CS_ERR_INVALID, "input '%s': shape and %s need %zu bytes, binary_data_size is %zu",
            in->name, cs_v2_dtype_name(in->dtype), (size_t)n * cs_dtype_size(in->dtype), size);
    }
    t->data = cs_arena_alloc(a, size ? size : 1, 64);
    if (!t->data) return cs_error_set(err, CS_ERR_NOMEM, "input '%s': out of memory", in->name);
    memcpy(t->data, p, size);
    in->bytes = size;
    return CS_OK;
}

/* The outputs' form, once the inputs are bound: an output's binary_data first, then the
 * request's binary_data_output, then `binary` (whether the inputs came binary). */
static void settle_outputs(cs_v2_request *req, bool binary)
{
    if (req->binary_output < 0) req->binary_output = binary;
    for (int k = 0; k < req->n_outputs; k++)
        if (req->outputs[k].binary < 0) req->outputs[k].binary = req->binary_output;
}

cs_status cs_v2_bind_inputs(cs_v2_request *req, const char *body, size_t len, size_t header_len,
                            cs_arena *a, cs_error *err)
{
    size_t off = header_len;
    bool any_binary = false;
    for (int i = 0; i < req->n_inputs; i++) {
        cs_v2_input *in = &req->inputs[i];
        cs_status rc;
        if (in->binary_size < 0) {
            rc = cs_v2_decode_data(in, a, err);
        } else if ((uint64_t)in->binary_size > len - off) {
            rc = cs_error_set(err, CS_ERR_INVALID,
                              "input '%s': binary_data_size %" PRId64
                              " runs past the end of the body (%zu bytes left)",
                              in->name, in->binary_size, len - off);
        } else {
            rc = bind_bytes(in, body + off, (size_t)in->binary_size, a, err);
            off += (size_t)in->binary_size;
            any_binary = true;
        }
        if (rc != CS_OK) return rc;
    }
    if (off != len)
        return cs_error_set(err, CS_ERR_INVALID,
                            "%zu bytes follow the last binary input (check binary_data_size and "
                            "Inference-Header-Content-Length)",
                            len - off);
    settle_outputs(req, any_binary);
    return CS_OK;
}

cs_status cs_v2_raw_request(const cs_model_t *m, const char *body, size_t len,
                            const cs_api_limits *lim, cs_arena *a, cs_v2_request *out,
                            cs_error *err)
{
    *out = (cs_v2_request){.binary_output = 1};
    if (cs_model_input_count(m) != 1)
        return cs_error_set(err, CS_ERR_INVALID,
                            "a raw body (Inference-Header-Content-Length: 0) needs a model with "
                            "one input; this one has %d: send a JSON header",
                            cs_model_input_count(m));
    cs_value_info vi = cs_model_input(m, 0);
    size_t esize = cs_dtype_size(vi.dtype);
    if (esize == 0 || vi.rank < 0)
        return cs_error_set(err, CS_ERR_INVALID,
                            "input '%s': a raw body needs a fixed-size type and a declared "
                            "shape; send a JSON header",
                            vi.name);
    /* Every dimension but one must be known: that one is whatever the size leaves. */
    int dynamic = -1;
    size_t row = esize;
    for (int d = 0; d < vi.rank; d++) {
        if (vi.dims[d] >= 0) {
            row *= (size_t)vi.dims[d];
        } else if (dynamic >= 0) {
            return cs_error_set(err, CS_ERR_INVALID,
                                "input '%s' has more than one dynamic dimension, so a raw body's "
                                "shape is ambiguous; send a JSON header",
                                vi.name);
        } else {
            dynamic = d;
        }
    }
    if (row == 0 || len % row != 0 || (dynamic < 0 && len != row))
        return cs_error_set(err, CS_ERR_INVALID,
                            "input '%s': a raw body of %zu bytes does not fit its shape (a "
                            "multiple of %zu bytes of %s)",
                            vi.name, len, row, cs_dtype_name(vi.dtype));
    if ((int64_t)(len / esize) > lim->max_elements)
        return cs_error_set(err, CS_ERR_LIMIT, "input '%s': more than %" PRId64 " elements",
                            vi.name, lim->max_elements);
    cs_v2_input *in = cs_arena_zalloc(a, sizeof *in, 16);
    if (!in) return cs_error_set(err, CS_ERR_NOMEM, "out of memory");
    *in = (cs_v2_input){
        .name = vi.name, .dtype = vi.dtype, .rank = vi.rank, .binary_size = (int64_t)len};
    for (int d = 0; d < vi.rank; d++)
        in->dims[d] = d == dynamic ? (int64_t)(len / row) : vi.dims[d];
    out->inputs = in;
    out->n_inputs = 1;
    return bind_bytes(in, body, len, a, err);
}

cs_status cs_v2_put_binary_data(cs_sbuf *b, const cs_tensor *t, cs_error *err)
{
    if (cs_sbuf_append(b, t->data, cs_v2_tensor_bytes(t)) != CS_OK)
        return cs_error_set(err, CS_ERR_NOMEM, "response too large for memory");
    return CS_OK;
}
