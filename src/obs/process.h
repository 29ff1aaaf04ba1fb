/*
 * process.h - the process's own resource figures, read from /proc (internal to obs).
 *
 * metrics.c renders these as the standard process_* metrics. Reading them is the only
 * Linux-specific code in obs, so it lives alone in process.c.
 */
#ifndef CS_OBS_PROCESS_H
#define CS_OBS_PROCESS_H

/* Every figure is NAN when the system could not tell it (no /proc, a format surprise). */
typedef struct cs__obs_process {
    double cpu_seconds;        /* user + system CPU time */
    double resident_bytes;     /* resident set size */
    double virtual_bytes;      /* virtual memory size */
    double start_time_seconds; /* since the Unix epoch */
    double threads;
    double open_fds;
    double max_fds; /* the soft RLIMIT_NOFILE */
} cs__obs_process;

/* Reads every figure now. Costs a few small file reads and one directory scan. */
void cs__obs_process_read(cs__obs_process *p);

#endif
