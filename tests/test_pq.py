# vaccel.ProductQuantizer and vaccel.PQIndex against NumPy in float64 (codes are the nearest
# centroids, ADC distances are reconstruction distances), against faiss (code layout, IndexPQ's
# search with the same codebooks, recall of a faiss-trained IndexPQ), and the FlatIndex interface:
# ids, filters, removal, persistence, padding, dtypes, the CPU backend. Sizes stay small.

import warnings

import numpy as np
import pytest

import vaccel
from vaccel import cpu, indexfile, pq as pqmod
from vaccel.pq import PQIndex, ProductQuantizer

from helpers import device_array


def blobs(rng, n, d, centers=20, spread=0.35, seed_centers=None):
    """Gaussian blobs: structure a quantizer can learn."""
    crng = np.random.default_rng(seed_centers) if seed_centers is not None else rng
    c = crng.standard_normal((centers, d)) * 2.0
    return (c[rng.integers(0, centers, n)] + spread * rng.standard_normal((n, d))).astype(np.float32)


def trained_pq(rng, d, m, nbits, n=None):
    """A ProductQuantizer with codebooks set from data (k-means-free: faster and exact)."""
    pq = ProductQuantizer(d, m, nbits)
    x = blobs(rng, n or max(4 << nbits, 256), d)
    pq.centroids = x[rng.choice(len(x), 1 << nbits, replace=False)].reshape(1 << nbits, m, d // m).transpose(1, 0, 2)
    return pq


def index_with(pq, metric="sqeuclidean"):
    index = PQIndex(pq.d, pq.m, pq.nbits, metric)
    index.pq.centroids = pq.centroids
    return index


def recon_dist(xq, recon, metric):
    q = np.asarray(xq, np.float32).astype(np.float64)
    r = np.asarray(recon, np.float64)
    return q @ r.T if metric == "inner" else ((q[:, None, :] - r[None]) ** 2).sum(-1)


def check_topk(D, I, true, ids, k, metric, allowed=None, rtol=1e-5, atol=1e-5):
    """(D, I) are a correct k best under true (nq, n) float64 distances of the stored ids, up to
    ties: valid entries are distinct allowed ids, D equals their true distance, and rank by rank the
    distances equal the true sorted ones; -1 / +-inf pad beyond the eligible count."""
    largest = metric == "inner"
    ids = np.asarray(ids)
    pos = {int(v): i for i, v in enumerate(ids)}
    ok = np.ones(len(ids), bool) if allowed is None else np.isin(ids, allowed)
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == I.shape == (true.shape[0], k)
    n_ok = int(ok.sum())
    for r in range(true.shape[0]):
        t = np.where(ok, true[r], -np.inf if largest else np.inf)
        srt = np.sort(t)[::-1] if largest else np.sort(t)
        want = min(k, n_ok)
        got = I[r, :want]
        assert (got >= 0).all() and (I[r, want:] == -1).all(), (r, I[r])
        assert (D[r, want:] == (-np.inf if largest else np.inf)).all()
        assert np.unique(got).size == want
        rows = np.array([pos[int(i)] for i in got], np.int64)
        assert ok[rows].all()
        scale = atol * max(1.0, float(np.abs(srt[:want]).max()) if want else 1.0)
        np.testing.assert_allclose(D[r, :want], t[rows], rtol=rtol, atol=scale)
        np.testing.assert_allclose(D[r, :want], srt[:want], rtol=rtol, atol=scale)


# ---- ProductQuantizer ---------------------------------------------------------------------------

def test_quantizer_arguments():
    with pytest.raises(ValueError, match="divisible"):
        ProductQuantizer(10, 3)
    with pytest.raises(ValueError, match="nbits"):
        ProductQuantizer(8, 2, nbits=9)
    with pytest.raises(ValueError, match="nbits"):
        ProductQuantizer(8, 2, nbits=0)
    with pytest.raises(TypeError, match="m"):
        ProductQuantizer(8, 2.0)
    with pytest.raises(ValueError, match="m"):
        ProductQuantizer(8, 0)
    with pytest.raises(ValueError, match="d"):
        ProductQuantizer(0, 1)
    pq = ProductQuantizer(12, 3, nbits=5)
    assert (pq.d, pq.m, pq.nbits, pq.ksub, pq.dsub, pq.code_size) == (12, 3, 5, 32, 4, 2)
    assert not pq.is_trained and pq.centroids is None
    for call in (lambda: pq.encode(np.zeros((2, 12))), lambda: pq.decode(np.zeros((2, 2), np.uint8)),
                 lambda: pq.compute_distance_tables(np.zeros((1, 12)))):
        with pytest.raises(vaccel.NotTrainedError):
            call()
    assert issubclass(vaccel.NotTrainedError, vaccel.VaccelError)
    with pytest.raises(ValueError, match="centroids"):
        pq.centroids = np.zeros((3, 31, 4))
    with pytest.raises(ValueError, match="init"):
        ProductQuantizer(8, 2, init="kmeans")


@pytest.mark.parametrize("d,m,nbits", [(16, 4, 8), (12, 3, 5), (14, 7, 3), (8, 8, 1), (6, 2, 7)])
def test_encode_decode_match_numpy(rng, backend, d, m, nbits):
    pq = trained_pq(rng, d, m, nbits)
    x = blobs(rng, 301, d)
    codes = pq.encode(x)
    assert codes.dtype == np.uint8 and codes.shape == (301, (m * nbits + 7) // 8)
    labels = pqmod.unpack_codes(codes, m, nbits)
    assert labels.max() < (1 << nbits)
    np.testing.assert_array_equal(pqmod.pack_codes(labels, nbits), codes)
    # Every sub-code is a nearest centroid (float64; an other choice only within rounding of a tie).
    c = pq.centroids.astype(np.float64)
    ds = d // m
    for j in range(m):
        dist = ((x[:, None, j * ds:(j + 1) * ds].astype(np.float64) - c[j][None]) ** 2).sum(-1)
        chosen = dist[np.arange(301), labels[:, j]]
        assert (chosen <= dist.min(1) + 1e-5 * (1 + dist.min(1))).all()
    y = pq.decode(codes)
    assert y.dtype == np.float32 and y.shape == (301, d)
    want = np.concatenate([pq.centroids[j][labels[:, j]] for j in range(m)], axis=1)
    np.testing.assert_array_equal(y, want)
    # float16, float64 and a strided view encode as their float32 values.
    np.testing.assert_array_equal(pq.encode(x.astype(np.float64)), codes)
    wide = np.zeros((301, 2 * d), np.float32)
    wide[:, ::2] = x
    np.testing.assert_array_equal(pq.encode(wide[:, ::2]), codes)
    x16 = x.astype(np.float16)
    np.testing.assert_array_equal(pq.encode(x16), pq.encode(x16.astype(np.float32)))
    assert pq.encode(np.empty((0, d))).shape == (0, pq.code_size)


@pytest.mark.parametrize("nbits", [8, 4, 6])
def test_code_layout_matches_faiss(rng, nbits):
    faiss = pytest.importorskip("faiss")
    d, m = 24, 6
    pq = trained_pq(rng, d, m, nbits)
    fpq = faiss.ProductQuantizer(d, m, nbits)
    faiss.copy_array_to_vector(pq.centroids.ravel(), fpq.centroids)
    x = blobs(rng, 500, d)
    ours = pq.encode(x)
    theirs = fpq.compute_codes(x)
    assert theirs.shape == ours.shape
    same = (ours == theirs).all(axis=1)
    assert same.mean() >= 0.99, same.mean()       # others: near-ties between two centroids
    np.testing.assert_array_equal(pq.decode(theirs), fpq.decode(theirs))


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_distance_tables(rng, backend, metric):
    pq = trained_pq(rng, 20, 5, 6)
    q = rng.standard_normal((7, 20)).astype(np.float32)
    t = pq.compute_distance_tables(q, metric)
    assert t.dtype == np.float32 and t.shape == (7, 5, 64)
    qs = q.astype(np.float64).reshape(7, 5, 1, 4)
    c = pq.centroids.astype(np.float64)[None]
    want = (qs * c).sum(-1) if metric == "inner" else ((qs - c) ** 2).sum(-1)
    np.testing.assert_allclose(t, want, rtol=1e-5, atol=1e-5)


def test_training_sizes_follow_faiss(rng):
    x = blobs(rng, 600, 8)
    with pytest.raises(ValueError, match="training points"):
        ProductQuantizer(8, 2, nbits=8).train(x[:200])       # 200 < 256 centroids
    with pytest.warns(UserWarning, match="at least"):
        ProductQuantizer(8, 2, nbits=4, max_iter=2).train(x[:300])              # 300 < 39 * 16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pq = ProductQuantizer(8, 2, nbits=3, max_iter=8).train(x)               # 600 >= 39 * 8
    assert pq.is_trained and pq.centroids.shape == (2, 8, 4) and pq.centroids.dtype == np.float32
    # Trained codebooks quantize their data better than the centroids of random points would.
    err = ((pq.decode(pq.encode(x)) - x) ** 2).sum(1).mean()
    assert err < 0.5 * ((x - x.mean(0)) ** 2).sum(1).mean()


# ---- PQIndex: exactness ---------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
@pytest.mark.parametrize("d,m,nbits,nb,nq,k", [(16, 4, 8, 3000, 5, 10), (12, 3, 5, 1001, 1, 7),
                                               (10, 5, 2, 257, 3, 300), (32, 8, 8, 1, 2, 1),
                                               (32, 16, 8, 700, 3, 10), (64, 32, 4, 500, 2, 5)])
def test_adc_distances_are_reconstruction_distances(rng, backend, metric, d, m, nbits, nb, nq, k):
    pq = trained_pq(rng, d, m, nbits)
    index = index_with(pq, metric)
    xb = blobs(rng, nb, d)
    index.add(xb)
    xq = blobs(rng, nq, d)
    D, I = index.search(xq, k)              # (m * nbits) % 128 == 0: rows read as 16-byte pieces
    true = recon_dist(xq, pq.decode(pq.encode(xb)), metric)
    check_topk(D, I, true, np.arange(nb), k, metric)


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_search_matches_faiss_index_pq_with_the_same_codebooks(rng, metric):
    faiss = pytest.importorskip("faiss")
    d, m, nbits, nb = 32, 8, 8, 4000
    pq = trained_pq(rng, d, m, nbits)
    index = index_with(pq, metric)
    xb, xq = blobs(rng, nb, d), blobs(rng, 20, d)
    index.add(xb)
    ref = faiss.IndexPQ(d, m, nbits, faiss.METRIC_INNER_PRODUCT if metric == "inner" else faiss.METRIC_L2)
    faiss.copy_array_to_vector(pq.centroids.ravel(), ref.pq.centroids)
    ref.is_trained = True
    ref.add(xb)
    D, I = index.search(xq, 10)
    Df, If = ref.search(xq, 10)
    np.testing.assert_allclose(D, Df, rtol=1e-4, atol=1e-4)
    # Where the ids differ they are ties: vectors of equal codes (blobs share codes) or equal sums.
    true = recon_dist(xq, pq.decode(pq.encode(xb)), metric)
    for r, j in np.argwhere(I != If):
        assert abs(true[r, I[r, j]] - Df[r, j]) <= 1e-4 * max(1.0, abs(Df[r, j])), (r, j)
    check_topk(D, I, true, np.arange(nb), 10, metric)


@pytest.mark.parametrize("k", [5, 700])
def test_split_work_gives_the_same_result(rng, monkeypatch, k):
    pq = trained_pq(rng, 16, 4, 8)
    index = index_with(pq)
    index.add(blobs(rng, 2500, 16))
    xq = blobs(rng, 9, 16)
    whole = index.search(xq, k)
    for window, slice_rows in ((1000, 0), (0, 300), (777, 256), (2500, 97)):
        monkeypatch.setattr(pqmod, "_WINDOW_ROWS", window)
        monkeypatch.setattr(pqmod, "_SLICE_ROWS", slice_rows)
        for a, b in zip(index.search(xq, k), whole):
            np.testing.assert_array_equal(a, b)


def test_large_k_uses_device_buffers(rng):
    # k beyond what shared memory holds: candidate buffers in device scratch.
    pq = trained_pq(rng, 8, 2, 8)
    index = index_with(pq)
    xb = blobs(rng, 6000, 8)
    index.add(xb)
    xq = blobs(rng, 3, 8)
    D, I = index.search(xq, 4000)
    check_topk(D, I, recon_dist(xq, pq.decode(pq.encode(xb)), "sqeuclidean"), np.arange(6000), 4000,
               "sqeuclidean")


@pytest.mark.parametrize("metric,scale", [("sqeuclidean", 1.0), ("inner", 1.0), ("sqeuclidean", 300.0),
                                          ("sqeuclidean", 1e-3)])
def test_float16_tables(rng, metric, scale):
    # Two queries per lookup, entries rounded to float16 after a power-of-two scale per query:
    # right to ~1e-3 whatever the magnitude of the data (no overflow at x300, no underflow at x1e-3).
    pq = trained_pq(rng, 32, 8, 8)
    pq.centroids = pq.centroids * scale
    index = PQIndex(32, 8, 8, metric, table_dtype="float16")
    index.pq.centroids = pq.centroids
    assert index.table_dtype == "float16"
    xb, xq = blobs(rng, 3000, 32) * scale, blobs(rng, 9, 32) * scale
    index.add(xb)
    D, I = index.search(xq, 20)
    check_topk(D, I, recon_dist(xq, pq.decode(pq.encode(xb)), metric), np.arange(3000), 20, metric,
               rtol=2e-3, atol=2e-3)
    D1, I1 = index.search(xq[:1], 20)                   # a lone query runs with float32 tables
    check_topk(D1, I1, recon_dist(xq[:1], pq.decode(pq.encode(xb)), metric), np.arange(3000), 20, metric)
    with pytest.raises(ValueError, match="table_dtype"):
        PQIndex(32, 8, table_dtype="float64")


# ---- PQIndex: quality against faiss ----------------------------------------------------------------

@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_recall_against_faiss_index_pq(metric):
    faiss = pytest.importorskip("faiss")
    rng = np.random.default_rng(5)
    d, m, nbits, nb, nq = 32, 8, 6, 8000, 200
    # Many small clusters: PQ codes separate them, so recall@10 is neither near 0 nor near 1.
    xt, xb = blobs(rng, 4000, d, 2000, 0.3, seed_centers=1), blobs(rng, nb, d, 2000, 0.3, seed_centers=1)
    xq = blobs(rng, nq, d, 2000, 0.3, seed_centers=1)
    fm = faiss.METRIC_INNER_PRODUCT if metric == "inner" else faiss.METRIC_L2
    exact = faiss.IndexFlatIP(d) if metric == "inner" else faiss.IndexFlatL2(d)
    exact.add(xb)
    _, gt = exact.search(xq, 10)

    def recall(I):
        return np.mean([len(set(a) & set(b)) / 10 for a, b in zip(I, gt)])
    ref = faiss.IndexPQ(d, m, nbits, fm)
    ref.train(xt)
    ref.add(xb)
    index = PQIndex(d, m, nbits, metric)
    vaccel.set_backend("cpu")      # the same k-means, quicker than lavapipe at this size
    index.train(xt)
    vaccel.set_backend("vulkan")
    index.add(xb)
    ours, theirs = recall(index.search(xq, 10)[1]), recall(ref.search(xq, 10)[1])
    assert ours >= theirs - 0.02, (ours, theirs)
    assert ours > 0.5, ours


# ---- PQIndex: the index interface -----------------------------------------------------------------

def test_untrained_index_raises(rng):
    index = PQIndex(8, 2)
    assert not index.is_trained and index.ntotal == 0
    for call in (lambda: index.add(np.zeros((3, 8))), lambda: index.search(np.zeros((1, 8)), 1)):
        with pytest.raises(vaccel.NotTrainedError, match="train"):
            call()
    with pytest.raises(ValueError, match="metric"):
        PQIndex(8, 2, metric="cosine")
    with pytest.raises(ValueError, match="divisible"):
        PQIndex(9, 2)


def test_ids_filters_and_removal(rng, backend):
    d, nb = 12, 900
    pq = trained_pq(rng, d, 4, 6)
    index = index_with(pq)
    xb, xq = blobs(rng, nb, d), blobs(rng, 4, d)
    ids = rng.choice(10 ** 12, size=nb, replace=False).astype(np.int64)
    index.add(xb[:400], ids[:400])
    index.add(device_array(xb[400:]), ids=ids[400:])
    assert index.ntotal == len(index) == nb
    np.testing.assert_array_equal(index.ids, ids)
    true = recon_dist(xq, pq.decode(pq.encode(xb)), "sqeuclidean")
    D, I0 = index.search(xq, 10)
    check_topk(D, I0, true, ids, 10, "sqeuclidean")
    allowed = ids[rng.choice(nb, 37, replace=False)]
    for f in (allowed, np.concatenate([allowed[::-1], [-5, 10 ** 13]]), np.isin(index.ids, allowed)):
        D, I = index.search(xq, 50, filter=f)
        check_topk(D, I, true, ids, 50, "sqeuclidean", allowed=allowed)
    for f in ([], np.zeros(nb, bool), np.array([-1, 10 ** 13])):
        D, I = index.search(xq, 3, filter=f)
        assert (I == -1).all() and (D == np.inf).all()
    with pytest.raises(ValueError, match="filter"):
        index.search(xq, 3, filter=np.ones(nb - 1, bool))
    with pytest.raises(TypeError, match="filter"):
        index.search(xq, 3, filter=np.ones(5, np.float32))
    with pytest.raises(ValueError, match="ids"):
        index.add(xb[:2], ids=ids[:2])                  # already stored
    with pytest.raises(ValueError, match="ids"):
        index.add(xb[:2], ids=[7, 7])
    with pytest.raises(TypeError, match="ids"):
        index.add(xb[:2], ids=[1.0, 2.0])
    assert index.ntotal == nb
    gone = np.unique(np.concatenate([I0[:, 0], ids[:300]]))
    assert index.remove_ids(np.concatenate([gone, [1, 2]])) == gone.size
    keep = ~np.isin(ids, gone)
    np.testing.assert_array_equal(index.ids, ids[keep])
    D, I = index.search(xq, 20)
    check_topk(D, I, true[:, keep], ids[keep], 20, "sqeuclidean")
    assert index.remove_ids(gone) == 0
    np.testing.assert_array_equal(index.reconstruct(int(ids[keep][3])), pq.decode(pq.encode(xb[keep][3:4]))[0])
    with pytest.raises(ValueError, match="not in the index"):
        index.reconstruct(int(gone[0]))
    index.add(xb[:2])                                   # default ids continue after the largest
    np.testing.assert_array_equal(index.ids[-2:], [ids.max() + 1, ids.max() + 2])
    with pytest.raises(ValueError, match="reset"):
        index.train(xb)                                 # stored codes belong to these codebooks
    index.reset()
    assert index.ntotal == 0 and index.is_trained
    D, I = index.search(xq, 4)
    assert (I == -1).all() and (D == np.inf).all() and D.shape == (4, 4)
    index.add(xb[:3])
    np.testing.assert_array_equal(index.ids, [0, 1, 2])


def test_padding_dtypes_and_backends_agree(rng):
    pq = trained_pq(rng, 16, 4, 8)
    index = index_with(pq, "inner")
    xb = blobs(rng, 50, 16)
    vaccel.set_backend("cpu")
    index.add(xb[:20])                                  # added on the CPU backend ...
    vaccel.set_backend("vulkan")
    index.add(xb[20:])                                  # ... then uploaded with the rest
    xq = blobs(rng, 6, 16)
    D, I = index.search(xq, 64)                         # k beyond ntotal pads
    assert (I[:, 50:] == -1).all() and (D[:, 50:] == -np.inf).all()
    vaccel.set_backend("cpu")
    Dc, Ic = index.search(xq, 64)
    vaccel.set_backend("vulkan")
    np.testing.assert_allclose(D[:, :50], Dc[:, :50], rtol=1e-5, atol=1e-4)
    assert (I == Ic).mean() > 0.97
    for q in (xq.astype(np.float16), xq.astype(np.float64), np.asfortranarray(xq), device_array(xq)):
        Dq, Iq = index.search(q, 5)
        Dr, Ir = index.search(np.asarray(q.numpy() if hasattr(q, "numpy") else q, np.float32), 5)
        np.testing.assert_array_equal(Iq, Ir)
    assert index.search(np.empty((0, 16)), 3)[0].shape == (0, 3)
    with pytest.raises(ValueError, match="q"):
        index.search(xq[:, :8], 3)
    with pytest.raises(ValueError, match="k"):
        index.search(xq, 0)
    with pytest.raises(TypeError, match="k"):
        index.search(xq, 2.0)


def test_save_load_round_trip_and_damage(rng, tmp_path):
    pq = trained_pq(rng, 12, 3, 5)
    index = PQIndex(12, 3, 5, "inner", table_dtype="float16")
    index.pq.centroids = pq.centroids
    xb, xq = blobs(rng, 400, 12), blobs(rng, 5, 12)
    index.add(xb, ids=rng.choice(10 ** 6, 400, replace=False))
    index.remove_ids(index.ids[::7])
    path = tmp_path / "pq.vx"
    index.save(path)
    for loaded in (PQIndex.load(path), vaccel.load_index(path)):
        assert isinstance(loaded, PQIndex)
        assert (loaded.d, loaded.m, loaded.nbits, loaded.metric, loaded.ntotal, loaded.table_dtype) == \
            (12, 3, 5, "inner", index.ntotal, "float16")
        np.testing.assert_array_equal(loaded.ids, index.ids)
        np.testing.assert_array_equal(loaded.pq.centroids, pq.centroids)
        for a, b in zip(loaded.search(xq, 30), index.search(xq, 30)):
            np.testing.assert_array_equal(a, b)
        loaded.add(xb[:1])
        assert loaded.ids[-1] == index._next_id
    empty = tmp_path / "empty.vx"
    PQIndex(8, 4, 4).save(empty)
    e = PQIndex.load(empty)
    assert not e.is_trained and e.ntotal == 0 and (e.d, e.m, e.nbits) == (8, 4, 4)
    good = path.read_bytes()
    bad = tmp_path / "bad.vx"
    for data in (good[:-1], good + b"\0", good[:200] + bytes([good[200] ^ 1]) + good[201:], b"", good[:30]):
        bad.write_bytes(data)
        with pytest.raises(vaccel.IndexFileError):
            PQIndex.load(bad)
    ok = {"d": 12, "m": 3, "nbits": 5, "metric": "inner", "trained": True, "next_id": 10, "max_iter": 25,
          "init": "k-means++", "random_state": 1234, "table_dtype": "float32"}
    cent = pq.centroids
    codes = np.zeros((4, 2), np.uint8)
    for params, arrays in [
            (dict(ok, m=5), {"codes": codes, "ids": np.arange(4), "centroids": cent}),
            (dict(ok, nbits=9), {"codes": codes, "ids": np.arange(4), "centroids": cent}),
            (dict(ok, metric="l1"), {"codes": codes, "ids": np.arange(4), "centroids": cent}),
            (dict(ok, init="best"), {"codes": codes, "ids": np.arange(4), "centroids": cent}),
            (dict(ok, table_dtype="int8"), {"codes": codes, "ids": np.arange(4), "centroids": cent}),
            (ok, {"codes": np.zeros((4, 3), np.uint8), "ids": np.arange(4), "centroids": cent}),
            (ok, {"codes": codes, "ids": np.arange(3), "centroids": cent}),
            (ok, {"codes": codes, "ids": np.arange(4), "centroids": cent[:2]}),
            (ok, {"codes": codes, "ids": np.arange(4)}),
            (dict(ok, trained=False), {"codes": codes, "ids": np.arange(4)}),
            (dict(ok, next_id=2), {"codes": codes, "ids": np.arange(4), "centroids": cent})]:
        indexfile.write(bad, "pq", params, arrays)
        with pytest.raises(vaccel.IndexFileError, match="inconsistent"):
            PQIndex.load(bad)
    indexfile.write(bad, "pq", ok, {"codes": codes, "ids": np.arange(4), "centroids": cent})
    assert PQIndex.load(bad).ntotal == 4                 # the description above is complete
    vaccel.FlatIndex(12).save(bad)
    with pytest.raises(vaccel.IndexFileError, match="flat"):
        PQIndex.load(bad)
    assert PQIndex.load(path).ntotal == index.ntotal


def test_cpu_reference_matches_numpy(rng):
    # The oracle itself, on a case small enough to enumerate.
    cent = rng.standard_normal((2, 4, 3)).astype(np.float32)
    labels = rng.integers(0, 4, (30, 2))
    q = rng.standard_normal((3, 6)).astype(np.float32)
    recon = np.concatenate([cent[0][labels[:, 0]], cent[1][labels[:, 1]]], 1)
    D, I = cpu.pq_search(q, cent, labels, 5, "sqeuclidean", filter=np.arange(0, 30, 2))
    full = recon_dist(q, recon, "sqeuclidean")
    for r in range(3):
        order = np.arange(0, 30, 2)[np.argsort(full[r, ::2], kind="stable")[:5]]
        np.testing.assert_array_equal(I[r], order)
        np.testing.assert_allclose(D[r], full[r, order], rtol=1e-6)
