#!/usr/bin/env bash
# `make test`: builds and runs the test suite three times (release, ASan+UBSan,
# TSan), the suite cross-built for arm64 and run under qemu-user (as `make
# test-arm64`), the black-box tests under Valgrind (scripts/valgrind.sh),
# then the install smoke test, and prints one summary. Every stage runs even
# when an earlier one failed; the exit status says whether all passed. The
# build directories are $BUILD, $BUILD-asan, $BUILD-tsan, $BUILD-arm64 and
# $BUILD-valgrind (BUILD=build by default). The release build also builds libgort-tsan and
# libgort-asan, and its ctest runs tests/race (the race flavour under
# ThreadSanitizer); install-test tries both flavours from outside the tree.
set -uo pipefail
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS MAKELEVEL   # a quiet, top-level make under cmake --build
build=${BUILD:-build}

ntests=$(ls tests/test_*.c tests/internal/test_*.c 2>/dev/null | wc -l)
passed=0 failed=0 ok=1
summary=()

# run_suite DIR CMAKE-ARGS...: configure, build, ctest; a build that fails
# counts every test as failed.
run_suite() {
    local dir=$1; shift
    local log="$dir/ctest.log"
    echo "==== $dir: configure and build"
    if ! { cmake -S . -B "$dir" "$@" >/dev/null && cmake --build "$dir" -j2; }; then
        summary+=("$dir: BUILD FAILED ($ntests tests counted as failed)")
        failed=$((failed + ntests)) ok=0
        built=0
        return
    fi
    built=1
    echo "==== $dir: ctest"
    ctest --test-dir "$dir" --output-on-failure -j2 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" = 0 ] || ok=0
    local line p f t
    line=$(grep -E '[0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
    if [ -z "$line" ]; then
        summary+=("$dir: no ctest result (see $log)")
        ok=0
        return
    fi
    f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
    t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
    p=$((t - f))
    passed=$((passed + p)) failed=$((failed + f))
    summary+=("$dir: $p passed, $f failed")
}

san_flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g")
run_suite "$build"      -DCMAKE_BUILD_TYPE=RelWithDebInfo
release_built=$built
run_suite "$build-asan" "${san_flags[@]}" -DGORT_SANITIZE=address
run_suite "$build-tsan" "${san_flags[@]}" -DGORT_SANITIZE=thread
run_suite "$build-arm64" -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORT_BUILD_BENCH=OFF

# Valgrind's memcheck over the black-box tests: one result per test program,
# as ctest counts them. A run that gives no result (no valgrind, a failed
# build) counts every black-box program as failed.
nblackbox=$(ls tests/test_*.c | wc -l)
vdir=$build-valgrind
mkdir -p "$vdir"
BUILD=$build scripts/valgrind.sh 2>&1 | tee "$vdir/valgrind.log"
[ "${PIPESTATUS[0]}" = 0 ] || ok=0
line=$(grep -E '^valgrind: [0-9]+ passed, [0-9]+ failed$' "$vdir/valgrind.log" | tail -1 || true)
if [ -n "$line" ]; then
    p=$(sed -E 's/valgrind: ([0-9]+) passed, ([0-9]+) failed/\1/' <<<"$line")
    f=$(sed -E 's/valgrind: ([0-9]+) passed, ([0-9]+) failed/\2/' <<<"$line")
    passed=$((passed + p)) failed=$((failed + f))
    summary+=("$vdir: $p passed, $f failed (memcheck)")
else
    summary+=("$vdir: NO RESULT ($nblackbox tests counted as failed; see $vdir/valgrind.log)")
    failed=$((failed + nblackbox)) ok=0
fi

echo "==== install smoke test"
if [ "$release_built" = 0 ]; then   # it would install a stale build
    summary+=("install-test: NOT RUN ($build did not build)")
    ok=0
elif scripts/install-test.sh "$build"; then
    summary+=("install-test: passed")
else
    summary+=("install-test: FAILED")
    ok=0
fi

echo
echo "==== summary"
printf '%s\n' "${summary[@]}"
[ "$failed" = 0 ] || ok=0
echo "ctest: $passed passed, $failed failed"
[ "$ok" = 1 ]
