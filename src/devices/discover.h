/*
 * discover.h - what devices this machine has, as Kubernetes DRA ResourceSlices.
 *
 * Two drivers publish slices, as DRA drivers do on a Kubernetes node:
 *  - cpu.capstan.dev (hwloc): one device per NUMA node, with its index, CPU model, core
 *    count and memory, shared by several claims (allowMultipleAllocations) that each
 *    consume some of its cores as consumable capacity, and which CPUs its cores are
 *    (coreCPUs) so an allocation gets concrete cores;
 *  - gpu.nvidia.com (NVML, loaded with dlopen so the binary runs where no NVIDIA driver is
 *    installed): one device per GPU, named gpu-<minor>, with the attributes NVIDIA's DRA
 *    driver publishes (type, uuid, productName, brand, architecture,
 *    cudaComputeCapability, driverVersion, cudaDriverVersion, pciBusID,
 *    resource.kubernetes.io/pcieRoot, index, minor) and capacity `memory`. MIG mode is read,
 *    never changed; GPUs with MIG enabled publish their MIG devices instead (gpu-<minor>-mig-
 *    <gi>-<ci>) with the parent's attributes and their own memory.
 * The result is written as YAML (what `--devices FILE.yaml` reads back), JSON or a table.
 */
#ifndef CS_DEVICES_DISCOVER_H
#define CS_DEVICES_DISCOVER_H

#include <stdbool.h>

#include "base/arena.h"
#include "base/sbuf.h"
#include "capstan/status.h"
#include "devices/cel.h"

#define CS_DISC_MAX_ATTRS 16
#define CS_DISC_MAX_CAPS  4

typedef struct cs_disc_attr {
    const char *name; /* "productName", or qualified: "resource.kubernetes.io/pcieRoot" */
    cs_cel_attr value;
} cs_disc_attr;

typedef struct cs_disc_cap {
    const char *name;
    cs_quantity value;
    /* requestPolicy {default, validRange {min, step}} of a shared device's capacity */
    bool has_policy, has_step;
    cs_quantity def, min, step;
} cs_disc_cap;

typedef struct cs_disc_device {
    const char *name;
    bool shared; /* allowMultipleAllocations */
    cs_disc_attr attrs[CS_DISC_MAX_ATTRS];
    int n_attrs;
    cs_disc_cap caps[CS_DISC_MAX_CAPS];
    int n_caps;
    const char *counter_set; /* partitions: consumesCounters from this set, `consumes` */
    cs_disc_cap consumes[CS_DISC_MAX_CAPS];
    int n_consumes;
} cs_disc_device;

/* A sharedCounters entry: a partitionable device's total resources. */
typedef struct cs_disc_counter_set {
    const char *name;
    cs_disc_cap counters[CS_DISC_MAX_CAPS];
    int n_counters;
} cs_disc_counter_set;

/* A slice holds devices or counter sets, never both (as resource.k8s.io/v1 requires);
 * slices of one pool share pool and count. */
typedef struct cs_disc_slice {
    const char *driver, *node, *pool, *name;
    int pool_slices; /* resourceSliceCount */
    cs_disc_device *devices;
    int n_devices;
    cs_disc_counter_set *counter_sets;
    int n_counter_sets;
} cs_disc_slice;

#define CS_DISC_MAX_SLICES 4

typedef struct cs_discovery {
    cs_arena arena; /* every string and array below */
    cs_disc_slice slices[CS_DISC_MAX_SLICES];
    int n_slices;
    const char *notes[4]; /* why a driver found nothing ("NVML not found: ...") */
    int n_notes;
} cs_discovery;

/* Discovers the machine's devices into d (initialised here; free with cs_discovery_free).
 * A driver that finds nothing (no NVIDIA driver) adds a note, not an error. */
cs_status cs_discover(cs_discovery *d, cs_error *err);
void cs_discovery_free(cs_discovery *d);

/* Internal to the drivers (discover_cpu.c, discover_nvml.c). */
cs_status cs__discover_cpu(cs_discovery *d, const char *node, cs_error *err);
cs_status cs__discover_nvml(cs_discovery *d, const char *node, cs_error *err);

/* ResourceSlice documents (resource.k8s.io/v1) as YAML, or as a JSON v1 List. */
cs_status cs_discovery_write_yaml(const cs_discovery *d, cs_sbuf *out);
cs_status cs_discovery_write_json(const cs_discovery *d, cs_sbuf *out, cs_error *err);

#endif
