/*
 * pingpong1: an unbuffered int channel ping-pong between two goroutines, with
 * 1 P. ns per round trip. The workload is in pingpong.h.
 *
 * Go peer: bench/go/pingpong1/main.go.
 */
#define BENCH_NAME "pingpong1"
#define MAXPROCS   1
#include "pingpong.h"
