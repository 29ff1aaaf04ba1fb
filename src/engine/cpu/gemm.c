/*
 * gemm.c - CPU kernels for the gemm operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_gemm[] = {
    {0},
};
