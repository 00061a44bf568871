# vaccel.SQIndex and vaccel.BinaryIndex: search against exact references (the decoded codes searched
# exhaustively in float64; faiss.IndexBinaryFlat, distances and tie order), recall of SQ8 against
# exact float search and against faiss.IndexScalarQuantizer, filters, ids, removal, persistence and
# damaged files, the fused Hamming path's fallbacks (long codes, large k, too many candidates),
# untrained use and argument checks. Sizes stay small: lavapipe is a CPU.

import struct
import zlib

import numpy as np
import pytest

import vaccel
from vaccel import indexfile, quantized_index
from vaccel.index import IndexFileError

from helpers import device_array, oracle


def recall(I, ref):
    k = ref.shape[1]
    return np.mean([len(np.intersect1d(a[a >= 0], b[b >= 0])) / k for a, b in zip(I, ref)])


def clustered(rng, n, d, centres=20):
    c = rng.standard_normal((centres, d)).astype(np.float32) * 4
    return (c[rng.integers(0, centres, n)] + rng.standard_normal((n, d)).astype(np.float32)).astype(np.float32)


def exact_on(xq, base, k, metric, ids=None, allowed=None):
    """Exact float64 k best of base rows (ties to the earlier row): D, I (ids when given)."""
    dist = oracle(xq, base, metric)
    if metric == "cosine":
        dist = np.nan_to_num(dist, nan=np.inf)
    key = -dist if metric == "inner" else dist
    rows = np.arange(len(base)) if allowed is None else np.flatnonzero(allowed)
    D = np.full((len(xq), k), -np.inf if metric == "inner" else np.inf)
    I = np.full((len(xq), k), -1, np.int64)
    for r in range(len(xq)):
        o = rows[np.lexsort((rows, key[r, rows]))][:k]
        D[r, :len(o)] = dist[r, o]
        I[r, :len(o)] = o if ids is None else ids[o]
    return D, I


def assert_sq_results(D, I, D_ref, I_ref, scale):
    """Same padding; distances within float32 GEMM-form error; a differing id is a tie."""
    assert D.dtype == np.float32 and I.dtype == np.int64 and D.shape == D_ref.shape
    pad = I_ref < 0
    np.testing.assert_array_equal(I < 0, pad)
    tol = 1e-5 * scale + 1e-5
    np.testing.assert_allclose(D[~pad], D_ref[~pad], rtol=1e-4, atol=tol)
    differ = (I != I_ref) & ~pad
    assert differ.sum() <= max(2, I.size // 50), f"{differ.sum()} of {I.size} ids differ"


# ---- SQIndex ------------------------------------------------------------------------------------

@pytest.mark.parametrize("metric", ["sqeuclidean", "inner", "cosine", "euclidean"])
@pytest.mark.parametrize("bits", [8, 4])
def test_sq_search_matches_decoded_reference(backend, rng, metric, bits):
    d = 13
    xb = rng.standard_normal((1500, d)).astype(np.float32)
    xq = rng.standard_normal((9, d)).astype(np.float32)
    index = vaccel.SQIndex(d, bits=bits, metric=metric)
    assert not index.is_trained
    index.train(xb[:700])
    index.add(xb[:600])
    index.add(xb[600:])
    assert index.ntotal == 1500 and index.d == d and index.code_size == (d if bits == 8 else 7)
    dec = index.quantizer.decode(index.codes)
    D, I = index.search(xq, 17)
    D_ref, I_ref = exact_on(xq, dec, 17, metric)
    scale = float((xq ** 2).sum(1).max() + (dec.astype(np.float64) ** 2).sum(1).max())
    assert_sq_results(D, I, D_ref, I_ref, scale if metric != "cosine" else 1.0)


@pytest.mark.parametrize("metric", ["sqeuclidean", "inner", "cosine", "euclidean"])
@pytest.mark.parametrize("bits", [8, 4])
def test_sq_fused_search(rng, monkeypatch, metric, bits):
    """knn's fused path over codes (GEMM tiles that decode the codes, keep pairs within a sampled
    bound, exact distances of the candidates) against the decoded reference and the tiled path;
    queries whose candidate list overflows (300 duplicates, a small cap) are redone tiled."""
    d = 12 if bits == 8 else 13
    xb = rng.standard_normal((9000, d)).astype(np.float32)
    xb[5000:5300] = xb[77]
    xq = np.concatenate([rng.standard_normal((20, d)).astype(np.float32), xb[77:78] + 1e-3])
    index = vaccel.SQIndex(d, bits=bits, metric=metric).train(xb)
    index.add(xb)
    D_ref, I_ref = exact_on(xq, index.quantizer.decode(index.codes), 12, metric)
    scale = 1.0 if metric == "cosine" else 100.0
    monkeypatch.setenv("VACCEL_KNN_FUSED", "0")
    D0, I0 = index.search(xq, 12)
    monkeypatch.setenv("VACCEL_KNN_FUSED", "1")
    for cap in ("4096", "16"):                                 # 16: the duplicates overflow it
        monkeypatch.setenv("VACCEL_KNN_CAP", cap)
        D, I = index.search(xq, 12)
        assert_sq_results(D, I, D_ref, I_ref, scale)
        assert (I == I0).mean() > 0.98
        np.testing.assert_allclose(D, D0, rtol=1e-4, atol=1e-5 * scale)
        np.testing.assert_array_equal(I[-1, :12], I_ref[-1, :12])     # duplicates: ties to the lower id


@pytest.mark.parametrize("metric", ["sqeuclidean", "cosine"])
@pytest.mark.parametrize("bits", [8, 4])
def test_sq_fused_search_whole_tiles(rng, monkeypatch, metric, bits):
    """Queries and code rows filling whole GEMM tiles over whole slices (the kernel's interior
    path: codes decoded four at a time with no bounds tests), next to edge tiles."""
    d = 32
    xb = rng.standard_normal((5000, d)).astype(np.float32)
    xq = rng.standard_normal((264, d)).astype(np.float32)
    index = vaccel.SQIndex(d, bits=bits, metric=metric).train(xb)
    index.add(xb)
    D_ref, I_ref = exact_on(xq, index.quantizer.decode(index.codes), 10, metric)
    monkeypatch.setenv("VACCEL_KNN_FUSED", "1")
    monkeypatch.setenv("VACCEL_NO_COOPMAT", "1")
    D, I = index.search(xq, 10)
    assert_sq_results(D, I, D_ref, I_ref, 1.0 if metric == "cosine" else 100.0)


@pytest.mark.parametrize("nb,nq,d,k", [(1, 1, 1, 1), (5, 3, 2, 10), (1031, 2, 7, 1031), (257, 65, 33, 5),
                                       (65537, 2, 3, 20)])
def test_sq_awkward_shapes(rng, nb, nq, d, k):
    xb = rng.standard_normal((nb, d)).astype(np.float32)
    xq = rng.standard_normal((nq, d)).astype(np.float32)
    index = vaccel.SQIndex(d, bits=4)
    index.train(xb)
    index.add(xb)
    D, I = index.search(xq, k)
    D_ref, I_ref = exact_on(xq, index.quantizer.decode(index.codes), k, "sqeuclidean")
    assert_sq_results(D, I, D_ref, I_ref, float((xq ** 2).sum(1).max() + (xb ** 2).sum(1).max()) * 2)


def test_sq_query_dtypes(rng):
    xb = rng.standard_normal((400, 10)).astype(np.float32)
    xq = rng.standard_normal((6, 20))
    index = vaccel.SQIndex(10).train(xb)
    index.add(xb)
    D, I = index.search(xq[:, :10].astype(np.float32), 8)
    for q in (xq[:, :10], np.asfortranarray(xq[:, :10]), xq[::-1, :10][::-1],
              device_array(xq[:, :10].astype(np.float32))):
        D2, I2 = index.search(q, 8)
        np.testing.assert_array_equal(I2, I)
        np.testing.assert_allclose(D2, D, rtol=1e-6)
    h = xq[:, :10].astype(np.float16)
    Dh, Ih = index.search(h, 8)
    D_ref, I_ref = exact_on(h.astype(np.float32), index.quantizer.decode(index.codes), 8, "sqeuclidean")
    assert_sq_results(Dh, Ih, D_ref, I_ref, 100.0)
    # float64 data trains and adds as its float32 values
    i64 = vaccel.SQIndex(10).train(xb.astype(np.float64))
    i64.add(xb.astype(np.float64))
    np.testing.assert_array_equal(i64.codes, index.codes)


@pytest.mark.parametrize("data", ["lowrank", "clustered", "gaussian"])
def test_sq8_recall_and_faiss(rng, data):
    """Recall@10 against exact float search. SQ8's own error bounds it: on data of low intrinsic
    dimension (embedding-like) and on many clusters it stays >= 0.98; on isotropic Gaussian noise,
    where neighbour distances crowd together, both vaccel and faiss land near 0.97-0.98."""
    faiss = pytest.importorskip("faiss")
    d, nb, nq, k = 32, 6000, 60, 10
    if data == "lowrank":
        x = rng.standard_normal((nb + nq, 8)) @ rng.standard_normal((8, d)) + 0.1 * rng.standard_normal((nb + nq, d))
    elif data == "clustered":
        x = clustered(rng, nb + nq, d, centres=500)
    else:
        x = rng.standard_normal((nb + nq, d))
    x = x.astype(np.float32)
    xb, xq = x[:nb], x[nb:]
    _, I_exact = exact_on(xq, xb, k, "sqeuclidean")
    index = vaccel.SQIndex(d, bits=8)
    index.train(xb)
    index.add(xb)
    _, I = index.search(xq, k)
    fi = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2)
    fi.train(xb)
    fi.add(xb)
    _, If = fi.search(xq, k)
    r, rf = recall(I, I_exact), recall(If, I_exact)
    assert r >= (0.98 if data != "gaussian" else 0.95), (r, rf)
    assert r >= rf - 0.01, (r, rf)
    # SQ4 on the same data: not below faiss's QT_4bit by more than noise.
    i4 = vaccel.SQIndex(d, bits=4).train(xb)
    i4.add(xb)
    f4 = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_4bit, faiss.METRIC_L2)
    f4.train(xb)
    f4.add(xb)
    assert recall(i4.search(xq, k)[1], I_exact) >= recall(f4.search(xq, k)[1], I_exact) - 0.03


def test_sq_ids_filters_removal(backend, rng):
    d = 6
    xb = rng.standard_normal((300, d)).astype(np.float32)
    xq = rng.standard_normal((4, d)).astype(np.float32)
    ids = rng.permutation(10_000)[:300].astype(np.int64)
    index = vaccel.SQIndex(d, metric="inner").train(xb)
    index.add(xb, ids=ids)
    np.testing.assert_array_equal(index.ids, ids)
    dec = index.quantizer.decode(index.codes)
    allowed_ids = ids[rng.random(300) < 0.3]
    for f, allowed in ((allowed_ids, np.isin(ids, allowed_ids)), (np.isin(ids, allowed_ids), np.isin(ids, allowed_ids)),
                       (np.array([ids[5], 123456789]), ids == ids[5]), (np.array([], np.int64), np.zeros(300, bool))):
        D, I = index.search(xq, 7, filter=f)
        D_ref, I_ref = exact_on(xq, dec, 7, "inner", ids=ids, allowed=allowed)
        assert_sq_results(D, I, D_ref, I_ref, 100.0)
        assert np.isin(I[I >= 0], ids[allowed]).all()
    gone = ids[::3]
    assert index.remove_ids(np.concatenate([gone, [10**9]])) == len(gone)
    assert index.remove_ids(gone) == 0
    keep = ~np.isin(ids, gone)
    D, I = index.search(xq, 7)
    D_ref, I_ref = exact_on(xq, dec[keep], 7, "inner", ids=ids[keep])
    assert_sq_results(D, I, D_ref, I_ref, 100.0)
    np.testing.assert_array_equal(index.reconstruct(int(ids[1])), dec[1])
    with pytest.raises(ValueError, match="not in the index"):
        index.reconstruct(int(gone[0]))
    index.add(xb[:2])                                   # default ids continue after the largest
    assert index.ids[-2:].tolist() == [int(ids.max()) + 1, int(ids.max()) + 2]
    index.reset()
    assert index.ntotal == 0 and index.is_trained
    D, I = index.search(xq, 3)
    assert (I == -1).all() and (D == -np.inf).all()


def test_sq_not_trained_and_arguments(rng):
    index = vaccel.SQIndex(4)
    x = rng.standard_normal((10, 4)).astype(np.float32)
    with pytest.raises(vaccel.NotTrainedError):
        index.add(x)
    with pytest.raises(vaccel.NotTrainedError):
        index.search(x, 3)
    index.train(x)
    index.add(x)
    with pytest.raises(ValueError, match="reset"):
        index.train(x)
    with pytest.raises(ValueError, match="metric"):
        vaccel.SQIndex(4, metric="cityblock")
    with pytest.raises(ValueError, match="bits"):
        vaccel.SQIndex(4, bits=2)
    with pytest.raises(ValueError, match="q"):
        index.search(np.zeros((2, 5), np.float32), 3)
    with pytest.raises(ValueError, match="k"):
        index.search(x, 0)
    with pytest.raises(TypeError, match="k"):
        index.search(x, 2.5)
    with pytest.raises(ValueError, match="ids"):
        index.add(x[:2], ids=[0, 1])                     # already in the index
    with pytest.raises(ValueError, match="filter"):
        index.search(x, 2, filter=np.ones(3, bool))
    assert index.ntotal == 10
    assert "SQIndex" in repr(index)


# ---- BinaryIndex --------------------------------------------------------------------------------

def faiss_binary(d, db):
    faiss = pytest.importorskip("faiss")
    index = faiss.IndexBinaryFlat(d)
    index.add(db)
    return index


@pytest.mark.parametrize("d,nb,nq,k,levels", [
    (256, 9000, 7, 10, 256),      # sampled bound (more rows than the sample)
    (64, 2000, 5, 50, 2),         # heavy ties: bytes 0 or 1
    (8, 300, 3, 400, 256),        # k past nb, 1-byte codes
    (24, 1, 2, 3, 256),           # one row, 3-byte codes padded to a word
    (1024, 500, 3, 5, 256),       # the longest fused codes
    (2048, 300, 2, 7, 256),       # beyond: vaccel.knn's tiles
    (32, 1300, 2, 1100, 4),       # k beyond the fused limit
])
def test_binary_matches_faiss(backend, rng, d, nb, nq, k, levels):
    db = rng.integers(0, levels, (nb, d // 8), dtype=np.uint8)
    q = rng.integers(0, levels, (nq, d // 8), dtype=np.uint8)
    index = vaccel.BinaryIndex(d)
    index.add(db[:nb // 2])
    index.add(db[nb // 2:])
    D, I = index.search(q, k)
    Df, If = faiss_binary(d, db).search(q, k)
    assert D.dtype == np.int32 and I.dtype == np.int64
    np.testing.assert_array_equal(D, Df)
    np.testing.assert_array_equal(I, If)          # faiss breaks ties by the lower id too


@pytest.mark.parametrize("d", [64, 256, 512])
def test_binary_carry_save_popcounts(rng, monkeypatch, d):
    """The Harley-Seal variant of the fused pass (VACCEL_HAMMING_CSA=1, codes of 8k words) counts
    the same distances."""
    db = rng.integers(0, 256, (3000, d // 8), dtype=np.uint8)
    db[::3] = 255
    q = rng.integers(0, 256, (9, d // 8), dtype=np.uint8)
    q[0] = 255
    monkeypatch.setenv("VACCEL_HAMMING_CSA", "1")
    index = vaccel.BinaryIndex(d)
    index.add(db)
    D, I = index.search(q, 20)
    Df, If = faiss_binary(d, db).search(q, 20)
    np.testing.assert_array_equal(D, Df)
    np.testing.assert_array_equal(I, If)


def test_binary_candidate_overflow(backend, rng, monkeypatch):
    """More rows within a query's bound than the fused pass keeps: the query is redone exactly."""
    base = rng.integers(0, 256, (1, 32), dtype=np.uint8)
    db = np.repeat(base, 600, axis=0)
    db[::7] = rng.integers(0, 256, (len(db[::7]), 32), dtype=np.uint8)
    q = np.concatenate([base, rng.integers(0, 256, (2, 32), dtype=np.uint8)])
    monkeypatch.setattr(quantized_index, "HAMMING_CAP", 64)
    index = vaccel.BinaryIndex(256)
    index.add(db)
    D, I = index.search(q, 9)
    Df, If = faiss_binary(256, db).search(q, 9)
    np.testing.assert_array_equal(D, Df)
    np.testing.assert_array_equal(I, If)


def test_binary_filters_ids_removal(backend, rng):
    d = 96
    db = rng.integers(0, 4, (2500, d // 8), dtype=np.uint8)
    q = rng.integers(0, 4, (6, d // 8), dtype=np.uint8)
    ids = (rng.permutation(2500) * 3 + 7).astype(np.int64)
    index = vaccel.BinaryIndex(d)
    index.add(db, ids=ids)
    dist = oracle(q, db, "bitwise_hamming")

    def expect(allowed, k):
        rows = np.flatnonzero(allowed)
        D = np.full((len(q), k), np.iinfo(np.int32).max, np.int32)
        I = np.full((len(q), k), -1, np.int64)
        for r in range(len(q)):
            o = rows[np.lexsort((rows, dist[r, rows]))][:k]
            D[r, :len(o)], I[r, :len(o)] = dist[r, o], ids[o]
        return D, I

    some = ids[rng.random(2500) < 0.05]
    for f, allowed in ((some, np.isin(ids, some)), (np.isin(ids, some), np.isin(ids, some)),
                       (ids[:3], np.isin(ids, ids[:3])), (np.array([], np.int64), np.zeros(2500, bool))):
        D, I = index.search(q, 12, filter=f)
        D_ref, I_ref = expect(allowed, 12)
        np.testing.assert_array_equal(D, D_ref)
        np.testing.assert_array_equal(I, I_ref)
    gone = ids[1::2]
    assert index.remove_ids(gone) == len(gone)
    D, I = index.search(q, 12)
    D_ref, I_ref = expect(~np.isin(ids, gone), 12)
    np.testing.assert_array_equal(D, D_ref)
    np.testing.assert_array_equal(I, I_ref)
    np.testing.assert_array_equal(index.reconstruct(int(ids[0])), db[0])
    index.reset()
    assert index.ntotal == 0
    D, I = index.search(q, 2)
    assert (I == -1).all() and (D == np.iinfo(np.int32).max).all()


def test_binary_quantizer_to_index(rng):
    """BinaryQuantizer codes searched by BinaryIndex: the Hamming distance of sign codes."""
    x = rng.standard_normal((800, 64)).astype(np.float32)
    bq = vaccel.BinaryQuantizer(64)
    index = vaccel.BinaryIndex(64)
    index.add(bq.encode(x))
    D, I = index.search(bq.encode(x[:5]), 1)
    assert (D[:, 0] == 0).all() and (I[:, 0] == np.arange(5)).all()
    signs = x > 0
    D, I = index.search(bq.encode(x[5:9]), 4)
    np.testing.assert_array_equal(D, np.sort((signs[5:9, None, :] != signs[None, :, :]).sum(2), 1)[:, :4])


def test_binary_arguments():
    with pytest.raises(ValueError, match="multiple of 8"):
        vaccel.BinaryIndex(12)
    with pytest.raises(ValueError, match="multiple of 8"):
        vaccel.BinaryIndex(0)
    index = vaccel.BinaryIndex(16)
    assert index.is_trained and index.train(np.zeros((2, 2), np.uint8)) is index
    with pytest.raises(TypeError, match="uint8"):
        index.add(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="shape"):
        index.add(np.zeros((2, 3), np.uint8))
    with pytest.raises(TypeError, match="uint8"):
        index.search(np.zeros((2, 16), np.float32), 1)
    assert "BinaryIndex" in repr(index)


# ---- persistence --------------------------------------------------------------------------------

def _with_header_crc(data):
    n = indexfile._HEADER.size
    return data[:n] + struct.pack("<I", zlib.crc32(data[:n])) + data[n + 4:]


@pytest.mark.parametrize("bits", [8, 4])
def test_sq_save_load(rng, tmp_path, bits):
    d = 7
    xb = rng.standard_normal((90, d)).astype(np.float32)
    index = vaccel.SQIndex(d, bits=bits, metric="cosine", per_dim=bits == 8).train(xb)
    index.add(xb, ids=np.arange(90, dtype=np.int64) * 2 + 1)
    index.remove_ids([3, 5])
    path = tmp_path / "sq.vx"
    index.save(path)
    for loaded in (vaccel.SQIndex.load(path), vaccel.load_index(path)):
        assert isinstance(loaded, vaccel.SQIndex)
        assert (loaded.d, loaded.bits, loaded.metric, loaded.per_dim, loaded.ntotal) == \
            (d, bits, "cosine", bits == 8, index.ntotal)
        np.testing.assert_array_equal(loaded.codes, index.codes)
        np.testing.assert_array_equal(loaded.ids, index.ids)
        np.testing.assert_array_equal(loaded.quantizer.vmin, index.quantizer.vmin)
        q = xb[:4]
        for a, b in zip(loaded.search(q, 5), index.search(q, 5)):
            np.testing.assert_array_equal(a, b)
        loaded.add(xb[:1])
        assert loaded.ids[-1] == 180
    untrained = tmp_path / "untrained.vx"
    vaccel.SQIndex(3).save(untrained)
    assert not vaccel.load_index(untrained).is_trained


def test_binary_save_load(rng, tmp_path):
    db = rng.integers(0, 256, (40, 5), dtype=np.uint8)
    index = vaccel.BinaryIndex(40)
    index.add(db)
    path = tmp_path / "b.vx"
    index.save(path)
    loaded = vaccel.load_index(path)
    assert isinstance(loaded, vaccel.BinaryIndex) and loaded.d == 40 and loaded.ntotal == 40
    np.testing.assert_array_equal(loaded.codes, db)
    for a, b in zip(loaded.search(db[:3], 4), index.search(db[:3], 4)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(IndexFileError, match="not a 'sq'"):
        vaccel.SQIndex.load(path)
    with pytest.raises(IndexFileError, match="not a 'flat'"):
        vaccel.FlatIndex.load(path)


def test_damaged_files_raise(rng, tmp_path):
    xb = rng.standard_normal((50, 6)).astype(np.float32)
    index = vaccel.SQIndex(6).train(xb)
    index.add(xb)
    path = tmp_path / "good.vx"
    index.save(path)
    good = path.read_bytes()
    bad = tmp_path / "bad.vx"
    hs = indexfile.HEADER_SIZE
    cases = {
        "empty": b"", "magic only": good[:8], "truncated header": good[:40], "header only": good[:hs],
        "truncated payload": good[:-1], "half": good[:len(good) // 2], "trailing": good + b"\0",
        "description bit flip": good[:hs + 5] + bytes([good[hs + 5] ^ 1]) + good[hs + 6:],
        "payload bit flip": good[:-100] + bytes([good[-100] ^ 1]) + good[-99:],
        "header bit flip": good[:50] + bytes([good[50] ^ 4]) + good[51:],
        "newer version": _with_header_crc(good[:8] + struct.pack("<I", 3) + good[12:]),
        "other kind": _with_header_crc(good[:16] + b"flat".ljust(16, b"\0") + good[32:]),
    }
    for name, data in cases.items():
        bad.write_bytes(data)
        for load in (vaccel.SQIndex.load, vaccel.load_index):
            if name == "other kind" and load is vaccel.load_index:
                continue                     # a consistent 'flat' header over an SQ description
            with pytest.raises(IndexFileError):
                load(bad)
    # Well-formed files whose description does not fit.
    codes = index.codes
    ok = {"d": 6, "bits": 8, "metric": "sqeuclidean", "per_dim": True, "trained": True, "next_id": 50}
    arrays = {"codes": codes, "ids": np.arange(50), "vmin": index.quantizer.vmin, "vmax": index.quantizer.vmax}
    for params, arr in [
            (dict(ok, d=7), arrays), (dict(ok, bits=6), arrays), (dict(ok, bits=4), arrays),
            (dict(ok, metric="l1"), arrays), (dict(ok, per_dim=1), arrays), (dict(ok, next_id=10), arrays),
            (dict(ok, per_dim=False), arrays), (dict(ok, trained=False), arrays),
            (ok, dict(arrays, vmin=index.quantizer.vmax + 1)), (ok, dict(arrays, vmax=np.full(6, np.nan, np.float32))),
            (ok, dict(arrays, ids=np.arange(49))), (ok, dict(arrays, codes=codes.astype(np.int32))),
            (ok, {k: v for k, v in arrays.items() if k != "vmin"}),
            ({k: v for k, v in ok.items() if k != "trained"}, arrays)]:
        indexfile.write(bad, "sq", params, arr)
        with pytest.raises(IndexFileError, match="inconsistent"):
            vaccel.SQIndex.load(bad)
    odd = {"d": 3, "bits": 4, "metric": "inner", "per_dim": True, "trained": True, "next_id": 1}
    indexfile.write(bad, "sq", odd, {"codes": np.array([[0x12, 0x30]], np.uint8), "ids": np.arange(1),
                                     "vmin": np.zeros(3, np.float32), "vmax": np.ones(3, np.float32)})
    with pytest.raises(IndexFileError, match="inconsistent"):
        vaccel.SQIndex.load(bad)
    indexfile.write(bad, "binary", {"d": 12, "next_id": 0}, {"codes": np.zeros((0, 2), np.uint8),
                                                              "ids": np.zeros(0, np.int64)})
    with pytest.raises(IndexFileError, match="inconsistent"):
        vaccel.load_index(bad)
    assert vaccel.load_index(path).ntotal == 50
