"""FlatIndex: an exact (brute-force) vector index with ids, filters, removal and persistence.

The vectors live on the device in one vaccel.Array with spare capacity (doubling), so an add
uploads only the new rows; a host mirror in the storage dtype serves reconstruct, save, removal
and the CPU backend (that storage and the ids: vaccel.indexbase.RowStore, shared by the
indexes). Search is vaccel.knn over the stored rows; range_search is vaccel.cdist over blocks of
queries, selected on the host.

save/load use the shared index file format of vaccel.indexfile (versioned header, checksum,
atomic write).
"""

from __future__ import annotations

import numpy as np

from . import distances, indexfile, runtime
from .indexbase import RowStore, _int, check_k, empty_results
from .indexfile import IndexFileError

__all__ = ["FlatIndex", "IndexFileError"]

METRICS = ("sqeuclidean", "euclidean", "cosine", "inner", "cityblock", "chebyshev", "minkowski",
           "bitwise_hamming")
_LARGEST = ("inner",)          # metrics where a larger value is better
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))

_RANGE_BLOCK_BYTES = 256 << 20   # bound on the distance block of one range_search step


def _knn():
    from . import knn          # resolved at call time: vaccel.knn is defined after this module
    return knn


def _cdist():
    from . import cdist
    return cdist


@indexfile.register("flat")
class FlatIndex(RowStore):
    """Exact search over stored vectors, faiss-like: (distances, ids), -1 where fewer than k.

        index = vaccel.FlatIndex(128)                 # or metric='inner', dtype='float16'
        index.add(xb)                                 # ids 0.. by default, or add(xb, ids=...)
        D, I = index.search(xq, 10)                   # I holds ids; filter=allowed ids or a mask
        lims, D, I = index.range_search(xq, 1.5)      # faiss's layout
        index.remove_ids([3, 7]); index.save("x.vx"); vaccel.FlatIndex.load("x.vx")

    metric: one of 'sqeuclidean', 'euclidean', 'cosine', 'inner' (largest first), 'cityblock',
    'chebyshev', 'minkowski' (with p), 'bitwise_hamming' (uint8 codes of d bytes).
    dtype: storage type, 'float32' or 'float16' (half the memory; distances accumulate in
    float32); 'uint8' for 'bitwise_hamming'.
    """

    def __init__(self, d, metric="sqeuclidean", dtype=None, *, p=2.0):
        d = _int(d, "d")
        if d < 1:
            raise ValueError(f"d must be at least 1, got {d}")
        if not isinstance(metric, str) or metric.lower() not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        metric = metric.lower()
        try:
            p = float(p)
        except (TypeError, ValueError):
            raise TypeError(f"p must be a number, got {p!r}") from None
        if metric == "minkowski" and not p > 0:
            raise ValueError(f"p must be positive for minkowski, got {p}")
        if metric == "bitwise_hamming":
            try:
                dt = np.dtype(dtype if dtype is not None else np.uint8)
            except TypeError:
                dt = None
            if dt != np.uint8:
                raise ValueError(f"dtype must be 'uint8' for bitwise_hamming, got {dtype!r}")
        else:
            try:
                dt = np.dtype(dtype if dtype is not None else np.float32)
            except TypeError:
                dt = None
            if dt not in _FLOAT_DTYPES:
                raise ValueError(f"dtype must be 'float32' or 'float16', got {dtype!r}")
        self._d = d
        self._metric = metric
        self._p = p
        self._dtype = dt
        self.reset()

    # ---- properties ---------------------------------------------------------------------------

    @property
    def dtype(self):
        """Storage dtype name: 'float32', 'float16' or 'uint8'."""
        return self._dtype.name

    @property
    def p(self):
        return self._p

    def __repr__(self):
        return (f"vaccel.FlatIndex(d={self._d}, metric={self._metric!r}, dtype={self.dtype!r}, "
                f"ntotal={self._n})")

    # ---- storage (vaccel.indexbase.RowStore: ids, capacity, device copy, removal) ---------------

    def _row_shape(self):
        return (self._d,)

    def _row_dtype(self):
        return self._dtype

    def _vectors(self, x, name):
        if runtime._is_array(x):
            x = x.numpy()
        a = distances._matrix(x, name)
        if a.shape[1] != self._d:
            raise ValueError(f"{name} must have shape (n, {self._d}) for this index (d={self._d}), "
                             f"got {a.shape}")
        if self._metric == "bitwise_hamming":
            if a.dtype != np.uint8:
                raise TypeError(f"{name} must be uint8 codes for bitwise_hamming, got {a.dtype}")
            return a
        if a.dtype not in _FLOAT_DTYPES:
            with np.errstate(over="ignore"):
                a = a.astype(np.float32)
        return a

    def add(self, x, ids=None):
        """Append the rows of x (n, d). ids: int64 (n,) non-negative and unused; by default
        sequential, continuing after the largest id given so far."""
        x = self._vectors(x, "x")
        new_ids = self._new_ids(ids, x.shape[0])
        with np.errstate(over="ignore"):
            rows = np.ascontiguousarray(x, dtype=self._dtype)
        self._append(rows, new_ids)

    def reconstruct(self, id):
        """The stored vector of id as float32 (uint8 codes for bitwise_hamming)."""
        v = self._host[self._slot_of(id)]
        return v.copy() if self._dtype == np.uint8 else v.astype(np.float32)

    # ---- search -------------------------------------------------------------------------------

    def _queries(self, q):
        q = self._vectors(q, "q")
        if self._metric != "bitwise_hamming" and q.dtype == np.float16 and self._dtype != np.float16:
            q = q.astype(np.float32)
        return q

    def search(self, q, k, filter=None):
        """The k best stored vectors for each row of q (nq, d): (D float32 (nq, k), I int64 ids).
        filter: an int64 array of allowed ids, or a boolean mask over the stored vectors in
        storage order (see .ids). Where fewer than k are eligible: I = -1, D = +inf (-inf for
        'inner')."""
        q = self._queries(q)
        k = check_k(k)
        f = self._allowed(filter)
        if self._nothing_to_search(q.shape[0], f):
            return empty_results(q.shape[0], k, self._metric in _LARGEST)
        kw = {"p": self._p} if self._metric == "minkowski" else {}
        D, I = _knn()(q, self._database(), k, self._metric, filter=f, **kw)
        return np.asarray(D, np.float32), self._to_ids(I)

    def range_search(self, q, radius):
        """Every stored vector within radius of each query, faiss's layout: (lims int64 (nq+1,),
        D float32, I int64 ids); query i's results are D[lims[i]:lims[i+1]], best first. Within
        means distance < radius, or for 'inner' an inner product > radius."""
        q = self._queries(q)
        try:
            radius = float(radius)
        except (TypeError, ValueError):
            raise TypeError(f"radius must be a number, got {radius!r}") from None
        nq, n = q.shape[0], self._n
        lims = np.zeros(nq + 1, np.int64)
        if n == 0 or nq == 0:
            return lims, np.empty(0, np.float32), np.empty(0, np.int64)
        largest = self._metric in _LARGEST
        kw = {"p": self._p} if self._metric == "minkowski" else {}
        db = self._database()
        cdist = _cdist()
        step = max(1, _RANGE_BLOCK_BYTES // (4 * n))
        buf = np.empty((min(step, nq), n), np.float32)
        counts, Ds, Is = [], [], []
        for r in range(0, nq, step):
            blk = q[r:r + step]
            dist = buf[:blk.shape[0]]
            cdist(blk, db, self._metric, out=dist, **kw)
            with np.errstate(invalid="ignore"):
                hit = dist > radius if largest else dist < radius
            rows, cols = np.nonzero(hit)
            vals = dist[rows, cols]
            # Rows first, then best value, then storage order (np.lexsort is stable).
            order = np.lexsort((-vals if largest else vals, rows))
            counts.append(np.bincount(rows, minlength=blk.shape[0]))
            Ds.append(vals[order])
            Is.append(self._ids[cols[order]])
        np.cumsum(np.concatenate(counts), out=lims[1:])
        return lims, np.concatenate(Ds).astype(np.float32), np.concatenate(Is).astype(np.int64)

    # ---- persistence --------------------------------------------------------------------------

    def save(self, path):
        """Write the index to path atomically (see vaccel.indexfile for the format)."""
        self._write(path, {"d": self._d, "metric": self._metric, "dtype": self._dtype.name, "p": self._p},
                    "vectors", self._host[:self._n])

    @classmethod
    def _from_file(cls, file):
        metric = file.param("metric", str, lambda m: m in METRICS)
        dtype = file.param("dtype", str, lambda t: t in ("float32", "float16", "uint8"))
        d = file.param("d", int, lambda v: v >= 1)
        p = file.param("p", (int, float))
        if (dtype == "uint8") != (metric == "bitwise_hamming"):
            file.fail(f"inconsistent description (metric {metric!r} with dtype {dtype})")
        vec, ids, next_id = cls._file_rows(file, "vectors", dtype, (d,))
        try:
            index = cls(d, metric, dtype, p=p)
        except (TypeError, ValueError) as exc:
            file.fail(f"inconsistent description ({exc})")
        index._restore(vec, ids, next_id)
        return index
