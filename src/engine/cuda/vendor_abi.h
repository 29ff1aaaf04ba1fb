/*
 * vendor_abi.h - the part of cuBLASLt 13 and cuDNN 9 that blaslt.c and dnn.c call (internal).
 *
 * Both libraries are opened with dlopen at run time, so every build compiles these files
 * and none includes a CUDA header. The types, enum values and struct layouts below are
 * copied from the CUDA 13 toolkit's cublasLt.h, cublas_api.h, library_types.h and
 * cudnn_{graph,ops,cnn}_v9.h under names of our own, so they never clash with the real
 * ones; vendor_abi_test.c (built where /usr/local/cuda/include has the headers) compares
 * each value and size with the toolkit's, so a mismatch fails a unit test, not a GPU run.
 * Enum-typed parameters are passed as int32_t, which is how the x86-64 and aarch64 ABIs
 * pass a C enum; handles and descriptors are opaque pointers.
 */
#ifndef CS_ENGINE_CUDA_VENDOR_ABI_H
#define CS_ENGINE_CUDA_VENDOR_ABI_H

#include <stddef.h>
#include <stdint.h>

/* --- library_types.h: cudaDataType_t -------------------------------------------------- */
enum {
    CS__CUDA_R_32F = 0,
    CS__CUDA_R_16F = 2,
    CS__CUDA_R_16BF = 14,
};

/* --- cublas_api.h ---------------------------------------------------------------------- */
enum { CS__CUBLAS_STATUS_SUCCESS = 0, CS__CUBLAS_STATUS_NOT_SUPPORTED = 15 };
enum { CS__CUBLAS_OP_N = 0, CS__CUBLAS_OP_T = 1 };
enum { CS__CUBLAS_COMPUTE_32F = 68, CS__CUBLAS_COMPUTE_32F_FAST_TF32 = 77 };

/* --- cublasLt.h ------------------------------------------------------------------------ */
enum { /* cublasLtMatmulDescAttributes_t */
       CS__LT_DESC_TRANSA = 3,
       CS__LT_DESC_TRANSB = 4,
       CS__LT_DESC_EPILOGUE = 7,
       CS__LT_DESC_BIAS_POINTER = 8,
       CS__LT_DESC_BIAS_BATCH_STRIDE = 10,
       CS__LT_DESC_BIAS_DATA_TYPE = 26,
};
enum { /* cublasLtMatrixLayoutAttribute_t */
       CS__LT_LAYOUT_BATCH_COUNT = 5,
       CS__LT_LAYOUT_STRIDED_BATCH_OFFSET = 6,
};
enum { /* cublasLtMatmulPreferenceAttributes_t */
       CS__LT_PREF_MAX_WORKSPACE_BYTES = 1,
       CS__LT_PREF_MIN_ALIGNMENT_A_BYTES = 5,
       CS__LT_PREF_MIN_ALIGNMENT_B_BYTES = 6,
       CS__LT_PREF_MIN_ALIGNMENT_C_BYTES = 7,
       CS__LT_PREF_MIN_ALIGNMENT_D_BYTES = 8,
};
enum { /* cublasLtEpilogue_t */
       CS__LT_EPILOGUE_DEFAULT = 1,
       CS__LT_EPILOGUE_RELU = 2,
       CS__LT_EPILOGUE_BIAS = 4,
       CS__LT_EPILOGUE_RELU_BIAS = 6,
       CS__LT_EPILOGUE_GELU = 32,
       CS__LT_EPILOGUE_GELU_BIAS = 36,
};

typedef struct cs__lt_algo { /* cublasLtMatmulAlgo_t */
    uint64_t data[8];
} cs__lt_algo;

typedef struct cs__lt_heuristic { /* cublasLtMatmulHeuristicResult_t */
    cs__lt_algo algo;
    size_t workspace_size;
    int32_t state; /* cublasStatus_t */
    float waves_count;
    int reserved[4];
} cs__lt_heuristic;

/* --- cudnn_graph_v9.h / cudnn_ops_v9.h / cudnn_cnn_v9.h --------------------------------- */
enum { CS__DNN_STATUS_SUCCESS = 0 };
enum { CS__DNN_DATA_FLOAT = 0, CS__DNN_DATA_HALF = 2 };
enum { CS__DNN_DEFAULT_MATH = 0, CS__DNN_TENSOR_OP_MATH = 1, CS__DNN_FMA_MATH = 3 };
enum { CS__DNN_TENSOR_NCHW = 0 };
enum { CS__DNN_CROSS_CORRELATION = 1 };
enum { CS__DNN_FWD_ALGO_COUNT = 8 };

typedef struct cs__dnn_fwd_perf { /* cudnnConvolutionFwdAlgoPerf_t */
    int32_t algo;                 /* cudnnConvolutionFwdAlgo_t */
    int32_t status;               /* cudnnStatus_t */
    float time;
    size_t memory;
    int32_t determinism; /* cudnnDeterminism_t */
    int32_t math_type;   /* cudnnMathType_t */
    int reserved[3];
} cs__dnn_fwd_perf;

#endif
