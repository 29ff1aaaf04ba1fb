/*
 * binary.c - CPU kernels for the binary operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_binary[] = {
    {0},
};
