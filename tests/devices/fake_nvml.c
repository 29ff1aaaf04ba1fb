/*
 * fake_nvml.c - a stand-in libnvidia-ml.so.1 for testing GPU discovery where no GPU is.
 *
 * The real NVML cannot run on the build machines (no NVIDIA driver), so this library
 * answers the entry points capstan uses with two H100s: gpu 0 whole, gpu 1 with MIG
 * enabled and two MIG devices. Values mimic what NVML reports on such a machine. The test
 * loads it through LD_LIBRARY_PATH and checks the ResourceSlices capstan writes.
 *
 * The live figures the metrics read (utilisation, memory used, power, temperature, energy)
 * come from the file FAKE_NVML_STATE names, read again on every call so a test can change
 * them between scrapes: lines "FIELD GPU VALUE" with FIELD one of util (%), mem_used (MiB),
 * power (mW), temp (C), energy (mJ), e.g. "power 0 71250". A field the file does not set
 * has a default below; "unsupported FIELD GPU" makes that call fail with
 * NVML_ERROR_NOT_SUPPORTED, as it does on GPUs without the sensor.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dev {
    int index;
    int mig; /* -1 for a whole GPU, else the MIG index */
} dev;

static dev gpus[2] = {{0, -1}, {1, -1}};
static dev migs[2] = {{1, 0}, {1, 1}};

typedef struct nvml_memory {
    unsigned long long total, free, used;
} nvml_memory;

typedef struct nvml_pci_info {
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} nvml_pci_info;

int nvmlInit_v2(void)
{
    return 0;
}

int nvmlShutdown(void)
{
    return 0;
}

const char *nvmlErrorString(int r)
{
    return r ? "Unknown Error" : "Success";
}

int nvmlDeviceGetCount_v2(unsigned int *n)
{
    *n = 2;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h)
{
    if (i > 1) return 2;
    *h = &gpus[i];
    return 0;
}

int nvmlDeviceGetName(void *h, char *buf, unsigned int len)
{
    snprintf(buf, len, "NVIDIA H100 80GB HBM3");
    return 0;
}

int nvmlDeviceGetUUID(void *h, char *buf, unsigned int len)
{
    const dev *d = h;
    if (d->mig >= 0)
        snprintf(buf, len, "MIG-0b7c1f7e-7d5e-5c9a-9f1c-00000000000%d", d->mig);
    else
        snprintf(buf, len, "GPU-4b2f8d6e-1c3a-4e5f-8a9b-00000000000%d", d->index);
    return 0;
}

int nvmlDeviceGetMinorNumber(void *h, unsigned int *minor)
{
    *minor = (unsigned)((const dev *)h)->index;
    return 0;
}

#define NVML_ERROR_NOT_SUPPORTED 3

/* The figure `field` of whole GPU h from FAKE_NVML_STATE, or def; -1 when the file says
 * the field is unsupported on that GPU. */
static long long figure(const void *h, const char *field, long long def)
{
    const dev *d = h;
    const char *path = getenv("FAKE_NVML_STATE");
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return def;
    char line[128], name[32], value[32];
    int gpu;
    long long v = def;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "unsupported %31s %d", name, &gpu) == 2) {
            if (gpu == d->index && !strcmp(name, field)) v = -1;
        } else if (sscanf(line, "%31s %d %31s", name, &gpu, value) == 3) {
            if (gpu == d->index && !strcmp(name, field)) v = strtoll(value, NULL, 10);
        }
    }
    fclose(f);
    return v;
}

int nvmlDeviceGetMemoryInfo(void *h, nvml_memory *m)
{
    const dev *d = h;
    m->total = d->mig >= 0 ? 10200547328ull : 85520809984ull; /* 9728Mi, 81559Mi */
    long long used = d->mig >= 0 ? 0 : figure(h, "mem_used", 0);
    if (used < 0) return NVML_ERROR_NOT_SUPPORTED;
    m->used = (unsigned long long)used << 20;
    m->free = m->total - m->used;
    return 0;
}

typedef struct nvml_utilization {
    unsigned int gpu, memory;
} nvml_utilization;

int nvmlDeviceGetUtilizationRates(void *h, nvml_utilization *u)
{
    long long v = figure(h, "util", 0);
    if (v < 0) return NVML_ERROR_NOT_SUPPORTED;
    u->gpu = (unsigned)v;
    u->memory = 0;
    return 0;
}

int nvmlDeviceGetPowerUsage(void *h, unsigned int *mw)
{
    long long v = figure(h, "power", 70000);
    if (v < 0) return NVML_ERROR_NOT_SUPPORTED;
    *mw = (unsigned)v;
    return 0;
}

int nvmlDeviceGetTemperature(void *h, int sensor, unsigned int *c)
{
    long long v = sensor == 0 ? figure(h, "temp", 30) : -1;
    if (v < 0) return NVML_ERROR_NOT_SUPPORTED;
    *c = (unsigned)v;
    return 0;
}

int nvmlDeviceGetTotalEnergyConsumption(void *h, unsigned long long *mj)
{
    long long v = figure(h, "energy", 1000000);
    if (v < 0) return NVML_ERROR_NOT_SUPPORTED;
    *mj = (unsigned long long)v;
    return 0;
}

int nvmlDeviceGetPciInfo_v3(void *h, nvml_pci_info *p)
{
    memset(p, 0, sizeof *p);
    snprintf(p->bus_id, sizeof p->bus_id, "00000000:%02X:00.0", 0x18 + ((const dev *)h)->index);
    return 0;
}

int nvmlDeviceGetCudaComputeCapability(void *h, int *major, int *minor)
{
    *major = 9;
    *minor = 0;
    return 0;
}

int nvmlDeviceGetBrand(void *h, int *brand)
{
    *brand = 14; /* NVML_BRAND_NVIDIA */
    return 0;
}

int nvmlDeviceGetArchitecture(void *h, unsigned int *arch)
{
    *arch = 9; /* NVML_DEVICE_ARCH_HOPPER */
    return 0;
}

int nvmlSystemGetDriverVersion(char *buf, unsigned int len)
{
    snprintf(buf, len, "550.54.15");
    return 0;
}

int nvmlSystemGetCudaDriverVersion_v2(int *v)
{
    *v = 12040;
    return 0;
}

int nvmlDeviceGetMigMode(void *h, unsigned int *current, unsigned int *pending)
{
    *current = *pending = ((const dev *)h)->index == 1;
    return 0;
}

int nvmlDeviceGetMaxMigDeviceCount(void *h, unsigned int *n)
{
    *n = 7;
    return 0;
}

int nvmlDeviceGetMigDeviceHandleByIndex(void *h, unsigned int i, void **mig)
{
    if (i > 1) return 6; /* NVML_ERROR_NOT_FOUND */
    *mig = &migs[i];
    return 0;
}

int nvmlDeviceGetGpuInstanceId(void *h, unsigned int *id)
{
    *id = (unsigned)((const dev *)h)->mig + 1;
    return 0;
}

int nvmlDeviceGetComputeInstanceId(void *h, unsigned int *id)
{
    *id = 0;
    return 0;
}
