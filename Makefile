# Convenience targets; the README's two commands are deploy/run.sh and deploy/test.sh.
SWIFT ?= /opt/swift/usr/bin/swift
FUZZ_SECONDS ?= 60
BENCH_SECONDS ?= 10

.PHONY: build run test fuzz fuzz-http fuzz-multipart fuzz-prescan bench bench-http clean

build:
	$(SWIFT) build

run:
	bash deploy/run.sh

test:
	bash deploy/test.sh

# libFuzzer (-sanitize=fuzzer,address) builds in their own scratch directory; each fuzzer runs
# for FUZZ_SECONDS over a scratch copy of its seed corpus.
fuzz: fuzz-http fuzz-multipart fuzz-prescan

fuzz-http:
	$(SWIFT) build --product fuzz-http --scratch-path .build-fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
	mkdir -p .build-fuzz/corpus-http && cp -n Tests/Fuzz/HTTP/corpus/* .build-fuzz/corpus-http/
	.build-fuzz/debug/fuzz-http -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 .build-fuzz/corpus-http

fuzz-multipart:
	$(SWIFT) build --product fuzz-multipart --scratch-path .build-fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
	mkdir -p .build-fuzz/corpus-multipart && cp -n Tests/Fuzz/Multipart/corpus/* .build-fuzz/corpus-multipart/
	.build-fuzz/debug/fuzz-multipart -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -print_final_stats=1 .build-fuzz/corpus-multipart

fuzz-prescan:
	$(SWIFT) build --product fuzz-prescan --scratch-path .build-fuzz \
	  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -use-ld=lld
	mkdir -p .build-fuzz/corpus-prescan && cp -n Tests/Fuzz/PreScan/corpus/* .build-fuzz/corpus-prescan/
	.build-fuzz/debug/fuzz-prescan -max_total_time=$(FUZZ_SECONDS) -max_len=8192 -print_final_stats=1 .build-fuzz/corpus-prescan

# Benchmarks: release build, reference measured in the same run (see docs/benchmarks.md).
bench: bench-http

bench-http:
	bash deploy/deps.sh bench
	$(SWIFT) build -c release --product rtpstream
	$(SWIFT) build -c release --product loadtest
	$$($(SWIFT) build -c release --show-bin-path)/loadtest bench http --duration $(BENCH_SECONDS)

clean:
	rm -rf .build .build-*
