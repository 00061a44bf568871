# The id contract every index shares (vaccel.indexbase): the same sequence of adds (default and
# given ids), removals, filters (ids and masks), lookups and a save/load gives the same ids and
# the same errors for FlatIndex, SQIndex, BinaryIndex, PQIndex, IVFFlatIndex and IVFPQIndex.
# What the ids must be is written here independently (a dict of id -> row); the searches
# themselves are tested against faiss and NumPy in each index's own file.

import numpy as np
import pytest

import vaccel

D = 16


def make(kind, rng):
    xt = rng.standard_normal((700, D)).astype(np.float32)
    if kind == "flat":
        return vaccel.FlatIndex(D)
    if kind == "sq":
        return vaccel.SQIndex(D, 8).train(xt)
    if kind == "binary":
        return vaccel.BinaryIndex(8 * D)
    if kind == "pq":
        return vaccel.PQIndex(D, 4, 4, max_iter=3).train(xt)
    if kind == "ivfflat":
        return vaccel.IVFFlatIndex(D, 3, max_iter=3).train(xt)
    return vaccel.IVFPQIndex(D, 3, 4, 4, max_iter=3, pq_max_iter=3).train(xt)


def rows(kind, rng, n):
    if kind == "binary":
        return rng.integers(0, 256, (n, D), dtype=np.uint8)
    return rng.standard_normal((n, D)).astype(np.float32)


def check_ids(index, kind, expect):
    """index.ids: the ids of expect, in insertion order except in the IVF indexes (list order)."""
    got = index.ids
    assert got.dtype == np.int64
    if kind.startswith("ivf"):
        got = np.sort(got)
    np.testing.assert_array_equal(got, sorted(expect) if kind.startswith("ivf") else list(expect))


def search(index, q, k, **kw):
    if isinstance(index, (vaccel.IVFFlatIndex, vaccel.IVFPQIndex)):
        kw["nprobe"] = index.nlist            # every list: the whole index is searched
    return index.search(q, k, **kw)


KINDS = ["flat", "sq", "binary", "pq", "ivfflat", "ivfpq"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_index_keeps_ids_the_same_way(kind, backend, rng, tmp_path):
    index = make(kind, rng)
    x = rows(kind, rng, 60)
    q = rows(kind, rng, 3)
    expect = {}                                         # id -> row of x, in insertion order
    index.add(x[:20])
    expect.update(zip(range(20), range(20)))
    given = np.array([90, 41, 500, 7000, 33], np.uint64)   # unsigned ids are fine
    index.add(x[20:25], ids=given)
    expect.update(zip(given.tolist(), range(20, 25)))
    index.add(x[25:30])                                  # defaults continue after the largest
    expect.update(zip(range(7001, 7006), range(25, 30)))
    assert index.ntotal == len(index) == 30 and index.d == (8 * D if kind == "binary" else D)   # bits
    check_ids(index, kind, expect)

    for bad, err in (([1, 2, 1], "more than once"), ([7001, 8000, 8001], "already in the index"),
                     ([-1, 8000, 8001], "non-negative")):
        with pytest.raises(ValueError, match=err):
            index.add(x[30:33], ids=bad)
    with pytest.raises(TypeError, match="integers"):
        index.add(x[30:33], ids=[1.0, 2.0, 3.0])
    assert index.ntotal == 30                            # a refused add changes nothing

    assert index.remove_ids([41, 0, 7003, 123456, 41]) == 3
    assert index.remove_ids(5) == 1 and index.remove_ids([]) == 0
    for i in (41, 0, 7003, 5):
        del expect[i]
    check_ids(index, kind, expect)
    with pytest.raises(TypeError, match="integers"):
        index.remove_ids([1.5])

    k = index.ntotal + 2                                 # everything, then padding
    _, I_all = search(index, q, k)
    assert sorted(I_all[0][I_all[0] >= 0]) == sorted(expect) and (I_all[:, -2:] == -1).all()
    allowed = [90, 7001, 3, 41, 999999]                  # 41 was removed, 999999 never stored
    _, I_ids = search(index, q, k, filter=allowed)
    mask = np.isin(index.ids, allowed)
    _, I_mask = search(index, q, k, filter=mask)
    np.testing.assert_array_equal(I_ids, I_mask)
    assert set(I_ids[0][I_ids[0] >= 0]) == {90, 7001, 3}
    assert (search(index, q, 4, filter=[])[1] == -1).all()
    assert (search(index, q, 4, filter=np.zeros(index.ntotal, bool))[1] == -1).all()
    with pytest.raises(ValueError, match="one entry per stored vector"):
        search(index, q, 4, filter=np.ones(3, bool))
    with pytest.raises(ValueError, match="k must be at least 1"):
        search(index, q, 0)

    with pytest.raises(ValueError, match="id 41 is not in the index"):
        index.reconstruct(41)
    with pytest.raises(TypeError, match="id must be an integer"):
        index.reconstruct(True)
    same = index.reconstruct(7000)
    if kind in ("flat", "binary", "ivfflat"):             # stored exactly
        np.testing.assert_array_equal(same, x[expect[7000]])

    path = tmp_path / "x.vx"
    index.save(path)
    for back in (type(index).load(path), vaccel.load_index(path)):
        assert type(back) is type(index) and back.metric == index.metric
        np.testing.assert_array_equal(back.ids, index.ids)
        np.testing.assert_array_equal(back.reconstruct(7000), same)
        back.add(x[30:31])                               # next_id survives the file
        assert 7006 in back.ids and back.ntotal == index.ntotal + 1

    index.reset()
    assert index.ntotal == 0 and index.ids.size == 0
    index.add(x[:2])
    check_ids(index, kind, {0: 0, 1: 1})                 # ids start again from 0
