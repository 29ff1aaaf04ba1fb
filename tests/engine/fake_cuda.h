/*
 * fake_cuda.h - what the fake driver (fake_cuda.c) tells a test about the kernels it was
 * asked to launch. A test reaches these with dlsym on the library CS_LIBCUDA names (the
 * engine's dlopen of the same file shares its state).
 */
#ifndef CS_TESTS_FAKE_CUDA_H
#define CS_TESTS_FAKE_CUDA_H

#include <stddef.h>

#define FAKE_CUDA_MAX_PARAMS 8

/* One cuLaunchKernel, as the fake found it: the kernel's name, its grid and block, and the
 * bytes of each parameter (sizes from the kernel's signature in kernels.h), back to back. */
typedef struct fake_cuda_launch {
    char kernel[48];
    unsigned grid[3], block[3];
    int n_params;
    size_t param_size[FAKE_CUDA_MAX_PARAMS];
    unsigned char params[512];
    int executed; /* the fake computed it in C (float32 and data-movement kernels) */
} fake_cuda_launch;

typedef int (*fake_cuda_count_fn)(void);
typedef const fake_cuda_launch *(*fake_cuda_get_fn)(int i);
typedef void (*fake_cuda_clear_fn)(void);

/* The launches since the last clear, oldest first (at most FAKE_CUDA_MAX_LAUNCHES kept). */
#define FAKE_CUDA_MAX_LAUNCHES 1024
int fake_cuda_launch_count(void);
const fake_cuda_launch *fake_cuda_launch_get(int i);
void fake_cuda_launches_clear(void);

#endif
