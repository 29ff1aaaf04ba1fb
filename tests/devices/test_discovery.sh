#!/usr/bin/env bash
# Device discovery: `capstan devices` on this machine (hwloc), and the NVML path against a
# stand-in libnvidia-ml.so.1 with two H100s, one of them in MIG mode.
# usage: test_discovery.sh CAPSTAN FAKE_NVML_DIR
set -euo pipefail
capstan=$1
fake=$2
pass=0
fail=0
check() { # name, command...
  local name=$1
  shift
  if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL $name"; fi
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

py=/usr/bin/python3
"$capstan" devices -o json >"$tmp/cpu.json"
check "cpu slice has the NUMA nodes and cores" $py - "$tmp/cpu.json" <<'PY'
import json, os, sys
items = json.load(open(sys.argv[1]))["items"]
cpu = [s for s in items if s["spec"]["driver"] == "cpu.capstan.dev"]
assert len(cpu) == 1, cpu
devs = cpu[0]["spec"]["devices"]
assert devs and all(d["name"].startswith("numa-") for d in devs)
cores = sum(int(d["capacity"]["cores"]["value"]) for d in devs)
assert 1 <= cores <= os.cpu_count(), cores
assert all("int" in d["attributes"]["numaNode"] for d in devs)
# shared by cores (consumable capacity), with the CPUs of its cores for pinning
for d in devs:
    assert d["allowMultipleAllocations"] is True
    assert d["capacity"]["cores"]["requestPolicy"] == {
        "default": "1", "validRange": {"min": "1", "step": "1"}}, d["capacity"]
    cpus = []
    for part in d["attributes"]["coreCPUs"]["string"].split(","):
        lo, _, hi = part.partition("-")
        cpus += range(int(lo), int(hi or lo) + 1)
    assert len(cpus) == int(d["capacity"]["cores"]["value"]), (cpus, d["capacity"])
    assert all(0 <= c < os.cpu_count() for c in cpus), cpus
PY
check "no NVIDIA driver is a note, not an error" bash -c \
  "'$capstan' devices | grep -q 'libnvidia-ml.so.1 is not installed'"
check "unknown output format is a usage error" bash -c \
  "'$capstan' devices -o xml 2>/dev/null; test \$? -eq 2"

LD_LIBRARY_PATH=$fake "$capstan" devices -o json >"$tmp/gpu.json"
check "GPU attributes as NVIDIA's DRA driver publishes them" $py - "$tmp/gpu.json" <<'PY'
import json, sys
items = json.load(open(sys.argv[1]))["items"]
gpu = [s for s in items if s["spec"]["driver"] == "gpu.nvidia.com"]
devs = {d["name"]: d for s in gpu for d in s["spec"].get("devices", [])}
g = devs["gpu-0"]["attributes"]
assert g["type"] == {"string": "gpu"}
assert g["productName"] == {"string": "NVIDIA H100 80GB HBM3"}
assert g["uuid"]["string"].startswith("GPU-")
assert g["architecture"] == {"string": "Hopper"} and g["brand"] == {"string": "Nvidia"}
assert g["cudaComputeCapability"] == {"version": "9.0.0"}
assert g["driverVersion"] == {"version": "550.54.15"}
assert g["cudaDriverVersion"] == {"version": "12.4.0"}
assert g["pciBusID"] == {"string": "00000000:18:00.0"}
assert g["index"] == {"int": 0} and g["minor"] == {"int": 0}
assert devs["gpu-0"]["capacity"]["memory"]["value"] == "81559Mi"
# gpu 1 is in MIG mode: its MIG devices replace it and draw on its counter set
assert "gpu-1" not in devs
migs = [n for n in devs if n.startswith("gpu-1-mig-")]
assert sorted(migs) == ["gpu-1-mig-1-0", "gpu-1-mig-2-0"], migs
m = devs["gpu-1-mig-1-0"]
assert m["attributes"]["type"] == {"string": "mig"}
assert m["capacity"]["memory"]["value"] == "9728Mi"
assert m["consumesCounters"] == [{"counterSet": "gpu-1-counter-set",
                                  "counters": {"memory": {"value": "9728Mi"}}}]
counters = [s for s in gpu if "sharedCounters" in s["spec"]]
assert len(counters) == 1
assert counters[0]["spec"]["sharedCounters"] == [
    {"name": "gpu-1-counter-set", "counters": {"memory": {"value": "81559Mi"}}}]
assert all(s["spec"]["pool"]["resourceSliceCount"] == 2 for s in gpu)
PY
LD_LIBRARY_PATH=$fake "$capstan" devices -o yaml >"$tmp/gpu.yaml"
check "YAML output is valid and matches the JSON" $py - "$tmp/gpu.yaml" "$tmp/gpu.json" <<'PY'
import json, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
assert docs == json.load(open(sys.argv[2]))["items"], "YAML and JSON differ"
PY
# What discovery writes is what the allocator reads: claim an H100 and a MIG slice with
# 9Gi or more, by CEL selectors on the discovered attributes and capacity.
cat "$tmp/gpu.yaml" - >"$tmp/alloc.yaml" <<'YAML'
---
apiVersion: resource.k8s.io/v1
kind: DeviceClass
metadata: {name: gpu.nvidia.com}
spec:
  selectors:
  - cel: {expression: 'device.driver == "gpu.nvidia.com"'}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: whole-h100}
spec:
  devices:
    requests:
    - name: gpu
      exactly:
        deviceClassName: gpu.nvidia.com
        selectors:
        - cel: {expression: 'device.attributes["gpu.nvidia.com"].type == "gpu" && device.attributes["gpu.nvidia.com"].productName.startsWith("NVIDIA H100") && device.attributes["gpu.nvidia.com"].cudaComputeCapability.isGreaterThan(semver("8.0.0"))'}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: mig-slice}
spec:
  devices:
    requests:
    - name: mig
      exactly:
        deviceClassName: gpu.nvidia.com
        selectors:
        - cel: {expression: 'device.attributes["gpu.nvidia.com"].type == "mig" && device.capacity["gpu.nvidia.com"].memory.compareTo(quantity("9Gi")) >= 0'}
YAML
"$capstan" dra allocate -f "$tmp/alloc.yaml" -o json >"$tmp/claims.json"
check "discovered slices allocate through CEL selectors" $py - "$tmp/claims.json" <<'PY'
import json, sys
items = {c["metadata"]["name"]: c for c in json.load(open(sys.argv[1]))["items"]}
res = lambda n: items[n]["status"]["allocation"]["devices"]["results"]
assert [r["device"] for r in res("whole-h100")] == ["gpu-0"], res("whole-h100")
assert [r["device"] for r in res("mig-slice")] == ["gpu-1-mig-1-0"], res("mig-slice")
PY

echo "devices: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
