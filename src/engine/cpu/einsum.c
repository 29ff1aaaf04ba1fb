/*
 * einsum.c - CPU kernels for the einsum operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_einsum[] = {
    {0},
};
