# Bad arguments raise ValueError/TypeError naming the argument, on both backends; device errors
# are VaccelErrors; and after any failure the next good call still works.

import numpy as np
import pytest

import vaccel
from helpers import assert_distances, device_array, device_empty

F32 = np.float32


def good_call_works():
    rng = np.random.default_rng(7)
    xa = rng.standard_normal((5, 9)).astype(F32)
    xb = rng.standard_normal((8, 9)).astype(F32)
    assert_distances(vaccel.cdist(xa, xb, "euclidean"), xa, xb, "euclidean")
    got = vaccel.normalize(xa)
    np.testing.assert_allclose(got, xa / np.linalg.norm(xa, axis=1, keepdims=True), rtol=1e-5)


SHAPE_CASES = [
    ("xa-1d", np.ones(4, F32), np.ones((3, 4), F32), "xa"),
    ("xa-3d", np.ones((2, 3, 4), F32), np.ones((3, 4), F32), "xa"),
    ("xa-0d", np.float32(1.0), np.ones((3, 1), F32), "xa"),
    ("xb-1d", np.ones((3, 4), F32), np.ones(4, F32), "xb"),
    ("xb-3d", np.ones((3, 4), F32), np.ones((1, 3, 4), F32), "xb"),
    ("columns", np.ones((3, 4), F32), np.ones((3, 5), F32), "xa|xb"),
    ("columns-empty", np.ones((0, 4), F32), np.ones((0, 5), F32), "xa|xb"),
]


@pytest.mark.parametrize("name,xa,xb,arg", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_bad_shapes(backend, name, xa, xb, arg):
    with pytest.raises(ValueError, match=arg):
        vaccel.cdist(xa, xb, "euclidean")
    good_call_works()


def test_bad_shapes_device_arrays(backend):
    with pytest.raises(ValueError, match="xa|xb"):
        vaccel.cdist(device_array(np.ones((3, 4), F32)), device_array(np.ones((3, 5), F32)))
    with pytest.raises(ValueError, match="xa"):
        vaccel.cdist(device_array(np.ones(4, F32)), np.ones((3, 4), F32))
    good_call_works()


@pytest.mark.parametrize("dtype_a,dtype_b,arg", [
    (np.float32, np.uint8, "xa"),
    (np.uint8, np.float32, "xb"),
    (np.int8, np.uint8, "xa"),
    (np.uint8, np.bool_, "xb"),
    (np.float16, np.float16, "xa"),
])
def test_bitwise_hamming_requires_uint8(backend, dtype_a, dtype_b, arg):
    with pytest.raises(TypeError, match=arg):
        vaccel.cdist(np.ones((3, 4), dtype_a), np.ones((2, 4), dtype_b), "bitwise_hamming")
    good_call_works()


@pytest.mark.parametrize("metric", ["euclid", "Euclidean ", "", "jaccard", "seuclidean"])
def test_unknown_metric(backend, metric):
    with pytest.raises(ValueError, match="metric"):
        vaccel.cdist(np.ones((3, 4), F32), np.ones((2, 4), F32), metric)
    good_call_works()


@pytest.mark.parametrize("metric", [None, 3, 2.5])
def test_metric_not_a_string(backend, metric):
    with pytest.raises((TypeError, ValueError), match="metric"):
        vaccel.cdist(np.ones((3, 4), F32), np.ones((2, 4), F32), metric)
    good_call_works()


@pytest.mark.parametrize("p", [0.0, -1.0, -np.inf, np.nan])
def test_minkowski_bad_p(backend, p):
    with pytest.raises(ValueError, match=r"\bp\b"):
        vaccel.cdist(np.ones((3, 4), F32), np.ones((2, 4), F32), "minkowski", p=p)
    good_call_works()


def bad_numpy_outs():
    yield "shape", np.empty((3, 3), F32)
    yield "transposed-shape", np.empty((2, 3), F32)
    yield "1d", np.empty(6, F32)
    yield "dtype-f64", np.empty((3, 2), np.float64)
    yield "dtype-f16", np.empty((3, 2), np.float16)
    yield "dtype-int32", np.empty((3, 2), np.int32)
    yield "list", [[0.0, 0.0]] * 3
    ro = np.empty((3, 2), F32)
    ro.flags.writeable = False
    yield "read-only", ro


@pytest.mark.parametrize("name,out", list(bad_numpy_outs()), ids=[c[0] for c in bad_numpy_outs()])
def test_bad_out(backend, name, out):
    with pytest.raises((ValueError, TypeError), match="out"):
        vaccel.cdist(np.ones((3, 4), F32), np.ones((2, 4), F32), "sqeuclidean", out=out)
    good_call_works()


def test_bad_out_array(backend):
    xa, xb = np.ones((3, 4), F32), np.ones((2, 4), F32)
    with pytest.raises((ValueError, TypeError), match="out"):
        vaccel.cdist(xa, xb, out=device_empty((2, 3), F32))
    with pytest.raises((ValueError, TypeError), match="out"):
        vaccel.cdist(xa, xb, out=device_array(np.zeros((3, 2), np.uint8)))
    good_call_works()


def test_normalize_bad_out(backend):
    x = np.ones((3, 4), F32)
    for out in (np.empty((4, 3), F32), np.empty((3, 4), np.float64), np.empty((3, 4), np.int32),
                device_empty((3, 5), F32), device_empty((3, 4), np.float16)):
        with pytest.raises((ValueError, TypeError), match="out"):
            vaccel.normalize(x, out=out)
    good_call_works()


@pytest.mark.parametrize("name", ["gpu", "cuda", "opencl"])
def test_bad_backend_name(name):
    with pytest.raises(ValueError, match="backend"):
        vaccel.set_backend(name)
    assert vaccel.get_backend() == "vulkan"
    good_call_works()


def test_absurd_allocation_then_usable():
    with pytest.raises((vaccel.OutOfDeviceMemory, ValueError)):
        vaccel.empty((2 ** 40,), np.float32)   # 4 TiB
    good_call_works()
    with pytest.raises((vaccel.OutOfDeviceMemory, ValueError)):
        vaccel.empty((2 ** 31, 2 ** 31), np.float32)
    good_call_works()
    a = vaccel.asarray(np.arange(12, dtype=F32).reshape(3, 4))
    np.testing.assert_array_equal(a.numpy(), np.arange(12, dtype=F32).reshape(3, 4))


def test_negative_shape():
    with pytest.raises(ValueError):
        vaccel.empty((-1, 3), np.float32)
    good_call_works()


def test_errors_inside_batch_leave_context_usable(rng):
    x = rng.standard_normal((6, 4)).astype(F32)
    with vaccel.batch():
        first = vaccel.normalize(vaccel.asarray(x))
        with pytest.raises(ValueError, match="metric"):
            vaccel.cdist(first, first, "nope")
        second = vaccel.cdist(first, first, "sqeuclidean")
    np.testing.assert_allclose(first.numpy(), x / np.linalg.norm(x, axis=1, keepdims=True),
                               rtol=1e-5)
    assert np.abs(np.diagonal(second.numpy())).max() <= 1e-5
    good_call_works()
