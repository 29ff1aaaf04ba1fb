"""check_manifests.py - what the OpenAPI schemas cannot check in the rendered manifests
(tests/k8s/test_kustomize.sh renders them into DIR/NAME.yaml): the Triton-like probes, the
restricted securityContext, the gpu overlay's DRA claim wiring, the HPA's Pods metric being the
gauge capstan exports (named in src/runtime/runtime.c) and the prometheus-adapter rule serving
it, the admin token's Secret in every overlay, the cluster overlay's Secret-fed --registry and
ReadWriteMany /data. Prints PASS/FAIL lines.

usage: check_manifests.py DIR RUNTIME_C
"""
import os
import re
import sys

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks  # noqa: E402

root, runtime_c = sys.argv[1], sys.argv[2]


check = Checks()


def objs(name):
    with open("%s/%s.yaml" % (root, name)) as f:
        return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(f) if d}


def pod(o):
    return o[("Deployment", "capstan")]["spec"]["template"]["spec"]


for overlay in ("base", "cpu", "gpu", "cluster"):
    o = objs(overlay)
    p = pod(o)
    c = p["containers"][0]
    sp, lp, rp = c["startupProbe"], c["livenessProbe"], c["readinessProbe"]
    check(overlay + ": startup probe 10 s x 30 on /v2/health/ready",
          (sp["httpGet"]["path"], sp["periodSeconds"], sp["failureThreshold"]) ==
          ("/v2/health/ready", 10, 30), sp)
    check(overlay + ": liveness /v2/health/live, readiness /v2/health/ready",
          lp["httpGet"]["path"] == "/v2/health/live" and
          rp["httpGet"]["path"] == "/v2/health/ready", (lp, rp))
    sc, psc = c["securityContext"], p["securityContext"]
    check(overlay + ": restricted securityContext",
          psc["runAsNonRoot"] and psc["runAsUser"] != 0 and
          sc["readOnlyRootFilesystem"] and sc["allowPrivilegeEscalation"] is False and
          sc["capabilities"]["drop"] == ["ALL"] and
          sc["seccompProfile"]["type"] == psc["seccompProfile"]["type"] == "RuntimeDefault",
          (psc, sc))
    tok = {v["name"]: v for v in p["volumes"]}.get("admin-token", {}).get("secret", {})
    mnt = {m["name"]: m for m in c["volumeMounts"]}.get("admin-token", {})
    check(overlay + ": the admin token from the Secret capstan-admin-token, not per pod",
          "--auth-token-file=/etc/capstan/token" in c["args"] and
          tok.get("secretName") == "capstan-admin-token" and
          tok.get("items") == [{"key": "token", "path": "token"}] and
          mnt.get("mountPath") == "/etc/capstan" and mnt.get("readOnly") is True, (tok, mnt))
    check(overlay + ": requests and limits", "requests" in c["resources"] and
          "limits" in c["resources"], c["resources"])
    labels = o[("Deployment", "capstan")]["spec"]["selector"]["matchLabels"]
    for kind in ("Service", "PodDisruptionBudget"):
        s = o[(kind, "capstan")]["spec"]
        sel = s["selector"] if kind == "Service" else s["selector"]["matchLabels"]
        check("%s: %s selects the pods" % (overlay, kind), sel == labels, sel)
    check(overlay + ": Service, PDB, HPA, ServiceMonitor, NetworkPolicy",
          all((k, "capstan") in o for k in ("Service", "PodDisruptionBudget",
                                              "HorizontalPodAutoscaler", "ServiceMonitor",
                                              "NetworkPolicy")), sorted(o))

exported = re.findall(r'"(capstan_inflight_requests)"', open(runtime_c).read())
metric = objs("base")[("HorizontalPodAutoscaler", "capstan")]["spec"]["metrics"][0]
check("HPA scales on a Pods metric capstan exports",
      metric["type"] == "Pods" and [metric["pods"]["metric"]["name"]] == exported,
      (metric, exported))
rules = yaml.safe_load(objs("prometheus-adapter")[("ConfigMap", "adapter-config")]
                       ["data"]["config.yaml"])["rules"]
check("prometheus-adapter serves that metric per pod",
      any(r["name"]["as"] == metric["pods"]["metric"]["name"] and
          "pod" in r["resources"]["overrides"] for r in rules), rules)

g = objs("gpu")
gp = pod(g)
rct = g.get(("ResourceClaimTemplate", "capstan-gpu"))
check("gpu: pod resourceClaims -> ResourceClaimTemplate -> container claims",
      rct is not None and
      gp["resourceClaims"] == [{"name": "gpu", "resourceClaimTemplateName": "capstan-gpu"}] and
      gp["containers"][0]["resources"]["claims"] == [{"name": "gpu"}] and
      rct["spec"]["spec"]["devices"]["requests"][0]["exactly"]["count"] == 1, (gp, rct))

cl = objs("cluster")
cp = pod(cl)
cc = cp["containers"][0]
env = {e["name"]: e for e in cc.get("env", [])}
check("cluster: --registry from the Secret capstan-registry",
      "--registry=$(CAPSTAN_REGISTRY_URL)" in cc["args"] and
      env["CAPSTAN_REGISTRY_URL"]["valueFrom"]["secretKeyRef"]["name"] == "capstan-registry",
      cc)
vol = {v["name"]: v for v in cp["volumes"]}["data"]
pvc = cl.get(("PersistentVolumeClaim", "capstan-blobs"))
check("cluster: /data on a ReadWriteMany claim",
      vol.get("persistentVolumeClaim", {}).get("claimName") == "capstan-blobs" and
      pvc["spec"]["accessModes"] == ["ReadWriteMany"], (vol, pvc))
