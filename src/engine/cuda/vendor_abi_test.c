/*
 * vendor_abi_test.c - vendor_abi.h against the CUDA toolkit's own headers.
 *
 * Built only where the toolkit's headers are (CMakeLists.txt): every enum value blaslt.c
 * and dnn.c pass, and the size and field offsets of every struct the libraries write into,
 * must equal the real ones, checked at compile time; at run time, the loaded libraries'
 * major versions must be the headers' (dlopen works without a GPU).
 */
#include "engine/cuda/blaslt.h"
#include "engine/cuda/dnn.h"
#include "engine/cuda/vendor_abi.h"

#include <cublasLt.h>
#include <cudnn.h>
#include <library_types.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#define SAME(ours, theirs) \
    _Static_assert((long long)(ours) == (long long)(theirs), #ours " != " #theirs)

SAME(CS__CUDA_R_32F, CUDA_R_32F);
SAME(CS__CUDA_R_16F, CUDA_R_16F);
SAME(CS__CUDA_R_16BF, CUDA_R_16BF);
SAME(CS__CUBLAS_STATUS_SUCCESS, CUBLAS_STATUS_SUCCESS);
SAME(CS__CUBLAS_STATUS_NOT_SUPPORTED, CUBLAS_STATUS_NOT_SUPPORTED);
SAME(CS__CUBLAS_OP_N, CUBLAS_OP_N);
SAME(CS__CUBLAS_OP_T, CUBLAS_OP_T);
SAME(CS__CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F);
SAME(CS__CUBLAS_COMPUTE_32F_FAST_TF32, CUBLAS_COMPUTE_32F_FAST_TF32);
SAME(CS__LT_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSA);
SAME(CS__LT_DESC_TRANSB, CUBLASLT_MATMUL_DESC_TRANSB);
SAME(CS__LT_DESC_EPILOGUE, CUBLASLT_MATMUL_DESC_EPILOGUE);
SAME(CS__LT_DESC_BIAS_POINTER, CUBLASLT_MATMUL_DESC_BIAS_POINTER);
SAME(CS__LT_DESC_BIAS_BATCH_STRIDE, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE);
SAME(CS__LT_DESC_BIAS_DATA_TYPE, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE);
SAME(CS__LT_LAYOUT_BATCH_COUNT, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT);
SAME(CS__LT_LAYOUT_STRIDED_BATCH_OFFSET, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET);
SAME(CS__LT_PREF_MAX_WORKSPACE_BYTES, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES);
SAME(CS__LT_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES);
SAME(CS__LT_PREF_MIN_ALIGNMENT_B_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES);
SAME(CS__LT_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES);
SAME(CS__LT_PREF_MIN_ALIGNMENT_D_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES);
SAME(CS__LT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_DEFAULT);
SAME(CS__LT_EPILOGUE_RELU, CUBLASLT_EPILOGUE_RELU);
SAME(CS__LT_EPILOGUE_BIAS, CUBLASLT_EPILOGUE_BIAS);
SAME(CS__LT_EPILOGUE_RELU_BIAS, CUBLASLT_EPILOGUE_RELU_BIAS);
SAME(CS__LT_EPILOGUE_GELU, CUBLASLT_EPILOGUE_GELU);
SAME(CS__LT_EPILOGUE_GELU_BIAS, CUBLASLT_EPILOGUE_GELU_BIAS);

/* The parameters we pass as int32_t are enums of that size in the real headers. */
SAME(sizeof(cublasStatus_t), sizeof(int32_t));
SAME(sizeof(cublasComputeType_t), sizeof(int32_t));
SAME(sizeof(cudaDataType_t), sizeof(int32_t));
SAME(sizeof(cublasLtMatmulDescAttributes_t), sizeof(int32_t));
SAME(sizeof(cublasLtMatrixLayoutAttribute_t), sizeof(int32_t));
SAME(sizeof(cublasLtMatmulPreferenceAttributes_t), sizeof(int32_t));
SAME(sizeof(cublasLtEpilogue_t), sizeof(uint32_t));

SAME(sizeof(cs__lt_algo), sizeof(cublasLtMatmulAlgo_t));
SAME(sizeof(cs__lt_heuristic), sizeof(cublasLtMatmulHeuristicResult_t));
SAME(offsetof(cs__lt_heuristic, algo), offsetof(cublasLtMatmulHeuristicResult_t, algo));
SAME(offsetof(cs__lt_heuristic, workspace_size),
     offsetof(cublasLtMatmulHeuristicResult_t, workspaceSize));
SAME(offsetof(cs__lt_heuristic, state), offsetof(cublasLtMatmulHeuristicResult_t, state));
SAME(offsetof(cs__lt_heuristic, waves_count),
     offsetof(cublasLtMatmulHeuristicResult_t, wavesCount));

SAME(CS__DNN_STATUS_SUCCESS, CUDNN_STATUS_SUCCESS);
SAME(CS__DNN_DATA_FLOAT, CUDNN_DATA_FLOAT);
SAME(CS__DNN_DATA_HALF, CUDNN_DATA_HALF);
SAME(CS__DNN_DEFAULT_MATH, CUDNN_DEFAULT_MATH);
SAME(CS__DNN_TENSOR_OP_MATH, CUDNN_TENSOR_OP_MATH);
SAME(CS__DNN_FMA_MATH, CUDNN_FMA_MATH);
SAME(CS__DNN_TENSOR_NCHW, CUDNN_TENSOR_NCHW);
SAME(CS__DNN_CROSS_CORRELATION, CUDNN_CROSS_CORRELATION);
SAME(CS__DNN_FWD_ALGO_COUNT, CUDNN_CONVOLUTION_FWD_ALGO_COUNT);
SAME(sizeof(cudnnStatus_t), sizeof(int32_t));
SAME(sizeof(cudnnDataType_t), sizeof(int32_t));
SAME(sizeof(cudnnTensorFormat_t), sizeof(int32_t));
SAME(sizeof(cudnnMathType_t), sizeof(int32_t));
SAME(sizeof(cudnnConvolutionMode_t), sizeof(int32_t));
SAME(sizeof(cudnnConvolutionFwdAlgo_t), sizeof(int32_t));
SAME(sizeof(cs__dnn_fwd_perf), sizeof(cudnnConvolutionFwdAlgoPerf_t));
SAME(offsetof(cs__dnn_fwd_perf, algo), offsetof(cudnnConvolutionFwdAlgoPerf_t, algo));
SAME(offsetof(cs__dnn_fwd_perf, status), offsetof(cudnnConvolutionFwdAlgoPerf_t, status));
SAME(offsetof(cs__dnn_fwd_perf, time), offsetof(cudnnConvolutionFwdAlgoPerf_t, time));
SAME(offsetof(cs__dnn_fwd_perf, memory), offsetof(cudnnConvolutionFwdAlgoPerf_t, memory));
SAME(offsetof(cs__dnn_fwd_perf, determinism), offsetof(cudnnConvolutionFwdAlgoPerf_t, determinism));
SAME(offsetof(cs__dnn_fwd_perf, math_type), offsetof(cudnnConvolutionFwdAlgoPerf_t, mathType));

/* The libraries found at run time are the major versions the headers describe. */
static void test_loaded_versions_match_headers(void **state)
{
    cs_error err;
    if (cs__blaslt_load(&err) != CS_OK || cs__dnn_load(&err) != CS_OK) fail_msg("%s", err.msg);
    assert_int_equal(cs__blaslt_version() / 10000, CUBLAS_VER_MAJOR);
    assert_int_equal(cs__dnn_version() / 10000, CUDNN_MAJOR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded_versions_match_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
