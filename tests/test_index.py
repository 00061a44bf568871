# vaccel.FlatIndex against faiss's flat indexes (IndexFlatL2, IndexFlatIP, IndexIDMap) and the
# NumPy reference: search, ids, filters, removal, range search, float16 storage, persistence and
# its failure modes, argument checks. Sizes stay small: lavapipe is a CPU.

import hashlib
import os
import struct
import sys
import zlib

import numpy as np
import pytest

import vaccel
from vaccel import cpu, indexfile
from vaccel.index import FlatIndex, IndexFileError

from helpers import device_array, oracle

faiss = pytest.importorskip("faiss")


def faiss_index(metric, d, xb=None, ids=None):
    base = faiss.IndexFlatIP(d) if metric == "inner" else faiss.IndexFlatL2(d)
    index = faiss.IndexIDMap(base)
    if xb is not None:
        index.add_with_ids(np.ascontiguousarray(xb, np.float32),
                           np.arange(len(xb), dtype=np.int64) if ids is None else ids)
    return index


def assert_neighbours(D, I, D_ref, I_ref, true_dist, metric="sqeuclidean", rtol=1e-4, atol=1e-4):
    """(D, I) agree with the reference: same padding, D within tolerance, and where an id differs
    the two are ties: the true distance of the id we return equals the reference's at that rank.
    true_dist(q, id) is the exact float64 distance."""
    assert D.dtype == np.float32 and I.dtype == np.int64
    assert D.shape == D_ref.shape and I.shape == I_ref.shape
    pad = I_ref < 0
    np.testing.assert_array_equal(I < 0, pad)
    assert (D[pad] == (-np.inf if metric == "inner" else np.inf)).all()
    np.testing.assert_allclose(D[~pad], D_ref[~pad], rtol=rtol, atol=atol)
    bad = np.argwhere((I != I_ref) & ~pad)
    assert len(bad) <= max(2, I.size // 100), f"{len(bad)} of {I.size} neighbours differ"
    for q, j in bad:
        t = true_dist(q, I[q, j])
        assert abs(t - D_ref[q, j]) <= atol + rtol * abs(D_ref[q, j]), (q, j, I[q, j], t, D_ref[q, j])
    for row in I:
        got = row[row >= 0]
        assert np.unique(got).size == got.size


def exact(xq, xb, metric, ids=None):
    """true_dist for assert_neighbours from the float64 oracle; ids map id -> row."""
    dist = oracle(xq, xb, metric)
    pos = None if ids is None else {int(v): i for i, v in enumerate(ids)}
    return lambda q, i: dist[q, i if pos is None else pos[int(i)]]


def tol(xq, xb):
    """atol for float32 GEMM-form distances: a little above float32 rounding of the norms."""
    s = float((np.asarray(xq, np.float64) ** 2).sum(1).max() + (np.asarray(xb, np.float64) ** 2).sum(1).max())
    return 2e-6 * xq.shape[1] * max(s, 1.0) + 1e-5


@pytest.mark.parametrize("nb,nq,d,k", [(1000, 1, 7, 10), (5, 3, 1, 10), (2049, 17, 64, 100),
                                       (1, 1, 1, 1), (3001, 5, 13, 1), (300, 8, 5, 300),
                                       (1025, 4, 3, 1024), (5000, 2, 16, 4096), (4097, 3, 33, 2049)])
@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_search_matches_faiss(rng, metric, nb, nq, d, k):
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    index = FlatIndex(d, metric)
    index.add(xb)
    assert index.ntotal == len(index) == nb and index.d == d and index.metric == metric
    D, I = index.search(xq, k)
    Df, If = faiss_index(metric, d, xb).search(xq, k)
    assert_neighbours(D, I, Df, If, exact(xq, xb, metric), metric, atol=tol(xq, xb))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "cityblock", "chebyshev", "minkowski",
                                    "bitwise_hamming"])
def test_search_other_metrics_match_reference(rng, metric):
    if metric == "bitwise_hamming":
        xb = rng.integers(0, 256, size=(700, 5), dtype=np.uint8)
        xq = rng.integers(0, 256, size=(4, 5), dtype=np.uint8)
    else:
        xb = rng.standard_normal((700, 6)).astype(np.float32)
        xq = rng.standard_normal((4, 6)).astype(np.float32)
    p = 3.0 if metric == "minkowski" else 2.0
    index = FlatIndex(5 if metric == "bitwise_hamming" else 6, metric, p=p)
    assert index.dtype == ("uint8" if metric == "bitwise_hamming" else "float32")
    index.add(xb[:300])
    index.add(xb[300:])
    D, I = index.search(xq, 20)
    De, Ie = cpu.knn(xq, xb, 20, metric, p=p)
    if metric == "bitwise_hamming":
        np.testing.assert_array_equal(D, De)
        np.testing.assert_array_equal(I, Ie)
    else:
        dist = oracle(xq, xb, metric, p)
        assert_neighbours(D, I, De, Ie, lambda q, i: dist[q, i], metric, atol=1e-4)
    radius = float(np.median(De[:, 10]))
    lims, Dr, Ir = index.range_search(xq, radius)
    full = cpu.cdist(xq, xb, metric, p=p)
    for q in range(len(xq)):
        got = Ir[lims[q]:lims[q + 1]]
        assert (np.diff(Dr[lims[q]:lims[q + 1]]) >= 0).all()
        for i in set(got.tolist()) ^ set(np.flatnonzero(full[q] < radius).tolist()):
            assert abs(full[q, i] - radius) <= 1e-5 * max(1.0, radius), (q, i)


def test_backends_agree(rng):
    xb = rng.standard_normal((2000, 19)).astype(np.float32)
    xq = rng.standard_normal((7, 19)).astype(np.float32)
    index = FlatIndex(19)
    vaccel.set_backend("cpu")
    index.add(xb[:1000])
    Dc, Ic = index.search(xq, 15)
    vaccel.set_backend("vulkan")
    Dv, Iv = index.search(xq, 15)                  # uploads the rows added on the CPU backend
    index.add(xb[1000:])
    Dv2, Iv2 = index.search(xq, 15)
    vaccel.set_backend("cpu")
    Dc2, Ic2 = index.search(xq, 15)
    assert_neighbours(Dv, Iv, Dc, Ic, exact(xq, xb, "sqeuclidean"), atol=tol(xq, xb))
    assert_neighbours(Dv2, Iv2, Dc2, Ic2, exact(xq, xb, "sqeuclidean"), atol=tol(xq, xb))


def test_add_uploads_only_new_rows(rng):
    vaccel.set_backend("vulkan")
    d = 16
    index = FlatIndex(d)
    index.add(rng.standard_normal((100, d)).astype(np.float32))   # capacity 100 -> 200 later
    index.search(rng.standard_normal((1, d)).astype(np.float32), 1)
    index.add(rng.standard_normal((20, d)).astype(np.float32))     # grows once (capacity 200)
    with vaccel.profile() as prof:
        index.add(rng.standard_normal((30, d)).astype(np.float32))
    assert prof.to_dict()["bytes_uploaded"] == 30 * d * 4
    assert index.ntotal == 150


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_float16_storage_recall(rng, metric):
    d, nb, nq, k = 64, 20000, 100, 10
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    index = FlatIndex(d, metric, dtype="float16")
    assert index.dtype == "float16"
    index.add(xb)
    D, I = index.search(xq, k)
    Df, If = faiss_index(metric, d, xb).search(xq, k)
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(I, If)])
    assert recall >= 0.99, recall
    np.testing.assert_allclose(D, Df, rtol=1e-2, atol=0.05 * np.sqrt(d))
    np.testing.assert_array_equal(index.reconstruct(5), xb[5].astype(np.float16).astype(np.float32))


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_ids_and_filters_match_faiss(rng, backend, metric):
    d, nb, nq = 11, 1500, 6
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    ids = rng.choice(10 ** 12, size=nb, replace=False).astype(np.int64)
    index = FlatIndex(d, metric)
    index.add(xb[:700], ids[:700])
    index.add(xb[700:], ids=ids[700:])
    np.testing.assert_array_equal(index.ids, ids)
    ref = faiss_index(metric, d, xb, ids)
    true = exact(xq, xb, metric, ids)
    a = tol(xq, xb)
    D, I = index.search(xq, 10)
    assert_neighbours(D, I, *ref.search(xq, 10), true, metric, atol=a)

    pick = rng.choice(nb, size=37, replace=False)
    allowed = ids[pick]
    # The filtered oracle: faiss over the allowed rows alone (search-time selectors are missing
    # from older faiss builds, such as Debian 12's python3-faiss).
    Df, If = faiss_index(metric, d, xb[pick], allowed).search(xq, 50)
    unknown = np.array([-5, 10 ** 13], np.int64)                     # not stored: ignored
    for f in (allowed, np.concatenate([allowed[::-1], allowed[:3], unknown]), np.isin(index.ids, allowed)):
        D, I = index.search(xq, 50, filter=f)
        assert set(I[I >= 0].tolist()) <= set(allowed.tolist())
        assert ((I >= 0).sum(axis=1) == 37).all()
        assert_neighbours(D, I, Df, If, true, metric, atol=a)
    worst = -np.inf if metric == "inner" else np.inf
    for f in (np.array([], np.int64), [], np.zeros(nb, bool), unknown):
        D, I = index.search(xq, 4, filter=f)
        assert (I == -1).all() and (D == worst).all()
    D, I = index.search(xq, 3, filter=ids[:1])
    assert (I[:, 0] == ids[0]).all() and (I[:, 1:] == -1).all() and (D[:, 1:] == worst).all()
    with pytest.raises(ValueError, match="filter"):
        index.search(xq, 3, filter=np.ones(nb - 1, bool))
    with pytest.raises(TypeError, match="filter"):
        index.search(xq, 3, filter=np.ones(5, np.float32))


def test_default_ids_and_duplicates(rng):
    x = rng.standard_normal((10, 3)).astype(np.float32)
    index = FlatIndex(3)
    index.add(x[:2])
    index.add(x[2:4], ids=[10, 7])
    index.add(x[4:6])                                   # continues after the largest id so far
    np.testing.assert_array_equal(index.ids, [0, 1, 10, 7, 11, 12])
    for bad in ([1, 20], [20, 20], [12, 30]):
        with pytest.raises(ValueError, match="ids"):
            index.add(x[6:8], ids=bad)
    with pytest.raises(ValueError, match="ids"):
        index.add(x[6:8], ids=[-1, 30])
    with pytest.raises(ValueError, match="ids"):
        index.add(x[6:8], ids=[30])
    with pytest.raises(TypeError, match="ids"):
        index.add(x[6:8], ids=[30.0, 31.0])
    assert index.ntotal == 6                            # failed adds change nothing
    np.testing.assert_array_equal(index.ids, [0, 1, 10, 7, 11, 12])
    D, I = index.search(x[2:4], 1)
    np.testing.assert_array_equal(I[:, 0], [10, 7])
    np.testing.assert_array_equal(D[:, 0], [0, 0])
    index.add(np.empty((0, 3), np.float32))
    assert index.ntotal == 6


def test_remove_ids_then_search_matches_faiss(rng, backend):
    d, nb, nq = 9, 1200, 5
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    ids = (np.arange(nb, dtype=np.int64) * 3 + 5)
    index = FlatIndex(d)
    index.add(xb, ids)
    ref = faiss_index("sqeuclidean", d, xb, ids)
    D0, I0 = index.search(xq, 5)
    gone = np.unique(np.concatenate([I0[:, :3].ravel(), ids[rng.choice(nb, 300, replace=False)]]))
    assert index.remove_ids(np.concatenate([gone, gone[:4], [1, 2, 10 ** 9]])) == gone.size
    assert ref.remove_ids(gone) == gone.size
    assert index.ntotal == nb - gone.size
    keep = ~np.isin(ids, gone)
    np.testing.assert_array_equal(index.ids, ids[keep])            # storage order kept
    D, I = index.search(xq, 20)
    assert not np.isin(I, gone).any()
    assert_neighbours(D, I, *ref.search(xq, 20), exact(xq, xb, "sqeuclidean", ids), atol=tol(xq, xb))
    assert index.remove_ids(gone) == 0
    assert index.remove_ids([]) == 0
    with pytest.raises(ValueError):
        index.reconstruct(int(gone[0]))
    np.testing.assert_array_equal(index.reconstruct(int(ids[keep][7])), xb[keep][7])
    # Filters refer to the compacted storage order.
    mask = np.zeros(index.ntotal, bool)
    mask[:10] = True
    _, I = index.search(xq, 20, filter=mask)
    assert set(I[I >= 0].tolist()) <= set(ids[keep][:10].tolist())
    index.add(xb[:2])                                               # after the largest id given
    np.testing.assert_array_equal(index.ids[-2:], [ids.max() + 1, ids.max() + 2])
    # Removing everything: an empty index that still searches.
    n = index.ntotal
    assert index.remove_ids(index.ids) == n
    assert index.ntotal == 0
    D, I = index.search(xq, 3)
    assert (I == -1).all() and (D == np.inf).all()


def test_reconstruct_and_reset(rng):
    x = rng.standard_normal((50, 4)).astype(np.float64)
    index = FlatIndex(4)
    index.add(x, ids=np.arange(50) * 2)
    v = index.reconstruct(10)
    assert v.dtype == np.float32
    np.testing.assert_array_equal(v, x[5].astype(np.float32))
    for bad in (1, 101, -1):
        with pytest.raises(ValueError, match=str(bad)):
            index.reconstruct(bad)
    index.reset()
    assert index.ntotal == 0 and index.ids.size == 0
    D, I = index.search(x[:2], 4)
    assert (I == -1).all() and D.shape == (2, 4)
    with pytest.raises(ValueError):
        index.reconstruct(10)
    index.add(x[:3])
    np.testing.assert_array_equal(index.ids, [0, 1, 2])
    np.testing.assert_array_equal(index.search(x[:3], 1)[1][:, 0], [0, 1, 2])


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner"])
def test_range_search_matches_faiss(rng, backend, metric, monkeypatch):
    d, nb, nq = 8, 3000, 12
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    ids = rng.permutation(nb).astype(np.int64) + 100
    index = FlatIndex(d, metric)
    index.add(xb, ids)
    ref = faiss_index(metric, d, xb, ids)
    radius = 3.0 if metric == "sqeuclidean" else 4.0
    monkeypatch.setattr(sys.modules[FlatIndex.__module__], "_RANGE_BLOCK_BYTES", 5 * nb * 4)   # blocks of 5 queries
    lims, D, I = index.range_search(xq, radius)
    lf, Df, If = ref.range_search(xq, radius)
    assert lims.dtype == np.int64 and lims.shape == (nq + 1,) and D.dtype == np.float32 and I.dtype == np.int64
    assert lims[-1] == D.size == I.size > nq
    dist = oracle(xq, xb, metric)
    pos = {int(v): i for i, v in enumerate(ids)}
    for q in range(nq):
        got, want = I[lims[q]:lims[q + 1]], If[lf[q]:lf[q + 1]]
        dq = D[lims[q]:lims[q + 1]]
        # Sorted best first, every result inside the radius.
        assert (np.diff(dq) >= 0).all() if metric != "inner" else (np.diff(dq) <= 0).all()
        assert (dq < radius).all() if metric != "inner" else (dq > radius).all()
        true = np.array([dist[q, pos[int(i)]] for i in got])
        np.testing.assert_allclose(dq, true, rtol=1e-4, atol=1e-4)
        # Same sets, except for rows within rounding of the radius.
        for i in set(got.tolist()) ^ set(want.tolist()):
            assert abs(dist[q, pos[i]] - radius) < 1e-4, (q, i, dist[q, pos[i]])
    # Nothing inside: all empty; an empty index: all empty.
    lims, D, I = index.range_search(xq, -1.0 if metric == "sqeuclidean" else 1e9)
    assert (lims == 0).all() and D.size == 0 and I.size == 0
    lims, D, I = FlatIndex(d, metric).range_search(xq, 1.0)
    assert lims.shape == (nq + 1,) and (lims == 0).all() and D.size == I.size == 0


def test_float16_odd_rows_and_columns(rng):
    # Appends land at offsets that are not multiples of 4 bytes; filters and removal on top.
    d = 5
    xb = rng.standard_normal((40, d)).astype(np.float32)
    xq = rng.standard_normal((6, d)).astype(np.float32)
    index = FlatIndex(d, dtype="float16")
    for a, b in ((0, 3), (3, 8), (8, 9), (9, 40)):
        index.add(xb[a:b])
    xb16 = xb.astype(np.float16).astype(np.float32)
    De, Ie = cpu.knn(xq, xb16, 7)
    D, I = index.search(xq, 7)
    assert_neighbours(D, I, De, Ie, exact(xq, xb16, "sqeuclidean"), atol=tol(xq, xb16))
    D, I = index.search(xq.astype(np.float16), 7)
    De, Ie = cpu.knn(xq.astype(np.float16), xb16, 7)
    assert_neighbours(D, I, De, Ie, exact(xq.astype(np.float16), xb16, "sqeuclidean"), atol=tol(xq, xb16))
    index.remove_ids(np.arange(0, 40, 3))
    keep = np.arange(40) % 3 != 0
    De, Ie = cpu.knn(xq, xb16[keep], 7, filter=np.arange(0, keep.sum(), 2))
    D, I = index.search(xq, 7, filter=index.ids[::2])
    assert_neighbours(D, I, De, np.where(Ie >= 0, np.flatnonzero(keep)[Ie], -1),
                      exact(xq, xb16, "sqeuclidean"), atol=tol(xq, xb16))


def test_range_search_float16(rng):
    xb = rng.standard_normal((500, 5)).astype(np.float32)
    xq = rng.standard_normal((3, 5)).astype(np.float32)
    index = FlatIndex(5, dtype="float16")
    index.add(xb)
    lims, D, I = index.range_search(xq, 2.0)
    xb16 = xb.astype(np.float16).astype(np.float32)
    lf, _, If = faiss_index("sqeuclidean", 5, xb16).range_search(xq, 2.0)
    dist = oracle(xq, xb16, "sqeuclidean")
    for q in range(3):
        for i in set(I[lims[q]:lims[q + 1]].tolist()) ^ set(If[lf[q]:lf[q + 1]].tolist()):
            assert abs(dist[q, i] - 2.0) < 1e-4


@pytest.mark.parametrize("dtype,metric", [("float32", "sqeuclidean"), ("float16", "inner"),
                                          ("float32", "minkowski"), (None, "bitwise_hamming")])
def test_save_load_round_trip(rng, tmp_path, dtype, metric):
    d = 7
    if metric == "bitwise_hamming":
        xb = rng.integers(0, 256, size=(400, d), dtype=np.uint8)
        xq = rng.integers(0, 256, size=(5, d), dtype=np.uint8)
    else:
        xb = rng.standard_normal((400, d)).astype(np.float32)
        xq = rng.standard_normal((5, d)).astype(np.float32)
    index = FlatIndex(d, metric, dtype, p=3.0)
    index.add(xb[:200], ids=rng.choice(10 ** 6, 200, replace=False))
    index.add(xb[200:])
    index.remove_ids(index.ids[::7])
    path = tmp_path / "index.vx"
    index.save(path)
    index.save(str(path))                              # overwrite in place
    assert os.listdir(tmp_path) == ["index.vx"]        # no temporary file left behind
    loaded = FlatIndex.load(path)
    assert (loaded.d, loaded.metric, loaded.dtype, loaded.ntotal, loaded.p) == \
        (index.d, index.metric, index.dtype, index.ntotal, index.p)
    np.testing.assert_array_equal(loaded.ids, index.ids)
    for a, b in zip(loaded.search(xq, 30), index.search(xq, 30)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(loaded.range_search(xq, 5.0), index.range_search(xq, 5.0)):
        np.testing.assert_array_equal(a, b)
    i = int(index.ids[3])
    np.testing.assert_array_equal(loaded.reconstruct(i), index.reconstruct(i))
    loaded.add(xb[:1])                                 # the next default id survives the trip
    index.add(xb[:1])
    np.testing.assert_array_equal(loaded.ids, index.ids)
    empty = tmp_path / "empty.vx"
    FlatIndex(3, "cosine").save(empty)
    e = FlatIndex.load(empty)
    assert e.ntotal == 0 and e.d == 3 and e.metric == "cosine"


def _saved(tmp_path, rng):
    index = FlatIndex(6)
    index.add(rng.standard_normal((50, 6)).astype(np.float32))
    path = tmp_path / "good.vx"
    index.save(path)
    return path, path.read_bytes()


def _with_header_crc(data):
    n = indexfile._HEADER.size
    return data[:n] + struct.pack("<I", zlib.crc32(data[:n])) + data[n + 4:]


def test_damaged_files_raise(rng, tmp_path):
    path, good = _saved(tmp_path, rng)
    bad = tmp_path / "bad.vx"
    hs = indexfile.HEADER_SIZE
    cases = {
        "empty": b"",
        "magic only": good[:8],
        "truncated header": good[:40],
        "header only": good[:hs],
        "truncated description": good[:hs + 10],
        "truncated payload": good[:-1],
        "half payload": good[:len(good) // 2],
        "trailing bytes": good + b"\0",
        "description bit flip": good[:hs + 5] + bytes([good[hs + 5] ^ 1]) + good[hs + 6:],
        "payload bit flip": good[:400] + bytes([good[400] ^ 1]) + good[401:],
        "id bit flip": good[:-3] + bytes([good[-3] ^ 0x10]) + good[-2:],
        "header bit flip": good[:50] + bytes([good[50] ^ 4]) + good[51:],
        "random bytes": rng.integers(0, 256, size=len(good), dtype=np.uint8).tobytes(),
        "text": b"hello, this is not an index\n" * 10,
        "newer version": _with_header_crc(good[:8] + struct.pack("<I", 3) + good[12:]),
        "version 0": _with_header_crc(good[:8] + struct.pack("<I", 0) + good[12:]),
        # Header consistent (CRC fixed up) but the sizes do not match the file.
        "wrong payload size": _with_header_crc(good[:40] + struct.pack("<Q", len(good)) + good[48:]),
        "other kind": _with_header_crc(good[:16] + b"ivfpq".ljust(16, b"\0") + good[32:]),
        "unknown kind": _with_header_crc(good[:16] + b"manhattan".ljust(16, b"\0") + good[32:]),
    }
    for name, data in cases.items():
        bad.write_bytes(data)
        for load in (FlatIndex.load, vaccel.load_index):
            with pytest.raises(IndexFileError) as info:
                load(bad)
            assert isinstance(info.value, vaccel.VaccelError), name
            if name == "newer version":
                assert "newer" in str(info.value) or "version 3" in str(info.value)
    # Well-formed files whose description does not fit a FlatIndex.
    vec = rng.standard_normal((5, 6)).astype(np.float32)
    ok = {"d": 6, "metric": "sqeuclidean", "dtype": "float32", "p": 2.0, "next_id": 5}
    for params, arrays in [
            (dict(ok, d=7), {"vectors": vec, "ids": np.arange(5)}),
            (dict(ok, metric="l2"), {"vectors": vec, "ids": np.arange(5)}),
            (dict(ok, dtype="float16"), {"vectors": vec, "ids": np.arange(5)}),
            (dict(ok, next_id=3), {"vectors": vec, "ids": np.arange(5)}),
            (ok, {"vectors": vec, "ids": np.arange(4)}),
            (ok, {"vectors": vec, "ids": np.array([0, 1, 2, 2, 3])}),
            (ok, {"vectors": vec}),
            ({k: v for k, v in ok.items() if k != "d"}, {"vectors": vec, "ids": np.arange(5)}),
            (dict(ok, d="6"), {"vectors": vec, "ids": np.arange(5)})]:
        indexfile.write(bad, "flat", params, arrays)
        with pytest.raises(IndexFileError, match="inconsistent"):
            FlatIndex.load(bad)
    # A foreign index file: faiss's own format.
    faiss.write_index(faiss_index("sqeuclidean", 6, rng.standard_normal((20, 6))), str(bad))
    with pytest.raises(IndexFileError):
        FlatIndex.load(bad)
    with pytest.raises(FileNotFoundError):
        FlatIndex.load(tmp_path / "missing.vx")
    assert FlatIndex.load(path).ntotal == 50           # the good file still loads
    assert vaccel.load_index(path).ntotal == 50


def test_version_1_files_load(rng, tmp_path):
    """Files written by the first format (FlatIndex only) still load."""
    vec = rng.standard_normal((7, 5)).astype(np.float16)
    ids = np.array([3, 9, 4, 0, 11, 2, 5], np.int64)
    payload = vec.tobytes() + ids.tobytes()
    head = indexfile._V1_HEADER.pack(indexfile.MAGIC, 1, indexfile._V1_HEADER.size + 4, b"cosine", b"float16",
                                     5, 7, 12, 2.0, len(payload), hashlib.sha256(payload).digest())
    path = tmp_path / "v1.vx"
    path.write_bytes(head + struct.pack("<I", zlib.crc32(head)) + payload)
    for index in (FlatIndex.load(path), vaccel.load_index(path)):
        assert index.metric == "cosine" and index.dtype == "float16" and index.d == 5
        np.testing.assert_array_equal(index.ids, ids)
        np.testing.assert_array_equal(index.reconstruct(9), vec[1])
        index.add(vec[:1])
        assert index.ids[-1] == 12
    path.write_bytes(head + struct.pack("<I", zlib.crc32(head)) + payload[:-1])
    with pytest.raises(IndexFileError, match="truncated"):
        FlatIndex.load(path)


def test_failed_save_keeps_old_file(rng, tmp_path, monkeypatch):
    path, good = _saved(tmp_path, rng)
    index = FlatIndex(6)
    index.add(rng.standard_normal((9, 6)))
    with pytest.raises(OSError):
        index.save(tmp_path / "no-such-dir" / "x.vx")

    def failing_replace(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == good                   # the old file is untouched
    assert sorted(os.listdir(tmp_path)) == ["good.vx"]  # and the temporary file is gone
    index.save(path)
    assert FlatIndex.load(path).ntotal == 9


def test_argument_checks(rng):
    with pytest.raises(ValueError, match="d"):
        FlatIndex(0)
    with pytest.raises(TypeError, match="d"):
        FlatIndex(2.5)
    with pytest.raises(ValueError, match="metric"):
        FlatIndex(4, "l2")
    with pytest.raises(ValueError, match="dtype"):
        FlatIndex(4, dtype="float64")
    with pytest.raises(ValueError, match="dtype"):
        FlatIndex(4, "bitwise_hamming", dtype="float32")
    with pytest.raises(ValueError, match="p"):
        FlatIndex(4, "minkowski", p=0)
    index = FlatIndex(4)
    with pytest.raises(ValueError, match="x"):
        index.add(rng.standard_normal((3, 5)))
    with pytest.raises(ValueError, match="x"):
        index.add(rng.standard_normal(4))
    with pytest.raises(TypeError, match="x"):
        index.add(np.array([["a"] * 4]))
    with pytest.raises(TypeError, match="x"):
        FlatIndex(4, "bitwise_hamming").add(rng.standard_normal((3, 4)))
    index.add(rng.standard_normal((3, 4)))
    q = rng.standard_normal((2, 4))
    with pytest.raises(ValueError, match="q"):
        index.search(rng.standard_normal((2, 3)), 1)
    with pytest.raises(ValueError, match="k"):
        index.search(q, 0)
    with pytest.raises(TypeError, match="k"):
        index.search(q, 1.0)
    with pytest.raises(ValueError, match="q"):
        index.range_search(rng.standard_normal((2, 5)), 1.0)
    with pytest.raises(TypeError, match="radius"):
        index.range_search(q, "near")
    with pytest.raises(TypeError, match="ids"):
        index.remove_ids(np.array([1.5]))
    index.add(device_array(rng.standard_normal((2, 4)).astype(np.float32)))   # a vaccel.Array
    assert index.ntotal == 5
    # float64 and integer queries are computed as float32; k beyond ntotal pads.
    D, I = index.search(q, 7)
    assert D.dtype == np.float32 and I.shape == (2, 7) and (I[:, 5:] == -1).all()
    D2, I2 = index.search(q.astype(np.float32), 7)
    np.testing.assert_array_equal(I, I2)
