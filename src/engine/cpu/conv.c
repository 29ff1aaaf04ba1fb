/*
 * conv.c - CPU kernels for the conv operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_conv[] = {
    {0},
};
