/*
 * fake_nvml.c - a stand-in libnvidia-ml.so.1 for testing GPU discovery where no GPU is.
 *
 * The real NVML cannot run on the build machines (no NVIDIA driver), so this library
 * answers the entry points capstan uses with two H100s: gpu 0 whole, gpu 1 with MIG
 * enabled and two MIG devices. Values mimic what NVML reports on such a machine. The test
 * loads it through LD_LIBRARY_PATH and checks the ResourceSlices capstan writes.
 */
#include <stdio.h>
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

int nvmlDeviceGetMemoryInfo(void *h, nvml_memory *m)
{
    const dev *d = h;
    m->total = d->mig >= 0 ? 10200547328ull : 85520809984ull; /* 9728Mi, 81559Mi */
    m->used = 0;
    m->free = m->total;
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
