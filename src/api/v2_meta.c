/*
 * v2_meta.c - the v2 endpoints that describe rather than compute: liveness, readiness,
 * server and model metadata, model readiness and statistics (Triton's format), and
 * GET /metrics.
 *
 * All are cheap and answered on the HTTP thread. Readiness turns 503 as soon as a drain
 * begins so that load balancers stop sending work before in-flight requests finish.
 */
#include "api/api.h"

#include "base/alloc.h"

#include <string.h>

void cs_v2_live(cs_api_req *r)
{
    cs_api_json(r, MHD_HTTP_OK, json_pack("{s:b}", "live", 1));
}

void cs_v2_ready(cs_api_req *r)
{
    bool ready = !atomic_load(&r->srv->draining);
    cs_api_json(r, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
                json_pack("{s:b}", "ready", ready));
}

void cs_v2_server_metadata(cs_api_req *r)
{
    cs_api_json(r, MHD_HTTP_OK,
                json_pack("{s:s, s:s, s:[s,s,s]}", "name", "capstan", "version", CS_VERSION,
                          "extensions", "binary_tensor_data", "model_repository", "statistics"));
}

/* [{"name", "datatype", "shape"}] with -1 for dynamic dimensions (and [-1] when the model
 * declares no shape at all). */
static json_t *tensor_list(const cs_model_t *m, bool inputs)
{
    json_t *list = json_array();
    int n = inputs ? cs_model_input_count(m) : cs_model_output_count(m);
    for (int i = 0; list && i < n; i++) {
        cs_value_info v = inputs ? cs_model_input(m, i) : cs_model_output(m, i);
        json_t *shape = json_array();
        for (int d = 0; shape && d < (v.rank < 0 ? 1 : v.rank); d++)
            json_array_append_new(shape, json_integer(v.rank < 0 ? -1 : v.dims[d]));
        const char *dt = cs_v2_dtype_name(v.dtype);
        if (json_array_append_new(list, json_pack("{s:s, s:s, s:o}", "name", v.name, "datatype",
                                                  dt ? dt : "UNDEFINED", "shape", shape)) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list;
}

typedef struct versions_ctx {
    const char *name;
    json_t *list;
} versions_ctx;

static void add_version(void *ud, const cs_rt_model *m)
{
    versions_ctx *c = ud;
    if (strcmp(cs_rt_model_name(m), c->name) == 0)
        json_array_append_new(c->list, json_string(cs_rt_model_version(m)));
}

void cs_v2_model_metadata(cs_api_req *r)
{
    if (!cs_api_model_or_404(r)) return;
    const cs_model_t *m = cs_rt_model_engine(r->m);
    versions_ctx vc = {r->model, json_array()};
    if (vc.list) cs_runtime_foreach(r->srv->rt, add_version, &vc);
    cs_api_json(r, MHD_HTTP_OK,
                json_pack("{s:s, s:o, s:s, s:o, s:o}", "name", r->model, "versions", vc.list,
                          "platform", "onnx_onnxv1", "inputs", tensor_list(m, true), "outputs",
                          tensor_list(m, false)));
}

void cs_v2_model_ready(cs_api_req *r)
{
    if (!cs_api_model_or_status(r, MHD_HTTP_BAD_REQUEST)) return;
    bool ready = !atomic_load(&r->srv->draining);
    cs_api_json(
        r, ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE,
        json_pack("{s:s, s:s, s:b}", "name", r->model, "version", r->version, "ready", ready));
}

static json_t *duration(uint64_t count, uint64_t ns)
{
    return json_pack("{s:I, s:I}", "count", (json_int_t)count, "ns", (json_int_t)ns);
}

void cs_v2_model_stats(cs_api_req *r)
{
    if (!cs_api_model_or_404(r)) return;
    cs_rt_stats st;
    cs_rt_model_stats(r->m, &st);
    json_t *batches = json_array();
    for (int b = 1; batches && b < 64; b++)
        if (st.batch_hist[b])
            json_array_append_new(batches,
                                  json_pack("{s:i, s:{s:I}}", "batch_size", b, "compute_infer",
                                            "count", (json_int_t)st.batch_hist[b]));
    json_t *stat = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o}, s:o}", "name", r->model, "version",
        r->version, "last_inference", (json_int_t)st.last_inference_ms, "inference_count",
        (json_int_t)st.inference_count, "execution_count", (json_int_t)st.execution_count,
        "inference_stats", "success", duration(st.success_count, st.queue_ns + st.compute_ns),
        "fail", duration(st.fail_count, 0), "queue", duration(st.inference_count, st.queue_ns),
        "compute_infer", duration(st.inference_count, st.compute_ns), "batch_stats", batches);
    cs_api_json(r, MHD_HTTP_OK, json_pack("{s:[o]}", "model_stats", stat));
}

void cs_api_metrics(cs_api_req *r)
{
    char *text = NULL;
    size_t len = 0;
    cs_error err;
    if (cs_metrics_render(r->srv->metrics, &text, &len, &err) != CS_OK) {
        cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", err.msg);
        return;
    }
    cs_api_reply(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
