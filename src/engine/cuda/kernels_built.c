/*
 * kernels_built.c - whether this build embedded the CUDA kernels: the fatbin that
 * tools/embed_bin.c generated (cuda_fatbin.c in the build folder) is empty when the build
 * had no nvcc (CS_CUDA=OFF, or AUTO without one), and the CUDA backend says so.
 */
#include "engine/cuda/kernels.h"

bool cs__cuda_kernels_built(void)
{
    return cs__cuda_fatbin_size > 0;
}
