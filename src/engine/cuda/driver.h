/*
 * driver.h - the CUDA driver API, loaded with dlopen at run time (internal).
 *
 * The engine links no CUDA library: the same binary starts and serves on machines without
 * an NVIDIA driver, and a session on "cuda:N" there fails saying why. cs__cu_load() opens
 * libcuda.so.1 (or the file CS_LIBCUDA names; tests point it at a fake driver), resolves
 * the entry points below with dlsym and calls cuInit, once per process.
 *
 * No CUDA header is included, so that this compiles in every build: the few types are
 * declared here with cuda.h's ABI (CUresult and the enums are ints, CUdeviceptr is 64
 * bits, handles are pointers to the same struct tags as cuda.h's, so a .cu file may pass
 * them to the runtime), and each entry point is bound to the versioned symbol the driver
 * exports for it (cuMemAlloc is cuMemAlloc_v2). The cuBLASLt and cuDNN loaders sit beside
 * this file and take their handles' stream from the backend (cuda_be.h).
 */
#ifndef CS_ENGINE_CUDA_DRIVER_H
#define CS_ENGINE_CUDA_DRIVER_H

#include "capstan/status.h"

#include <stddef.h>

typedef int cs__cu_result; /* CUresult: 0 is CUDA_SUCCESS */
typedef int cs__cu_device; /* CUdevice: an ordinal */
typedef unsigned long long cs__cu_deviceptr;
typedef struct CUctx_st *cs__cu_context;
typedef struct CUstream_st *cs__cu_stream;
typedef struct CUmod_st *cs__cu_module;
typedef struct CUfunc_st *cs__cu_function;
typedef struct CUgraph_st *cs__cu_graph;
typedef struct CUgraphExec_st *cs__cu_graph_exec;

/* The CUresult values the engine tells apart (cuda.h's numbers). */
enum {
    CS__CU_SUCCESS = 0,
    CS__CU_OUT_OF_MEMORY = 2,
    CS__CU_STUB_LIBRARY = 34,
    CS__CU_NO_DEVICE = 100,
    CS__CU_INVALID_DEVICE = 101,
    CS__CU_NOT_SUPPORTED = 801,
};

enum { CS__CU_STREAM_NON_BLOCKING = 1 };                     /* cuStreamCreate's flag */
enum { CS__CU_CAPTURE_GLOBAL, CS__CU_CAPTURE_THREAD_LOCAL }; /* CUstreamCaptureMode */
enum {                                                       /* CUdevice_attribute */
       CS__CU_ATTR_SM_COUNT = 16,
       CS__CU_ATTR_CC_MAJOR = 75,
       CS__CU_ATTR_CC_MINOR = 76
};

/* X(member, exported symbol, parameters): every entry point the engine calls. */
#define CS__CU_FUNCS(X)                                                                      \
    X(Init, "cuInit", (unsigned flags))                                                      \
    X(DriverGetVersion, "cuDriverGetVersion", (int *version))                                \
    X(DeviceGetCount, "cuDeviceGetCount", (int *count))                                      \
    X(DeviceGet, "cuDeviceGet", (cs__cu_device * dev, int ordinal))                          \
    X(DeviceGetName, "cuDeviceGetName", (char *name, int len, cs__cu_device dev))            \
    X(DeviceTotalMem, "cuDeviceTotalMem_v2", (size_t * bytes, cs__cu_device dev))            \
    X(DeviceGetAttribute, "cuDeviceGetAttribute", (int *value, int attr, cs__cu_device dev)) \
    X(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain",                                    \
      (cs__cu_context * ctx, cs__cu_device dev))                                             \
    X(DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (cs__cu_device dev))          \
    X(CtxSetCurrent, "cuCtxSetCurrent", (cs__cu_context ctx))                                \
    X(CtxPushCurrent, "cuCtxPushCurrent_v2", (cs__cu_context ctx))                           \
    X(CtxPopCurrent, "cuCtxPopCurrent_v2", (cs__cu_context * ctx))                           \
    X(MemAlloc, "cuMemAlloc_v2", (cs__cu_deviceptr * p, size_t bytes))                       \
    X(MemFree, "cuMemFree_v2", (cs__cu_deviceptr p))                                         \
    X(MemAllocHost, "cuMemAllocHost_v2", (void **p, size_t bytes))                           \
    X(MemFreeHost, "cuMemFreeHost", (void *p))                                               \
    X(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2",                                               \
      (cs__cu_deviceptr dst, const void *src, size_t bytes, cs__cu_stream s))                \
    X(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2",                                               \
      (void *dst, cs__cu_deviceptr src, size_t bytes, cs__cu_stream s))                      \
    X(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2",                                               \
      (cs__cu_deviceptr dst, cs__cu_deviceptr src, size_t bytes, cs__cu_stream s))           \
    X(MemsetD8Async, "cuMemsetD8Async",                                                      \
      (cs__cu_deviceptr dst, unsigned char v, size_t n, cs__cu_stream s))                    \
    X(MemGetInfo, "cuMemGetInfo_v2", (size_t * free_bytes, size_t * total_bytes))            \
    X(StreamCreate, "cuStreamCreate", (cs__cu_stream * s, unsigned flags))                   \
    X(StreamDestroy, "cuStreamDestroy_v2", (cs__cu_stream s))                                \
    X(StreamSynchronize, "cuStreamSynchronize", (cs__cu_stream s))                           \
    X(ModuleLoadData, "cuModuleLoadData", (cs__cu_module * m, const void *image))            \
    X(ModuleUnload, "cuModuleUnload", (cs__cu_module m))                                     \
    X(ModuleGetFunction, "cuModuleGetFunction",                                              \
      (cs__cu_function * f, cs__cu_module m, const char *name))                              \
    X(LaunchKernel, "cuLaunchKernel",                                                        \
      (cs__cu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,   \
       unsigned bz, unsigned shared_bytes, cs__cu_stream s, void **params, void **extra))    \
    X(StreamBeginCapture, "cuStreamBeginCapture_v2", (cs__cu_stream s, int mode))            \
    X(StreamEndCapture, "cuStreamEndCapture", (cs__cu_stream s, cs__cu_graph * g))           \
    X(GraphInstantiate, "cuGraphInstantiateWithFlags",                                       \
      (cs__cu_graph_exec * e, cs__cu_graph g, unsigned long long flags))                     \
    X(GraphLaunch, "cuGraphLaunch", (cs__cu_graph_exec e, cs__cu_stream s))                  \
    X(GraphExecDestroy, "cuGraphExecDestroy", (cs__cu_graph_exec e))                         \
    X(GraphDestroy, "cuGraphDestroy", (cs__cu_graph g))                                      \
    X(GetErrorName, "cuGetErrorName", (cs__cu_result r, const char **name))                  \
    X(GetErrorString, "cuGetErrorString", (cs__cu_result r, const char **text))

/* The driver's entry points, all non-NULL in a table cs__cu_load or cs__cu_open gave. */
typedef struct cs__cu {
#define CS__CU_MEMBER(member, symbol, params) cs__cu_result(*member) params;
    CS__CU_FUNCS(CS__CU_MEMBER)
#undef CS__CU_MEMBER
    void *lib; /* the dlopen handle */
} cs__cu;

/* The process's driver: loaded on the first call (thread-safe), kept until exit. *out is
 * borrowed; on failure the same message comes back on every call, naming the library and
 * why it cannot serve: not found (no NVIDIA driver), the toolkit's stub (no driver), a
 * missing entry point, or cuInit's error. */
cs_status cs__cu_load(const cs__cu **out, cs_error *err);

/* Opens the driver at path (a file name dlopen searches for, or a path) and cuInits it,
 * uncached: what cs__cu_load does once. The caller closes a table it filled. */
cs_status cs__cu_open(const char *path, cs__cu *out, cs_error *err);
void cs__cu_close(cs__cu *cu);

/* Sets err to "cuMemAlloc: CUDA_ERROR_OUT_OF_MEMORY (out of memory)" for call's result r
 * (call is the entry point's name) and returns CS_ERR_NOMEM for out of memory,
 * CS_ERR_UNSUPPORTED for not supported, CS_ERR_IO (the device failed) otherwise. */
cs_status cs__cu_error(const cs__cu *cu, cs__cu_result r, const char *call, cs_error *err);

#endif
