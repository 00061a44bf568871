# Oracles and tolerances shared by the tests: what a correct distance is, and how far from it a
# float32 GPU result may be (the accuracy documented for each metric).

import numpy as np
import scipy.spatial.distance

import vaccel

FLOAT_METRICS = ["sqeuclidean", "euclidean", "cosine", "cityblock", "chebyshev",
                 "minkowski", "hamming", "inner", "dot"]
ALL_METRICS = FLOAT_METRICS + ["bitwise_hamming"]
SCIPY_METRICS = ["sqeuclidean", "euclidean", "cosine", "cityblock", "chebyshev",
                 "minkowski", "hamming"]


def as_computed(x, metric):
    """The values vaccel computes with: float32 for every metric but 'bitwise_hamming'."""
    x = np.asarray(x)
    if metric == "bitwise_hamming":
        return x
    with np.errstate(over="ignore"):
        return x.astype(np.float32)


def oracle(xa, xb, metric, p=2.0):
    """Expected distances in float64, from SciPy/NumPy only (never from vaccel)."""
    a = as_computed(xa, metric)
    b = as_computed(xb, metric)
    if metric == "bitwise_hamming":
        m, n = a.shape[0], b.shape[0]
        if a.shape[1] == 0:
            return np.zeros((m, n))
        x = np.bitwise_xor(a[:, None, :], b[None, :, :])
        return np.unpackbits(x, axis=2).sum(axis=2).astype(np.float64)
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    if metric in ("inner", "dot"):
        with np.errstate(invalid="ignore", over="ignore"):
            return a @ b.T
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    if metric == "chebyshev" or (metric == "minkowski" and np.isinf(p)):
        # SciPy skips NaN coordinates (|inf - inf| included); vaccel propagates NaN like np.max.
        with np.errstate(invalid="ignore"):
            return np.max(np.abs(a[:, None, :] - b[None, :, :]), axis=2, initial=0.0)
    kw = {"p": p} if metric == "minkowski" else {}
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        return scipy.spatial.distance.cdist(a, b, metric, **kw)


def tolerance(xa, xb, metric, expected, p=2.0):
    """(rtol, atol) for a float32 result, atol possibly an (m, n) array."""
    a = as_computed(xa, metric).astype(np.float64)
    b = as_computed(xb, metric).astype(np.float64)
    d = a.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        scale = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :]
    scale = np.where(np.isfinite(scale), scale, 0.0)
    grow = 1e-5 + 1.2e-7 * d  # float32 accumulation over d terms
    if metric == "sqeuclidean":
        return 1e-4, grow * scale
    if metric == "euclidean" or (metric == "minkowski" and p == 2.0):
        e = grow * scale
        with np.errstate(divide="ignore", invalid="ignore"):
            near = np.where(expected > 0, e / expected, np.inf)
        return 1e-4, np.minimum(np.sqrt(e), near)
    if metric == "cosine":
        return 1e-4, grow
    if metric in ("inner", "dot"):
        return 1e-4, grow * scale / 2
    if metric == "cityblock" or (metric == "minkowski" and p == 1.0):
        return grow, 0.0
    if metric == "chebyshev" or (metric == "minkowski" and np.isinf(p)):
        return 1e-5, 0.0
    if metric == "minkowski":
        return 1e-3, 1e-6
    if metric == "hamming":
        return 0.0, 1e-6
    if metric == "bitwise_hamming":
        return 0.0, 0.0
    raise AssertionError(f"no tolerance for {metric}")


def assert_close(got, expected, rtol, atol, what=""):
    """Elementwise |got - expected| <= atol + rtol*|expected|; inf and NaN must match exactly."""
    got = np.asarray(got)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} != {expected.shape}"
    g = got.astype(np.float64)
    both_nan = np.isnan(g) & np.isnan(expected)
    with np.errstate(invalid="ignore"):
        finite = np.isfinite(expected)
        ok = both_nan | (g == expected)
        ok |= finite & (np.abs(g - expected) <= atol + rtol * np.abs(expected))
    if not ok.all():
        bad = np.argwhere(~ok)
        atol_b = np.broadcast_to(atol, expected.shape)
        lines = [f"  at {tuple(i)}: got {g[tuple(i)]!r} expected {expected[tuple(i)]!r}"
                 f" (atol {atol_b[tuple(i)]:.3g}, rtol {rtol:.3g})" for i in bad[:8]]
        raise AssertionError(f"{what}: {len(bad)} of {ok.size} values differ\n" + "\n".join(lines))


def assert_distances(got, xa, xb, metric, p=2.0, expected=None, what=None):
    if expected is None:
        expected = oracle(xa, xb, metric, p)
    got = np.asarray(got)
    assert got.dtype == np.float32, f"result dtype {got.dtype}, expected float32"
    rtol, atol = tolerance(xa, xb, metric, expected, p)
    assert_close(got, expected, rtol, atol, what or f"cdist {metric} p={p}")


def random_points(rng, shape, dtype, metric):
    """Random inputs suited to a metric: hamming needs repeated values to be interesting."""
    if metric == "bitwise_hamming":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if metric == "hamming":
        return rng.integers(0, 3, size=shape).astype(dtype)
    if np.dtype(dtype).kind in "iub":
        return rng.integers(0, 5, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


def device_array(x):
    """vaccel.asarray(x) made on the Vulkan backend (device arrays need it), whatever the
    backend the test runs on; the backend is restored."""
    before = vaccel.get_backend()
    vaccel.set_backend("vulkan")
    try:
        return vaccel.asarray(x)
    finally:
        vaccel.set_backend(before)


def device_empty(shape, dtype=np.float32):
    before = vaccel.get_backend()
    vaccel.set_backend("vulkan")
    try:
        return vaccel.empty(shape, dtype)
    finally:
        vaccel.set_backend(before)
