/*
 * dnn.h - 2-D convolution on the GPU through cuDNN 9's legacy API, loaded at run time
 * (internal).
 *
 * NCHW tensors, grouped, strided, padded and dilated, float32 or float16 (float16 data
 * with float32 accumulation: cuDNN's "pseudo-half" configuration). The legacy descriptor
 * API (cudnnConvolutionForward with tensor, filter and convolution descriptors) is kept
 * in cuDNN 9 (cudnn_cnn_v9.h, marked deprecated) and takes a fraction of the graph API's
 * code. Bias and activation are not fused here: the backend runs its own epilogue kernel.
 *
 * Lifetimes as in blaslt.h: the cuDNN handle is the backend's; a cs__cuda_conv_plan is
 * made once per shape at plan time (descriptors, algorithm, workspace size) and freed
 * with the plan; a run sets the handle's stream and queues the convolution.
 */
#ifndef CS_ENGINE_CUDA_DNN_H
#define CS_ENGINE_CUDA_DNN_H

#include "engine/cuda/vendor_abi.h"

#include <capstan/engine.h>
#include <stdbool.h>

#define CS__DNN_ENV "CS_LIBCUDNN"
#define CS__DNN_LIB "libcudnn.so.9"

/* Opens cuDNN and resolves every function dnn.c calls; as cs__blaslt_load (retried after a
 * failure, CS_ERR_UNSUPPORTED naming the file and CS_LIBCUDNN). Needs no GPU. */
cs_status cs__dnn_load(cs_error *err);

/* cudnnGetVersion() of the loaded library (e.g. 91900), 0 before a load succeeded. */
size_t cs__dnn_version(void);

/* A cuDNN handle (cudnnCreate), freed with cs__dnn_handle_free. Needs a GPU. */
cs_status cs__dnn_handle_new(void **out, cs_error *err);
void cs__dnn_handle_free(void *handle);

/* Y[n, k, oh, ow] = alpha * conv(X[n, c, h, w], W[k, c / groups, r, s]) + beta * Y. */
typedef struct cs__cuda_conv_shape {
    cs_dtype type; /* X, W and Y: float32 or float16 */
    int64_t n, c, h, w;
    int64_t k, r, s;
    int64_t groups;             /* divides c and k */
    int64_t pad_h, pad_w;       /* per side; cuDNN's descriptor pads both sides equally */
    int64_t stride_h, stride_w; /* >= 1 */
    int64_t dil_h, dil_w;       /* >= 1 */
    bool tf32;                  /* float32 only: allow TF32 tensor cores (else exact FMA math) */
    size_t max_workspace;       /* the largest workspace the caller will pass to runs */
} cs__cuda_conv_shape;

/* Checks a shape (sizes >= 1 and within int32, groups dividing c and k, a type cuDNN is
 * given here: CS_ERR_UNSUPPORTED naming it) and gives the output's height and width.
 * Pure; calls no library. */
cs_status cs__cuda_conv_check(const cs__cuda_conv_shape *s, int64_t *oh, int64_t *ow,
                              cs_error *err);

typedef struct cs__cuda_conv_plan {
    cs__cuda_conv_shape shape;
    int64_t oh, ow;
    void *x, *y;      /* cudnnTensorDescriptor_t */
    void *filter;     /* cudnnFilterDescriptor_t */
    void *conv;       /* cudnnConvolutionDescriptor_t */
    int32_t algo;     /* cudnnConvolutionFwdAlgo_t */
    size_t workspace; /* bytes the algorithm needs, <= shape.max_workspace */
} cs__cuda_conv_plan;

/* Checks *shape and makes the descriptors (host objects: no GPU needed), without an
 * algorithm; plan_init does this first. On failure *p holds nothing. */
cs_status cs__cuda_conv_plan_describe(cs__cuda_conv_plan *p, const cs__cuda_conv_shape *shape,
                                      cs_error *err);

/* Checks *shape, makes the descriptors and picks the algorithm once, with
 * cudnnGetConvolutionForwardAlgorithm_v7: its heuristic ranks the algorithms without
 * running them, so planning takes microseconds and needs neither device buffers nor
 * workspace (cudnnFindConvolutionForwardAlgorithm times each algorithm on the GPU and
 * allocates its own workspace, which would step outside the session's memory bound). The
 * first algorithm that succeeds within shape->max_workspace is kept, and its workspace
 * size is in p->workspace for the caller to provide. Needs a GPU (the handle); shape
 * errors come before any library call. */
cs_status cs__cuda_conv_plan_init(cs__cuda_conv_plan *p, void *handle,
                                  const cs__cuda_conv_shape *shape, cs_error *err);
void cs__cuda_conv_plan_free(cs__cuda_conv_plan *p);

typedef struct cs__cuda_conv_args {
    const cs__cuda_conv_plan *plan;
    void *handle;
    uint64_t x, w, y;   /* device addresses */
    float alpha, beta;  /* 1 and 0 for a plain convolution */
    uint64_t workspace; /* workspace_size bytes; 0 when the size is 0 */
    size_t workspace_size;
    void *stream; /* CUstream; NULL: the default stream */
} cs__cuda_conv_args;

/* Checks a run's arguments against its plan (pointers present, workspace large enough).
 * Pure. */
cs_status cs__cuda_conv_args_check(const cs__cuda_conv_args *a, cs_error *err);

/* Queues the convolution on a->stream; returns before it ran. */
cs_status cs__cuda_conv(const cs__cuda_conv_args *a, cs_error *err);

#endif
