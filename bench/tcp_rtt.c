/*
 * tcp_rtt.c - the floor under any server's latency on this machine: a blocking TCP
 * ping-pong over 127.0.0.1 between two processes, with the request and response sizes of
 * the serving benchmark and nothing else (no HTTP, no parsing).
 *
 * serve_bench.sh reports it next to capstan's and nginx's round trips, so that the share of
 * an end-to-end latency that no server can remove is measured in the same run. On virtual
 * machines most of it is waking a thread on another core, which is why the benchmark runs
 * it both unpinned and with both processes on one core (taskset).
 *
 * usage: cs-tcp-rtt [REQUEST_BYTES [RESPONSE_BYTES [ROUND_TRIPS]]]   (422 268 20000)
 * prints {"p50_us":..,"p99_us":..}
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Reads exactly n bytes (or fails on end of stream). */
static int read_n(int fd, char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static void no_delay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int main(int argc, char **argv)
{
    size_t req = argc > 1 ? strtoul(argv[1], NULL, 10) : 422;
    size_t resp = argc > 2 ? strtoul(argv[2], NULL, 10) : 268;
    int n = argc > 3 ? atoi(argv[3]) : 20000;
    if (req == 0 || resp == 0 || req > 65536 || resp > 65536 || n < 1) {
        fprintf(stderr, "usage: cs-tcp-rtt [REQUEST_BYTES [RESPONSE_BYTES [ROUND_TRIPS]]]\n");
        return 2;
    }
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) || listen(ls, 1) ||
        getsockname(ls, (struct sockaddr *)&sa, &len)) {
        perror("cs-tcp-rtt: listen");
        return 1;
    }
    char *buf = calloc(1, 65536);
    pid_t child = fork();
    if (child == 0) { /* the server: answer every request of `req` bytes with `resp` bytes */
        int c = accept(ls, NULL, NULL);
        no_delay(c);
        while (read_n(c, buf, req) == 0)
            if (write(c, buf, resp) != (ssize_t)resp) break;
        _exit(0);
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (child < 0 || c < 0 || connect(c, (struct sockaddr *)&sa, sizeof sa)) {
        perror("cs-tcp-rtt: connect");
        return 1;
    }
    no_delay(c);
    double *t = malloc((size_t)n * sizeof *t);
    for (int i = 0; i < n; i++) {
        double t0 = now_us();
        if (write(c, buf, req) != (ssize_t)req || read_n(c, buf, resp) != 0) {
            perror("cs-tcp-rtt: round trip");
            return 1;
        }
        t[i] = now_us() - t0;
    }
    close(c);
    waitpid(child, NULL, 0);
    qsort(t, (size_t)n, sizeof *t, cmp);
    printf("{\"p50_us\":%.1f,\"p99_us\":%.1f}\n", t[n / 2], t[(size_t)n * 99 / 100]);
    free(t);
    free(buf);
    return 0;
}
