/*
 * dtype.c - element type names and sizes, element counts of tensors and shapes in messages
 * (public API).
 */
#include "capstan/engine.h"

#include <stdio.h>

const char *cs_dtype_name(cs_dtype t)
{
    switch (t) {
    case CS_DTYPE_FLOAT32: return "float32";
    case CS_DTYPE_UINT8: return "uint8";
    case CS_DTYPE_INT8: return "int8";
    case CS_DTYPE_UINT16: return "uint16";
    case CS_DTYPE_INT16: return "int16";
    case CS_DTYPE_INT32: return "int32";
    case CS_DTYPE_INT64: return "int64";
    case CS_DTYPE_STRING: return "string";
    case CS_DTYPE_BOOL: return "bool";
    case CS_DTYPE_FLOAT16: return "float16";
    case CS_DTYPE_FLOAT64: return "float64";
    case CS_DTYPE_UINT32: return "uint32";
    case CS_DTYPE_UINT64: return "uint64";
    case CS_DTYPE_BFLOAT16: return "bfloat16";
    default: return "undefined";
    }
}

size_t cs_dtype_size(cs_dtype t)
{
    switch (t) {
    case CS_DTYPE_BOOL:
    case CS_DTYPE_UINT8:
    case CS_DTYPE_INT8: return 1;
    case CS_DTYPE_UINT16:
    case CS_DTYPE_INT16:
    case CS_DTYPE_FLOAT16:
    case CS_DTYPE_BFLOAT16: return 2;
    case CS_DTYPE_FLOAT32:
    case CS_DTYPE_INT32:
    case CS_DTYPE_UINT32: return 4;
    case CS_DTYPE_FLOAT64:
    case CS_DTYPE_INT64:
    case CS_DTYPE_UINT64: return 8;
    default: return 0;
    }
}

int64_t cs_tensor_numel(const cs_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dims[i];
    return n;
}

const char *cs_shape_format(char *buf, size_t cap, int rank, const int64_t *dims,
                            const char *const *names)
{
    if (cap == 0) return buf;
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < rank && n < cap; d++) {
        const char *sep = d ? "," : "";
        if (dims[d] >= 0)
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", sep, (long long)dims[d]);
        else
            n +=
                (size_t)snprintf(buf + n, cap - n, "%s%s", sep, names && names[d] ? names[d] : "?");
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}
