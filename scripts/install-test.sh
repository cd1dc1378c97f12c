#!/usr/bin/env bash
# Install smoke test: installs the build in BUILD-DIR (default: build) into a
# temporary prefix, then, outside the repository, against what was installed:
#
#  1. examples/hello.c with pkg-config, once against libgort.so and once
#     fully static, and runs both;
#  2. every black-box test program (tests/test_*.c: the ones that use only
#     <gort.h> and the harness) and the prime sieve, against libgort.so, and
#     runs them: programs outside the repository see the contract;
#  3. a small CMake project that finds the library with find_package(gort)
#     and links gort::gort (and gort::gort_static), and runs it;
#  4. the sanitizer flavours, against gort-tsan and gort-asan: a racy
#     program is reported in every run and its fixed version never; a use
#     after free is reported;
#  5. the gdb extension, where gdb's auto-load looks for it beside
#     libgort.so, and (with gdb) that gdb loads it for hello-shared;
#  6. the execution trace: hello, shared and static, run with GORT_TRACE;
#     (with python3) the JSON is read and shows hello's workers, and the
#     installed trace2svg.py draws it.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
mkdir "$tmp/app"
cp examples/hello.c "$tmp/app/"
cd "$tmp/app"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"

# ---- 1. hello, shared and static, with pkg-config ---------------------------

echo "install-test: shared: cc hello.c $(pkg-config --cflags --libs gort)"
cc -o hello-shared hello.c $(pkg-config --cflags --libs gort)
libs=$(LD_LIBRARY_PATH="$prefix/lib" ldd ./hello-shared)   # not piped into grep -q: SIGPIPE
grep -q "$prefix/lib/libgort.so.0" <<<"$libs" ||
    { echo "install-test: hello-shared does not load the installed libgort.so.0" >&2; exit 1; }
LD_LIBRARY_PATH="$prefix/lib" ./hello-shared

echo "install-test: static: cc -static hello.c $(pkg-config --cflags --libs --static gort)"
cc -static -o hello-static hello.c $(pkg-config --cflags --libs --static gort)
if ldd ./hello-static >/dev/null 2>&1; then
    echo "install-test: hello-static is not a static executable" >&2; exit 1
fi
./hello-static

# ---- 2. the black-box tests and the prime sieve ------------------------------

# Black-box: tests/test_*.c. One that includes an internal header (any
# quoted include but "test.h") cannot build against the installed library;
# CMake warns about it too. It is skipped, and named.
echo "install-test: black-box tests and examples against the installed libgort.so"
cp "$repo/tests/test.h" "$repo/tests/harness.c" "$repo/examples/primes.c" .
export GORT_TEST_TIMEOUT=${GORT_TEST_TIMEOUT:-180}
ran=0 failed=()
for src in "$repo"/tests/test_*.c; do
    t=$(basename "$src" .c)
    internal=$(grep -E '^#[[:space:]]*include[[:space:]]+"' "$src" | grep -v '"test\.h"' || true)
    if [ -n "$internal" ]; then
        echo "install-test: skipping $t: it includes internal headers:" $internal \
            "(a white-box test belongs in tests/internal/)"
        continue
    fi
    cp "$src" .
    libs=()   # a test of gort beside another library links that library too
    grep -q '^#include <openssl/' "$src" && libs=(-lssl -lcrypto)
    # With frame pointers and no tail calls, as the README asks of a
    # program whose goroutine dumps should show whole stacks (test_dump).
    cc -O2 -fno-omit-frame-pointer -fno-optimize-sibling-calls -o "$t" "$t.c" harness.c \
        $(pkg-config --cflags --libs gort) "${libs[@]}"
    ran=$((ran + 1))
    if out=$(LD_LIBRARY_PATH="$prefix/lib" "./$t" 2>&1); then
        echo "install-test: $t: $(tail -1 <<<"$out")"
    else
        printf '%s\n' "$out" >&2
        echo "install-test: $t FAILED" >&2
        failed+=("$t")
    fi
done
[ "$ran" -gt 0 ] || { echo "install-test: no black-box tests found in tests/" >&2; exit 1; }
cc -O2 -o primes primes.c $(pkg-config --cflags --libs gort)
LD_LIBRARY_PATH="$prefix/lib" ./primes 100 >/dev/null

# ---- 3. a CMake consumer: find_package(gort) ---------------------------------

echo "install-test: CMake consumer: find_package(gort) and gort::gort"
mkdir "$tmp/consumer"
cd "$tmp/consumer"
cat >CMakeLists.txt <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(gort_consumer LANGUAGES C)
find_package(gort 0.2 REQUIRED)
foreach(kind shared static)
  add_executable(app_${kind} app.c)
  target_compile_definitions(app_${kind} PRIVATE "PACKAGE_VERSION=\"${gort_VERSION}\"")
endforeach()
target_link_libraries(app_shared PRIVATE gort::gort)
target_link_libraries(app_static PRIVATE gort::gort_static)
EOF
cat >app.c <<'EOF'
#include <gort.h>
#include <stdio.h>
#include <string.h>

static void child(void *arg) { gort_wg_done(arg); }

static void main_goroutine(void *arg)
{
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        if (gort_go(child, &wg) < 0)
            return;
    gort_wg_wait(&wg);
    *(int *)arg = 0;
}

int main(void)
{
    int status = 1;
    if (strcmp(gort_version(), PACKAGE_VERSION) != 0) {
        fprintf(stderr, "gort_version() %s, package %s\n", gort_version(), PACKAGE_VERSION);
        return 1;
    }
    if (gort_run(NULL, main_goroutine, &status) != 0 || status != 0)
        return 1;
    printf("gort %s: 100 goroutines ran\n", gort_version());
    return 0;
}
EOF
cmake -S . -B build -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build build >/dev/null
libs=$(ldd build/app_shared)
grep -q "$prefix/lib/libgort.so.0" <<<"$libs" ||
    { echo "install-test: app_shared does not load the installed libgort.so.0" >&2; exit 1; }
if grep -q libgort <<<"$(ldd build/app_static)"; then
    echo "install-test: app_static loads libgort.so" >&2; exit 1
fi
echo "install-test: app_shared: $(build/app_shared)"
echo "install-test: app_static: $(build/app_static)"

# A request for another major version must not be met.
mkdir "$tmp/consumer1"
cat >"$tmp/consumer1/CMakeLists.txt" <<'EOF'
cmake_minimum_required(VERSION 3.16)
project(gort_consumer1 LANGUAGES C)
find_package(gort 1.0 REQUIRED)
EOF
if cmake -S "$tmp/consumer1" -B "$tmp/consumer1/build" -DCMAKE_PREFIX_PATH="$prefix" \
        >/dev/null 2>&1; then
    echo "install-test: find_package(gort 1.0) accepted version $(pkg-config --modversion gort)" >&2
    exit 1
fi

# ---- 4. the sanitizer flavours: gort-tsan and gort-asan ----------------------

# A racy program built outside the tree against libgort-tsan must be
# reported in every run, naming both goroutines' functions; the same program
# with its race removed (the wait group orders the writes) never. And a
# use after free, against libgort-asan, must be reported.
if pkg-config --exists gort-tsan gort-asan; then
    mkdir "$tmp/flavours"
    cd "$tmp/flavours"
    cat >racy.c <<'EOF'
#include <gort.h>

static int counter;

__attribute__((noinline)) static void bump_in_goroutine(void) { counter++; }
__attribute__((noinline)) static void bump_in_main(void) { counter += 2; }

static void worker(void *wg) {
    bump_in_goroutine();
    gort_wg_done(wg);
}

static void main_goroutine(void *arg) {
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_go(worker, &wg);
#ifndef FIXED
    bump_in_main();   /* races with the goroutine's */
    gort_wg_wait(&wg);
#else
    gort_wg_wait(&wg);
    bump_in_main();   /* after Wait: ordered */
#endif
    (void)arg;
}

int main(void) { return gort_run(NULL, main_goroutine, NULL) == 0 ? 0 : 1; }
EOF
    echo "install-test: race: cc -g -fsanitize=thread racy.c $(pkg-config --cflags --libs gort-tsan)"
    cc -g -fsanitize=thread -o racy racy.c $(pkg-config --cflags --libs gort-tsan)
    cc -g -fsanitize=thread -DFIXED -o fixed racy.c $(pkg-config --cflags --libs gort-tsan)
    libs=$(LD_LIBRARY_PATH="$prefix/lib" ldd ./racy)
    grep -q "$prefix/lib/libgort-tsan.so.0" <<<"$libs" ||
        { echo "install-test: racy does not load the installed libgort-tsan.so.0" >&2; exit 1; }
    for i in 1 2 3 4 5; do
        status=0
        # One P: on two, the goroutine can write at the very instant main
        # does, and two simultaneous writes can each miss the other in
        # TSan's lock-free shadow memory (1 run in a few hundred here; Go's
        # race detector shares the blind spot). tests/race covers more Ps.
        out=$(LD_LIBRARY_PATH="$prefix/lib" GORT_MAXPROCS=1 TSAN_OPTIONS=halt_on_error=1:exitcode=66 ./racy 2>&1) ||
            status=$?
        if [ "$status" != 66 ] || ! grep -q 'WARNING: ThreadSanitizer: data race' <<<"$out" ||
           ! grep -q bump_in_goroutine <<<"$out" || ! grep -q bump_in_main <<<"$out"; then
            printf '%s\n' "$out" >&2
            echo "install-test: racy (run $i): no race report naming both goroutines (status $status)" >&2
            exit 1
        fi
        status=0
        out=$(LD_LIBRARY_PATH="$prefix/lib" TSAN_OPTIONS=halt_on_error=1 ./fixed 2>&1) || status=$?
        if [ "$status" != 0 ] || grep -q ThreadSanitizer <<<"$out"; then
            printf '%s\n' "$out" >&2
            echo "install-test: fixed (run $i): reported, or failed (status $status)" >&2
            exit 1
        fi
    done
    echo "install-test: gort-tsan: the race reported in 5 runs of 5, the fixed program in none"

    cat >uaf.c <<'EOF'
#include <gort.h>
#include <stdlib.h>

static void sender(void *c) { gort_chan_send(c, NULL); }

static void main_goroutine(void *arg) {
    int *x = malloc(sizeof *x);
    gort_chan *c;
    gort_chan_make(&c, 0, 0);
    gort_go(sender, c);
    gort_chan_recv(c, NULL);
    free(x);
    *(volatile int *)x = 1;   /* heap-use-after-free */
    (void)arg;
}

int main(void) { return gort_run(NULL, main_goroutine, NULL); }
EOF
    echo "install-test: asan: cc -g -fsanitize=address,undefined uaf.c $(pkg-config --cflags --libs gort-asan)"
    cc -g -fsanitize=address,undefined -o uaf uaf.c $(pkg-config --cflags --libs gort-asan)
    status=0
    out=$(LD_LIBRARY_PATH="$prefix/lib" ASAN_OPTIONS=detect_leaks=0 ./uaf 2>&1) || status=$?
    if [ "$status" = 0 ] || ! grep -q 'ERROR: AddressSanitizer: heap-use-after-free' <<<"$out"; then
        printf '%s\n' "$out" >&2
        echo "install-test: uaf: no heap-use-after-free report (status $status)" >&2
        exit 1
    fi
    echo "install-test: gort-asan: the heap-use-after-free reported"
else
    echo "install-test: no gort-tsan or gort-asan installed (GORT_BUILD_FLAVOURS off): not tried"
fi

# ---- 5. gdb: the extension where gdb's auto-load finds it ---------------------

# gdb reads <a scripts directory>/<the real path of a library it loads>-gdb.py.
# Its own is /usr/share/gdb/auto-load; another prefix's is added as
# tools/gdb/README.md tells users to.
autoload="$prefix/share/gdb/auto-load"
gdbpy="$autoload$(readlink -f "$prefix/lib/libgort.so")-gdb.py"
[ -f "$gdbpy" ] || { echo "install-test: no gdb extension at $gdbpy" >&2; exit 1; }
if command -v gdb >/dev/null 2>&1; then
    out=$(cd "$tmp/app" && LD_LIBRARY_PATH="$prefix/lib" env -u DEBUGINFOD_URLS gdb -batch -nx \
        -iex "add-auto-load-scripts-directory $autoload" -iex "add-auto-load-safe-path $autoload" \
        -ex "break worker" -ex run -ex "info goroutines" ./hello-shared 2>&1)
    if grep -q 'ptrace: Operation not permitted' <<<"$out"; then
        echo "install-test: $gdbpy installed; gdb may not trace here to try it"
    elif ! grep -qE '^\*  +[0-9]+ +running +M[0-9]+ +worker ' <<<"$out"; then
        printf '%s\n' "$out" >&2
        echo "install-test: gdb did not load $gdbpy for hello-shared" >&2
        exit 1
    else
        echo "install-test: gdb auto-loads $gdbpy: info goroutines lists $(grep -cE '^[* ]  +[0-9]+ ' <<<"$out") goroutines of hello-shared"
    fi
else
    echo "install-test: $gdbpy installed; no gdb to try it with"
fi

# ---- 6. the execution trace ------------------------------------------------

cd "$tmp/app"
for kind in shared static; do
    rm -f "trace-$kind.json"
    GORT_TRACE="$tmp/app/trace-$kind.json" LD_LIBRARY_PATH="$prefix/lib" ./hello-$kind >/dev/null
    [ -s "trace-$kind.json" ] || { echo "install-test: hello-$kind wrote no trace" >&2; exit 1; }
    if command -v python3 >/dev/null 2>&1; then
        n=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(sum(1 for e in d["traceEvents"] if e["ph"] == "X" and e["name"] == "worker"))' "trace-$kind.json")
        [ "$n" -gt 0 ] || { echo "install-test: hello-$kind's trace shows no worker slice" >&2; exit 1; }
        python3 "$prefix/share/gort/trace2svg.py" "trace-$kind.json" "trace-$kind.svg" \
            --around worker >/dev/null
        [ -s "trace-$kind.svg" ] || { echo "install-test: trace2svg.py drew nothing" >&2; exit 1; }
        echo "install-test: GORT_TRACE: hello-$kind's trace has $n worker slices; trace2svg.py draws it"
    else
        echo "install-test: GORT_TRACE: hello-$kind wrote a trace; no python3 to read it"
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "install-test: FAILED: ${failed[*]}" >&2
    exit 1
fi
echo "install-test: ok ($ran black-box test programs)"
