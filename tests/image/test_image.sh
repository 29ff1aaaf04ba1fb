#!/usr/bin/env bash
# test_image.sh - the container image end to end (label `image`, ~15 s): `make image`'s
# script builds it and writes the OCI archive; a container made from that archive runs the
# image's own entrypoint (`capstan serve --host 0.0.0.0 --data-dir /data`) under
# `buildah run`, on a free port of the host's loopback; a client outside it checks health,
# checks that it turned authentication on by itself (it listens on 0.0.0.0), infers the
# digits sample (label 1) with the admin token it wrote to its data directory and writes
# there through the management API (a host directory mounted at /state and named with a
# second --data-dir, since buildah mounts the image's VOLUME /data over any bind there); the
# serving process is checked to run as uid 65532, not root. The last line is
# `image: N passed, M failed`.
#
# Usage: tests/image/test_image.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=image
# shellcheck source=../lib/server.sh
. "$ROOT/tests/lib/server.sh"

BUILD=$(dirname "$CAPSTAN")
ARCHIVE=$BUILD/capstan-image.tar
B=(buildah --storage-driver vfs)
CTR=
remove_container() {
    cleanup
    [ -n "$CTR" ] && "${B[@]}" rm "$CTR" >/dev/null 2>&1
}
trap remove_container EXIT

if ! (cd "$ROOT" && BUILD=$BUILD scripts/build-image) >"$TMP/build.out" 2>&1; then
    fail "make image: $(tail -5 "$TMP/build.out")"
    summary
    exit
fi
pass "make image built $ARCHIVE"
echo "image: $(tail -1 "$TMP/build.out")"

CTR=$("${B[@]}" from -q --pull-never "oci-archive:$ARCHIVE" 2>"$TMP/from.err") ||
    { fail "buildah from the archive: $(cat "$TMP/from.err")"; summary; exit; }
mapfile -t entry < <("${B[@]}" inspect --format '{{range .OCIv1.Config.Entrypoint}}{{println .}}{{end}}' "$CTR" | sed '/^$/d')
user=$("${B[@]}" inspect --format '{{.OCIv1.Config.User}}' "$CTR")
[ "${entry[*]}" = "/usr/bin/capstan serve --host 0.0.0.0 --data-dir /data" ] &&
    pass "entrypoint" || fail "entrypoint is '${entry[*]}'"
[ "$user" = "65532:65532" ] && pass "image user" || fail "image user is '$user'"

DATA=$TMP/data
mkdir -p "$DATA" && chown 65532:65532 "$DATA"
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
timeout 120 "${B[@]}" run --isolation chroot --user "$user" --volume "$DATA:/state:rw" "$CTR" -- "${entry[@]}" --data-dir /state --port "$PORT" \
    --model digits=/models/digits.onnx --model-config digits=/models/digits.yaml \
    2>"$TMP/server.log" &
RUN_PID=$!
for _ in $(seq 200); do
    curl -sf "$URL/v2/health/ready" >/dev/null 2>&1 && break
    kill -0 "$RUN_PID" 2>/dev/null || break
    sleep 0.05
done
SERVER_PID=$(ss -Htlnp "sport = :$PORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
if [ -z "$SERVER_PID" ]; then
    fail "capstan serve in the container did not start: $(tail -3 "$TMP/server.log")"
    summary
    exit
fi
pass "serving from the container on $URL"

uid=$(awk '/^Uid:/ {print $2}' "/proc/$SERVER_PID/status")
[ "$uid" = 65532 ] && pass "runs as uid 65532" || fail "serving process runs as uid '$uid'"

TOKEN=$(cat "$DATA/admin.token" 2>/dev/null)
[ -n "$TOKEN" ] && pass "the first start wrote admin.token" || fail "no admin.token in the data directory"
PYTHONPATH=$ROOT/tests/lib "$PY" - "$PORT" "$ROOT/models/digits.sample.json" "$ROOT/models/digits.onnx" "$TOKEN" \
    >>"$RESULTS" <<'PYEOF'
import json, sys
from capstan_http import request, jbody

port = int(sys.argv[1])
sample = json.load(open(sys.argv[2]))
auth = {"Authorization": "Bearer " + sys.argv[4]}


def check(name, ok, detail=""):
    print(("PASS " if ok else "FAIL ") + name + ("" if ok else ": " + detail))


st, _, body = request("127.0.0.1", port, "GET", "/v2/health/live")
check("live", st == 200, "%d %r" % (st, body))
st, hdr, body = request("127.0.0.1", port, "POST", "/v2/models/digits/infer", sample["request"])
check("off loopback, an anonymous inference is refused", st == 401 and
      hdr.get("www-authenticate", "").startswith("Bearer"), "%d %r" % (st, body[:200]))
st, _, body = request("127.0.0.1", port, "POST", "/v2/models/digits/infer", sample["request"], auth)
out = (jbody(body) or {}).get("outputs", [{}])
scores = out[0].get("data", []) if out else []
label = max(range(len(scores)), key=scores.__getitem__) if scores else None
check("infer digits from outside the container", st == 200 and label == sample["label"],
      "%d %r" % (st, body[:200]))
onnx = open(sys.argv[3], "rb").read()
st, _, body = request("127.0.0.1", port, "POST", "/api/v1/models", {"name": "pushed"}, auth)
check("create a model in the data directory", st == 201, "%d %r" % (st, body[:200]))
st, _, body = request("127.0.0.1", port, "POST", "/api/v1/models/pushed/versions", onnx,
                      dict(auth, **{"Content-Type": "application/octet-stream"}))
check("push a version into the data directory as non-root", st == 201, "%d %r" % (st, body[:200]))
PYEOF

kill -TERM "$SERVER_PID" 2>/dev/null
wait "$RUN_PID" 2>/dev/null
SERVER_PID=
summary
