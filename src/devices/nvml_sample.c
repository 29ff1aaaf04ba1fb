/*
 * nvml_sample.c - live GPU figures from NVML for /metrics (see nvml_sample.h).
 *
 * NVML's ABI for the calls used is declared here, as discover_nvml.c declares the ones
 * discovery uses; the two load the library separately because discovery runs once and
 * unloads it, while the sampler keeps it for the server's life. Power is read in
 * milliwatts and reported in watts, memory in bytes and reported in MiB, energy in
 * millijoules as NVML counts it since the driver was loaded - the units of dcgm-exporter's
 * DCGM_FI_DEV_* fields.
 */
#include "devices/nvml_sample.h"

#include "base/alloc.h"

#include <dlfcn.h>
#include <stdio.h>

typedef void *nvml_device;
typedef int nvml_return; /* 0 = NVML_SUCCESS */

typedef struct nvml_memory {
    unsigned long long total, free, used;
} nvml_memory;

typedef struct nvml_utilization {
    unsigned int gpu, memory;
} nvml_utilization;

#define NVML_TEMPERATURE_GPU 0

struct cs_nvml_sampler {
    void *lib;
    nvml_return (*init)(void);
    nvml_return (*shutdown)(void);
    nvml_return (*count)(unsigned int *);
    nvml_return (*handle)(unsigned int, nvml_device *);
    nvml_return (*name)(nvml_device, char *, unsigned int);
    nvml_return (*uuid)(nvml_device, char *, unsigned int);
    nvml_return (*minor)(nvml_device, unsigned int *);
    /* Each figure's call is optional: an older driver may lack one. */
    nvml_return (*util)(nvml_device, nvml_utilization *);
    nvml_return (*memory)(nvml_device, nvml_memory *);
    nvml_return (*power)(nvml_device, unsigned int *);
    nvml_return (*temp)(nvml_device, int, unsigned int *);
    nvml_return (*energy)(nvml_device, unsigned long long *);
};

cs_nvml_sampler *cs_nvml_sampler_new(const char **why)
{
    cs_nvml_sampler *s = cs_calloc(1, sizeof *s);
    if (!s) {
        *why = "out of memory";
        return NULL;
    }
    s->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!s->lib) {
        *why = "libnvidia-ml.so.1 is not installed (no NVIDIA driver)";
        goto fail;
    }
#define SYM(field, name) (*(void **)&s->field = dlsym(s->lib, name))
    SYM(init, "nvmlInit_v2");
    SYM(shutdown, "nvmlShutdown");
    SYM(count, "nvmlDeviceGetCount_v2");
    SYM(handle, "nvmlDeviceGetHandleByIndex_v2");
    SYM(name, "nvmlDeviceGetName");
    SYM(uuid, "nvmlDeviceGetUUID");
    SYM(minor, "nvmlDeviceGetMinorNumber");
    SYM(util, "nvmlDeviceGetUtilizationRates");
    SYM(memory, "nvmlDeviceGetMemoryInfo");
    SYM(power, "nvmlDeviceGetPowerUsage");
    SYM(temp, "nvmlDeviceGetTemperature");
    SYM(energy, "nvmlDeviceGetTotalEnergyConsumption");
#undef SYM
    if (!s->init || !s->shutdown || !s->count || !s->handle || !s->name || !s->uuid || !s->minor) {
        *why = "libnvidia-ml.so.1 lacks a device query entry point";
        goto fail;
    }
    if (s->init() != 0) {
        *why = "nvmlInit failed (is the NVIDIA driver loaded?)";
        goto fail;
    }
    return s;
fail:
    if (s->lib) dlclose(s->lib);
    cs_free(s);
    return NULL;
}

void cs_nvml_sampler_free(cs_nvml_sampler *s)
{
    if (!s) return;
    s->shutdown();
    dlclose(s->lib);
    cs_free(s);
}

int cs_nvml_sample(cs_nvml_sampler *s, cs_nvml_gpu *out, int max)
{
    unsigned n = 0;
    if (max > CS_NVML_MAX_GPUS) max = CS_NVML_MAX_GPUS;
    if (s->count(&n) != 0) return 0;
    int got = 0;
    for (unsigned i = 0; i < n && got < max; i++) {
        nvml_device h;
        if (s->handle(i, &h) != 0) continue;
        cs_nvml_gpu *g = &out[got++];
        *g = (cs_nvml_gpu){.index = i, .minor = i};
        s->name(h, g->name, sizeof g->name);
        s->uuid(h, g->uuid, sizeof g->uuid);
        s->minor(h, &g->minor);
        nvml_utilization u;
        nvml_memory m;
        unsigned mw, t;
        unsigned long long mj;
        if (s->util && s->util(h, &u) == 0) g->has_util = true, g->util_pct = u.gpu;
        if (s->memory && s->memory(h, &m) == 0) {
            g->has_mem = true;
            g->fb_used_mib = m.used >> 20;
            g->fb_free_mib = m.free >> 20;
        }
        if (s->power && s->power(h, &mw) == 0) g->has_power = true, g->power_w = mw / 1000.0;
        if (s->temp && s->temp(h, NVML_TEMPERATURE_GPU, &t) == 0) g->has_temp = true, g->temp_c = t;
        if (s->energy && s->energy(h, &mj) == 0) g->has_energy = true, g->energy_mj = mj;
    }
    return got;
}
