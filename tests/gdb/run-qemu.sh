#!/usr/bin/env bash
# The gdb extension's test in a cross build (ctest: gdb_goroutines_qemu):
# tests/gdb/check.py in gdb-multiarch, attached to qemu-user's gdb stub
# running each PROGRAM, a build of tests/gdb/parked.c for the target. As
# tests/gdb/run.sh does natively: the statically linked one gets
# tools/gdb/gort-gdb.py with -x, the one linked with libgort.so by
# auto-load from beside the library.
#
#   tests/gdb/run-qemu.sh GDB SYSROOT LIBDIR STATIC-PROGRAM SHARED-PROGRAM -- EMULATOR...
#
# EMULATOR is ctest's (CMAKE_CROSSCOMPILING_EMULATOR: qemu-aarch64 -L
# SYSROOT ...); -g SOCKET is added to it. gdb finds the target's loader and
# C library in SYSROOT/lib, libgort.so in LIBDIR. Exits 77 (ctest: skipped) when gdb-multiarch
# or qemu's gdb stub is missing.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
gdb=$1 sysroot=$2 libdir=$3 static=$4 shared=$5
shift 5
[ "${1:-}" = -- ] && shift
emulator=("$@")

if [ -z "$gdb" ] || ! command -v "$gdb" >/dev/null 2>&1; then
    echo "gdb-test: skipped: no gdb-multiarch (scripts/deps.sh arm64 installs it)"
    exit 77
fi
if [ ${#emulator[@]} -eq 0 ] || ! command -v "${emulator[0]}" >/dev/null 2>&1; then
    echo "gdb-test: skipped: no emulator (${emulator[*]:-none}) to run the program under"
    exit 77
fi

tmp=$(mktemp -d)
qemu_pid=
cleanup() {
    # qemu-user hands SIGTERM to the program, which a stub that gdb left
    # may hold: only SIGKILL ends it for sure.
    [ -n "$qemu_pid" ] && kill -KILL "$qemu_pid" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT

# listening SOCKET: whether a Unix socket at that path accepts (the
# __SO_ACCEPTCON flag, 00010000, in /proc/net/unix). Connecting to find
# out would use up the stub's one connection.
listening() {
    awk -v p="$1" '$NF == p && $4 == "00010000" { found = 1 } END { exit !found }' /proc/net/unix
}

status=0
# run NAME PROGRAM [GDB-ARGS...]: the program under qemu's stub, gdb
# attached; the session's output, and its verdict.
run() {
    local name=$1 prog=$2; shift 2
    local sock=$tmp/$name.sock out i
    "${emulator[@]}" -g "$sock" "$prog" >"$tmp/$name.out" 2>&1 &
    qemu_pid=$!
    # The stub listens before the program's first instruction: wait for
    # that (at most 30 s), or for qemu to give up.
    for ((i = 0; i < 600; i++)); do
        listening "$sock" && break
        kill -0 "$qemu_pid" 2>/dev/null || break
        sleep 0.05
    done
    if ! listening "$sock"; then
        cat "$tmp/$name.out"
        echo "gdb-test: $name: FAILED: qemu's gdb stub did not listen on $sock"
        status=1
        return
    fi
    # No debuginfod: it would download debug information, or ask. The
    # target's libraries are found by name in the sysroot and beside the
    # program's libgort.so (their paths as the program sees them are host
    # paths, which qemu -L passes through).
    out=$(env -u DEBUGINFOD_URLS timeout 600 "$gdb" -batch -nx \
        -iex "set auto-load safe-path /" \
        -iex "set sysroot $sysroot" \
        -iex "set solib-search-path $sysroot/lib:$libdir" \
        -iex 'set $gort_check_qemu_user = 1' \
        -ex "file $prog" -ex "target remote $sock" \
        "$@" 2>&1)
    # gdb ends the emulated program when it leaves (it has exited by
    # then, unless the check failed early).
    wait "$qemu_pid" 2>/dev/null
    qemu_pid=
    printf '%s\n' "$out" | grep -v '^\[\(New \)\?Thread \|^\[Switching to Thread '
    cat "$tmp/$name.out"
    # The program's verdict is in the emulator's output, gdb's in its own.
    if grep -qx 'gort-gdb check: ok' <<<"$out" && grep -q 'parked: ok' "$tmp/$name.out"; then
        echo "gdb-test: $name: ok"
    else
        echo "gdb-test: $name: FAILED"
        status=1
    fi
}

run static "$static" -x "$here/../../tools/gdb/gort-gdb.py" -x "$here/check.py"
run shared "$shared" -x "$here/check.py"
exit $status
