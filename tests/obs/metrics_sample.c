/*
 * metrics_sample.c - prints a rendering shaped like the server's /metrics, for
 * test_promtool.sh to lint with `promtool check metrics`.
 *
 * It registers the families the API server and runtime will (request counter with
 * model/version/code, latency and batch-size histograms, queue depth, build info), with
 * label values that need escaping, observes a spread of values and writes the text to
 * stdout.
 */
#include "base/alloc.h"
#include "obs/metrics.h"

#include <stdio.h>

int main(void)
{
    cs_error err;
    cs_metrics *r = NULL;
    if (cs_metrics_new(&r, &err) != CS_OK) {
        fprintf(stderr, "cs-metrics-sample: %s\n", err.msg);
        return 1;
    }
    static const char *const req_labels[] = {"model", "version", "code", NULL};
    static const char *const model_labels[] = {"model", "version", NULL};
    static const char *const queue_labels[] = {"model", NULL};
    static const char *const build_labels[] = {"version", "revision", NULL};
    static const double batch_buckets[] = {1, 2, 4, 8, 16, 32, 64, 128};

    cs_metric_family *requests = cs_metrics_family(
        r, CS_METRIC_COUNTER, "capstan_inference_requests_total",
        "Inference requests by model, version and HTTP status code.", req_labels, NULL, 0);
    cs_metric_family *duration = cs_metrics_family(
        r, CS_METRIC_HISTOGRAM, "capstan_request_duration_seconds",
        "Time from request received to response sent, in seconds.", model_labels, NULL, 0);
    cs_metric_family *batch = cs_metrics_family(
        r, CS_METRIC_HISTOGRAM, "capstan_batch_size", "Requests per executed batch.", model_labels,
        batch_buckets, (int)(sizeof batch_buckets / sizeof batch_buckets[0]));
    cs_metric_family *queue =
        cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_queue_depth",
                          "Requests waiting in the model's queue.", queue_labels, NULL, 0);
    cs_metric_family *build =
        cs_metrics_family(r, CS_METRIC_GAUGE, "capstan_build_info",
                          "Build facts as labels; the value is always 1.", build_labels, NULL, 0);
    if (!requests || !duration || !batch || !queue || !build) {
        fprintf(stderr, "cs-metrics-sample: a family was refused\n");
        cs_metrics_free(r);
        return 1;
    }

    static const char *const models[][2] = {{"resnet18", "3"}, {"bert \"base\"\\v2\n", "1"}};
    static const char *const codes[] = {"200", "400", "503"};
    for (int m = 0; m < 2; m++) {
        for (int c = 0; c < 3; c++) {
            const char *v[] = {models[m][0], models[m][1], codes[c]};
            cs_metric_add(cs_metric_get(requests, v), (double)(10 * (c + 1) + m));
        }
        cs_metric *d = cs_metric_get(duration, models[m]);
        cs_metric *b = cs_metric_get(batch, models[m]);
        for (int i = 0; i < 200; i++) {
            cs_metric_observe(d, 0.00005 * (double)(i * i + 1));
            cs_metric_observe(b, (double)(1 + i % 100));
        }
        cs_metric_set(cs_metric_get(queue, models[m]), (double)(m * 7));
    }
    const char *bv[] = {CS_VERSION, CS_GIT_REV};
    cs_metric_set(cs_metric_get(build, bv), 1);

    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    if (cs_metrics_render(r, &text, &len, &err) != CS_OK) {
        fprintf(stderr, "cs-metrics-sample: %s\n", err.msg);
        rc = 1;
    } else if (fwrite(text, 1, len, stdout) != len) {
        rc = 1;
    }
    cs_free(text);
    cs_metrics_free(r);
    return rc;
}
