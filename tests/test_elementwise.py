# Elementwise ops and activations against NumPy/SciPy in float64 on both backends: awkward shapes,
# broadcasting, dtypes, strided views, NaN/inf, empty inputs, device arrays, out=, errors.
#
# Tolerances (relative, on float32 results; Vulkan's precision rules for the device path):
#   add subtract multiply maximum minimum abs negative relu clip: 2.4e-7 (correctly rounded)
#   divide, sqrt: 3 ulp; log: 3 ulp, or 2^-21 absolute for x in [0.5, 2]
#   exp sigmoid silu gelu gelu_tanh: 2e-6 (exp may err by 3 + 2|x| ulp; |x| < 10 here)
#   float16 results: 1e-3 (one float16 ulp); float64 inputs are computed in float32.
# Subnormal float32 results may be flushed to zero on GPUs: atol 16 * FLT_MIN (TINY) everywhere.

import numpy as np
import pytest
import scipy.special

import vaccel
from helpers import assert_close, device_array, device_empty

F32 = np.float32


def gelu_ref(x):
    # 0.5 x (1 + erf(x / sqrt 2)), through erfc so that the far negative tail does not cancel
    return 0.5 * x * scipy.special.erfc(-x / np.sqrt(2.0))


def gelu_tanh_ref(x):
    # 0.5 x (1 + tanh u) as x sigmoid(2u): the same function, without cancellation in the tail
    return x / (1.0 + np.exp(-2.0 * np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def exp_rtol(arg):
    """Relative error of a float32 result that goes through exp(arg): a few ulp of exp, plus the
    rounding of arg itself (half an ulp of |arg|, magnified by |arg|)."""
    with np.errstate(invalid="ignore", over="ignore"):
        r = 2e-6 + 2.4e-7 * np.abs(arg)
    return np.where(np.isfinite(r), r, 0.0)


def exp_arg(name, x):
    with np.errstate(invalid="ignore", over="ignore"):
        if name == "gelu":
            return x * x / 2
        if name == "gelu_tanh":
            return 2 * np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)
        return x


UNARY = {
    "abs": (np.abs, 2.4e-7), "negative": (np.negative, 0.0), "exp": (np.exp, 2e-6),
    "log": (np.log, 4e-7), "sqrt": (np.sqrt, 3.6e-7), "relu": (lambda x: np.maximum(x, 0), 0.0),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), 2e-6), "silu": (lambda x: x / (1 + np.exp(-x)), 2e-6),
}
EXP_BASED = ("exp", "sigmoid", "silu", "gelu", "gelu_tanh")
BINARY = {
    "add": (np.add, 2.4e-7), "subtract": (np.subtract, 2.4e-7), "multiply": (np.multiply, 2.4e-7),
    "divide": (np.divide, 3.6e-7), "maximum": (np.maximum, 0.0), "minimum": (np.minimum, 0.0),
}
SHAPES = [(1,), (7,), (1023,), (1025,), (4097,), (16385,), (3, 5), (31, 67), (2, 3, 4, 5), (2, 3, 1, 4, 5)]


def f64(x):
    """The values vaccel computes with (float32), as float64."""
    with np.errstate(over="ignore"):
        return np.asarray(x).astype(F32).astype(np.float64)


# Vulkan lets a device flush float32 subnormals to zero (NVIDIA does, in intermediates too), so a
# result within 16 * FLT_MIN of zero may come back as zero.
TINY = 2.0 ** -122


def check(got, expected, rtol, dtype=F32, what="", atol=TINY, exp_of=None):
    """got against the float64 expectation rounded to the result dtype (so overflow is inf);
    exp_of: the argument of the exp the op goes through, for its error bound."""
    got_np = np.asarray(got)
    assert got_np.dtype == dtype, f"{what}: dtype {got_np.dtype}, expected {dtype}"
    with np.errstate(over="ignore", invalid="ignore"):
        expected = np.asarray(expected).astype(dtype).astype(np.float64)
        if exp_of is not None:
            atol = atol + exp_rtol(exp_of) * np.where(np.isfinite(expected), np.abs(expected), 0.0)
    if dtype == np.float16:
        rtol, atol = max(rtol, 1e-3), np.maximum(atol, 6e-8)
    assert_close(got_np, expected, rtol, atol, what)


def positive_for(name, x):
    return np.abs(x) + 0.1 if name in ("log", "sqrt") else x


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary(backend, rng, name, shape):
    x = positive_for(name, rng.standard_normal(shape) * 3).astype(F32)
    ref, rtol = UNARY[name]
    with np.errstate(all="ignore"):
        expected = ref(f64(x))
    atol = 5e-7 if name == "log" else TINY
    exp_of = exp_arg(name, f64(x)) if name in EXP_BASED else None
    check(getattr(vaccel, name)(x), expected, rtol, what=name, atol=atol, exp_of=exp_of)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary(backend, rng, name, shape):
    a = (rng.standard_normal(shape) * 3).astype(F32)
    b = (rng.standard_normal(shape) * 3).astype(F32)
    ref, rtol = BINARY[name]
    check(getattr(vaccel, name)(a, b), ref(f64(a), f64(b)), rtol, what=name)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(1,), (1025,), (37, 129)], ids=lambda s: "x".join(map(str, s)))
def test_gelu(backend, rng, approximate, shape):
    x = (rng.standard_normal(shape) * 4).astype(F32)
    x.flat[0] = -9.5   # the far tail, where 1 + erf(x) cancels
    ref = gelu_tanh_ref if approximate == "tanh" else gelu_ref
    name = "gelu_tanh" if approximate == "tanh" else "gelu"
    check(vaccel.gelu(x, approximate=approximate), ref(f64(x)), 0.0, what=name, exp_of=exp_arg(name, f64(x)))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_tail(backend, approximate):
    x = -np.linspace(0, 13, 2001).astype(F32)
    ref = gelu_tanh_ref if approximate == "tanh" else gelu_ref
    name = "gelu_tanh" if approximate == "tanh" else "gelu"
    check(vaccel.gelu(x, approximate=approximate), ref(f64(x)), 0.0, what="gelu tail", exp_of=exp_arg(name, f64(x)))


def test_clip(backend, rng):
    x = (rng.standard_normal((17, 33)) * 3).astype(F32)
    check(vaccel.clip(x, -1, 2), np.clip(f64(x), -1, 2), 0.0, what="clip")
    check(vaccel.clip(x, None, 0.5), np.minimum(f64(x), 0.5), 0.0, what="clip hi")
    check(vaccel.clip(x, -0.5, None), np.maximum(f64(x), -0.5), 0.0, what="clip lo")
    lo = rng.standard_normal(33).astype(F32)
    hi = lo + 1
    check(vaccel.clip(x, lo, hi), np.minimum(np.maximum(f64(x), f64(lo)), f64(hi)), 0.0, what="clip arrays")
    check(vaccel.clip(x, 2, 1), np.full(x.shape, 1.0), 0.0, what="clip a_min > a_max")
    with pytest.raises(ValueError, match="a_min"):
        vaccel.clip(x, None, None)


BROADCASTS = [((5, 1), (1, 7)), ((4, 6), (6,)), ((6,), (4, 6)), ((3, 1, 5), (4, 1)), ((1,), (9,)),
              ((2, 1, 3, 1), (1, 4, 1, 8)), ((), (3, 4)), ((7, 8), (7, 1)), ((2, 3, 4, 5, 6), (5, 1))]


@pytest.mark.parametrize("sa,sb", BROADCASTS, ids=lambda s: "x".join(map(str, s)) or "0d")
def test_broadcasting(backend, rng, sa, sb):
    a = np.asarray(rng.standard_normal(sa)).astype(F32)
    b = np.asarray(rng.standard_normal(sb)).astype(F32)
    got = vaccel.subtract(a, b)
    assert np.shape(got) == np.broadcast_shapes(sa, sb)
    check(got, f64(a) - f64(b), 2.4e-7, what="broadcast subtract")
    check(vaccel.maximum(b, a), np.maximum(f64(b), f64(a)), 0.0, what="broadcast maximum")


def test_scalars(backend, rng):
    x = rng.standard_normal((9, 11)).astype(F32)
    check(vaccel.multiply(x, 2.5), f64(x) * 2.5, 2.4e-7, what="x * 2.5")
    check(vaccel.subtract(1, x), 1 - f64(x), 2.4e-7, what="1 - x")
    check(vaccel.divide(x, np.float32(3)), f64(x) / 3, 3.6e-7, what="x / float32(3)")
    check(vaccel.add(x, np.array(4.0)), f64(x) + 4, 2.4e-7, what="x + 0-d array")
    check(vaccel.maximum(x, True), np.maximum(f64(x), 1.0), 0.0, what="maximum(x, True)")
    r = vaccel.add(2.0, 3.0)
    assert float(r) == 5.0


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_dtypes(backend, rng, dtype):
    if np.dtype(dtype).kind in "biu":
        a = rng.integers(0, 100, size=(33, 17)).astype(dtype)
        b = rng.integers(1, 100, size=(33, 17)).astype(dtype)
    else:
        a = rng.standard_normal((33, 17)).astype(dtype)
        b = rng.standard_normal((33, 17)).astype(dtype)
    out_dtype = np.float16 if dtype == np.float16 else F32
    check(vaccel.add(a, b), f64(a) + f64(b), 2.4e-7, out_dtype, "add")
    check(vaccel.divide(a, b), f64(a) / f64(b), 3.6e-7, out_dtype, "divide")
    check(vaccel.exp(a if np.dtype(dtype).kind == "f" else a % 7), np.exp(f64(a if np.dtype(dtype).kind == "f" else a % 7)),
          2e-6, out_dtype, "exp")
    # float16 with a scalar stays float16 (the scalar does not count); with float32 it is float32
    if dtype == np.float16:
        check(vaccel.multiply(a, 3.0), f64(a) * 3, 2.4e-7, np.float16, "f16 * scalar")
        check(vaccel.multiply(a, b.astype(F32)), f64(a) * f64(b), 2.4e-7, F32, "f16 * f32")


def test_float16_overflow(backend):
    a = np.array([60000, -60000, 1], np.float16)
    got = vaccel.add(a, a)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, np.array([np.inf, -np.inf, 2], np.float16))


def test_views(backend, rng):
    big = rng.standard_normal((90, 40)).astype(F32)
    t = rng.standard_normal((17, 30)).astype(F32)
    v = rng.standard_normal(40).astype(F32)
    for x in (big[:, ::2], big[::3], t.T, np.asfortranarray(big[:20, :7]), big[::-2, ::-3], big[5:, 3:29],
              big[1:, 1:].reshape(89, 39)[::2], np.broadcast_to(v, (90, 40))):
        check(vaccel.exp(x), np.exp(f64(x)), 2e-6, what="exp view")
        y = x[::-1]
        check(vaccel.multiply(x, y), f64(x) * f64(y), 2.4e-7, what="multiply views")
    # a row vector against a transposed matrix, and a 4-D strided view
    check(vaccel.add(t.T, v[:17]), f64(t.T) + f64(v[:17]), 2.4e-7, what="transposed + row")
    x4 = rng.standard_normal((6, 5, 8, 9)).astype(F32)[:, ::2, 1:, ::3]
    check(vaccel.sigmoid(x4), 1 / (1 + np.exp(-f64(x4))), 2e-6, what="4-D view")
    # unaligned start (one element in)
    flat = rng.standard_normal(1001).astype(F32)
    check(vaccel.add(flat[1:], flat[:-1]), f64(flat[1:]) + f64(flat[:-1]), 2.4e-7, what="unaligned")


def test_nan_inf(backend):
    nan, inf = np.nan, np.inf
    x = np.array([nan, inf, -inf, 0.0, -0.0, 1.0, -1.0, 3e38], F32)
    y = np.array([1.0, nan, 2.0, 0.0, -1.0, 0.0, inf, 10.0], F32)
    with np.errstate(all="ignore"):
        for name, (ref, rtol) in BINARY.items():
            check(getattr(vaccel, name)(x, y), ref(f64(x), f64(y)), max(rtol, 3.6e-7), what=f"{name} nan/inf")
        for name, (ref, rtol) in UNARY.items():
            check(getattr(vaccel, name)(x), ref(f64(x)), max(rtol, 3.6e-7), what=f"{name} nan/inf",
                  exp_of=exp_arg(name, f64(x)) if name in EXP_BASED else None)
        check(vaccel.gelu(x), gelu_ref(f64(x)), 2e-6, what="gelu nan/inf", exp_of=exp_arg("gelu", f64(x)))
        check(vaccel.gelu(x, approximate="tanh"), gelu_tanh_ref(f64(x)), 2e-6, what="gelu tanh nan/inf",
              exp_of=exp_arg("gelu_tanh", f64(x)))
        check(vaccel.clip(x, -1, y), np.minimum(np.maximum(f64(x), -1), f64(y)), 0.0, what="clip nan/inf")
    got = vaccel.log(np.array([0.0, -1.0, -inf, inf], F32))
    np.testing.assert_array_equal(got[[0, 3]], [-inf, inf])
    assert np.isnan(got[1]) and np.isnan(got[2])
    assert np.isnan(vaccel.sqrt(np.array([-1.0], F32))[0])
    d = vaccel.divide(np.array([1.0, -1.0, 0.0], F32), np.zeros(3, F32))
    assert d[0] == inf and d[1] == -inf and np.isnan(d[2])


@pytest.mark.parametrize("sa,sb", [((0,), (0,)), ((3, 0), (3, 0)), ((0, 1), (1, 5)), ((0,), ())])
def test_empty(backend, sa, sb):
    a, b = np.ones(sa, F32), np.ones(sb, F32)
    got = vaccel.add(a, b)
    assert isinstance(got, np.ndarray) and got.shape == np.broadcast_shapes(sa, sb) and got.dtype == F32
    assert vaccel.exp(np.ones(sa, np.float16)).dtype == np.float16


def test_device_arrays(backend, rng):
    a = rng.standard_normal((40, 30)).astype(F32)
    b = rng.standard_normal(30).astype(F32)
    da, db = device_array(a), device_array(b)
    r = vaccel.add(da, db)
    assert isinstance(r, vaccel.Array) and r.shape == (40, 30)
    check(r.numpy(), f64(a) + f64(b), 2.4e-7, what="Array + Array")
    r2 = vaccel.exp(vaccel.multiply(r, 0.5))
    assert isinstance(r2, vaccel.Array)
    check(r2.numpy(), np.exp((f64(a) + f64(b)) * 0.5), 3e-6, what="chained Arrays")
    check(vaccel.multiply(da[::3], a[::3]).numpy(), f64(a[::3]) ** 2, 2.4e-7, what="Array view * host")
    h = device_array(a.astype(np.float16))
    r16 = vaccel.relu(h)
    assert isinstance(r16, vaccel.Array) and r16.dtype == np.float16
    check(r16.numpy(), np.maximum(f64(a.astype(np.float16)), 0), 0.0, np.float16, "relu f16 Array")


def test_out(backend, rng):
    a = rng.standard_normal((20, 8)).astype(F32)
    b = rng.standard_normal((20, 8)).astype(F32)
    out = np.empty((20, 8), F32)
    assert vaccel.add(a, b, out=out) is out
    check(out, f64(a) + f64(b), 2.4e-7, what="out=")
    big = np.zeros((20, 16), F32)
    strided = big[:, ::2]
    vaccel.multiply(a, b, out=strided)
    check(strided, f64(a) * f64(b), 2.4e-7, what="strided out")
    assert (big[:, 1::2] == 0).all()
    dout = device_empty((20, 8))
    assert vaccel.subtract(a, b, out=dout) is dout
    check(dout.numpy(), f64(a) - f64(b), 2.4e-7, what="Array out")
    vaccel.add(a, b, out=a)  # in place
    check(a, f64(out), 2.4e-7, what="in place")
    with pytest.raises(ValueError, match="out"):
        vaccel.add(a, b, out=np.empty((20, 9), F32))
    with pytest.raises(TypeError, match="out"):
        vaccel.add(a, b, out=np.empty((20, 8), np.float64))


def test_errors(backend):
    with pytest.raises(ValueError, match=r"x1 with shape \(3,\) and x2 with shape \(4,\)"):
        vaccel.add(np.ones(3, F32), np.ones(4, F32))
    with pytest.raises(ValueError, match="x2"):
        vaccel.multiply(np.ones((2, 3), F32), np.ones((3, 2), F32))
    with pytest.raises(TypeError, match="x1"):
        vaccel.add(np.array(["a"]), 1.0)
    with pytest.raises(TypeError, match="x2"):
        vaccel.add(np.ones(3, F32), None)
    with pytest.raises(TypeError, match="x"):
        vaccel.exp(np.array([1 + 2j]))
    with pytest.raises(ValueError, match="approximate"):
        vaccel.gelu(np.ones(3, F32), approximate="fast")


def test_batch_results_stay_on_device(rng):
    a = rng.standard_normal(1000).astype(F32)
    with vaccel.batch():
        r = vaccel.exp(vaccel.add(a, 1.0))
        assert isinstance(r, vaccel.Array)
    check(r.numpy(), np.exp(f64(a) + 1), 2e-6, what="batch")


def test_beyond_binding_range(rng):
    """More elements than one binding window holds (lavapipe: 128 MiB): the work is split."""
    vaccel.set_backend("vulkan")
    limit = vaccel.info()["device"]["max_storage_buffer_range"]
    if limit > 1 << 28:
        pytest.skip("the device's binding range is too large to exceed cheaply")
    n = limit // 4 + 4099
    a = np.ones(n, F32)
    a[::1000] = rng.standard_normal(a[::1000].shape)
    got = vaccel.multiply(a, 2.0)
    np.testing.assert_array_equal(got[::1000], a[::1000] * 2)
    assert got[-1] == 2.0 and got[n // 2] == 2.0
    # strided: a column vector against a row vector, (rows, cols) beyond the window
    cols = 4096
    rows = n // cols + 3
    c = rng.standard_normal((rows, 1)).astype(F32)
    r = rng.standard_normal(cols).astype(F32)
    got = vaccel.add(c, r)
    for i in (0, rows // 2, rows - 1):
        np.testing.assert_allclose(got[i], f64(c[i]) + f64(r), rtol=2.4e-7)
    del got
    # a transposed input through the strided path
    m = np.ones((rows, cols), F32)
    m[:, 7] = 3.0
    got = vaccel.exp(m.T)
    assert got.shape == (cols, rows)
    np.testing.assert_allclose(got[7, ::997], np.exp(3.0), rtol=2e-6)
    np.testing.assert_allclose(got[8, ::997], np.exp(1.0), rtol=2e-6)


# ---- softmax and layer_norm ---------------------------------------------------------------------
#
# softmax: relative 2e-6 plus the exp bound of x - max; layer_norm: absolute 1e-5 on the normalised
# values (plus the rounding of the mean, 4e-7 |mean| / std), scaled by |weight|, plus |bias| 2.4e-7.

ROW_SHAPES = [(1, 1), (1, 7), (3, 129), (5, 1025), (2, 8193), (3, 40001), (200, 3), (4, 5, 6)]


def softmax_ref(x, axis):
    return scipy.special.softmax(f64(x), axis=axis)


def check_softmax(got, x, axis=-1, dtype=F32, what="softmax"):
    xs = f64(x)
    with np.errstate(invalid="ignore"):
        arg = xs - np.max(xs, axis=axis, keepdims=True) if xs.size else xs
    with np.errstate(invalid="ignore", over="ignore"):
        expected = softmax_ref(x, axis)
    check(got, expected, 2e-6, dtype, what, exp_of=arg)


@pytest.mark.parametrize("shape", ROW_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_softmax(backend, rng, shape):
    x = (rng.standard_normal(shape) * 4).astype(F32)
    check_softmax(vaccel.softmax(x), x)
    for axis in range(-len(shape), len(shape)):
        check_softmax(vaccel.softmax(x, axis=axis), x, axis, what=f"softmax axis {axis}")


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32])
def test_softmax_dtypes(backend, rng, dtype):
    x = (rng.standard_normal((9, 300)) * 3).astype(dtype)
    check_softmax(vaccel.softmax(x), x, dtype=np.float16 if dtype == np.float16 else F32)


def test_softmax_special(backend):
    nan, inf = np.nan, np.inf
    x = np.array([[1, 2, 3, 4, 5], [1, nan, 3, 4, 5], [1, inf, 3, 4, 5], [-inf] * 5, [1, -inf, 3, -inf, 5],
                  [1e30, -1e30, 1e30, 0, 0], [-100, -100, -100, -100, -100]], F32)
    for cols in (5, 1100):    # subgroup rows and workgroup rows
        xx = np.concatenate([x] * (cols // 5), axis=1) if cols > 5 else x
        got = np.asarray(vaccel.softmax(xx))
        assert np.isnan(got[1:4]).all()
        check_softmax(got, xx)


def test_softmax_views_arrays_out(backend, rng):
    big = rng.standard_normal((64, 90)).astype(F32)
    for x in (big.T, big[:, ::2], big[::3, 1:], big[::-1]):
        check_softmax(vaccel.softmax(x), x, what="softmax view")
    d = device_array(big)
    r = vaccel.softmax(d)
    assert isinstance(r, vaccel.Array)
    check_softmax(r.numpy(), big)
    check_softmax(vaccel.softmax(d, axis=0).numpy(), big, 0, what="softmax Array axis 0")
    out = np.empty_like(big)
    assert vaccel.softmax(big, out=out) is out
    check_softmax(out, big)
    out2 = np.empty_like(big)
    vaccel.softmax(big, axis=0, out=out2)
    check_softmax(out2, big, 0)
    dout = device_empty(big.shape)
    assert vaccel.softmax(big, out=dout) is dout
    check_softmax(dout.numpy(), big)
    for shape in [(0, 5), (3, 0), (0,)]:
        r = vaccel.softmax(np.ones(shape, F32))
        assert r.shape == shape and r.dtype == F32
    with pytest.raises(ValueError, match="axis"):
        vaccel.softmax(big, axis=2)
    with pytest.raises(ValueError, match="x"):
        vaccel.softmax(3.0)


def layer_norm_ref(x, w=None, b=None, eps=1e-5):
    v = f64(x)
    mean = v.mean(axis=-1, keepdims=True)
    var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
    r = (v - mean) / np.sqrt(var + eps)
    r = r * (1.0 if w is None else f64(w))
    return r + (0.0 if b is None else f64(b))


def check_layer_norm(got, x, w=None, b=None, eps=1e-5, dtype=F32, what="layer_norm"):
    v = f64(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = v.mean(axis=-1, keepdims=True) if v.size else v
        std = np.sqrt(((v - mean) ** 2).mean(axis=-1, keepdims=True) + eps) if v.size else v
        expected = layer_norm_ref(x, w, b, eps)
        scale = np.abs(1.0 if w is None else f64(w))
        atol = (1e-5 + 4e-7 * np.abs(mean) / std) * scale + 2.4e-7 * np.abs(0.0 if b is None else f64(b))
    check(got, expected, 1e-5, dtype, what, atol=np.where(np.isfinite(atol), atol, 0.0))


@pytest.mark.parametrize("shape", ROW_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_layer_norm(backend, rng, shape):
    x = (rng.standard_normal(shape) * 3 + 5).astype(F32)
    n = shape[-1]
    w = rng.standard_normal(n).astype(F32)
    b = rng.standard_normal(n).astype(F32)
    check_layer_norm(vaccel.layer_norm(x), x)
    check_layer_norm(vaccel.layer_norm(x, w, b), x, w, b)
    check_layer_norm(vaccel.layer_norm(x, weight=w), x, w)
    check_layer_norm(vaccel.layer_norm(x, bias=b, eps=0.1), x, None, b, 0.1)


def test_layer_norm_dtypes_views_special(backend, rng):
    x = (rng.standard_normal((11, 260)) * 2).astype(F32)
    w = rng.standard_normal(260)   # float64 weight: used as float32
    check_layer_norm(vaccel.layer_norm(x.astype(np.float16), w), x.astype(np.float16), w, dtype=np.float16)
    check_layer_norm(vaccel.layer_norm(x.astype(np.float64)), x)
    big = rng.standard_normal((40, 90)).astype(F32)
    for v in (big.T, big[:, ::2], big[::3]):
        check_layer_norm(vaccel.layer_norm(v), v, what="layer_norm view")
    d = device_array(big)
    r = vaccel.layer_norm(d, device_array(big[0]), big[1])
    assert isinstance(r, vaccel.Array)
    check_layer_norm(r.numpy(), big, big[0], big[1])
    s = np.array([[1, 2, np.nan, 4], [1, np.inf, 3, 4], [5, 5, 5, 5], [1e18, -1e18, 0, 1]], F32)
    got = np.asarray(vaccel.layer_norm(s))
    assert np.isnan(got[0]).all() and np.isnan(got[1]).all()
    np.testing.assert_array_equal(got[2], 0.0)
    check_layer_norm(got[2:], s[2:])
    with pytest.raises(ValueError, match="weight"):
        vaccel.layer_norm(big, np.ones(89, F32))
    with pytest.raises(ValueError, match="bias"):
        vaccel.layer_norm(big, None, np.ones((2, 90), F32))
    with pytest.raises(ValueError, match="eps"):
        vaccel.layer_norm(big, eps=-1.0)
    assert vaccel.layer_norm(np.ones((0, 4), F32)).shape == (0, 4)
