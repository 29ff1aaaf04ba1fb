/*
 * clock.c - monotonic and wall-clock time; see clock.h.
 *
 * CLOCK_MONOTONIC cannot fail for a valid clock id on Linux, so the calls are not checked.
 */
#include "base/clock.h"

#include <errno.h>
#include <string.h>
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

int cs_duration_parse(const char *s, int64_t *ns)
{
    static const struct {
        const char *unit;
        int64_t ns;
    } units[] = {{"ns", 1},
                 {"us", 1000},
                 {"ms", 1000000},
                 {"s", 1000000000LL},
                 {"m", 60000000000LL},
                 {"h", 3600000000000LL},
                 {"d", 86400000000000LL}};
    int64_t total = 0;
    if (!s || !*s) return -1;
    while (*s) {
        if (*s < '0' || *s > '9') return -1;
        int64_t v = 0;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (INT64_MAX - (*s - '0')) / 10) return -1;
            v = v * 10 + (*s - '0');
        }
        size_t k = 0, len = 0;
        for (; k < sizeof units / sizeof units[0]; k++) {
            len = strlen(units[k].unit);
            /* "m" must not take the "m" of "ms" */
            if (!strncmp(s, units[k].unit, len) && !(len == 1 && s[0] == 'm' && s[1] == 's')) break;
        }
        if (k == sizeof units / sizeof units[0]) return -1;
        if (v > (INT64_MAX - total) / units[k].ns) return -1;
        total += v * units[k].ns;
        s += len;
    }
    *ns = total;
    return 0;
}
