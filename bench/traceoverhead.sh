#!/usr/bin/env bash
# What the execution trace costs: the spawn and ping-pong benchmarks run
# built without the trace hooks (GORT_NOTRACE), with them but no trace
# running ("off"), and with a trace being written (GORT_TRACE, "on"); their
# Go peers run without and with Go's tracer (runtime/trace, BENCH_TRACE).
# The variants take turns, ROUNDS times (default 5), so the machine's noise
# falls on all alike; the table gives each one's median and the cost of
# off and on against the build without hooks (and of Go's tracer against
# Go without it).
#
#   bench/traceoverhead.sh BUILD_DIR
#
# BUILD_DIR is a release build of the tree (cmake -DCMAKE_BUILD_TYPE=
# RelWithDebInfo); the build without hooks is made beside it, in
# BUILD_DIR-notrace. The traces go to a directory under $TMPDIR (or /tmp)
# that is removed at the end.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 BUILD_DIR" >&2
    exit 2
fi
build_dir=$(cd "$1" && pwd)
src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
notrace_dir="$build_dir-notrace"
rounds=${ROUNDS:-5}
programs=(spawn pingpong1 pingpong2)
tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/gort-traceoverhead.XXXXXX")
trap 'rm -rf "$tmp_dir"' EXIT

echo "==== building $notrace_dir (-DGORT_NOTRACE)" >&2
cmake -S "$src_dir" -B "$notrace_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS=-DGORT_NOTRACE >/dev/null
targets=()
for p in "${programs[@]}"; do targets+=(--target "bench_$p"); done
cmake --build "$notrace_dir" -j2 "${targets[@]}" >/dev/null
cmake --build "$build_dir" -j2 "${targets[@]}" >/dev/null

have_go=0
if command -v go >/dev/null 2>&1; then
    have_go=1
    for p in "${programs[@]}"; do
        (cd "$src_dir/bench/go/$p" && GO111MODULE=off go build -o "$tmp_dir/go_$p" .)
    done
fi

# result PROGRAM CMD...: the value of the RESULT line the command prints.
result() {
    local p=$1; shift
    "$@" 2>/dev/null | awk -v p="$p" '$1 == "RESULT" && $2 == p { print $3 }'
}

declare -A vals
for ((r = 1; r <= rounds; r++)); do
    for p in "${programs[@]}"; do
        vals[$p,notrace]+=" $(result "$p" "$notrace_dir/bench/bench_$p")"
        vals[$p,off]+=" $(result "$p" "$build_dir/bench/bench_$p")"
        vals[$p,on]+=" $(result "$p" env GORT_TRACE="$tmp_dir/$p.json" "$build_dir/bench/bench_$p")"
        rm -f "$tmp_dir/$p.json"
        if [[ $have_go -eq 1 ]]; then
            vals[$p,go]+=" $(result "$p" "$tmp_dir/go_$p")"
            vals[$p,goon]+=" $(result "$p" env BENCH_TRACE="$tmp_dir/$p.trace" "$tmp_dir/go_$p")"
            rm -f "$tmp_dir/$p.trace"
        fi
    done
    echo "round $r of $rounds done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "-" }'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b == 0) print "-"; else printf "%+.0f%%", (a / b - 1) * 100 }'; }

echo
echo "machine: nproc $(nproc), $(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1), Linux $(uname -r); medians of $rounds rounds"
echo
echo "| benchmark | gort, no hooks | gort, trace off | gort, trace on | off costs | on costs | Go | Go, trace on | Go's trace costs |"
echo "|---|---|---|---|---|---|---|---|---|"
for p in "${programs[@]}"; do
    n=$(median <<<"${vals[$p,notrace]}")
    off=$(median <<<"${vals[$p,off]}")
    on=$(median <<<"${vals[$p,on]}")
    g=$(median <<<"${vals[$p,go]:-}")
    gon=$(median <<<"${vals[$p,goon]:-}")
    echo "| $p | $n | $off | $on | $(pct "$off" "$n") | $(pct "$on" "$n") | $g | $gon | $(pct "$gon" "$g") |"
done
