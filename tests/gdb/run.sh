#!/usr/bin/env bash
# The gdb extension's test (ctest: gdb_goroutines): runs tests/gdb/check.py
# in gdb against each PROGRAM, a build of tests/gdb/parked.c. One linked
# with libgort.so must find tools/gdb/gort-gdb.py by gdb's auto-load (the
# build puts a loader beside the library); one linked statically gets it
# with -x, as a user would source it.
#
#   tests/gdb/run.sh GDB STATIC-PROGRAM SHARED-PROGRAM
#
# Exits 77 (ctest: skipped) when gdb is missing or may not trace.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gdb=$1 static=$2 shared=$3

if ! command -v "$gdb" >/dev/null 2>&1; then
    echo "gdb-test: skipped: no gdb (scripts/deps.sh installs it)"
    exit 77
fi

# run NAME [GDB-ARGS...] PROGRAM: the session's output, and its verdict.
status=0
run() {
    local name=$1; shift
    local out
    # safe-path /: the build tree's loader may be auto-loaded. No
    # debuginfod: it would download glibc's debug information, or ask.
    out=$(env -u DEBUGINFOD_URLS timeout 300 "$gdb" -batch -nx \
        -iex "set auto-load safe-path /" "$@" 2>&1)
    printf '%s\n' "$out" | grep -v '^\[\(New \)\?Thread '
    if grep -q 'ptrace: Operation not permitted' <<<"$out"; then
        echo "gdb-test: skipped: gdb may not trace here (ptrace not permitted)"
        exit 77
    fi
    # The program's own verdict shares the pipe with gdb's messages, so it
    # may not start a line.
    if grep -qx 'gort-gdb check: ok' <<<"$out" && grep -q 'parked: ok' <<<"$out"; then
        echo "gdb-test: $name: ok"
    else
        echo "gdb-test: $name: FAILED"
        status=1
    fi
}

run static -x "$here/../../tools/gdb/gort-gdb.py" -x "$here/check.py" "$static"
run shared -x "$here/check.py" "$shared"
exit $status
