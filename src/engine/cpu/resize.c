/*
 * resize.c - CPU kernels for the resize operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_resize[] = {
    {0},
};
