/*
 * dw512_test.c - dw512.c's clamp against CS__CLAMP, element by element, bit for bit, on
 * every length up to 40 (masked tails), with NaN, signed zeros, infinities and lo > hi.
 * Its 3x3 taps are checked through conv_test's depthwise shapes. Skipped on CPUs without
 * AVX-512, where conv.c never calls either.
 */
#include "engine/cpu/dw512.h"
#include "engine/cpu/pgemm.h"

#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static void test_clamp_as_clip(void **state)
{
    if (!cs__cpu_avx512()) skip();
    const float vals[] = {-7.5f, -0.0f, 0.0f, 0.25f, 5.99f, 6.0f, 6.5f, NAN, INFINITY, -INFINITY};
    const float bounds[][2] = {{0, 6}, {0, INFINITY}, {-1, 1}, {0.5f, -0.5f}, {NAN, 2}};
    const int nv = sizeof vals / sizeof vals[0];
    for (size_t bi = 0; bi < sizeof bounds / sizeof bounds[0]; bi++)
        for (int64_t n = 0; n <= 40; n++) {
            float y[41], want[41];
            for (int64_t i = 0; i <= 40; i++) y[i] = vals[(i * 7 + n) % nv];
            for (int64_t i = 0; i <= 40; i++)
                want[i] = i < n ? CS__CLAMP(y[i], bounds[bi][0], bounds[bi][1]) : y[i];
            cs__dw512_clamp(y, n, bounds[bi][0], bounds[bi][1]);
            /* the element past n is untouched too */
            if (memcmp(y, want, sizeof y) != 0)
                fail_msg("bounds %g %g, n = %lld: differs from CS__CLAMP", bounds[bi][0],
                         bounds[bi][1], (long long)n);
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clamp_as_clip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
