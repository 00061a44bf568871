# vaccel: `make demo` and `make test` install what is missing, build the extension in place, and run.
# PYTHON picks the interpreter (default: python3 on PATH), e.g.  PYTHON=/usr/bin/python3 make test
PYTHON ?= python3
PYTEST_ARGS ?=
BENCH_ARGS ?=

BUILD = $(PYTHON) setup.py build_ext --inplace

.PHONY: all deps build demo test bench bench-quick info clean

all: build

# System packages (apt) and Python packages (pip, or apt for Debian's python3) for build and tests.
deps:
	tools/install-deps.sh "$(PYTHON)" test

build:
	tools/install-deps.sh "$(PYTHON)" build
	$(BUILD)

demo:
	tools/install-deps.sh "$(PYTHON)" build
	$(BUILD)
	PYTHONPATH="$(CURDIR)$${PYTHONPATH:+:$$PYTHONPATH}" $(PYTHON) examples/quickstart.py

# The suite runs with the Khronos validation layer on; any validation message fails it.
test:
	tools/install-deps.sh "$(PYTHON)" test
	$(BUILD)
	VACCEL_VALIDATION=1 $(PYTHON) -m pytest -q $(PYTEST_ARGS) tests

bench:
	tools/install-deps.sh "$(PYTHON)" bench
	$(BUILD)
	$(PYTHON) -m benchmarks $(BENCH_ARGS)

bench-quick:
	tools/install-deps.sh "$(PYTHON)" bench
	$(BUILD)
	$(PYTHON) -m benchmarks --quick $(BENCH_ARGS)

info:
	tools/install-deps.sh "$(PYTHON)" build
	$(BUILD)
	$(PYTHON) -m vaccel info

clean:
	rm -rf build dist *.egg-info .pytest_cache
	find . -path ./.git -prune -o \( -name '*.so' -o -name __pycache__ \) -prune -exec rm -rf {} +
