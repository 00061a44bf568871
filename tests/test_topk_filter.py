"""vaccel.topk's two paths (csrc/ops/topk.c): the row kernel, and the filter path for long rows
(sample -> bound -> one streaming pass keeping candidates -> sort, flagged rows recomputed). Both
are checked against a plain stable sort; VACCEL_TOPK_FILTER forces the path, so the filter path
runs on small inputs too, and VACCEL_TOPK_CAP shrinks its candidate lists to force the recompute."""
import numpy as np
import pytest

import vaccel
from test_search import _np_topk


@pytest.fixture(params=["row", "filter"])
def path(request, monkeypatch):
    monkeypatch.setenv("VACCEL_TOPK_FILTER", "1" if request.param == "filter" else "0")
    return request.param


def kernels(fn):
    """The kernels fn dispatches (after a first call has built every pipeline)."""
    fn()
    with vaccel.profile() as p:
        out = fn()
    return {k for k, _ in p.dispatches}, out


def check(x, k, largest=False):
    v, i = vaccel.topk(x, k, largest=largest)
    rv, ri = _np_topk(np.asarray(x), k, largest)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(v, rv)
    assert v.dtype == np.asarray(x).dtype and i.dtype == np.int64
    return v, i


@pytest.mark.parametrize("n", [8, 9, 129, 1000, 4099, 20011])
def test_random_rows(path, rng, n):
    x = rng.standard_normal((3, n)).astype(np.float32)
    for k in sorted({1, min(n, 10), min(n, 100), min(n, 1000), n}):
        for largest in (False, True):
            check(x, k, largest)


def test_k_4096_and_whole_rows(path, rng):
    x = rng.standard_normal((2, 4103)).astype(np.float32)
    x[1] = np.round(x[1] * 4)  # heavy ties
    for k in (4096, 4103):
        for largest in (False, True):
            check(x, k, largest)


def test_paths_take_long_rows_and_agree_bitwise(rng, monkeypatch):
    x = rng.standard_normal((4, 40000)).astype(np.float32)
    x[0, ::7] = -0.0
    x[1, 5::11] = 0.0
    names, (v, i) = kernels(lambda: vaccel.topk(x, 100))
    assert {"topk_sample", "topk_filter", "knn_select"} <= names  # the default for long rows
    monkeypatch.setenv("VACCEL_TOPK_FILTER", "0")
    names0, (v0, i0) = kernels(lambda: vaccel.topk(x, 100))
    assert "topk_filter" not in names0
    np.testing.assert_array_equal(i, i0)
    np.testing.assert_array_equal(v.view(np.uint32), v0.view(np.uint32))
    monkeypatch.delenv("VACCEL_TOPK_FILTER")
    assert "topk_filter" not in kernels(lambda: vaccel.topk(x[:, :5000], 10))[0]  # short rows


def test_overflow_is_recomputed_exactly(rng, monkeypatch):
    # 16 slots per row: every row overflows (its sample alone passes r >= 10 entries and the row
    # passes ~1000), and with k = 100 > 16 the sort cannot produce the answer: only the exact
    # recomputation of the flagged rows can.
    monkeypatch.setenv("VACCEL_TOPK_CAP", "16")
    x = rng.standard_normal((3, 20000)).astype(np.float32)
    names, _ = kernels(lambda: vaccel.topk(x, 100))
    assert "topk_filter" in names and "knn_select" in names
    for k in (10, 100):
        for largest in (False, True):
            check(x, k, largest)


@pytest.mark.parametrize("largest", [False, True])
def test_adversarial_rows(path, rng, largest):
    n = 20000
    ramp = np.linspace(-3, 3, n, dtype=np.float32)
    period = np.tile(np.array([5, 1, 4, 2, 3, 0, 6, 7], np.float32), n // 8)   # phase-locked to blocks
    x = np.stack([
        np.full(n, 7.0, np.float32),                 # all equal: every entry passes the bound
        ramp, ramp[::-1].copy(),                     # sorted ascending and descending
        period,
        np.where(rng.random(n) < 0.97, np.nan, rng.standard_normal(n)).astype(np.float32),  # few numbers
        np.where(rng.random(n) < 0.3, np.nan, rng.standard_normal(n)).astype(np.float32),
        np.where(rng.random(n) < 0.5, np.inf, -np.inf).astype(np.float32),
        np.where(rng.random(n) < 0.5, 0.0, -0.0).astype(np.float32),               # +0 and -0 tie
        np.full(n, np.nan, np.float32),
    ])
    x[5, 17] = np.inf
    x[5, 18] = -np.inf
    for k in (1, 10, 100, 1000):
        check(x, k, largest)


def test_float16_rows(path, rng):
    x = rng.standard_normal((3, 20011)).astype(np.float16)
    x[1, ::3] = np.float16(0.5)   # float16 ties
    x[2, 100] = np.nan
    for k in (10, 1000):
        for largest in (False, True):
            v, i = check(x, k, largest)
            assert v.dtype == np.float16
    v, i = vaccel.topk(vaccel.asarray(x), 100, largest=True)
    rv, ri = _np_topk(x, 100, True)
    assert isinstance(v, vaccel.Array) and v.dtype == np.float32
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(v.numpy(), rv.astype(np.float32))


def test_strided_views(path, rng):
    base = rng.standard_normal((6, 20021)).astype(np.float32)
    for view in (base[::2, 3:], base[1:, 1:20000], base[:, ::2]):  # odd offsets, row strides, a copy
        for k in (10, 100):
            check(view, k)
            check(view, k, largest=True)
    h = base.astype(np.float16)
    check(h[::2, 5:], 50)
    check(h[1:4, 1:], 50, largest=True)


def test_device_arrays_in_a_batch(path, rng):
    x = rng.standard_normal((3, 20000)).astype(np.float32)
    xa = vaccel.asarray(x)
    with vaccel.batch():
        v1, i1 = vaccel.topk(xa, 10)
        v2, i2 = vaccel.topk(xa, 300, largest=True)
    for v, i, k, largest in ((v1, i1, 10, False), (v2, i2, 300, True)):
        rv, ri = _np_topk(x, k, largest)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(v.numpy(), rv)


def _long_rows(rng):
    x = rng.standard_normal((3, 40009)).astype(np.float32)
    x[0, ::5] = np.nan
    x[1, -3:] = -50.0               # the best entries in the last window
    x[1, 8000:8004] = 60.0          # and the largest at a window boundary
    x[2] = np.round(x[2])           # ties across windows
    return x


def test_rows_in_column_windows(path, rng, monkeypatch):
    # Rows longer than one binding are taken in column windows (merged exactly by the row
    # kernel; sampled and filtered window by window by the filter path). VACCEL_TOPK_COLUMNS
    # shrinks the windows so that small rows take that path.
    monkeypatch.setenv("VACCEL_TOPK_COLUMNS", "8192")
    x = _long_rows(rng)
    for k in (1, 10, 1000):
        for largest in (False, True):
            check(x, k, largest)
    check(x.astype(np.float16)[:, 3:], 50)


def test_column_windows_with_overflow(rng, monkeypatch):
    monkeypatch.setenv("VACCEL_TOPK_COLUMNS", "8192")
    monkeypatch.setenv("VACCEL_TOPK_CAP", "16")
    x = _long_rows(rng)
    names, _ = kernels(lambda: vaccel.topk(x, 100))
    assert "topk_filter" in names
    for largest in (False, True):
        check(x, 100, largest)


def test_row_longer_than_one_binding(rng):
    # A row over maxStorageBufferRange (128 MiB on lavapipe): the filter path, window by window.
    # (Only the filter path here: lavapipe stops an invocation after 65535 loop iterations, so
    # its row kernel cannot take windows of tens of millions of entries; the row kernel's
    # windows are covered by test_rows_in_column_windows.)
    limit = vaccel.runtime.device_info()["max_storage_buffer_range"]
    n = limit // 4 + 4099
    if n * 4 > 600 << 20:
        pytest.skip(f"a row over one binding ({limit} bytes) is too large for a test here")
    x = rng.standard_normal(n, dtype=np.float32)
    x[-3:] = -50.0
    x[5] = -60.0
    v, i = vaccel.topk(x, 10)
    thr = np.partition(x, 9)[9]
    cand = np.flatnonzero(x <= thr)
    order = cand[np.argsort(x[cand], kind="stable")][:10]
    np.testing.assert_array_equal(i, order)
    np.testing.assert_array_equal(v, x[order])


def test_matrix_larger_than_one_binding(path, rng):
    # Rows are taken in windows that each fit maxStorageBufferRange (128 MiB on lavapipe).
    rng_bytes = vaccel.runtime.device_info()["max_storage_buffer_range"]
    n = 1_000_003
    m = rng_bytes // (4 * n) + 2
    if m * n * 4 > 600 << 20:
        pytest.skip(f"a matrix over one binding ({rng_bytes} bytes) is too large for a test here")
    x = np.empty((m, n), np.float32)
    for r in range(m):
        x[r] = rng.standard_normal(n, dtype=np.float32)
    x[m - 1, -5:] = -10.0   # the last row's best entries sit at its very end
    k = 10
    v, i = vaccel.topk(x, k)
    part = np.argpartition(x, k, axis=1)[:, :k + 1]
    for r in range(m):
        thr = np.sort(x[r, part[r]])[k - 1]
        cand = np.flatnonzero(x[r] <= thr)
        order = cand[np.argsort(x[r, cand], kind="stable")][:k]
        np.testing.assert_array_equal(i[r], order)
        np.testing.assert_array_equal(v[r], x[r, order])


def test_index_base_of_the_op(path, rng):
    # knn reduces each database chunk with the op's idx_base: reported indices are column + base.
    x = rng.standard_normal((3, 20000)).astype(np.float32)
    base = 123_457
    for k, largest in ((10, False), (700, True)):
        v = np.empty((3, k), np.float32)
        raw = np.empty((3, k), np.uint32)
        vaccel.runtime.run_op("topk", (x,), (v, raw), (k, int(largest), 0, 0, 0, base))
        rv, ri = _np_topk(x, k, largest)
        np.testing.assert_array_equal(raw.astype(np.int64), ri + base)
        np.testing.assert_array_equal(v, rv)
