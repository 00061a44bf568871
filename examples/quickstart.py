"""vaccel in a minute: the device it chose, then distances between 500 queries and 10,000 points
(128 dimensions, float32) checked against NumPy in float64. Exits non-zero on a mismatch.

    make demo            (or, from the repository root after a build: PYTHONPATH=. python3 examples/quickstart.py)
"""

import sys
import time

import numpy as np

import vaccel

M, N, D = 500, 10000, 128
RTOL = 1e-4  # float32 against float64; the per-metric bounds are in tests/helpers.py


def show_device():
    info = vaccel.info()
    dev = info["device"]
    print(f"vaccel {info['version']}, backend {info['backend']}")
    if dev is None:
        print("  no Vulkan device in use: computing with the NumPy reference backend")
        return
    print(f"  device   {dev['name']} ({dev['type']}, {dev['vendor']})")
    print(f"  driver   {dev['driver_name']} {dev['driver_info']}, Vulkan {dev['api_version']}")
    print(f"  subgroup {dev['subgroup_size']}, zero-copy path '{dev['zero_copy']}'")


def reference(a, b, metric):
    """float64 oracle from NumPy alone."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if metric == "sqeuclidean":
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T), 0.0)
    if metric == "cosine":
        an = a / np.linalg.norm(a, axis=1, keepdims=True)
        bn = b / np.linalg.norm(b, axis=1, keepdims=True)
        return 1.0 - an @ bn.T
    raise ValueError(metric)


def check(name, got, expected, seconds=None):
    err = float(np.max(np.abs(got.astype(np.float64) - expected) / np.maximum(np.abs(expected), 1e-30)))
    ok = bool(np.isfinite(err) and err <= RTOL)
    timing = f"  {seconds * 1e3:8.1f} ms" if seconds is not None else ""
    print(f"  {name:<28} max rel. error {err:.2e}  {'OK' if ok else 'FAIL'}{timing}")
    return ok


def main():
    show_device()
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, D), dtype=np.float32)
    b = rng.standard_normal((N, D), dtype=np.float32)

    # The first call per metric creates its pipeline; warm up on small inputs so the timing below
    # is the computation (and its transfers) alone.
    for metric in ("sqeuclidean", "cosine"):
        vaccel.cdist(a[:8], b[:8], metric)
    vaccel.normalize(a[:8])

    print(f"cdist of {M} x {N} points, {D} dimensions, float32:")
    ok = True
    for metric in ("sqeuclidean", "cosine"):
        t = time.perf_counter()
        d = vaccel.cdist(a, b, metric)
        seconds = time.perf_counter() - t
        ok &= check(f"cdist(..., {metric!r})", d, reference(a, b, metric), seconds)

    u = vaccel.normalize(a)
    a64 = a.astype(np.float64)
    ok &= check("normalize(a)", u, a64 / np.linalg.norm(a64, axis=1, keepdims=True))

    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
