/*
 * v2_meta.c - the v2 endpoints that describe rather than compute: liveness, readiness,
 * server and model metadata, the model list (KServe's), model readiness, configuration and
 * statistics (Triton's formats), and GET /metrics.
 *
 * All are cheap and answered on the HTTP thread. Readiness turns 503 as soon as a drain
 * begins so that load balancers stop sending work before in-flight requests finish.
 */
#include "api/api.h"

#include "api/triton_config.h"
#include "base/alloc.h"

#include <stdlib.h>
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
                json_pack("{s:s, s:s, s:[s,s,s,s]}", "name", "capstan", "version", CS_VERSION,
                          "extensions", "binary_tensor_data", "model_repository", "statistics",
                          "model_configuration"));
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

/* GET /v2/models/{m}[/versions/{v}]/config: the loaded version's configuration, as Triton
 * writes it (triton_config.h); a repository model's version_policy is its config.pbtxt's. */
void cs_v2_model_config(cs_api_req *r)
{
    if (!cs_api_model_or_404(r)) return;
    cs_triton_config *tc = cs_arena_alloc(&r->arena, sizeof *tc, 16);
    if (tc && !cs_api_repo_triton(r->srv, r->model, tc)) tc = NULL;
    json_t *j =
        cs_triton_config_json(r->model, cs_rt_model_engine(r->m), cs_rt_model_config(r->m), tc);
    cs_api_json(r, MHD_HTTP_OK, j);
}

static void add_name(void *ud, const cs_rt_model *m)
{
    json_t *names = ud;
    json_object_set_new(names, cs_rt_model_name(m), json_true());
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET /v2/models: {"models": [names]}, sorted, of every model this server can serve by name:
 * the repository's entries (loaded or not) and every loaded model. */
void cs_v2_models_list(cs_api_req *r)
{
    json_t *set = json_object(), *list = json_array();
    if (set) cs_api_repo_names(r->srv, set);
    if (set) cs_runtime_foreach(r->srv->rt, add_name, set);
    size_t n = set ? json_object_size(set) : 0, k = 0;
    const char **names = cs_arena_alloc(&r->arena, (n ? n : 1) * sizeof *names, 8);
    const char *key;
    json_t *v;
    if (names) json_object_foreach(set, key, v) names[k++] = key;
    if (names) qsort(names, k, sizeof *names, by_string);
    for (size_t i = 0; list && names && i < k; i++)
        json_array_append_new(list, json_string(names[i]));
    json_t *j = set && names ? json_pack("{s:o}", "models", list) : (json_decref(list), NULL);
    json_decref(set);
    cs_api_json(r, MHD_HTTP_OK, j);
}

static json_t *duration(cs_rt_duration d)
{
    return json_pack("{s:I, s:I}", "count", (json_int_t)d.count, "ns", (json_int_t)d.ns);
}

/* One version's entry of Triton's model_stats, every field of the extension. memory_usage
 * is empty (the engine does not attribute memory to versions yet) and response_stats too
 * (there are no decoupled models). Costs O(max_batch_size) for the batch sizes. */
static json_t *model_stat(cs_api_req *r, const cs_rt_model *m)
{
    cs_rt_stats st;
    cs_rt_model_stats(m, &st);
    int n = cs_rt_model_batch_sizes(m);
    cs_rt_batch_stats *bs = cs_arena_alloc(&r->arena, (size_t)n * sizeof *bs, 8);
    json_t *batches = bs ? json_array() : NULL;
    if (batches) cs_rt_model_batch_stats(m, bs, n);
    for (int b = 1; batches && b < n; b++)
        if (bs[b].compute_infer.count)
            json_array_append_new(batches,
                                  json_pack("{s:i, s:o, s:o, s:o}", "batch_size", b,
                                            "compute_input", duration(bs[b].compute_input),
                                            "compute_infer", duration(bs[b].compute_infer),
                                            "compute_output", duration(bs[b].compute_output)));
    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}, "
                     "s:o, s:[], s:{}}",
                     "name", cs_rt_model_name(m), "version", cs_rt_model_version(m),
                     "last_inference", (json_int_t)st.last_inference_ms, "inference_count",
                     (json_int_t)st.inference_count, "execution_count",
                     (json_int_t)st.execution_count, "inference_stats", "success",
                     duration(st.success), "fail", duration(st.fail), "queue", duration(st.queue),
                     "compute_input", duration(st.compute_input), "compute_infer",
                     duration(st.compute_infer), "compute_output", duration(st.compute_output),
                     "cache_hit", duration(st.cache_hit), "cache_miss", duration(st.cache_miss),
                     "batch_stats", batches, "memory_usage", "response_stats");
}

/* Loaded (name, version) pairs, copied out under the runtime's lock so that their stats
 * can be read after it (the runtime's and a version's locks are never held together). */
typedef struct loaded_ctx {
    cs_arena *arena;
    const char *only; /* a model name, or NULL for every model */
    const char **names, **versions;
    int n, cap;
} loaded_ctx;

static const char *copy(cs_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = cs_arena_alloc(a, n, 1);
    if (p) memcpy(p, s, n);
    return p;
}

static void add_loaded(void *ud, const cs_rt_model *m)
{
    loaded_ctx *c = ud;
    if ((c->only && strcmp(cs_rt_model_name(m), c->only) != 0) || c->n == c->cap) return;
    c->names[c->n] = copy(c->arena, cs_rt_model_name(m));
    c->versions[c->n] = copy(c->arena, cs_rt_model_version(m));
    if (c->names[c->n] && c->versions[c->n]) c->n++;
}

#define STATS_MAX 1024 /* versions in one answer */

/* Appends the stats of every loaded version of `only` (NULL: of every model) to list. */
static void add_loaded_stats(cs_api_req *r, const char *only, json_t *list)
{
    loaded_ctx c = {&r->arena, only, NULL, NULL, 0, STATS_MAX};
    c.names = cs_arena_alloc(&r->arena, STATS_MAX * sizeof *c.names, 8);
    c.versions = cs_arena_alloc(&r->arena, STATS_MAX * sizeof *c.versions, 8);
    if (!c.names || !c.versions) return;
    cs_runtime_foreach(r->srv->rt, add_loaded, &c);
    for (int i = 0; i < c.n; i++) {
        cs_rt_model *m = cs_runtime_acquire(r->srv->rt, c.names[i], c.versions[i]);
        if (!m) continue; /* unloaded meanwhile */
        json_array_append_new(list, model_stat(r, m));
        cs_rt_model_release(m);
    }
}

/* GET /v2/models/stats: every loaded version of every model. */
void cs_v2_all_stats(cs_api_req *r)
{
    json_t *list = json_array();
    if (list) add_loaded_stats(r, NULL, list);
    cs_api_json(r, MHD_HTTP_OK, json_pack("{s:o}", "model_stats", list));
}

/* GET /v2/models/{m}[/versions/{v}]/stats: that version, or every loaded version. */
void cs_v2_model_stats(cs_api_req *r)
{
    if (!cs_api_model_or_404(r)) return;
    json_t *list = json_array();
    if (list && r->version[0])
        json_array_append_new(list, model_stat(r, r->m));
    else if (list)
        add_loaded_stats(r, cs_rt_model_name(r->m), list);
    cs_api_json(r, MHD_HTTP_OK, json_pack("{s:o}", "model_stats", list));
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
    if (r->srv->gpu_metrics) { /* NVML's GPU series follow the registry's */
        cs_sbuf sb;
        cs_sbuf_init(&sb, 0);
        cs_status rc = cs_sbuf_append(&sb, text, len);
        cs_free(text);
        if (rc == CS_OK) rc = cs__api_gpu_metrics_render(r->srv, &sb);
        if (rc != CS_OK) {
            cs_sbuf_free(&sb);
            cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory rendering metrics");
            return;
        }
        len = sb.len;
        text = cs_sbuf_take(&sb);
        if (!text) {
            cs_api_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory rendering metrics");
            return;
        }
    }
    cs_api_reply(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len);
}
