#!/usr/bin/env bash
# test_otlp.sh - OpenTelemetry traces end to end: a real server exporting over OTLP/HTTP to
# receiver.py, one server per scenario of otlp_test.py (main, flush, slow, off, reject,
# down, env-traces, env-base), and the request log lines' trace ids in both formats.
# The last line is `obs_otlp: N passed, M failed`.
#
# Usage: tests/otlp/test_otlp.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=obs_otlp
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

RECEIVER_PID=
stop_receiver() {
    if [ -n "$RECEIVER_PID" ]; then
        kill "$RECEIVER_PID" 2>/dev/null
        wait "$RECEIVER_PID" 2>/dev/null
    fi
    RECEIVER_PID=
}
trap 'stop_receiver; cleanup' EXIT

# receiver NAME MODE [PATH]: receiver.py on a free port, writing to $TMP/NAME.jsonl; sets
# RPORT, OUT.
receiver() {
    RPORT=$(free_port)
    OUT=$TMP/$1.jsonl
    "$PY" "$HERE/receiver.py" "$RPORT" "$OUT" "$2" ${3:+"$3"} &
    RECEIVER_PID=$!
    for _ in $(seq 100); do
        "$PY" -c "import socket; socket.create_connection(('127.0.0.1', $RPORT), 1)" 2>/dev/null &&
            return 0
        sleep 0.05
    done
    fail "receiver did not start"
}

mkdir -p "$TMP/data/models"
cp "$ROOT/models/digits.onnx" "$TMP/data/models/lazy.onnx" # known, not loaded: 503
MODEL=(--model "digits=$ROOT/models/digits.onnx")
export OTEL_SERVICE_NAME=capstan-test

run() { "$PY" "$HERE/otlp_test.py" "$1" "$URL" "$OUT" | tee -a "$RESULTS" | grep -v "^PASS"; }

# main: batches every 200 ms, the receiver's first answer 503.
receiver main 503-once
if OTEL_BSP_SCHEDULE_DELAY=200 start main "${MODEL[@]}" --otlp-endpoint "http://127.0.0.1:$RPORT"; then
    run main
    stop main
    # Logs join traces: the request's JSON line names the client's trace.
    if grep -q '"msg":"request".*"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"[0-9a-f]\{16\}"' \
        "$TMP/server.log"; then
        pass "logs: a JSON request line carries the trace's trace_id and span_id"
    else
        fail "logs: no JSON request line with the trace id: $(grep -m1 request "$TMP/server.log")"
    fi
fi
stop_receiver

# logs: --log-format text, key=value lines with the same trace ids.
if start logs "${MODEL[@]}" --log-format text; then
    tp=$(curl -s -D - -o /dev/null -H "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01" \
        "$URL/v2/health/ready" | tr -d '\r' | sed -n 's/^traceparent: //p')
    stop logs
    line=$(grep ' request .*path=/v2/health/ready' "$TMP/server.log")
    if [[ "$line" =~ ^[0-9-]+T[0-9:.]+Z\ info\ \ request\ request_id=[^\ ]+\ method=GET\ .*status=200\ .*trace_id=4bf92f3577b34da6a3ce929d0e0e4736\ span_id=${tp:36:16}$ ]]; then
        pass "logs: --log-format text writes key=value lines with trace_id and span_id"
    else
        fail "logs: text request line '$line' (answer's traceparent $tp)"
    fi
fi
msg=$("$CAPSTAN" serve --port 0 --log-format xml 2>&1)
if [ $? -eq 2 ] && grep -q -- "--log-format: log format 'xml': expected json or text" <<<"$msg"; then
    pass "a bad --log-format is a usage error"
else
    fail "--log-format xml: $msg"
fi

# flush: a schedule delay longer than the test, so only the stop exports.
receiver flush ok
if OTEL_BSP_SCHEDULE_DELAY=600000 start flush "${MODEL[@]}" --otlp-endpoint "http://127.0.0.1:$RPORT"; then
    run flush-before
    stop flush
    run flush-after
fi
stop_receiver

# slow: the receiver takes 1 s per batch, the queue holds 4 spans (one request's).
receiver slow slow
if OTEL_BSP_MAX_QUEUE_SIZE=4 OTEL_BSP_SCHEDULE_DELAY=50 \
    start slow "${MODEL[@]}" --otlp-endpoint "http://127.0.0.1:$RPORT"; then
    run slow
    stop slow
fi
stop_receiver

# off: nothing sampled, whatever the parent says.
receiver off ok
if OTEL_TRACES_SAMPLER=always_off OTEL_BSP_SCHEDULE_DELAY=100 \
    start off "${MODEL[@]}" --otlp-endpoint "http://127.0.0.1:$RPORT"; then
    run off
    stop off
    run off-after
fi
stop_receiver

# reject: the receiver answers 400, which is never retried.
receiver reject reject
if OTEL_BSP_SCHEDULE_DELAY=100 start reject "${MODEL[@]}" --otlp-endpoint "http://127.0.0.1:$RPORT"; then
    run reject
    stop reject
fi
stop_receiver

# down: nothing listens on the endpoint; the stop must still be prompt (stop checks 10 s).
DOWN=$(free_port)
OUT=$TMP/down.jsonl
if OTEL_BSP_SCHEDULE_DELAY=100 start down "${MODEL[@]}" \
    --otlp-endpoint "http://127.0.0.1:$DOWN"; then
    run down
    stop down
fi

# env-traces / env-base: the endpoint and headers from the OTEL_EXPORTER_OTLP_* variables.
receiver env-traces ok /custom/traces
if OTEL_BSP_SCHEDULE_DELAY=100 OTEL_EXPORTER_OTLP_TRACES_ENDPOINT="http://127.0.0.1:$RPORT/custom/traces" \
    OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$(free_port)" \
    OTEL_EXPORTER_OTLP_TRACES_HEADERS="X-Tenant=t%201, Authorization = Bearer%20s%3D1" \
    OTEL_EXPORTER_OTLP_HEADERS="X-Generic=1" start env-traces "${MODEL[@]}"; then
    run env-traces
    stop env-traces
fi
stop_receiver
receiver env-base ok /base/v1/traces
if OTEL_BSP_SCHEDULE_DELAY=100 OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$RPORT/base/" \
    OTEL_EXPORTER_OTLP_HEADERS="Authorization=Basic%20YWxhZGRpbjpvcGVu" \
    start env-base "${MODEL[@]}"; then
    run env-base
    stop env-base
fi
stop_receiver
msg=$(OTEL_EXPORTER_OTLP_HEADERS="Authorization=Bearer%0d%0aX: 1" "$CAPSTAN" serve --port 0 2>&1)
if [ $? -eq 2 ] && grep -q "OTEL_EXPORTER_OTLP_HEADERS: header 'Authorization': control characters" <<<"$msg" &&
    ! grep -q Bearer <<<"$msg"; then
    pass "a header value with CR LF is a usage error that does not echo the value"
else
    fail "OTEL_EXPORTER_OTLP_HEADERS with CR LF: $msg"
fi

# A bad sampler is refused at start, naming the variable.
msg=$(OTEL_TRACES_SAMPLER=sometimes "$CAPSTAN" serve --port 0 2>&1)
if [ $? -eq 2 ] && grep -q "OTEL_TRACES_SAMPLER: expected always_on" <<<"$msg"; then
    pass "a bad OTEL_TRACES_SAMPLER is a usage error"
else
    fail "a bad OTEL_TRACES_SAMPLER: $msg"
fi
msg=$("$CAPSTAN" serve --port 0 --otlp-endpoint ftp://x 2>&1)
if [ $? -eq 2 ] && grep -q -- "--otlp-endpoint: expected an http:// or https:// URL" <<<"$msg"; then
    pass "a non-HTTP --otlp-endpoint is a usage error"
else
    fail "--otlp-endpoint ftp://x: $msg"
fi
summary
