/*
 * unary.c - CPU kernels for the unary operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_unary[] = {
    {0},
};
