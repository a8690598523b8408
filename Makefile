# Thin wrapper: cmake/ctest and scripts do the work.
BUILD ?= build
JOBS ?= $(shell nproc)
# WERROR=1 / WERROR=0 sets the option; unset keeps what the build dir was configured with.
WERROR ?=
CMAKE_FLAGS ?=

.PHONY: all build setup test unit integration e2e demo bench clean

all: build

build:
	@cmake -S . -B $(BUILD) -G Ninja $(if $(WERROR),-DWERROR=$(if $(filter 1,$(WERROR)),ON,OFF)) $(CMAKE_FLAGS) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

setup:
	./scripts/setup

# Targets that need the machine prepared run setup first, then build (never both at once:
# the build needs what setup installs).
test: setup
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -j 2 --timeout 600

unit: build
	cd $(BUILD) && ctest --output-on-failure -L unit

integration: setup
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -L integration

e2e: setup
	@$(MAKE) --no-print-directory build
	cd $(BUILD) && ctest --output-on-failure -L e2e

demo: setup
	@$(MAKE) --no-print-directory build
	./scripts/demo

bench: setup
	@$(MAKE) --no-print-directory build
	./scripts/bench

clean:
	rm -rf $(BUILD)
