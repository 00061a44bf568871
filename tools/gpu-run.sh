#!/usr/bin/env bash
# Build, test and benchmark vaccel on the GPU machine (the device tool's `run`), from the
# repository root. That machine has no glslc, no Vulkan headers, no libvulkan.so dev symlink and
# no network, so three ignored folders must be carried (run's `carry`: [".gl", "build/spv", ".whl"]):
#   .gl/        the loader .debs (libvulkan1 and friends, see /work/.library/device/README.md), the
#               headers .gl/include/{vulkan,vk_video} copied from /usr/include here, and
#               .gl/activate.sh (unpacks the .debs, points the loader at NVIDIA's ICD)
#   build/spv/  the SPIR-V that `make build` compiled here with glslc
#   .whl/       cp312 wheels of what the machine's python3 lacks for the tests: it has pytest and
#               scipy (seen 2026-11), not faiss or ml_dtypes, so .whl holds faiss-cpu (the tests'
#               oracle for search and indexes) and ml_dtypes (NumPy's bfloat16, for the bfloat16
#               matmul tests); installed only if an import fails. Made here with
#                 python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#                   --implementation cp --platform manylinux_2_28_x86_64 \
#                   --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
#                   --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl \
#                   faiss-cpu ml_dtypes    (add pytest iniconfig pluggy packaging pygments scipy if missing)
# Steps, each under a timeout so that a hang cannot eat the whole call (600 s at most):
#   build (180 s)  ->  python3 -m vaccel info (60 s)  ->  pytest tests, validation layer off (300 s)
#   ->  python3 -m benchmarks [--only "$BENCH_ONLY"] $BENCH_ARGS (BENCH_TIMEOUT, default 400 s; the
#       suite itself stops starting cases 60 s before that, so its JSON is complete, and it rewrites
#       the JSON after every case anyway; plots only if matplotlib imports)
# What comes back under $OUT (8 files at most): build.log, info.txt, tests.log, bench.log,
# bench.json, plots/{throughput,roofline,runtime}.png; tests-full.log holds pytest's whole output.
# The copy sent there has no .git: set VACCEL_GIT_REVISION=<sha> for the JSON's git_revision.
# Examples (the device tool's command):
#   VACCEL_GIT_REVISION=<sha> BENCH_ONLY='4096x1000000x128|latency|copy' tools/gpu-run.sh
#   BENCH_TIMEOUT=420 tools/gpu-run.sh                     # the full suite
# SKIP_TESTS=1 leaves the tests out (a second benchmark run on the same commit).
# BENCH_ARGS is split on blanks (no quoting): other options, e.g. BENCH_ARGS="--repeats 5".
# Exit status: the tests' (pytest's, 124 on a timeout); 1 if the build fails. The benchmarks'
# status is printed on the last line.
set -uo pipefail
cd "$(dirname "$0")/.."

OUT=${OUT:-build/gpu-out}
mkdir -p "$OUT"

. .gl/activate.sh > /dev/null 2>&1
export PYTHONUNBUFFERED=1
python3 -c "import pytest, scipy, faiss, ml_dtypes" 2>/dev/null || { python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site; }
ln -sf libvulkan.so.1 /usr/lib/x86_64-linux-gnu/libvulkan.so
CFLAGS=-I.gl/include VACCEL_SPIRV_DIR=build/spv timeout 180 python3 setup.py build_ext --inplace --force > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; echo "gpu-run: build failed"; exit 1; }
export PYTHONPATH=.:${PYTHONPATH:-}

timeout 60 python3 -m vaccel info 2>&1 | tee "$OUT/info.txt"

if [ -n "${SKIP_TESTS:-}" ]; then
  tests_rc=0; echo "tests skipped (SKIP_TESTS set)" | tee "$OUT/tests.log"
else
  VACCEL_VALIDATION=0 timeout 300 python3 -m pytest -q -p no:cacheprovider --tb=short tests > "$OUT/tests-full.log" 2>&1; tests_rc=$?; grep -v "^\.*\s*\[" "$OUT/tests-full.log" | tail -60 | tee "$OUT/tests.log"
fi

bench_timeout=${BENCH_TIMEOUT:-400}
plots=()
if python3 -c "import matplotlib" 2>/dev/null; then
  plots=(--plots "$OUT/plots")
fi
only=()
if [ -n "${BENCH_ONLY:-}" ]; then
  only=(--only "$BENCH_ONLY")
fi
set -f   # BENCH_ARGS: split on blanks, never globbed; a --max-time in it wins over this one
# shellcheck disable=SC2086
timeout "$bench_timeout" python3 -m benchmarks --max-time $((bench_timeout > 120 ? bench_timeout - 60 : bench_timeout / 2)) \
  "${only[@]}" ${BENCH_ARGS:-} --json "$OUT/bench.json" "${plots[@]}" 2>&1 | tee "$OUT/bench.log"
bench_rc=${PIPESTATUS[0]}

echo "gpu-run: tests exit $tests_rc, benchmarks exit $bench_rc"
exit "$tests_rc"
