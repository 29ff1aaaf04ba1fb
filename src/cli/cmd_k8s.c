/*
 * cmd_k8s.c - `capstan k8s render -f deployment.yaml [-o yaml|json] [--image IMAGE]`: a
 * capstan Deployment (docs/deployments.md) as the Kubernetes objects that run it on a cluster,
 * shaped as deploy/kubernetes/base and its cluster and gpu overlays are.
 *
 * Each document is decoded and validated by the server's own decoder (cs_deploy_spec_parse,
 * runtime/deploy_spec.c), so a spec that `capstan apply` would refuse is refused here with the
 * same field path, and the defaults are the same. For a Deployment NAME it writes:
 *   - apps/v1 Deployment NAME: `capstan serve` on the cluster's shared registry (the Secret
 *     capstan-registry, key url) and blob volume (the claim capstan-blobs), as the cluster
 *     overlay runs it, with the base's probes, restricted securityContext and resources;
 *     replicas = the HPA's minimum; the rolling update's maxSurge and maxUnavailable from
 *     spec.rollout.rolling;
 *   - v1 Service NAME on port 8080;
 *   - autoscaling/v2 HorizontalPodAutoscaler NAME: spec.instances.min (at least 1: the HPA
 *     cannot scale to zero) to max (10 when max is 0, unbounded), on the Pods metric
 *     capstan_inflight_requests (prometheus-adapter, deploy/kubernetes/prometheus-adapter) at
 *     an average of spec.instances.targetConcurrency per pod; scale-down looks back over
 *     spec.autoscaling.stableWindow;
 *   - policy/v1 PodDisruptionBudget NAME: minAvailable 1 from two replicas on, else
 *     maxUnavailable 1 (so that a single replica never blocks a node drain);
 *   - with spec.resources.devices, resource.k8s.io/v1 ResourceClaimTemplate NAME-devices whose
 *     requests are the spec's, one claim per pod, wired into the pod's resourceClaims and the
 *     container's resources.claims.
 * The Deployment itself is applied to the shared registry as on one machine (`capstan apply`);
 * every replica serves it. -o yaml (the default) prints the objects as YAML documents, -o json
 * as one v1 List. Nothing is sent anywhere.
 */
#include "base/sbuf.h"
#include "cli/cli.h"
#include "cli/output.h"
#include "devices/ytree.h"
#include "runtime/deploy_spec.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_IMAGE    "localhost/capstan:latest"
#define MAX_REPLICAS_CAP 10 /* spec.instances.max 0 (unbounded) on a cluster */

static const char usage[] =
    "usage: capstan k8s render -f FILE [-o yaml|json] [--image IMAGE]\n\n"
    "Prints the Kubernetes objects that run the capstan Deployments in FILE (YAML, several\n"
    "documents, or JSON; - for stdin) on a cluster: Deployment, Service, HorizontalPodAutoscaler\n"
    "(autoscaling/v2, on in-flight requests per pod), PodDisruptionBudget and, for\n"
    "spec.resources.devices, a resource.k8s.io/v1 ResourceClaimTemplate. Pods use the\n"
    "cluster's shared registry (Secret capstan-registry) and blob volume (claim capstan-blobs);\n"
    "see docs/kubernetes.md.\n\n"
    "options:\n"
    "  -f, --filename FILE  the capstan Deployment(s) to render\n"
    "  -o, --output F       yaml (documents, the default) or json (a v1 List)\n"
    "  --image IMAGE        the container image (" DEFAULT_IMAGE ")\n"
    "  -h, --help           show this help\n";

enum { OPT_IMAGE = 256 };

typedef struct k8s_opts {
    const char *file, *image;
    bool json;
} k8s_opts;

static int on_option(void *user, int opt, const char *arg)
{
    k8s_opts *o = user;
    switch (opt) {
    case 'f': o->file = arg; break;
    case OPT_IMAGE:
        if (!*arg) return cs_cli_usage_error("k8s", "--image must not be empty");
        o->image = arg;
        break;
    default: /* 'o' */
        if (strcasecmp(arg, "yaml") && strcasecmp(arg, "json"))
            return cs_cli_usage_error("k8s", "-o expects yaml or json, got '%s'", arg);
        o->json = !strcasecmp(arg, "json");
        break;
    }
    return CS_CLI_CONTINUE;
}

/* --- the objects --------------------------------------------------------------------------- */

/* The container as deploy/kubernetes/base has it, with the cluster overlay's registry. */
static const char container_json[] =
    "{\"name\": \"capstan\", \"image\": \"\","
    " \"args\": [\"--port=8080\", \"--exit-timeout=30\", \"--registry=$(CAPSTAN_REGISTRY_URL)\","
    "   \"--auth-token-file=/etc/capstan/token\"],"
    " \"env\": [{\"name\": \"CAPSTAN_REGISTRY_URL\","
    "   \"valueFrom\": {\"secretKeyRef\": {\"name\": \"capstan-registry\", \"key\": \"url\"}}}],"
    " \"ports\": [{\"name\": \"http\", \"containerPort\": 8080, \"protocol\": \"TCP\"}],"
    " \"startupProbe\": {\"httpGet\": {\"path\": \"/v2/health/ready\", \"port\": \"http\"},"
    "   \"periodSeconds\": 10, \"timeoutSeconds\": 1, \"failureThreshold\": 30},"
    " \"livenessProbe\": {\"httpGet\": {\"path\": \"/v2/health/live\", \"port\": \"http\"},"
    "   \"periodSeconds\": 10, \"timeoutSeconds\": 1, \"failureThreshold\": 3},"
    " \"readinessProbe\": {\"httpGet\": {\"path\": \"/v2/health/ready\", \"port\": \"http\"},"
    "   \"periodSeconds\": 5, \"timeoutSeconds\": 1, \"failureThreshold\": 3},"
    " \"resources\": {\"requests\": {\"cpu\": \"1\", \"memory\": \"256Mi\"},"
    "   \"limits\": {\"memory\": \"1Gi\"}},"
    " \"securityContext\": {\"allowPrivilegeEscalation\": false, \"readOnlyRootFilesystem\": true,"
    "   \"runAsNonRoot\": true, \"capabilities\": {\"drop\": [\"ALL\"]},"
    "   \"seccompProfile\": {\"type\": \"RuntimeDefault\"}},"
    " \"volumeMounts\": [{\"name\": \"data\", \"mountPath\": \"/data\"},"
    "   {\"name\": \"tmp\", \"mountPath\": \"/tmp\"},"
    "   {\"name\": \"admin-token\", \"mountPath\": \"/etc/capstan\", \"readOnly\": true}]}";

static const char pod_json[] =
    "{\"terminationGracePeriodSeconds\": 40, \"automountServiceAccountToken\": false,"
    " \"securityContext\": {\"runAsNonRoot\": true, \"runAsUser\": 65532, \"runAsGroup\": 65532,"
    "   \"fsGroup\": 65532, \"seccompProfile\": {\"type\": \"RuntimeDefault\"}},"
    " \"volumes\": [{\"name\": \"data\", \"persistentVolumeClaim\": {\"claimName\": "
    "\"capstan-blobs\"}},"
    "   {\"name\": \"tmp\", \"emptyDir\": {\"sizeLimit\": \"256Mi\"}},"
    "   {\"name\": \"admin-token\", \"secret\": {\"secretName\": \"capstan-admin-token\","
    "     \"items\": [{\"key\": \"token\", \"path\": \"token\"}], \"defaultMode\": 288}}]}";

static json_t *labels(const char *name)
{
    return json_pack("{s:s, s:s, s:s}", "app.kubernetes.io/name", "capstan",
                     "app.kubernetes.io/instance", name, "app.kubernetes.io/component",
                     "inference");
}

/* An object named name, labelled as deployment dep's. */
static json_t *object(const char *api, const char *kind, const char *name, const char *dep,
                      json_t *spec)
{
    return json_pack("{s:s, s:s, s:{s:s, s:o}, s:o}", "apiVersion", api, "kind", kind, "metadata",
                     "name", name, "labels", labels(dep), "spec", spec);
}

/* A rolling-update amount as Kubernetes writes it: an integer, or "25%". */
static json_t *amount(cs_deploy_amount a)
{
    if (!a.percent) return json_integer(a.value);
    char b[16];
    snprintf(b, sizeof b, "%d%%", a.value);
    return json_string(b);
}

/* A quantity for the HPA's averageValue: "70", or milli-units ("1500m") for a fraction. */
static json_t *quantity(double v)
{
    char b[32];
    if (v == floor(v))
        snprintf(b, sizeof b, "%.0f", v);
    else
        snprintf(b, sizeof b, "%.0fm", ceil(v * 1000));
    return json_string(b);
}

static json_t *deployment(const cs_deploy_spec *s, const char *image, int replicas)
{
    char claim[CS_DEPLOY_NAME_MAX + 16];
    snprintf(claim, sizeof claim, "%s-devices", s->name);
    json_t *c = json_loads(container_json, 0, NULL), *pod = json_loads(pod_json, 0, NULL);
    if (!c || !pod) goto oom;
    json_object_set_new(c, "image", json_string(image));
    if (s->device_requests) {
        json_object_set_new(json_object_get(c, "resources"), "claims",
                            json_pack("[{s:s}]", "name", "devices"));
        json_object_set_new(
            pod, "resourceClaims",
            json_pack("[{s:s, s:s}]", "name", "devices", "resourceClaimTemplateName", claim));
    }
    json_object_set_new(pod, "containers", json_pack("[o]", c));
    return object("apps/v1", "Deployment", s->name, s->name,
                  json_pack("{s:i, s:{s:o}, s:{s:s, s:{s:o, s:o}}, s:{s:{s:o}, s:o}}", "replicas",
                            replicas, "selector", "matchLabels", labels(s->name), "strategy",
                            "type", "RollingUpdate", "rollingUpdate", "maxSurge",
                            amount(s->max_surge), "maxUnavailable", amount(s->max_unavailable),
                            "template", "metadata", "labels", labels(s->name), "spec", pod));
oom:
    json_decref(c);
    json_decref(pod);
    return NULL;
}

/* Every object for one spec, appended to items; false when out of memory. */
static bool render(const cs_deploy_spec *s, const char *image, json_t *items)
{
    int min = s->min > 0 ? s->min : 1;
    int max = s->max > 0 ? s->max : MAX_REPLICAS_CAP;
    if (max < min) max = min;
    json_t *objs[5] = {
        deployment(s, image, min),
        object("v1", "Service", s->name, s->name,
               json_pack("{s:s, s:o, s:[{s:s, s:i, s:s, s:s}]}", "type", "ClusterIP", "selector",
                         labels(s->name), "ports", "name", "http", "port", 8080, "targetPort",
                         "http", "protocol", "TCP")),
        object("autoscaling/v2", "HorizontalPodAutoscaler", s->name, s->name,
               json_pack("{s:{s:s, s:s, s:s}, s:i, s:i, s:[{s:s, s:{s:{s:s}, s:{s:s, s:o}}}],"
                         " s:{s:{s:I}}}",
                         "scaleTargetRef", "apiVersion", "apps/v1", "kind", "Deployment", "name",
                         s->name, "minReplicas", min, "maxReplicas", max, "metrics", "type", "Pods",
                         "pods", "metric", "name", "capstan_inflight_requests", "target", "type",
                         "AverageValue", "averageValue", quantity(s->target_concurrency),
                         "behavior", "scaleDown", "stabilizationWindowSeconds",
                         (json_int_t)((s->stable_window_ms + 999) / 1000))),
        object("policy/v1", "PodDisruptionBudget", s->name, s->name,
               json_pack("{s:i, s:{s:o}}", min >= 2 ? "minAvailable" : "maxUnavailable", 1,
                         "selector", "matchLabels", labels(s->name))),
        NULL,
    };
    if (s->device_requests) {
        char claim[CS_DEPLOY_NAME_MAX + 16];
        snprintf(claim, sizeof claim, "%s-devices", s->name);
        objs[4] =
            object("resource.k8s.io/v1", "ResourceClaimTemplate", claim, s->name,
                   json_pack("{s:{s:{s:O}}}", "spec", "devices", "requests", s->device_requests));
    }
    bool ok = true;
    for (int i = 0; i < 5; i++) {
        if (i < 4 || s->device_requests) ok = ok && objs[i];
        if (objs[i]) json_array_append_new(items, objs[i]);
    }
    return ok;
}

/* --- the command ----------------------------------------------------------------------------- */

/* Decodes every document of text into items; CS_CLI_OK or the reported failure. */
static int render_file(const k8s_opts *o, const cs_sbuf *text, json_t *items)
{
    cs_ystream ys = {0};
    cs_error err;
    int rc = CS_CLI_OK;
    if (cs_ystream_parse(&ys, text->data ? text->data : "", text->len, &err) != CS_OK)
        rc = cs_cli_error("k8s", "%s: %s", o->file, err.msg);
    else if (ys.n_docs == 0)
        rc = cs_cli_error("k8s", "%s: no documents", o->file);
    for (size_t i = 0; rc == CS_CLI_OK && i < ys.n_docs; i++) {
        cs_sbuf body;
        cs_sbuf_init(&body, 0);
        json_t *doc = cs_ynode_write_json(ys.docs[i], &body) == CS_OK
                          ? json_loadb(body.data, body.len, 0, NULL)
                          : NULL;
        cs_deploy_spec spec;
        if (!doc)
            rc = cs_cli_error("k8s", "out of memory");
        else if (cs_deploy_spec_parse(doc, &spec, &err) != CS_OK)
            rc = cs_cli_error("k8s", "%s: document %zu: %s", o->file, i + 1, err.msg);
        else {
            if (!render(&spec, o->image, items)) rc = cs_cli_error("k8s", "out of memory");
            cs_deploy_spec_free(&spec);
        }
        json_decref(doc);
        cs_sbuf_free(&body);
    }
    cs_ystream_free(&ys);
    return rc;
}

static int print(const k8s_opts *o, json_t *items)
{
    if (o->json) {
        json_t *list =
            json_pack("{s:s, s:s, s:O}", "apiVersion", "v1", "kind", "List", "items", items);
        int rc = list && json_dumpf(list, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) == 0
                     ? CS_CLI_OK
                     : cs_cli_error("k8s", "out of memory");
        if (rc == CS_CLI_OK) putchar('\n');
        json_decref(list);
        return rc;
    }
    size_t i;
    json_t *x;
    json_array_foreach(items, i, x) /* each starts with its own "---" */
        if (cs_cli_print_yaml_doc(x, true) != CS_CLI_OK) return cs_cli_error("k8s",
                                                                             "out of memory");
    return CS_CLI_OK;
}

static int k8s_main(int argc, char **argv)
{
    static const struct option longopts[] = {{"filename", required_argument, NULL, 'f'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"image", required_argument, NULL, OPT_IMAGE},
                                             {0}};
    static const cs_cli_spec spec = {"k8s", usage, "f:o:", longopts};
    k8s_opts o = {.image = DEFAULT_IMAGE};
    int first;
    int rc = cs_cli_parse(&spec, argc, argv, on_option, &o, &first);
    if (rc != CS_CLI_CONTINUE) return rc;
    if (first >= argc || strcmp(argv[first], "render"))
        return cs_cli_usage_error("k8s", "expected the subcommand render, got '%s'",
                                  first < argc ? argv[first] : "");
    if (first + 1 != argc) return cs_cli_usage_error("k8s", "render takes only -f FILE");
    if (!o.file) return cs_cli_usage_error("k8s", "render: -f FILE is required");
    cs_sbuf text;
    cs_sbuf_init(&text, 0);
    json_t *items = json_array();
    rc = items ? cs__cli_read_file("k8s", o.file, &text) : cs_cli_error("k8s", "out of memory");
    if (rc == CS_CLI_OK) rc = render_file(&o, &text, items);
    if (rc == CS_CLI_OK) rc = print(&o, items);
    json_decref(items);
    cs_sbuf_free(&text);
    return rc;
}

const cs_cli_command cs_cli_k8s_cmd = {"k8s", "render a Deployment as Kubernetes manifests",
                                       k8s_main};
