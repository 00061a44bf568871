# vaccel.normalize against NumPy on both backends: dtypes, zero rows, views, NaN/inf, empty, out=.

import numpy as np
import pytest

import vaccel
from vaccel import cpu
from helpers import assert_close, device_array, device_empty

SHAPES = [(1, 1), (3, 1), (7, 13), (65, 129), (257, 200)]


def numpy_normalize(x):
    """Rows over their L2 norm in float64 from the float32 values; zero rows stay zero."""
    x = np.asarray(x).astype(np.float32).astype(np.float64)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm == 0, x, x / np.where(norm == 0, 1.0, norm))


def check(got, x):
    got_np = np.asarray(got)
    assert got_np.dtype == np.float32 and got_np.shape == np.shape(x)
    d = np.shape(x)[1]
    expected = numpy_normalize(x)
    assert_close(got_np, expected, 1e-5 + 1.2e-7 * d, 1e-7, "normalize vs numpy")
    assert_close(got_np, cpu.normalize(np.asarray(x)).astype(np.float64),
                 1e-5 + 1.2e-7 * d, 1e-7, "normalize vs vaccel.cpu")


@pytest.mark.parametrize("shape", SHAPES, ids=["x".join(map(str, s)) for s in SHAPES])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.float64, np.int32])
def test_dtypes_shapes(backend, rng, dtype, shape):
    if np.dtype(dtype).kind == "i":
        x = rng.integers(-5, 6, size=shape).astype(dtype)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    got = vaccel.normalize(x)
    assert isinstance(got, np.ndarray) and got.flags.c_contiguous
    check(got, x)


def test_unit_norm(backend, rng):
    x = (rng.standard_normal((50, 77)) * 1000).astype(np.float32)
    got = vaccel.normalize(x)
    np.testing.assert_allclose(np.linalg.norm(got.astype(np.float64), axis=1), 1.0, rtol=1e-5)


def test_zero_rows_stay_zero(backend, rng):
    x = rng.standard_normal((70, 33)).astype(np.float32)
    x[[0, 13, 64, 69]] = 0
    got = vaccel.normalize(x)
    np.testing.assert_array_equal(got[[0, 13, 64, 69]], 0.0)
    assert not np.isnan(got).any()
    check(got, x)


def test_nan_and_inf(backend, rng):
    x = rng.standard_normal((6, 5)).astype(np.float32)
    x[1, 2] = np.nan
    x[3, 0] = np.inf
    got = vaccel.normalize(x)
    assert np.isnan(got[1]).all()
    check(got, x)


def test_views(backend, rng):
    big = rng.standard_normal((90, 40)).astype(np.float32)
    t = rng.standard_normal((17, 30)).astype(np.float32)
    for x in (big[:, ::2], big[::3], t.T, np.asfortranarray(big[:20, :7]), big[::-2, ::-3],
              big[5:, 3:29]):
        assert not x.flags.c_contiguous
        check(vaccel.normalize(x), x)


def test_empty(backend):
    for shape in [(0, 5), (4, 0), (0, 0)]:
        got = vaccel.normalize(np.ones(shape, np.float32))
        assert isinstance(got, np.ndarray) and got.shape == shape and got.dtype == np.float32


def test_out_numpy(backend, rng):
    x = rng.standard_normal((21, 19)).astype(np.float32)
    out = np.full(x.shape, np.nan, np.float32)
    assert vaccel.normalize(x, out=out) is out
    check(out, x)


def test_out_array_and_array_input(backend, rng):
    x = rng.standard_normal((21, 19)).astype(np.float16)
    out = device_empty((21, 19), np.float32)
    assert vaccel.normalize(x, out=out) is out
    check(out.numpy(), x)
    got = vaccel.normalize(device_array(x))
    assert isinstance(got, vaccel.Array) and got.dtype == np.float32 and got.shape == x.shape
    check(got.numpy(), x)


def test_input_unchanged(backend, rng):
    x = rng.standard_normal((9, 8)).astype(np.float32)
    before = x.copy()
    vaccel.normalize(x)
    np.testing.assert_array_equal(x, before)
