/*
 * discover_cpu.c - the cpu.capstan.dev driver: NUMA nodes through hwloc.
 *
 * One device per NUMA node (numa-<index>): attributes numaNode (int), cpuModel (string)
 * and coreCPUs (string: the first CPU of each core, as a Linux cpulist "0-7,16-23"),
 * capacity cores (physical cores whose CPUs lie in the node) and memory (the node's local
 * memory). The device allows multiple allocations, as Kubernetes 1.34's consumable
 * capacity defines them: a claim takes `capacity: {requests: {cores: N}}` cores (1 when it
 * asks for none; whole cores, rounded up) and no memory unless it asks, so claims share a
 * node until its cores run out, and the allocator hands each claim concrete cores from
 * coreCPUs. A machine without NUMA information has one node. Cost: one hwloc topology load
 * (a few milliseconds, reads /sys).
 */
#include "devices/discover.h"

#include <hwloc.h>
#include <stdio.h>
#include <string.h>

static void add_attr(cs_disc_device *dev, const char *name, cs_cel_attr v)
{
    if (dev->n_attrs < CS_DISC_MAX_ATTRS) dev->attrs[dev->n_attrs++] = (cs_disc_attr){name, v};
}

/* A capacity shared under requestPolicy {default: def, validRange: {min, step}} (step 0:
 * none), all in whole units. */
static void add_cap(cs_disc_device *dev, const char *name, int64_t units, cs_qty_format f,
                    int64_t def, int64_t min, int64_t step)
{
    if (dev->n_caps < CS_DISC_MAX_CAPS)
        dev->caps[dev->n_caps++] = (cs_disc_cap){name,
                                                 {units * 1000, f},
                                                 true,
                                                 step > 0,
                                                 {def * 1000, f},
                                                 {min * 1000, f},
                                                 {step * 1000, f}};
}

/* The first CPU of every core in set, as a cpulist ("0-3,8"), in a. NULL on out of memory. */
static const char *core_cpus(hwloc_topology_t topo, hwloc_const_cpuset_t set, cs_arena *a)
{
    int n = hwloc_get_nbobjs_inside_cpuset_by_type(topo, set, HWLOC_OBJ_CORE);
    size_t cap = (size_t)n * 12 + 1, len = 0;
    char *out = cs_arena_alloc(a, cap, 1);
    if (!out) return NULL;
    out[0] = '\0';
    int run_start = -1, prev = -2;
    for (int i = 0; i <= n; i++) {
        int cpu = -1;
        if (i < n) {
            hwloc_obj_t core = hwloc_get_obj_inside_cpuset_by_type(topo, set, HWLOC_OBJ_CORE, i);
            cpu = core ? hwloc_bitmap_first(core->cpuset) : -1;
            if (cpu < 0) continue;
        }
        if (cpu == prev + 1 && i < n) {
            prev = cpu;
            continue;
        }
        if (run_start >= 0)
            len += (size_t)snprintf(out + len, cap - len, run_start == prev ? "%s%d" : "%s%d-%d",
                                    len ? "," : "", run_start, prev);
        run_start = prev = cpu;
    }
    return out;
}

cs_status cs__discover_cpu(cs_discovery *d, const char *node, cs_error *err)
{
    hwloc_topology_t topo;
    if (hwloc_topology_init(&topo) != 0 || hwloc_topology_load(topo) != 0)
        return cs_error_set(err, CS_ERR_IO, "hwloc cannot read this machine's topology");
    cs_status rc = CS_OK;
    int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
    if (n < 1) n = 1;
    cs_disc_slice *s = &d->slices[d->n_slices];
    s->driver = "cpu.capstan.dev";
    s->node = s->pool = node;
    s->name = "cpu";
    s->pool_slices = 1;
    s->devices = cs_arena_zalloc(&d->arena, (size_t)n * sizeof *s->devices, 8);
    if (!s->devices) {
        rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
        goto out;
    }
    hwloc_obj_t pkg = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PACKAGE, 0);
    const char *model = pkg ? hwloc_obj_get_info_by_name(pkg, "CPUModel") : NULL;
    model = cs_arena_strndup(&d->arena, model ? model : "unknown", 256);
    for (int i = 0; i < n; i++) {
        hwloc_obj_t numa = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, (unsigned)i);
        hwloc_const_cpuset_t set = numa ? numa->cpuset : hwloc_topology_get_topology_cpuset(topo);
        unsigned index = numa ? numa->os_index : 0;
        char name[32];
        snprintf(name, sizeof name, "numa-%u", index);
        cs_disc_device *dev = &s->devices[s->n_devices++];
        dev->name = cs_arena_strndup(&d->arena, name, sizeof name);
        if (!dev->name || !model) {
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        add_attr(dev, "numaNode", (cs_cel_attr){.type = CS_CEL_ATTR_INT, .i = index});
        add_attr(dev, "cpuModel", (cs_cel_attr){.type = CS_CEL_ATTR_STRING, .s = model});
        const char *cpus = core_cpus(topo, set, &d->arena);
        if (!cpus) {
            rc = cs_error_set(err, CS_ERR_NOMEM, "out of memory");
            goto out;
        }
        dev->shared = true;
        add_attr(dev, "coreCPUs", (cs_cel_attr){.type = CS_CEL_ATTR_STRING, .s = cpus});
        add_cap(dev, "cores", hwloc_get_nbobjs_inside_cpuset_by_type(topo, set, HWLOC_OBJ_CORE),
                CS_QTY_DECIMAL_SI, 1, 1, 1);
        uint64_t mem = numa ? numa->attr->numanode.local_memory : 0;
        if (mem) add_cap(dev, "memory", (int64_t)mem, CS_QTY_BINARY_SI, 0, 0, 0);
    }
    d->n_slices++;
out:
    hwloc_topology_destroy(topo);
    return rc;
}
