#!/usr/bin/env bash
# test_prometheus.sh - deploy/prometheus/rules.yaml and deploy/grafana/capstan.json checked
# with Debian's prometheus: `promtool check rules`, then a real Prometheus (1 s scrape and
# evaluation intervals, on a free 127.0.0.1 port) scraping a real capstan under load, with
# the checks of prometheus_test.py. The last line is `obs_prometheus: N passed, M failed`.
#
# Usage: tests/obs/test_prometheus.sh path/to/capstan [path/to/prometheus]
set -u

CAPSTAN=$(realpath "$1")
PROMETHEUS=${2:-prometheus}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=obs_prometheus
RULES=$ROOT/deploy/prometheus/rules.yaml
DASHBOARD=$ROOT/deploy/grafana/capstan.json
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

PROM_PID=
stop_prometheus() {
    if [ -n "$PROM_PID" ]; then
        kill -TERM "$PROM_PID" 2>/dev/null
        wait "$PROM_PID" 2>/dev/null
    fi
    PROM_PID=
}
trap 'stop_prometheus; cleanup' EXIT

if ! command -v "$PROMETHEUS" >/dev/null || ! command -v promtool >/dev/null; then
    fail "prometheus and promtool are needed (apt-get install -y prometheus)"
    summary
    exit 1
fi
if out=$(promtool check rules "$RULES" 2>&1); then
    pass "promtool check rules"
else
    fail "promtool check rules: $out"
fi

# The exporter points at a closed port, so its counters exist (and errors count up).
if start prom --model "digits=$ROOT/models/digits.onnx" \
    --otlp-endpoint "http://127.0.0.1:$(free_port)"; then
    PPORT=$(free_port)
    cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$RULES"]
scrape_configs:
  - job_name: capstan
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
YAML
    "$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
        --web.listen-address="127.0.0.1:$PPORT" >"$TMP/prometheus.log" 2>&1 &
    PROM_PID=$!
    ready=
    for _ in $(seq 200); do
        curl -sf "http://127.0.0.1:$PPORT/-/ready" >/dev/null 2>&1 && ready=1 && break
        kill -0 "$PROM_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -n "$ready" ]; then
        "$PY" "$HERE/prometheus_test.py" "$URL" "http://127.0.0.1:$PPORT" "$DASHBOARD" "$RULES" |
            tee -a "$RESULTS" | grep -v "^PASS"
    else
        fail "prometheus did not start: $(tail -3 "$TMP/prometheus.log")"
    fi
    stop_prometheus
    stop prom
fi
summary
