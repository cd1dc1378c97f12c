/*
 * pingpong2: an unbuffered int channel ping-pong between two goroutines, with
 * 2 Ps. ns per round trip. The workload is in pingpong.h.
 *
 * Go peer: bench/go/pingpong2/main.go.
 */
#define BENCH_NAME "pingpong2"
#define MAXPROCS   2
#include "pingpong.h"
