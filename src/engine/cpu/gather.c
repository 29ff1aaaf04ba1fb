/*
 * gather.c - CPU kernels for the gather operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_gather[] = {
    {0},
};
