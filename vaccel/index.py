"""FlatIndex: an exact (brute-force) vector index with ids, filters, removal and persistence.

The vectors live on the device in one vaccel.Array with spare capacity (doubling), so an add
uploads only the new rows; a host mirror in the storage dtype serves reconstruct, save, removal
and the CPU backend. Search is vaccel.knn over the stored rows; range_search is vaccel.cdist over
blocks of queries, selected on the host.

save/load use the shared index file format of vaccel.indexfile (versioned header, checksum,
atomic write).
"""

from __future__ import annotations

import numpy as np

from . import distances, indexfile, runtime
from .indexfile import IndexFileError

__all__ = ["FlatIndex", "IndexFileError"]

METRICS = ("sqeuclidean", "euclidean", "cosine", "inner", "cityblock", "chebyshev", "minkowski",
           "bitwise_hamming")
_LARGEST = ("inner",)          # metrics where a larger value is better
_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))

_RANGE_BLOCK_BYTES = 256 << 20   # bound on the distance block of one range_search step
_MIN_CAPACITY = 64


def _knn():
    from . import knn          # resolved at call time: vaccel.knn is defined after this module
    return knn


def _cdist():
    from . import cdist
    return cdist


def _int(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_new_ids(ids, m, positions):
    """ids given to an index's add for m rows, as int64: integers, one per row, non-negative,
    distinct, and not stored yet (positions(ids) -> -1 for ids not stored). Shared by every index."""
    if runtime._is_array(ids):
        ids = ids.numpy()
    a = np.asarray(ids)
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers (int64), got dtype {a.dtype}")
    if a.shape != (m,):
        raise ValueError(f"ids must have shape ({m},), one per row of x, got {a.shape}")
    if m == 0:
        return a.astype(np.int64)
    if a.min() < 0 or (a.dtype.kind == "u" and a.max() > np.iinfo(np.int64).max):
        raise ValueError("ids must be non-negative int64 values (-1 marks a missing result)")
    a = a.astype(np.int64)
    s = np.sort(a)
    dup = s[1:][s[1:] == s[:-1]]
    if dup.size:
        raise ValueError(f"ids: id {int(dup[0])} appears more than once")
    pos = positions(a)
    if (pos >= 0).any():
        raise ValueError(f"ids: id {int(a[np.argmax(pos >= 0)])} is already in the index")
    return a


@indexfile.register("flat")
class FlatIndex:
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
    def d(self):
        return self._d

    @property
    def metric(self):
        return self._metric

    @property
    def dtype(self):
        """Storage dtype name: 'float32', 'float16' or 'uint8'."""
        return self._dtype.name

    @property
    def p(self):
        return self._p

    @property
    def ntotal(self):
        return self._n

    def __len__(self):
        return self._n

    @property
    def ids(self):
        """The stored ids in storage order (the order a boolean filter mask refers to)."""
        return self._ids[:self._n].copy()

    def __repr__(self):
        return (f"vaccel.FlatIndex(d={self._d}, metric={self._metric!r}, dtype={self.dtype!r}, "
                f"ntotal={self._n})")

    # ---- storage ------------------------------------------------------------------------------

    def reset(self):
        """Remove every vector (ids start again from 0); device memory is released."""
        self._n = 0
        self._host = np.empty((0, self._d), self._dtype)
        self._ids = np.empty(0, np.int64)
        self._next_id = 0
        self._sequential = True      # ids[i] == i for every stored row: no lookup needed
        self._lookup = None          # (sorted ids, their positions), built on demand
        self._dev = None             # device Array (capacity, d); rows [0, _dev_rows) are valid
        self._dev_rows = 0

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
        m = x.shape[0]
        if ids is None:
            new_ids = np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        else:
            new_ids = self._check_ids(ids, m)
        if m == 0:
            return
        n = self._n
        with np.errstate(over="ignore"):
            rows = np.ascontiguousarray(x, dtype=self._dtype)
        host, id_store = self._host, self._ids
        if n + m > host.shape[0]:
            cap = max(_MIN_CAPACITY, 2 * host.shape[0], n + m)
            host = np.empty((cap, self._d), self._dtype)
            host[:n] = self._host[:n]
            id_store = np.empty(cap, np.int64)
            id_store[:n] = self._ids[:n]
        host[n:n + m] = rows
        # The device copy first: if it fails, the index is as it was.
        self._sync_device(host, n, n + m)
        id_store[n:n + m] = new_ids
        self._host, self._ids = host, id_store
        self._n = n + m
        self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        self._sequential = self._sequential and new_ids[0] == n and \
            bool(np.array_equal(new_ids, np.arange(n, n + m, dtype=np.int64)))
        self._lookup = None

    def _check_ids(self, ids, m):
        return check_new_ids(ids, m, self._positions)

    def _positions(self, ids):
        """Storage positions of int64 ids, -1 for ids not stored."""
        n = self._n
        if self._sequential:
            return np.where((ids >= 0) & (ids < n), ids, -1)
        if self._lookup is None:
            order = np.argsort(self._ids[:n], kind="stable")
            self._lookup = (self._ids[:n][order], order.astype(np.int64))
        sorted_ids, order = self._lookup
        if n == 0:
            return np.full(ids.shape, -1, np.int64)
        j = np.minimum(np.searchsorted(sorted_ids, ids), n - 1)
        return np.where(sorted_ids[j] == ids, order[j], -1)

    def _use_device(self):
        return runtime.get_backend() == "vulkan"

    def _sync_device(self, host, start, stop):
        """Make device rows [0, stop) equal host[:stop], given rows [0, start) are already there
        when the device copy is current. Only new rows are uploaded unless the array must grow."""
        if not self._use_device():
            self._dev, self._dev_rows = None, 0   # stale from now on; rebuilt when needed
            return
        dev = self._dev
        if dev is not None and self._dev_rows >= start and stop <= dev.shape[0]:
            dev[start:stop]._assign(host[start:stop])
        else:
            cap = max(_MIN_CAPACITY, host.shape[0], stop)
            if dev is not None:
                cap = max(cap, 2 * dev.shape[0])
            self._dev = None                       # release the old array before the new one
            dev = runtime.empty((cap, self._d), self._dtype)
            dev[:stop]._assign(host[:stop])
            self._dev = dev
        self._dev_rows = stop

    def _database(self):
        """The stored rows as the backend reads them: a device view, or the host mirror."""
        n = self._n
        if not self._use_device():
            return self._host[:n]
        if self._dev is None or self._dev_rows != n:
            self._dev, self._dev_rows = None, 0
            self._sync_device(self._host, 0, n)
        return self._dev[:n]

    def remove_ids(self, ids):
        """Remove the vectors with these ids (ids not stored are ignored); returns how many were
        removed. Storage is compacted, keeping the order of the rest."""
        if runtime._is_array(ids):
            ids = ids.numpy()
        a = np.asarray(ids)
        if a.ndim == 0:
            a = a.reshape(1)
        if a.size == 0:
            return 0
        if a.dtype == np.bool_ or a.dtype.kind not in "iu" or a.ndim != 1:
            raise TypeError(f"ids must be a 1-D array of integers, got dtype {a.dtype} shape {a.shape}")
        if a.dtype.kind == "u":
            a = a[a <= np.iinfo(np.int64).max]
        pos = self._positions(a.astype(np.int64))
        pos = np.unique(pos[pos >= 0])
        if pos.size == 0:
            return 0
        n = self._n
        keep = np.ones(n, bool)
        keep[pos] = False
        host = self._host[:n][keep]
        id_store = self._ids[:n][keep]
        m = host.shape[0]
        if self._dev is not None and self._use_device() and m:
            self._dev[:m]._assign(host)          # one upload of the compacted rows
            self._dev_rows = m
        else:
            self._dev, self._dev_rows = None, 0
        self._host, self._ids, self._n = host, id_store, m
        self._sequential = bool(np.array_equal(id_store, np.arange(m, dtype=np.int64)))
        self._lookup = None
        return int(pos.size)

    def reconstruct(self, id):
        """The stored vector of id as float32 (uint8 codes for bitwise_hamming)."""
        i = _int(id, "id")
        pos = int(self._positions(np.array([i], np.int64))[0])
        if pos < 0:
            raise ValueError(f"id {i} is not in the index")
        v = self._host[pos]
        return v.copy() if self._dtype == np.uint8 else v.astype(np.float32)

    # ---- search -------------------------------------------------------------------------------

    def _queries(self, q):
        q = self._vectors(q, "q")
        if self._metric != "bitwise_hamming" and q.dtype == np.float16 and self._dtype != np.float16:
            q = q.astype(np.float32)
        return q

    def _filter(self, filter):
        """The filter as knn takes it: None, a boolean mask over storage rows, or sorted row
        positions of the allowed ids."""
        if filter is None:
            return None
        if runtime._is_array(filter):
            filter = filter.numpy()
        f = np.asarray(filter)
        if f.size == 0 and f.ndim == 1 and f.dtype != np.bool_:
            f = f.astype(np.int64)              # [] allows nothing
        if f.dtype == np.bool_:
            if f.shape != (self._n,):
                raise ValueError(f"filter: a boolean mask must have one entry per stored vector, "
                                 f"shape ({self._n},), got {f.shape}")
            return f
        if f.dtype.kind not in "iu" or f.ndim != 1:
            raise TypeError(f"filter must be a 1-D int64 array of allowed ids or a boolean mask, "
                            f"got dtype {f.dtype} shape {f.shape}")
        if f.dtype.kind == "u":
            f = f[f <= np.iinfo(np.int64).max]
        pos = self._positions(f.astype(np.int64))
        return np.unique(pos[pos >= 0])

    def search(self, q, k, filter=None):
        """The k best stored vectors for each row of q (nq, d): (D float32 (nq, k), I int64 ids).
        filter: an int64 array of allowed ids, or a boolean mask over the stored vectors in
        storage order (see .ids). Where fewer than k are eligible: I = -1, D = +inf (-inf for
        'inner')."""
        q = self._queries(q)
        k = _int(k, "k")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        f = self._filter(filter)
        nq = q.shape[0]
        largest = self._metric in _LARGEST
        none_allowed = f is not None and not (f.any() if f.dtype == np.bool_ else f.size)
        if self._n == 0 or nq == 0 or none_allowed:
            return (np.full((nq, k), -np.inf if largest else np.inf, np.float32),
                    np.full((nq, k), -1, np.int64))
        kw = {"p": self._p} if self._metric == "minkowski" else {}
        D, I = _knn()(q, self._database(), k, self._metric, filter=f, **kw)
        D = np.asarray(D, np.float32)
        I = np.asarray(I, np.int64)
        found = I >= 0
        out = np.full(I.shape, -1, np.int64)
        out[found] = self._ids[I[found]]
        return D, out

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
        n = self._n
        indexfile.write(path, self._file_kind,
                        {"d": self._d, "metric": self._metric, "dtype": self._dtype.name, "p": self._p,
                         "next_id": self._next_id},
                        {"vectors": self._host[:n], "ids": self._ids[:n]})

    @classmethod
    def load(cls, path):
        """Read an index written by save. Raises IndexFileError for a file that is not a vaccel
        FlatIndex, is damaged or truncated, or comes from a newer format version."""
        return cls._from_file(indexfile.read(path, cls._file_kind))

    @classmethod
    def _from_file(cls, file):
        metric = file.param("metric", str, lambda m: m in METRICS)
        dtype = file.param("dtype", str, lambda t: t in ("float32", "float16", "uint8"))
        d = file.param("d", int, lambda v: v >= 1)
        next_id = file.param("next_id", int, lambda v: v >= 0)
        p = file.param("p", (int, float))
        if (dtype == "uint8") != (metric == "bitwise_hamming"):
            file.fail(f"inconsistent description (metric {metric!r} with dtype {dtype})")
        vec = file.array("vectors", dtype, (None, d))
        ids = file.array("ids", np.int64, (vec.shape[0],))
        indexfile.check_ids(file, ids, next_id)
        try:
            index = cls(d, metric, dtype, p=p)
        except (TypeError, ValueError) as exc:
            file.fail(f"inconsistent description ({exc})")
        n = vec.shape[0]
        index._host = vec
        index._ids = ids
        index._n = n
        index._next_id = next_id
        index._sequential = bool(np.array_equal(ids, np.arange(n, dtype=np.int64)))
        if n and index._use_device():
            index._sync_device(index._host, 0, n)
        return index
