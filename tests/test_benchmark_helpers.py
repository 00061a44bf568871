# The helpers the benchmark checks rest on (benchmarks/cases/_common.py, harness.collect_impls,
# the pq family's recall, plots.recall_qps_points): the exact k-NN reference against a brute-force
# float64 ranking (ties, float16 storage, chunk edges), the two recall measures on hand-made
# results, which queries recall is measured on, and which recall the recall-vs-QPS plot uses.

import numpy as np
import pytest

from benchmarks.cases._common import knn_reference, recall, recall_1
from benchmarks.cases.pq import RECALL_MIN_QUERIES, RECALL_PAIRS, recall_figures, recall_rows
from benchmarks.harness import Skip, collect_impls
from benchmarks.plots import recall_axis_label, recall_qps_points


def brute_force(q, db, rows, k, storage):
    """k nearest by a full float64 distance matrix from differences; ties by the lower index."""
    cast = np.float16 if storage == "float16" else np.float32
    A = q[rows].astype(cast).astype(np.float64)
    B = db.astype(cast).astype(np.float64)
    d = ((A[:, None, :] - B[None, :, :]) ** 2).sum(2)
    I = np.array([np.lexsort((np.arange(len(B)), r))[:k] for r in d]).reshape(len(rows), k)
    return np.take_along_axis(d, I, 1), I


@pytest.mark.parametrize("nb, d, k, chunk, storage", [
    (1, 3, 1, 1 << 16, "float32"),          # one row
    (997, 5, 10, 64, "float32"),            # many chunks, a short last one
    (300, 7, 40, 7, "float32"),             # chunks smaller than k
    (256, 4, 256, 100, "float32"),          # k = nb
    (1500, 16, 10, 1 << 16, "float16"),     # the float16-rounded data's neighbours
    (2000, 9, 25, 333, "float16"),
])
def test_knn_reference_is_the_exact_ranking(rng, nb, d, k, chunk, storage):
    db = rng.standard_normal((nb, d)).astype(np.float32)
    if nb > 10:                             # exact duplicates: ties go to the lower index
        db[rng.integers(0, nb, nb // 4)] = db[rng.integers(0, nb, nb // 4)]
    q = rng.standard_normal((12, d)).astype(np.float32)
    q[0] = db[nb // 2]                      # distance 0 (clamped, never negative)
    rows = np.array([0, 3, 4, 11])
    D, I = knn_reference(q, db, rows, k, storage, chunk=chunk)
    D_ref, I_ref = brute_force(q, db, rows, k, storage)
    assert D.shape == I.shape == (4, k) and I.dtype == np.int64
    np.testing.assert_allclose(D, D_ref, rtol=1e-9, atol=1e-9)
    assert (D >= 0).all() and D[0, 0] == 0
    # Ids may differ from the brute force only where their distances tie (float64 rounding of two
    # formulas); with exact duplicates the lower index comes first in both.
    np.testing.assert_allclose(brute_force(q, db, rows, nb, storage)[0][:, :k], D, rtol=1e-9, atol=1e-9)
    same = I == I_ref
    assert same.mean() > 0.95, same
    for r in range(len(rows)):
        assert len(set(I[r])) == k
        for c in np.flatnonzero(~same[r]):
            assert abs(D_ref[r, c] - D[r, c]) <= 1e-9 * max(1.0, D[r, c])


def test_knn_reference_no_rows(rng):
    D, I = knn_reference(rng.standard_normal((3, 4)), rng.standard_normal((9, 4)), np.array([], np.int64), 2)
    assert D.shape == I.shape == (0, 2)


def test_recall_measures():
    gt = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]])
    I = np.array([[1, 0, 9, 9], [4, 5, 6, 7], [9, 8, -1, -1]])
    assert recall(I, gt, 2) == pytest.approx((2 + 2 + 2) / 6)
    assert recall(I, gt, 4) == pytest.approx((2 + 4 + 2) / 12)
    assert recall(I, gt, 10) == recall(I, gt, 4)            # k beyond the columns: all of them
    assert recall_1(I, gt, 1) == pytest.approx(1 / 3)       # only row 1 returns 4 first
    assert recall_1(I, gt, 2) == pytest.approx(1.0)
    I[2] = [9, 10, 11, -1]                                  # row 2 misses its nearest (8)
    assert recall_1(I, gt, 4) == pytest.approx(2 / 3)
    assert recall(I, gt, 4) == pytest.approx((2 + 4 + 3) / 12)


def test_recall_rows_and_figures(rng):
    np.testing.assert_array_equal(recall_rows(100, 20_000), np.arange(100))        # small: every query
    np.testing.assert_array_equal(recall_rows(1000, 1_000_000), np.arange(1000))   # within RECALL_PAIRS
    rows = recall_rows(1000, 10_000_000)                                         # the 10M case
    assert rows.size == RECALL_PAIRS // 10_000_000 == 100 and rows[0] == 0 and rows[-1] == 999
    assert np.all(np.diff(rows) >= 9)                                            # evenly spread
    assert recall_rows(1000, 10**9).size == RECALL_MIN_QUERIES
    assert recall_rows(10, 10**9).size == 10

    gt_rows = np.array([0, 2])
    gt = np.tile(np.arange(10), (2, 1)) + np.array([[0], [100]])
    I = np.full((3, 10), -1)
    I[0] = np.arange(10)[::-1]                    # all 10 exact neighbours, in another order
    I[1] = 555                                    # a query recall does not look at
    I[2, :3] = [101, 100, 102]                    # the nearest (100) among 3 of the 10
    out = recall_figures(I, {"recall": (gt_rows, gt)})
    assert out == {"recall_at_10": pytest.approx(13 / 20), "recall_1_at_10": 1.0, "recall_queries": 2}


def test_recall_qps_prefers_the_nearest_neighbour_recall():
    def rec(op, impl, t, nprobe, **recalls):
        return {"status": "ok", "op": op, "impl": impl, "median_s": t, "params": {"nq": 100, "nprobe": nprobe},
                **recalls}
    records = [rec("ivfpq/x", "vaccel", 0.5, 1, recall_at_10=0.2, recall_1_at_10=0.6),
               rec("ivfpq/x", "vaccel", 1.0, 4, recall_at_10=0.3, recall_1_at_10=0.9),
               rec("ivfpq/x", "faiss", 0.25, 1, recall_at_10=0.2, recall_1_at_10=0.6),
               rec("old/y", "vaccel", 1.0, None, recall_at_10=0.7),     # written before recall_1_at_10
               rec("mixed/z", "vaccel", 1.0, 1, recall_at_10=0.1),
               rec("mixed/z", "vaccel", 1.0, 2, recall_at_10=0.2, recall_1_at_10=0.5)]
    pts = recall_qps_points(records)
    assert pts["ivfpq/x"]["vaccel"] == [(0.6, 200.0, 1), (0.9, 100.0, 4)]
    assert pts["ivfpq/x"]["faiss"] == [(0.6, 400.0, 1)]
    assert pts["old/y"]["vaccel"] == [(0.7, 100.0, None)]
    assert recall_axis_label(records, "ivfpq/x").startswith("1-recall@10")
    assert recall_axis_label(records, "old/y").startswith("10-recall@10")
    assert "where recorded" in recall_axis_label(records, "mixed/z")


def test_collect_impls():
    class Peers:
        vaccel = None

    def skip(P, n):
        raise Skip(f"too large: {n}")

    calls = []

    def vaccel_impl(P, n):
        calls.append(n)
        return "v"
    impls, skipped = collect_impls(Peers, [("vaccel", vaccel_impl), ("numpy", lambda P, n: f"np{n}"),
                                           ("cupy", lambda P, n: None), ("faiss", skip)], 7)
    assert impls == ["np7"] and calls == []
    assert skipped == {"vaccel": "vaccel not importable (see the header)", "faiss": "too large: 7"}
    Peers.vaccel = object()
    impls, skipped = collect_impls(Peers, [("vaccel", vaccel_impl), ("faiss", skip)], 3)
    assert impls == ["v"] and calls == [3] and skipped == {"faiss": "too large: 3"}
