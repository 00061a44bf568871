"""Helpers the case families share (one copy each): inputs, variants under an environment
variable, fetching result rows to the host, the exact k-NN reference and recall, the PyTorch k-NN
baseline, and the size policy of large cases. Not a family: it registers no case."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

LARGE_WORK = 10**11             # m*n*d from which a case is timed at most LARGE_REPEATS times
LARGE_REPEATS = 3
HOST_OUTPUT_LIMIT = 2 << 30     # a vaccel.Array result up to this size is brought back whole
TORCH_CHUNK = 1024              # queries per chunk of the PyTorch knn baseline ...
TORCH_TILE_BYTES = 4 << 30      # ... halved while its nq_chunk x nb float32 tile is larger than this
REFERENCE_BLOCK_BYTES = 256 << 20   # knn_reference: the float64 distance block of one chunk, at most


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


def under_env(name, value, run):
    """run(i) (an Impl's timed call) with os.environ[name] = value, restored afterwards: for
    variants selected by an environment variable that vaccel reads at each call."""
    def wrapped(i):
        keep = os.environ.get(name)
        os.environ[name] = value
        try:
            return run(i)
        finally:
            if keep is None:
                del os.environ[name]
            else:
                os.environ[name] = keep
    return wrapped


# --------------------------------------------------------------------------------------------
# fetching rows of results to the host (an Impl's fetch(result, rows); rows None: all)


def fetch_numpy(res, rows):
    res = np.asarray(res)
    return res if rows is None else res[rows]


def fetch_torch(res, rows):
    import torch
    if rows is not None:
        res = res[torch.as_tensor(rows, device=res.device)]
    if res.dtype == torch.bfloat16:   # NumPy has no bfloat16 of its own: float32 holds it exactly
        res = res.float()
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
    storage='float16' the exact neighbours of the float16-rounded data.

    The database is read in chunks of rows, each converted to float64 into one reused buffer.
    Once every query holds k candidates, a chunk only contributes the rows closer than the
    query's current k-th best (later rows lose ties), so after the first chunks little more
    than the distance GEMM is left."""
    A = _as64(q[rows], storage)
    nr, d = A.shape
    aa = np.einsum("ij,ij->i", A, A)
    A2 = -2.0 * A                              # (-2 a).b is -2 (a.b) exactly
    best_d = np.full((nr, 0), np.inf)
    best_i = np.zeros((nr, 0), np.int64)
    if nr == 0:
        return np.zeros((0, k)), np.zeros((0, k), np.int64)
    step = max(1, min(chunk, db.shape[0], max(1024, REFERENCE_BLOCK_BYTES // (8 * nr))))
    buf = np.empty((step, d))
    dist, norms = np.empty((nr, step)), np.empty((nr, step))
    for j0 in range(0, db.shape[0], step):
        c = min(step, db.shape[0] - j0)
        B = buf[:c]
        B[...] = db[j0:j0 + c].astype(np.float16) if storage == "float16" else db[j0:j0 + c]
        s, t = dist[:, :c], norms[:, :c]
        np.matmul(A2, B.T, out=s)
        np.add(aa[:, None], np.einsum("ij,ij->i", B, B)[None, :], out=t)
        s += t                                  # |a|^2 + |b|^2 - 2 a.b
        np.maximum(s, 0.0, out=s)
        if best_d.shape[1] == k:
            hit = np.flatnonzero(s.min(axis=1) < best_d[:, -1])
            if hit.size == 0:
                continue
            r, j = np.nonzero(s[hit] < best_d[hit, -1:])
            r = hit[r]
            if r.size <= 4 * nr * k:
                # Merge the few candidates with the k best: one sort by (row, distance, index).
                cd = np.concatenate([best_d.ravel(), s[r, j]])
                ci = np.concatenate([best_i.ravel(), j + j0])
                cr = np.concatenate([np.repeat(np.arange(nr), k), r])
                o = np.lexsort((ci, cd, cr))
                first = np.concatenate([[0], np.cumsum(k + np.bincount(r, minlength=nr))[:-1]])
                o = o[(first[:, None] + np.arange(k)[None, :]).ravel()]
                best_d, best_i = cd[o].reshape(nr, k), ci[o].reshape(nr, k)
                continue
        if c > k:
            part = np.argpartition(s, k - 1, axis=1)[:, :k]
            cs, ids = np.take_along_axis(s, part, 1), part + j0
        else:
            cs, ids = s.copy(), np.broadcast_to(np.arange(j0, j0 + c), s.shape)
        cd = np.concatenate([best_d, cs], 1)
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
