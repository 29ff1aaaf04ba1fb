/*
 * device.c - devices and precisions by name, and the backend that serves a device.
 *
 * Names follow PyTorch's and ONNX Runtime's: "cpu", "cuda", "cuda:N"; precisions as
 * TensorRT's builder flags say them: fp32, tf32, fp16, bf16.
 */
#include "engine/backend.h"
#include "engine/cuda/cuda_be.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const precision_names[] = {"fp32", "tf32", "fp16", "bf16"};
#define N_PRECISIONS (int)(sizeof precision_names / sizeof precision_names[0])

cs_status cs_device_parse(const char *text, cs_device *out, cs_error *err)
{
    *out = (cs_device){CS_DEVICE_CPU, 0};
    if (!text || !*text || !strcmp(text, "cpu")) return CS_OK;
    if (!strncmp(text, "cuda", 4) && (text[4] == 0 || text[4] == ':')) {
        long id = 0;
        if (text[4] == ':') {
            char *end;
            errno = 0;
            id = strtol(text + 5, &end, 10);
            if (end == text + 5 || *end || errno || id < 0 || id > 1023) goto bad;
        }
        *out = (cs_device){CS_DEVICE_CUDA, (int)id};
        return CS_OK;
    }
bad:
    return cs_error_set(err, CS_ERR_INVALID,
                        "device '%.64s' is not one of cpu, cuda, cuda:N (N from 0)", text);
}

const char *cs_device_format(cs_device d, char *buf, size_t cap)
{
    if (d.kind == CS_DEVICE_CUDA)
        snprintf(buf, cap, "cuda:%d", d.id);
    else
        snprintf(buf, cap, "cpu");
    return buf;
}

cs_status cs_precision_parse(const char *text, cs_precision *out, cs_error *err)
{
    for (int p = 0; text && p < N_PRECISIONS; p++)
        if (!strcmp(text, precision_names[p])) {
            *out = (cs_precision)p;
            return CS_OK;
        }
    return cs_error_set(err, CS_ERR_INVALID,
                        "precision '%.32s' is not one of fp32, tf32, fp16, bf16", text ? text : "");
}

const char *cs_precision_name(cs_precision p)
{
    return (int)p >= 0 && (int)p < N_PRECISIONS ? precision_names[p] : "unknown";
}

/* The backend serving a device: the CPU's, or one of the CUDA backend's per ordinal (whether
 * that device exists, its init says). NULL for a device this build has no backend for. */
static const cs__backend *backend_of(cs_device device)
{
    if (device.kind == CS_DEVICE_CPU) return device.id == 0 ? &cs__cpu_backend : NULL;
    if (device.kind == CS_DEVICE_CUDA) return cs__cuda_backend_get(device.id);
    return NULL;
}

cs_status cs__backend_for(cs_device device, cs_precision precision, const cs__backend **out,
                          cs_error *err)
{
    char name[32];
    cs_device_format(device, name, sizeof name);
    *out = NULL;
    const cs__backend *be = backend_of(device);
    if (!be)
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "device %s: this build has no backend for it (it runs on: cpu, "
                            "cuda:0..cuda:%d)",
                            name, CS__CUDA_MAX_DEVICES - 1);
    if ((int)precision < 0 || (int)precision >= N_PRECISIONS ||
        !(be->precisions & (1u << precision))) {
        char allowed[64] = "";
        for (int p = 0, len = 0; p < N_PRECISIONS; p++)
            if (be->precisions & (1u << p))
                len += snprintf(allowed + len, sizeof allowed - (size_t)len, "%s%s",
                                len ? ", " : "", precision_names[p]);
        return cs_error_set(err, CS_ERR_UNSUPPORTED,
                            "precision %s is not supported on %s, which computes in: %s",
                            cs_precision_name(precision), name, allowed);
    }
    cs_status rc = be->init(be, err);
    if (rc == CS_OK) *out = be;
    return rc;
}

cs_status cs_device_check(cs_device d, cs_error *err)
{
    const cs__backend *be;
    return cs__backend_for(d, CS_PRECISION_FP32, &be, err);
}
