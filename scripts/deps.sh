#!/usr/bin/env bash
# Installs what building and testing gort needs, only when it is missing:
# cmake, gcc, make, pkg-config, gdb, python3, and libssl-dev (OpenSSL's headers and
# libraries: tests/test_tls.c drives TLS through gort_fd_wait). With the
# argument `go`, also golang-go (the Go peers of the benchmarks); with
# `bench` (make bench), Go and what the httpd benchmark and the network
# examples use: wrk, nginx and curl; with `valgrind` (make valgrind, make
# test), valgrind, whose package also has the headers the runtime's stack
# registration is built with. Uses apt-get, and only as root. A
# missing benchmark tool is reported but not fatal: bench/run.sh says which
# peers it could not run. With `arm64` (make test-arm64): the cross compiler
# gcc-aarch64-linux-gnu, qemu-user to run its programs, and OpenSSL for arm64
# (libssl-dev:arm64, after dpkg --add-architecture arm64); and gdb-multiarch,
# which tests/gdb/run-qemu.sh attaches to qemu's gdb stub (not fatal).
set -euo pipefail

want_go=0 want_bench=0 want_valgrind=0 want_arm64=0
for arg in "$@"; do
    case "$arg" in
        go) want_go=1 ;;
        bench) want_go=1 want_bench=1 ;;
        valgrind) want_valgrind=1 ;;
        arm64) want_arm64=1 ;;
        *) echo "usage: $0 [go|bench|valgrind|arm64]" >&2; exit 2 ;;
    esac
done

missing=()   # Debian packages whose command (or header) is absent
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
need_header() { [ -f "/usr/include/$1" ] || missing+=("$2"); }
need cmake      cmake
need gcc        gcc
need make       make
need pkg-config pkg-config
need_header openssl/ssl.h libssl-dev
[ "$want_valgrind" = 1 ] && need valgrind valgrind   # as needed as the core, when asked for
if [ "$want_arm64" = 1 ]; then   # as needed as the core, when asked for
    need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
    need qemu-aarch64 qemu-user
    if [ ! -f /usr/include/aarch64-linux-gnu/openssl/opensslconf.h ]; then
        # A package of another architecture: dpkg must know that one.
        if [ "$(id -u)" = 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
            dpkg --add-architecture arm64
        fi
        missing+=(libssl-dev:arm64)
    fi
fi
core=${#missing[@]}
need gdb gdb   # tests/gdb; without it ctest skips that test
need python3 python3   # tests/trace/check.py; without it ctest skips that test
[ "$want_arm64" = 1 ] && need gdb-multiarch gdb-multiarch   # tests/gdb under qemu; skipped without it
[ "$want_go" = 1 ] && need go golang-go
if [ "$want_bench" = 1 ]; then
    need wrk wrk
    need curl curl
    # Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "deps: missing $*, and cannot install (need root and apt-get)" >&2
        return 1
    fi
    echo "deps: installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq "$@"
}

if [ "$core" -gt 0 ]; then
    install "${missing[@]}"          # the build tools and libraries (and the benchmark tools if wanted)
elif ! install "${missing[@]}"; then
    echo "deps: continuing without ${missing[*]}; ctest and bench/run.sh leave out what needs them" >&2
fi
