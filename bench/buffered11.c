/*
 * buffered11: a buffered (capacity 1024) int channel, 1 producer -> 1
 * consumer, with 2 Ps. ns per item. The workload is in buffered.h.
 *
 * Go peer: bench/go/buffered11/main.go.
 */
#define BENCH_NAME "buffered11"
#define PRODUCERS  1
#define CONSUMERS  1
#include "buffered.h"
