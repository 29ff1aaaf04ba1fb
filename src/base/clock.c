/*
 * clock.c - monotonic and wall-clock time; see clock.h.
 *
 * CLOCK_MONOTONIC cannot fail for a valid clock id on Linux, so the calls are not checked.
 */
#include "base/clock.h"

#include <errno.h>
#include <time.h>

uint64_t cs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t cs_now_us(void)
{
    return cs_now_ns() / 1000u;
}

uint64_t cs_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void cs_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

double cs_elapsed_s(uint64_t start_ns)
{
    return (double)(cs_now_ns() - start_ns) / 1e9;
}
