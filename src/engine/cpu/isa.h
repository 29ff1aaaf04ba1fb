/*
 * isa.h - which of capstan's CPU kernel sets this process runs (internal).
 *
 * The binary is built for baseline x86-64; kernels written for AVX-512 (pgemm.c, dw512.c,
 * unary.c's float loops) are compiled through target attributes and chosen at run time
 * here, so the same binary runs on CPUs without it. CAPSTAN_CPU=portable turns them off on
 * a CPU that has them, so that the portable paths run, and are tested, there too.
 */
#ifndef CS_ENGINE_CPU_ISA_H
#define CS_ENGINE_CPU_ISA_H

#include <stdbool.h>

/* Whether this CPU has AVX-512F and the environment does not say CAPSTAN_CPU=portable;
 * read once per process. */
bool cs__cpu_avx512(void);

#endif
