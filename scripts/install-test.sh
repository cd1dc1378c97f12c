#!/usr/bin/env bash
# Install smoke test: installs the build in BUILD-DIR (default: build) into a
# temporary prefix, then builds examples/hello.c outside the repository with
# pkg-config, once against libgort.so and once fully static, and runs both.
# Then it builds the black-box test programs (the ones that use only
# <gort.h>) and the prime sieve the same way, against the installed shared
# library, and runs them: programs outside the repository see the contract.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
mkdir "$tmp/app"
cp examples/hello.c "$tmp/app/"
cd "$tmp/app"
export PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig"

echo "install-test: shared: cc hello.c $(pkg-config --cflags --libs gort)"
cc -o hello-shared hello.c $(pkg-config --cflags --libs gort)
libs=$(LD_LIBRARY_PATH="$tmp/prefix/lib" ldd ./hello-shared)   # not piped into grep -q: SIGPIPE
grep -q "$tmp/prefix/lib/libgort.so.0" <<<"$libs" ||
    { echo "install-test: hello-shared does not load the installed libgort.so.0" >&2; exit 1; }
LD_LIBRARY_PATH="$tmp/prefix/lib" ./hello-shared

echo "install-test: static: cc -static hello.c $(pkg-config --cflags --libs --static gort)"
cc -static -o hello-static hello.c $(pkg-config --cflags --libs --static gort)
if ldd ./hello-static >/dev/null 2>&1; then
    echo "install-test: hello-static is not a static executable" >&2; exit 1
fi
./hello-static

echo "install-test: black-box tests and examples against the installed libgort.so"
for t in test_run test_sched test_sync test_chan test_select test_syncx; do
    cp "$repo/tests/$t.c" .
done
cp "$repo/tests/test.h" "$repo/tests/harness.c" "$repo/examples/primes.c" .
for t in test_run test_sched test_sync test_chan test_select test_syncx; do
    cc -O2 -o "$t" "$t.c" harness.c $(pkg-config --cflags --libs gort)
    LD_LIBRARY_PATH="$tmp/prefix/lib" "./$t" | tail -1
done
cc -O2 -o primes primes.c $(pkg-config --cflags --libs gort)
LD_LIBRARY_PATH="$tmp/prefix/lib" ./primes 100 >/dev/null

echo "install-test: ok"
