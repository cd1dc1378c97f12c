#!/usr/bin/env bash
# Runs every gort benchmark and its Go peer on this machine and prints a table
# of the two results, their ratio and the target ratio; the same table goes to
# BUILD_DIR/bench/results.md as markdown.
#
#   bench/run.sh BUILD_DIR
#
# BUILD_DIR is a CMake build directory: the gort benchmarks are expected at
# BUILD_DIR/bench/bench_<name>. The Go peers (bench/go/<name>/main.go) are
# built here into BUILD_DIR/bench/go/<name>, offline (GOPATH mode, no modules).
# Each program prints one line "RESULT <name> <value> <unit>" on stdout; its
# stderr goes to BUILD_DIR/bench/logs/. A benchmark that crashes, hangs (more
# than $BENCH_TIMEOUT seconds, default 600) or prints no RESULT line shows up
# as FAIL; the other benchmarks still run and the script exits 1 at the end.
set -euo pipefail

# The benchmarks, in the order they run: name|unit|target for gort/Go (lower
# is better; "-" for none). bench/<name>.c and bench/go/<name>/main.go must
# exist for each.
BENCHMARKS=(
    "spawn|ns/goroutine|0.30"
    "yield|ns/yield|0.40"
    "pingpong1|ns/roundtrip|0.40"
    "pingpong2|ns/roundtrip|-"
    "buffered11|ns/item|0.80"
    "buffered44|ns/item|0.80"
    "skynet|ms/run|0.40"
    "mutex|ns/lock|-"
)

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench_bin="$build_dir/bench"
go_bin="$bench_bin/go"
log_dir="$bench_bin/logs"
results_md="$bench_bin/results.md"
timeout_s=${BENCH_TIMEOUT:-600}
mkdir -p "$go_bin" "$log_dir"

failures=0
notes=()

# ---- The machine ---------------------------------------------------------

cc=gcc
if [[ -f "$build_dir/CMakeCache.txt" ]]; then
    cc_cached=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
    if [[ -n "$cc_cached" ]]; then cc=$cc_cached; fi
fi
cc_kind=gcc
if "$cc" --version 2>/dev/null | head -n 1 | grep -qi clang; then cc_kind=clang; fi
cc_version="$cc_kind $("$cc" -dumpfullversion 2>/dev/null || "$cc" -dumpversion 2>/dev/null || echo unknown)"
model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
have_go=0
go_version="Go not found"
if command -v go >/dev/null 2>&1; then
    have_go=1
    go_version=$(go env GOVERSION 2>/dev/null || go version)
fi
machine="machine: nproc $(nproc), ${model:-unknown CPU}, Linux $(uname -r), $go_version, $cc_version"

# ---- Running one program -------------------------------------------------

# run_prog NAME LABEL BINARY: runs BINARY under the timeout and sets $value to
# the number on its "RESULT NAME" line, or to FAIL (and says why in $notes).
run_prog() {
    local name=$1 label=$2 bin=$3
    local log="$log_dir/$name.${label,,}.log" out rc
    value=FAIL
    if [[ ! -x "$bin" ]]; then
        notes+=("$name ($label): $bin not built")
        return
    fi
    echo "running $name ($label)..." >&2
    if out=$(timeout --kill-after=10 "$timeout_s" "$bin" 2>"$log"); then
        rc=0
    else
        rc=$?
    fi
    local v
    v=$(printf '%s\n' "$out" | awk -v n="$name" '$1 == "RESULT" && $2 == n { print $3; exit }')
    if [[ $rc -eq 0 && $v =~ ^[0-9]+([.][0-9]+)?$ ]]; then
        value=$v
        return
    fi
    local why
    if [[ $rc -eq 124 || $rc -eq 137 ]]; then
        why="hung: killed after ${timeout_s}s"
    elif [[ $rc -gt 128 ]]; then
        why="killed by SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    elif [[ $rc -ne 0 ]]; then
        why="exit status $rc"
    else
        why="no RESULT $name line on stdout"
    fi
    notes+=("$name ($label): $why; stderr in $log")
    tail -n 5 "$log" | sed "s/^/    $name ($label): /" >&2 || true
}

# build_go NAME: builds the Go peer of NAME; 0 on success.
build_go() {
    local name=$1
    local log="$log_dir/$name.go-build.log"
    # GOPATH mode and no proxy: the peers use only the standard library.
    if (cd "$src_dir/go/$name" &&
        GO111MODULE=off GOPROXY=off GOFLAGS='' go build -o "$go_bin/$name" .) >"$log" 2>&1; then
        return 0
    fi
    notes+=("$name (Go): build failed; see $log")
    return 1
}

# fmt_num X: one decimal, two under 10.
fmt_num() {
    awk -v x="$1" 'BEGIN { printf (x < 10 ? "%.2f" : "%.1f"), x }'
}

# ---- The runs ------------------------------------------------------------

if [[ $have_go -eq 0 ]]; then
    echo "Go not found: running gort alone"
elif [[ -z "${GOCACHE:-}" && -z "${HOME:-}" && -z "${XDG_CACHE_HOME:-}" ]]; then
    export GOCACHE="$go_bin/.cache"
fi

rows=()   # label|gort|go|ratio|target
for entry in "${BENCHMARKS[@]}"; do
    IFS='|' read -r name unit target <<<"$entry"
    label="$name ($unit)"

    run_prog "$name" gort "$bench_bin/bench_$name"
    gort_v=$value
    if [[ $gort_v == FAIL ]]; then failures=$((failures + 1)); fi

    go_v=-
    if [[ $have_go -eq 1 ]]; then
        if [[ ! -d "$src_dir/go/$name" ]]; then
            notes+=("$name (Go): no peer in bench/go/$name")
            go_v=FAIL
        elif build_go "$name"; then
            run_prog "$name" Go "$go_bin/$name"
            go_v=$value
        else
            go_v=FAIL
        fi
        if [[ $go_v == FAIL ]]; then failures=$((failures + 1)); fi
    fi

    ratio=-
    if [[ $gort_v != FAIL && $go_v != FAIL && $go_v != - ]]; then
        ratio=$(awk -v a="$gort_v" -v b="$go_v" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
        if [[ $ratio != - && $target != - ]] && awk -v r="$ratio" -v t="$target" 'BEGIN { exit !(r > t) }'; then
            notes+=("$name: gort/Go $ratio misses the target <= $target")
        fi
    fi
    if [[ $gort_v != FAIL ]]; then gort_v=$(fmt_num "$gort_v"); fi
    if [[ $go_v != FAIL && $go_v != - ]]; then go_v=$(fmt_num "$go_v"); fi
    if [[ $target != - ]]; then target="<= $target"; fi
    rows+=("$label|$gort_v|$go_v|$ratio|$target")
done

# ---- The table -----------------------------------------------------------

width=21
for row in "${rows[@]}"; do
    IFS='|' read -r label _ <<<"$row"
    if (( ${#label} + 1 > width )); then width=$(( ${#label} + 1 )); fi
done

echo
printf "%-${width}s%-14s%-14s%-10s%s\n" benchmark gort Go gort/Go target
for row in "${rows[@]}"; do
    IFS='|' read -r label g o r t <<<"$row"
    printf "%-${width}s%-14s%-14s%-10s%s\n" "$label" "$g" "$o" "$r" "$t"
done
echo "$machine"
for n in "${notes[@]+"${notes[@]}"}"; do
    echo "note: $n"
done

{
    echo "# gort benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $machine"
    echo
    echo "| benchmark | gort | Go | gort/Go | target |"
    echo "|---|---:|---:|---:|---|"
    for row in "${rows[@]}"; do
        IFS='|' read -r label g o r t <<<"$row"
        echo "| $label | $g | $o | $r | $t |"
    done
    if [[ ${#notes[@]} -gt 0 ]]; then
        echo
        for n in "${notes[@]}"; do
            echo "- $n"
        done
    fi
} >"$results_md"
echo "(written to $results_md)"

if [[ $failures -gt 0 ]]; then
    echo "$failures benchmark run(s) failed" >&2
    exit 1
fi
