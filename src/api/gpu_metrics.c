/*
 * gpu_metrics.c - GPU series on /metrics under DCGM exporter's names, read from NVML at
 * scrape time and labelled with the deployments holding each GPU.
 *
 * The series are those of dcgm-exporter's default counters, with its units and labels:
 * DCGM_FI_DEV_GPU_UTIL (gauge, %), DCGM_FI_DEV_FB_USED and _FB_FREE (gauges, MiB),
 * DCGM_FI_DEV_POWER_USAGE (gauge, W), DCGM_FI_DEV_GPU_TEMP (gauge, degrees C) and
 * DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION (counter, mJ since the driver was loaded), each
 * labelled gpu (NVML index), UUID, device ("nvidia<minor>"), modelName and Hostname. Where
 * dcgm-exporter in Kubernetes adds the pod holding the GPU (namespace, pod, container),
 * these add `deployment`: the deployment whose instance holds a ResourceClaim on the GPU
 * (on the whole GPU, a share of it or one of its MIG devices). A GPU held by several
 * deployments has one series per deployment, as dcgm-exporter gives one per pod on a
 * shared GPU; a GPU nobody holds has one series without the label.
 *
 * They are rendered as text appended to the registry's, not kept as registry series:
 * holders change, and a registry series, once made, stays. Reading at scrape time is what
 * dcgm-exporter exposes with its collection interval, without a thread. The cost of a
 * scrape: six NVML calls per GPU (at most CS_NVML_MAX_GPUS), a walk over the deployer's
 * claims and one JSON parse of the claims held (at most CS_DRA_STATE_MAX_OBJS). The GPU
 * devices of the ResourceSlices (fixed for the server's life) are read once at start.
 * Without NVML (no library, no driver) nothing is rendered and nothing is logged.
 */
#include "api/api.h"

#include "base/alloc.h"
#include "base/arena.h"
#include "base/map.h"
#include "devices/nvml_sample.h"
#include "devices/placement.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MAX_HOLDERS 16 /* deployments named per GPU; more share one GPU only in theory */

/* A gpu.nvidia.com device of the ResourceSlices: how claims' results find their GPU. */
typedef struct gpu_dev {
    const char *pool, *name, *uuid; /* uuid "" when the slice gives none */
    long long index;                /* -1 when the slice gives none */
} gpu_dev;

struct cs_api_gpu_metrics {
    cs_nvml_sampler *nvml;
    cs_arena arena;
    gpu_dev *devs;
    size_t n_devs;
    char host[256];
};

static const char *attr_str(const json_t *attrs, const char *name)
{
    const char *s = json_string_value(json_object_get(json_object_get(attrs, name), "string"));
    return s ? s : "";
}

/* Reads the GPU devices out of the slices' JSON List, into g's arena. */
static void read_devices(cs_api_gpu_metrics *g, cs_dra_state *dra)
{
    cs_sbuf sb;
    cs_sbuf_init(&sb, 0);
    json_t *list = NULL;
    if (!dra || cs_dra_state_devices(dra, &sb) != CS_OK) goto out;
    list = json_loadb(sb.data, sb.len, 0, NULL);
    const json_t *items = json_object_get(list, "items"), *slice, *dev;
    size_t i, k, n = 0;
    json_array_foreach(items, i, slice)
    {
        const json_t *spec = json_object_get(slice, "spec");
        const char *driver = json_string_value(json_object_get(spec, "driver"));
        if (driver && !strcmp(driver, CS_PLACEMENT_GPU_DRIVER))
            n += json_array_size(json_object_get(spec, "devices"));
    }
    g->devs = n ? cs_arena_zalloc(&g->arena, n * sizeof *g->devs, 8) : NULL;
    if (!g->devs) goto out;
    json_array_foreach(items, i, slice)
    {
        const json_t *spec = json_object_get(slice, "spec");
        const char *driver = json_string_value(json_object_get(spec, "driver"));
        const char *pool =
            json_string_value(json_object_get(json_object_get(spec, "pool"), "name"));
        if (!driver || strcmp(driver, CS_PLACEMENT_GPU_DRIVER) || !pool) continue;
        json_array_foreach(json_object_get(spec, "devices"), k, dev)
        {
            const char *name = json_string_value(json_object_get(dev, "name"));
            const json_t *attrs = json_object_get(dev, "attributes");
            const json_t *idx = json_object_get(json_object_get(attrs, "index"), "int");
            if (!name) continue;
            gpu_dev *d = &g->devs[g->n_devs];
            d->pool = cs_arena_strndup(&g->arena, pool, CS_DRA_NAME_MAX);
            d->name = cs_arena_strndup(&g->arena, name, CS_DRA_NAME_MAX);
            d->uuid = cs_arena_strndup(&g->arena, attr_str(attrs, "uuid"), 128);
            d->index = json_is_integer(idx) ? json_integer_value(idx) : -1;
            if (d->pool && d->name && d->uuid) g->n_devs++;
        }
    }
out:
    json_decref(list);
    cs_sbuf_free(&sb);
}

cs_api_gpu_metrics *cs__api_gpu_metrics_new(cs_dra_state *dra)
{
    const char *why = NULL;
    cs_nvml_sampler *nvml = cs_nvml_sampler_new(&why);
    if (!nvml) return NULL; /* discovery already noted why; nothing to add per scrape */
    cs_api_gpu_metrics *g = cs_calloc(1, sizeof *g);
    if (!g) {
        cs_nvml_sampler_free(nvml);
        return NULL;
    }
    g->nvml = nvml;
    cs_arena_init(&g->arena, 4096);
    if (gethostname(g->host, sizeof g->host) != 0) g->host[0] = '\0';
    g->host[sizeof g->host - 1] = '\0';
    read_devices(g, dra);
    return g;
}

void cs__api_gpu_metrics_free(cs_api_gpu_metrics *g)
{
    if (!g) return;
    cs_nvml_sampler_free(g->nvml);
    cs_arena_free(&g->arena);
    cs_free(g);
}

/* ---- who holds which GPU ---- */

typedef struct holders {
    cs_arena arena;
    cs_map claims; /* claim name -> deployment name (in arena) */
    const char *of[CS_NVML_MAX_GPUS][MAX_HOLDERS];
    int n[CS_NVML_MAX_GPUS];
} holders;

static void note_claim(const char *deployment, const char *claim, void *ud)
{
    holders *h = ud;
    char *d = cs_arena_strndup(&h->arena, deployment, CS_DRA_NAME_MAX);
    if (d) cs_map_put(&h->claims, claim, d);
}

static const gpu_dev *find_dev(const cs_api_gpu_metrics *g, const char *pool, const char *name)
{
    for (size_t i = 0; i < g->n_devs; i++)
        if (!strcmp(g->devs[i].pool, pool) && !strcmp(g->devs[i].name, name)) return &g->devs[i];
    return NULL;
}

/* A slice device is on NVML's GPU when its uuid is the GPU's, or (a MIG device, whose
 * uuid is its own, or a device written without one) when its index is the GPU's. */
static bool on_gpu(const gpu_dev *d, const cs_nvml_gpu *gpu)
{
    if (!strncmp(d->uuid, "GPU-", 4)) return !strcmp(d->uuid, gpu->uuid);
    return d->index == (long long)gpu->index;
}

static void add_holder(holders *h, int gi, const char *dep)
{
    for (int i = 0; i < h->n[gi]; i++)
        if (!strcmp(h->of[gi][i], dep)) return;
    if (h->n[gi] < MAX_HOLDERS) h->of[gi][h->n[gi]++] = dep;
}

/* Fills h->of: for each GPU, the deployments whose claims hold a device on it. */
static void find_holders(cs_server *s, const cs_api_gpu_metrics *g, const cs_nvml_gpu *gpus, int n,
                         holders *h)
{
    if (!s->deployer || !s->dra || !g->n_devs) return;
    cs_deployer_each_claim(s->deployer, note_claim, h);
    if (!cs_map_len(&h->claims)) return;
    cs_sbuf sb;
    cs_sbuf_init(&sb, 0);
    json_t *list = NULL;
    if (cs_dra_state_list(s->dra, CS_DRA_KIND_CLAIM, &sb) != CS_OK) goto out;
    list = json_loadb(sb.data, sb.len, 0, NULL);
    size_t i, k;
    const json_t *claim, *res;
    json_array_foreach(json_object_get(list, "items"), i, claim)
    {
        const char *name =
            json_string_value(json_object_get(json_object_get(claim, "metadata"), "name"));
        const char *dep = name ? cs_map_get(&h->claims, name) : NULL;
        if (!dep) continue;
        const json_t *results = json_object_get(
            json_object_get(json_object_get(json_object_get(claim, "status"), "allocation"),
                            "devices"),
            "results");
        json_array_foreach(results, k, res)
        {
            const char *driver = json_string_value(json_object_get(res, "driver"));
            const char *pool = json_string_value(json_object_get(res, "pool"));
            const char *device = json_string_value(json_object_get(res, "device"));
            if (!driver || strcmp(driver, CS_PLACEMENT_GPU_DRIVER) || !pool || !device) continue;
            const gpu_dev *d = find_dev(g, pool, device);
            for (int gi = 0; d && gi < n; gi++)
                if (on_gpu(d, &gpus[gi])) add_holder(h, gi, dep);
        }
    }
out:
    json_decref(list);
    cs_sbuf_free(&sb);
}

/* ---- the exposition ---- */

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static cs_status put_value(cs_sbuf *out, const char *v)
{
    cs_status rc = CS_OK;
    for (const char *p = v; *p && rc == CS_OK; p++) {
        if (*p == '\\')
            rc = cs_sbuf_puts(out, "\\\\");
        else if (*p == '"')
            rc = cs_sbuf_puts(out, "\\\"");
        else if (*p == '\n')
            rc = cs_sbuf_puts(out, "\\n");
        else
            rc = cs_sbuf_append(out, p, 1);
    }
    return rc;
}

static cs_status put_labels(cs_sbuf *out, const cs_api_gpu_metrics *g, const cs_nvml_gpu *gpu,
                            const char *dep)
{
    cs_status rc = cs_sbuf_printf(out, "{gpu=\"%u\",UUID=\"", gpu->index);
    if (rc == CS_OK) rc = put_value(out, gpu->uuid);
    if (rc == CS_OK) rc = cs_sbuf_printf(out, "\",device=\"nvidia%u\",modelName=\"", gpu->minor);
    if (rc == CS_OK) rc = put_value(out, gpu->name);
    if (rc == CS_OK) rc = cs_sbuf_puts(out, "\",Hostname=\"");
    if (rc == CS_OK) rc = put_value(out, g->host);
    if (rc == CS_OK && dep) rc = cs_sbuf_puts(out, "\",deployment=\"");
    if (rc == CS_OK && dep) rc = put_value(out, dep);
    if (rc == CS_OK) rc = cs_sbuf_puts(out, "\"}");
    return rc;
}

enum { F_UTIL, F_FB_USED, F_FB_FREE, F_POWER, F_TEMP, F_ENERGY, N_FIELDS };

/* Names, types and help text as in dcgm-exporter's etc/default-counters.csv. */
static const struct {
    const char *name, *type, *help;
} fields[N_FIELDS] = {
    {"DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."},
    {"DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."},
    {"DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."},
    {"DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."},
    {"DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."},
    {"DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "counter",
     "Total energy consumption since boot (in mJ)."},
};

/* The value of field f on gpu as text, or false when NVML did not give it. */
static bool field_value(const cs_nvml_gpu *gpu, int f, char *buf, size_t cap)
{
    switch (f) {
    case F_UTIL:
        if (gpu->has_util) snprintf(buf, cap, "%u", gpu->util_pct);
        return gpu->has_util;
    case F_FB_USED:
    case F_FB_FREE:
        if (gpu->has_mem)
            snprintf(buf, cap, "%llu",
                     (unsigned long long)(f == F_FB_USED ? gpu->fb_used_mib : gpu->fb_free_mib));
        return gpu->has_mem;
    case F_POWER:
        if (gpu->has_power) snprintf(buf, cap, "%.3f", gpu->power_w);
        return gpu->has_power;
    case F_TEMP:
        if (gpu->has_temp) snprintf(buf, cap, "%u", gpu->temp_c);
        return gpu->has_temp;
    default:
        if (gpu->has_energy) snprintf(buf, cap, "%llu", (unsigned long long)gpu->energy_mj);
        return gpu->has_energy;
    }
}

static cs_status render_field(cs_sbuf *out, const cs_api_gpu_metrics *g, int f,
                              const cs_nvml_gpu *gpus, int n, const holders *h)
{
    char v[48];
    bool any = false;
    for (int i = 0; i < n && !any; i++) any = field_value(&gpus[i], f, v, sizeof v);
    if (!any) return CS_OK; /* a family without series is left out, as the registry does */
    cs_status rc = cs_sbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", fields[f].name,
                                  fields[f].help, fields[f].name, fields[f].type);
    for (int i = 0; i < n && rc == CS_OK; i++) {
        if (!field_value(&gpus[i], f, v, sizeof v)) continue;
        for (int k = 0; k < (h->n[i] ? h->n[i] : 1) && rc == CS_OK; k++) {
            rc = cs_sbuf_puts(out, fields[f].name);
            if (rc == CS_OK) rc = put_labels(out, g, &gpus[i], h->n[i] ? h->of[i][k] : NULL);
            if (rc == CS_OK) rc = cs_sbuf_printf(out, " %s\n", v);
        }
    }
    return rc;
}

cs_status cs__api_gpu_metrics_render(cs_server *s, cs_sbuf *out)
{
    const cs_api_gpu_metrics *g = s->gpu_metrics;
    if (!g) return CS_OK;
    cs_nvml_gpu *gpus = cs_malloc(CS_NVML_MAX_GPUS * sizeof *gpus);
    holders *h = cs_calloc(1, sizeof *h);
    cs_status rc = CS_ERR_NOMEM;
    if (!gpus || !h) goto out;
    cs_arena_init(&h->arena, 4096);
    cs_map_init(&h->claims);
    int n = cs_nvml_sample(g->nvml, gpus, CS_NVML_MAX_GPUS);
    find_holders(s, g, gpus, n, h);
    rc = CS_OK;
    for (int f = 0; f < N_FIELDS && rc == CS_OK; f++) rc = render_field(out, g, f, gpus, n, h);
    cs_map_free(&h->claims);
    cs_arena_free(&h->arena);
out:
    cs_free(h);
    cs_free(gpus);
    return rc;
}
