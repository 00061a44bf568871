# The k-means assignment on tensor cores (csrc/ops/kmeans.c's coop_assign, shaders/kmeans_coop.comp):
# float16 scores with a rigorous rounding bound certify each row's nearest centre, the exact
# distance is summed as the float32 kernel sums it, and rows the bound cannot settle (near ties,
# float16 overflow, NaN/inf, values below float16's normal range) go to the float32 kernel. So
# labels and distances must equal the float32 assignment's to the bit (but for centres within
# float32's own rounding of each other), and a whole fit must equal the float32 fit. Runs where the
# device has VK_KHR_cooperative_matrix (the H100; not lavapipe of Debian 12).
import numpy as np
import pytest

import vaccel
from vaccel import cluster, runtime

from test_kmeans import assert_nearest, blobs, sklearn_kmeans


def _has_coopmat():
    if vaccel.get_backend() != "vulkan":
        return False
    return bool(runtime.context().info().get("cooperative_matrix"))


pytestmark = pytest.mark.skipif(not _has_coopmat(), reason="the device has no VK_KHR_cooperative_matrix")


def _assign(monkeypatch, x, c, shift=None, coop=True, max_rows=0):
    """(labels, dists, whether kmeans_coop ran) of the device assignment, tensor cores on or off."""
    monkeypatch.setenv("VACCEL_KMEANS_COOP", "1" if coop else "0")
    monkeypatch.setattr(cluster, "_MAX_ROWS", max_rows)
    with vaccel.profile() as p:
        lab, dist = cluster._assign_device(x, np.ascontiguousarray(c, np.float32),
                                           None if shift is None else np.asarray(shift, np.float32))
        lab, dist = lab.numpy(), dist.numpy()
    ran = any(name.startswith("kmeans_coop") for name, _ in p.dispatches)
    return lab, dist, ran


def _same(monkeypatch, x, c, shift=None, max_rows=0, expect_coop=True):
    """The tensor-core assignment equals the float32 one to the bit; returns its labels."""
    a, da, ran = _assign(monkeypatch, x, c, shift, True, max_rows)
    b, db, ran_b = _assign(monkeypatch, x, c, shift, False, max_rows)
    assert ran == expect_coop and not ran_b
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(da.view(np.uint32), db.view(np.uint32))
    return a, da


@pytest.mark.parametrize("n,k,d", [(1, 1, 1), (5, 3, 7), (130, 65, 16), (1000, 200, 40), (2049, 64, 128),
                                   (777, 129, 129), (300, 300, 300), (4000, 1024, 64)])
def test_matches_float32(monkeypatch, rng, n, k, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    c = x[rng.choice(n, min(k, n), replace=False)] if k <= n else rng.standard_normal((k, d)).astype(np.float32)
    c = c + 0.05 * rng.standard_normal(c.shape).astype(np.float32)
    lab, _ = _same(monkeypatch, x, c)
    assert_nearest(lab, x, c)


def test_blobs_shift_and_windows(monkeypatch, rng):
    # Well separated clusters (almost every row certified), a shift, X taken in windows of rows
    # (each window its own list), float16 X and rows with a stride.
    x = blobs(rng, 5000, 48, 150, spread=0.8)
    c = x[rng.choice(5000, 150, replace=False)]
    mu = x.mean(0)
    for xs in (x, x.astype(np.float16), np.concatenate([x, x], 1)[:, ::2]):
        for max_rows in (0, 1024):
            lab, dist = _same(monkeypatch, xs, c - mu, mu, max_rows)
            xd = np.asarray(xs, np.float64) - mu
            ref = ((xd - (c - mu)[lab]) ** 2).sum(1)
            np.testing.assert_allclose(dist, ref, rtol=1e-4, atol=1e-3)


def test_ties_go_to_the_lower_centre(monkeypatch, rng):
    # Duplicate centres and rows exactly between two centres: the bound never settles an exact
    # tie, so the float32 kernel's rule (the lower centre) holds.
    c = rng.integers(-8, 8, (96, 32)).astype(np.float32)
    c[50] = c[7]
    c[90] = c[7]
    x = np.concatenate([c[[7, 50, 90, 3]], (c[:40] + c[40:80]) / 2, rng.integers(-8, 8, (500, 32))]).astype(np.float32)
    lab, _ = _same(monkeypatch, x, c)
    assert lab[0] == lab[1] == lab[2] == 7
    assert_nearest(lab, x, c)


@pytest.mark.parametrize("case", ["nan_rows", "inf_rows", "overflow", "tiny", "bad_centre", "huge_centre"])
def test_awkward_values(monkeypatch, rng, case):
    x = rng.standard_normal((700, 40)).astype(np.float32)
    c = rng.standard_normal((130, 40)).astype(np.float32)
    if case == "nan_rows":
        x[[3, 99, 500], [0, 5, 39]] = np.nan
    elif case == "inf_rows":
        x[[4, 100], [1, 2]] = [np.inf, -np.inf]
    elif case == "overflow":          # beyond float16's range once doubled: those rows go to float32
        x[::7] *= 4.0e4
    elif case == "tiny":              # below float16's normal range: a loose bound, same results
        x *= 1e-6
        c *= 1e-6
    elif case == "bad_centre":
        c[17, 3] = np.inf
    else:
        c[17] *= 1e5
    lab, dist = _same(monkeypatch, x, c)
    fin = np.isfinite(x).all(1) & np.isfinite(c).all()
    if case not in ("nan_rows", "inf_rows", "bad_centre"):
        assert_nearest(lab[fin], x[fin], c)


def test_fit_equals_float32_fit(monkeypatch, rng):
    # A whole fit (every step on tensor cores, no bounds) against the float32 fit: the same labels,
    # centres, inertia and iterations; and scikit-learn's inertia on the same start.
    x = blobs(rng, 6000, 32, 140, spread=1.5)
    init = x[rng.choice(6000, 140, replace=False)]
    monkeypatch.setenv("VACCEL_KMEANS_BOUNDS", "0")
    fits = []
    for coop in ("1", "0"):
        monkeypatch.setenv("VACCEL_KMEANS_COOP", coop)
        with vaccel.profile() as p:
            km = vaccel.KMeans(140, init=init, n_init=1, max_iter=30, tol=0.0).fit(x)
        fits.append((km, any(name.startswith("kmeans_coop") for name, _ in p.dispatches)))
    (a, ran_a), (b, ran_b) = fits
    assert ran_a and not ran_b
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    assert a.inertia_ == b.inertia_ and a.n_iter_ == b.n_iter_
    sk = sklearn_kmeans()(140, init=init, n_init=1, max_iter=30, tol=0.0, algorithm="lloyd").fit(x)
    assert a.inertia_ <= 1.0001 * sk.inertia_


def test_default_policy(monkeypatch):
    # Large enough assignments take the tensor cores, and the fit then leaves out the bounds.
    monkeypatch.delenv("VACCEL_KMEANS_COOP", raising=False)
    monkeypatch.delenv("VACCEL_KMEANS_BOUNDS", raising=False)
    assert cluster._coop(1_000_000, 1024, 128) and not cluster._coop(1000, 1024, 128)
    assert not cluster._coop(1_000_000, 16, 128) and not cluster._coop(1_000_000, 1024, 8)
    assert not cluster._bounds_enabled(1_000_000, 1024, 128)
    assert cluster._bounds_enabled(1000, 10, 3)
    monkeypatch.setenv("VACCEL_KMEANS_BOUNDS", "1")
    assert cluster._bounds_enabled(1_000_000, 1024, 128)
