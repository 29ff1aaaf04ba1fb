# capstan's front door: `make run` and `make test` on a fresh Debian machine.
# CMake does the building; this file only names the steps.

BUILD      ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
JOBS       ?= $(shell nproc)
PORT       ?= 8080
CMAKE_FLAGS ?=

.PHONY: all deps deps-test build run test unit-asan tsan fuzz-smoke fmt fmt-check bench image clean

all: build

# What building and serving need; the suites' tools and data come with deps-test.
deps:
	@scripts/install-deps build

deps-test:
	@scripts/install-deps test

$(BUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# Serves the shipped digits model on 127.0.0.1:$(PORT), after printing two requests to paste:
# the sample image as a v2 JSON request and as a raw float32 body, both written to $(BUILD).
run: deps build
	@/usr/bin/python3 -c 'import json, struct; r = json.load(open("models/digits.sample.json"))["request"]; \
		open("$(BUILD)/digits.request.json", "w").write(json.dumps(r)); \
		open("$(BUILD)/digits.image.f32", "wb").write(struct.pack("<64f", *r["inputs"][0]["data"]))'
	@echo "capstan serve: the digits model on http://127.0.0.1:$(PORT) (Ctrl-C stops it). Try:"
	@echo
	@echo "  curl -s http://127.0.0.1:$(PORT)/v2/models/digits/infer -H 'Content-Type: application/json' --data-binary @$(CURDIR)/$(BUILD)/digits.request.json"
	@echo "  curl -s http://127.0.0.1:$(PORT)/v2/models/digits/infer -H 'Inference-Header-Content-Length: 0' -H 'Content-Type: application/octet-stream' --data-binary @$(CURDIR)/$(BUILD)/digits.image.f32 -o $(CURDIR)/$(BUILD)/digits.answer"
	@echo
	@exec $(BUILD)/capstan serve --port $(PORT) --threads 2 \
		--model digits=models/digits.onnx --model-config digits=models/digits.yaml

# Every suite, then again under ASan+UBSan and TSan, a short run of every fuzz target, then format.
test: deps-test build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory tsan
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory fmt-check
	@echo "make test: all suites passed"

unit-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS) -- --no-print-directory
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) -L 'unit|conformance|cli|obs|devices|dra|registry|api'

# The unit tests and the server's end-to-end suite again under ThreadSanitizer; any report
# fails them.
tsan:
	@cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCS_TSAN=ON >/dev/null
	@cmake --build $(TSAN_BUILD) -j $(JOBS) -- --no-print-directory
	@cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
		ctest --output-on-failure -L 'unit|api|dra|registry'

# Every fuzz target for a few seconds (longer runs: fuzz/run TARGET SECONDS).
fuzz-smoke:
	@fuzz/smoke 5

FMT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

fmt:
	@clang-format -i $(FMT_FILES)

fmt-check:
	@clang-format --dry-run --Werror $(FMT_FILES) && echo "format: $(words $(FMT_FILES)) files clean"

bench: deps-test build
	@bench/run

# The container image (deploy/Containerfile) as an OCI archive, $(BUILD)/capstan-image.tar.
image: deps-test build
	@BUILD=$(BUILD) scripts/build-image

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) build-*
