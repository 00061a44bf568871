# The tensor-core k-nearest-neighbour search (csrc/ops/knn.c's knn_coop_impl, shaders/knn_coop.comp,
# knn_select.comp's refine variants): float16 copies on cooperative matrices decide the candidates
# with a rigorous rounding bound, the exact distances come from the original rows, so the results
# must be those of the float32 search — on every metric, dtype and awkward shape, with values that
# overflow float16, values below its normal range, NaN and inf. Runs where the device has
# VK_KHR_cooperative_matrix (the H100; not lavapipe of Debian 12).
import numpy as np
import pytest

import vaccel
from vaccel import cpu, runtime


def _has_coopmat():
    if vaccel.get_backend() != "vulkan":
        return False
    return bool(runtime.context().info().get("cooperative_matrix"))


pytestmark = pytest.mark.skipif(not _has_coopmat(), reason="the device has no VK_KHR_cooperative_matrix")


def _run(monkeypatch, q, db, k, metric, coop=True, cap=None):
    """vaccel.knn on the fused path, with the tensor-core search on or off; also whether a
    knn_coop dispatch ran."""
    monkeypatch.setenv("VACCEL_KNN_FUSED", "1")
    monkeypatch.setenv("VACCEL_KNN_COOP", "1" if coop else "0")
    if cap is None:
        monkeypatch.delenv("VACCEL_KNN_CAP", raising=False)
    else:
        monkeypatch.setenv("VACCEL_KNN_CAP", str(cap))
    with vaccel.profile() as p:
        D, I = vaccel.knn(q, db, k, metric)
    ran = any(name.startswith("knn_coop") and not name.startswith("knn_coop_prep") for name, _ in p.dispatches)
    return D, I, ran


def _check(D, I, q, db, k, metric, rtol=2e-5):
    """Same neighbours as the float64 reference up to ties, distances within float32 rounding."""
    RD, RI = cpu.knn(q, db, k, metric)
    assert D.shape == RD.shape and I.shape == RI.shape
    fin = np.isfinite(RD)
    np.testing.assert_array_equal(np.isnan(D), np.isnan(RD))
    np.testing.assert_array_equal(np.isinf(D), np.isinf(RD))
    scale = np.abs(RD[fin]).max() if fin.any() else 1.0
    np.testing.assert_allclose(D[fin], RD[fin], rtol=rtol, atol=rtol * max(scale, 1.0))
    differ = I != RI
    # Where two indices differ, the reference distance of the one reported must tie with the
    # reference's own (within rounding): ties may break differently in float32.
    if differ.any():
        rows, cols = np.nonzero(differ)
        got = np.array([cpu.cdist(q[r:r + 1], db[I[r, c]:I[r, c] + 1], metric)[0, 0] for r, c in zip(rows, cols)])
        np.testing.assert_allclose(got, RD[rows, cols], rtol=1e-4, atol=1e-4 * max(scale, 1.0))

@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean", "inner", "cosine"])
@pytest.mark.parametrize("dtypes", [(np.float32, np.float32), (np.float16, np.float16), (np.float32, np.float16)])
@pytest.mark.parametrize("shape", [(1, 9001, 1, 5), (37, 8193, 3, 1), (130, 9000, 50, 10), (129, 8257, 128, 64),
                                   (5, 12000, 129, 33), (17, 9000, 300, 256)])
def test_coop_matches_reference(monkeypatch, rng, metric, dtypes, shape):
    nq, nb, d, k = shape
    q = rng.standard_normal((nq, d)).astype(dtypes[0])
    db = rng.standard_normal((nb, d)).astype(dtypes[1])
    D, I, ran = _run(monkeypatch, q, db, k, metric)
    assert ran
    _check(D, I, q.astype(np.float32), db.astype(np.float32), k, metric)
    D0, I0, ran0 = _run(monkeypatch, q, db, k, metric, coop=False)
    assert not ran0
    np.testing.assert_allclose(D, D0, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner", "cosine"])
def test_coop_extreme_values(monkeypatch, rng, metric):
    """Values past float16's range (1e5), below its normal range (1e-6), NaN, inf, zero rows and
    duplicates: still the float32 search's answer."""
    q = rng.standard_normal((40, 24)).astype(np.float32)
    db = rng.standard_normal((9000, 24)).astype(np.float32)
    db[::97] *= 1e5                       # float16 overflows: rows flagged, always candidates
    db[5::101] *= 1e-6
    db[7::301, 2] = np.nan
    db[11::307, 3] = np.inf
    db[13::401] = 0.0
    db[2000:2100] = db[100]               # ties
    q[1] *= 1e5
    q[2] *= 1e-6
    q[3, 0] = np.nan
    q[4] = 0.0
    q[5] = db[100]
    D, I, ran = _run(monkeypatch, q, db, 10, metric)
    assert ran
    D0, I0, _ = _run(monkeypatch, q, db, 10, metric, coop=False)
    np.testing.assert_array_equal(np.isnan(D), np.isnan(D0))
    fin = np.isfinite(D0)
    np.testing.assert_allclose(D[fin], D0[fin], rtol=2e-5, atol=1e-5)
    differ = (I != I0) & fin
    assert differ.mean() <= 0.01
    if metric == "sqeuclidean":
        np.testing.assert_array_equal(I[5, :10], np.r_[100, 2000:2009])   # ties by the lower index


def test_coop_tiny_scale_and_offsets(monkeypatch, rng):
    """A whole database below float16's normal range, and far from the origin (cancellation)."""
    q = (rng.standard_normal((50, 32)) * 1e-5).astype(np.float32)
    db = (rng.standard_normal((9000, 32)) * 1e-5).astype(np.float32)
    D, I, _ = _run(monkeypatch, q, db, 8, "sqeuclidean")
    _check(D, I, q, db, 8, "sqeuclidean", rtol=1e-4)
    near = (rng.standard_normal((9000, 16)) * 100 + 1000).astype(np.float32)
    qn = near[:40] + (rng.standard_normal((40, 16)) * 1e-3).astype(np.float32)
    D, I, _ = _run(monkeypatch, qn, near, 1, "sqeuclidean")
    np.testing.assert_array_equal(I[:, 0], np.arange(40))


def test_coop_overflowing_lists_fall_back(monkeypatch, rng):
    """A small candidate list overflows: those queries are recomputed, still exact."""
    q = rng.standard_normal((64, 40)).astype(np.float32)
    db = rng.standard_normal((10000, 40)).astype(np.float32)
    D, I, ran = _run(monkeypatch, q, db, 12, "sqeuclidean", cap=16)
    assert ran
    _check(D, I, q, db, 12, "sqeuclidean")


def test_coop_views_and_device_arrays(monkeypatch, rng):
    """Strided and offset views (the float16 database used in place only where aligned), and
    device-resident operands."""
    base = rng.standard_normal((20003, 128)).astype(np.float16)
    q = rng.standard_normal((70, 128)).astype(np.float16)
    for db in (base[::2], base[3:9500], base[8:9000]):
        D, I, ran = _run(monkeypatch, q, db, 9, "sqeuclidean")
        assert ran
        _check(D, I, q.astype(np.float32), db.astype(np.float32), 9, "sqeuclidean")
    qa, dba = vaccel.asarray(q), vaccel.asarray(base[:9000])
    D, I, ran = _run(monkeypatch, qa, dba, 9, "inner")
    assert ran
    _check(D, I, q.astype(np.float32), base[:9000].astype(np.float32), 9, "inner")


def test_coop_sorted_database_and_reused_sample(monkeypatch, rng):
    """Rows stored in order along a direction (a query's neighbours adjacent in storage): the
    sample's groups are random whatever the order, so the bound stays tight (no list overflows)
    and the results exact. A second database of the same size reuses the context's cached sample
    (knn.c sample_rows): exact too."""
    d, nb = 24, 40000
    db = rng.standard_normal((nb, d)).astype(np.float32)
    db = np.ascontiguousarray(db[np.argsort(db[:, 0], kind="stable")])
    q = (db[rng.choice(nb, 100, replace=False)] + rng.standard_normal((100, d)) * 0.05).astype(np.float32)
    for k in (10, 100):
        D = np.empty((100, k), np.float32)
        I = np.empty((100, k), np.int64)
        flags = np.empty(100, np.uint32)
        with vaccel.profile() as p:
            runtime.run_op("knn_fused", (q, db), (D, I, flags), (0, k))
        assert any(name == "knn_coop" for name, _ in p.dispatches)
        assert not flags.any()
        _check(D, I, q, db, k, "sqeuclidean")
    other = rng.standard_normal((nb, d)).astype(np.float32)
    for k in (10, 100):
        D, I, ran = _run(monkeypatch, q, other, k, "sqeuclidean")
        assert ran
        _check(D, I, q, other, k, "sqeuclidean")
