/*
 * dtype.c - element type names and sizes, and element counts of tensors (public API).
 */
#include "capstan/engine.h"

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
