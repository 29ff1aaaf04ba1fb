/*
 * norm.c - CPU kernels for the norm operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_norm[] = {
    {0},
};
