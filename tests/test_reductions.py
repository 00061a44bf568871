# Reductions, statistics and histograms against NumPy in float64 on the float32 images of the
# inputs (the values vaccel computes with), on both backends.
#
# Tolerances (every input dtype, since all are computed from their float32 values):
#   min, max, argmin, argmax, count: exact.
#   sum: |err| <= 1e-6 * sum(|x|)   (compensated float32 accumulation, one final rounding);
#   mean: the same divided by the count;
#   var, std: rtol 2e-5 plus 1e-6 * (mean^2 + var) absolute (float32 Welford/Chan merges).
# float64 inputs therefore carry also their own rounding to float32 (relative 6e-8 per element).

import warnings

import numpy as np
import pytest

import vaccel
from vaccel import reductions

VALUE_OPS = ["sum", "mean", "min", "max", "var", "std"]
INDEX_OPS = ["argmin", "argmax"]
ALL_OPS = VALUE_OPS + INDEX_OPS


def as_f64(x):
    with np.errstate(over="ignore"):
        return np.asarray(x).astype(np.float32).astype(np.float64)


def expected(op, x, axis=None, keepdims=False, ddof=0):
    v = as_f64(x)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if op in ("var", "std"):
            return getattr(np, op)(v, axis=axis, keepdims=keepdims, ddof=ddof)
        return getattr(np, op)(v, axis=axis, keepdims=keepdims)


def check(op, got, x, axis=None, keepdims=False, ddof=0):
    want = expected(op, x, axis, keepdims, ddof)
    got = np.asarray(got)
    assert got.shape == np.shape(want), (op, got.shape, np.shape(want))
    if op in ("min", "max", "argmin", "argmax"):
        if op in INDEX_OPS:
            assert got.dtype == np.int64
        np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=op)
        return
    assert got.dtype == np.float32
    v = as_f64(x)
    with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if op in ("sum", "mean"):
            atol = 1e-6 * np.abs(v).sum(axis=axis, keepdims=keepdims) + 1e-30
            if op == "mean":
                atol = atol / (v.size if axis is None else v.shape[axis])
            rtol = 2e-7
        else:
            scale = v.mean(axis=axis, keepdims=keepdims) ** 2 + v.var(axis=axis, keepdims=keepdims)
            atol = 1e-6 * (np.sqrt(scale) if op == "std" else scale) + 1e-30
            rtol = 2e-5
    close(got, want, rtol, atol, op)


def close(got, want, rtol, atol, what=""):
    """|got - want| <= atol + rtol |want| elementwise (atol may be an array); NaN matches NaN,
    infinities must match exactly."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    with np.errstate(invalid="ignore"):
        ok = same | (np.abs(got - want) <= atol + rtol * np.abs(want))
    assert ok.all(), f"{what}: got {got[~ok][:5]}, want {want[~ok][:5]}"


@pytest.fixture(autouse=True, params=["in-pass", "second-pass", "shared-memory"])
def merge_mode(request, monkeypatch):
    """Every test three times: partial states merged by the last workgroup of the pass that made
    them (the default where it applies), by a second pass (VACCEL_REDUCE_MERGE=pass), and the
    threads of a column merged through shared memory alone, without subgroup shuffles
    (VACCEL_REDUCE_SUBGROUP=0)."""
    monkeypatch.delenv("VACCEL_REDUCE_MERGE", raising=False)
    monkeypatch.delenv("VACCEL_REDUCE_SUBGROUP", raising=False)
    if request.param == "second-pass":
        monkeypatch.setenv("VACCEL_REDUCE_MERGE", "pass")
    elif request.param == "shared-memory":
        monkeypatch.setenv("VACCEL_REDUCE_SUBGROUP", "0")
    yield request.param


CASES = [  # (shape, axis)
    ((1,), None), ((7,), 0), ((257,), None), ((4097,), -1), ((100_003,), None),
    ((1, 1), 1), ((3, 5), 0), ((3, 5), 1), ((13, 1031), 0), ((13, 1031), 1), ((13, 1031), None),
    ((1000, 3), 0), ((1000, 3), 1), ((5, 70_001), 1), ((70_001, 5), 0), ((2, 3, 5, 7), 0),
    ((2, 3, 5, 7), 1), ((2, 3, 5, 7), 2), ((2, 3, 5, 7), -1), ((2, 3, 5, 7), None), ((4, 513, 9), 1),
]


@pytest.mark.parametrize("shape,axis", CASES, ids=[f"{s}-{a}" for s, a in CASES])
def test_matches_numpy(backend, rng, shape, axis):
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    for op in ALL_OPS:
        check(op, getattr(vaccel, op)(x, axis=axis), x, axis)


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
def test_keepdims_and_ddof(backend, rng, axis):
    x = rng.random((6, 11)).astype(np.float32) + 0.5
    for op in ALL_OPS:
        check(op, getattr(vaccel, op)(x, axis=axis, keepdims=True), x, axis, keepdims=True)
    for ddof in (1, 2.5):
        check("var", vaccel.var(x, axis=axis, ddof=ddof), x, axis, ddof=ddof)
        check("std", vaccel.std(x, axis=axis, ddof=ddof, keepdims=True), x, axis, True, ddof)


def test_scalar_results(backend, rng):
    x = rng.random(100).astype(np.float32)
    assert isinstance(vaccel.sum(x), np.float32)
    assert isinstance(vaccel.argmax(x), np.int64)
    assert vaccel.sum(np.float32(2.5)) == 2.5


@pytest.mark.parametrize("dtype", [np.float16, np.float64, np.int32, np.uint8, np.int64, np.bool_])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_input_dtypes(backend, rng, dtype, axis):
    if dtype == np.bool_:
        x = rng.random((37, 301)) < 0.3
    elif np.dtype(dtype).kind in "iu":
        x = rng.integers(0, 100, (37, 301)).astype(dtype)
    else:
        x = (rng.standard_normal((37, 301)) * 10).astype(dtype)
    for op in ALL_OPS:
        check(op, getattr(vaccel, op)(x, axis=axis), x, axis)


def test_float16_lengths_and_offsets(backend, rng):
    # Every start offset modulo the 8-half load unit, and lengths around it.
    base = rng.standard_normal(5000).astype(np.float16)
    for start in range(9):
        for n in (1, 7, 8, 9, 17, 4000):
            x = base[start:start + n]
            for op in ("sum", "argmin", "max", "var"):
                check(op, getattr(vaccel, op)(x), x)


def test_float32_offsets(backend, rng):
    base = rng.standard_normal(3000).astype(np.float32)
    for start in range(5):
        for n in (1, 3, 4, 5, 2990):
            x = base[start:start + n]
            for op in ("sum", "argmax", "min", "std"):
                check(op, getattr(vaccel, op)(x), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_many_short_rows(backend, rng, dtype):
    """Rows along the last axis up to 4096 long, many of them: each row goes to a group of adjacent
    threads (reduce.c SHORT_RUN). Lengths around the group sizes and the 16-byte unit, rows that
    start off that unit (an offset view, a row pitch that is not a multiple of it), NaN, ties
    (the first index wins) and float16."""
    for n in (1, 3, 16, 17, 63, 64, 65, 128, 129, 1000, 4096, 4097):
        m = 37 if n < 1000 else 9
        flat = rng.standard_normal(m * (n + 3) + 5).astype(dtype)
        for x in (flat[1:1 + m * n].reshape(m, n), flat[:m * (n + 3)].reshape(m, n + 3)[:, 2:]):
            x[0, n // 2] = np.nan
            if n > 2:
                x[1, 1] = x[1, n - 1] = 9.0    # ties: argmax must answer 1
                x[2, 0] = x[2, n - 1] = -9.0
            for op in ALL_OPS:
                check(op, getattr(vaccel, op)(x, axis=1), x, 1)
            st = vaccel.statistics(x, axis=1)
            check("var", st["var"], x, 1)
            check("min", st["min"], x, 1)
        strided = flat[:m * (n + 3)].reshape(m, n + 3)[:, 1:n + 1]   # rows ld = n + 3 apart
        for op in ("sum", "argmin", "std"):
            check(op, getattr(vaccel, op)(strided, axis=1), strided, 1)


VIEWS = {
    "every-other-column": lambda a: a[:, ::2],
    "transposed": lambda a: a.T,
    "row-slices": lambda a: a[::3],
    "column-block": lambda a: a[:, 5:100],
    "negative-stride": lambda a: a[::-1],
    "broadcast": lambda a: np.broadcast_to(a[:1], a.shape),
}


@pytest.mark.parametrize("view", list(VIEWS))
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_non_contiguous_views(backend, rng, view, axis):
    a = rng.standard_normal((301, 130)).astype(np.float32)
    x = VIEWS[view](a)
    for op in ALL_OPS:
        check(op, getattr(vaccel, op)(x, axis=axis), x, axis)


@pytest.mark.parametrize("axis", [None, 0, 1, 2])
def test_transposed_3d(backend, rng, axis):
    a = rng.standard_normal((6, 7, 40)).astype(np.float32)
    for x in (a.transpose(2, 0, 1), np.asfortranarray(a)):
        for op in ALL_OPS:
            check(op, getattr(vaccel, op)(x, axis=axis), x, axis)


def test_device_arrays(rng):
    a = rng.standard_normal((300, 70)).astype(np.float32)
    d = vaccel.asarray(a)
    for axis in (None, 0, 1):
        for op in ALL_OPS:
            check(op, getattr(vaccel, op)(d, axis=axis), a, axis)
            check(op, getattr(vaccel, op)(d[::2], axis=axis), a[::2], axis)
    h = vaccel.asarray(a.astype(np.float16))
    check("sum", vaccel.sum(h, axis=0), a.astype(np.float16), 0)
    st = vaccel.statistics(d, axis=1)
    np.testing.assert_array_equal(st["max"], a.max(axis=1))


def test_inside_a_batch(rng):
    a = rng.standard_normal((50, 40)).astype(np.float32)
    with vaccel.batch():
        s = vaccel.sum(a, axis=0)
        m = vaccel.argmax(vaccel.asarray(a), axis=1)
    check("sum", s, a, 0)
    check("argmax", m, a, 1)


def test_nan_and_inf(backend):
    nan, inf = np.nan, np.inf
    rows = np.array([
        [1.0, nan, 3.0, nan, -2.0],
        [inf, 1.0, 2.0, 3.0, 4.0],
        [inf, -inf, 0.0, 1.0, 2.0],
        [-inf, -inf, 5.0, 5.0, -inf],
        [2.0, 2.0, 2.0, 2.0, 2.0],
        [0.0, -0.0, 1.0, -1.0, -1.0],
        [nan, nan, nan, nan, nan],
        [3.0, 1.0, 4.0, 1.0, 5.0],
    ], np.float32)
    for op in ALL_OPS:
        got = getattr(vaccel, op)(rows, axis=1)
        want = expected(op, rows, 1)
        if op in ("sum", "mean", "var", "std"):
            np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=op)
        else:
            np.testing.assert_array_equal(got, want.astype(got.dtype), err_msg=op)
        for axis in (None, 0):
            got = getattr(vaccel, op)(rows, axis=axis)
            want = expected(op, rows, axis)
            if op in INDEX_OPS:
                np.testing.assert_array_equal(got, want)
            else:
                np.testing.assert_allclose(got, want, rtol=1e-6, equal_nan=True, err_msg=op)


def test_nan_positions_in_long_rows(backend, rng):
    # NaN (and ties) far apart, in different workgroups and segments.
    x = rng.random(300_001).astype(np.float32)
    x[[17, 123_456, 299_999]] = np.nan
    for op in ("min", "max", "sum", "var"):
        assert np.isnan(getattr(vaccel, op)(x)), op
    assert vaccel.argmin(x) == 17 and vaccel.argmax(x) == 17
    y = rng.random(300_001).astype(np.float32)
    y[[5000, 250_000]] = -1.0
    y[[7, 290_000]] = 2.0
    assert vaccel.argmin(y) == 5000 and vaccel.argmax(y) == 7
    z = np.full(300_001, 4.0, np.float32)
    assert vaccel.argmin(z) == 0 and vaccel.argmax(z) == 0
    s = vaccel.statistics(y.reshape(-1, 1), axis=0)
    assert s["min"][0] == -1.0 and s["max"][0] == 2.0


def test_inf_sums(backend):
    assert vaccel.sum(np.array([np.inf, 1, 2], np.float32)) == np.inf
    assert np.isnan(vaccel.sum(np.array([np.inf, -np.inf], np.float32)))
    assert vaccel.mean(np.array([np.inf] + [1.0] * 1000, np.float32)) == np.inf
    big = np.full(10, 3e38, np.float32)
    assert vaccel.sum(big) == np.inf


def test_long_sum_is_compensated(backend, rng):
    x = (rng.random(1 << 22) + 1.0).astype(np.float32)   # all positive: no cancellation to hide behind
    want = as_f64(x).sum()
    assert abs(float(vaccel.sum(x)) - want) <= 2e-7 * want
    assert abs(float(vaccel.mean(x)) - want / x.size) <= 2e-7 * want / x.size
    ones = np.ones((1 << 24) + 2, np.float32)
    assert float(vaccel.sum(ones)) == np.float32(ones.size)
    shifted = (rng.standard_normal(1 << 20) + 1000.0).astype(np.float32)
    check("var", vaccel.var(shifted), shifted)


def test_empty_inputs(backend):
    e = np.empty(0, np.float32)
    assert vaccel.sum(e) == 0.0
    with pytest.warns(RuntimeWarning):
        assert np.isnan(vaccel.mean(e))
    with pytest.warns(RuntimeWarning):
        assert np.isnan(vaccel.var(e))
    for op in ("min", "max", "argmin", "argmax"):
        with pytest.raises(ValueError):
            getattr(vaccel, op)(e)
    e2 = np.empty((0, 3), np.float32)
    np.testing.assert_array_equal(vaccel.sum(e2, axis=0), np.zeros(3, np.float32))
    assert vaccel.sum(e2, axis=1).shape == (0,)
    assert vaccel.min(e2, axis=1).shape == (0,)
    assert vaccel.argmax(e2, axis=1).shape == (0,)
    with pytest.raises(ValueError):
        vaccel.max(e2, axis=0)
    st = vaccel.statistics(e2, axis=0)
    np.testing.assert_array_equal(st["count"], [0, 0, 0])
    assert np.isnan(st["mean"]).all()


def test_bad_arguments(backend):
    x = np.ones((3, 4), np.float32)
    with pytest.raises(ValueError, match="axis"):
        vaccel.sum(x, axis=2)
    with pytest.raises(ValueError, match="axis"):
        vaccel.argmin(x, axis=-3)
    with pytest.raises(TypeError, match="axis"):
        vaccel.mean(x, axis=(0, 1))
    with pytest.raises(TypeError, match="axis"):
        vaccel.max(x, axis=1.0)
    with pytest.raises(TypeError, match="x"):
        vaccel.sum(np.array(["a", "b"]))
    with pytest.raises(TypeError, match="x"):
        vaccel.var(None)
    with pytest.raises(TypeError, match="ddof"):
        vaccel.var(x, ddof="1")
    with pytest.raises(ValueError, match="axis"):
        vaccel.statistics(x, axis=5)


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_statistics(backend, rng, axis):
    x = (rng.standard_normal((1200, 37)) * 2 + 5).astype(np.float32)
    x[3, 4] = np.nan
    st = vaccel.statistics(x, axis=axis, ddof=1)
    for key in ("mean", "var", "min", "max"):
        op = key
        check(op, st[key], x, axis, ddof=1)
    n = x.size if axis is None else x.shape[axis]
    np.testing.assert_array_equal(st["count"], np.full(np.shape(st["mean"]), n))
    assert st["count"].dtype == np.int64


def test_statistics_wide_and_strided(backend, rng):
    a = rng.standard_normal((20_000, 3)).astype(np.float32)
    for x, axis in ((a, 0), (a.T, 1), (a[::2], 0), (a[:, 1], 0)):
        st = vaccel.statistics(x, axis=axis)
        for key in ("mean", "var", "min", "max"):
            check(key, st[key], x, axis)


@pytest.fixture
def small_windows(monkeypatch):
    """Binding windows of 1000 elements (4 KiB) and few workgroups: every case below is split
    into many windows, segments and column chunks."""
    monkeypatch.setattr(reductions, "_WINDOW_ELEMS", 1000)
    yield


@pytest.mark.parametrize("shape,axis", [((100_000,), None), ((30, 5000), 1), ((5000, 30), 0), ((3, 2500), 0),
                                        ((7, 9, 300), 1), ((2000, 7), 1), ((40, 2100), None)])
@pytest.mark.parametrize("groups", ["", "3"])
def test_split_into_binding_windows(small_windows, monkeypatch, rng, shape, axis, groups):
    monkeypatch.setenv("VACCEL_REDUCE_GROUPS", groups)
    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[rng.integers(0, x.size)] = np.nan if groups else 1e3
    for op in ALL_OPS:
        check(op, getattr(vaccel, op)(x, axis=axis), x, axis)
    st = vaccel.statistics(x, axis=axis)
    check("var", st["var"], x, axis)
    h = x.astype(np.float16)
    check("sum", vaccel.sum(h, axis=axis), h, axis)


@pytest.mark.parametrize("shape,axis", [((20000, 300), 0), ((3000, 40), 0), ((200_000,), None)])
def test_merge_levels_split_too(monkeypatch, rng, shape, axis):
    """Many workgroups asked for (VACCEL_REDUCE_GROUPS): the first pass leaves hundreds of partial
    states per column and the merge levels split them again (three or more passes)."""
    monkeypatch.setenv("VACCEL_REDUCE_GROUPS", "200000")
    x = rng.standard_normal(shape).astype(np.float32) + 3
    x.flat[rng.integers(0, x.size, 5)] = [np.nan, np.inf, -7.0, 1e4, -np.inf]
    x.flat[rng.integers(0, x.size, 3)] = 1e4    # ties for argmax: the first index wins
    for op in ALL_OPS:
        check(op, getattr(vaccel, op)(x, axis=axis), x, axis)
    y = np.abs(rng.standard_normal(shape)).astype(np.float32) * 1e3 + 1e4
    for op in ("sum", "var", "argmin"):
        check(op, getattr(vaccel, op)(y, axis=axis), y, axis)


@pytest.mark.parametrize("shape,axis,window", [((1 << 20,), None, 0), ((30, 9000), 1, 20000),
                                               ((3, 50_000), 1, 0), ((70_000, 3), 0, 0), ((300, 5000), 1, 0)])
def test_merge_in_pass(monkeypatch, merge_mode, rng, shape, axis, window):
    """The states of a pass merged by its last workgroup: one dispatch where it applies (a second
    pass with VACCEL_REDUCE_MERGE=pass), the same results, and the ticket counters left at zero
    for the next call: many calls in a row, several dispatches sharing the counters (the window
    of 20000 elements splits the 30 rows into dispatches of two; 300 column blocks outgrow the
    stream's first 256 counters), every reduction kind."""
    monkeypatch.setattr(reductions, "_WINDOW_ELEMS", window)
    x = rng.standard_normal(shape).astype(np.float32)
    x.flat[rng.integers(0, x.size, 3)] = 50.0     # ties: the first index wins
    d = vaccel.asarray(x)
    with vaccel.profile() as p:
        vaccel.sum(d, axis=axis)
    if len(shape) == 1 and vaccel.get_backend() == "vulkan":
        assert p.to_dict()["dispatch_count"] == (2 if merge_mode == "second-pass" else 1)
        shuffles = vaccel.info()["device"]["subgroup_shuffle"] and merge_mode != "shared-memory"
        assert p.dispatches[0][0] == ("reduce_sg" if shuffles else "reduce")
    for _ in range(3):
        for op in ALL_OPS:
            check(op, getattr(vaccel, op)(d, axis=axis), x, axis)
        st = vaccel.statistics(d, axis=axis if axis is not None else 0) if x.ndim > 1 else vaccel.statistics(d)
        np.testing.assert_array_equal(st["count"], x.shape[axis or 0])


def test_beyond_the_device_binding_range(rng):
    """More than maxStorageBufferRange bytes in one call (128 MiB on lavapipe): split into
    windows, never refused."""
    n = 33_555_000   # 128 MiB + 2272 bytes
    x = np.ones(n, np.float32)
    x[n - 3] = -5.0
    x[7] = 9.0
    assert float(vaccel.sum(x)) == np.float32(n - 1 - 6 + 8)
    assert vaccel.argmin(x) == n - 3 and vaccel.argmax(x) == 7
    y = x.reshape(-1, 1000)
    np.testing.assert_array_equal(vaccel.max(y, axis=0)[:8], [1, 1, 1, 1, 1, 1, 1, 9])


# ---- histograms: uniform mode must be numpy.histogram exactly (edges, their dtype, counts) --------

def same_as_numpy(x, *args, **kw):
    try:
        want = np.histogram(x, *args, **kw)
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)[:20].replace("[", r"\[")):
            vaccel.histogram(x, *args, **kw)
        return
    got = vaccel.histogram(x, *args, **kw)
    np.testing.assert_array_equal(got[1], want[1])
    assert got[1].dtype == want[1].dtype
    assert got[0].dtype == np.int64
    if np.ndim(kw.get("bins", args[0] if args else 10)) == 0 and np.any(np.diff(want[1]) == 0):
        # Equal-count edges that collapse in float16 (NumPy 1.x builds them; 2.x refuses): NumPy's
        # one-step correction is not the edge rule there, so only the total is comparable.
        assert got[0].sum() == want[0].sum()
        return
    np.testing.assert_array_equal(got[0], want[0])


# float16 data with 2047-4096 bins is left out: NumPy 1.x builds float16 edges that collapse there
# and its own histogram fails (IndexError inside numpy.histogram), so it is no oracle.
@pytest.mark.parametrize("dtype,bins", [(d, b) for d in (np.float32, np.float16, np.int32, np.uint8)
                                        for b in (1, 10, 37, 256, 511, 2047, 4095, 4096, 5000)
                                        if not (d == np.float16 and 2000 < b <= 4096)])
def test_histogram_uniform_is_numpys(backend, rng, dtype, bins):
    """Bin counts well inside, at and past the kernel's 4096 shared-memory counters (global
    counters beyond them)."""
    if np.dtype(dtype).kind in "iu":
        x = rng.integers(0, 200, 30_019).astype(dtype)
    else:
        x = (rng.standard_normal(30_019) * 4).astype(dtype)
    same_as_numpy(x, bins)
    same_as_numpy(x.reshape(-1, 11), bins, range=(-1.3, 2.7))
    same_as_numpy(x[::3], bins, range=(0, 1e-3))


@pytest.mark.parametrize("bins", [1, 8, 256])
def test_histogram_peaked(backend, rng, bins):
    """Most values in one bin (every thread of a workgroup counting into the same counter at
    once), a few elsewhere."""
    x = np.full(200_003, 0.5, np.float32)
    x[rng.integers(0, x.size, 500)] = rng.uniform(-1, 2, 500).astype(np.float32)
    same_as_numpy(x, bins)
    same_as_numpy(x, bins, range=(0.5, 0.5))


def test_histogram_edge_values_and_explicit_edges(backend, rng):
    e = np.linspace(-2, 2, 17)
    x = np.concatenate([e, e.astype(np.float32), np.nextafter(e.astype(np.float32), np.float32(3)),
                        rng.standard_normal(5000)]).astype(np.float32)
    same_as_numpy(x, 16, range=(-2, 2))
    same_as_numpy(x, bins=e)
    same_as_numpy(x, bins=[-1.0, 0.0, 0.0, 0.5, 3.0])     # a repeated edge: an empty bin
    same_as_numpy(x, bins=np.array([-0.1, 0.1], np.float32))
    same_as_numpy(np.full(100, 3.0, np.float32), 4)       # equal extremes: NumPy widens by 0.5
    same_as_numpy(np.empty(0, np.float32), 3)


def test_histogram_float64(backend, rng):
    # Edges exactly NumPy's; counts from float32 images, so only values within a float32 step of
    # an edge could move (none here).
    x = rng.standard_normal(20_000)
    c, e = vaccel.histogram(x, 12)
    C, E = np.histogram(x, 12)
    np.testing.assert_array_equal(e, E)
    assert np.abs(c - C).sum() <= 2 and c.sum() == x.size


def test_histogram_nan_and_inf(backend, rng):
    x = rng.standard_normal(1000).astype(np.float32)
    x[[3, 500]] = np.nan
    same_as_numpy(x, 5, range=(-1, 1))        # NaN is not counted when the range is given
    same_as_numpy(x, 5)                       # and makes the autodetected range fail
    x[[3, 500]] = np.inf
    same_as_numpy(x, 5, range=(-1, 1))
    same_as_numpy(x, 5)


def test_histogram_large_and_split(small_windows, rng):
    x = rng.standard_normal(250_003).astype(np.float32)
    same_as_numpy(x, 64)
    same_as_numpy(x, 9000, range=(-3, 3))      # more bins than the shared-memory counters
    same_as_numpy(x, bins=np.sort(rng.standard_normal(700)))


def test_histogram_quantile_and_log(backend, rng):
    x = rng.lognormal(0.0, 1.5, 50_000).astype(np.float32)
    c, e = vaccel.histogram(x, 10, mode="quantile")
    assert c.sum() == x.size and len(e) == 11 and np.all(np.diff(e) >= 0)
    assert c.max() - c.min() <= 2
    np.testing.assert_array_equal(c, np.histogram(x, e)[0])
    c, e = vaccel.histogram(x, 8, mode="log")
    np.testing.assert_allclose(e, np.geomspace(x.min(), x.max(), 9), rtol=1e-12)
    np.testing.assert_array_equal(c, np.histogram(x, e)[0])
    c, e = vaccel.histogram(x, 5, range=(0.1, 100.0), mode="log")
    np.testing.assert_allclose(e, [0.1, 0.3981071705534972, 1.5848931924611136, 6.309573444801933, 25.118864315095795, 100.0])
    np.testing.assert_array_equal(c, np.histogram(x, e)[0])
    with pytest.raises(ValueError, match="x"):
        vaccel.histogram(x - 1.0, 4, mode="log")
    with pytest.raises(ValueError, match="range"):
        vaccel.histogram(x, 4, range=(0.0, 1.0), mode="log")


def test_histogram_bad_arguments(backend):
    x = np.arange(10, dtype=np.float32)
    with pytest.raises(ValueError, match="mode"):
        vaccel.histogram(x, mode="equal")
    with pytest.raises(ValueError, match="bins"):
        vaccel.histogram(x, bins=0)
    with pytest.raises(TypeError, match="bins"):
        vaccel.histogram(x, bins=2.5)
    with pytest.raises(ValueError, match="bins"):
        vaccel.histogram(x, bins=[3, 1, 2])
    with pytest.raises(ValueError, match="bins"):
        vaccel.histogram(x, bins="auto")
    with pytest.raises(TypeError, match="bins"):
        vaccel.histogram(x, bins=[0, 1, 2], mode="log")
    with pytest.raises(ValueError, match="range"):
        vaccel.histogram(x, range=(2, 1))
    with pytest.raises(TypeError, match="range"):
        vaccel.histogram(x, range=5)
    with pytest.raises(TypeError, match="x"):
        vaccel.histogram(None)
