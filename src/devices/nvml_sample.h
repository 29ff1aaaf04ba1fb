/*
 * nvml_sample.h - reading a GPU's live figures from NVML for the metrics (utilisation,
 * framebuffer memory, power, temperature, energy), as dcgm-exporter's default counters
 * report them.
 *
 * The sampler loads libnvidia-ml.so.1 with dlopen once and initialises NVML once; where
 * the library or a driver is absent, cs_nvml_sampler_new gives NULL and the reason, and
 * nothing else happens (no retries, nothing logged). Sampling costs a handful of NVML
 * calls per GPU (each a driver ioctl, microseconds) for at most CS_NVML_MAX_GPUS GPUs, so
 * it is done at scrape time. MIG devices are not sampled: NVML reports these figures for
 * the whole GPU.
 *
 * Thread safety: NVML is thread-safe; a sampler may be used from several threads at once.
 */
#ifndef CS_DEVICES_NVML_SAMPLE_H
#define CS_DEVICES_NVML_SAMPLE_H

#include <stdbool.h>
#include <stdint.h>

#define CS_NVML_MAX_GPUS 64 /* GPUs sampled per call; more are left out */

typedef struct cs_nvml_sampler cs_nvml_sampler;

/* One GPU's figures. A figure NVML does not support on this GPU (or that failed to read)
 * has its has_* flag false and is left out of the metrics, as dcgm-exporter leaves out
 * blank fields. */
typedef struct cs_nvml_gpu {
    unsigned index, minor;
    char uuid[96], name[96];
    bool has_util, has_mem, has_power, has_temp, has_energy;
    unsigned util_pct;                 /* nvmlDeviceGetUtilizationRates().gpu */
    uint64_t fb_used_mib, fb_free_mib; /* nvmlDeviceGetMemoryInfo, bytes / 2^20 */
    double power_w;                    /* nvmlDeviceGetPowerUsage, mW / 1000 */
    unsigned temp_c;                   /* nvmlDeviceGetTemperature(NVML_TEMPERATURE_GPU) */
    uint64_t energy_mj;                /* nvmlDeviceGetTotalEnergyConsumption, since driver load */
} cs_nvml_gpu;

/* Loads and initialises NVML. NULL when it cannot be had; *why (static text) says why. */
cs_nvml_sampler *cs_nvml_sampler_new(const char **why);
/* Shuts NVML down and unloads it. NULL is fine. */
void cs_nvml_sampler_free(cs_nvml_sampler *s);

/* Reads up to max (at most CS_NVML_MAX_GPUS) GPUs into out, in NVML index order; returns
 * how many were read. GPUs whose handle cannot be had are skipped. */
int cs_nvml_sample(cs_nvml_sampler *s, cs_nvml_gpu *out, int max);

#endif
