#!/usr/bin/env bash
# The execution trace's test (ctest: trace_json): runs tests/trace/traced.c
# traced by GORT_TRACE and by gort_trace_start/stop, and checks each trace
# with tests/trace/check.py.
#
#   tests/trace/run.sh PROGRAM
#
# Exits 77 (ctest: skipped) when python3 is missing (scripts/deps.sh
# installs it).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
prog=$1
if ! command -v python3 >/dev/null 2>&1; then
    echo "trace-test: skipped: no python3 (scripts/deps.sh installs it)"
    exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/gort-trace-test.XXXXXX")
trap 'rm -rf "$dir"' EXIT
status=0
GORT_TRACE="$dir/env.json" "$prog" env || status=1
python3 "$here/check.py" "$dir/env.json" env || status=1
"$prog" api "$dir/api.json" || status=1
python3 "$here/check.py" "$dir/api.json" api || status=1
exit $status
