# lib.sh - what the server benchmarks share (sourced, not run): a scratch folder and the
# processes started removed and stopped on exit, python, a free port, resnet18 exported, and
# starting `capstan serve` in the background until it is ready, alone or as the platform the
# CLI talks to. The caller has cd'd to the checkout and set `build`.
#
# $pid is the server `serve` started; a script that starts more processes in the background
# adds them to $pids. All are killed and waited for on exit.
tmp=$(mktemp -d)
pid=
pids=()
cleanup() {
  for p in $pid "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
py=/usr/bin/python3
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# serve PORT ARGS...: `capstan serve --port PORT ARGS` (the command may be prefixed, e.g. by
# taskset, through $SERVE_PREFIX), its output in $tmp/serve.log, waited for until it is ready.
serve() {
  local port=$1
  shift
  ${SERVE_PREFIX:-} "$build/capstan" serve --port "$port" --log-level error "$@" >"$tmp/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && return 0; sleep 0.1; done
  echo "capstan serve on port $port did not start: $(tail -3 "$tmp/serve.log")" >&2
  return 1
}

# serve_platform ARGS...: `serve` on a free port (in $port) with a data dir under $tmp, and
# CAPSTAN_SERVER exported so that `capstan model push`, `apply` and the rest talk to it.
serve_platform() {
  port=$(free_port)
  export CAPSTAN_SERVER=http://127.0.0.1:$port
  serve "$port" --data-dir "$tmp/data" "$@"
}

# export_resnet18: resnet18 exported once into $build/models-cache (tools/export_models.py
# keeps it there), its file in $resnet18.
export_resnet18() {
  $py tools/export_models.py "$build/models-cache" --only resnet18 >/dev/null
  # shellcheck disable=SC2034 # read by the caller
  resnet18=$build/models-cache/resnet18/model.onnx
}
