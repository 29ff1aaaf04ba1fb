/*
 * clock.h - monotonic time for durations and deadlines, and wall-clock time for logs.
 */
#ifndef CS_BASE_CLOCK_H
#define CS_BASE_CLOCK_H

#include <stdint.h>

/* Monotonic nanoseconds since an arbitrary start; never goes backwards. */
uint64_t cs_now_ns(void);
/* Monotonic microseconds. */
uint64_t cs_now_us(void);
/* Wall-clock nanoseconds since the Unix epoch (for timestamps, not durations). */
uint64_t cs_wall_ns(void);
/* Sleeps at least ns nanoseconds (resuming after signals). */
void cs_sleep_ns(uint64_t ns);
/* Parses a duration as Go and Kubernetes write them, plus days: a sequence of
 * <integer><unit> with units ns, us, ms, s, m, h, d ("30d", "1h30m", "500ms"). Returns 0
 * and sets *ns; -1 for anything else, a negative or an overflowing value. */
int cs_duration_parse(const char *s, int64_t *ns);
/* Seconds elapsed since `start_ns` (a cs_now_ns value), as a double. */
double cs_elapsed_s(uint64_t start_ns);

#endif
