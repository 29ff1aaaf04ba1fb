/*
 * pbtxt_fuzz.c - libFuzzer target for the config.pbtxt reader: any bytes are read as
 * protobuf text; what reads is taken as a Triton model configuration (leniently, as a
 * repository file is, and strictly, as the API's `config` is) and written back as JSON.
 */
#include "api/pbtxt.h"
#include "api/triton_config.h"

#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = NULL;
    cs_error err;
    if (cs_pbtxt_parse((const char *)data, size, &j, &err) != CS_OK) return 0;
    static cs_triton_config tc; /* large: off the stack */
    char warnings[512];
    (void)cs_triton_config_read(j, false, &tc, warnings, sizeof warnings, &err);
    (void)cs_triton_config_read(j, true, &tc, NULL, 0, &err);
    char *s = json_dumps(j, JSON_COMPACT);
    free(s);
    json_decref(j);
    return 0;
}
