/*
 * shape.c - CPU kernels for the shape operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_shape[] = {
    {0},
};
