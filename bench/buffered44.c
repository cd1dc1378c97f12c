/*
 * buffered44: a buffered (capacity 1024) int channel, 4 producers -> 4
 * consumers, with 2 Ps. ns per item. The workload is in buffered.h.
 *
 * Go peer: bench/go/buffered44/main.go.
 */
#define BENCH_NAME "buffered44"
#define PRODUCERS  4
#define CONSUMERS  4
#include "buffered.h"
