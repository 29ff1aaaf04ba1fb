#!/usr/bin/env bash
# test_prometheus.sh - deploy/prometheus/rules.yaml and deploy/grafana/capstan.json checked
# with Debian's prometheus: `promtool check rules`, then a real Prometheus (1 s scrape and
# evaluation intervals, on a free 127.0.0.1 port) scraping a real capstan under load - a
# served model and a deployment of a registry model, which scales from zero - with the
# checks of prometheus_test.py. The GPU panels and rules read NVIDIA dcgm-exporter's series,
# which no machine here has (no GPU; capstan exports no GPU figures of its own): a second
# job scrapes dcgm_stand_in.py, which serves those names and labels.
# The last line is `obs_prometheus: N passed, M failed`.
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
DCGM_PID=
stop_prometheus() {
    local p
    for p in "$PROM_PID" "$DCGM_PID"; do
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
    done
    PROM_PID= DCGM_PID=
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
if start prom --model "digits=$ROOT/models/digits.onnx" --threads 8 \
    --otlp-endpoint "http://127.0.0.1:$(free_port)"; then
    # The registry model behind the deployment that prometheus_test.py applies.
    if ! out=$(CAPSTAN_SERVER=$URL "$CAPSTAN" model push dmodel "$ROOT/models/digits.onnx" 2>&1); then
        fail "model push dmodel: $out"
    fi
    DPORT=$(free_port)
    "$PY" "$HERE/dcgm_stand_in.py" "$DPORT" &
    DCGM_PID=$!
    PPORT=$(free_port)
    cat >"$TMP/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$RULES"]
scrape_configs:
  - job_name: capstan
    static_configs: [{targets: ["127.0.0.1:$PORT"]}]
  - job_name: dcgm-exporter
    static_configs: [{targets: ["127.0.0.1:$DPORT"]}]
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
