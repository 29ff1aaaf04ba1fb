/*
 * discover_nvml.c - the gpu.nvidia.com driver: NVIDIA GPUs through NVML.
 *
 * NVML is loaded with dlopen("libnvidia-ml.so.1") so that capstan builds where nvml.h is
 * absent and runs where no NVIDIA driver is installed (then it finds no GPUs and says why).
 * The few entry points used are declared here with NVML's documented ABI. Attributes
 * follow NVIDIA's DRA driver: names, types and formats (versions as semver strings,
 * pcieRoot from the PCI device's sysfs path). MIG mode is only read. When a GPU has MIG
 * enabled, its MIG devices are published instead of the whole GPU, each consuming its
 * memory from a counter set that holds the parent's total, in a second slice of the pool.
 */
#include "devices/discover.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *nvml_device;
typedef int nvml_return; /* 0 = NVML_SUCCESS */

typedef struct nvml_memory {
    unsigned long long total, free, used;
} nvml_memory;

typedef struct nvml_pci_info { /* nvmlPciInfo_t (v3) */
    char bus_id_legacy[16];
    unsigned int domain, bus, device, pci_device_id, pci_subsystem_id;
    char bus_id[32];
} nvml_pci_info;

typedef struct nvml_api {
    void *lib;
    nvml_return (*init)(void);
    nvml_return (*shutdown)(void);
    const char *(*error_string)(nvml_return);
    nvml_return (*count)(unsigned int *);
    nvml_return (*handle)(unsigned int, nvml_device *);
    nvml_return (*name)(nvml_device, char *, unsigned int);
    nvml_return (*uuid)(nvml_device, char *, unsigned int);
    nvml_return (*minor)(nvml_device, unsigned int *);
    nvml_return (*memory)(nvml_device, nvml_memory *);
    nvml_return (*pci)(nvml_device, nvml_pci_info *);
    nvml_return (*cc)(nvml_device, int *, int *);
    nvml_return (*brand)(nvml_device, int *);
    nvml_return (*arch)(nvml_device, unsigned int *);
    nvml_return (*driver_version)(char *, unsigned int);
    nvml_return (*cuda_version)(int *);
    nvml_return (*mig_mode)(nvml_device, unsigned int *, unsigned int *);
    nvml_return (*mig_count)(nvml_device, unsigned int *);
    nvml_return (*mig_handle)(nvml_device, unsigned int, nvml_device *);
    nvml_return (*gi_id)(nvml_device, unsigned int *);
    nvml_return (*ci_id)(nvml_device, unsigned int *);
} nvml_api;

/* Resolves every symbol; the optional ones (MIG, architecture) may stay NULL. */
static const char *load_api(nvml_api *a)
{
    a->lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!a->lib) return "libnvidia-ml.so.1 is not installed (no NVIDIA driver)";
#define SYM(field, name, required)                                         \
    do {                                                                   \
        *(void **)&a->field = dlsym(a->lib, name);                         \
        if (required && !a->field) return "libnvidia-ml.so.1 lacks " name; \
    } while (0)
    SYM(init, "nvmlInit_v2", 1);
    SYM(shutdown, "nvmlShutdown", 1);
    SYM(error_string, "nvmlErrorString", 1);
    SYM(count, "nvmlDeviceGetCount_v2", 1);
    SYM(handle, "nvmlDeviceGetHandleByIndex_v2", 1);
    SYM(name, "nvmlDeviceGetName", 1);
    SYM(uuid, "nvmlDeviceGetUUID", 1);
    SYM(minor, "nvmlDeviceGetMinorNumber", 1);
    SYM(memory, "nvmlDeviceGetMemoryInfo", 1);
    SYM(pci, "nvmlDeviceGetPciInfo_v3", 1);
    SYM(cc, "nvmlDeviceGetCudaComputeCapability", 1);
    SYM(brand, "nvmlDeviceGetBrand", 1);
    SYM(driver_version, "nvmlSystemGetDriverVersion", 1);
    SYM(cuda_version, "nvmlSystemGetCudaDriverVersion_v2", 0);
    SYM(arch, "nvmlDeviceGetArchitecture", 0);
    SYM(mig_mode, "nvmlDeviceGetMigMode", 0);
    SYM(mig_count, "nvmlDeviceGetMaxMigDeviceCount", 0);
    SYM(mig_handle, "nvmlDeviceGetMigDeviceHandleByIndex", 0);
    SYM(gi_id, "nvmlDeviceGetGpuInstanceId", 0);
    SYM(ci_id, "nvmlDeviceGetComputeInstanceId", 0);
#undef SYM
    return NULL;
}

static const char *brand_name(int b)
{
    static const char *const names[] = {
        "Unknown",   "Quadro",      "Tesla",     "NVS",        "Grid",      "GeForce",
        "Titan",     "NvidiaVApps", "NvidiaVPC", "NvidiaVCS",  "NvidiaVWS", "NvidiaCloudGaming",
        "QuadroRTX", "NvidiaRTX",   "Nvidia",    "GeForceRTX", "TitanRTX"};
    return b >= 0 && b < (int)(sizeof names / sizeof names[0]) ? names[b] : "Unknown";
}

static const char *arch_name(unsigned a)
{
    static const char *const names[] = {"Unknown", "Unknown", "Kepler",   "Maxwell",
                                        "Pascal",  "Volta",   "Turing",   "Ampere",
                                        "Ada",     "Hopper",  "Blackwell"};
    return a < sizeof names / sizeof names[0] ? names[a] : "Unknown";
}

/* A version attribute in semver form: "550.54.15" stays, "12.4" becomes "12.4.0". */
static const char *semver_of(cs_arena *a, const char *v)
{
    char buf[64];
    int dots = 0;
    for (const char *p = v; *p; p++) dots += *p == '.';
    snprintf(buf, sizeof buf, "%s%s", v, dots >= 2 ? "" : dots == 1 ? ".0" : ".0.0");
    return cs_arena_strndup(a, buf, sizeof buf);
}

/* resource.kubernetes.io/pcieRoot: the root complex above the device in sysfs, e.g.
 * /sys/devices/pci0000:3a/0000:3a:00.0/... gives "pci0000:3a". */
static const char *pcie_root(cs_arena *a, const char *bus_id)
{
    char link[128], path[PATH_MAX];
    char id[32];
    snprintf(id, sizeof id, "%s", bus_id);
    for (char *p = id; *p; p++)
        if (*p >= 'A' && *p <= 'F') *p = (char)(*p - 'A' + 'a');
    /* NVML reports an 8-digit domain ("00000000:3B:00.0"); sysfs uses 4. */
    const char *short_id = strlen(id) == 16 ? id + 4 : id;
    snprintf(link, sizeof link, "/sys/bus/pci/devices/%s", short_id);
    if (!realpath(link, path)) return NULL;
    const char *root = strstr(path, "/devices/pci");
    if (!root) return NULL;
    root += strlen("/devices/");
    const char *end = strchr(root, '/');
    return cs_arena_strndup(a, root, end ? (size_t)(end - root) : strlen(root));
}

typedef struct gpu_facts {
    const char *uuid, *product, *brand, *arch, *cc, *driver, *cuda, *bus_id, *root;
    unsigned index, minor;
    unsigned long long memory;
} gpu_facts;

static void add_attr(cs_disc_device *dev, const char *name, cs_cel_attr v)
{
    if (dev->n_attrs < CS_DISC_MAX_ATTRS) dev->attrs[dev->n_attrs++] = (cs_disc_attr){name, v};
}

static cs_cel_attr str(const char *s)
{
    return (cs_cel_attr){.type = CS_CEL_ATTR_STRING, .s = s};
}

static cs_cel_attr ver(const char *s)
{
    return (cs_cel_attr){.type = CS_CEL_ATTR_VERSION, .s = s};
}

static void describe(cs_disc_device *dev, const gpu_facts *g, const char *type)
{
    add_attr(dev, "type", str(type));
    add_attr(dev, "uuid", str(g->uuid));
    add_attr(dev, "productName", str(g->product));
    add_attr(dev, "brand", str(g->brand));
    add_attr(dev, "architecture", str(g->arch));
    add_attr(dev, "cudaComputeCapability", ver(g->cc));
    add_attr(dev, "driverVersion", ver(g->driver));
    if (g->cuda) add_attr(dev, "cudaDriverVersion", ver(g->cuda));
    add_attr(dev, "pciBusID", str(g->bus_id));
    if (g->root) add_attr(dev, "resource.kubernetes.io/pcieRoot", str(g->root));
    add_attr(dev, "index", (cs_cel_attr){.type = CS_CEL_ATTR_INT, .i = g->index});
    add_attr(dev, "minor", (cs_cel_attr){.type = CS_CEL_ATTR_INT, .i = g->minor});
}

static cs_quantity bytes(unsigned long long b)
{
    return (cs_quantity){(int64_t)b * 1000, CS_QTY_BINARY_SI};
}

static char *fmt(cs_arena *a, const char *f, unsigned x, unsigned y, unsigned z)
{
    char buf[96];
    snprintf(buf, sizeof buf, f, x, y, z);
    return cs_arena_strndup(a, buf, sizeof buf);
}

cs_status cs__discover_nvml(cs_discovery *d, const char *node, cs_error *err)
{
    nvml_api api = {0};
    const char *why = load_api(&api);
    if (why) {
        if (api.lib) dlclose(api.lib);
        d->notes[d->n_notes++] = why;
        return CS_OK;
    }
    cs_arena *a = &d->arena;
    cs_status rc = CS_OK;
    nvml_return r = api.init();
    if (r != 0) {
        d->notes[d->n_notes++] = cs_arena_strndup(a, api.error_string(r), 200);
        dlclose(api.lib);
        return CS_OK;
    }
    unsigned n = 0;
    char driver[80] = "", cuda[32] = "";
    api.count(&n);
    api.driver_version(driver, sizeof driver);
    int cv = 0;
    if (api.cuda_version && api.cuda_version(&cv) == 0)
        snprintf(cuda, sizeof cuda, "%d.%d.0", cv / 1000, cv % 1000 / 10);
    cs_disc_slice *s = &d->slices[d->n_slices], *counters = &d->slices[d->n_slices + 1];
    *s = (cs_disc_slice){"gpu.nvidia.com", node, node, "gpu", 1, NULL, 0, NULL, 0};
    size_t cap = (size_t)n * 8 + 1; /* at most 7 MIG devices per GPU */
    s->devices = cs_arena_zalloc(a, cap * sizeof *s->devices, 8);
    cs_disc_counter_set *sets = cs_arena_zalloc(a, (size_t)(n + 1) * sizeof *sets, 8);
    if (!s->devices || !sets) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        nvml_device h;
        if (api.handle(i, &h) != 0) continue;
        char name[96] = "", uuid[96] = "";
        nvml_memory mem = {0};
        nvml_pci_info pci = {0};
        int major = 0, minor_cc = 0, brand = 0;
        unsigned arch = 0, minor = i, mig = 0, pending = 0;
        api.name(h, name, sizeof name);
        api.uuid(h, uuid, sizeof uuid);
        api.minor(h, &minor);
        api.memory(h, &mem);
        api.pci(h, &pci);
        api.cc(h, &major, &minor_cc);
        api.brand(h, &brand);
        if (api.arch) api.arch(h, &arch);
        if (api.mig_mode) api.mig_mode(h, &mig, &pending);
        char ccs[32];
        snprintf(ccs, sizeof ccs, "%d.%d.0", major, minor_cc);
        gpu_facts g = {cs_arena_strndup(a, uuid, sizeof uuid),
                       cs_arena_strndup(a, name, sizeof name),
                       brand_name(brand),
                       arch_name(arch),
                       cs_arena_strndup(a, ccs, sizeof ccs),
                       semver_of(a, driver),
                       cuda[0] ? cs_arena_strndup(a, cuda, sizeof cuda) : NULL,
                       cs_arena_strndup(a, pci.bus_id, sizeof pci.bus_id),
                       pcie_root(a, pci.bus_id),
                       i,
                       minor,
                       mem.total};
        if (!(mig == 1 && api.mig_count && api.mig_handle)) {
            cs_disc_device *dev = &s->devices[s->n_devices++];
            dev->name = fmt(a, "gpu-%u", minor, 0, 0);
            describe(dev, &g, "gpu");
            dev->caps[dev->n_caps++] = (cs_disc_cap){"memory", bytes(mem.total)};
            continue;
        }
        /* MIG enabled: the GPU's memory becomes a counter set its MIG devices draw on. */
        cs_disc_counter_set *set = &sets[counters->n_counter_sets++];
        set->name = fmt(a, "gpu-%u-counter-set", minor, 0, 0);
        set->counters[set->n_counters++] = (cs_disc_cap){"memory", bytes(mem.total)};
        unsigned max = 0;
        api.mig_count(h, &max);
        for (unsigned k = 0; k < max && k < 7; k++) {
            nvml_device mh;
            if (api.mig_handle(h, k, &mh) != 0) continue;
            unsigned gi = 0, ci = 0;
            nvml_memory mm = {0};
            char muuid[96] = "";
            if (api.gi_id) api.gi_id(mh, &gi);
            if (api.ci_id) api.ci_id(mh, &ci);
            api.memory(mh, &mm);
            api.uuid(mh, muuid, sizeof muuid);
            gpu_facts mg = g;
            mg.uuid = cs_arena_strndup(a, muuid, sizeof muuid);
            cs_disc_device *dev = &s->devices[s->n_devices++];
            dev->name = fmt(a, "gpu-%u-mig-%u-%u", minor, gi, ci);
            describe(dev, &mg, "mig");
            dev->caps[dev->n_caps++] = (cs_disc_cap){"memory", bytes(mm.total)};
            dev->counter_set = set->name;
            dev->consumes[dev->n_consumes++] = (cs_disc_cap){"memory", bytes(mm.total)};
        }
    }
    d->n_slices++;
    if (counters->n_counter_sets) {
        *counters =
            (cs_disc_slice){"gpu.nvidia.com",        node, node, "gpu-counters", 2, NULL, 0, sets,
                            counters->n_counter_sets};
        s->pool_slices = 2;
        d->n_slices++;
    }
    if (n == 0) d->notes[d->n_notes++] = "NVML found no GPUs";
out:
    api.shutdown();
    dlclose(api.lib);
    return rc;
}
