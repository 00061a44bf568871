# The oracle's own check: vaccel.cpu against SciPy and plain NumPy, so that the GPU tests that
# compare against vaccel.cpu rest on something someone else wrote.

import numpy as np
import pytest
import scipy.spatial.distance

from vaccel import cpu
from helpers import ALL_METRICS, SCIPY_METRICS, random_points

SHAPES = [(1, 1, 1), (5, 4, 1), (7, 13, 31), (65, 129, 33), (257, 3, 200)]


def scipy_cdist(a, b, metric, **kw):
    a = np.asarray(a, dtype=np.float32).astype(np.float64)
    b = np.asarray(b, dtype=np.float32).astype(np.float64)
    with np.errstate(all="ignore"):
        return scipy.spatial.distance.cdist(a, b, metric, **kw)


def check(got, expected, rtol=1e-6, atol=1e-6):
    assert got.dtype == np.float32
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("metric", SCIPY_METRICS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64])
def test_scipy_metrics(rng, metric, shape, dtype):
    m, n, d = shape
    xa = random_points(rng, (m, d), dtype, metric)
    xb = random_points(rng, (n, d), dtype, metric)
    check(cpu.cdist(xa, xb, metric), scipy_cdist(xa, xb, metric))


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 2.0, 3.0, np.inf])
def test_minkowski_p(rng, p):
    xa = rng.standard_normal((9, 17))
    xb = rng.standard_normal((11, 17))
    check(cpu.cdist(xa, xb, "minkowski", p=p), scipy_cdist(xa, xb, "minkowski", p=p), rtol=1e-6)
    if np.isinf(p):
        check(cpu.cdist(xa, xb, "minkowski", p=p), scipy_cdist(xa, xb, "chebyshev"))


@pytest.mark.parametrize("metric", ["inner", "dot"])
def test_inner(rng, metric):
    xa = rng.standard_normal((19, 23)).astype(np.float32)
    xb = rng.standard_normal((29, 23)).astype(np.float32)
    check(cpu.cdist(xa, xb, metric), xa.astype(np.float64) @ xb.astype(np.float64).T)


@pytest.mark.parametrize("d", [1, 3, 16, 33])
def test_bitwise_hamming(rng, d):
    xa = rng.integers(0, 256, size=(13, d), dtype=np.uint8)
    xb = rng.integers(0, 256, size=(7, d), dtype=np.uint8)
    bits_a = np.unpackbits(xa, axis=1)
    bits_b = np.unpackbits(xb, axis=1)
    expected = (bits_a[:, None, :] != bits_b[None, :, :]).sum(axis=2)
    got = cpu.cdist(xa, xb, "bitwise_hamming")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_empty(metric):
    dt = np.uint8 if metric == "bitwise_hamming" else np.float32
    assert cpu.cdist(np.zeros((0, 4), dt), np.zeros((3, 4), dt), metric).shape == (0, 3)
    assert cpu.cdist(np.zeros((2, 4), dt), np.zeros((0, 4), dt), metric).shape == (2, 0)
    got = cpu.cdist(np.zeros((2, 0), dt), np.zeros((3, 0), dt), metric)
    assert got.shape == (2, 3) and got.dtype == np.float32
    if metric in SCIPY_METRICS:
        check(got, scipy_cdist(np.zeros((2, 0)), np.zeros((3, 0)), metric))
    else:
        np.testing.assert_array_equal(got, np.zeros((2, 3)))


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cosine", "cityblock",
                                    "minkowski", "hamming"])
def test_nan_inf_like_scipy(rng, metric):
    xa = rng.standard_normal((6, 5))
    xb = rng.standard_normal((4, 5))
    xa[1, 2] = np.inf
    xa[2, 0] = -np.inf
    xa[3, 4] = np.nan
    xa[4] = np.nan
    xb[0, 2] = np.inf
    xb[1, 2] = -np.inf
    kw = {"p": 3.0} if metric == "minkowski" else {}
    check(cpu.cdist(xa, xb, metric, **kw), scipy_cdist(xa, xb, metric, **kw))


def test_chebyshev_propagates_nan(rng):
    # SciPy skips NaN coordinates in chebyshev (order-dependent); vaccel propagates NaN.
    xa = rng.standard_normal((3, 5))
    xb = rng.standard_normal((2, 5))
    xa[1, 3] = np.nan
    xa[2, 0] = np.inf
    got = cpu.cdist(xa, xb, "chebyshev")
    assert np.isnan(got[1]).all()
    assert np.isposinf(got[2]).all()
    check(got[0], scipy_cdist(xa[:1], xb, "chebyshev")[0])


def test_float64_taken_as_float32():
    # Values that differ only below float32 precision are equal for the reference, as on the GPU.
    xa = np.array([[1.0, 2.0]])
    xb = np.array([[1.0 + 1e-12, 2.0]])
    assert cpu.cdist(xa, xb, "hamming")[0, 0] == 0.0
    assert cpu.cdist(xa, xb, "sqeuclidean")[0, 0] == 0.0


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.bool_])
def test_integer_and_bool_inputs(rng, dtype):
    xa = random_points(rng, (5, 6), dtype, "euclidean")
    xb = random_points(rng, (4, 6), dtype, "euclidean")
    for metric in ["euclidean", "cityblock", "hamming"]:
        check(cpu.cdist(xa, xb, metric), scipy_cdist(xa, xb, metric))


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine", "chebyshev", "minkowski",
                                    "hamming", "inner", "bitwise_hamming"])
def test_blocking_gives_same_result(rng, monkeypatch, metric):
    xa = random_points(rng, (37, 11), np.float32, metric)
    xb = random_points(rng, (53, 11), np.float32, metric)
    kw = {"p": 1.5} if metric == "minkowski" else {}
    whole = cpu.cdist(xa, xb, metric, **kw)
    monkeypatch.setattr(cpu, "_BLOCK_BYTES", 1000)
    np.testing.assert_array_equal(cpu.cdist(xa, xb, metric, **kw), whole)


def test_views(rng):
    base = rng.standard_normal((40, 30))
    xa = base[::3, ::2]
    xb = np.asfortranarray(base[5:20, 1::2])
    check(cpu.cdist(xa, xb, "cityblock"), scipy_cdist(xa, xb, "cityblock"))


def numpy_normalize(x):
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm == 0, x, x / norm)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32])
def test_normalize(rng, dtype):
    x = random_points(rng, (31, 17), dtype, "euclidean")
    x[3] = 0
    got = cpu.normalize(x)
    assert got.dtype == np.float32 and got.shape == x.shape
    np.testing.assert_allclose(got, numpy_normalize(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(got[3], 0)


def test_normalize_nan_inf_empty():
    x = np.array([[np.nan, 1.0], [np.inf, 1.0], [0.0, 0.0], [3.0, 4.0]])
    got = cpu.normalize(x)
    np.testing.assert_allclose(got, [[np.nan, np.nan], [np.nan, 0.0], [0.0, 0.0], [0.6, 0.8]])
    assert cpu.normalize(np.zeros((0, 5))).shape == (0, 5)
    assert cpu.normalize(np.zeros((4, 0))).shape == (4, 0)
