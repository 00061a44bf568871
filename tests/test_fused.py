# Fused elementwise chains (vaccel.fuse / vaccel.compile_expr) against the same expression composed
# in NumPy/SciPy in float64, on both backends: broadcasting, scalars and literals, device arrays,
# the limits of the program (6 inputs, 24 operations, 16 scalars) and the parser's errors.
#
# Tolerance: each operation rounds once in float32, so a chain of k operations is held to k times
# the single-op bound (relative, plus the exp bound of gelu's argument).

import numpy as np
import pytest
import scipy.special

import vaccel
from helpers import assert_close, device_array
from test_elementwise import check, exp_arg, f64

F32 = np.float32


def gelu64(x):
    return 0.5 * x * scipy.special.erfc(-x / np.sqrt(2.0))


def test_gelu_bias_chain(backend, rng):
    x = rng.standard_normal((33, 257)).astype(F32)
    w = rng.standard_normal(257).astype(F32)
    b = rng.standard_normal(257).astype(F32)
    got = vaccel.fuse("gelu(x * w + b)", x=x, w=w, b=b)
    pre = f64(x) * f64(w) + f64(b)
    # x * w + b rounds twice: bound that error by 2 ulp of |x w| + |b| before gelu (slope <= 1.13)
    atol = 1.13 * 2.4e-7 * (np.abs(f64(x) * f64(w)) + np.abs(f64(b)))
    check(got, gelu64(pre), 2e-6, atol=atol, exp_of=exp_arg("gelu", pre), what="gelu(x*w+b)")
    f = vaccel.compile_expr("gelu(x * w + b)")
    assert f.names == ("x", "w", "b")
    check(f(x=x, w=w, b=b), gelu64(pre), 2e-6, atol=atol, exp_of=exp_arg("gelu", pre), what="compiled")


def test_chain_broadcasting_and_views(backend, rng):
    a = rng.standard_normal((40, 1)).astype(F32)
    b = rng.standard_normal((1, 30)).astype(F32)
    c = rng.standard_normal((30, 40)).astype(F32).T
    d = rng.standard_normal(30).astype(F32)
    got = vaccel.fuse("maximum(a - b, c) * d + abs(c) / 2", a=a, b=b, c=c, d=d)
    exp = np.maximum(f64(a) - f64(b), f64(c)) * f64(d) + np.abs(f64(c)) / 2
    check(got, exp, 1e-6, atol=1e-6 * (np.abs(f64(a)) + np.abs(f64(b)) + 1) * np.abs(f64(d)), what="broadcast chain")


def test_scalars_and_literals(backend, rng):
    x = rng.standard_normal(1000).astype(F32)
    check(vaccel.fuse("x * a + 1", x=x, a=2.5), f64(x) * 2.5 + 1, 5e-7, atol=5e-7, what="named scalar")
    check(vaccel.fuse("2 * x - 0.5", x=x), 2 * f64(x) - 0.5, 5e-7, atol=5e-7, what="literals")
    check(vaccel.fuse("(1 / 3) * x", x=x), f64(x) * np.float32(1 / 3), 5e-7, what="folded literal")
    check(vaccel.fuse("x ** 2 + x ** 3 - -x + +x", x=x), f64(x) ** 2 + f64(x) ** 3 + 2 * f64(x), 1e-6,
          atol=1e-6 * (np.abs(f64(x)) ** 3 + 1), what="powers and signs")
    check(vaccel.fuse("x", x=x), f64(x), 0.0, what="identity")
    check(vaccel.fuse("clip(x, lo, hi)", x=x, lo=-0.5, hi=np.float32(0.5)), np.clip(f64(x), -0.5, 0.5), 0.0,
          what="clip scalars")
    check(vaccel.fuse("gelu(x, approximate='tanh') + sigmoid(x) + silu(x) + relu(x)", x=x),
          (f64(x) / (1 + np.exp(-2 * np.sqrt(2 / np.pi) * (f64(x) + 0.044715 * f64(x) ** 3)))
           + 1 / (1 + np.exp(-f64(x))) + f64(x) / (1 + np.exp(-f64(x))) + np.maximum(f64(x), 0)),
          1e-5, atol=1e-6, what="activations")
    r = vaccel.fuse("a * 2 + 1", a=3.0)
    assert float(r) == 7.0


def test_scalar_values_reuse_the_pipeline(rng):
    vaccel.set_backend("vulkan")
    x = rng.standard_normal(100).astype(F32)
    f = vaccel.compile_expr("exp(x * s) + t")
    f(x=x, s=1.0, t=2.0)
    before = vaccel.memory_stats()["pipelines_created"]
    for s in (0.5, 1.5, -2.0):
        check(f(x=x, s=s, t=s + 1), np.exp(f64(x) * s) + s + 1, 5e-6, atol=1e-6, what="scalar values")
    assert vaccel.memory_stats()["pipelines_created"] == before


def test_repeated_calls_on_device_arrays(rng):
    """A call whose operands are all device Arrays (and numbers) keeps what it worked out under its
    signature (shapes, dtypes, strides, which inputs are numbers); later calls with that signature
    take it and only their buffers, offsets and numbers change. Each is checked, the views that
    start at other offsets and the broadcast operands included; other signatures get plans of
    their own, aligned NumPy operands too."""
    vaccel.set_backend("vulkan")
    f = vaccel.compile_expr("maximum(x * s, y) + b")
    big = rng.standard_normal((40, 24)).astype(F32)
    dbig = vaccel.asarray(big)
    bvec = rng.standard_normal(24).astype(F32)
    db = vaccel.asarray(bvec)
    for call in range(4):
        lo = call * 3                                # same shape and strides, another offset
        x, y = big[lo:lo + 10], big[lo + 11:lo + 31:2]
        s = (0.5, -2.0, 3, 1.25)[call]               # a float, then an int: numbers either way
        got = f(x=dbig[lo:lo + 10], y=dbig[lo + 11:lo + 31:2], s=s, b=db)
        assert isinstance(got, vaccel.Array)
        check(got.numpy(), np.maximum(f64(x) * s, f64(y)) + f64(bvec), 1e-6, atol=1e-6, what=f"call {call}")
        out = vaccel.empty((10, 24))
        assert f(x=dbig[lo:lo + 10], y=dbig[lo + 11:lo + 31:2], s=s, b=db, out=out) is out
        check(out.numpy(), np.maximum(f64(x) * s, f64(y)) + f64(bvec), 1e-6, atol=1e-6, what=f"out {call}")
    assert len(f._plans) == 2                        # with and without out=
    check(f(x=dbig[:5], y=dbig[5:10], s=1.0, b=1.5).numpy(),
          np.maximum(f64(big[:5]), f64(big[5:10])) + 1.5, 1e-6, atol=1e-6, what="b a number")
    assert len(f._plans) == 3
    # Aligned NumPy operands with non-negative strides get plans of their own (a NumPy result);
    # each later call with their signature takes it, other arrays and numbers each time.
    for call in range(3):
        hx, hy = big[call:call + 5], big[call + 6:call + 16:2]
        got = f(x=hx, y=hy, s=1.0 + call, b=bvec)
        assert isinstance(got, np.ndarray)
        check(got, np.maximum(f64(hx) * (1 + call), f64(hy)) + f64(bvec), 1e-6, atol=1e-6, what=f"host {call}")
    assert len(f._plans) == 4
    # Reversed or misaligned host views take no plan (copies stand in for them).
    rev = big[4::-1]
    check(f(x=rev, y=big[5:10], s=2.0, b=bvec), np.maximum(f64(rev) * 2, f64(big[5:10])) + f64(bvec), 1e-6,
          atol=1e-6, what="reversed host view")
    raw = np.zeros(5 * 24 * 4 + 2, np.uint8)
    mis = raw[2:].view(F32).reshape(5, 24)
    assert not mis.flags.aligned
    mis[...] = big[:5]
    check(f(x=mis, y=big[5:10], s=2.0, b=bvec), np.maximum(f64(big[:5]) * 2, f64(big[5:10])) + f64(bvec), 1e-6,
          atol=1e-6, what="misaligned host view")
    assert len(f._plans) == 4
    h = rng.standard_normal((6, 24)).astype(np.float16)
    dh = vaccel.asarray(h)
    for _ in range(2):
        check(vaccel.add(dh, dh).numpy(), 2 * f64(h), 1e-3, np.float16, "float16 Arrays")
        check(vaccel.add(dh, 1).numpy(), f64(h) + 1, 1e-3, np.float16, "float16 and an int")


def test_common_subexpressions_and_registers(backend, rng):
    x = rng.standard_normal(500).astype(F32) * 0.5
    y = rng.standard_normal(500).astype(F32) * 0.5
    expr = "exp(x * y) + exp(x * y) * sqrt(abs(x * y)) - log(1 + abs(x * y))"
    xy = f64(x) * f64(y)
    exp = np.exp(xy) + np.exp(xy) * np.sqrt(np.abs(xy)) - np.log(1 + np.abs(xy))
    check(vaccel.fuse(expr, x=x, y=y), exp, 1e-5, atol=1e-6, what="cse")
    # 24 operations, many values alive at once
    terms = " + ".join(f"exp(x * {i + 1}) * y" for i in range(7))        # 7 mul + 7 exp + 7 mul + 6 add
    with pytest.raises(ValueError, match="instructions"):
        vaccel.compile_expr(terms)(x=x, y=y)
    terms = " + ".join(f"exp(x * {i + 1}) * y" for i in range(6))        # 6 + 6 + 6 + 5 = 23
    exp = sum(np.exp(f64(x) * (i + 1)) * f64(y) for i in range(6))
    check(vaccel.fuse(terms, x=x, y=y), exp, 2e-5, atol=1e-5, what="23 operations")


def test_six_inputs(backend, rng):
    arrs = {n: rng.standard_normal((7, 9)).astype(F32) for n in "abcdef"}
    got = vaccel.fuse("a + b * c - d / (abs(e) + 1) + minimum(f, a)", **arrs)
    v = {n: f64(a) for n, a in arrs.items()}
    exp = v["a"] + v["b"] * v["c"] - v["d"] / (np.abs(v["e"]) + 1) + np.minimum(v["f"], v["a"])
    check(got, exp, 1e-6, atol=1e-6 * 10, what="six inputs")
    arrs["g"] = arrs["a"]
    with pytest.raises(ValueError, match="6 array inputs"):
        vaccel.fuse("a + b + c + d + e + f + g", **arrs)
    # scalars do not count against the six
    check(vaccel.fuse("a + b + c + d + e + f + g", **dict(arrs, g=1.0)), sum(v.values()) + 1, 1e-6, atol=1e-5,
          what="six arrays and a scalar")


def test_dtypes_and_arrays(backend, rng):
    x = rng.standard_normal((5, 64)).astype(np.float16)
    w = rng.standard_normal(64).astype(np.float16)
    got = vaccel.fuse("relu(x * w) + 1", x=x, w=w)
    check(got, np.maximum(f64(x) * f64(w), 0) + 1, 2e-3, np.float16, "float16 chain")
    got = vaccel.fuse("x * w", x=x, w=w.astype(np.float64))
    check(got, f64(x) * f64(w), 2.4e-7, F32, "float16 * float64 is float32")
    dx = device_array(x.astype(F32))
    r = vaccel.fuse("sigmoid(x) * w", x=dx, w=w.astype(F32))
    assert isinstance(r, vaccel.Array)
    check(r.numpy(), 1 / (1 + np.exp(-f64(x))) * f64(w), 5e-6, what="Array chain")
    out = np.empty((5, 64), F32)
    assert vaccel.fuse("x + w", x=x.astype(F32), w=w.astype(F32), out=out) is out
    assert vaccel.fuse("x + 1", x=np.ones((0, 3), F32)).shape == (0, 3)


def test_errors():
    x = np.ones(4, F32)
    for expr, token in [("x < y", "x < y"), ("np.exp(x)", "np.exp"), ("foo(x)", "foo"), ("x ** y", r"x \*\* y"),
                        ("x[0]", r"x\[0\]"), ("exp + 1", "exp"), ("'a' * x", "'a'"), ("lambda: x", "lambda"),
                        ("gelu(x, approximate='fast')", "approximate"), ("exp(x, x)", "exp"), ("x +", "valid"),
                        ("x and y", "x and y"), ("x % 2", "x % 2"), ("True + x", "True")]:
        with pytest.raises(ValueError, match=token):
            vaccel.compile_expr(expr)
    with pytest.raises(TypeError, match="expr"):
        vaccel.compile_expr(3)
    f = vaccel.compile_expr("x + y")
    with pytest.raises(TypeError, match="y"):
        f(x=x)
    with pytest.raises(TypeError, match="z"):
        f(x=x, y=x, z=x)
    with pytest.raises(ValueError, match=r"x with shape \(4,\) and y with shape \(5,\)"):
        f(x=x, y=np.ones(5, F32))
    with pytest.raises(TypeError, match="y"):
        f(x=x, y="text")
    many = " + ".join(f"x * {i + 2}" for i in range(11))   # 11 distinct literals + ... fine; 17 is not
    vaccel.compile_expr(many)(x=x)
    with pytest.raises(ValueError, match="scalars"):
        vaccel.compile_expr(" + ".join(f"s{i}" for i in range(17)) + " + x")(x=x, **{f"s{i}": 1.0 for i in range(17)})
