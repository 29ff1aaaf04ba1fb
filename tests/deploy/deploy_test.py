"""deploy_test.py - deployments end to end against a running server (see test_deploy.sh).

Usage: deploy_test.py PHASE URL CAPSTAN ROOT TMP, PHASE one of main, restart, pending.
Prints one PASS/FAIL line per check.
"""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, sys.argv[4] + "/tests/lib")
from capstan_http import Api, Checks, deployment, poll, request  # noqa: E402

PHASE, URL, CAPSTAN, ROOT, TMP = sys.argv[1:6]
u = urllib.parse.urlparse(URL)
HOST, PORT = u.hostname, u.port
SAMPLE = json.load(open(ROOT + "/models/digits.sample.json"))["request"]
SLOW_REQ = {"inputs": [{"name": "x", "shape": [32, 256], "datatype": "FP32",
                        "data": [0.5] * (32 * 256)}]}


check = Checks(limit=400)
API = Api(HOST, PORT)
call, apply, status, doc = API.call, API.apply, API.status, deployment


def wait_for(what, pred, secs):
    """poll() every 100 ms, with a name (what) for the reader of the call."""
    return poll(pred, secs)


def infer(name, body=SAMPLE, version=None):
    path = "/v2/models/%s%s/infer" % (name, "/versions/" + version if version else "")
    return call("POST", path, body)


def cli(*args, stdin=None):
    p = subprocess.run([CAPSTAN] + list(args), input=stdin, capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout, p.stderr


def metric(name, labels):
    _, _, b = request(HOST, PORT, "GET", "/metrics")
    for line in b.decode().splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def push(model, path):
    rc, out, err = cli("model", "push", model, path)
    check("push %s" % model, rc == 0, err)


# --- main -------------------------------------------------------------------------------

def bad_input():
    st, j = apply("bad", {"model": "digits", "traffic": [{"version": 1, "percent": 90},
                                                          {"version": 2, "percent": 20}]})
    check("percents that sum to 110 are refused with the field path",
          st == 400 and "spec.traffic: percents sum to 110, must be 100" in j["error"], (st, j))
    st, j = apply("bad", {"model": "nope"})
    check("an unknown model is 404 naming spec.model",
          st == 404 and "spec.model" in j["error"], (st, j))
    st, j = apply("bad", {"model": "digits", "traffic": [{"version": 9, "percent": 100}]})
    check("an unknown version is 404 naming the target",
          st == 404 and "spec.traffic[0]" in j["error"], (st, j))
    st, j = apply("bad", {"model": "digits", "instances": {"mni": 1}})
    check("an unknown field is 400 naming it", st == 400 and "spec.instances.mni" in j["error"],
          (st, j))
    st, j = call("PUT", "/api/v1/deployments/other", doc("bad", {"model": "digits"}))
    check("metadata.name must match the path", st == 400 and "metadata.name" in j["error"], (st, j))
    st, _, b = request(HOST, PORT, "PUT", "/api/v1/deployments/bad", b"{not json",
                       {"Content-Type": "application/json"})
    check("a body that is not JSON is 400", st == 400 and b"error" in b, (st, b))
    st, j = call("GET", "/api/v1/deployments/bad")
    check("nothing was stored by the refused applies", st == 404, (st, j))


def scale_to_zero_and_back():
    st, j = apply("web", {"model": "digits", "instances": {"min": 0, "targetConcurrency": 1},
                          "autoscaling": {"stableWindow": "2s", "scaleToZeroGracePeriod": "1s"}})
    check("apply creates (201) with a status", st == 201 and "status" in j, (st, j))
    st2, j2 = call("POST", "/api/v1/deployments", doc("web", {"model": "digits"}))
    check("POST of an existing deployment is 409", st2 == 409, (st2, j2))
    zero = wait_for("zero", lambda: (lambda s: s if s.get("desiredInstances") == 0 and
                                     s.get("readyInstances") == 0 else None)(status("web")), 20)
    check("with no traffic it scales to zero after the window and the grace period",
          bool(zero), status("web"))
    t0 = time.time()
    st, j = infer("web")
    cold = time.time() - t0
    check("a request at zero is held and answered 200 after a cold start",
          st == 200 and j["model_version"] == "1", (st, j))
    # Observed by the scaler once the new instance's start returns, which can be just after
    # that instance has answered the held request: polled, not read once.
    check("the cold start is measured",
          wait_for("cold start counted",
                   lambda: (metric("capstan_cold_start_duration_seconds_count",
                                   {"deployment": "web"}) or 0) >= 1, 5))
    print("# cold start from zero, digits: %.1f ms (client side)" % (cold * 1000))
    check("the deployment is Ready again after the cold start",
          status("web").get("readyInstances", 0) >= 1, status("web"))
    st, j = call("GET", "/api/v1/audit?model=web")
    actions = [e["action"] for e in (j or {}).get("items", [])]
    check("its changes are audited", "deployment.created" in actions and
          "deployment.scaled" in actions, actions)


def scale_up_under_load():
    st, j = apply("busy", {"model": "slow", "instances": {"min": 1, "max": 3,
                                                          "targetConcurrency": 1},
                           "autoscaling": {"stableWindow": "4s"}})
    check("apply busy", st == 201, (st, j))
    wait_for("busy ready", lambda: status("busy").get("readyInstances") == 1, 10)
    stop, errors, seen = [False], [], []

    def client():
        while not stop[0]:
            st, j = infer("busy", SLOW_REQ)
            if st != 200:
                errors.append((st, j))

    threads = [threading.Thread(target=client, daemon=True) for _ in range(6)]
    for t in threads:
        t.start()
    end = time.time() + 10
    while time.time() < end:
        s = status("busy")
        seen.append((s.get("desiredInstances", 0), s.get("readyInstances", 0)))
        if s.get("readyInstances", 0) >= 3:
            break
        time.sleep(0.25)
    stop[0] = True
    for t in threads:
        t.join()
    check("under load the autoscaler scales up to max", max(r for _, r in seen) >= 3, seen[-8:])
    check("no request failed while it scaled up", not errors, errors[:3])
    down = wait_for("busy down", lambda: status("busy").get("desiredInstances") == 1, 20)
    check("after the load it scales back down to min", bool(down), status("busy"))


def traffic_split():
    push("digits", ROOT + "/models/digits.onnx")  # version 2: the same bytes
    st, j = apply("split", {"model": "digits", "instances": {"min": 1},
                            "traffic": [{"version": 1, "percent": 70},
                                        {"version": 2, "percent": 30}]})
    check("apply a 70/30 split", st == 201, (st, j))
    ok = wait_for("split ready", lambda: status("split").get("readyInstances", 0) >= 2, 10)
    check("each version with traffic has an instance", bool(ok), status("split"))
    counts = {"1": 0, "2": 0}
    for _ in range(300):
        st, j = infer("split")
        if st == 200:
            counts[j["model_version"]] += 1
    # 300 draws at p = 0.7: mean 210, sd 7.9; 160..260 is over 6 sd either way.
    check("requests follow the split", 160 <= counts["1"] <= 260 and sum(counts.values()) == 300,
          counts)
    st, j = infer("split", version="2")
    check("/versions/2/infer addresses one version", st == 200 and j["model_version"] == "2",
          (st, j))
    st, j = infer("split", version="7")
    check("a version the deployment does not serve is 404", st == 404, (st, j))


def rolling_update():
    """An alias move under wrk's load: new instances Ready before the old drain, no non-2xx."""
    st, j = call("PUT", "/api/v1/models/digits/aliases/prod", {"version": 1})
    check("prod points at version 1", st in (200, 201), (st, j))
    st, j = apply("roll", {"model": "digits", "instances": {"min": 2},
                           "rollout": {"strategy": "rolling",
                                       "rolling": {"maxSurge": 1, "maxUnavailable": 0}}})
    ok = wait_for("roll", lambda: status("roll").get("readyInstances") == 2, 10)
    check("roll has its two instances", bool(ok), status("roll"))
    lua = TMP + "/infer.lua"
    open(lua, "w").write('wrk.method = "POST"\nwrk.headers["Content-Type"] = '
                         '"application/json"\nwrk.body = [[%s]]\n' % json.dumps(SAMPLE))
    wrk = subprocess.Popen(["wrk", "-t2", "-c8", "-d6s", "-s", lua, URL + "/v2/models/roll/infer"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(2)
    seen = []  # (instances that exist, Ready ones, versions with traffic) every 20 ms

    def watch():
        end = time.time() + 8
        while time.time() < end:
            s = status("roll")
            inst = [i for i in s.get("instances", []) if i.get("state") != "Draining"]
            seen.append((len(inst), sum(i.get("state") == "Ready" for i in inst),
                         tuple(t["version"] for t in s.get("traffic", []) if t["percent"])))
            if [v for v in seen[-1][2]] == ["2"] and {i["version"] for i in inst} == {"2"}:
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    st, j = call("PUT", "/api/v1/models/digits/aliases/prod", {"version": 2})
    moved = wait_for("moved", lambda: [t["version"] for t in status("roll").get("traffic", [])
                                       if t["percent"]] == ["2"], 8)
    watcher.join()
    check("maxSurge 1: never more than 3 instances of 2 wanted", seen and
          max(n for n, _, _ in seen) <= 3, seen)
    check("maxUnavailable 0: never fewer than 2 Ready", seen and
          min(r for _, r, _ in seen) >= 2, seen)
    check("one at a time: old and new versions serve side by side on the way",
          any(len(v) == 2 for _, _, v in seen), seen)
    out = wrk.communicate(timeout=30)[0]
    total = [l for l in out.splitlines() if "requests in" in l]
    check("under load, traffic moves to the new version", bool(moved), status("roll"))
    check("and no request failed for the move (wrk)", total and "Non-2xx" not in out and
          "Socket errors" not in out, out)
    print("# rolling update under wrk -t2 -c8 -d6s: %s" % (total[0].strip() if total else "?"))
    st, j = infer("roll")
    check("answers come from the new version", st == 200 and j["model_version"] == "2", (st, j))
    s = wait_for("old gone", lambda: (lambda s: s if {i["version"] for i in s.get("instances", [])}
                                      == {"2"} else None)(status("roll")), 8)
    check("the old version's instances are gone", bool(s), status("roll"))


def canary():
    """Canaries judged by their own requests: a failing one and a slow one roll back by
    themselves while the stable version serves every request; a good one is promoted."""
    for f in ("fast", "flaky", "slowcanary", "fast"):
        push("cm", TMP + "/%s.onnx" % f)  # versions 1 (good), 2 (flaky), 3 (slow), 4 (good)
    call("PUT", "/api/v1/models/cm/aliases/prod", {"version": 1})
    st, j = apply("can", {"model": "cm", "instances": {"min": 1},
                          "rollout": {"strategy": "canary",
                                      "steps": [{"setWeight": 50}, {"pause": "3s"}],
                                      "analysis": {"interval": "500ms", "threshold": 2,
                                                   "successRateMin": 99, "p99MaxMs": 20,
                                                   "noTraffic": "hold"}}})
    check("apply a canary deployment", st == 201, (st, j))
    wait_for("can", lambda: status("can").get("readyInstances") == 1, 10)
    answers, stop = [], [False]

    def client(seed):
        i = seed
        while not stop[0]:
            i += 1
            # One row with x in 0..19 (v2 fails x >= 10), or 128 rows (v3 is slow on them).
            x = [i * 7 % 20] if i % 2 else [1.0] * 128
            st, j = infer("can", {"inputs": [{"name": "x", "shape": [len(x), 1],
                                              "datatype": "FP32", "data": x}]})
            answers.append((st, (j or {}).get("model_version"), (j or {}).get("error", "")))

    threads = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(2)]
    for t in threads:
        t.start()
    try:
        for bad, what in (("2", "failing"), ("3", "slow")):
            t0 = time.time()
            call("PUT", "/api/v1/models/cm/aliases/prod", {"version": int(bad)})
            ro = wait_for("failed", lambda: (lambda r: r if r and r.get("phase") == "Failed" and
                                             r.get("canary") == bad
                                             else None)(status("can").get("rollout")), 15)
            took = time.time() - t0
            check("a %s canary rolls back by itself" % what, bool(ro) and ro["canary"] == bad,
                  status("can").get("rollout"))
            print("# %s canary: rolled back %.1f s after the alias move (%s)"
                  % (what, took, (ro or {}).get("reason")))
            gone = wait_for("gone", lambda: [t["version"] for t in status("can")["traffic"]
                                             if t["percent"]] == ["1"], 8)
            check("after the rollback the stable version has all traffic", bool(gone),
                  status("can"))
        # Only version 2 fails (400, its Gather's index): any other failure is the stable's.
        failed = [a for a in answers if a[0] != 200]
        other = [a for a in failed if not (a[0] == 400 and "Gather: index" in a[2])]
        check("the stable version's requests saw no failure", answers and not other, other[:3])
        check("the failing canary did get and fail requests", failed, len(answers))
        call("PUT", "/api/v1/models/cm/aliases/prod", {"version": 4})
        ro = wait_for("promoted", lambda: (lambda r: r if r and r.get("phase") == "Succeeded"
                                           else None)(status("can").get("rollout")), 15)
        check("a good canary is promoted after its steps", bool(ro) and ro["canary"] == "4",
              status("can").get("rollout"))
        moved = wait_for("all v4", lambda: [t["version"] for t in status("can")["traffic"]
                                            if t["percent"]] == ["4"], 8)
        check("and then serves all traffic", bool(moved), status("can"))
    finally:
        stop[0] = True
        for t in threads:
            t.join()
    st, j = call("GET", "/api/v1/audit?model=can&limit=100")
    actions = [e["action"] for e in (j or {}).get("items", [])]
    check("rollouts are audited", actions.count("deployment.rollout_failed") == 2 and
          "deployment.rollout_succeeded" in actions, actions)


def rollout_cli():
    """`capstan rollout` on the canary deployment `can` (serving version 4 after canary())."""
    rc, out, err = cli("rollout", "status", "can", "--watch=false")
    check("rollout status shows the last rollout, exit 0", rc == 0 and "Succeeded" in out,
          (rc, out, err))
    rc, out, err = cli("rollout", "promote", "can")
    check("promote without a rollout in progress fails naming why",
          rc == 1 and "no rollout in progress" in err, (rc, out, err))
    rc, out, err = cli("rollout", "start", "can")
    check("start without --to is a usage error", rc == 2 and "--to" in err, (rc, err))
    rc, out, err = cli("rollout", "start", "can", "--to", "9")
    check("start to a version that does not exist is refused", rc == 1 and "9" in err, (rc, err))
    rc, out, err = cli("rollout", "start", "can", "--to", "1")
    check("start rolls out a version through the steps", rc == 0 and "rollout started" in out,
          (rc, out, err))
    ro = wait_for("paused", lambda: (lambda r: r if r and r.get("phase") == "Paused" and
                                     r.get("canaryWeight") == 50 else None)
                  (status("can").get("rollout")), 10)
    check("at its pause step the rollout is Paused at 50%", bool(ro) and ro["canary"] == "1" and
          ro["stable"] == "4", status("can").get("rollout"))
    rc, out, err = cli("rollout", "abort", "can")
    ro = status("can").get("rollout") or {}
    check("abort rolls back at once, saying who", rc == 0 and ro.get("phase") == "Failed" and
          "aborted by" in ro.get("reason", ""), (rc, out, err, ro))
    back = wait_for("v4", lambda: [x["version"] for x in status("can")["traffic"]
                                   if x["percent"]] == ["4"], 8)
    check("and the stable version has all traffic again", bool(back), status("can"))
    rc, out, err = cli("rollout", "undo", "can")
    st, j = call("GET", "/api/v1/deployments/can")
    check("undo after an abort points the spec back at the stable version",
          rc == 0 and j["spec"]["traffic"] == [{"version": 4, "percent": 100}],
          (rc, out, err, j.get("spec")))
    cli("rollout", "start", "can", "--to", "1")
    rc, out, err = cli("rollout", "promote", "can")
    ro = status("can").get("rollout") or {}
    check("promote ends a rollout with the canary taking all traffic",
          rc == 0 and ro.get("phase") == "Succeeded" and ro.get("stable") == "1", (rc, out, ro))
    moved = wait_for("v1", lambda: [x["version"] for x in status("can")["traffic"]
                                    if x["percent"]] == ["1"], 8)
    check("and version 1 then serves alone", bool(moved), status("can"))
    rc, out, err = cli("rollout", "undo", "can")
    ro = status("can").get("rollout") or {}
    check("undo after a promotion rolls out the version served before",
          rc == 0 and ro.get("canary") == "4" and ro.get("stable") == "1", (rc, out, err, ro))
    rc, out, err = cli("rollout", "status", "can", "-o", "json")
    check("rollout status -o json prints the rollout object",
          rc == 0 and json.loads(out).get("canary") == "4", (rc, out, err))
    rc, out, err = cli("rollout", "promote", "can")
    rc2, out2, err2 = cli("rollout", "status", "can", "--timeout", "20s")
    check("rollout status waits for the end and exits 0 on success",
          rc == 0 and rc2 == 0 and "Succeeded" in out2, (rc, rc2, out2, err2))
    st, j = call("GET", "/api/v1/audit?model=can&limit=100")
    actions = [e["action"] for e in (j or {}).get("items", [])]
    check("the abort is audited", "deployment.rollout_aborted" in actions, actions)
    # Promoted while the canary has less traffic than the stable version (10%): the rollout
    # ends there, and is not started again because the old version still serves the most.
    st, j = apply("can10", {"model": "cm", "instances": {"min": 1},
                            "rollout": {"strategy": "canary",
                                        "steps": [{"setWeight": 10}, {"pause": "60s"}]}})
    wait_for("can10", lambda: status("can10").get("readyInstances") == 1, 10)
    cli("rollout", "start", "can10", "--to", "1")
    wait_for("paused at 10", lambda: (status("can10").get("rollout") or {}).get("phase") ==
             "Paused", 10)
    rc, out, err = cli("rollout", "promote", "can10")
    moved = wait_for("v1", lambda: [x["version"] for x in status("can10")["traffic"]
                                    if x["percent"]] == ["1"], 8)
    ro = status("can10").get("rollout") or {}
    st, j = call("GET", "/api/v1/audit?model=can10&limit=100")
    starts = [e for e in (j or {}).get("items", []) if e["action"] == "deployment.rollout_started"]
    check("promote at 10% ends the rollout for good: Succeeded, one start, v1 serves alone",
          rc == 0 and ro.get("phase") == "Succeeded" and ro.get("stable") == "1" and
          len(starts) == 1 and bool(moved), (rc, out, err, ro, len(starts)))
    call("DELETE", "/api/v1/deployments/can10")


def cli_idiom():
    y = ("apiVersion: capstan.dev/v1\nkind: Deployment\nmetadata: {name: cli-a}\n"
         "spec: {model: digits, instances: {min: 1}}\n---\n"
         "apiVersion: capstan.dev/v1\nkind: Deployment\nmetadata: {name: cli-b}\n"
         "spec:\n  model: digits\n  traffic:\n  - {alias: prod, percent: 100}\n")
    f = TMP + "/two.yaml"
    open(f, "w").write(y)
    rc, out, err = cli("apply", "-f", f)
    check("apply -f creates every document", rc == 0 and "cli-a created" in out and
          "cli-b created" in out, (rc, out, err))
    rc, out, err = cli("apply", "-f", f)
    check("apply again says configured", rc == 0 and out.count("configured") == 2, (rc, out))
    rc, out, err = cli("get", "deployments")
    check("get deployments lists them", rc == 0 and "cli-a" in out and "READY" in out and
          "split" in out, (rc, out, err))
    rc, out, err = cli("get", "deployments", "cli-a", "-o", "json")
    j = json.loads(out) if rc == 0 else {}
    check("get -o json is the object with status", j.get("spec", {}).get("model") == "digits" and
          "readyInstances" in j.get("status", {}), (rc, out, err))
    rc, out, err = cli("get", "deploy", "cli-a", "-o", "yaml")
    check("get -o yaml", rc == 0 and "kind: Deployment" in out and "readyInstances:" in out,
          (rc, out, err))
    rc, out, err = cli("describe", "deployment", "cli-a")
    check("describe shows instances and events", rc == 0 and "Instances:" in out and
          "deployment.created" in out, (rc, out, err))
    # Times are ages, as kubectl describe shows them: an instance row ends its columns with
    # something like "12s", never an RFC 3339 stamp.
    rows = out.split("Instances:")[-1].split("Events:")
    inst = [ln.split() for ln in rows[0].splitlines()[2:] if ln.strip()]
    events = [ln.split() for ln in rows[-1].splitlines()[2:] if ln.strip()]
    ages_ok = bool(inst) and bool(events) and all(
        re.fullmatch(r"\d+[smhdy]", r[3]) for r in inst) and all(
        re.fullmatch(r"\d+[smhdy]", r[0]) for r in events)
    check("describe shows instance and event times as ages", ages_ok and "T" not in
          "".join(r[3] for r in inst), (inst, events))
    rc, out, err = cli("scale", "deployment", "cli-a", "--min", "2", "--max", "2")
    ok = rc == 0 and wait_for("two", lambda: status("cli-a").get("readyInstances") == 2, 10)
    check("scale sets the bounds and the instances follow", bool(ok), (rc, out, err,
                                                                       status("cli-a")))
    rc, out, err = cli("delete", "deployment", "cli-b")
    st, _ = call("GET", "/api/v1/deployments/cli-b")
    st2, _ = infer("cli-b")
    check("delete removes it: GET and inference 404", rc == 0 and st == 404 and st2 == 404,
          (rc, out, err, st, st2))
    bad = y.replace("name: cli-b", "name: cli-c").replace("name: cli-a", "name: cli-d") \
        .replace("kind: Deployment\nmetadata: {name: cli-c}", "kind: Pod\nmetadata: {name: cli-c}")
    open(f, "w").write(bad)
    rc, out, err = cli("apply", "-f", f)
    st, _ = call("GET", "/api/v1/deployments/cli-d")
    check("a file with a wrong kind applies nothing", rc == 1 and "kind must be Deployment" in err
          and st == 404, (rc, out, err, st))
    rc, out, err = cli("apply", "-f", ROOT + "/docs/examples/deployment.yaml")
    st, j = call("GET", "/api/v1/deployments/digits-web")
    check("the documented example applies", rc == 0 and st == 200 and
          j["spec"]["rollout"]["strategy"] == "canary", (rc, out, err, st))
    st, j = infer("digits-web")
    check("and serves", st == 200, (st, j))
    cli("delete", "deployment", "digits-web")
    rc, out, err = cli("get", "nodes")
    check("get of another kind is a usage error", rc == 2 and "deployment" in err, (rc, err))


def main_phase():
    push("digits", ROOT + "/models/digits.onnx")
    push("slow", TMP + "/slow.onnx")
    bad_input()
    scale_to_zero_and_back()
    scale_up_under_load()
    traffic_split()
    rolling_update()
    canary()
    rollout_cli()
    cli_idiom()


# --- restart ------------------------------------------------------------------------------

def restart_phase():
    st, j = call("GET", "/api/v1/deployments")
    names = [d["metadata"]["name"] for d in (j or {}).get("items", [])]
    check("a restart restores every deployment",
          names == ["busy", "can", "cli-a", "roll", "split", "web"], names)
    st, j = call("GET", "/api/v1/deployments/split")
    check("with its traffic split", [t.get("percent") for t in j["spec"]["traffic"]] == [70, 30],
          j.get("spec"))
    ok = wait_for("split ready", lambda: status("split").get("readyInstances", 0) >= 2, 10)
    counts = {"1": 0, "2": 0}
    for _ in range(100):
        st, j = infer("split")
        if st == 200:
            counts[j["model_version"]] += 1
    check("and serves both versions again", bool(ok) and counts["1"] > 0 and counts["2"] > 0,
          counts)
    st, j = call("GET", "/api/v1/deployments/cli-a")
    check("a scaled deployment keeps its bounds", j["spec"]["instances"]["min"] == 2, j.get("spec"))


# --- pending ------------------------------------------------------------------------------

def pending_phase():
    push("digits", ROOT + "/models/digits.onnx")
    apply("one", {"model": "digits", "instances": {"min": 1}})
    check("one fits the one-thread budget",
          bool(wait_for("one", lambda: status("one").get("readyInstances") == 1, 10)))
    st, j = apply("two", {"model": "digits", "instances": {"min": 1}})
    check("a deployment that does not fit is accepted", st == 201, (st, j))
    s = wait_for("two pending", lambda: (lambda s: s if "cannot start" in s.get("reason", "")
                                         else None)(status("two")), 10)
    check("and is Pending with the reason", bool(s) and s.get("readyInstances") == 0 and
          "thread" in s.get("reason", ""), status("two"))
    st, j = infer("two")
    check("its requests get 503 with the reason at once", st == 503 and "cannot start" in
          (j or {}).get("error", ""), (st, j))
    call("DELETE", "/api/v1/deployments/one")
    ok = wait_for("two ready", lambda: status("two").get("readyInstances") == 1, 10)
    check("deleting the other lets it start", bool(ok), status("two"))
    st, j = infer("two")
    check("and serve", st == 200, (st, j))


# --- devices ------------------------------------------------------------------------------

def gpu(gib):
    return {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com",
                                                     "capacity": {"requests":
                                                                  {"memory": "%dGi" % gib}}}}]}


def devices_phase():
    push("digits", ROOT + "/models/digits.onnx")
    for name, gib in (("g1", 8), ("g2", 6)):
        st, j = apply(name, {"model": "digits", "instances": {"min": 1},
                             "resources": {"devices": gpu(gib)}})
        ok = wait_for(name, lambda: status(name).get("readyInstances") == 1, 10)
        check("%s (%d Gi) gets a share of the simulated GPU" % (name, gib), bool(ok),
              (st, j, status(name)))
    # An inventory's GPU with no driver behind it: the instance runs on the CPU and says so.
    if not os.path.exists("/dev/nvidia0"):
        check("an instance on a simulated GPU runs on the cpu, as its status shows",
              [i.get("device") for i in status("g1").get("instances", [])] == ["cpu"],
              status("g1"))
    st, j = call("GET", "/api/v1/claims")
    claims = [c["metadata"]["name"] for c in (j or {}).get("items", [])]
    check("each instance holds a ResourceClaim", "g1-v1-1" in claims and "g2-v1-1" in claims,
          claims)
    apply("g3", {"model": "digits", "instances": {"min": 1}, "resources": {"devices": gpu(4)}})
    s = wait_for("g3", lambda: (lambda s: s if "cannot be placed" in s.get("reason", "")
                                else None)(status("g3")), 10)
    check("a third that does not fit is Pending with the allocator's reason", bool(s) and
          "4Gi memory free" in s["reason"] and s["readyInstances"] == 0, status("g3"))
    check("the instance that does not fit is listed as Pending with the reason",
          [(i["state"], "4Gi memory free" in i["reason"]) for i in s.get("instances", [])] ==
          [("Pending", True)], s)
    check("and counted as Pending in the metrics", metric("capstan_deployment_instances",
                                                          {"deployment": "g3",
                                                           "state": "Pending"}) == 1)
    call("DELETE", "/api/v1/deployments/g2")
    ok = wait_for("g3 up", lambda: status("g3").get("readyInstances") == 1, 10)
    check("deleting one lets it start", bool(ok), status("g3"))
    check("then it is counted Ready, not Pending",
          (metric("capstan_deployment_instances", {"deployment": "g3", "state": "Ready"}),
           metric("capstan_deployment_instances", {"deployment": "g3", "state": "Pending"})) ==
          (1, 0))
    st, j = infer("g3")
    check("and serve", st == 200, (st, j))

    cores = {"requests": [{"name": "cpu", "exactly": {"deviceClassName": "cpu.capstan.dev",
                                                      "capacity": {"requests": {"cores": 1}}}}]}
    apply("pinned", {"model": "digits", "instances": {"min": 2}, "resources": {"devices": cores}})
    s = wait_for("pinned", lambda: (lambda s: s if s.get("readyInstances") == 2 else None)
                 (status("pinned")), 10)
    cpus = sorted(c for i in (s or {}).get("instances", []) for c in i["cpus"])
    check("instances on cores are pinned to the CPUs their claims got", cpus == [0, 1], s)
    st, j = apply("bad-dev", {"model": "digits", "resources": {"devices": {"requests": [
        {"name": "cpu", "exactly": {"capacity": {"requests": {"cores": 1}}}}]}}})
    check("a bad device request is 400 with its path", st == 400 and
          "spec.resources.devices.requests[0].exactly.deviceClassName" in j["error"], (st, j))


{"main": main_phase, "devices": devices_phase, "restart": restart_phase, "pending": pending_phase}[PHASE]()
