# gort: the build is CMake's; these are shortcuts. `make help` lists them.
PREFIX ?= /usr/local
BUILD  := build
# Ports of make httpd (also from the environment, as httpd itself reads
# $PORT) and of make echo.
PORT      ?= 8080
ECHO_PORT ?= 7007
MAKEFLAGS += --no-print-directory

.PHONY: all build test demo primes pipeline echo httpd bench install examples deps clean help oldkernel valgrind test-arm64 test-arm64-asan

all: build                     ## configure and build the release into build/

build:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j2

examples: build                ## the programs in examples/ (build/<name>)

deps:                          ## install missing build tools (apt-get, as root)
	scripts/deps.sh

test: deps                     ## release, ASan, TSan, arm64 (qemu-user) and Valgrind test runs, install smoke test
	scripts/deps.sh valgrind
	scripts/deps.sh arm64
	BUILD=$(BUILD) scripts/test.sh

test-arm64:                    ## cross-build for arm64 into build-arm64 and run the tests under qemu-user
	scripts/deps.sh arm64
	cmake -S . -B $(BUILD)-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGORT_BUILD_BENCH=OFF
	cmake --build $(BUILD)-arm64 -j2
	ctest --test-dir $(BUILD)-arm64 -j2 --output-on-failure

# ASan+UBSan under qemu-user, without LeakSanitizer (CMakeLists.txt says why)
# and without test_lifecycle: ASan takes the address space to be 39 bits
# from where qemu puts the stack, and qemu's mmap goes above that once that
# test has mapped enough ("CHECK failed: asan_poisoning.cpp:36
# AddrIsInMem(addr)"). Not part of make test.
test-arm64-asan:               ## arm64 under qemu-user with ASan+UBSan (BUILD-arm64-asan; not in make test)
	scripts/deps.sh arm64
	cmake -S . -B $(BUILD)-arm64-asan -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
	      -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_C_FLAGS_DEBUG=-O1 -g" -DGORT_SANITIZE=address \
	      -DGORT_BUILD_BENCH=OFF
	cmake --build $(BUILD)-arm64-asan -j2
	ctest --test-dir $(BUILD)-arm64-asan -j2 --output-on-failure -E '^test_lifecycle$$'

oldkernel:                     ## the tests on Debian 12's kernel (6.1) in a qemu VM (scripts/oldkernel.sh)
	scripts/oldkernel.sh

demo: deps build               ## run examples/demo.c
	@test -x $(BUILD)/demo || { echo "make demo: no $(BUILD)/demo: examples/demo.c does not exist" >&2; exit 1; }
	$(BUILD)/demo

primes: deps build             ## run examples/primes.c, the concurrent prime sieve (N=100)
	@test -x $(BUILD)/primes || { echo "make primes: no $(BUILD)/primes: examples/primes.c does not exist" >&2; exit 1; }
	$(BUILD)/primes

pipeline: deps build           ## run examples/pipeline.c, a worker-pool pipeline with cancellation
	@test -x $(BUILD)/pipeline || { echo "make pipeline: no $(BUILD)/pipeline: examples/pipeline.c does not exist" >&2; exit 1; }
	$(BUILD)/pipeline

echo: deps build               ## run examples/echo.c: an echo server and a client with 1000 connections
	@test -x $(BUILD)/echo || { echo "make echo: no $(BUILD)/echo: examples/echo.c does not exist" >&2; exit 1; }
	@$(BUILD)/echo $(ECHO_PORT) & server=$$!; \
	$(BUILD)/echo client $(ECHO_PORT) 1000 100; status=$$?; \
	kill $$server; wait $$server 2>/dev/null; exit $$status

httpd: deps build              ## run examples/httpd.c, an HTTP/1.1 server on 127.0.0.1 (PORT=8080)
	@test -x $(BUILD)/httpd || { echo "make httpd: no $(BUILD)/httpd: examples/httpd.c does not exist" >&2; exit 1; }
	$(BUILD)/httpd $(PORT)

bench: deps build              ## benchmarks against their Go peers (and nginx for httpd)
	scripts/deps.sh bench
	@test -f bench/run.sh || { echo "make bench: bench/run.sh does not exist" >&2; exit 1; }
	bash bench/run.sh $(BUILD)

valgrind: deps                 ## the black-box tests under Valgrind's memcheck (BUILD-valgrind)
	scripts/deps.sh valgrind
	BUILD=$(BUILD) scripts/valgrind.sh

install: build                 ## install into PREFIX (default /usr/local)
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:                         ## remove the build directories (BUILD, BUILD-asan, BUILD-tsan, BUILD-valgrind, BUILD-arm64, BUILD-arm64-asan)
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-valgrind $(BUILD)-arm64 $(BUILD)-arm64-asan

help:
	@grep -E '^[a-z0-9-]+:.*## ' Makefile | sed -E 's/^([a-z0-9-]+):.*## /  make \1\t/'
