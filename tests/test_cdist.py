# vaccel.cdist against SciPy/NumPy and against the NumPy reference (vaccel.cpu), on both backends:
# every metric and input dtype, awkward shapes, views, NaN/inf, empty inputs, out=, device arrays.

import numpy as np
import pytest

import vaccel
from vaccel import cpu
from helpers import (ALL_METRICS, FLOAT_METRICS, assert_distances, device_array, device_empty,
                     random_points)

# (m, n, d): trivial, d=1, primes, one past the 64/128/32 tiles, tall-and-narrow with wide d.
SHAPES = [(1, 1, 1), (5, 4, 1), (7, 13, 31), (65, 129, 33), (257, 3, 200)]
SHAPE_IDS = ["x".join(map(str, s)) for s in SHAPES]


def check(got, xa, xb, metric, p=2.0, expected=None):
    """got must match the independent oracle and the NumPy reference."""
    assert isinstance(got, np.ndarray), type(got)
    assert got.shape == (np.shape(xa)[0], np.shape(xb)[0])
    assert got.flags.c_contiguous
    assert_distances(got, xa, xb, metric, p, expected=expected, what=f"{metric} vs oracle")
    ref = cpu.cdist(np.asarray(xa), np.asarray(xb), metric, p=p).astype(np.float64)
    assert_distances(got, xa, xb, metric, p, expected=ref, what=f"{metric} vs vaccel.cpu")


def float_cases():
    for metric in FLOAT_METRICS:
        for dtype in (np.float32, np.float16, np.float64):
            yield pytest.param(metric, dtype, id=f"{metric}-{np.dtype(dtype).name}")
    for metric in ("hamming", "bitwise_hamming"):
        yield pytest.param(metric, np.uint8, id=f"{metric}-uint8")


@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("metric,dtype", list(float_cases()))
def test_metrics_dtypes_shapes(backend, rng, metric, dtype, shape):
    m, n, d = shape
    xa = random_points(rng, (m, d), dtype, metric)
    xb = random_points(rng, (n, d), dtype, metric)
    check(vaccel.cdist(xa, xb, metric), xa, xb, metric)


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 3.0, np.inf])
@pytest.mark.parametrize("shape", [(7, 13, 31), (65, 129, 33)], ids=["7x13x31", "65x129x33"])
def test_minkowski_p(backend, rng, p, shape):
    m, n, d = shape
    xa = rng.standard_normal((m, d)).astype(np.float32)
    xb = rng.standard_normal((n, d)).astype(np.float32)
    check(vaccel.cdist(xa, xb, "minkowski", p=p), xa, xb, "minkowski", p)


def test_metric_default_is_euclidean(rng):
    xa = rng.standard_normal((6, 9)).astype(np.float32)
    xb = rng.standard_normal((8, 9)).astype(np.float32)
    check(vaccel.cdist(xa, xb), xa, xb, "euclidean")


def views(rng, metric):
    """(name, xa, xb) pairs of non-contiguous and oddly laid out inputs with 11 columns."""
    big = random_points(rng, (90, 22), np.float32, metric)
    t = random_points(rng, (11, 40), np.float32, metric)
    yield "column-stride", big[:30, ::2], big[30:, 1::2]
    yield "row-stride", big[::3, :11], big[1::7, 11:]
    yield "transposed", t.T, t[:, 5:30].T
    yield "fortran", np.asfortranarray(big[:17, :11]), np.asfortranarray(big[40:, 3:14])
    yield "negative-strides", big[::-1, :11], big[::-2, ::-2]
    yield "offset", big[1:, 1:12], big[3:50, 5:16]


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_views(backend, rng, metric):
    for name, xa, xb in views(rng, metric):
        assert not (xa.flags.c_contiguous and xb.flags.c_contiguous), name
        check(vaccel.cdist(xa, xb, metric), xa, xb, metric)


def test_fortran_and_transposed_float16(backend, rng):
    xa = np.asfortranarray(rng.standard_normal((13, 9)).astype(np.float16))
    xb = rng.standard_normal((9, 21)).astype(np.float16).T
    for metric in ("sqeuclidean", "cosine", "cityblock"):
        check(vaccel.cdist(xa, xb, metric), xa, xb, metric)


def with_inf(rng, d=6):
    xa = rng.standard_normal((6, d))
    xb = rng.standard_normal((5, d))
    xa[1, 2] = np.inf
    xa[2, 0] = -np.inf
    xa[3, :] = np.inf
    xb[0, 2] = np.inf      # same sign as xa[1, 2]: inf - inf
    xb[1, 2] = -np.inf
    xb[2, 4] = np.inf
    return xa.astype(np.float32), xb.astype(np.float32)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cityblock", "chebyshev",
                                    "minkowski", "cosine", "hamming", "inner", "dot"])
def test_inf(backend, rng, metric):
    xa, xb = with_inf(rng)
    p = 3.0 if metric == "minkowski" else 2.0
    check(vaccel.cdist(xa, xb, metric, p=p), xa, xb, metric, p)


@pytest.mark.parametrize("shape", [(6, 5, 6), (70, 130, 40)], ids=["small", "tiled"])
@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cityblock", "minkowski",
                                    "cosine", "hamming", "inner", "dot"])
def test_nan(backend, rng, metric, shape):
    m, n, d = shape
    xa = rng.standard_normal((m, d)).astype(np.float32)
    xb = rng.standard_normal((n, d)).astype(np.float32)
    xa[1, 3] = np.nan
    xa[4, :] = np.nan
    xb[2, 0] = np.nan
    xb[-1, d - 1] = np.nan
    got = vaccel.cdist(xa, xb, metric)
    check(got, xa, xb, metric)
    if metric != "hamming":
        assert np.isnan(got[[1, 4], :]).all() and np.isnan(got[:, [2, n - 1]]).all()


@pytest.mark.parametrize("p", [0.5, 1.0, 1.5, 3.0])
def test_nan_minkowski_p(backend, rng, p):
    xa = rng.standard_normal((5, 9)).astype(np.float32)
    xb = rng.standard_normal((4, 9)).astype(np.float32)
    xa[1, 3] = np.nan
    xb[2, 8] = np.nan
    got = vaccel.cdist(xa, xb, "minkowski", p=p)
    assert np.isnan(got[1]).all() and np.isnan(got[:, 2]).all()
    check(got, xa, xb, "minkowski", p)


@pytest.mark.parametrize("metric,p", [("chebyshev", 2.0), ("minkowski", np.inf)])
def test_nan_chebyshev_propagates(backend, rng, metric, p):
    # SciPy skips NaN coordinates here; vaccel documents NaN propagation (the cpu reference).
    xa = rng.standard_normal((4, 7)).astype(np.float32)
    xb = rng.standard_normal((3, 7)).astype(np.float32)
    xa[1, 3] = np.nan
    xb[2, 6] = np.nan
    got = vaccel.cdist(xa, xb, metric, p=p)
    expected = cpu.cdist(xa, xb, metric, p=p).astype(np.float64)
    assert np.isnan(got[1]).all() and np.isnan(got[:, 2]).all()
    assert_distances(got, xa, xb, "chebyshev", expected=expected)


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_empty(backend, metric):
    dt = np.uint8 if metric == "bitwise_hamming" else np.float32
    for (m, n, d) in [(0, 3, 4), (2, 0, 4), (0, 0, 4), (0, 0, 0), (2, 3, 0), (1, 1, 0)]:
        xa = np.ones((m, d), dt)
        xb = np.ones((n, d), dt)
        got = vaccel.cdist(xa, xb, metric)
        assert isinstance(got, np.ndarray) and got.dtype == np.float32
        assert got.shape == (m, n), (m, n, d)
        if got.size:
            check(got, xa, xb, metric)


@pytest.mark.parametrize("metric", ALL_METRICS)
@pytest.mark.parametrize("same_object", [True, False], ids=["same", "copy"])
def test_self_distance(backend, rng, metric, same_object):
    # Offset points make the GEMM form cancel badly: the diagonal must still be ~0.
    x = random_points(rng, (70, 24), np.float32, metric)
    if metric not in ("hamming", "bitwise_hamming"):
        x = x + np.float32(20.0)
    y = x if same_object else x.copy()
    got = vaccel.cdist(x, y, metric)
    diag = np.diagonal(got).astype(np.float64)
    norm = np.linalg.norm(x.astype(np.float64), axis=1)
    if metric == "sqeuclidean":
        assert np.all(np.abs(diag) <= 1e-5 * norm ** 2), diag
    elif metric in ("euclidean", "minkowski"):
        assert np.all(np.abs(diag) <= 1e-5 * norm), diag
    elif metric == "cosine":
        assert np.all(np.abs(diag) <= 1e-5), diag
    elif metric in ("inner", "dot"):
        np.testing.assert_allclose(diag, norm ** 2, rtol=1e-5)
    else:
        np.testing.assert_array_equal(diag, 0.0)
    check(got, x, y, metric)


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "cosine"])
def test_near_duplicates(backend, rng, metric):
    x = (rng.standard_normal((40, 32)) + 10).astype(np.float32)
    y = x + rng.standard_normal(x.shape).astype(np.float32) * np.float32(1e-3)
    check(vaccel.cdist(x, y, metric), x, y, metric)


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint8, np.int8, np.bool_])
def test_integer_and_bool_inputs(backend, rng, dtype):
    xa = random_points(rng, (9, 10), dtype, "euclidean")
    xb = random_points(rng, (7, 10), dtype, "euclidean")
    for metric in ("sqeuclidean", "cityblock", "cosine", "hamming", "inner"):
        check(vaccel.cdist(xa, xb, metric), xa, xb, metric)


def test_mixed_dtypes(backend, rng):
    xa = rng.standard_normal((8, 12)).astype(np.float16)
    xb = rng.standard_normal((5, 12))
    for metric in ("euclidean", "chebyshev"):
        check(vaccel.cdist(xa, xb, metric), xa, xb, metric)


def test_float64_beyond_float32_range(backend):
    xa = np.array([[1e300, 0.0], [1.0, 2.0]])
    xb = np.array([[0.0, 0.0]])
    got = vaccel.cdist(xa, xb, "cityblock")
    assert np.isposinf(got[0, 0]) and got[1, 0] == np.float32(3.0)


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine", "chebyshev", "bitwise_hamming"])
def test_out_numpy(backend, rng, metric):
    xa = random_points(rng, (11, 19), np.float32, metric)
    xb = random_points(rng, (23, 19), np.float32, metric)
    out = np.full((11, 23), np.nan, dtype=np.float32)
    got = vaccel.cdist(xa, xb, metric, out=out)
    assert got is out
    check(out, xa, xb, metric)


@pytest.mark.parametrize("layout", ["strided", "fortran"])
def test_out_other_layouts(backend, rng, layout):
    # Only C-contiguous `out` is promised; another layout is either refused naming `out` or filled
    # correctly.
    xa = rng.standard_normal((11, 19)).astype(np.float32)
    xb = rng.standard_normal((23, 19)).astype(np.float32)
    if layout == "strided":
        out = np.full((11, 46), np.nan, np.float32)[:, ::2]
    else:
        out = np.asfortranarray(np.full((11, 23), np.nan, np.float32))
    try:
        got = vaccel.cdist(xa, xb, "cosine", out=out)
    except (ValueError, TypeError) as exc:
        assert "out" in str(exc)
        return
    assert got is out
    assert_distances(out, xa, xb, "cosine")


def test_out_array(backend, rng):
    xa = rng.standard_normal((11, 19)).astype(np.float32)
    xb = rng.standard_normal((23, 19)).astype(np.float32)
    out = device_empty((11, 23), np.float32)
    got = vaccel.cdist(xa, xb, "euclidean", out=out)
    assert got is out
    check(out.numpy(), xa, xb, "euclidean")
    # Reused for a second call with other inputs.
    ya = rng.standard_normal((11, 4)).astype(np.float32)
    yb = rng.standard_normal((23, 4)).astype(np.float32)
    got = vaccel.cdist(ya, yb, "cityblock", out=out)
    assert got is out
    check(np.asarray(out), ya, yb, "cityblock")


@pytest.mark.parametrize("which", ["both", "xa", "xb"])
@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine", "cityblock", "bitwise_hamming"])
def test_array_inputs_return_array(backend, rng, which, metric):
    xa = random_points(rng, (17, 33), np.float32, metric)
    xb = random_points(rng, (29, 33), np.float32, metric)
    a = device_array(xa) if which in ("both", "xa") else xa
    b = device_array(xb) if which in ("both", "xb") else xb
    got = vaccel.cdist(a, b, metric)
    assert isinstance(got, vaccel.Array)
    assert got.shape == (17, 29) and got.dtype == np.float32
    check(got.numpy(), xa, xb, metric)
    check(np.asarray(got), xa, xb, metric)


def test_array_input_float16(backend, rng):
    xa = rng.standard_normal((10, 16)).astype(np.float16)
    xb = rng.standard_normal((12, 16)).astype(np.float16)
    got = vaccel.cdist(device_array(xa), device_array(xb), "sqeuclidean")
    assert isinstance(got, vaccel.Array)
    check(got.numpy(), xa, xb, "sqeuclidean")


def test_result_chains_into_next_call(backend, rng):
    xa = rng.standard_normal((9, 5)).astype(np.float32)
    xb = rng.standard_normal((14, 5)).astype(np.float32)
    d = vaccel.cdist(device_array(xa), xb, "euclidean")   # an Array (9, 14) that stays put
    dd = vaccel.cdist(d, d, "cityblock")                    # distances between its rows
    d_np = d.numpy()
    check(d_np, xa, xb, "euclidean")
    check(dd.numpy(), d_np, d_np, "cityblock")


def test_cpu_backend_with_device_arrays(rng):
    # Arrays made on the device, then the CPU backend: same contract (Array in -> Array out,
    # an Array `out` is filled and returned).
    xa = rng.standard_normal((6, 10)).astype(np.float32)
    xb = rng.standard_normal((8, 10)).astype(np.float32)
    a, b = device_array(xa), device_array(xb)
    out = device_empty((6, 8))
    vaccel.set_backend("cpu")
    got = vaccel.cdist(a, b, "cityblock")
    assert_distances(np.asarray(got), xa, xb, "cityblock")
    assert isinstance(got, vaccel.Array), type(got)
    assert vaccel.cdist(a, xb, "cityblock", out=out) is out
    vaccel.set_backend("vulkan")
    assert_distances(out.numpy(), xa, xb, "cityblock")


@pytest.mark.parametrize("metric", ALL_METRICS)
def test_backends_agree(rng, metric):
    xa = random_points(rng, (37, 45), np.float32, metric)
    xb = random_points(rng, (66, 45), np.float32, metric)
    vaccel.set_backend("vulkan")
    on_gpu = vaccel.cdist(xa, xb, metric)
    vaccel.set_backend("cpu")
    on_cpu = vaccel.cdist(xa, xb, metric)
    vaccel.set_backend("auto")
    np.testing.assert_array_equal(on_cpu, cpu.cdist(xa, xb, metric))
    assert_distances(on_gpu, xa, xb, metric, expected=on_cpu.astype(np.float64),
                     what=f"{metric}: vulkan vs cpu backend")


def test_million_rows():
    # xb is 1e6 x 40 float32 = 160 MB: more than lavapipe's 128 MiB maxStorageBufferRange, so
    # the database must be split into chunks.
    rng = np.random.default_rng(1234)
    xa = rng.standard_normal((3, 40)).astype(np.float32)
    xb = rng.standard_normal((1_000_000, 40), dtype=np.float32)
    xb[-1] = xa[0]
    vaccel.set_backend("vulkan")
    got = vaccel.cdist(xa, xb, "sqeuclidean")
    assert got.shape == (3, 1_000_000) and got.dtype == np.float32
    expected = cpu.cdist(xa, xb, "sqeuclidean").astype(np.float64)
    assert_distances(got, xa, xb, "sqeuclidean", expected=expected)
    assert got[0, -1] <= 1e-5 * float(xa[0] @ xa[0])
