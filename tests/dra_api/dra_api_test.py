"""Checks against a running `capstan serve` (started by test_dra_api.sh).

Usage: dra_api_test.py PHASE BASE_URL

PHASE is `fleet` (a server started with --devices fleet.yaml: four GPUs on three PCIe roots
and a shared 8Gi device) or `nvml` (a server that discovered the stand-in NVML's GPUs).
Prints one `PASS name` or `FAIL name: why` line per check. Standard library only.
"""
import http.client
import json
import os
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks  # noqa: E402

PHASE, BASE = sys.argv[1:3]
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port


check = Checks()


def request(method, path, body=None, ctype="application/json"):
    """Returns (status, parsed JSON body or None, headers with lower-case keys)."""
    conn = http.client.HTTPConnection(HOST, PORT, timeout=60)
    try:
        headers = {}
        if body is not None:
            if not isinstance(body, (str, bytes)):
                body = json.dumps(body)
            headers["Content-Type"] = ctype
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        raw = r.read()
        try:
            j = json.loads(raw)
        except ValueError:
            j = None
        return r.status, j, {k.lower(): v for k, v in r.getheaders()}
    finally:
        conn.close()


def expect(name, method, path, status, body=None, ctype="application/json", contains=None):
    st, j, _ = request(method, path, body, ctype)
    ok = st == status
    if ok and status >= 400:
        ok = isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"] != ""
        if ok and contains:
            ok = contains in j["error"]
    check(name, ok, "got %d %s, want %d%s" % (st, json.dumps(j)[:400], status,
                                               " with %r" % contains if contains else ""))
    return j


def claim(name, requests, constraints=None):
    devices = {"requests": requests}
    if constraints:
        devices["constraints"] = constraints
    return {"apiVersion": "resource.k8s.io/v1", "kind": "ResourceClaim",
            "metadata": {"name": name}, "spec": {"devices": devices}}


def exactly(name, cls, count=None, selector=None, capacity=None):
    e = {"deviceClassName": cls}
    if count:
        e["count"] = count
    if selector:
        e["selectors"] = [{"cel": {"expression": selector}}]
    if capacity:
        e["capacity"] = {"requests": capacity}
    return {"name": name, "exactly": e}


def devices_of(c):
    try:
        return [r["device"] for r in c["status"]["allocation"]["devices"]["results"]]
    except (KeyError, TypeError):
        return None


def names(lst):
    return [o["metadata"]["name"] for o in (lst or {}).get("items", [])]


def gpu_claim(name):
    return claim(name, [exactly("gpu", "gpu")])


# --- fleet --------------------------------------------------------------------------------


def fleet_devices_and_classes():
    j = expect("list devices", "GET", "/api/v1/devices", 200)
    ok = j and j.get("kind") == "List" and names(j) == ["node-1-gpus", "node-1-shared"]
    check("devices: the fleet's slices as a v1 List", ok, json.dumps(j)[:300])
    devs = [d["name"] for s in (j or {}).get("items", []) for d in s["spec"].get("devices", [])]
    check("devices: every device", devs == ["gpu-0", "gpu-1", "gpu-2", "gpu-3", "shared-0"], devs)
    pcie = j["items"][0]["spec"]["devices"][0]["attributes"]["resource.kubernetes.io/pcieRoot"]
    check("devices: attributes as written", pcie == {"string": "pci-0"}, pcie)

    j = expect("list classes", "GET", "/api/v1/deviceclasses", 200)
    check("classes: the file's and the defaults",
          names(j) == ["gpu", "gpu.nvidia.com", "cpu.capstan.dev"], names(j))
    mem = {"apiVersion": "resource.k8s.io/v1", "kind": "DeviceClass", "metadata": {"name": "mem"},
           "spec": {"selectors": [{"cel": {"expression": 'device.driver == "mem.example.com"'}}]}}
    j = expect("create class (JSON)", "POST", "/api/v1/deviceclasses", 201, mem)
    check("create class answers the class", j and j.get("spec") == mem["spec"], j)
    expect("get class", "GET", "/api/v1/deviceclasses/mem", 200)
    expect("create class: duplicate name is 409", "POST", "/api/v1/deviceclasses", 409, mem,
           contains="DeviceClass mem already exists")
    yaml_class = ("apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata:\n  name: h100\n"
                  "spec:\n  selectors:\n  - cel:\n      expression: >-\n"
                  "        device.driver == 'gpu.example.com' &&\n"
                  "        device.attributes['gpu.example.com'].model == 'h100'\n")
    expect("create class (YAML)", "POST", "/api/v1/deviceclasses", 201, yaml_class,
           ctype="application/yaml")
    expect("create class (YAML, charset)", "POST", "/api/v1/deviceclasses", 201,
           yaml_class.replace("h100\nspec", "tmp\nspec"), ctype="application/yaml; charset=utf-8")
    j = expect("delete class", "DELETE", "/api/v1/deviceclasses/tmp", 200)
    check("delete class answers the class", j and j["metadata"]["name"] == "tmp", j)
    expect("deleted class is gone", "GET", "/api/v1/deviceclasses/tmp", 404)
    expect("delete unknown class", "DELETE", "/api/v1/deviceclasses/tmp", 404)
    j = expect("list classes after changes", "GET", "/api/v1/deviceclasses", 200)
    check("classes: created ones in order",
          names(j) == ["gpu", "gpu.nvidia.com", "cpu.capstan.dev", "mem", "h100"], names(j))
    bad = dict(mem, metadata={"name": "bad"},
               spec={"selectors": [{"cel": {"expression": "device.driver =="}}]})
    expect("class with a CEL error is 400", "POST", "/api/v1/deviceclasses", 400, bad,
           contains="DeviceClass bad: spec.selectors[0].cel.expression")
    expect("class with an upper-case name is 400", "POST", "/api/v1/deviceclasses", 400,
           dict(mem, metadata={"name": "Mem"}), contains="DNS subdomain")
    expect("a claim sent as a class is 400", "POST", "/api/v1/deviceclasses", 400,
           gpu_claim("x"), contains="expected one DeviceClass")


def fleet_errors():
    expect("malformed JSON is 400", "POST", "/api/v1/claims", 400, "{\"kind\": ",
           contains="not valid JSON")
    expect("malformed YAML is 400", "POST", "/api/v1/claims", 400, "kind: [", ctype="text/yaml")
    expect("unsupported media type is 415", "POST", "/api/v1/claims", 415, "x",
           ctype="text/plain")
    expect("empty body is 400", "POST", "/api/v1/claims", 400, "",
           contains="expected one ResourceClaim")
    expect("unknown field is 400 with the reader's message", "POST", "/api/v1/claims", 400,
           claim("typo", [{"name": "gpu", "exactly": {"deviceClassName": "gpu", "cuont": 2}}]),
           contains="ResourceClaim typo: spec.devices.requests[0].exactly.cuont: unknown field")
    expect("CEL selector error is 400", "POST", "/api/v1/claims", 400,
           claim("cel", [exactly("gpu", "gpu", selector='device.attributes["gpu.example.com"]'
                                                       '.model == ')]),
           contains="ResourceClaim cel: spec.devices.requests[0].exactly.selectors[0]")
    expect("CEL error claim is not kept", "GET", "/api/v1/claims/cel", 404)
    given = gpu_claim("given")
    given["status"] = {"allocation": {"devices": {"results": [
        {"request": "gpu", "driver": "gpu.example.com", "pool": "node-1", "device": "gpu-0"}]}}}
    expect("a claim with status.allocation is 400", "POST", "/api/v1/claims", 400, given,
           contains="status.allocation: must not be set")
    expect("unknown class is 422", "POST", "/api/v1/claims", 422,
           claim("nocls", [exactly("x", "tpu")]), contains="tpu")
    expect("unknown claim is 404", "GET", "/api/v1/claims/nope", 404,
           contains="ResourceClaim nope not found")
    expect("releasing an unknown claim is 404", "DELETE", "/api/v1/claims/nope", 404)
    st, j, h = request("PUT", "/api/v1/claims", {})
    check("PUT on claims is 405 with Allow", st == 405 and h.get("allow") == "GET, POST",
          "%d %s" % (st, h.get("allow")))
    expect("a name longer than a route captures is 404", "GET", "/api/v1/claims/" + "a" * 300,
           404)


def fleet_match_attribute():
    c = claim("pair", [exactly("a", "gpu"), exactly("b", "gpu")],
              [{"requests": ["a", "b"], "matchAttribute": "resource.kubernetes.io/pcieRoot"}])
    j = expect("matchAttribute claim", "POST", "/api/v1/claims", 201, c)
    # gpu-0 is alone on pci-0; gpu-1 and gpu-2 share pci-1.
    check("matchAttribute: two GPUs on one PCIe root", devices_of(j) == ["gpu-1", "gpu-2"],
          devices_of(j))
    expect("matchAttribute: a second pair cannot be allocated", "POST", "/api/v1/claims", 422,
           dict(c, metadata={"name": "pair2"}), contains="cannot be allocated")
    expect("release the pair", "DELETE", "/api/v1/claims/pair", 200)


def fleet_fill_and_release():
    got = {}
    for i in range(4):
        j = expect("allocate gpu claim %d" % i, "POST", "/api/v1/claims", 201,
                   gpu_claim("c-%d" % i))
        got["c-%d" % i] = (devices_of(j) or [None])[0]
    check("fill: four distinct GPUs", sorted(got.values()) == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"],
          got)
    j = expect("fleet full: 422", "POST", "/api/v1/claims", 422, gpu_claim("c-4"),
               contains="ResourceClaim c-4: cannot be allocated")
    expect("refused claim is not kept", "GET", "/api/v1/claims/c-4", 404)
    expect("duplicate claim name is 409", "POST", "/api/v1/claims", 409, gpu_claim("c-1"),
           contains="ResourceClaim c-1 already exists")
    j = expect("get claim", "GET", "/api/v1/claims/c-2", 200)
    check("get claim has its allocation", devices_of(j) == [got["c-2"]], j)
    j = expect("list claims", "GET", "/api/v1/claims", 200)
    check("list claims in creation order", names(j) == ["c-0", "c-1", "c-2", "c-3"], names(j))
    j = expect("release claim c-2", "DELETE", "/api/v1/claims/c-2", 200)
    check("release answers the claim", devices_of(j) == [got["c-2"]], j)
    expect("released claim is gone", "GET", "/api/v1/claims/c-2", 404)
    j = expect("allocate after release", "POST", "/api/v1/claims", 201, gpu_claim("c-5"))
    check("allocate after release: the released device", devices_of(j) == [got["c-2"]],
          devices_of(j))
    expect("full again: 422", "POST", "/api/v1/claims", 422, gpu_claim("c-6"))
    for n in ("c-0", "c-1", "c-3", "c-5"):
        expect("release " + n, "DELETE", "/api/v1/claims/" + n, 200)


def fleet_shared_capacity():
    def mem_claim(name, q):
        return claim(name, [exactly("m", "mem", capacity={"memory": q})])
    j = expect("shared: 6Gi", "POST", "/api/v1/claims", 201, mem_claim("m-6", "6Gi"))
    r = (j or {}).get("status", {}).get("allocation", {}).get("devices", {}).get("results", [{}])[0]
    check("shared: consumedCapacity and shareID", r.get("consumedCapacity") == {"memory": "6Gi"}
          and r.get("shareID"), r)
    expect("shared: another 6Gi does not fit", "POST", "/api/v1/claims", 422,
           mem_claim("m-6b", "6Gi"))
    expect("shared: 2Gi fits beside it", "POST", "/api/v1/claims", 201, mem_claim("m-2", "2Gi"))
    expect("shared: release 6Gi", "DELETE", "/api/v1/claims/m-6", 200)
    expect("shared: 6Gi fits again after release", "POST", "/api/v1/claims", 201,
           mem_claim("m-6c", "6Gi"))
    for n in ("m-2", "m-6c"):
        expect("shared: release " + n, "DELETE", "/api/v1/claims/" + n, 200)


def fleet_yaml_claim():
    body = ("apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: y}\n"
            "spec:\n  devices:\n    requests:\n    - name: gpu\n      exactly:\n"
            "        deviceClassName: h100\n")
    j = expect("YAML claim through a created class", "POST", "/api/v1/claims", 201, body,
               ctype="application/yaml")
    check("YAML claim: an h100", devices_of(j) in (["gpu-2"], ["gpu-3"]), devices_of(j))
    expect("release YAML claim", "DELETE", "/api/v1/claims/y", 200)


def fleet_concurrent():
    results, lock = [], threading.Lock()

    def worker(t):
        for k in range(3):
            st, j, _ = request("POST", "/api/v1/claims", gpu_claim("t%d-%d" % (t, k)))
            with lock:
                results.append((st, devices_of(j) if st == 201 else None))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [d[0] for st, d in results if st == 201]
    statuses = sorted(set(st for st, _ in results))
    check("concurrent: 24 attempts, 4 allocated, the rest 422",
          len(results) == 24 and len(ok) == 4 and statuses == [201, 422], results)
    check("concurrent: never the same device twice", sorted(ok) == ["gpu-0", "gpu-1", "gpu-2",
                                                                      "gpu-3"], ok)
    j = expect("concurrent: list claims", "GET", "/api/v1/claims", 200)
    held = [devices_of(c)[0] for c in (j or {}).get("items", [])]
    check("concurrent: the list holds the four", sorted(held) == sorted(ok), held)
    for n in names(j):
        request("DELETE", "/api/v1/claims/" + n)
    j = expect("concurrent: all released", "GET", "/api/v1/claims", 200)
    check("concurrent: no claims left", names(j) == [], names(j))


# --- nvml ---------------------------------------------------------------------------------


def nvml():
    j = expect("nvml: list devices", "GET", "/api/v1/devices", 200)
    devs = sorted(d["name"] for s in (j or {}).get("items", [])
                  if s["spec"]["driver"] == "gpu.nvidia.com" for d in s["spec"].get("devices", []))
    check("nvml: discovered GPUs and MIG devices",
          devs == ["gpu-0", "gpu-1-mig-1-0", "gpu-1-mig-2-0"], devs)
    whole = claim("h100", [exactly("gpu", "gpu.nvidia.com",
                                   selector='device.attributes["gpu.nvidia.com"].type == "gpu"')])
    j = expect("nvml: claim a whole H100", "POST", "/api/v1/claims", 201, whole)
    check("nvml: gpu-0", devices_of(j) == ["gpu-0"], devices_of(j))
    expect("nvml: a second whole GPU is 422", "POST", "/api/v1/claims", 422,
           dict(whole, metadata={"name": "h100-b"}))
    mig = claim("mig", [exactly("m", "gpu.nvidia.com", count=2, selector=(
        'device.attributes["gpu.nvidia.com"].type == "mig"'))])
    j = expect("nvml: claim both MIG devices", "POST", "/api/v1/claims", 201, mig)
    check("nvml: the MIG devices", devices_of(j) == ["gpu-1-mig-1-0", "gpu-1-mig-2-0"],
          devices_of(j))
    j = expect("nvml: a CPU claim through the default class", "POST", "/api/v1/claims", 201,
               claim("numa", [exactly("cpu", "cpu.capstan.dev")]))
    check("nvml: a NUMA node", (devices_of(j) or [""])[0].startswith("numa-"), devices_of(j))
    expect("nvml: release the H100", "DELETE", "/api/v1/claims/h100", 200)
    j = expect("nvml: claim it again", "POST", "/api/v1/claims", 201,
               dict(whole, metadata={"name": "h100-c"}))
    check("nvml: gpu-0 again", devices_of(j) == ["gpu-0"], devices_of(j))


if PHASE == "fleet":
    fleet_devices_and_classes()
    fleet_errors()
    fleet_match_attribute()
    fleet_fill_and_release()
    fleet_shared_capacity()
    fleet_yaml_claim()
    fleet_concurrent()
elif PHASE == "nvml":
    nvml()
else:
    sys.exit("unknown phase " + PHASE)
