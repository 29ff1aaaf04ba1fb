/*
 * dra_yaml_fuzz.c - libFuzzer target for the DRA YAML reader: any bytes are read as a
 * stream of DeviceClasses, ResourceSlices and ResourceClaims; what reads is allocated
 * (with a small search budget, so slow inputs stay fast) and written back as YAML and JSON.
 */
#include "devices/dra.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cs_dra_set set;
    cs_dra_set_init(&set);
    cs_error err;
    if (cs_dra_read(&set, (const char *)data, size, "fuzz", &err) == CS_OK) {
        cs_dra_options opt = {.policy = size % 2 ? CS_DRA_POLICY_BEST_FIT : CS_DRA_POLICY_FIRST,
                              .max_steps = 10000};
        if (cs_dra_allocate(&set, &opt, &err) == CS_OK) {
            cs_sbuf out;
            cs_sbuf_init(&out, 0);
            cs_dra_write_claims(&set, false, &out, &err);
            cs_dra_write_claims(&set, true, &out, &err);
            cs_sbuf_free(&out);
        }
    }
    cs_dra_set_free(&set);
    return 0;
}
