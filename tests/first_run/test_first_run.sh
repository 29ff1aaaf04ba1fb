#!/usr/bin/env bash
# test_first_run.sh - `make run` is a light, quiet first run (issue 14), checked without
# installing anything or serving:
#  - its install step is `scripts/install-deps build` (and `make test`'s is `... test`), read
#    from `make -n`;
#  - the build step's packages (`scripts/install-deps --list build`) hold the compiler and
#    libraries but none of the suites' heavy tools: PyTorch, PostgreSQL, nginx, wrk, ...;
#  - `make build` on the already-built tree BUILD_DIR prints no make "Entering directory"
#    lines. It runs in the checkout as a reader types it, outside any make (MAKELEVEL and
#    MAKEFLAGS unset): `make -C DIR` prints its own "Entering directory DIR" however the
#    Makefile is written, which is make's doing, not the build's. A tree whose Makefile is
#    older than CMakeLists.txt is not already built (make build would configure it with
#    make's own build type), so that check is skipped there, saying so.
#
# Usage: tests/first_run/test_first_run.sh BUILD_DIR
# The last line is `first_run: N passed, M failed`.
set -u
BUILD=$(realpath "$1")
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    echo "FAIL $1"
    failed=$((failed + 1))
}
# check NAME COMMAND...: COMMAND must succeed.
check() {
    local name=$1
    shift
    if "$@"; then pass; else fail "$name"; fi
}
not() { ! "$@"; }
contains() { grep -q -- "$2" <<<"$1"; } # TEXT PATTERN
has() { grep -qx -- "$2" <<<"$1"; }     # LIST PACKAGE
cd "$ROOT" || exit 1
unset MAKELEVEL MAKEFLAGS MFLAGS

# --- the install steps --------------------------------------------------------------------
run_plan=$(make -n run BUILD="$BUILD" 2>&1)
check "make run installs with 'install-deps build'" contains "$run_plan" "scripts/install-deps build$"
check "make run installs nothing of 'install-deps test'" \
    not contains "$run_plan" "scripts/install-deps test"
test_plan=$(make -n test BUILD="$BUILD" 2>&1)
check "make test installs with 'install-deps test'" \
    contains "$test_plan" "scripts/install-deps test$"

build_pkgs=$(scripts/install-deps --list build)
test_pkgs=$(scripts/install-deps --list test)
for p in cmake gcc make libopenblas-dev libmicrohttpd-dev libsqlite3-dev python3 curl; do
    check "install-deps build has $p" has "$build_pkgs" "$p"
done
# What only the suites and benchmarks use; each is in the test list, none in build's.
for p in python3-torch python3-torchvision python3-onnx python3-numpy python3-sklearn \
    libonnx-testdata postgresql nginx-light wrk prometheus clang clang-format strace chromium \
    buildah nodejs; do
    check "install-deps build leaves out $p" not has "$build_pkgs" "$p"
    check "install-deps test has $p" has "$test_pkgs" "$p"
done
while read -r p; do
    check "install-deps test has build's $p" has "$test_pkgs" "$p"
done <<<"$build_pkgs"
scripts/install-deps --list nothing >/dev/null 2>&1
rc=$?
check "install-deps refuses an unknown step (exit $rc, want 2)" [ "$rc" -eq 2 ]

# --- a quiet build ------------------------------------------------------------------------
if [ "$BUILD/Makefile" -ot CMakeLists.txt ]; then
    echo "SKIP make build's output: $BUILD/Makefile is older than CMakeLists.txt"
else
    out=$(make build BUILD="$BUILD" JOBS=1 2>&1)
    rc=$?
    check "make build on a built tree exits 0 (exit $rc: $(tail -3 <<<"$out"))" [ "$rc" -eq 0 ]
    check "make build prints no 'Entering directory': $(grep -m2 'directory' <<<"$out")" \
        not contains "$out" "Entering directory\|Leaving directory"
fi

echo "first_run: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
