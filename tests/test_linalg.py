# matmul, matvec and transpose against NumPy in float64 (the oracle), on both backends, for every
# kernel variant the device offers: its default (the workgroup-scope kernel of
# VK_NV_cooperative_matrix2 where the device has it, else the subgroup-scope cooperative-matrix
# kernel where it has that), the subgroup-scope kernel on a device that has both
# (VACCEL_COOPMAT2=0), and the SIMT tile (VACCEL_NO_COOPMAT).
#
# Tolerances: float32 results within 2e-6 * sqrt(k) * (|a| |b|) of the exact product per entry;
# float16 operands are exact in float32, so float32 results of them are held to the same bound,
# and float16 results add half an ulp of float16 (2^-11 relative).

import numpy as np
import pytest

import vaccel

VARIANTS = ["default", "no_coopmat", "subgroup_coopmat"]


@pytest.fixture(params=VARIANTS)
def variant(request, monkeypatch, backend):
    if request.param == "no_coopmat":
        monkeypatch.setenv("VACCEL_NO_COOPMAT", "1")
    if request.param == "subgroup_coopmat":
        if backend != "vulkan" or not vaccel.info()["device"].get("cooperative_matrix_nv2"):
            pytest.skip("the default is the subgroup-scope kernel (or SIMT) here")
        monkeypatch.setenv("VACCEL_COOPMAT2", "0")
    return request.param


def exact(a, b):
    return np.matmul(np.asarray(a, np.float64), np.asarray(b, np.float64))


def bound(a, b, k):
    """Per-entry error allowed for a float32-accumulated product."""
    mag = np.matmul(np.abs(np.asarray(a, np.float64)), np.abs(np.asarray(b, np.float64)))
    return 2e-6 * np.sqrt(max(k, 1)) * mag + 1e-30


def check(r, a, b, half_out=False):
    r = np.asarray(r.numpy() if isinstance(r, vaccel.Array) else r, np.float64)
    e = exact(a, b)
    assert r.shape == e.shape
    k = np.shape(a)[-1]
    tol = bound(a, b, k)
    if half_out:
        tol = tol + np.abs(e) * 2.0 ** -11 + 6e-8
    bad = ~(np.abs(r - e) <= tol)
    assert not bad.any(), f"{bad.sum()} entries off; worst {np.max(np.abs(r - e)[bad])}"


SHAPES = [(1, 1, 1), (1, 7, 1), (2, 3, 5), (13, 1, 17), (31, 37, 41), (64, 64, 64), (65, 129, 63),
          (128, 8, 128), (129, 33, 257), (300, 100, 7), (3, 1000, 5)]


@pytest.mark.parametrize("m,k,n", SHAPES)
def test_matmul_float32(backend, variant, rng, m, k, n):
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    r = vaccel.matmul(a, b)
    assert r.dtype == np.float32
    check(r, a, b)


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 9, 3), (16, 16, 16), (33, 40, 47), (128, 64, 128),
                                   (130, 136, 129), (257, 72, 190), (256, 288, 136)])
@pytest.mark.parametrize("out_dtype", [None, np.float32])
def test_matmul_float16(backend, variant, rng, m, k, n, out_dtype):
    a = rng.standard_normal((m, k)).astype(np.float16)
    b = rng.standard_normal((k, n)).astype(np.float16)
    r = vaccel.matmul(a, b, out_dtype=out_dtype)
    assert r.dtype == (np.float16 if out_dtype is None else np.float32)
    check(r, a, b, half_out=out_dtype is None)


def view_operands(rng, layout, dtype, m=67, k=48, n=45):
    """a (m, k) and b (k, n) of dtype laid out as `layout` says: transposed, strided or sliced
    views, or a batch of a against one b."""
    A = rng.standard_normal((k, m)).astype(dtype)
    B = rng.standard_normal((n, k)).astype(dtype)
    if layout == "a.T":
        return A.T, np.ascontiguousarray(B.T)
    if layout == "b.T":
        return np.ascontiguousarray(A.T), B.T
    if layout == "both.T":
        return A.T, B.T
    if layout == "strided":
        return (rng.standard_normal((m, 2 * k)).astype(dtype)[:, ::2],
                rng.standard_normal((2 * k, n)).astype(dtype)[::2])
    if layout == "sliced":
        return (rng.standard_normal((m + 5, k + 3)).astype(dtype)[2:m + 2, 1:k + 1],
                rng.standard_normal((k + 1, n + 9)).astype(dtype)[1:, 4:n + 4])
    return rng.standard_normal((3, m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)


@pytest.mark.parametrize("layout", ["a.T", "b.T", "both.T", "strided", "sliced"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_matmul_views(backend, variant, rng, layout, dtype):
    a, b = view_operands(rng, layout, dtype)
    r = vaccel.matmul(a, b, out_dtype=np.float32)
    check(r, a, b)


def device_transposed(x):
    """x (2-D) as a device array stored the other way round (column-major): a transposed operand
    of the kernels, where a NumPy view would be copied to row-major on the way in."""
    from vaccel import runtime
    return runtime.view(vaccel.asarray(np.ascontiguousarray(x.T)), x.shape, (1, x.shape[0]))


@pytest.mark.parametrize("tile", [None, "128,128,8,8,8", "64,128,16,8,8", "128,64,8,8,4"])
@pytest.mark.parametrize("layout", ["plain", "a.T", "b.T", "both.T", "sliced", "batched_a",
                                    "batched_b", "batched_both", "batched_a.T"])
def test_matmul_float32_whole_tiles(backend, rng, monkeypatch, layout, tile):
    # The SIMT kernel's interior path (whole tiles over whole slices of aligned operands, loads
    # without bounds tests) next to edge tiles, for the default tile and forced ones (128x64 has
    # more threads than slots), with operands stored transposed on the device, batched ones
    # (either or both; a batch of 1 broadcasts) and offset ones; sliced: offsets and leading
    # dimensions that are multiples of 4 elements, then ones that are not (host-sized operands go
    # in place on a unified device, are copied on a discrete one).
    monkeypatch.setenv("VACCEL_NO_COOPMAT", "1")
    if tile:
        monkeypatch.setenv("VACCEL_MATMUL_TILE", tile)
    m, k, n = 264, 288, 256
    if layout == "sliced":
        A = rng.standard_normal((m + 8, k + 16)).astype(np.float32)
        B = rng.standard_normal((k + 8, n + 8)).astype(np.float32)
        for a, b in ((A[4:, 8:k + 8], B[4:k + 4, 4:n + 4]), (A[3:m + 3, 1:k + 1], B[5:k + 5, 2:n + 2])):
            check(vaccel.matmul(a, b), a, b)
        return
    a = rng.standard_normal((3, m, k) if layout in ("batched_a", "batched_both") else (m, k)).astype(np.float32)
    b = rng.standard_normal((3, k, n) if layout in ("batched_b", "batched_both") else (k, n)).astype(np.float32)
    da, db = a, b
    if layout in ("a.T", "both.T"):
        da = device_transposed(a)
    if layout in ("b.T", "both.T"):
        db = device_transposed(b)
    if layout == "batched_a.T":
        a = rng.standard_normal((3, m, k)).astype(np.float32)
        from vaccel import runtime
        da = runtime.view(vaccel.asarray(np.ascontiguousarray(a.transpose(0, 2, 1))), a.shape, (m * k, 1, m))
    check(vaccel.matmul(da, db), a, b)
    c0 = rng.standard_normal(np.broadcast_shapes(a.shape[:-1] + (n,), b.shape[:-2] + (m, n))).astype(np.float32)
    out = vaccel.asarray(c0)
    vaccel.matmul(da, db, out=out)
    check(out, a, b)


@pytest.mark.parametrize("layout", ["a.T", "b.T", "both.T", "sliced", "batched"])
def test_matmul_float16_views_whole_tiles(backend, variant, rng, layout):
    # Several whole 128 x 128 tiles and a depth of whole slices (the tensor-core kernels' aligned
    # path) next to edge tiles, with transposed, offset and batched operands; sliced: offsets and
    # leading dimensions that are multiples of 8 elements, then ones that are not.
    m, k, n = 264, 288, 256
    if layout == "sliced":
        A = rng.standard_normal((m + 8, k + 16)).astype(np.float16)
        B = rng.standard_normal((k + 8, n + 8)).astype(np.float16)
        for a, b in ((A[8:, 8:k + 8], B[8:, :n]), (A[3:m + 3, 1:k + 1], B[5:k + 5, 2:n + 2])):
            check(vaccel.matmul(a, b), a, b, half_out=True)
        return
    a, b = view_operands(rng, layout, np.float16, m, k, n)
    check(vaccel.matmul(a, b), a, b, half_out=True)
    check(vaccel.matmul(a, b, out_dtype=np.float32), a, b)


def test_matmul_batched_broadcast(backend, variant, rng):
    a = rng.standard_normal((4, 19, 23)).astype(np.float32)
    b = rng.standard_normal((23, 29)).astype(np.float32)
    check(vaccel.matmul(a, b), a, b)
    b3 = rng.standard_normal((4, 23, 29)).astype(np.float32)
    check(vaccel.matmul(a, b3), a, b3)
    a1 = rng.standard_normal((1, 19, 23)).astype(np.float32)
    check(vaccel.matmul(a1, b3), a1, b3)
    a4 = rng.standard_normal((2, 1, 19, 23)).astype(np.float32)
    b4 = rng.standard_normal((3, 23, 29)).astype(np.float32)
    check(vaccel.matmul(a4, b4), a4, b4)
    h = rng.standard_normal((3, 40, 24)).astype(np.float16)
    g = rng.standard_normal((3, 24, 56)).astype(np.float16)
    check(vaccel.matmul(h, g), h, g, half_out=True)
    # a transposed batch (each matrix column-major)
    t = rng.standard_normal((3, 23, 40)).astype(np.float32).transpose(0, 2, 1)
    check(vaccel.matmul(t, b3[:3, :, :5]), t, b3[:3, :, :5])


def test_matmul_vectors_and_promotion(backend, rng):
    a = rng.standard_normal((7, 5)).astype(np.float32)
    v = rng.standard_normal(5).astype(np.float32)
    w = rng.standard_normal(7).astype(np.float32)
    assert vaccel.matmul(a, v).shape == (7,)
    check(vaccel.matmul(a, v)[:, None], a, v[:, None])
    assert vaccel.matmul(w, a).shape == (5,)
    r = vaccel.matmul(v, v)
    assert np.shape(r) == ()
    assert abs(float(r) - float(np.dot(v.astype(np.float64), v))) < 1e-5
    # float64 and integers are computed in float32 and come back float32
    r = vaccel.matmul(a.astype(np.float64), np.arange(10, dtype=np.int64).reshape(5, 2))
    assert r.dtype == np.float32
    check(r, a, np.arange(10).reshape(5, 2))
    # mixed float16 / float32 gives float32
    r = vaccel.matmul(a.astype(np.float16), v.astype(np.float32)[:, None])
    assert r.dtype == np.float32


def test_matmul_empty_and_k0(backend):
    assert vaccel.matmul(np.zeros((0, 3), np.float32), np.ones((3, 4), np.float32)).shape == (0, 4)
    assert vaccel.matmul(np.zeros((2, 3, 0), np.float32), np.ones((0, 4), np.float32)).shape == (2, 3, 4)
    r = vaccel.matmul(np.ones((2, 0), np.float32), np.ones((0, 4), np.float32))
    assert r.shape == (2, 4) and not np.asarray(r).any()


def test_matmul_nonfinite(backend):
    a = np.array([[1.0, np.inf], [np.nan, 1.0], [1.0, 2.0]], np.float32)
    b = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    r = np.asarray(vaccel.matmul(a, b))
    with np.errstate(invalid="ignore"):
        e = a @ b
    assert np.array_equal(np.isnan(r), np.isnan(e))
    assert np.array_equal(r[np.isfinite(e)], e[np.isfinite(e)])
    assert np.array_equal(r[np.isinf(e)], e[np.isinf(e)])


def test_matmul_out_and_arrays(backend, variant, rng):
    a = rng.standard_normal((40, 30)).astype(np.float32)
    b = rng.standard_normal((30, 20)).astype(np.float32)
    out = np.empty((40, 20), np.float32)
    assert vaccel.matmul(a, b, out=out) is out
    check(out, a, b)
    da, db = vaccel.asarray(a), vaccel.asarray(b)
    r = vaccel.matmul(da, db)
    assert isinstance(r, vaccel.Array)
    check(r, a, b)
    r = vaccel.matmul(da[5:25], db)
    check(r, a[5:25], b)
    dout = vaccel.empty((40, 20))
    assert vaccel.matmul(da, db, out=dout) is dout
    check(dout, a, b)
    # non-contiguous host out
    big = np.zeros((40, 40), np.float32)
    vaccel.matmul(a, b, out=big[:, ::2])
    check(big[:, ::2], a, b)


def test_matmul_in_batch_chain(rng):
    a = rng.standard_normal((32, 16)).astype(np.float32)
    b = rng.standard_normal((16, 24)).astype(np.float32)
    c = rng.standard_normal((24, 8)).astype(np.float32)
    with vaccel.batch():
        ab = vaccel.matmul(a, b)
        abc = vaccel.matmul(ab, c)
    assert isinstance(abc, vaccel.Array)
    r = abc.numpy().astype(np.float64)
    e = exact(exact(a, b), c)
    assert np.allclose(r, e, rtol=1e-4, atol=1e-4)


def test_matmul_errors(backend):
    a = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="columns"):
        vaccel.matmul(a, np.ones((5, 2), np.float32))
    with pytest.raises(ValueError, match="at least 1-D"):
        vaccel.matmul(a, 2.0)
    with pytest.raises(ValueError, match="broadcast"):
        vaccel.matmul(np.ones((2, 3, 4), np.float32), np.ones((3, 4, 5), np.float32))
    with pytest.raises(TypeError, match="a must hold numbers"):
        vaccel.matmul(np.array([["x"]]), a)
    with pytest.raises(TypeError, match="b must be an array"):
        vaccel.matmul(a, None)
    with pytest.raises(TypeError, match="out_dtype"):
        vaccel.matmul(a, np.ones((4, 2), np.float32), out_dtype=np.float16)
    with pytest.raises(ValueError, match="out has shape"):
        vaccel.matmul(a, np.ones((4, 2), np.float32), out=np.empty((3, 3), np.float32))
    with pytest.raises(TypeError, match="out must be float32"):
        vaccel.matmul(a, np.ones((4, 2), np.float32), out=np.empty((3, 2), np.float64))
    # the context stays usable
    check(vaccel.matmul(a, np.ones((4, 2), np.float32)), a, np.ones((4, 2)))


@pytest.mark.parametrize("m,k", [(1, 1), (7, 13), (64, 256), (129, 100), (1000, 37)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_matvec(backend, rng, m, k, dtype):
    a = rng.standard_normal((m, k)).astype(dtype)
    x = rng.standard_normal(k).astype(np.float32)
    r = vaccel.matvec(a, x)
    assert r.dtype == np.float32 and r.shape == (m,)
    check(np.asarray(r)[:, None], a, x[:, None])
    # column-major a (a transposed view)
    at = np.asfortranarray(a)
    check(np.asarray(vaccel.matvec(at, x))[:, None], a, x[:, None])


def test_matvec_batched(backend, rng):
    a = rng.standard_normal((3, 17, 9)).astype(np.float32)
    x = rng.standard_normal((3, 9)).astype(np.float32)
    r = np.asarray(vaccel.matvec(a, x))
    e = np.einsum("bmk,bk->bm", a.astype(np.float64), x)
    assert r.shape == (3, 17) and np.allclose(r, e, rtol=1e-5, atol=1e-5)
    r = np.asarray(vaccel.matvec(a, x[0]))
    assert np.allclose(r, a.astype(np.float64) @ x[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="columns"):
        vaccel.matvec(a, np.ones(4, np.float32))
    with pytest.raises(ValueError, match="at least 2-D"):
        vaccel.matvec(np.ones(3, np.float32), np.ones(3, np.float32))


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (7, 1), (31, 33), (64, 96), (100, 37), (2, 45, 70), (3, 1, 9)])
@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int32, np.float64])
def test_transpose(backend, rng, shape, dtype):
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    r = vaccel.transpose(a)
    e = np.swapaxes(a, -1, -2)
    want = np.float32 if dtype == np.float64 else dtype
    assert r.dtype == want and r.shape == e.shape
    assert np.array_equal(np.asarray(r), e.astype(want))
    # a strided view
    v = a[..., ::2]
    assert np.array_equal(np.asarray(vaccel.transpose(v)), np.swapaxes(v, -1, -2).astype(want))


def test_transpose_device_array(rng):
    a = rng.standard_normal((3, 50, 20)).astype(np.float32)
    r = vaccel.transpose(vaccel.asarray(a))
    assert isinstance(r, vaccel.Array)
    assert np.array_equal(r.numpy(), a.transpose(0, 2, 1))
    with pytest.raises(ValueError, match="at least 2-D"):
        vaccel.transpose(np.ones(3))


def _small_binding_range():
    return vaccel.devices()[0]["max_storage_buffer_range"] <= (256 << 20)


@pytest.mark.skipif(vaccel.get_backend() != "vulkan" or not _small_binding_range(),
                    reason="needs a device whose binding range is small enough to exceed here (lavapipe: 128 MiB)")
@pytest.mark.parametrize("case", ["rows", "cols", "depth", "colmajor"])
def test_matmul_splits_beyond_binding_range(rng, case):
    """Operands larger than one binding window are split by rows, columns or depth (accumulating)."""
    lim = vaccel.devices()[0]["max_storage_buffer_range"] // 4 + 1000   # elements just past the range
    if case == "rows":
        k = 8192
        a = rng.standard_normal((lim // k + 1, k), dtype=np.float32)
        b = rng.standard_normal((k, 3), dtype=np.float32)
    elif case == "cols":
        k = 8192
        a = rng.standard_normal((3, k), dtype=np.float32)
        b = rng.standard_normal((k, lim // k + 1), dtype=np.float32)
    elif case == "depth":
        a = rng.standard_normal((1, lim), dtype=np.float32)
        b = rng.standard_normal((lim, 2), dtype=np.float32)
    else:
        k = 8192
        a = np.asfortranarray(rng.standard_normal((lim // k + 1, k), dtype=np.float32))
        b = rng.standard_normal((k, 2), dtype=np.float32)
    r = vaccel.matmul(a, b)
    e = exact(a, b)
    tol = 2e-6 * np.sqrt(a.shape[1]) * np.matmul(np.abs(a).astype(np.float64), np.abs(b))
    assert np.all(np.abs(r - e) <= tol)


# ---- bfloat16 (ml_dtypes.bfloat16): the same kernels with bfloat16 operands, float32 accumulation
# (cooperative matrices where the device lists bfloat16 ones, else the SIMT tile). A bfloat16 result
# is the float32 result rounded to nearest even: half an ulp of bfloat16 (2^-8 relative) on top of
# the float32 bound, and bit-for-bit the rounding of the out_dtype=float32 result of the same call.

BF16 = vaccel.runtime.BFLOAT16
needs_bf16 = pytest.mark.skipif(BF16 is None, reason="ml_dtypes (NumPy's bfloat16) is not installed")


def check_bf16(r, a, b, bf16_out):
    r = np.asarray(r.numpy() if isinstance(r, vaccel.Array) else r)
    assert r.dtype == (BF16 if bf16_out else np.float32)
    r = r.astype(np.float64)
    e = exact(a, b)
    tol = bound(a, b, np.shape(a)[-1])
    if bf16_out:
        tol = tol + np.abs(e) * 2.0 ** -8 + 1e-38
    bad = ~(np.abs(r - e) <= tol)
    assert not bad.any(), f"{bad.sum()} entries off; worst {np.max(np.abs(r - e)[bad])}"


@needs_bf16
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (5, 9, 3), (16, 16, 16), (33, 40, 47), (128, 64, 128),
                                   (130, 136, 129), (257, 72, 190), (3, 1000, 5), (256, 288, 136)])
@pytest.mark.parametrize("out_dtype", [None, np.float32])
def test_matmul_bfloat16(backend, variant, rng, m, k, n, out_dtype):
    a = rng.standard_normal((m, k)).astype(BF16)
    b = rng.standard_normal((k, n)).astype(BF16)
    r = vaccel.matmul(a, b, out_dtype=out_dtype)
    check_bf16(r, a, b, out_dtype is None)
    if out_dtype is None:
        # the bfloat16 result is the rounding of the float32 one, to the bit
        r32 = np.asarray(vaccel.matmul(a, b, out_dtype=np.float32))
        assert np.array_equal(np.asarray(r).view(np.uint16), r32.astype(BF16).view(np.uint16))


@needs_bf16
def test_matmul_bfloat16_rounding_and_nonfinite(backend, variant):
    # 256 + 1 and 258 + 1 are ties in bfloat16 (8 significant bits): to even, 256 and 260
    a = np.array([[256, 1], [258, 1], [1, 1], [np.inf, 1], [np.nan, 1], [3e38, 3e38]], np.float32).astype(BF16)
    b = np.array([[1], [1]], np.float32).astype(BF16)
    r = np.asarray(vaccel.matmul(a, b)).astype(np.float32)[:, 0]
    assert r[0] == 256 and r[1] == 260 and r[2] == 2
    assert r[3] == np.inf and np.isnan(r[4]) and r[5] == np.inf
    # inf - inf is NaN, inf + 2 is inf, finite rows are untouched
    a = np.array([[np.inf, -np.inf], [np.inf, 2], [2, 3]], np.float32).astype(BF16)
    r = np.asarray(vaccel.matmul(a, b)).astype(np.float32)[:, 0]
    assert np.isnan(r[0]) and r[1] == np.inf and r[2] == 5


@needs_bf16
@pytest.mark.parametrize("layout", ["a.T", "b.T", "both.T", "strided", "sliced", "batched"])
@pytest.mark.parametrize("size", ["small", "whole_tiles"])
def test_matmul_bfloat16_views(backend, variant, rng, layout, size):
    a, b = view_operands(rng, layout, BF16, *((264, 288, 256) if size == "whole_tiles" else ()))
    check_bf16(vaccel.matmul(a, b), a, b, True)
    check_bf16(vaccel.matmul(a, b, out_dtype=np.float32), a, b, False)


@needs_bf16
def test_matmul_bfloat16_arrays_mixed_and_errors(backend, variant, rng):
    a = rng.standard_normal((40, 30)).astype(BF16)
    b = rng.standard_normal((30, 20)).astype(BF16)
    da, db = vaccel.asarray(a), vaccel.asarray(b)
    assert da.dtype == BF16 and np.array_equal(da.numpy().view(np.uint16), a.view(np.uint16))
    r = vaccel.matmul(da, db)
    assert isinstance(r, vaccel.Array) and r.dtype == BF16
    check_bf16(r, a, b, True)
    out = vaccel.empty((40, 20), BF16)
    assert vaccel.matmul(a, db, out=out) is out
    check_bf16(out, a, b, True)
    host = np.empty((40, 20), np.float32)
    check_bf16(vaccel.matmul(da, b, out=host, out_dtype=np.float32), a, b, False)
    # bfloat16 with another dtype: float32, as with float16 and float32
    f = rng.standard_normal((30, 20)).astype(np.float32)
    r = vaccel.matmul(a, f)
    assert r.dtype == np.float32
    check(r, a, f)
    h = f.astype(np.float16)
    r = vaccel.matmul(da, h)
    assert r.dtype == np.float32
    check(r, a, h)
    with pytest.raises(TypeError, match="out_dtype"):
        vaccel.matmul(a, b, out_dtype=np.float16)
    with pytest.raises(TypeError, match="out_dtype"):
        vaccel.matmul(a, f, out_dtype=BF16)
    with pytest.raises(TypeError, match="out must be bfloat16"):
        vaccel.matmul(a, b, out=np.empty((40, 20), np.float16))
    # empty and k = 0
    assert vaccel.matmul(a[:0], b).shape == (0, 20)
    z = np.asarray(vaccel.matmul(a[:, :0], b[:0]))
    assert z.dtype == BF16 and z.shape == (40, 20) and not z.astype(np.float32).any()


@needs_bf16
def test_transpose_and_other_ops_bfloat16(backend, rng):
    a = (rng.standard_normal((2, 45, 70)) * 100).astype(BF16)
    r = vaccel.transpose(a)
    assert r.dtype == BF16
    assert np.array_equal(np.asarray(r).view(np.uint16), np.swapaxes(a, -1, -2).view(np.uint16))
    # ops without a bfloat16 kernel take bfloat16 values as (exact) float32
    s = vaccel.add(a, a)
    assert s.dtype == np.float32 and np.array_equal(np.asarray(s), 2 * a.astype(np.float32))
    if backend == "vulkan":
        s = vaccel.add(vaccel.asarray(a), 1.0)
        assert np.array_equal(s.numpy(), a.astype(np.float32) + 1)
