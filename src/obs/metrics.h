/*
 * metrics.h - the metric registry and its Prometheus text exposition.
 *
 * Families (a name, help text, type, label names) hold series (one per set of label
 * values). Series pointers are stable for the registry's lifetime, so hot paths look a
 * series up once and then only add, set or observe, which are thread-safe and lock-free
 * for counters and gauges. Rendering takes each family's lock briefly.
 */
#ifndef CS_OBS_METRICS_H
#define CS_OBS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "capstan/status.h"

typedef struct cs_metrics cs_metrics;
typedef struct cs_metric_family cs_metric_family;
typedef struct cs_metric cs_metric;

typedef enum cs_metric_type {
    CS_METRIC_COUNTER,
    CS_METRIC_GAUGE,
    CS_METRIC_HISTOGRAM,
} cs_metric_type;

/* Latency buckets in seconds, 100 us to 10 s, used when a histogram passes no buckets. */
extern const double cs_metrics_latency_buckets[];
extern const int cs_metrics_latency_bucket_count;

cs_status cs_metrics_new(cs_metrics **out, cs_error *err);
void cs_metrics_free(cs_metrics *r);

/* Registers a family, or returns the existing one of that name when its type and labels
 * (and, for histograms, its buckets) match (NULL when they do not, on invalid names,
 * labels or buckets, or on out-of-memory). Names starting "process_" are reserved for
 * the process metrics. `labels` is a NULL-terminated list
 * (NULL for none); `buckets` are upper bounds in increasing order, for histograms only
 * (NULL = cs_metrics_latency_buckets). Names follow Prometheus rules. */
cs_metric_family *cs_metrics_family(cs_metrics *r, cs_metric_type type, const char *name,
                                    const char *help, const char *const *labels,
                                    const double *buckets, int n_buckets);

/* Finds or creates the series with these label values (as many as the family has labels).
 * Thread-safe. The pointer stays valid until cs_metrics_free. NULL on out-of-memory. */
cs_metric *cs_metric_get(cs_metric_family *f, const char *const *values);

void cs_metric_add(cs_metric *m, double v);     /* counters (v >= 0) and gauges */
void cs_metric_set(cs_metric *m, double v);     /* gauges */
void cs_metric_observe(cs_metric *m, double v); /* histograms */
double cs_metric_value(const cs_metric *m);     /* counter/gauge value, histogram count */

/* A histogram's buckets now: up to max per-bucket (not cumulative) counts into counts, the
 * last one for +Inf, and *bounds set to the family's upper bounds (n - 1 of them). Returns
 * the number of buckets (n_bounds + 1), 0 for NULL or a family of another type. Lock-free. */
int cs_metric_buckets(const cs_metric *m, uint64_t *counts, int max, const double **bounds);

/* The q-quantile (0..1) of the observations counted in counts (per bucket, as above, over
 * n buckets with bounds), interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does: the lowest bucket starts at 0 and a quantile in +Inf is the
 * highest bound. NAN when counts are all zero. */
double cs_metric_quantile(double q, const uint64_t *counts, int n, const double *bounds);

/* Renders every family in Prometheus text format 0.0.4 (families without series are left
 * out), plus the process metrics (process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_cpu_seconds_total, process_open_fds,
 * process_max_fds, process_threads, process_start_time_seconds) read from /proc at call
 * time.
 * *out is NUL-terminated; free it with cs_free. */
cs_status cs_metrics_render(cs_metrics *r, char **out, size_t *len, cs_error *err);

#endif
