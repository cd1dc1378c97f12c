#!/usr/bin/env bash
# Runs every gort benchmark and its peer (Go; nginx too for httpd) on this
# machine and prints a table of the results, their ratio and the target; the
# same table goes to BUILD_DIR/bench/results.md as markdown.
#
#   bench/run.sh BUILD_DIR
#
# BUILD_DIR is a CMake build directory: the gort benchmarks are expected at
# BUILD_DIR/bench/bench_<program>, and examples/httpd.c at BUILD_DIR/httpd.
# The Go peers (bench/go/<program>/main.go) are built here into
# BUILD_DIR/bench/go/<program>, offline (GOPATH mode, no modules). Each
# program prints lines "RESULT <name> <value> <unit>" on stdout; its stderr
# goes to BUILD_DIR/bench/logs/. The httpd benchmark is not a program but
# wrk (-t2 -c100 --latency) pointed at three servers in turn: examples/httpd.c,
# bench/go/httpd and nginx with bench/nginx.conf. A program that crashes,
# hangs (more than $BENCH_TIMEOUT seconds, default 600) or prints no RESULT
# line for a row shows up as FAIL; the others still run and the script exits
# 1 at the end. A missing Go, wrk or nginx leaves its column empty (-) with
# a note, and is no failure.
#
# Environment:
#   BENCH_TIMEOUT=S          seconds a program may run (default 600)
#   BENCH_ONLY=a,b           run only these programs (spawn, timers, httpd...)
#                            or rows (timers_p99: its program, that row alone)
#   BENCH_HTTPD_DURATION=D   wrk's -d for httpd (default 10s); BENCH_HTTPD_DURATION=3s
#                            for a quick run
#   BENCH_HTTPD_PORT=P       first of the three loopback ports the servers use
#                            (default 18080: gort P, Go P+1, nginx P+2)
set -euo pipefail

# The rows, in the order they run: result|unit|target[|program[|peer]].
#   result   the name on the RESULT line
#   target   for the ratio gort/peer: "0.30" (or "<=0.30") when lower is
#            better, ">=1.20" when higher is better; "abs<=1.10" for gort's
#            own value; "-" for none
#   program  bench/<program>.c and bench/go/<program>/ (default: result),
#            or another program's binaries with arguments (PROGRAM_CMD below);
#            a program that measures several things runs once for all its rows
#            (or FRESH_RUNS times, below)
#   peer     Go (default), nginx (httpd only), or none (nothing to compare
#            with: the target is on gort's own value)
BENCHMARKS=(
    "spawn|ns/goroutine|0.30"
    "yield|ns/yield|0.40"
    "pingpong1|ns/roundtrip|0.40"
    "pingpong2|ns/roundtrip|-"
    "buffered11|ns/item|0.80"
    "buffered44|ns/item|0.80"
    "skynet|ms/run|0.40"
    "skynet_cold|ms/run|0.35"
    "park1m|ms|1.00"
    "park1m_rss|B/goroutine|1.60|park1m"
    "park1m_wake|ms|-|park1m"
    "enomem|us/call|abs<=20|enomem|none"
    "mutex|ns/lock|-"
    "timers_wall|ms|-|timers"
    "timers_p50|us|-|timers"
    "timers_p99|us|0.50|timers"
    "sleepprec_p50|us|0.10|sleepprec"
    "sleepprec_p99|us|-|sleepprec"
    "tcpecho|msgs/s|>=1.20"
    "httpd_rps|req/s|>=1.20|httpd"
    "httpd_p99|ms|1.00|httpd"
    "httpd_rps|req/s|>=0.90|httpd|nginx"
    "httpd_p99|ms|-|httpd|nginx"
    "handoff_slowdown|x|abs<=1.10|handoff"
    "handoff_threads|threads|1.00|handoff"
)

# Programs that measure one cold round, the first in a fresh process (no
# goroutine stack touched yet): each is run this many times, a new process
# each time, and each of its RESULT values is the median over the runs.
declare -A FRESH_RUNS=(
    [skynet_cold]=5
    [park1m]=5
)
# Programs that are another program's binaries run with arguments, on both
# sides: skynet_cold is bench_skynet -cold and bench/go/skynet -cold.
declare -A PROGRAM_CMD=(
    [skynet_cold]="skynet -cold"
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
httpd_duration=${BENCH_HTTPD_DURATION:-10s}
httpd_port=${BENCH_HTTPD_PORT:-18080}
only=",${BENCH_ONLY:-},"
mkdir -p "$go_bin" "$log_dir"

failures=0
notes=()
server_pid=   # the httpd server running now, stopped on any exit
tmp_dir=$(mktemp -d "${TMPDIR:-/tmp}/gort-bench.XXXXXX")
cleanup() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp_dir"
}
trap cleanup EXIT

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
# Debian installs nginx in /usr/sbin, which a non-root PATH may lack.
nginx_cmd=$(command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true)
have_wrk=0
if command -v wrk >/dev/null 2>&1; then have_wrk=1; fi
tools="$go_version"
if [[ -n $nginx_cmd ]]; then tools+=", $("$nginx_cmd" -v 2>&1 | sed 's/^nginx version: //')"; fi
if [[ $have_wrk -eq 1 ]]; then tools+=", $( (wrk -v 2>&1 || true) | awk "NR == 1 { print \$1, \$2 }")"; fi
machine="machine: nproc $(nproc), ${model:-unknown CPU}, Linux $(uname -r), $tools, $cc_version"
# Other jobs on the machine move the results: the load average before the
# first run goes under the table with the one after the last.
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- Running one program -------------------------------------------------

# run_prog NAME LABEL BINARY [ARG...]: runs BINARY under the timeout and sets
# $out to its stdout, or $out to FAIL (and says why in $notes). Its stderr
# goes to NAME's log, after that of the earlier runs of this round ($run_i,
# 1 for the first, which starts the log afresh).
run_i=1
run_prog() {
    local name=$1 label=$2 bin=$3
    shift 3
    local log="$log_dir/$name.${label,,}.log" rc
    out=FAIL
    if [[ ! -x "$bin" ]]; then
        notes+=("$name ($label): $bin not built")
        return
    fi
    echo "running $name ($label)${FRESH_RUNS[$name]+ $run_i/${FRESH_RUNS[$name]}}..." >&2
    if [[ $run_i -eq 1 ]]; then : >"$log"; fi
    local o
    if o=$(timeout --kill-after=10 "$timeout_s" "$bin" "$@" 2>>"$log"); then
        rc=0
    else
        rc=$?
    fi
    if [[ $rc -eq 0 ]] && grep -q '^RESULT ' <<<"$o"; then
        out=$o
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
        why="no RESULT line on stdout"
    fi
    notes+=("$name ($label)${FRESH_RUNS[$name]+, run $run_i of ${FRESH_RUNS[$name]}}: $why; stderr in $log")
    tail -n 5 "$log" | sed "s/^/    $name ($label): /" >&2 || true
}

# run_fresh NAME LABEL BINARY [ARG...]: run_prog, ${FRESH_RUNS[NAME]} times
# (once if NAME is not there); $out is then FAIL if any run failed, else
# each RESULT line with the median of its values over the runs.
run_fresh() {
    local runs=${FRESH_RUNS[$1]:-1} all=
    for ((run_i = 1; run_i <= runs; run_i++)); do
        run_prog "$@"
        if [[ $out == FAIL ]]; then break; fi
        all+=$out$'\n'
    done
    run_i=1
    if [[ $out == FAIL || $runs -eq 1 ]]; then return; fi
    # The upper median (of 4 runs, the third), as bench.h's bench_median.
    out=$(awk '$1 == "RESULT" {
            if (!($2 in n)) order[++names] = $2
            v[$2, ++n[$2]] = $3; unit[$2] = $4
        }
        END {
            for (k = 1; k <= names; k++) {
                r = order[k]
                for (i = 2; i <= n[r]; i++)
                    for (j = i; j > 1 && v[r, j - 1] + 0 > v[r, j] + 0; j--) {
                        t = v[r, j]; v[r, j] = v[r, j - 1]; v[r, j - 1] = t
                    }
                print "RESULT", r, v[r, int(n[r] / 2) + 1], unit[r]
            }
        }' <<<"$all")
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

# ---- httpd: wrk against a server -----------------------------------------

# to_ms X: a wrk latency (812.00us, 2.31ms, 1.02s, 1.50m) in ms.
to_ms() {
    awk -v x="$1" 'BEGIN {
        v = x + 0
        if (x ~ /us$/) v /= 1000; else if (x ~ /ms$/) v += 0;
        else if (x ~ /m$/) v *= 60000; else if (x ~ /s$/) v *= 1000;
        printf "%.3f", v }'
}

# run_httpd LABEL PORT COMMAND...: starts the server COMMAND, checks its
# answer, warms it up for a second, measures it with wrk for
# $httpd_duration, stops it, and sets $out to RESULT lines (httpd_rps,
# httpd_p99 in ms) or FAIL.
run_httpd() {
    local label=$1 port=$2
    shift 2
    local log="$log_dir/httpd.${label,,}.log" wlog="$log_dir/httpd.${label,,}.wrk.log"
    local url="http://127.0.0.1:$port/"
    out=FAIL
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        notes+=("httpd ($label): port $port is already in use (BENCH_HTTPD_PORT moves it)")
        return
    fi
    echo "running httpd ($label): wrk -t2 -c100 -d$httpd_duration $url ..." >&2
    "$@" >"$log" 2>&1 &
    server_pid=$!
    local up=0 i
    for i in $(seq 100); do
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then up=1; break; fi
        sleep 0.1
    done
    local why=
    if [[ $up -eq 0 ]]; then
        why="the server did not start listening on port $port; its output is in $log"
    elif command -v curl >/dev/null 2>&1 &&
         [[ $(curl -s --max-time 5 "$url") != "Hello, World!" ]]; then
        why="GET / did not answer \"Hello, World!\""
    else
        timeout 30 wrk -t2 -c100 -d1s "$url" >/dev/null 2>&1 || true   # warm-up
        if ! timeout --kill-after=10 "$timeout_s" \
            wrk -t2 -c100 -d"$httpd_duration" --latency "$url" >"$wlog" 2>&1; then
            why="wrk failed; see $wlog"
        fi
    fi
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    if [[ -n $why ]]; then
        notes+=("httpd ($label): $why")
        return
    fi
    local rps p99
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$wlog")
    p99=$(awk '$1 == "99%" { print $2 }' "$wlog")
    if [[ -z $rps || -z $p99 ]]; then
        notes+=("httpd ($label): no Requests/sec or 99% line from wrk; see $wlog")
        return
    fi
    if grep -qE '^ +(Non-2xx|Socket errors)' "$wlog"; then
        notes+=("httpd ($label): $(grep -E '^ +(Non-2xx|Socket errors)' "$wlog" | tr -s ' ' | paste -sd ';')")
    fi
    out="RESULT httpd_rps $rps req/s
RESULT httpd_p99 $(to_ms "$p99") ms"
    echo "    $(grep -E '^ +[0-9]+ requests in' "$wlog" | tr -s ' '); p99 $p99" >&2
}

# nginx_server PORT: runs nginx with bench/nginx.conf on PORT, in the
# foreground, its pid file, log and temp paths in a directory of its own.
nginx_server() {
    local dir="$tmp_dir/nginx"
    mkdir -p "$dir"
    sed -e "s|@PORT@|$1|g" -e "s|@TMP@|$dir|g" "$src_dir/nginx.conf" >"$dir/nginx.conf"
    exec "$nginx_cmd" -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}

# ---- One program, once per side -----------------------------------------

declare -A outputs   # "side:program" -> stdout with RESULT lines, or FAIL, or "-"

# measure SIDE PROGRAM: runs PROGRAM for SIDE (gort, Go or nginx) unless
# that has been done, and leaves its output in outputs[SIDE:PROGRAM].
measure() {
    local side=$1 prog=$2 key="$1:$2" base args
    if [[ -n ${outputs[$key]+x} ]]; then return; fi
    read -r base args <<<"${PROGRAM_CMD[$prog]:-$prog}"
    out=-
    case $side in
        gort)
            if [[ $prog == httpd ]]; then
                if [[ $have_wrk -eq 1 ]]; then
                    run_httpd gort "$httpd_port" "$build_dir/httpd" "$httpd_port"
                fi
            else
                # shellcheck disable=SC2086 # $args: words
                run_fresh "$prog" gort "$bench_bin/bench_$base" $args
            fi
            ;;
        Go)
            if [[ $have_go -eq 0 ]]; then
                :
            elif [[ ! -d "$src_dir/go/$base" ]]; then
                notes+=("$prog (Go): no peer in bench/go/$base")
                out=FAIL
            elif ! build_go "$base"; then
                out=FAIL
            elif [[ $prog == httpd ]]; then
                if [[ $have_wrk -eq 1 ]]; then
                    run_httpd Go $((httpd_port + 1)) "$go_bin/httpd" $((httpd_port + 1))
                fi
            else
                # shellcheck disable=SC2086
                run_fresh "$prog" Go "$go_bin/$base" $args
            fi
            ;;
        none) ;;
        nginx)
            if [[ -n $nginx_cmd && $have_wrk -eq 1 ]]; then
                run_httpd nginx $((httpd_port + 2)) nginx_server $((httpd_port + 2))
            fi
            ;;
    esac
    if [[ $out == FAIL ]]; then failures=$((failures + 1)); fi
    outputs[$key]=$out
}

# result SIDE PROGRAM NAME: the value on NAME's RESULT line, FAIL or -.
result() {
    local o=${outputs["$1:$2"]}
    if [[ $o == FAIL || $o == - ]]; then
        echo "$o"
        return
    fi
    local v
    v=$(awk -v n="$3" '$1 == "RESULT" && $2 == n { print $3; exit }' <<<"$o")
    if [[ $v =~ ^[0-9]+([.][0-9]+)?$ ]]; then echo "$v"; else echo FAIL; fi
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
if [[ $have_wrk -eq 0 ]]; then
    notes+=("httpd: wrk not found: not measured (scripts/deps.sh bench installs it)")
elif [[ -z $nginx_cmd ]]; then
    notes+=("httpd: nginx not found: no nginx column (scripts/deps.sh bench installs it)")
fi

rows=()   # label|gort|peer|ratio|target
for entry in "${BENCHMARKS[@]}"; do
    IFS='|' read -r name unit target prog peer <<<"$entry"
    prog=${prog:-$name}
    peer=${peer:-Go}
    if [[ $only != ",," && $only != *",$prog,"* && $only != *",$name,"* ]]; then continue; fi
    label="$name ($unit)"
    if [[ $peer != Go && $peer != none ]]; then label+=" vs $peer"; fi

    measure gort "$prog"
    measure "$peer" "$prog"
    gort_v=$(result gort "$prog" "$name")
    peer_v=$(result "$peer" "$prog" "$name")
    if [[ $gort_v == FAIL && ${outputs["gort:$prog"]} != FAIL ]]; then
        notes+=("$name (gort): no RESULT $name line")
        failures=$((failures + 1))
    fi
    if [[ $peer_v == FAIL && ${outputs["$peer:$prog"]} != FAIL ]]; then
        notes+=("$name ($peer): no RESULT $name line")
        failures=$((failures + 1))
    fi

    # The target: which way is better, and whether it is on the ratio or on
    # gort's own value.
    op="<=" tval=$target on=ratio
    case $target in
        abs*) on=gort; tval=${tval#abs} ;;
    esac
    case $tval in
        ">="*) op=">="; tval=${tval#>=} ;;
        "<="*) tval=${tval#<=} ;;
    esac

    ratio=-
    if [[ $gort_v != FAIL && $gort_v != - && $peer_v != FAIL && $peer_v != - ]]; then
        ratio=$(awk -v a="$gort_v" -v b="$peer_v" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    fi
    tshow=-
    if [[ $target != - ]]; then
        tshow="$op $tval"
        checked=$ratio
        if [[ $on == gort ]]; then
            tshow="gort $op $tval"
            checked=$gort_v
        fi
        if [[ $checked != - && $checked != FAIL ]] &&
            awk -v r="$checked" -v t="$tval" -v op="$op" \
                'BEGIN { exit !(op == "<=" ? r > t + 1e-9 : r < t - 1e-9) }'; then
            what="gort/$peer $ratio"
            if [[ $on == gort ]]; then what="gort's $gort_v"; fi
            notes+=("$name: $what misses the target $tshow")
        fi
    fi
    if [[ $gort_v != FAIL && $gort_v != - ]]; then gort_v=$(fmt_num "$gort_v"); fi
    if [[ $peer_v != FAIL && $peer_v != - ]]; then peer_v=$(fmt_num "$peer_v"); fi
    rows+=("$label|$gort_v|$peer_v|$ratio|$tshow")
done

# ---- The table -----------------------------------------------------------

width=21
for row in "${rows[@]}"; do
    IFS='|' read -r label _ <<<"$row"
    if (( ${#label} + 1 > width )); then width=$(( ${#label} + 1 )); fi
done

echo
printf "%-${width}s%-14s%-14s%-11s%s\n" benchmark gort peer gort/peer target
for row in "${rows[@]}"; do
    IFS='|' read -r label g o r t <<<"$row"
    printf "%-${width}s%-14s%-14s%-11s%s\n" "$label" "$g" "$o" "$r" "$t"
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
machine+="; load average $load_start before, $load_end after"
echo "peer: Go, but nginx where the row says so"
echo "$machine"
for n in "${notes[@]+"${notes[@]}"}"; do
    echo "note: $n"
done

{
    echo "# gort benchmark results"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $machine"
    echo
    echo "| benchmark | gort | peer | gort/peer | target |"
    echo "|---|---:|---:|---:|---|"
    for row in "${rows[@]}"; do
        IFS='|' read -r label g o r t <<<"$row"
        echo "| $label | $g | $o | $r | $t |"
    done
    echo
    echo "The peer is Go, but nginx where the row says so."
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
