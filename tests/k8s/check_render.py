"""check_render.py - what the schemas cannot check in `capstan k8s render` output
(test_kustomize.sh renders DIR/render-web.yaml from docs/examples/deployment.yaml and
DIR/render-gpu.yaml / .json from DIR/gpu-deployment.yaml): the pod is the base's (probes,
restricted securityContext, resources) on the cluster overlay's registry Secret and shared
volume; the HPA scales on the base's Pods metric with the spec's bounds and target; the
Service and PDB select the Deployment's pods; the ResourceClaimTemplate carries the spec's
device requests and is wired into the pod; -o json is the same objects as a v1 List.
Prints PASS/FAIL lines.

usage: check_render.py DIR
"""
import json
import os
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks  # noqa: E402

root = sys.argv[1]


check = Checks(limit=600)


def load(name):
    with open("%s/%s" % (root, name)) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    return docs, {(d["kind"], d["metadata"]["name"]): d for d in docs}


_, base = load("base.yaml")
_, cluster = load("cluster.yaml")
bpod = base[("Deployment", "capstan")]["spec"]["template"]["spec"]
bc = bpod["containers"][0]
cc = cluster[("Deployment", "capstan")]["spec"]["template"]["spec"]["containers"][0]
bhpa = base[("HorizontalPodAutoscaler", "capstan")]["spec"]

for name, file, dep, want in (
        ("web", "render-web.yaml", "digits-web", {"min": 1, "max": 4, "target": "4",
                                                  "window": 60, "devices": False}),
        ("gpu", "render-gpu.yaml", "digits-gpu", {"min": 2, "max": 6, "target": "2500m",
                                                  "window": 120, "devices": True})):
    docs, o = load(file)
    kinds = sorted(k for k, _ in o)
    check(name + ": the objects rendered", kinds == sorted(
        ["Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"] +
        (["ResourceClaimTemplate"] if want["devices"] else [])), kinds)
    d = o.get(("Deployment", dep))
    if not d:
        continue
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    check(name + ": probes, resources and securityContexts are the base's",
          all(c[k] == bc[k] for k in ("startupProbe", "livenessProbe", "readinessProbe",
                                      "securityContext", "ports")) and
          c["resources"].get("requests") == bc["resources"]["requests"] and
          pod["securityContext"] == bpod["securityContext"] and
          pod["automountServiceAccountToken"] is False, c)
    check(name + ": the cluster overlay's registry Secret and shared /data",
          c["env"] == cc["env"] and "--registry=$(CAPSTAN_REGISTRY_URL)" in c["args"] and
          {v["name"]: v for v in pod["volumes"]}["data"] == {
              "name": "data", "persistentVolumeClaim": {"claimName": "capstan-blobs"}}, (c, pod))
    sel = d["spec"]["selector"]["matchLabels"]
    check(name + ": the pods carry the selector's labels, which name the deployment",
          d["spec"]["template"]["metadata"]["labels"] == sel and
          sel.get("app.kubernetes.io/instance") == dep, sel)
    check(name + ": Service and PDB select the pods",
          o[("Service", dep)]["spec"]["selector"] == sel and
          o[("PodDisruptionBudget", dep)]["spec"]["selector"]["matchLabels"] == sel, sel)
    hpa = o[("HorizontalPodAutoscaler", dep)]["spec"]
    m = hpa["metrics"][0]
    check(name + ": HPA bounds, target and window from the spec, on the base's metric",
          hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": dep}
          and (hpa["minReplicas"], hpa["maxReplicas"]) == (want["min"], want["max"]) and
          m["type"] == "Pods" and m["pods"]["metric"] == bhpa["metrics"][0]["pods"]["metric"]
          and m["pods"]["target"] == {"type": "AverageValue", "averageValue": want["target"]}
          and hpa["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == want["window"] and
          d["spec"]["replicas"] == want["min"], hpa)
    pdb = o[("PodDisruptionBudget", dep)]["spec"]
    check(name + ": a PDB that never blocks a drain of a single replica",
          pdb == {"minAvailable": 1, "selector": pdb["selector"]} if want["min"] >= 2 else
          pdb == {"maxUnavailable": 1, "selector": pdb["selector"]}, pdb)
    rct = o.get(("ResourceClaimTemplate", dep + "-devices"))
    if want["devices"]:
        check(name + ": pod resourceClaims -> ResourceClaimTemplate -> container claims",
              rct and rct["spec"]["spec"]["devices"]["requests"] ==
              [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com", "count": 1}}] and
              pod["resourceClaims"] == [{"name": "devices",
                                         "resourceClaimTemplateName": dep + "-devices"}] and
              c["resources"]["claims"] == [{"name": "devices"}], (pod, rct))
    else:
        check(name + ": no claims without spec.resources.devices",
              "resourceClaims" not in pod and "claims" not in c["resources"], pod)

docs, _ = load("render-gpu.yaml")
with open(root + "/render-gpu.json") as f:
    lst = json.load(f)
check("-o json is a v1 List of the same objects",
      lst["apiVersion"] == "v1" and lst["kind"] == "List" and lst["items"] == docs,
      [i["kind"] for i in lst.get("items", [])])
