/*
 * tensor_fuzz.c - libFuzzer target for the TensorProto reader (test data and attributes).
 */
#include "engine/onnx.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_arena a;
    cs_arena_init(&a, 4096);
    a.limit = (size_t)1 << 28; /* bounded like a server would: huge shapes fail cleanly */
    cs_tensor t;
    cs_error err;
    const char *name;
    if (cs__onnx_parse_tensor(data, size, &a, &t, &name, &err) == CS_OK) {
        volatile size_t n = (size_t)cs_tensor_numel(&t) * cs_dtype_size(t.dtype);
        if (n) ((volatile uint8_t *)t.data)[n - 1];
    }
    cs_arena_free(&a);
    return 0;
}
