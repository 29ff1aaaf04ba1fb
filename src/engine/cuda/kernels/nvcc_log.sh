#!/bin/sh
# nvcc_log.sh LOG COMMAND... - runs a device compile with its stderr (ptxas -v: registers,
# stack and spills of each kernel) saved in LOG for cuda_kernels_test.c; on failure the log
# is printed so the build shows the error.
log=$1
shift
if "$@" 2>"$log"; then exit 0; fi
rc=$?
cat "$log" >&2
exit $rc
