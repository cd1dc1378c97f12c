#!/usr/bin/env bash
# Install smoke test: installs the build in BUILD-DIR (default: build) into a
# temporary prefix, then builds examples/hello.c outside the repository with
# pkg-config, once against libgort.so and once fully static, and runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "install-test: ok"
