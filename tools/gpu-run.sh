#!/usr/bin/env bash
# Runs on the GPU machine, from the repository root, with build/spv (SPIR-V compiled where glslc
# is) and .gl/ (the Vulkan loader and libvulkan-dev .debs, plus activate.sh) carried there. Builds
# the extension with the machine's python3, reports the device, runs the tests (no validation layer
# there) and the benchmarks. Logs and results go to $OUT: tests.log, bench.log, bench.json.
#   BENCH_ARGS="--quick" tools/gpu-run.sh
# Exits non-zero when the build, the tests or the benchmarks fail.
set -uo pipefail

OUT=${OUT:-build/gpu-out}
mkdir -p "$OUT"

if [ -f .gl/activate.sh ]; then
  # shellcheck disable=SC1091
  . .gl/activate.sh
else
  echo "gpu-run: no .gl/activate.sh; using the machine's own Vulkan loader" >&2
fi

if ! echo '#include <vulkan/vulkan.h>' | "${CC:-cc}" -E -x c - >/dev/null 2>&1; then
  echo "gpu-run: no Vulkan headers here: put Debian's libvulkan-dev .deb into .gl/ beside libvulkan1" >&2
  exit 1
fi
if [ ! -d build/spv ]; then
  echo "gpu-run: build/spv is missing: run 'make build' where glslc is, and carry build/spv" >&2
  exit 1
fi

VACCEL_SPIRV_DIR=build/spv python3 setup.py build_ext --inplace 2>&1 | tee "$OUT/build.log" || {
  echo "gpu-run: build failed" >&2; exit 1; }

python3 -m vaccel info 2>&1 | tee "$OUT/info.log" || { echo "gpu-run: vaccel info failed" >&2; exit 1; }

VACCEL_VALIDATION=0 python3 -m pytest -q tests 2>&1 | tee "$OUT/tests.log"
tests_rc=$?

# shellcheck disable=SC2086  # BENCH_ARGS is a list of words
python3 -m benchmarks ${BENCH_ARGS:-} --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
bench_rc=$?

echo "gpu-run: tests exit $tests_rc, benchmarks exit $bench_rc"
[ $tests_rc -eq 0 ] || exit $tests_rc
exit $bench_rc
