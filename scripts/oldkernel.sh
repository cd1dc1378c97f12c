#!/usr/bin/env bash
# `make oldkernel`: runs gort's tests on Debian 12's own kernel (6.1) in a
# qemu VM (TCG, so no KVM is needed; 2 vCPUs, 2 GiB). It builds gort
# and the tests statically into build-oldkernel/static, packs them with a
# tiny init (scripts/oldkernel-init.c) into an initramfs, boots Debian's
# linux-image-amd64 kernel on it, and reads the serial console for the
# init's summary line. Exits nonzero if a program failed, the summary never
# came or the VM outlived its timeout.
#
#   scripts/oldkernel.sh                 the default set: every test program
#   scripts/oldkernel.sh LINE ...        the default set, then these
#   scripts/oldkernel.sh --only LINE ... these alone
#
# The LINEs run in the order given; the LINE `default` puts the default set
# there instead of first, after a setting for instance:
#
#   scripts/oldkernel.sh '@write /sys/kernel/mm/transparent_hugepage/enabled madvise' default
#
# A LINE is one shell word, run as one program in the VM:
#
#   '[NAME=VALUE ...] [@uid=N] [@timeout=SECONDS] PROGRAM [ARG ...]'
#   '@sysctl KEY=VALUE'             e.g. '@sysctl vm.max_map_count=262144'
#   '@write PATH VALUE'             e.g. '@write /sys/kernel/mm/transparent_hugepage/enabled never'
#
# PROGRAM is a test or example built here (test_stack, hello), a static
# executable's path, or a .c file's path, which is compiled statically
# against libgort.a (with tests/harness.c when it includes "test.h").
# NAME=VALUE goes into its environment (GORT_DEBUG=mtrace=1), @uid=N runs it
# as that user instead of root, @timeout=SECONDS bounds it (default 600).
# For example:
#
#   scripts/oldkernel.sh --only test_stack 'GORT_DEBUG=mtrace=1 @uid=65534 test_run'
#
# Environment:
#   OLDKERNEL_TESTS    the default set, program names separated by blanks
#                      (default: every tests/test_*.c and tests/internal/test_*.c)
#   OLDKERNEL_EXTRA    more LINEs, one a line (for CI), run after the arguments
#   OLDKERNEL_ENV      NAME=VALUE words given to every program
#                      (default GORT_TEST_TIMEOUT=150 GORT_TEST_TIMES=1: the
#                      harness's per-test timeout, and each test's time shown)
#   OLDKERNEL_TIMEOUT  seconds the whole VM may run (default 900)
#   OLDKERNEL_MEM, OLDKERNEL_SMP   the VM's memory (2G) and vCPUs (2)
#   OLDKERNEL_CACHE    where the kernel is kept (build-oldkernel/cache)
#
# Installs what it lacks with apt-get (as root): qemu-system-x86, cpio, file,
# libc6-dev, and what scripts/deps.sh installs. The kernel package is only
# downloaded and unpacked into the cache, never installed on the host.
set -euo pipefail
cd "$(dirname "$0")/.."
unset MAKEFLAGS MFLAGS MAKELEVEL   # a quiet, top-level make under cmake --build

top=build-oldkernel
cache=${OLDKERNEL_CACHE:-$top/cache}
static=$top/static
root=$top/initramfs
log=$top/console.log
vm_timeout=${OLDKERNEL_TIMEOUT:-900}
prog_env=${OLDKERNEL_ENV-GORT_TEST_TIMEOUT=150 GORT_TEST_TIMES=1}

die() { echo "oldkernel.sh: $*" >&2; exit 1; }

only=0
lines=()
for arg in "$@"; do
    case "$arg" in
        --only) only=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) lines+=("$arg") ;;
    esac
done
if [ -n "${OLDKERNEL_EXTRA:-}" ]; then
    while IFS= read -r l; do
        if [ -n "$l" ]; then
            lines+=("$l")
        fi
    done <<<"$OLDKERNEL_EXTRA"
fi
[ "$only" = 0 ] || [ "${#lines[@]}" -gt 0 ] || die "--only and no LINE to run"
if [ "$only" = 0 ]; then
    placed=0
    for l in "${lines[@]}"; do
        if [ "$l" = default ]; then
            placed=1
        fi
    done
    [ "$placed" = 1 ] || lines=(default "${lines[@]}")
fi

# ---- tools ------------------------------------------------------------------

apt_updated=0
apt_update() {
    [ "$apt_updated" = 1 ] && return
    apt-get update -qq
    apt_updated=1
}

scripts/deps.sh
missing=()
command -v qemu-system-x86_64 >/dev/null 2>&1 || missing+=(qemu-system-x86)
command -v cpio >/dev/null 2>&1 || missing+=(cpio)
command -v file >/dev/null 2>&1 || missing+=(file)
# gcc -static needs libc.a, which only libc6-dev has.
[ -f "/usr/lib/$(gcc -print-multiarch)/libc.a" ] || missing+=(libc6-dev)
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root, or apt-get install them"
    echo "==== installing ${missing[*]}"
    apt_update
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- the kernel -------------------------------------------------------------
#
# linux-image-amd64 is the metapackage; it depends on the versioned package
# (linux-image-6.1.0-N-amd64) whose boot/vmlinuz-* we boot. The modules are
# not needed: everything the tests use (devtmpfs, tmpfs, the serial console,
# IPv4 on lo, userfaultfd, epoll) is built into Debian's kernel.

kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -nE 's/^ *Depends: (linux-image-[0-9][^ ]*-amd64)$/\1/p' | head -1
}

mkdir -p "$cache"
pkg=$(kernel_package)
if [ -z "$pkg" ] && [ "$(id -u)" = 0 ]; then
    apt_update
    pkg=$(kernel_package)
fi
vmlinuz=
if [ -n "$pkg" ]; then
    vmlinuz=$(ls "$cache/$pkg"/boot/vmlinuz-* 2>/dev/null | head -1 || true)
    if [ -z "$vmlinuz" ]; then
        echo "==== downloading $pkg"
        rm -rf "${cache:?}/$pkg" "$cache"/"$pkg"_*.deb
        # Root's download goes straight into the cache, not through the _apt
        # user, who may not write there.
        download() { (cd "$cache" && apt-get download -q -o APT::Sandbox::User=root "$pkg"); }
        download || { apt_update && download; }
        mkdir -p "$cache/$pkg.tmp"
        dpkg-deb --fsys-tarfile "$cache"/"$pkg"_*.deb |
            tar -xf - -C "$cache/$pkg.tmp" --wildcards './boot/vmlinuz-*'
        mv "$cache/$pkg.tmp" "$cache/$pkg"
        rm -f "$cache"/"$pkg"_*.deb
        vmlinuz=$(ls "$cache/$pkg"/boot/vmlinuz-* | head -1)
    fi
else
    # No package lists (and not root to fetch them): a kernel cached before.
    vmlinuz=$(ls -v "$cache"/linux-image-*/boot/vmlinuz-* 2>/dev/null | tail -1 || true)
fi
[ -n "$vmlinuz" ] || die "no linux-image-amd64 kernel: apt-cache knows none and $cache holds none"
echo "==== kernel: $vmlinuz"

# ---- static build -----------------------------------------------------------
#
# The tests link libgort.a already; -static makes libc (and OpenSSL, for
# test_tls) static too, so the initramfs needs no shared libraries.

echo "==== $static: configure and build"
cmake -S . -B "$static" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_EXE_LINKER_FLAGS=-static -DOPENSSL_USE_STATIC_LIBS=TRUE \
    -DGORT_BUILD_EXAMPLES=ON -DGORT_BUILD_BENCH=OFF >/dev/null
# Only what goes wrong is shown. OpenSSL's static libcrypto warns that
# getaddrinfo and dlopen would need glibc's shared libraries at run time;
# test_tls calls neither.
set +e
cmake --build "$static" -j2 2>&1 |
    grep -vE "^\[ *[0-9]+%\]|requires at runtime the shared libraries|: in function \`"
built=${PIPESTATUS[0]}
set -e
[ "$built" = 0 ] || die "the static build failed"

# ---- the initramfs ----------------------------------------------------------

# check_static FILE: dies unless FILE is a statically linked executable (the
# initramfs has no dynamic loader and no libraries).
check_static() {
    file -L "$1" | grep -qE 'statically linked|static-pie linked' ||
        die "$1 is not statically linked: $(file -L "$1")"
}

rm -rf "$root"
mkdir -p "$root"/{bin,dev,proc,sys,tmp} "$top/extra"
gcc -static -O2 -Wall -Wextra -o "$root/init" scripts/oldkernel-init.c
check_static "$root/init"

# add_program WORD: puts the program WORD names into bin/; prints its name
# there.
add_program() {
    local word=$1 name src exe
    name=$(basename "$word" .c)
    case "$word" in
        *.c)
            [ -f "$word" ] || die "$word: no such file"
            src=("$word")
            grep -qE '^#[ \t]*include[ \t]+"test\.h"' "$word" && src+=(tests/harness.c)
            exe=$top/extra/$name
            gcc -static -O2 -g -Wall -Wextra -pthread -Iinclude -Itests -Isrc \
                -o "$exe" "${src[@]}" "$static/libgort.a" || die "$word: does not compile"
            ;;
        */*) exe=$word ;;
        *)
            exe=$static/tests/$word
            [ -x "$exe" ] || exe=$static/$word
            ;;
    esac
    [ -x "$exe" ] && [ -f "$exe" ] || die "$word: not a program built in $static, nor a file"
    check_static "$exe"
    strip --strip-debug -o "$root/bin/$name" "$exe"
    echo "$name"
}

# manifest_line LINE: LINE with its program word turned into the name in
# bin/, and OLDKERNEL_ENV in front.
manifest_line() {
    local out=() words w seen=0
    read -ra words <<<"$1"
    if [ "${words[0]:-}" = "@sysctl" ] || [ "${words[0]:-}" = "@write" ]; then
        echo "$1"
        return
    fi
    for w in "${words[@]}"; do
        if [ "$seen" = 0 ] && [[ "$w" != @* && "$w" != *=* ]]; then
            w=$(add_program "$w")
            seen=1
        fi
        out+=("$w")
    done
    [ "$seen" = 1 ] || die "'$1': no program in it"
    echo "$prog_env ${out[*]}"
}

default_tests() {
    local f
    for f in tests/test_*.c tests/internal/test_*.c; do
        basename "$f" .c
    done
}

{
    echo "# written by scripts/oldkernel.sh"
    for l in "${lines[@]}"; do
        if [ "$l" != default ]; then
            manifest_line "$l"
            continue
        fi
        for t in ${OLDKERNEL_TESTS:-$(default_tests)}; do
            manifest_line "$t"
        done
    done
} >"$root/manifest"
nprog=$(grep -cvE '^(#|@sysctl|@write)' "$root/manifest")
echo "==== initramfs: $nprog programs"
sed 's/^/    /' "$root/manifest"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 >"$top/initramfs.cpio.gz"

# ---- boot -------------------------------------------------------------------
#
# thread=multi gives each vCPU a host thread, so the tests' threads really
# run in parallel; -cpu max offers the instruction sets a current CPU has.
# stdin is /dev/null: qemu -nographic reading a terminal from the background
# (under timeout) would be stopped. panic=-1 with -no-reboot ends qemu if
# init dies; mitigations=off spares TCG the page-table switch of every
# system call, which it emulates slowly. The firmware's terminal resets and
# the serial line's carriage returns are taken out (sed -u: line by line, as
# the tests run).

echo "==== booting $(basename "$vmlinuz") (TCG, ${OLDKERNEL_SMP:-2} vCPUs, timeout ${vm_timeout} s)"
start=$(date +%s)
set +e
timeout --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
    -accel tcg,thread=multi -cpu max -smp "${OLDKERNEL_SMP:-2}" -m "${OLDKERNEL_MEM:-2G}" \
    -nographic -nic none -no-reboot \
    -kernel "$vmlinuz" -initrd "$top/initramfs.cpio.gz" \
    -append "console=ttyS0 panic=-1 quiet mitigations=off" \
    </dev/null 2>&1 | sed -u -e 's/\r//g' -e 's/\x1bc//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' | tee "$log"
status=${PIPESTATUS[0]}
set -e
took=$(($(date +%s) - start))

echo
echo "==== summary (console in $log, $took s)"
grep -E '^oldkernel: (kernel|/|set|PASS|FAIL)' "$log" || true
summary=$(grep -E '^oldkernel: [0-9]+ passed, [0-9]+ failed' "$log" | tail -1 || true)
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
    echo "oldkernel.sh: the VM was still running after $vm_timeout s (OLDKERNEL_TIMEOUT)"
    exit 1
fi
if [ -z "$summary" ]; then
    echo "oldkernel.sh: no summary line from the VM (qemu exit status $status)"
    exit 1
fi
echo "$summary"
[[ "$summary" =~ \ 0\ failed ]] && [ "$(grep -c '^oldkernel: PASS' "$log")" = "$nprog" ]
