/*
 * reduce.c - CPU kernels for the reduce operator family (placeholder until the family lands).
 */
#include "engine/kernel.h"

const cs__kernel cs__kernels_reduce[] = {
    {0},
};
