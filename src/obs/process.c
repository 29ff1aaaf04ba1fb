/*
 * process.c - reads the process_* metric figures from Linux's /proc; see process.h.
 *
 * /proc/self/stat gives CPU time, memory, threads and the start time (in clock ticks since
 * boot, so /proc/stat's btime turns it into epoch seconds); /proc/self/fd lists the open
 * descriptors. Everything is read at render time: a scrape every few seconds costs far
 * less than keeping the figures current would.
 */
#include "obs/process.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* Reads a small /proc file whole into buf (NUL-terminated); returns its length or -1. */
static long read_small(const char *path, char *buf, size_t size)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, size - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

static double boot_time_seconds(void)
{
    char buf[8192];
    if (read_small("/proc/stat", buf, sizeof buf) < 0) return NAN;
    const char *p = strstr(buf, "\nbtime ");
    return p ? strtod(p + 7, NULL) : NAN;
}

/* Fields of /proc/self/stat, numbered as in proc(5). The command name (field 2) sits in
 * parentheses and may itself hold spaces and parentheses, so parsing starts after the
 * last ')'. */
static void read_stat(cs__obs_process *p)
{
    char buf[4096];
    if (read_small("/proc/self/stat", buf, sizeof buf) < 0) return;
    char *s = strrchr(buf, ')');
    if (!s) return;
    double field[53] = {0};
    int n = 3;
    s++;
    while (n < 53) {
        while (*s == ' ') s++;
        if (!*s || *s == '\n') break;
        if (n == 3) { /* the state is a letter */
            s++;
        } else {
            char *end = NULL;
            field[n] = strtod(s, &end);
            if (end == s) break;
            s = end;
        }
        n++;
    }
    if (n <= 24) return;
    double tick = (double)sysconf(_SC_CLK_TCK);
    double page = (double)sysconf(_SC_PAGESIZE);
    p->cpu_seconds = (field[14] + field[15]) / tick;
    p->threads = field[20];
    p->start_time_seconds = boot_time_seconds() + field[22] / tick;
    p->virtual_bytes = field[23];
    p->resident_bytes = field[24] * page;
}

static void read_fds(cs__obs_process *p)
{
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long n = 0;
        for (struct dirent *e; (e = readdir(d));)
            if (e->d_name[0] != '.') n++;
        closedir(d);
        p->open_fds = (double)(n - 1); /* the directory stream's own descriptor */
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        p->max_fds = (double)rl.rlim_cur;
}

void cs__obs_process_read(cs__obs_process *p)
{
    p->cpu_seconds = p->resident_bytes = p->virtual_bytes = NAN;
    p->start_time_seconds = p->threads = p->open_fds = p->max_fds = NAN;
    read_stat(p);
    read_fds(p);
}
