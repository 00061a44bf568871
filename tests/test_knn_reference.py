# The NumPy references vaccel.cpu.topk and vaccel.cpu.knn are the oracle of every search test:
# here they are checked against oracles someone else wrote — NumPy's stable sort, faiss's flat
# indexes and faiss.knn, SciPy's distances — on random data at awkward sizes.

import numpy as np
import pytest

from vaccel import cpu

from helpers import oracle

faiss = pytest.importorskip("faiss")


def sort_oracle(x, k, largest):
    """Best k along the last axis by a full stable sort: NaN last, ties by the lower index."""
    x = np.asarray(x, np.float32)
    key = np.where(np.isnan(x), np.inf, -x if largest else x)
    nan = np.isnan(x)
    # Primary: NaN or not; secondary: the key; stable, so ties stay in index order.
    order = np.lexsort((key, nan), axis=-1)[..., :k]
    return np.take_along_axis(x, order, axis=-1), order


def assert_neighbours(D, I, D_ref, I_ref, dist, rtol=1e-5, atol=1e-5):
    """D matches D_ref; where I differs from I_ref the chosen rows must be ties within tolerance:
    their true distance (dist(q, i), float64) equals the reference distance at that rank."""
    assert D.dtype == np.float32 and I.dtype == np.int64
    assert D.shape == D_ref.shape and I.shape == I_ref.shape
    np.testing.assert_allclose(D, D_ref, rtol=rtol, atol=atol)
    bad = np.argwhere(I != I_ref)
    assert len(bad) <= max(2, I.size // 100), f"{len(bad)} of {I.size} neighbours differ"
    for q, j in bad:
        assert I[q, j] >= 0 and I_ref[q, j] >= 0, (q, j, I[q, j], I_ref[q, j])
        true = dist(q, I[q, j])
        assert abs(true - D_ref[q, j]) <= atol + rtol * abs(D_ref[q, j]), (q, j, true, D_ref[q, j])
    for row in I:
        got = row[row >= 0]
        assert np.unique(got).size == got.size, "a row repeats a neighbour"


@pytest.mark.parametrize("shape,k", [((1, 1), 1), ((3, 7), 7), ((5, 100), 1), ((4, 1000), 37),
                                     ((2, 4097), 4096), ((64, 333), 100)])
@pytest.mark.parametrize("largest", [False, True])
def test_topk_matches_stable_sort(rng, shape, k, largest):
    x = rng.standard_normal(shape).astype(np.float32)
    v, i = cpu.topk(x, k, largest=largest)
    ev, ei = sort_oracle(x, k, largest)
    assert v.dtype == np.float32 and i.dtype == np.int64
    np.testing.assert_array_equal(i, ei)
    np.testing.assert_array_equal(v, ev)
    expected_sorted = np.sort(x, axis=1)[:, ::-1][:, :k] if largest else np.sort(x, axis=1)[:, :k]
    np.testing.assert_array_equal(v, expected_sorted)


@pytest.mark.parametrize("largest", [False, True])
def test_topk_ties_nan_and_inf(rng, largest):
    # Few distinct values: many ties, which must come out in index order.
    x = rng.integers(0, 4, size=(50, 61)).astype(np.float32)
    x[rng.random(x.shape) < 0.15] = np.nan
    x[rng.random(x.shape) < 0.05] = np.inf
    x[rng.random(x.shape) < 0.05] = -np.inf
    x[3] = np.nan                   # a row of NaN only
    x[4] = 2.0                      # a row of ties only
    for k in (1, 2, 17, 60, 61):
        v, i = cpu.topk(x, k, largest=largest)
        ev, ei = sort_oracle(x, k, largest)
        np.testing.assert_array_equal(i, ei)
        np.testing.assert_array_equal(v, ev)
    np.testing.assert_array_equal(cpu.topk(x[4:5], 5)[1], [[0, 1, 2, 3, 4]])


def test_topk_axis_and_dtypes(rng):
    x = rng.standard_normal((3, 40, 5))
    for axis in (0, 1, 2, -1, -2):
        v, i = cpu.topk(x, 2, axis=axis)
        assert v.dtype == np.float64                # ranked as float32, values as given
        moved = np.moveaxis(x.astype(np.float32), axis, -1)
        ev, ei = sort_oracle(moved, 2, False)
        np.testing.assert_array_equal(i, np.moveaxis(ei, -1, axis))
        np.testing.assert_array_equal(v, np.take_along_axis(x, i, axis=axis))
        np.testing.assert_array_equal(v.astype(np.float32), np.moveaxis(ev, -1, axis))
    v, i = cpu.topk(np.arange(10, dtype=np.int32)[::-1], 3, largest=True)
    assert v.dtype == np.int32
    np.testing.assert_array_equal(i, [0, 1, 2])
    np.testing.assert_array_equal(v, [9, 8, 7])
    with pytest.raises(ValueError, match="k"):
        cpu.topk(x, 0)
    with pytest.raises(ValueError, match="k"):
        cpu.topk(x, 6)


@pytest.mark.parametrize("nb,nq,d,k", [(1000, 1, 7, 10), (5, 3, 1, 10), (2000, 31, 64, 100),
                                       (1, 1, 1, 1), (777, 4, 13, 777)])
@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_knn_matches_faiss_flat(rng, metric, nb, nq, d, k):
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    index = faiss.IndexFlatL2(d) if metric == "sqeuclidean" else faiss.IndexFlatIP(d)
    index.add(xb)
    Df, If = index.search(xq, k)
    D, I = cpu.knn(xq, xb, k, metric)
    # faiss pads with -1 and the worst value of its float range or inf; ours is +-inf.
    assert (I[If < 0] == -1).all() and (If[I < 0] == -1).all()
    pad = If < 0
    assert (D[pad] == (-np.inf if metric == "inner" else np.inf)).all()
    exact = oracle(xq, xb, metric)
    scale = np.abs(exact).max() if exact.size else 1.0
    Df = np.where(pad, D, Df)
    assert_neighbours(D, I, Df, If, lambda q, i: exact[q, i], rtol=1e-4, atol=1e-5 * scale)
    # And D is the float32 rounding of the exact distance of the returned rows.
    got = np.take_along_axis(exact, np.maximum(I, 0), axis=1).astype(np.float32)
    np.testing.assert_array_equal(np.where(pad, D, got), D)


@pytest.mark.skipif(not hasattr(faiss, "knn"), reason="faiss.knn not available")
def test_knn_matches_faiss_knn(rng):
    xb = rng.standard_normal((3001, 24)).astype(np.float32)
    xq = rng.standard_normal((50, 24)).astype(np.float32)
    for metric, fm in (("sqeuclidean", faiss.METRIC_L2), ("inner", faiss.METRIC_INNER_PRODUCT)):
        Df, If = faiss.knn(xq, xb, 20, metric=fm)
        D, I = cpu.knn(xq, xb, 20, metric)
        exact = oracle(xq, xb, metric)
        assert_neighbours(D, I, Df, If, lambda q, i: exact[q, i], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("metric,p", [("euclidean", 2.0), ("cosine", 2.0), ("cityblock", 2.0),
                                      ("chebyshev", 2.0), ("minkowski", 3.0), ("bitwise_hamming", 2.0)])
def test_knn_other_metrics_match_scipy(rng, metric, p):
    if metric == "bitwise_hamming":
        xb = rng.integers(0, 256, size=(500, 9), dtype=np.uint8)
        xq = rng.integers(0, 256, size=(7, 9), dtype=np.uint8)
    else:
        xb = rng.standard_normal((500, 11)).astype(np.float32)
        xq = rng.standard_normal((7, 11)).astype(np.float32)
    k = 25
    exact = oracle(xq, xb, metric, p).astype(np.float32)
    ev, ei = sort_oracle(exact, k, False)
    D, I = cpu.knn(xq, xb, k, metric, p=p)
    # Distances rounded to float32 by both: identical, ties included.
    np.testing.assert_allclose(D, ev, rtol=1e-6)
    if metric == "bitwise_hamming":
        np.testing.assert_array_equal(I, ei)      # integer distances: many ties, index order
    else:
        assert_neighbours(D, I, ev, ei, lambda q, i: exact[q, i], rtol=1e-6, atol=1e-6)


def test_knn_cosine_matches_faiss_ip_on_normalized(rng):
    xb = rng.standard_normal((800, 16)).astype(np.float32)
    xq = rng.standard_normal((9, 16)).astype(np.float32)
    nb = xb / np.linalg.norm(xb, axis=1, keepdims=True)
    nq = xq / np.linalg.norm(xq, axis=1, keepdims=True)
    index = faiss.IndexFlatIP(16)
    index.add(nb)
    Df, If = index.search(nq, 10)
    D, I = cpu.knn(xq, xb, 10, "cosine")
    exact = oracle(xq, xb, "cosine")
    assert_neighbours(D, I, 1 - Df, If, lambda q, i: exact[q, i], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["mask", "positions"])
def test_knn_filter_matches_faiss_selector(rng, kind):
    xb = rng.standard_normal((1500, 12)).astype(np.float32)
    xq = rng.standard_normal((6, 12)).astype(np.float32)
    allowed = np.sort(rng.choice(1500, size=40, replace=False)).astype(np.int64)
    index = faiss.IndexFlatL2(12)
    index.add(xb)
    params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
    k = 50                                          # more than the allowed rows: padding
    Df, If = index.search(xq, k, params=params)
    if kind == "mask":
        filt = np.zeros(1500, bool)
        filt[allowed] = True
    else:
        filt = rng.permutation(np.concatenate([allowed, allowed[:5]]))   # order, repeats ignored
    D, I = cpu.knn(xq, xb, k, "sqeuclidean", filter=filt)
    assert set(I[I >= 0].tolist()) <= set(allowed.tolist())
    assert ((I >= 0).sum(axis=1) == 40).all()
    assert (I[:, 40:] == -1).all() and (D[:, 40:] == np.inf).all()
    exact = oracle(xq, xb, "sqeuclidean")
    assert_neighbours(D[:, :40], I[:, :40], Df[:, :40], If[:, :40], lambda q, i: exact[q, i],
                      rtol=1e-4, atol=1e-4)
    D0, I0 = cpu.knn(xq, xb, 3, "inner", filter=np.zeros(1500, bool))
    assert (I0 == -1).all() and (D0 == -np.inf).all()
    D1, I1 = cpu.knn(xq, xb, 3, "inner", filter=np.array([0], np.int64))
    assert (I1[:, 0] == 0).all() and (I1[:, 1:] == -1).all()


def test_knn_nan_rows_last_and_ties_by_row(rng):
    xb = rng.standard_normal((30, 5)).astype(np.float32)
    xb[[2, 9]] = np.nan
    xb[20] = xb[10]                                 # exact duplicates: the lower row first
    xq = xb[10:11] + 0
    D, I = cpu.knn(xq, xb, 30, "sqeuclidean")
    assert I[0, 0] == 10 and I[0, 1] == 20 and D[0, 0] == D[0, 1] == 0
    assert list(I[0, -2:]) == [2, 9] and np.isnan(D[0, -2:]).all()
    D, I = cpu.knn(xq, xb, 30, "inner")
    assert list(I[0, -2:]) == [2, 9] and np.isnan(D[0, -2:]).all()
    assert (np.diff(D[0, :-2]) <= 0).all()
