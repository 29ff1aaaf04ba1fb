# capstan's front door: `make run` and `make test` on a fresh Debian machine.
# CMake does the building; this file only names the steps.

BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
PORT       ?= 8080
CMAKE_FLAGS ?=

.PHONY: all deps build run test unit-asan fmt fmt-check bench clean

all: build

deps:
	@scripts/install-deps

$(BUILD)/Makefile: CMakeLists.txt
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: $(BUILD)/Makefile
	@cmake --build $(BUILD) -j $(JOBS)

run: deps build
	@$(BUILD)/capstan help

# Every suite, then the unit and conformance suites again under ASan+UBSan, then format.
test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)
	@$(MAKE) --no-print-directory unit-asan
	@$(MAKE) --no-print-directory fmt-check
	@echo "make test: all suites passed"

unit-asan:
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DCS_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
		ctest --output-on-failure -j $(JOBS) -L 'unit|conformance|cli|obs|devices'

FMT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)

fmt:
	@clang-format -i $(FMT_FILES)

fmt-check:
	@clang-format --dry-run --Werror $(FMT_FILES) && echo "format: $(words $(FMT_FILES)) files clean"

bench: deps build
	@bench/run

clean:
	@rm -rf $(BUILD) $(ASAN_BUILD) build-*
