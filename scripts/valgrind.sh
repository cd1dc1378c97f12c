#!/usr/bin/env bash
# `make valgrind`: builds the test programs without sanitizers in
# $BUILD-valgrind (BUILD=build by default, so build-valgrind) and runs every
# black-box test (tests/test_*.c) under Valgrind's memcheck. A test passes
# when the harness says so and no process it made, the forked test children
# and the children of death tests included, had a memcheck error: every
# process writes its own log, $BUILD-valgrind/valgrind/TEST/PID.log, and
# each one's "ERROR SUMMARY" is read. The last line sums up like ctest's:
# "valgrind: N passed, N failed".
#
#   scripts/valgrind.sh                   all of them
#   scripts/valgrind.sh test_chan ...     only these programs
#   VALGRIND_OPTS=--track-origins=yes scripts/valgrind.sh test_chan
#                                         Valgrind reads more options there
#
# The runtime registers every goroutine stack with Valgrind when its headers
# were there at build time (Debian: valgrind; CMake's GORT_HAVE_VALGRIND);
# the tests scale their loops down under Valgrind (test_scale) and skip,
# saying why, what it cannot run.
set -euo pipefail
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS MAKELEVEL   # a quiet, top-level make under cmake --build
dir=${BUILD:-build}-valgrind
jobs=$(nproc)

command -v valgrind >/dev/null ||
    { echo "valgrind.sh: no valgrind (Debian: apt-get install valgrind)" >&2; exit 1; }

if [ $# -gt 0 ]; then
    tests=("$@")
else
    tests=()
    for src in tests/test_*.c; do tests+=("$(basename "$src" .c)"); done
fi

echo "==== $dir: configure and build"
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORT_SANITIZE= \
    -DGORT_BUILD_EXAMPLES=OFF -DGORT_BUILD_BENCH=OFF >/dev/null
grep -q '^GORT_HAVE_VALGRIND:INTERNAL=1' "$dir/CMakeCache.txt" ||
    { echo "valgrind.sh: Valgrind's headers were not found at build time" >&2; exit 1; }
cmake --build "$dir" -j"$jobs" --target "${tests[@]}"
logs=$dir/valgrind
rm -rf "$logs"
mkdir -p "$logs"

# run_one TEST: the program under Valgrind; writes TEST.out and TEST.result.
# Valgrind runs one thread at a time; --fair-sched=yes hands the turn round
# in order, where its default lock may give it back to the thread that just
# let it go, and a spinning M could starve the thread it waits for (no
# slower here). --error-exitcode fails a test child that had an error; the
# logs catch the rest (a death test's child dies of its signal whatever
# memcheck found). The harness times each test out (GORT_TEST_TIMEOUT);
# timeout(1) bounds the program, as ctest does.
run_one() {
    local t=$1 start rc
    mkdir -p "$logs/$t"
    start=$(date +%s)
    GORT_TEST_TIMES=1 GORT_TEST_TIMEOUT=${GORT_TEST_TIMEOUT:-300} timeout -k 10 900 \
        valgrind --tool=memcheck --error-exitcode=1 --fair-sched=yes \
        --log-file="$logs/$t/%p.log" "$dir/tests/$t" >"$logs/$t.out" 2>&1 && rc=0 || rc=$?
    echo "$rc $(($(date +%s) - start))" >"$logs/$t.result"
}
export -f run_one
export dir logs

echo "==== valgrind: ${#tests[@]} programs, $jobs at a time"
begin=$(date +%s)
printf '%s\n' "${tests[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one "$1"' _ {}

passed=0 failed=0
for t in "${tests[@]}"; do
    rc=none secs=?
    [ -f "$logs/$t.result" ] && read -r rc secs <"$logs/$t.result"
    # Errors summed over every process's log: "ERROR SUMMARY: N errors ...".
    errs=$(cat "$logs/$t"/*.log 2>/dev/null |
           sed -nE 's/^==[0-9]+== ERROR SUMMARY: ([0-9]+) errors.*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }' || true)
    # Valgrind's own failures (its tables full, an instruction it cannot
    # run) end a process without an error summary.
    fatal=$(cat "$logs/$t"/*.log 2>/dev/null |
            grep -cE 'Valgrind: FATAL|the .impossible. happened|unhandled instruction' || true)
    counts=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$logs/$t.out" | tail -1 || true)
    if [ "$rc" = 0 ] && [ "$errs" = 0 ] && [ "$fatal" = 0 ] && [ -n "$counts" ]; then
        passed=$((passed + 1))
        echo "ok   $t (${secs}s; $counts)"
    else
        failed=$((failed + 1))
        echo "FAIL $t (${secs}s; exit $rc; ${counts:-no summary}; $errs memcheck errors;" \
             "$fatal Valgrind failures): see $logs/$t.out and $logs/$t/"
        grep -E '^not ok' "$logs/$t.out" | sed 's/^/     /' || true
    fi
done
echo "==== valgrind: $(( $(date +%s) - begin ))s for ${#tests[@]} programs"
echo "valgrind: $passed passed, $failed failed"
[ "$failed" = 0 ]
