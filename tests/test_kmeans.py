"""vaccel.KMeans and vaccel.cluster.assign against scikit-learn, an exact float64 NumPy oracle and
the reference in vaccel.cpu, on both backends."""
import sys
import types
import warnings

import numpy as np
import pytest

import vaccel
from vaccel import cluster, cpu, runtime

from helpers import device_array


def exact_sq(x, c):
    """Squared distances of every row of x to every centre, float64, from the coordinates."""
    x = np.asarray(x).astype(np.float32).astype(np.float64)
    c = np.asarray(c).astype(np.float32).astype(np.float64)
    return ((x[:, None, :] - c[None, :, :]) ** 2).sum(axis=2)


def assert_nearest(labels, x, c, rtol=2e-5):
    """Every label is the exact nearest centre, or ties with it within float32 rounding of the
    GEMM form (relative to the squared norms involved)."""
    D = exact_sq(x, c)
    n = D.shape[0]
    labels = np.asarray(labels).astype(np.int64)
    assert labels.shape == (n,) and labels.min() >= 0 and labels.max() < c.shape[0]
    best = D.min(axis=1)
    got = D[np.arange(n), labels]
    xx = (np.asarray(x, np.float64) ** 2).sum(1)
    cc = (np.asarray(c, np.float64) ** 2).sum(1)
    slack = rtol * (xx + cc[labels] + best)
    bad = got - best > slack
    assert not bad.any(), f"{bad.sum()} rows are not assigned to their nearest centre"
    return D


def blobs(rng, n, d, k, spread=0.6):
    centres = rng.uniform(-10, 10, (k, d))
    lab = rng.integers(0, k, n)
    return (centres[lab] + spread * rng.standard_normal((n, d))).astype(np.float32)


def sklearn_kmeans():
    return pytest.importorskip("sklearn.cluster").KMeans


# ---- the assignment kernel -------------------------------------------------------------------------

@pytest.mark.parametrize("n,k,d", [(1, 1, 1), (2, 1, 3), (1, 5, 2), (37, 7, 3), (65, 65, 17), (129, 129, 5),
                                   (300, 257, 8), (1001, 13, 129), (97, 300, 33)])
def test_assign_matches_exact_argmin(backend, rng, n, k, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    c = rng.standard_normal((k, d)).astype(np.float32)
    labels, dist = cluster.assign(x, c)
    assert labels.dtype == np.int64 and dist.dtype == np.float32
    D = assert_nearest(labels, x, c)
    # The distance is of the centre chosen, computed directly: no GEMM-form cancellation.
    np.testing.assert_allclose(dist, D[np.arange(n), labels], rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("tile", ["128,128,8,8,8", "128,64,8,8,4", "64,64,16,4,4", "128,16,16,4,4"])
def test_assign_every_tile_and_split(monkeypatch, rng, tile):
    # The planner picks the tile by size (128x128 only from 8192 rows and 65 centres on): force
    # each one, with the centres in one split or spread over several (merged by the finish pass).
    # 32 features: whole slices, so the row blocks and splits whose centre tiles are whole take
    # the interior path (loads without tests) next to the others.
    monkeypatch.setenv("VACCEL_KMEANS_TILE", tile)
    x = rng.standard_normal((517, 32)).astype(np.float32)
    c = rng.standard_normal((131, 32)).astype(np.float32)
    c[100] = c[3]
    for split in ("1", "3"):
        monkeypatch.setenv("VACCEL_KMEANS_SPLIT", split)
        for xv, cc in ((x[:, :20], c[:, :20]), (x[:, :20].astype(np.float16), c[:, :20]), (x[:, :19], c[:, :19]),
                       (x, c), (x.astype(np.float16), c), (x + 3.0, c + 3.0)):
            labels, dist = cluster.assign(xv, cc)
            D = assert_nearest(labels, xv, cc)
            np.testing.assert_allclose(dist, D[np.arange(517), labels], rtol=2e-6, atol=1e-6)
            assert not (labels == 100).any()


def test_assign_ties_go_to_the_lowest_index_and_exact_hits_are_zero(backend, rng):
    c = rng.standard_normal((10, 6)).astype(np.float32)
    c[7] = c[2]                       # duplicated centre: 2 wins over 7
    c[9] = c[4]
    x = np.concatenate([c[[2, 4, 7, 9, 0]], rng.standard_normal((50, 6)).astype(np.float32)])
    labels, dist = cluster.assign(x, c)
    np.testing.assert_array_equal(labels[:5], [2, 4, 2, 4, 0])
    np.testing.assert_array_equal(dist[:5], 0.0)
    assert not np.isin(labels, [7, 9]).any()
    # Far from the origin the scores cancel; labels and distances stay exact (data are centred).
    far = (x.astype(np.float64) + 3000.0).astype(np.float32)
    cf = (c.astype(np.float64) + 3000.0).astype(np.float32)
    labels2, dist2 = cluster.assign(far, cf)
    D = exact_sq(far, cf)
    best = D.min(axis=1)
    assert (D[np.arange(len(far)), labels2] <= best * (1 + 1e-4) + 1e-4).all()
    np.testing.assert_allclose(dist2, D[np.arange(len(far)), labels2], rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(dist2[:5], 0.0)


def test_assign_dtypes_views_and_device_arrays(rng):
    x = rng.standard_normal((300, 24)).astype(np.float32)
    c = rng.standard_normal((40, 24)).astype(np.float32)
    want, _ = cpu.kmeans_assign(x, c)
    for xv in (x.astype(np.float16), x.astype(np.float64), np.asfortranarray(x)):
        labels, dist = cluster.assign(xv, c)
        assert_nearest(labels, np.asarray(xv), c)
    wide = rng.standard_normal((300, 50)).astype(np.float32)
    view = wide[:, 5:29]                     # rows strided, read in place
    assert_nearest(cluster.assign(view, c)[0], view, c)
    xa, ca = device_array(x), device_array(c)
    labels, dist = cluster.assign(xa, ca)
    assert_nearest(labels, x, c)
    np.testing.assert_array_equal(labels, cluster.assign(x, c)[0])
    assert (labels == want).mean() > 0.99
    h = device_array(x.astype(np.float16))
    assert_nearest(cluster.assign(h, c)[0], x.astype(np.float16), c)
    assert cluster.assign(np.empty((0, 24), np.float32), c)[0].shape == (0,)


def test_assign_device_results(rng):
    x = rng.standard_normal((500, 9)).astype(np.float32)
    c = rng.standard_normal((20, 9)).astype(np.float32)
    shift = c.mean(0).astype(np.float32)
    labels, dist = cluster._assign_device(device_array(x), device_array(c - shift), device_array(shift))
    assert isinstance(labels, vaccel.Array) and labels.dtype == np.uint32 and dist.dtype == np.float32
    D = assert_nearest(labels.numpy(), x, c)
    np.testing.assert_allclose(dist.numpy(), D[np.arange(500), labels.numpy().astype(np.int64)], rtol=2e-6, atol=1e-6)
    l2, d2 = cluster._assign_device(x, c)
    np.testing.assert_array_equal(l2.numpy(), labels.numpy())


def test_assign_windows_of_rows_give_the_same_result(monkeypatch, rng):
    x = rng.standard_normal((1500, 10)).astype(np.float32)
    c = rng.standard_normal((70, 10)).astype(np.float32)
    whole = cluster.assign(x, c)
    monkeypatch.setattr(cluster, "_MAX_ROWS", 256)
    parts = cluster.assign(x, c)
    np.testing.assert_array_equal(whole[0], parts[0])
    np.testing.assert_array_equal(whole[1], parts[1])


def test_assign_argument_errors(rng):
    x = rng.standard_normal((5, 3)).astype(np.float32)
    with pytest.raises(ValueError, match="features"):
        cluster.assign(x, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        cluster.assign(x[0], np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="at least one"):
        cluster.assign(x, np.zeros((0, 3), np.float32))
    with pytest.raises(TypeError, match="x"):
        cluster.assign(np.array([["a"]]), np.zeros((1, 1)))


# ---- against scikit-learn --------------------------------------------------------------------------

@pytest.mark.parametrize("data", ["blobs", "uniform"])
def test_inertia_within_2_percent_of_sklearn(backend, rng, data):
    SK = sklearn_kmeans()
    X = blobs(rng, 1500, 5, 8) if data == "blobs" else rng.random((1500, 3)).astype(np.float32)
    ours = vaccel.KMeans(8, n_init=3, random_state=7).fit(X)
    ref = SK(8, n_init=3, random_state=7).fit(X)
    assert ours.inertia_ <= 1.02 * ref.inertia_
    # inertia_ is the inertia of the final labels and centres
    D = exact_sq(X, ours.cluster_centers_)
    assert ours.inertia_ == pytest.approx(D[np.arange(len(X)), ours.labels_].sum(), rel=1e-5)
    assert_nearest(ours.labels_, X, ours.cluster_centers_)


@pytest.mark.parametrize("max_iter", [1, 2, 5, 300])
def test_same_init_gives_sklearns_result(backend, rng, max_iter):
    SK = sklearn_kmeans()
    X = rng.standard_normal((800, 4)).astype(np.float32)
    X[:400] += 1.5
    init = X[rng.choice(800, 6, replace=False)].astype(np.float64)
    ours = vaccel.KMeans(6, init=init, max_iter=max_iter).fit(X)
    ref = SK(6, init=init, n_init=1, max_iter=max_iter).fit(X.astype(np.float64))
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    assert ours.cluster_centers_.dtype == np.float32 and ours.labels_.dtype == np.int32


def test_sample_weight_as_sklearn(backend, rng):
    SK = sklearn_kmeans()
    X = blobs(rng, 600, 3, 5, spread=2.0)
    w = rng.uniform(0.0, 3.0, 600)
    w[:20] = 0.0
    init = X[:5].astype(np.float64)
    ours = vaccel.KMeans(5, init=init, max_iter=50).fit(X, sample_weight=w)
    ref = SK(5, init=init, n_init=1, max_iter=50).fit(X.astype(np.float64), sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-5)
    # Integer weights are repetitions.
    reps = rng.integers(1, 4, 600)
    a = vaccel.KMeans(5, init=init, max_iter=50).fit(X, sample_weight=reps)
    b = vaccel.KMeans(5, init=init, max_iter=50).fit(np.repeat(X, reps, axis=0))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-5, atol=1e-5)
    assert a.inertia_ == pytest.approx(b.inertia_, rel=1e-5)


def test_empty_cluster_reseeded_as_sklearn(backend, rng):
    SK = sklearn_kmeans()
    X = blobs(rng, 500, 2, 4)
    init = X[[0, 0, 1, 2]].astype(np.float64)   # two equal centres: one gets no points
    ours = vaccel.KMeans(4, init=init, max_iter=20).fit(X)
    ref = SK(4, init=init, n_init=1, max_iter=20).fit(X.astype(np.float64))
    assert np.isfinite(ours.cluster_centers_).all()
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=1e-5, atol=1e-5)


# ---- the estimator on its own ------------------------------------------------------------------------

def test_predict_transform_score_against_numpy(backend, rng):
    X = blobs(rng, 700, 6, 5)
    km = vaccel.KMeans(5, random_state=0).fit(X)
    Y = rng.standard_normal((130, 6)).astype(np.float32) * 5
    D = exact_sq(Y, km.cluster_centers_)
    pred = km.predict(Y)
    assert pred.dtype == np.int32
    assert_nearest(pred, Y, km.cluster_centers_)
    T = km.transform(Y)
    assert T.shape == (130, 5) and T.dtype == np.float32
    np.testing.assert_allclose(T, np.sqrt(D), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(km.score(Y), -D.min(axis=1).sum(), rtol=1e-5)
    w = rng.random(130)
    np.testing.assert_allclose(km.score(Y, sample_weight=w), -(D.min(axis=1) @ w), rtol=1e-5)
    np.testing.assert_array_equal(km.fit_predict(X), km.labels_)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_allclose(km.fit_transform(X), km.transform(X), rtol=1e-6)


def test_dtypes_and_views(backend, rng):
    X = blobs(rng, 400, 5, 3)
    init = X[:3].copy()
    base = vaccel.KMeans(3, init=init, max_iter=30).fit(X)
    f64 = vaccel.KMeans(3, init=init, max_iter=30).fit(X.astype(np.float64))
    assert f64.cluster_centers_.dtype == np.float64
    np.testing.assert_array_equal(f64.labels_, base.labels_)
    np.testing.assert_allclose(f64.cluster_centers_, base.cluster_centers_, rtol=1e-6)
    h = X.astype(np.float16)
    f16 = vaccel.KMeans(3, init=init, max_iter=30).fit(h)
    assert f16.cluster_centers_.dtype == np.float32
    ref = vaccel.KMeans(3, init=init, max_iter=30).fit(h.astype(np.float32))
    np.testing.assert_array_equal(f16.labels_, ref.labels_)
    np.testing.assert_allclose(f16.cluster_centers_, ref.cluster_centers_, rtol=1e-6, atol=1e-6)
    ints = vaccel.KMeans(3, init=init.round(), max_iter=30).fit(np.round(X * 10).astype(np.int16))
    assert ints.cluster_centers_.dtype == np.float64
    wide = np.zeros((400, 10), np.float32)
    wide[:, ::2] = X
    view = wide[:, ::2]                                 # non-contiguous columns
    strided = vaccel.KMeans(3, init=init, max_iter=30).fit(view)
    np.testing.assert_array_equal(strided.labels_, base.labels_)
    rows = np.repeat(X, 2, axis=0)[::2]                 # strided rows
    np.testing.assert_array_equal(vaccel.KMeans(3, init=init, max_iter=30).fit(rows).labels_, base.labels_)


def test_device_array_input_is_used_in_place(rng):
    X = blobs(rng, 500, 4, 4)
    init = X[:4].copy()
    host = vaccel.KMeans(4, init=init, max_iter=40).fit(X)
    dev = vaccel.KMeans(4, init=init, max_iter=40).fit(device_array(X))
    np.testing.assert_array_equal(dev.labels_, host.labels_)
    np.testing.assert_array_equal(dev.cluster_centers_, host.cluster_centers_)
    np.testing.assert_array_equal(dev.predict(device_array(X[:50])), host.labels_[:50])
    np.testing.assert_allclose(dev.transform(device_array(X[:50])), host.transform(X[:50]), rtol=1e-5)
    h = vaccel.KMeans(4, init=init, max_iter=40).fit(device_array(X.astype(np.float16)))
    np.testing.assert_array_equal(h.labels_, vaccel.KMeans(4, init=init, max_iter=40).fit(X.astype(np.float16)).labels_)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_windows_of_rows_give_identical_fits(monkeypatch, rng, init):
    # Windows of 256 rows take the path of X larger than one binding; sums are exact, so the
    # result is the same to the bit.
    X = blobs(rng, 1300, 7, 6, spread=3.0)
    w = rng.random(1300)
    whole = vaccel.KMeans(6, init=init, n_init=2, random_state=3).fit(X, sample_weight=w)
    monkeypatch.setattr(cluster, "_MAX_ROWS", 256)
    parts = vaccel.KMeans(6, init=init, n_init=2, random_state=3).fit(X, sample_weight=w)
    np.testing.assert_array_equal(parts.labels_, whole.labels_)
    np.testing.assert_array_equal(parts.cluster_centers_, whole.cluster_centers_)
    assert parts.n_iter_ == whole.n_iter_


def test_device_views_at_odd_offsets_in_windows(monkeypatch, rng):
    # A device view starting 3 rows in (d = 5: not a 16-byte boundary), in windows of 256 rows:
    # every kernel reads X through an aligned-down binding plus an element remainder.
    X = blobs(rng, 900, 5, 5, spread=2.0)
    Xa = device_array(X)
    view = Xa[3:]
    monkeypatch.setattr(cluster, "_MAX_ROWS", 256)
    a = vaccel.KMeans(5, random_state=4, n_init=1).fit(view)
    b = vaccel.KMeans(5, random_state=4, n_init=1).fit(X[3:])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    c = vaccel.KMeans(5, init="random", random_state=4, n_init=1).fit(view)
    assert_nearest(c.labels_, X[3:], c.cluster_centers_)
    labels, dist = cluster.assign(Xa[7:], a.cluster_centers_)
    assert_nearest(labels, X[7:], a.cluster_centers_)
    np.testing.assert_array_equal(labels, cluster.assign(X[7:], a.cluster_centers_)[0])


def test_inside_a_batch(rng):
    X = rng.random((400, 2)).astype(np.float32)      # many iterations to converge
    want = vaccel.KMeans(6, random_state=0, tol=0.0).fit(X)
    assert want.n_iter_ > 3
    with vaccel.batch():
        got = vaccel.KMeans(6, random_state=0, tol=0.0).fit(X)
        labels, dist = cluster.assign(X, want.cluster_centers_)
        pred = got.predict(X)
    assert got.n_iter_ == want.n_iter_
    np.testing.assert_array_equal(got.labels_, want.labels_)
    np.testing.assert_array_equal(got.cluster_centers_, want.cluster_centers_)
    np.testing.assert_array_equal(labels, want.labels_)
    np.testing.assert_array_equal(pred, want.labels_)


def test_device_kmeans_plusplus_matches_the_reference(rng):
    X = blobs(rng, 900, 3, 12, spread=2.0)
    Xd = X.astype(np.float64) - X.astype(np.float64).mean(0)
    k = 12
    for seed in (0, 1):
        data = cluster._Device(X, None)
        centres = data.plusplus(k, np.random.RandomState(seed)).numpy()
        want, idx = cpu.kmeans_plusplus(Xd, k, np.random.RandomState(seed))
        np.testing.assert_allclose(centres, want, atol=1e-5)
    w = rng.uniform(0.5, 2.0, 900)
    data = cluster._Device(X, w)
    centres = data.plusplus(k, np.random.RandomState(5)).numpy()
    want, _ = cpu.kmeans_plusplus(Xd, k, np.random.RandomState(5), w)
    np.testing.assert_allclose(centres, want, atol=1e-5)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_extreme_cluster_counts(backend, rng, init):
    X = rng.standard_normal((60, 3)).astype(np.float32)
    km = vaccel.KMeans(1, init=init, random_state=0).fit(X)
    assert km.cluster_centers_.shape == (1, 3)
    np.testing.assert_allclose(km.cluster_centers_[0], X.astype(np.float64).mean(0), atol=1e-5)
    np.testing.assert_array_equal(km.labels_, 0)
    full = vaccel.KMeans(60, init=init, random_state=0).fit(X)     # n_clusters == n_samples
    np.testing.assert_allclose(full.inertia_, 0.0, atol=1e-9)
    assert sorted(full.labels_) == list(range(60))
    np.testing.assert_allclose(np.sort(full.cluster_centers_, axis=0), np.sort(X, axis=0), atol=1e-6)


def test_duplicate_points_force_empty_clusters(backend, rng):
    pts = rng.standard_normal((3, 4)).astype(np.float32)
    X = np.repeat(pts, [40, 30, 30], axis=0)
    with pytest.warns(cluster.ConvergenceWarning, match="distinct clusters"):
        km = vaccel.KMeans(5, random_state=1, n_init=2).fit(X)
    assert np.isfinite(km.cluster_centers_).all()
    assert km.inertia_ == pytest.approx(0.0, abs=1e-9)
    assert set(np.unique(km.labels_)) <= set(range(5))
    # every point sits on its centre
    np.testing.assert_allclose(km.cluster_centers_[km.labels_], X, atol=1e-6)
    with pytest.warns(cluster.ConvergenceWarning):
        km2 = vaccel.KMeans(5, init="random", random_state=1, n_init=1).fit(X)
    assert np.isfinite(km2.cluster_centers_).all()


@pytest.mark.parametrize("d", [1, 3, 17])
def test_few_and_odd_features(backend, rng, d):
    X = blobs(rng, 500, d, 4)
    km = vaccel.KMeans(4, random_state=2, tol=0.0).fit(X)
    assert_nearest(km.labels_, X, km.cluster_centers_)
    ref_labels, ref_inertia, ref_centres, _, _ = cpu.kmeans_lloyd(
        X.astype(np.float64), km.cluster_centers_.astype(np.float64), 1, 0.0)
    # converged with tol=0: the fitted centres are a fixed point of one more Lloyd step
    np.testing.assert_allclose(ref_centres, km.cluster_centers_, rtol=1e-4, atol=1e-4)


def test_tolerance_is_relative_to_the_variance(backend, rng):
    X = rng.random((400, 2)).astype(np.float32)
    init = X[:10]
    loose = vaccel.KMeans(10, init=init, tol=1e-1).fit(X)
    tight = vaccel.KMeans(10, init=init, tol=0.0).fit(X)
    scaled = vaccel.KMeans(10, init=init * 1000, tol=1e-1).fit(X * 1000)
    assert loose.n_iter_ < tight.n_iter_
    assert scaled.n_iter_ == loose.n_iter_
    SK = pytest.importorskip("sklearn.cluster").KMeans
    assert loose.n_iter_ == SK(10, init=init.astype(np.float64), n_init=1, tol=1e-1).fit(X.astype(np.float64)).n_iter_


def test_random_state_kinds_and_reproducibility(backend, rng):
    X = rng.random((300, 4)).astype(np.float32)
    for init in ("k-means++", "random"):
        a = vaccel.KMeans(7, init=init, random_state=42).fit(X)
        b = vaccel.KMeans(7, init=init, random_state=42).fit(X)
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
        np.testing.assert_array_equal(a.labels_, b.labels_)
        c = vaccel.KMeans(7, init=init, random_state=np.random.RandomState(42)).fit(X)
        np.testing.assert_array_equal(c.cluster_centers_, a.cluster_centers_)
        g1 = vaccel.KMeans(7, init=init, random_state=np.random.default_rng(5)).fit(X)
        g2 = vaccel.KMeans(7, init=init, random_state=np.random.default_rng(5)).fit(X)
        np.testing.assert_array_equal(g1.cluster_centers_, g2.cluster_centers_)
    np.random.seed(3)
    a = vaccel.KMeans(7).fit(X)
    np.random.seed(3)
    b = vaccel.KMeans(7).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    # n_init='auto' is 10 runs for 'random': the best of them is at least as good as one run
    one = vaccel.KMeans(7, init="random", n_init=1, random_state=0).fit(X)
    many = vaccel.KMeans(7, init="random", random_state=0).fit(X)
    assert many.inertia_ <= one.inertia_ * (1 + 1e-6)


def test_verbose_log_lines_and_tqdm(backend, rng, capsys, monkeypatch):
    X = blobs(rng, 200, 2, 3)
    monkeypatch.setitem(sys.modules, "tqdm", None)          # no tqdm: log lines
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    vaccel.KMeans(3, random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "Initialization complete" in out and "Iteration 0, inertia" in out and "Converged at iteration" in out
    bars = []

    class FakeBar:
        def __init__(self, total, **kw):
            self.total, self.n, self.post = total, 0, {}
            bars.append(self)

        def update(self, n):
            self.n += n

        def set_postfix(self, **kw):
            self.post = kw

        def write(self, text):
            print(text)

        def close(self):
            pass
    fake = types.ModuleType("tqdm.auto")
    fake.tqdm = FakeBar
    monkeypatch.setitem(sys.modules, "tqdm", types.ModuleType("tqdm"))
    monkeypatch.setitem(sys.modules, "tqdm.auto", fake)
    km = vaccel.KMeans(3, random_state=0, verbose=True, max_iter=50).fit(X)
    assert len(bars) == 1 and bars[0].n == km.n_iter_ and bars[0].total == 50 and "inertia" in bars[0].post


# ---- errors -------------------------------------------------------------------------------------------

def test_errors(backend, rng):
    X = rng.standard_normal((20, 3)).astype(np.float32)
    km = vaccel.KMeans(3)
    with pytest.raises(vaccel.NotFittedError, match="not fitted"):
        km.predict(X)
    for method in (km.transform, km.score):
        with pytest.raises(AttributeError):
            method(X)
    assert issubclass(vaccel.NotFittedError, ValueError)
    bad = X.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vaccel.KMeans(3).fit(bad)
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        vaccel.KMeans(3).fit(bad)
    with pytest.raises(ValueError, match="n_samples=20 should be >= n_clusters=21"):
        vaccel.KMeans(21).fit(X)
    km.fit(X)
    with pytest.raises(ValueError, match="X has 4 features, but KMeans is expecting 3"):
        km.predict(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="X has 2 features"):
        km.transform(np.zeros((2, 2)))
    nan = np.zeros((2, 3))
    nan[1, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        km.predict(nan)
    with pytest.raises(ValueError, match="2D"):
        vaccel.KMeans(3).fit(X[0])
    with pytest.raises(ValueError, match="0 sample"):
        vaccel.KMeans(3).fit(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="0 feature"):
        vaccel.KMeans(3).fit(np.zeros((5, 0)))
    with pytest.raises(TypeError, match="X"):
        vaccel.KMeans(3).fit(np.array([["a", "b"]] * 5))
    with pytest.raises(ValueError, match="n_clusters"):
        vaccel.KMeans(0).fit(X)
    with pytest.raises(TypeError, match="n_clusters"):
        vaccel.KMeans(2.5).fit(X)
    with pytest.raises(ValueError, match="init"):
        vaccel.KMeans(3, init="kmeans").fit(X)
    with pytest.raises(ValueError, match="shape of the initial centers"):
        vaccel.KMeans(3, init=np.zeros((2, 3))).fit(X)
    with pytest.raises(ValueError, match="shape of the initial centers"):
        vaccel.KMeans(3, init=np.zeros((3, 4))).fit(X)
    with pytest.raises(ValueError, match="n_init"):
        vaccel.KMeans(3, n_init=0).fit(X)
    with pytest.raises(ValueError, match="max_iter"):
        vaccel.KMeans(3, max_iter=0).fit(X)
    with pytest.raises(ValueError, match="tol"):
        vaccel.KMeans(3, tol=-1.0).fit(X)
    with pytest.raises(ValueError, match="random_state"):
        vaccel.KMeans(3, random_state="seed").fit(X)
    with pytest.raises(ValueError, match="sample_weight"):
        vaccel.KMeans(3).fit(X, sample_weight=np.ones(19))
    with pytest.raises(ValueError, match="sample_weight"):
        vaccel.KMeans(3).fit(X, sample_weight=-np.ones(20))
    with pytest.warns(RuntimeWarning, match="only one init"):
        vaccel.KMeans(3, init=X[:3], n_init=4).fit(X)


def test_estimator_protocol():
    km = vaccel.KMeans(4, tol=1e-3)
    assert km.get_params()["n_clusters"] == 4 and km.get_params()["tol"] == 1e-3
    assert km.set_params(n_clusters=5) is km and km.n_clusters == 5
    assert "n_clusters=5" in repr(km)
    with pytest.raises(ValueError, match="Invalid parameter"):
        km.set_params(algorithm="elkan")
    assert not hasattr(km, "cluster_centers_")
