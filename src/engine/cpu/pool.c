/*
 * pool.c - CPU kernels for the pool operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_pool[] = {
    {0},
};
