/*
 * isa.c - the run-time choice of CPU kernel sets of isa.h: the CPU's features, read once,
 * and the CAPSTAN_CPU=portable override.
 */
#include "engine/cpu/isa.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static bool avx512_on;
static pthread_once_t avx512_once = PTHREAD_ONCE_INIT;

static void avx512_probe(void)
{
    const char *force = getenv("CAPSTAN_CPU");
    __builtin_cpu_init();
    avx512_on = __builtin_cpu_supports("avx512f") && !(force && !strcmp(force, "portable"));
}

bool cs__cpu_avx512(void)
{
    pthread_once(&avx512_once, avx512_probe);
    return avx512_on;
}
