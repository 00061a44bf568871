"""Helpers the case families share (one copy each): inputs, fetching result rows to the host,
the exact k-NN reference and recall, the PyTorch k-NN baseline, and the size policy of large cases.
Not a family: it registers no case."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

LARGE_WORK = 10**11             # m*n*d from which a case is timed at most LARGE_REPEATS times
LARGE_REPEATS = 3
HOST_OUTPUT_LIMIT = 2 << 30     # a vaccel.Array result up to this size is brought back whole
TORCH_CHUNK = 1024              # queries per chunk of the PyTorch knn baseline ...
TORCH_TILE_BYTES = 4 << 30      # ... halved while its nq_chunk x nb float32 tile is larger than this


# --------------------------------------------------------------------------------------------
# inputs


def standard_normal(rng, shape, blocks=64):
    """float32 N(0, 1) of this shape from rng, filled by threads over `blocks` fixed slices (each
    with its own generator seeded from rng), so large inputs take a second, not ten, and the
    values do not depend on the machine's core count."""
    size = int(np.prod(shape))
    if size < 1 << 24:
        return rng.standard_normal(shape, dtype=np.float32)
    out = np.empty(size, np.float32)
    seeds = rng.integers(0, 2**63, size=blocks)
    bounds = np.linspace(0, size, blocks + 1).astype(np.int64)

    def fill(i):
        np.random.default_rng(int(seeds[i])).standard_normal(
            out=out[bounds[i]:bounds[i + 1]], dtype=np.float32)
    with ThreadPoolExecutor(max_workers=min(blocks, os.cpu_count() or 1)) as ex:
        list(ex.map(fill, range(blocks)))
    return out.reshape(shape)


# --------------------------------------------------------------------------------------------
# fetching rows of results to the host (an Impl's fetch(result, rows); rows None: all)


def fetch_numpy(res, rows):
    res = np.asarray(res)
    return res if rows is None else res[rows]


def fetch_torch(res, rows):
    if rows is not None:
        import torch
        res = res[torch.as_tensor(rows, device=res.device)]
    return res.cpu().numpy()


def fetch_cupy(res, rows):
    if rows is not None:
        res = res[rows.tolist()]
    return res.get()


def fetch_vaccel(res, rows):
    """Rows of a vaccel.Array result on the host: all of it when small, else one zero-copy row
    view (Array[i]) downloaded per row, so a 16 GiB result is checked without a 16 GiB copy."""
    if rows is None or res.nbytes <= HOST_OUTPUT_LIMIT:
        full = res.numpy()
        return full if rows is None else full[rows]
    return np.stack([res[int(r)].numpy() for r in rows])


def fetch_pair(res, rows):
    """Rows of a search result (D, I) of host arrays (NumPy, or anything np.asarray takes)."""
    return fetch_numpy(res[0], rows), fetch_numpy(res[1], rows)


def fetch_pair_torch(res, rows):
    """Rows of a search result (D, I) of torch tensors."""
    return fetch_torch(res[0], rows), fetch_torch(res[1], rows)


# --------------------------------------------------------------------------------------------
# exact neighbours and recall


def _as64(a, storage):
    return (a.astype(np.float16) if storage == "float16" else a).astype(np.float64)


def knn_reference(q, db, rows, k, storage="float32", chunk=1 << 16):
    """Exact float64 (D, I) of queries `rows` (sqeuclidean), ties by the lower index; with
    storage='float16' the exact neighbours of the float16-rounded data."""
    A = _as64(q[rows], storage)
    aa = np.einsum("ij,ij->i", A, A)
    best_d = np.full((len(rows), 0), np.inf)
    best_i = np.zeros((len(rows), 0), np.int64)
    for j0 in range(0, db.shape[0], chunk):
        B = _as64(db[j0:j0 + chunk], storage)
        s = aa[:, None] + np.einsum("ij,ij->i", B, B)[None, :] - 2.0 * (A @ B.T)
        np.maximum(s, 0.0, out=s)
        if s.shape[1] > k:
            part = np.argpartition(s, k - 1, axis=1)[:, :k]
            s = np.take_along_axis(s, part, 1)
            ids = part + j0
        else:
            ids = np.broadcast_to(np.arange(j0, j0 + s.shape[1]), s.shape)
        cd = np.concatenate([best_d, s], 1)
        ci = np.concatenate([best_i, ids], 1)
        o = np.lexsort((ci, cd), axis=-1)[:, :k]
        best_d, best_i = np.take_along_axis(cd, o, 1), np.take_along_axis(ci, o, 1)
    return best_d, best_i


def recall(I, ref_I, k):
    """k-recall@k: the fraction of the k exact neighbours (ref_I[:, :k]) among the first k
    returned (I[:, :k]), over all queries (the intersection measure)."""
    k = min(k, I.shape[1], ref_I.shape[1])
    hits = sum(len(np.intersect1d(a[:k], b[:k])) for a, b in zip(I, ref_I))
    return hits / float(k * len(I))


def recall_1(I, ref_I, k):
    """1-recall@k (faiss's R@k): the fraction of queries whose exact nearest neighbour
    (ref_I[:, 0]) is among the first k returned."""
    I = np.asarray(I)
    return float(np.mean([ref_I[j, 0] in I[j, :k] for j in range(len(I))]))


# --------------------------------------------------------------------------------------------
# the PyTorch k-NN baseline


def torch_chunk(nb):
    c = TORCH_CHUNK
    while c > 1 and 4 * c * nb > TORCH_TILE_BYTES:
        c //= 2
    return c


def torch_knn(torch, k, chunk):
    """The k-NN a PyTorch user writes: |db|^2 once, then per chunk of queries
    d2 = |q|^2 - 2 q @ db.T + |db|^2 and torch.topk(d2, k, largest=False)."""
    def knn(q, db):
        db_sq = (db ** 2).sum(1)
        Ds, Is = [], []
        for i in range(0, q.shape[0], chunk):
            qc = q[i:i + chunk]
            d2 = (qc ** 2).sum(1)[:, None] - 2 * qc @ db.T + db_sq[None, :]
            D, I = torch.topk(d2, k, dim=1, largest=False)
            Ds.append(D)
            Is.append(I)
        return torch.cat(Ds), torch.cat(Is)
    return knn
