"""otlp_test.py - checks of the OTLP trace export, against a server started by test_otlp.sh
and the receiver.py it writes to.

Usage: otlp_test.py SCENARIO URL OUT, where OUT is the receiver's file. Prints one PASS/FAIL
line per check. Scenarios (the server's configuration is test_otlp.sh's):
  main   receiver 503-once, batches every 200 ms: parents, children, times, names, kinds,
         attributes and status codes of spans with and without a traceparent, a sampled-out
         parent exports nothing, the 503'd batch arrives once
  flush  a long schedule delay: the span arrives only once the server is stopped
         ("flush-before" before the stop, "flush-after" after it)
  slow   a receiver slower than the traffic and a queue of 4: requests stay fast, spans are
         dropped and counted
  off    OTEL_TRACES_SAMPLER=always_off: nothing is exported ("off-after" after the stop)
  down   the endpoint refuses connections: requests stay fast and all succeed
  reject the receiver answers 400: each batch is sent once, counted as an error and dropped
  env-traces  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (a path used as given) and
         OTEL_EXPORTER_OTLP_TRACES_HEADERS, which win over the generic variables
  env-base    OTEL_EXPORTER_OTLP_ENDPOINT (a base URL: /v1/traces appended) and
         OTEL_EXPORTER_OTLP_HEADERS
"""
import json
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks, request  # noqa: E402

SCENARIO, URL, OUT = sys.argv[1], urllib.parse.urlparse(sys.argv[2]), sys.argv[3]
TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
INFER = "/v2/models/digits/infer"
BODY = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                    "data": [0.5] * 64}]}


check = Checks(limit=600)


def call(method, path, body=None, headers=None):
    return request(URL.hostname, URL.port, method, path, body, headers)


def attempts():
    """Every POST the receiver got: [{"status": S, "body": doc}]."""
    try:
        with open(OUT) as f:
            return [json.loads(line) for line in f]
    except FileNotFoundError:
        return []


def spans(accepted_only=True):
    out = []
    for a in attempts():
        if accepted_only and a["status"] != 200:
            continue
        for rs in a["body"]["resourceSpans"]:
            res = {x["key"]: x["value"] for x in rs["resource"]["attributes"]}
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    s["_resource"] = res
                    out.append(s)
    return out


def wait_spans(pred, n, timeout=10):
    deadline = time.time() + timeout
    while True:
        got = [s for s in spans() if pred(s)]
        if len(got) >= n or time.time() > deadline:
            return got
        time.sleep(0.05)


def attrs(s):
    out = {}
    for a in s.get("attributes", []):
        v = a["value"]
        out[a["key"]] = v.get("stringValue", v.get("intValue"))
    return out


def metrics():
    """The unlabelled series of /metrics, by name."""
    _, _, b = call("GET", "/metrics")
    return {line.split()[0]: float(line.split()[1]) for line in b.decode().splitlines()
            if line and not line.startswith("#") and "{" not in line}


def metric(name):
    return metrics().get(name)


def traceparent(h):
    parts = h.get("traceparent", "").split("-")
    return parts if len(parts) == 4 else ["", "", "", ""]


def check_server_span(name, s, path, status, route):
    a = attrs(s)
    want = {"http.request.method": "POST", "url.path": path, "url.scheme": "http",
            "http.response.status_code": str(status), "http.route": route,
            "server.port": str(URL.port), "client.address": "127.0.0.1"}
    bad = {k: (a.get(k), v) for k, v in want.items() if a.get(k) != v}
    check(name + ": SERVER span named for its route", s["kind"] == 2 and
          s["name"] == "POST " + route, (s["kind"], s["name"]))
    check(name + ": HTTP attributes", not bad, bad)
    check(name + ": times are decimal strings of Unix nanoseconds",
          isinstance(s["startTimeUnixNano"], str) and
          abs(int(s["startTimeUnixNano"]) / 1e9 - time.time()) < 60 and
          int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]), s["startTimeUnixNano"])
    check(name + ": resource service.name", s["_resource"].get("service.name") ==
          {"stringValue": "capstan-test"}, s["_resource"])


def check_children(name, server, all_spans):
    kids = {s["name"]: s for s in all_spans if s.get("parentSpanId") == server["spanId"]}
    check(name + ": queue, compute and encode children", sorted(kids) ==
          ["compute", "encode", "queue"], sorted(kids))
    lo, hi = int(server["startTimeUnixNano"]), int(server["endTimeUnixNano"])
    for k, s in kids.items():
        inside = lo <= int(s["startTimeUnixNano"]) <= int(s["endTimeUnixNano"]) <= hi
        check("%s: %s is INTERNAL, in the server span's trace and time" % (name, k),
              s["kind"] == 1 and s["traceId"] == server["traceId"] and inside,
              (s["kind"], s["startTimeUnixNano"], s["endTimeUnixNano"], lo, hi))
    if "queue" in kids and "compute" in kids and "encode" in kids:
        order = [int(kids[k]["startTimeUnixNano"]) for k in ("queue", "compute", "encode")]
        check(name + ": queue, then compute, then encode", order == sorted(order), order)
        a = attrs(kids["compute"])
        check(name + ": compute has batch size, instance, device and model",
              a.get("capstan.batch_size") == "1" and a.get("capstan.instance") == "1" and
              a.get("capstan.device") == "cpu" and a.get("capstan.model.name") == "digits", a)


def main_scenario():
    # With a traceparent and a tracestate: continued, passed on unchanged.
    st, h, _ = call("POST", INFER, BODY, {"traceparent": "00-%s-%s-01" % (TRACE, PARENT),
                                          "tracestate": "vendor=abc,other=x:1"})
    tp = traceparent(h)
    check("inference with a traceparent answers 200", st == 200, st)
    check("the answer continues the trace, sampled", tp[1] == TRACE and tp[2] != PARENT and
          tp[3] == "01", h.get("traceparent"))
    check("tracestate is passed on unchanged", h.get("tracestate") == "vendor=abc,other=x:1",
          h.get("tracestate"))
    # Without one: a new sampled trace.
    st, h2, _ = call("POST", INFER, BODY)
    tp2 = traceparent(h2)
    check("without a traceparent: a new sampled trace", st == 200 and len(tp2[1]) == 32 and
          tp2[1] != TRACE and tp2[3] == "01", h2.get("traceparent"))
    # A parent that was not sampled: parentbased keeps it out.
    unsampled = "0af7651916cd43dd8448eb211c80319c"
    st, h3, _ = call("POST", INFER, BODY, {"traceparent": "00-%s-b7ad6b7169203331-00" % unsampled})
    check("a sampled-out parent stays sampled out", st == 200 and
          traceparent(h3)[3] == "00", h3.get("traceparent"))
    # 4xx and 5xx: an unknown model, and one that is known but not loaded.
    st4, _, _ = call("POST", "/v2/models/nosuch/infer", BODY)
    st5, _, _ = call("POST", "/v2/models/lazy/infer", BODY)
    check("unknown model 404, unloaded model 503", (st4, st5) == (404, 503), (st4, st5))

    # A path with a quote, a backslash and a byte that is not UTF-8: still valid JSON.
    call("GET", "/v2/models/q%22%5C%FF/ready")
    got = wait_spans(lambda s: s["traceId"] == TRACE and s["kind"] == 2, 1)
    allspans = spans()
    server = [s for s in got if s["spanId"] == tp[2]]
    check("the server span arrives once, with the answer's span id", len(server) == 1,
          [(s["spanId"], s["name"]) for s in got])
    if server:
        s = server[0]
        check("its parent is the client's span", s.get("parentSpanId") == PARENT,
              s.get("parentSpanId"))
        check("its traceState is the client's", s.get("traceState") == "vendor=abc,other=x:1",
              s.get("traceState"))
        check_server_span("with traceparent", s, INFER, 200, "/v2/models/{m}/infer")
        a = attrs(s)
        check("model name and version attributes", a.get("capstan.model.name") == "digits" and
              a.get("capstan.model.version") == "1", a)
        check("a 200 has no status", "status" not in s, s.get("status"))
        check_children("with traceparent", s, allspans)
    root = wait_spans(lambda s: s["traceId"] == tp2[1] and s["kind"] == 2, 1)
    check("without traceparent: one root span", len(root) == 1 and "parentSpanId" not in root[0],
          root)
    if root:
        check_server_span("without traceparent", root[0], INFER, 200, "/v2/models/{m}/infer")
        check_children("without traceparent", root[0], allspans)
    errs = wait_spans(lambda s: s["kind"] == 2 and attrs(s).get("url.path", "").endswith(
        ("/nosuch/infer", "/lazy/infer")), 2)
    by = {attrs(s)["http.response.status_code"]: s for s in errs}
    check("404 and 503 spans exported", sorted(by) == ["404", "503"], sorted(by))
    if "404" in by and "503" in by:
        check("404 leaves the status unset, 503 is ERROR", "status" not in by["404"] and
              by["503"].get("status", {}).get("code") == 2, (by["404"].get("status"),
                                                             by["503"].get("status")))
        check("a 404 span has no children (it never reached a model)",
              not [x for x in allspans if x.get("parentSpanId") == by["404"]["spanId"]])
    odd = wait_spans(lambda s: attrs(s).get("url.path", "").startswith("/v2/models/q"), 1)
    check("odd bytes in a path: escaped, non-ASCII as '?'", [attrs(x)["url.path"] for x in odd]
          == ['/v2/models/q"\\?/ready'], [attrs(x).get("url.path") for x in odd])
    check("nothing of the sampled-out trace is exported",
          not [s for s in spans(False) if s["traceId"] == unsampled])
    first = attempts()[:1]
    check("the receiver's first answer was 503", first and first[0]["status"] == 503, first)
    ids = [s["spanId"] for s in spans()]
    check("every span is accepted once (the 503'd batch was retried, not duplicated)",
          len(ids) == len(set(ids)) and tp[2] in ids, len(ids))
    check("export metrics: spans exported, one error",
          (metric("capstan_otlp_spans_exported_total") or 0) >= len(ids) and
          metric("capstan_otlp_export_errors_total") == 1,
          (metric("capstan_otlp_spans_exported_total"), metric("capstan_otlp_export_errors_total")))


def fast_requests(n, limit_s):
    worst, codes = 0, set()
    for _ in range(n):
        t = time.time()
        st, _, _ = call("POST", INFER, BODY)
        worst = max(worst, time.time() - t)
        codes.add(st)
    check("%d requests answered 200" % n, codes == {200}, codes)
    check("no request waited on the receiver (slowest %.3f s)" % worst, worst < limit_s, worst)


def main():
    if SCENARIO == "main":
        main_scenario()
    elif SCENARIO == "flush-before":
        st, h, _ = call("POST", INFER, BODY, {"traceparent": "00-%s-%s-01" % (TRACE, PARENT)})
        time.sleep(0.5)
        check("flush: the request is answered, nothing exported yet", st == 200 and
              not attempts(), (st, len(attempts())))
    elif SCENARIO == "flush-after":
        got = [s for s in spans() if s["traceId"] == TRACE]
        check("flush: the stop exported the queued spans", sorted(s["name"] for s in got) ==
              ["POST /v2/models/{m}/infer", "compute", "encode", "queue"],
              [s["name"] for s in got])
    elif SCENARIO == "slow":
        fast_requests(6, 0.5)
        dropped = metric("capstan_otlp_spans_dropped_total")
        check("a full queue drops spans and counts them", dropped and dropped > 0, dropped)
    elif SCENARIO == "off":
        st, h, _ = call("POST", INFER, BODY, {"traceparent": "00-%s-%s-01" % (TRACE, PARENT)})
        check("always_off: answered, traceparent flags 00", st == 200 and
              traceparent(h)[3] == "00", h.get("traceparent"))
        time.sleep(0.5)
    elif SCENARIO == "off-after":
        check("always_off: the receiver got nothing", not attempts(), len(attempts()))
    elif SCENARIO == "reject":
        st, _, _ = call("POST", INFER, BODY)
        time.sleep(2.5)  # past the 1 s back-off a retry would wait
        got = attempts()  # before /metrics, whose own span goes out after it answers
        m = metrics()
        bodies = [json.dumps(a["body"], sort_keys=True) for a in got]
        n_spans = sum(len(ss["spans"]) for a in got for rs in a["body"]["resourceSpans"]
                      for ss in rs["scopeSpans"])
        check("400: every batch was sent once, none retried", st == 200 and got and
              len(set(bodies)) == len(bodies), len(bodies))
        check("400: each POST counts as an error, its spans as dropped",
              m.get("capstan_otlp_export_errors_total") == len(got) and
              m.get("capstan_otlp_spans_dropped_total") == n_spans,
              (m.get("capstan_otlp_export_errors_total"), len(got),
               m.get("capstan_otlp_spans_dropped_total"), n_spans))
    elif SCENARIO == "down":
        fast_requests(20, 0.5)
    elif SCENARIO.startswith("env-"):
        path, want = {
            "env-traces": ("/custom/traces", {"X-Tenant": "t 1", "Authorization": "Bearer s=1"}),
            "env-base": ("/base/v1/traces", {"Authorization": "Basic YWxhZGRpbjpvcGVu"}),
        }[SCENARIO]
        st, h, _ = call("POST", INFER, BODY)
        got = wait_spans(lambda s: s["spanId"] == traceparent(h)[2], 1)
        posts = attempts()
        check(SCENARIO + ": spans POSTed to " + path, st == 200 and got and
              all(a["path"] == path and a["status"] == 200 for a in posts),
              [(a["path"], a["status"]) for a in posts])
        sent = posts[0]["headers"] if posts else {}
        check(SCENARIO + ": the configured headers sent, percent-decoded",
              all(sent.get(k) == v for k, v in want.items()), sent)
        check(SCENARIO + ": only the winning variable's headers",
              SCENARIO != "env-traces" or "X-Generic" not in sent, sent)


main()
