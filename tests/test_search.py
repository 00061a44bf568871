"""vaccel.topk and vaccel.knn against NumPy, the reference in vaccel.cpu, and faiss."""
import numpy as np
import pytest

import vaccel
from vaccel import cpu

try:
    import faiss
except ImportError:  # faiss is an optional peer; the NumPy reference still checks everything
    faiss = None


def _np_topk(x, k, largest):
    """Plainly right: a stable sort on (NaN last, order key), ties by index."""
    key = -x.astype(np.float64) if largest else x.astype(np.float64)
    key = np.where(np.isnan(x), np.inf, key)
    pos = np.broadcast_to(np.arange(x.shape[-1]), x.shape)
    order = np.lexsort((pos, np.isnan(x), key), axis=-1)[..., :k]
    return np.take_along_axis(x, order, -1), order


@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 129), (17, 1000), (2, 70001)])
@pytest.mark.parametrize("largest", [False, True])
@pytest.mark.parametrize("kind", ["random", "ties", "nan", "inf"])
def test_topk_against_sort(rng, shape, largest, kind):
    m, n = shape
    x = rng.standard_normal(shape).astype(np.float32)
    if kind == "ties":
        x = np.round(x * 2) / 2
    elif kind == "nan":
        x[x > 0.8] = np.nan
    elif kind == "inf":
        x[x > 1.0] = np.inf
        x[x < -1.0] = -np.inf
    for k in sorted({1, min(n, 2), min(n, 10), min(n, 100), n}):
        v, i = vaccel.topk(x, k, largest=largest)
        rv, ri = _np_topk(x, k, largest)
        assert i.dtype == np.int64 and v.dtype == np.float32
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(v, rv)


@pytest.mark.parametrize("k", [2047, 2048, 2049, 4096, 5000])
def test_topk_large_k(rng, k):
    x = rng.standard_normal((3, 6000)).astype(np.float32)
    x[1] = np.round(x[1])  # many ties
    for largest in (False, True):
        v, i = vaccel.topk(x, k, largest=largest)
        rv, ri = _np_topk(x, k, largest)
        np.testing.assert_array_equal(i, ri)
        np.testing.assert_array_equal(v, rv)


def test_topk_constant_rows_take_lowest_indices():
    x = np.full((4, 3000), 7.0, np.float32)
    v, i = vaccel.topk(x, 50)
    np.testing.assert_array_equal(i, np.broadcast_to(np.arange(50), (4, 50)))


def test_topk_axis_dtypes_and_views(rng):
    x = rng.standard_normal((6, 40, 9))
    v, i = vaccel.topk(x, 5, axis=1)
    rv, ri = cpu.topk(x, 5, axis=1)
    # Ranked in float32 (as the reference), values are the input's own float64 entries.
    assert v.dtype == np.float64 and v.shape == (6, 5, 9)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(v, np.take_along_axis(x, i, axis=1))
    y = rng.integers(-50, 50, (30, 200))
    v, i = vaccel.topk(y[:, ::3], 7, largest=True)
    rv, ri = cpu.topk(y[:, ::3], 7, largest=True)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(v, rv)
    h = rng.standard_normal((9, 33)).astype(np.float16)
    v, i = vaccel.topk(h, 4)
    np.testing.assert_array_equal(i, cpu.topk(h, 4)[1])
    v, i = vaccel.topk(x[0, :, 0], 3)  # 1-D
    np.testing.assert_array_equal(i, np.argsort(x[0, :, 0], kind="stable")[:3])


def test_topk_device_array(rng):
    x = rng.standard_normal((20, 300)).astype(np.float32)
    v, i = vaccel.topk(vaccel.asarray(x), 12)
    assert isinstance(v, vaccel.Array)
    rv, ri = _np_topk(x, 12, False)
    np.testing.assert_array_equal(i, ri)
    np.testing.assert_array_equal(v.numpy(), rv)


def test_topk_bad_arguments(rng):
    x = rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="k"):
        vaccel.topk(x, 0)
    with pytest.raises(ValueError, match="k"):
        vaccel.topk(x, 6)
    with pytest.raises(TypeError, match="k"):
        vaccel.topk(x, 2.5)
    with pytest.raises(ValueError, match="axis"):
        vaccel.topk(x, 2, axis=2)
    with pytest.raises(TypeError, match="x"):
        vaccel.topk(np.array([["a", "b"]]), 1)
    v, i = vaccel.topk(x, 2)  # still usable
    assert i.shape == (3, 2)


@pytest.fixture(params=["tiled", "fused"])
def knn_path(request, monkeypatch):
    """Both knn paths: distance tiles + topk, and the fused tiles that keep only candidates
    (VACCEL_KNN_FUSED forces the choice made by size otherwise)."""
    monkeypatch.setenv("VACCEL_KNN_FUSED", "1" if request.param == "fused" else "0")
    return request.param


def _faiss_knn(q, db, k, metric):
    index = faiss.IndexFlatIP(q.shape[1]) if metric == "inner" else faiss.IndexFlatL2(q.shape[1])
    index.add(db)
    return index.search(q, k)


def _same_neighbours(D, I, RD, RI, rtol=1e-4):
    """Identical up to ties: where indices differ, the distances must agree."""
    np.testing.assert_allclose(D, RD, rtol=rtol, atol=rtol)
    differ = I != RI
    assert differ.mean() < 0.01, f"{differ.sum()} of {I.size} neighbours differ"


@pytest.mark.parametrize("shape", [(1, 1, 1), (3, 5, 7), (10, 1000, 33), (33, 70001, 8), (2, 129, 130)])
@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_knn_against_faiss(knn_path, rng, shape, metric):
    nq, nb, d = shape
    q = rng.standard_normal((nq, d)).astype(np.float32)
    db = rng.standard_normal((nb, d)).astype(np.float32)
    for k in sorted({1, min(nb, 10), 100, 4096}):
        D, I = vaccel.knn(q, db, k, metric)
        assert D.shape == I.shape == (nq, k) and I.dtype == np.int64 and D.dtype == np.float32
        kk = min(k, nb)
        assert (I[:, kk:] == -1).all()
        assert (D[:, kk:] == (-np.inf if metric == "inner" else np.inf)).all()
        RD, RI = cpu.knn(q, db, k, metric)
        _same_neighbours(D, I, RD, RI)
        if faiss is not None:
            FD, FI = _faiss_knn(q, db, kk, metric)
            _same_neighbours(D[:, :kk], I[:, :kk], FD, FI)


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_knn_whole_tiles(knn_path, monkeypatch, rng, metric, dtype):
    """Queries and rows filling whole SIMT tiles over whole slices of aligned operands (the GEMM
    kernel's interior path, loads without bounds tests), next to edge tiles."""
    monkeypatch.setenv("VACCEL_NO_COOPMAT", "1")
    q = rng.standard_normal((264, 32)).astype(dtype)
    db = rng.standard_normal((5000, 32)).astype(dtype)
    D, I = vaccel.knn(q, db, 10, metric)
    RD, RI = cpu.knn(q.astype(np.float32), db.astype(np.float32), 10, metric)
    _same_neighbours(D, I, RD, RI, rtol=1e-3 if dtype == np.float16 else 1e-5)

@pytest.mark.parametrize("metric", ["euclidean", "cosine", "cityblock", "chebyshev", "minkowski"])
def test_knn_other_metrics(knn_path, rng, metric):
    q = rng.standard_normal((9, 13)).astype(np.float32)
    db = rng.standard_normal((3001, 13)).astype(np.float32)
    D, I = vaccel.knn(q, db, 17, metric, p=3)
    RD, RI = cpu.knn(q, db, 17, metric, p=3)
    _same_neighbours(D, I, RD, RI, rtol=1e-3)


def test_knn_bitwise_hamming(rng):
    q = rng.integers(0, 256, (7, 5), dtype=np.uint8)
    db = rng.integers(0, 256, (500, 5), dtype=np.uint8)
    D, I = vaccel.knn(q, db, 20, "bitwise_hamming")
    RD, RI = cpu.knn(q, db, 20, "bitwise_hamming")
    np.testing.assert_array_equal(D, RD)
    np.testing.assert_array_equal(I, RI)  # integer distances: ties broken by index, exactly


@pytest.mark.parametrize("form", ["mask", "positions"])
def test_knn_filter_is_exact(rng, form):
    q = rng.standard_normal((6, 16)).astype(np.float32)
    db = rng.standard_normal((70001, 16)).astype(np.float32)
    allowed = rng.random(70001) < 0.01
    filt = allowed if form == "mask" else np.flatnonzero(allowed)
    D, I = vaccel.knn(q, db, 50, filter=filt)
    assert allowed[I[I >= 0]].all()
    RD, RI = cpu.knn(q, db, 50, filter=filt)
    _same_neighbours(D, I, RD, RI)
    few = np.flatnonzero(allowed)[:3]
    D, I = vaccel.knn(q, db, 5, filter=few)
    assert (np.sort(I[:, :3], axis=1) == np.sort(few)).all() and (I[:, 3:] == -1).all()
    assert np.isinf(D[:, 3:]).all()
    D, I = vaccel.knn(q, db, 4, filter=np.zeros(70001, bool))
    assert (I == -1).all() and np.isinf(D).all()
    # k > 512 with few allowed rows in two chunks: each merge row holds more than 1024 identical
    # (+inf, none) paddings, which the radix select must not let crowd out the allowed rows.
    for few in (np.flatnonzero(allowed)[:3], np.flatnonzero(allowed)[-3:]):
        D, I = vaccel.knn(q[:2], db, 700, filter=few)
        assert (np.sort(I[:, :3], axis=1) == np.sort(few)).all() and (I[:, 3:] == -1).all()


def test_knn_device_database_and_float16(knn_path, rng):
    q = rng.standard_normal((20, 32)).astype(np.float32)
    db = rng.standard_normal((5000, 32)).astype(np.float32)
    D, I = vaccel.knn(q, vaccel.asarray(db), 10)
    RD, RI = cpu.knn(q, db, 10)
    _same_neighbours(D, I, RD, RI)
    D16, I16 = vaccel.knn(q.astype(np.float16), vaccel.asarray(db.astype(np.float16)), 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I16, RI)])
    assert recall >= 0.99


def test_knn_nan_and_empty(knn_path, rng):
    q = rng.standard_normal((3, 4)).astype(np.float32)
    db = rng.standard_normal((50, 4)).astype(np.float32)
    db[7, 2] = np.nan
    D, I = vaccel.knn(q, db, 50)
    assert (I[:, -1] == 7).all() and np.isnan(D[:, -1]).all()  # NaN ranks last, still a row
    D, I = vaccel.knn(q, db[:0], 3)
    assert (I == -1).all() and np.isinf(D).all()
    D, I = vaccel.knn(q[:0], db, 3)
    assert D.shape == (0, 3) and I.shape == (0, 3)


def test_knn_bad_arguments(rng):
    q = rng.standard_normal((3, 4)).astype(np.float32)
    db = rng.standard_normal((10, 4)).astype(np.float32)
    with pytest.raises(ValueError, match="k"):
        vaccel.knn(q, db, 0)
    with pytest.raises(ValueError, match="database"):
        vaccel.knn(q, db[:, :3], 2)
    with pytest.raises(ValueError, match="metric"):
        vaccel.knn(q, db, 2, "nope")
    with pytest.raises(ValueError, match="filter"):
        vaccel.knn(q, db, 2, filter=np.ones(9, bool))
    with pytest.raises(ValueError, match="filter"):
        vaccel.knn(q, db, 2, filter=np.array([10]))
    with pytest.raises(TypeError, match="filter"):
        vaccel.knn(q, db, 2, filter=np.array([0.5]))
    D, I = vaccel.knn(q, db, 2)
    assert I.shape == (3, 2)


@pytest.mark.parametrize("kind", ["constant", "sorted", "reversed", "two-values", "sparse-mask"])
def test_topk_sampled_threshold_falls_back_when_the_guess_fails(rng, kind):
    """Long rows with small k take a sampled threshold; data that defeats the sample (all equal,
    sorted, two values) must still give the exact answer through the radix select."""
    n = 20000
    x = rng.standard_normal((3, n)).astype(np.float32)
    if kind == "constant":
        x[:] = 3.0
    elif kind == "sorted":
        x.sort(axis=1)
    elif kind == "reversed":
        x = -np.sort(x, axis=1)
    elif kind == "two-values":
        x = np.where(x > 0, 1.0, 2.0).astype(np.float32)
    for k in (1, 10, 256, 1024):
        for largest in (False, True):
            v, i = vaccel.topk(x, k, largest=largest)
            rv, ri = _np_topk(x, k, largest)
            np.testing.assert_array_equal(i, ri)
            np.testing.assert_array_equal(v, rv)
    if kind == "sparse-mask":
        db = rng.standard_normal((20000, 4)).astype(np.float32)
        for count in (3, 40, 2000):
            allowed = np.zeros(20000, bool)
            allowed[rng.choice(20000, count, replace=False)] = True
            D, I = vaccel.knn(x[:, :4], db, 50, filter=allowed)
            RD, RI = cpu.knn(x[:, :4], db, 50, filter=allowed)
            np.testing.assert_array_equal(I, RI)


# ---- the fused path (knn.c: sampled bound, candidate lists, knn_select) ------------------------

def _knn_both(monkeypatch, q, db, k, metric):
    monkeypatch.setenv("VACCEL_KNN_FUSED", "1")
    fused = vaccel.knn(q, db, k, metric)
    monkeypatch.setenv("VACCEL_KNN_FUSED", "0")
    return fused, vaccel.knn(q, db, k, metric)


def _same_as_tiled(D, I, D0, I0):
    """The fused path reports every distance computed directly, the tiled path through the GEMM
    form (direct only where it cancels): the same neighbours, distances within rounding, and
    where two indices differ their distances tie."""
    np.testing.assert_allclose(D, D0, rtol=2e-5, atol=1e-5)
    differ = I != I0
    np.testing.assert_allclose(D[differ], D0[differ], rtol=2e-5, atol=1e-5)
    assert differ.mean() <= 0.002, f"{differ.sum()} of {I.size} neighbours differ"


@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "inner", "cosine"])
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_knn_fused_samples_large_databases(monkeypatch, rng, metric, dtype):
    """Databases larger than a candidate list, so the bound comes from a sample: identical to the
    tiled path and to the float64 reference up to ties, for k from 1 to the fused maximum."""
    q = rng.standard_normal((129, 19)).astype(dtype)
    db = rng.standard_normal((9001, 19)).astype(dtype)
    for k in ((1, 10, 100, 256) if metric == "sqeuclidean" else (7, 256)):
        (D, I), (D0, I0) = _knn_both(monkeypatch, q, db, k, metric)
        _same_as_tiled(D, I, D0, I0)
        RD, RI = cpu.knn(q.astype(np.float32), db.astype(np.float32), k, metric)
        _same_neighbours(D, I, RD, RI, rtol=1e-3)


def test_knn_fused_overflow_is_recomputed(monkeypatch, rng):
    """Rows that tie everywhere fill the candidate lists: those queries are flagged and computed
    again on the tiled path, so the result is still exact (ties by the lower index)."""
    from vaccel import runtime
    q = rng.standard_normal((40, 16)).astype(np.float32)
    db = np.tile(rng.standard_normal((1, 16)).astype(np.float32), (5000, 1))
    db[::50] += 50.0   # far from every query: the k nearest tie on the common row, whatever the sample
    D = np.empty((40, 5), np.float32)
    I = np.empty((40, 5), np.uint32)
    flags = np.empty(40, np.uint32)
    runtime.run_op("knn_fused", (q, db), (D, I, flags), (0, 5))
    assert flags.all()                              # every list overflowed
    for metric in ("sqeuclidean", "inner"):
        (D, I), (D0, I0) = _knn_both(monkeypatch, q, db, 5, metric)
        np.testing.assert_array_equal(I, I0)             # the recomputation is the tiled path
        np.testing.assert_array_equal(D, D0)
    monkeypatch.setenv("VACCEL_KNN_FUSED", "1")
    D, I = vaccel.knn(q, np.tile(db[:1], (3000, 1)), 7)
    np.testing.assert_array_equal(I, np.broadcast_to(np.arange(7), (40, 7)))


def test_knn_fused_ties_nan_inf_and_cancellation(monkeypatch, rng):
    q = rng.standard_normal((40, 16)).astype(np.float32)
    db = rng.standard_normal((5000, 16)).astype(np.float32)
    dup = np.repeat(db[:50], 100, axis=0)
    rng.shuffle(dup)
    bad = db.copy()
    bad[::7, 3] = np.nan
    bad[5::11, 1] = np.inf
    qbad = q.copy()
    qbad[3, 2] = np.nan
    qbad[4, 0] = np.inf
    near = (db * 100 + 1000).astype(np.float32)
    qnear = near[:40] + (rng.standard_normal((40, 16)) * 1e-3).astype(np.float32)
    for qq, dd, metrics in [(q, dup, ("sqeuclidean", "inner", "cosine")),
                            (qbad, bad, ("sqeuclidean", "inner", "cosine")),
                            (qnear, near, ("sqeuclidean", "euclidean")),
                            (q[::2], db[::3], ("sqeuclidean",))]:
        for metric in metrics:
            (D, I), (D0, I0) = _knn_both(monkeypatch, qq, dd, 10, metric)
            if qq is qbad:
                np.testing.assert_array_equal(I, I0)
                np.testing.assert_array_equal(np.isnan(D), np.isnan(D0))
                np.testing.assert_array_equal(np.isinf(D), np.isinf(D0))
                fin = np.isfinite(D)
                np.testing.assert_allclose(D[fin], D0[fin], rtol=2e-5, atol=1e-5)
            else:
                _same_as_tiled(D, I, D0, I0)
    (D, I), _ = _knn_both(monkeypatch, qnear, near, 1, "sqeuclidean")
    RD, RI = cpu.knn(qnear, near, 1)
    np.testing.assert_array_equal(I[:, 0], np.arange(40))   # each query's own row, despite cancellation
    np.testing.assert_allclose(D, RD, rtol=1e-3)


def test_knn_fused_database_in_chunks(monkeypatch, rng):
    """A database past one binding window (128 MiB on lavapipe) is scanned in chunks."""
    db = rng.standard_normal((270_000, 128)).astype(np.float32)
    q = np.concatenate([db[[5, 269_999, 140_000]] + 1e-3, rng.standard_normal((2, 128))]).astype(np.float32)
    (D, I), (D0, I0) = _knn_both(monkeypatch, q, db, 10, "sqeuclidean")
    _same_as_tiled(D, I, D0, I0)
    np.testing.assert_array_equal(I[:3, 0], [5, 269_999, 140_000])


def test_knn_fused_bound_over_wide_ranges(monkeypatch, rng):
    """The bound from the sample (knn_tau.comp: a histogram over each row's range, then over one
    bin) stays exact when a few rows are far away (a range 1e12 times the neighbours' distances),
    when most distances tie, and when whole queries are NaN or inf."""
    q = rng.standard_normal((37, 12)).astype(np.float32)
    db = rng.standard_normal((12000, 12)).astype(np.float32)
    db[::997] *= 1e6                      # far rows: squared distances up to ~1e13
    db[5000:9000] = db[4000]              # ties
    q[7] = db[4000]
    q[8, 3] = np.nan
    q[9, 1] = np.inf
    for metric in ("sqeuclidean", "inner"):
        (D, I), (D0, I0) = _knn_both(monkeypatch, q, db, 12, metric)
        np.testing.assert_array_equal(I, I0)
        np.testing.assert_array_equal(np.isnan(D), np.isnan(D0))
        fin = np.isfinite(D0)
        np.testing.assert_allclose(D[fin], D0[fin], rtol=2e-5, atol=1e-5)
    (D, I), _ = _knn_both(monkeypatch, q, db, 12, "sqeuclidean")
    np.testing.assert_array_equal(I[7], np.r_[4000, 5000:5011])
