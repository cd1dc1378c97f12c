# gort: the build is CMake's; these are shortcuts. `make help` lists them.
PREFIX ?= /usr/local
BUILD  := build
MAKEFLAGS += --no-print-directory

.PHONY: all build test demo primes pipeline bench install examples deps clean help

all: build                     ## configure and build the release into build/

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j2

examples: build                ## the programs in examples/ (build/<name>)

deps:                          ## install missing build tools (apt-get, as root)
	scripts/deps.sh

test: deps                     ## release, ASan and TSan test runs, install smoke test
	BUILD=$(BUILD) scripts/test.sh

demo: deps build               ## run examples/demo.c
	@test -x $(BUILD)/demo || { echo "make demo: no $(BUILD)/demo: examples/demo.c does not exist" >&2; exit 1; }
	$(BUILD)/demo

primes: deps build             ## run examples/primes.c, the concurrent prime sieve (N=100)
	@test -x $(BUILD)/primes || { echo "make primes: no $(BUILD)/primes: examples/primes.c does not exist" >&2; exit 1; }
	$(BUILD)/primes

pipeline: deps build           ## run examples/pipeline.c, a worker-pool pipeline with cancellation
	@test -x $(BUILD)/pipeline || { echo "make pipeline: no $(BUILD)/pipeline: examples/pipeline.c does not exist" >&2; exit 1; }
	$(BUILD)/pipeline

bench: deps build              ## benchmarks against their Go peers
	scripts/deps.sh go
	@test -f bench/run.sh || { echo "make bench: bench/run.sh does not exist" >&2; exit 1; }
	bash bench/run.sh $(BUILD)

install: build                 ## install into PREFIX (default /usr/local)
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:                         ## remove the build directories (BUILD, BUILD-asan, BUILD-tsan)
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan

help:
	@grep -E '^[a-z]+:.*## ' Makefile | sed -E 's/^([a-z]+):.*## /  make \1\t/'
