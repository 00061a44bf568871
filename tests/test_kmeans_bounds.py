"""KMeans.fit with Hamerly's bounds (the default on the device) against the same fit computing
every row in full (VACCEL_KMEANS_BOUNDS=0): the same labels, centres, inertia and iterations to
the bit; the bounds themselves against a float64 oracle; and the fit against scikit-learn."""
import numpy as np
import pytest

import vaccel
from vaccel import cluster, runtime

from test_kmeans import assert_nearest, blobs, exact_sq, sklearn_kmeans


def fit(monkeypatch, bounds, X, k, sample_weight=None, **kw):
    monkeypatch.setenv("VACCEL_KMEANS_BOUNDS", "1" if bounds else "0")
    return vaccel.KMeans(k, **kw).fit(X, sample_weight=sample_weight)


def fit_both(monkeypatch, X, k, sample_weight=None, **kw):
    """(with bounds, without), after checking that they agree to the bit."""
    a = fit(monkeypatch, True, X, k, sample_weight, **kw)
    p = fit(monkeypatch, False, X, k, sample_weight, **kw)
    np.testing.assert_array_equal(a.labels_, p.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, p.cluster_centers_)
    assert a.inertia_ == p.inertia_
    assert a.n_iter_ == p.n_iter_
    n = X.shape[0]
    assert p._rows_assigned == [n] * len(p._rows_assigned)
    assert a._rows_assigned[0] == n                 # the first assignment is always in full
    assert all(0 <= r <= n for r in a._rows_assigned)
    return a, p


@pytest.mark.parametrize("data", ["blobs", "uniform", "gaussian"])
def test_same_fit_with_and_without_bounds(monkeypatch, rng, data):
    if data == "blobs":
        X = blobs(rng, 3000, 6, 12, spread=1.0)
    elif data == "uniform":
        X = rng.random((2500, 3)).astype(np.float32)
    else:   # one cloud in 32 dimensions, over-partitioned: few rows can skip
        X = rng.standard_normal((2000, 32)).astype(np.float32)
    init = X[rng.choice(X.shape[0], 12, replace=False)]
    a, _ = fit_both(monkeypatch, X, 12, init=init, max_iter=25, tol=0.0)
    n, steps = X.shape[0], a._rows_assigned
    if data == "blobs":
        # separated clusters: after a few iterations almost every row keeps its centre unseen
        assert sum(steps[3:]) < 0.2 * n * len(steps[3:])
    assert_nearest(a.labels_, X, a.cluster_centers_)


def test_sample_weights_and_several_inits(monkeypatch, rng):
    X = blobs(rng, 1500, 4, 6, spread=2.5)
    w = rng.uniform(0.0, 3.0, 1500)
    w[:30] = 0.0
    for init in ("k-means++", "random"):
        a, _ = fit_both(monkeypatch, X, 6, sample_weight=w, init=init, n_init=3, random_state=11, max_iter=30,
                        tol=0.0)
        assert_nearest(a.labels_, X, a.cluster_centers_)


def test_empty_clusters_reseeded_while_bounds_are_in_use(monkeypatch):
    # A cluster empties at the fifth iteration (seed found by search): its centre jumps to the
    # farthest row, and every bound that depended on it must move with it.
    seen = []
    relocate = cluster._Device._relocate

    def spy(self, *args, **kw):
        seen.append(len(self.rows_assigned))
        return relocate(self, *args, **kw)
    monkeypatch.setattr(cluster._Device, "_relocate", spy)
    for seed in (169, 197):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((80, 2)).astype(np.float32)
        X[:40] *= 0.05
        seen.clear()
        fit_both(monkeypatch, X, 20, init="random", n_init=1, random_state=seed, tol=0.0, max_iter=40)
        assert max(seen) >= 3
    # Empty at the first iteration (two equal initial centres), as in scikit-learn.
    X = blobs(np.random.default_rng(3), 500, 2, 4)
    fit_both(monkeypatch, X, 4, init=X[[0, 0, 1, 2]], max_iter=20, tol=0.0)


def test_ties_duplicate_points_and_centres(monkeypatch, rng):
    # Integer points: many rows are exactly as far from two centres (a tie goes to the lower
    # index), duplicated rows, and duplicated initial centres.
    X = rng.integers(0, 5, (600, 3)).astype(np.float32)
    init = X[:8].copy()
    init[5] = init[2]
    a, _ = fit_both(monkeypatch, X, 8, init=init, max_iter=15, tol=0.0)
    D = exact_sq(X, a.cluster_centers_)
    best = D.min(axis=1)
    first = np.argmax(D <= best[:, None], axis=1)
    np.testing.assert_array_equal(a.labels_, first)    # exact ties: the lowest index
    with pytest.warns(cluster.ConvergenceWarning):
        fit_both(monkeypatch, np.repeat(X[:3], [50, 40, 30], axis=0), 5, random_state=2, n_init=2)


@pytest.mark.parametrize("n,d,k", [(400, 1, 5), (300, 4, 1), (48, 3, 48), (700, 130, 3)])
def test_edge_shapes(monkeypatch, rng, n, d, k):
    X = blobs(rng, n, d, max(k, 2), spread=1.5)
    a, _ = fit_both(monkeypatch, X, k, random_state=5, max_iter=20, tol=0.0)
    if k == 1:
        assert a._rows_assigned[1:] == [0] * (len(a._rows_assigned) - 1)   # no other centre: never
    if k == n:
        np.testing.assert_allclose(a.inertia_, 0.0, atol=1e-9)


def test_float16_float64_and_views(monkeypatch, rng):
    X = blobs(rng, 900, 8, 5, spread=2.0)
    init = X[:5].copy()
    for xv in (X.astype(np.float16), X.astype(np.float64), np.repeat(X, 2, axis=0)[::2]):
        fit_both(monkeypatch, xv, 5, init=init, max_iter=25, tol=0.0)


def test_many_rows_change_late(monkeypatch, rng):
    # Uniform data in 2-D with many centres: Lloyd keeps moving rows for dozens of iterations, so
    # the bounds must keep catching the rows that change.
    X = rng.random((1500, 2)).astype(np.float32)
    init = X[:30] * 0.2            # all centres start in one corner
    a, p = fit_both(monkeypatch, X, 30, init=init, max_iter=60, tol=0.0)
    assert a.n_iter_ > 30
    steps = a._rows_assigned
    assert max(steps[20:]) > 0 and min(steps[1:]) < 1500


@pytest.mark.parametrize("tile,split", [("128,128,8,8,8", "1"), ("64,64,16,4,4", "3"), ("128,16,16,4,4", "2")])
def test_every_tile_split_and_windows(monkeypatch, rng, tile, split):
    # The exact distance of a row is summed by as many threads as the tile gives it; the bounds pass
    # must use the same. Centres split across workgroups and X in windows of 256 rows too.
    monkeypatch.setenv("VACCEL_KMEANS_TILE", tile)
    monkeypatch.setenv("VACCEL_KMEANS_SPLIT", split)
    X = blobs(rng, 1100, 7, 20, spread=2.0)
    init = X[:20].copy()
    whole, _ = fit_both(monkeypatch, X, 20, init=init, max_iter=12, tol=0.0)
    monkeypatch.setattr(cluster, "_MAX_ROWS", 256)
    parts = fit(monkeypatch, True, X, 20, init=init, max_iter=12, tol=0.0)
    np.testing.assert_array_equal(parts.labels_, whole.labels_)
    np.testing.assert_array_equal(parts.cluster_centers_, whole.cluster_centers_)
    assert parts._rows_assigned == whole._rows_assigned


def test_bounded_assignment_and_its_lower_bounds(rng):
    # The op on its own: the lower bounds hold against float64 distances, and after the centres
    # move the labels and distances equal a full assignment's while fewer rows are computed.
    X = blobs(rng, 2000, 5, 10, spread=1.0)
    mu = X.astype(np.float64).mean(0).astype(np.float32)
    c0 = (X[rng.choice(2000, 10, replace=False)] - mu).astype(np.float32)
    lab0, d0, lower = runtime.empty(2000, np.uint32), runtime.empty(2000, np.float32), runtime.empty(2000, np.float32)
    listed = np.zeros(1, np.uint32)
    runtime.run_op("kmeans_assign_bounded", (X, mu, c0), (lab0, d0, lower, listed), (0, 0))
    assert listed[0] == 2000
    xs = (X - mu).astype(np.float64)   # the rows as the kernels see them

    def check(labels, lower, c):
        D = exact_sq(xs, c)
        lab = labels.numpy().astype(np.int64)
        want = runtime.empty(2000, np.uint32)
        runtime.run_op("kmeans_assign", (X, c, mu), (want,), (0, 1, 0, 0))
        np.testing.assert_array_equal(lab, want.numpy())
        others = D.copy()
        others[np.arange(len(lab)), lab] = np.inf
        low = lower.numpy().astype(np.float64)
        assert (low <= np.sqrt(others.min(axis=1))).all()
        return D
    check(lab0, lower, c0)
    for step in range(3):
        c1 = (c0 + rng.normal(0, 0.05, c0.shape)).astype(np.float32)
        lab1, d1 = runtime.empty(2000, np.uint32), runtime.empty(2000, np.float32)
        runtime.run_op("kmeans_assign_bounded", (X, mu, c1, c0, lab0), (lab1, d1, lower, listed), (1, 0))
        D = check(lab1, lower, c1)
        plain_l, plain_d = runtime.empty(2000, np.uint32), runtime.empty(2000, np.float32)
        runtime.run_op("kmeans_assign", (X, c1, mu), (plain_l, plain_d), (0, 1, 1, 0))
        np.testing.assert_array_equal(lab1.numpy(), plain_l.numpy())
        np.testing.assert_array_equal(d1.numpy(), plain_d.numpy())
        assert listed[0] < 2000
        c0, lab0 = c1, lab1
    # A centre moved far away: the rows that had it must all be recomputed and get new labels.
    c2 = c0.copy()
    c2[0] += 1000.0
    lab2, d2 = runtime.empty(2000, np.uint32), runtime.empty(2000, np.float32)
    runtime.run_op("kmeans_assign_bounded", (X, mu, c2, c0, lab0), (lab2, d2, lower, listed), (1, 0))
    check(lab2, lower, c2)
    assert listed[0] >= int((lab0.numpy() == 0).sum())


def test_bounded_arguments_are_checked(rng):
    X = rng.standard_normal((50, 3)).astype(np.float32)
    mu = np.zeros(3, np.float32)
    c = X[:4].copy()
    lab, dist = runtime.empty(50, np.uint32), runtime.empty(50, np.float32)
    with pytest.raises(ValueError, match="lower"):
        runtime.run_op("kmeans_assign_bounded", (X, mu, c), (lab, dist, runtime.empty(49, np.float32)), (0, 0))
    with pytest.raises(ValueError, match="centres_prev"):
        runtime.run_op("kmeans_assign_bounded", (X, mu, c, X[:5].copy(), lab), (runtime.empty(50, np.uint32), dist,
                       runtime.empty(50, np.float32)), (1, 0))


def test_against_sklearn_with_bounds(monkeypatch, rng):
    SK = sklearn_kmeans()
    monkeypatch.setenv("VACCEL_KMEANS_BOUNDS", "1")
    X = blobs(rng, 2000, 5, 8, spread=1.5)
    ours = vaccel.KMeans(8, n_init=3, random_state=4).fit(X)
    ref = SK(8, n_init=3, random_state=4).fit(X)
    assert ours.inertia_ <= 1.02 * ref.inertia_
    assert_nearest(ours.labels_, X, ours.cluster_centers_)
    init = X[rng.choice(2000, 8, replace=False)].astype(np.float64)
    a = vaccel.KMeans(8, init=init, max_iter=100).fit(X)
    b = SK(8, init=init, n_init=1, max_iter=100).fit(X.astype(np.float64))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert a.n_iter_ == b.n_iter_
    assert min(a._rows_assigned[1:]) < 2000
