"""deploy_external_test.py - a deployment of an external runtime (capstan serve itself) against
a running server (see test_deploy_external.sh).

Usage: deploy_external_test.py URL CAPSTAN ROOT TMP SERVER_PID PORT. Prints one PASS/FAIL line
per check.
"""
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, sys.argv[3] + "/tests/lib")
from capstan_http import Api, Checks, poll  # noqa: E402

URL, CAPSTAN, ROOT, TMP, SERVER_PID, FIRST_PORT = sys.argv[1:7]
SERVER_PID, FIRST_PORT = int(SERVER_PID), int(FIRST_PORT)
u = urllib.parse.urlparse(URL)
HOST, PORT = u.hostname, u.port
SAMPLE = json.load(open(ROOT + "/models/digits.sample.json"))["request"]


check = Checks(limit=600)
API = Api(HOST, PORT)
call, apply, status = API.call, API.apply, API.status


def children():
    """Pids of the server's child processes, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == SERVER_PID and fields[0] != "Z":
            out.append(int(d))
    return out


def ready_instances(name, n):
    s = status(name)
    inst = [i for i in s.get("instances", []) if i["state"] == "Ready"]
    return inst if len(inst) == n and s.get("readyInstances") == n else None


def outputs(j):
    return [(o["name"], o["data"]) for o in (j or {}).get("outputs", [])]


def child_count(port):
    st, j = call("GET", "/v2/models/digits/stats", port=port)
    return j["model_stats"][0]["inference_count"] if st == 200 else -1


RUNTIME = {"command": [CAPSTAN, "serve", "--model", "digits=" + ROOT + "/models/digits.onnx",
                       "--port", "$(PORT)", "--threads", "1", "--data-dir", TMP + "/child-$(PORT)"],
           "port": FIRST_PORT, "probePeriod": "500ms", "failureThreshold": 2,
           "terminationGracePeriod": "5s", "requestTimeout": "20s",
           "env": {"CAPSTAN_LOG_NOTE": "child"}}
SPEC = {"model": "digits", "runtime": RUNTIME,
        "instances": {"min": 2, "max": 2, "containerConcurrency": 1},
        "restartBackoff": {"initial": "1s", "max": "2s"},
        "autoscaling": {"stableWindow": "2s", "scaleToZeroGracePeriod": "1s"}}


def bad_input():
    st, j = apply("bad", {"model": "digits", "runtime": {"command": ["x"], "port": 0}})
    check("a runtime port of 0 is refused with its field path",
          st == 400 and "spec.runtime.port" in j["error"], (st, j))
    st, j = apply("bad", {"model": "digits", "runtime": {"command": ["x"], "port": 1,
                                                          "probePeriod": "soon"}})
    check("a bad probePeriod is refused with its field path",
          st == 400 and "spec.runtime.probePeriod" in j["error"], (st, j))


def two_instances():
    st, j = apply("ext", SPEC)
    check("apply of an external runtime creates it", st == 201, (st, j))
    inst = poll(lambda: ready_instances("ext", 2), 30)
    if not check("both instances become Ready", bool(inst), status("ext")):
        return None
    ports = sorted(i["port"] for i in inst)
    check("the instances have their own ports, the first one spec.runtime.port",
          len(set(ports)) == 2 and FIRST_PORT in ports, inst)
    check("each instance shows its pid, a child of the server",
          all(i["pid"] in children() for i in inst), (inst, children()))
    st, j = call("POST", "/v2/models/ext/infer", SAMPLE)
    st2, j2 = call("POST", "/v2/models/digits/infer", SAMPLE, port=ports[0])
    check("an answer through the proxy matches the runtime's own",
          st == 200 and st2 == 200 and outputs(j) == outputs(j2) and outputs(j), (st, j, st2, j2))
    st, j = call("GET", "/v2/models/ext")
    check("model metadata is proxied too", st == 200 and j.get("inputs"), (st, j))
    st, j = call("POST", "/v2/models/ext/infer", {"inputs": []})
    check("the runtime's own 400 comes back as it is", st == 400 and "error" in j, (st, j))
    return inst


def spread(inst):
    ports = [i["port"] for i in inst]
    before = [child_count(p) for p in ports]
    results = []

    def client():
        for _ in range(15):
            try:
                results.append(call("POST", "/v2/models/ext/infer", SAMPLE, timeout=20)[0])
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))

    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    after = [child_count(p) for p in ports]
    per = [a - b for a, b in zip(after, before)]
    check("60 requests from 4 clients are answered 200", results.count(200) == 60,
          [r for r in results if r != 200][:5])
    check("containerConcurrency 1 with power of two choices spreads them over both instances",
          sum(per) == 60 and min(per) >= 12, per)


def kill_one(inst):
    victim, other = inst[0], inst[1]
    results, stop = [], threading.Event()

    def client():
        while not stop.is_set():
            t0 = time.time()
            try:
                st = call("POST", "/v2/models/ext/infer", SAMPLE, timeout=15)[0]
            except Exception as e:  # noqa: BLE001
                st = repr(e)
            results.append((st, time.time() - t0))

    ts = [threading.Thread(target=client, daemon=True) for _ in range(3)]
    for t in ts:
        t.start()
    time.sleep(0.5)
    os.kill(victim["pid"], 9)
    t_kill = time.time()
    failed = poll(lambda: [i for i in status("ext").get("instances", [])
                               if i["name"] == victim["name"] and i["state"] == "Failed"], 5)
    check("the killed instance shows Failed with the signal as its reason",
          bool(failed) and "signal 9" in failed[0]["reason"], status("ext"))
    back = poll(lambda: [i for i in (ready_instances("ext", 2) or [])
                             if i["name"] == victim["name"] and i["pid"] != victim["pid"]], 15)
    t_back = time.time() - t_kill
    time.sleep(0.5)
    stop.set()
    for t in ts:
        t.join()
    check("a replacement is Ready after the back-off (1 s), with a new pid and restarts 1",
          bool(back) and back[0]["restarts"] == 1 and 0.9 <= t_back < 10, (t_back, back))
    statuses = [r[0] for r in results]
    check("requests during the kill were answered 200 or 502, none hung",
          statuses and all(s in (200, 502) for s in statuses) and max(r[1] for r in results) < 15,
          [r for r in results if r[0] not in (200, 502)][:5])
    check("the other instance kept serving", statuses.count(200) > len(statuses) // 2,
          (statuses.count(200), len(statuses)))
    check("the other instance was not restarted",
          any(i["name"] == other["name"] and i["pid"] == other["pid"]
              for i in status("ext").get("instances", [])), status("ext"))
    print("# replacement Ready %.2f s after the kill; %d requests, %d answered 502"
          % (t_back, len(statuses), statuses.count(502)))


def zero_and_back(inst):
    pids = [i["pid"] for i in inst]
    rc = subprocess.run([CAPSTAN, "scale", "deployment", "ext", "--min", "0"],
                        capture_output=True, text=True, timeout=30)
    check("capstan scale --min 0", rc.returncode == 0, rc.stderr)
    zero = poll(lambda: (lambda s: s if s.get("desiredInstances") == 0 and
                             not s.get("instances") else None)(status("ext")), 30)
    check("with no traffic it scales to zero", bool(zero), status("ext"))
    gone = poll(lambda: not any(p in children() for p in pids), 5)
    check("its processes are gone", gone and not children(), children())
    t0 = time.time()
    st, j = call("POST", "/v2/models/ext/infer", SAMPLE, timeout=60)
    cold = time.time() - t0
    check("a request at zero is answered 200 after a cold start of a process", st == 200, (st, j))
    print("# cold start of an external instance: %.0f ms" % (cold * 1000))


def delete():
    st, _ = call("DELETE", "/api/v1/deployments/ext")
    check("delete", st in (200, 204), st)
    left = poll(lambda: not children(), 15)
    check("deleting the deployment leaves no child process", left, children())


def bad_command():
    spec = dict(SPEC, runtime=dict(RUNTIME, command=[TMP + "/no-such-runtime"]),
                instances={"min": 1, "max": 1})
    st, j = apply("broken", spec)
    check("a deployment whose command does not exist is accepted", st == 201, (st, j))
    failed = poll(lambda: [i for i in status("broken").get("instances", [])
                               if i["state"] == "Failed"], 10)
    check("its instance is Failed with the reason and the back-off",
          bool(failed) and "No such file" in failed[0]["reason"] and "restarting in" in
          failed[0]["reason"], status("broken"))
    call("DELETE", "/api/v1/deployments/broken")


rc = subprocess.run([CAPSTAN, "model", "push", "digits", ROOT + "/models/digits.onnx"],
                    capture_output=True, text=True, timeout=60)
check("push digits", rc.returncode == 0, rc.stderr)
bad_input()
inst = two_instances()
if inst:
    spread(inst)
    kill_one(inst)
    inst = ready_instances("ext", 2)
    if check("two Ready instances again", bool(inst), status("ext")):
        zero_and_back(inst)
delete()
bad_command()
