# Thin wrapper: cmake/ctest and scripts do the work.
BUILD ?= build
JOBS ?= $(shell nproc)
WERROR ?= 0
CMAKE_FLAGS ?=

.PHONY: all build setup test unit integration e2e demo bench clean

all: build

build:
	@cmake -S . -B $(BUILD) -G Ninja -DWERROR=$(if $(filter 1,$(WERROR)),ON,OFF) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

setup:
	./scripts/setup

test: setup build
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 600

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: setup build
	cd $(BUILD) && ctest --output-on-failure -L integration

demo: setup build
	./scripts/demo

bench: setup build
	./scripts/bench

clean:
	rm -rf $(BUILD)
