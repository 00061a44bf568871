"""Indexes over quantized codes, with FlatIndex's interface (add with ids, search with filters,
remove_ids, reset, save / load through vaccel.indexfile):

    index = vaccel.SQIndex(128, bits=8)          # scalar-quantized vectors, 4x smaller than float32
    index.train(xt); index.add(xb)               # codes on the device
    D, I = index.search(xq, 10)                  # float queries against the decoded codes

    index = vaccel.BinaryIndex(256)              # like faiss.IndexBinaryFlat: 256-bit codes
    index.add(codes); D, I = index.search(qcodes, 10)   # D int32 Hamming distances

CodeIndex is the shared base: stored rows are uint8 codes padded to whole 32-bit words, on the
device with spare capacity (an add uploads only the new rows) and mirrored on the host (save,
removal, the CPU backend); ids, filters and removal behave exactly as FlatIndex's (the same
methods). Subclasses say how vectors become codes and how a search runs.
"""

from __future__ import annotations

import numpy as np

from . import cpu, distances, indexfile, runtime, search as _search
from .errors import NotTrainedError
from .index import FlatIndex, _int
from .indexfile import IndexFileError
from .quantizers import ScalarQuantizer, _padded_width, padded_codes

__all__ = ["CodeIndex", "SQIndex", "BinaryIndex", "IndexFileError", "NotTrainedError"]

_MIN_CAPACITY = 64

# BinaryIndex's fused search (csrc/ops/hamming.c): codes up to this many 32-bit words, k up to
# HAMMING_MAX_K, at most HAMMING_CAP candidates kept per query (a query with more is redone
# exactly by vaccel.knn).
HAMMING_MAX_WORDS = 32
HAMMING_MAX_K = 1024
HAMMING_CAP = 8192



class CodeIndex:
    """Base of the indexes that store uint8 codes: storage, ids, filters, removal. A subclass sets
    self._d (vector dimension as users see it), self._code_size (bytes per code) and implements
    _encode_for_add, search and the file methods."""

    # Ids, filters and removal work on storage rows whatever they hold: FlatIndex's methods.
    _check_ids = FlatIndex._check_ids
    _positions = FlatIndex._positions
    _filter = FlatIndex._filter
    _use_device = FlatIndex._use_device
    _database = FlatIndex._database
    remove_ids = FlatIndex.remove_ids

    def _init_storage(self, code_size):
        self._code_size = code_size
        self._width = _padded_width(code_size)
        self.reset()

    @property
    def d(self):
        return self._d

    @property
    def code_size(self):
        """Bytes per stored code."""
        return self._code_size

    @property
    def ntotal(self):
        return self._n

    def __len__(self):
        return self._n

    @property
    def ids(self):
        """The stored ids in storage order (the order a boolean filter mask refers to)."""
        return self._ids[:self._n].copy()

    @property
    def codes(self):
        """The stored codes in storage order, (ntotal, code_size) uint8 (a copy)."""
        return np.ascontiguousarray(self._host[:self._n, :self._code_size])

    def reset(self):
        """Remove every vector (ids start again from 0); device memory is released. Training is
        kept."""
        self._n = 0
        self._host = np.zeros((0, self._width), np.uint8)
        self._ids = np.empty(0, np.int64)
        self._next_id = 0
        self._sequential = True
        self._lookup = None
        self._dev = None
        self._dev_rows = 0

    def _sync_device(self, host, start, stop):
        """Device rows [0, stop) equal host[:stop], given rows [0, start) are there already; only
        new rows are uploaded unless the array must grow (FlatIndex's policy)."""
        if not self._use_device():
            self._dev, self._dev_rows = None, 0
            return
        dev = self._dev
        if dev is not None and self._dev_rows >= start and stop <= dev.shape[0]:
            dev[start:stop]._assign(host[start:stop])
        else:
            cap = max(_MIN_CAPACITY, host.shape[0], stop)
            if dev is not None:
                cap = max(cap, 2 * dev.shape[0])
            self._dev = None
            dev = runtime.empty((cap, self._width), np.uint8)
            dev[:stop]._assign(host[:stop])
            self._dev = dev
        self._dev_rows = stop

    def _store(self, rows, ids):
        """Append padded code rows (m, width) with ids (None: sequential)."""
        m = rows.shape[0]
        new_ids = np.arange(self._next_id, self._next_id + m, dtype=np.int64) if ids is None \
            else self._check_ids(ids, m)
        if m == 0:
            return
        n = self._n
        host, id_store = self._host, self._ids
        if n + m > host.shape[0]:
            cap = max(_MIN_CAPACITY, 2 * host.shape[0], n + m)
            host = np.zeros((cap, self._width), np.uint8)
            host[:n] = self._host[:n]
            id_store = np.empty(cap, np.int64)
            id_store[:n] = self._ids[:n]
        host[n:n + m] = rows
        self._sync_device(host, n, n + m)       # first: if it fails, the index is as it was
        id_store[n:n + m] = new_ids
        self._host, self._ids = host, id_store
        self._n = n + m
        self._next_id = max(self._next_id, int(new_ids.max()) + 1)
        self._sequential = self._sequential and new_ids[0] == n and \
            bool(np.array_equal(new_ids, np.arange(n, n + m, dtype=np.int64)))
        self._lookup = None

    def _check_ids_early(self, ids, m):
        """ids checked before any work (encoding) is done."""
        if ids is not None:
            self._check_ids(ids, m)

    def _k(self, k):
        k = _int(k, "k")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        return k

    def _results(self, D, I):
        """Storage positions -> ids."""
        I = np.asarray(I, np.int64)
        found = I >= 0
        out = np.full(I.shape, -1, np.int64)
        out[found] = self._ids[I[found]]
        return D, out

    def _file_common(self, file):
        """(codes, ids, next_id) of a file, checked."""
        next_id = file.param("next_id", int, lambda v: v >= 0)
        codes = file.array("codes", np.uint8, (None, self._code_size))
        ids = file.array("ids", np.int64, (codes.shape[0],))
        indexfile.check_ids(file, ids, next_id)
        return codes, ids, next_id

    def _restore(self, codes, ids, next_id):
        n = codes.shape[0]
        self._host = padded_codes(codes, self._width)
        self._ids = ids
        self._n = n
        self._next_id = next_id
        self._sequential = bool(np.array_equal(ids, np.arange(n, dtype=np.int64)))
        if n and self._use_device():
            self._sync_device(self._host, 0, n)


@indexfile.register("sq")
class SQIndex(CodeIndex):
    """Vectors stored as ScalarQuantizer codes (bits=8: d bytes each, bits=4: ceil(d / 2)); search
    compares float queries with the decoded codes, like faiss's IndexScalarQuantizer.

        index = vaccel.SQIndex(128, bits=8, metric='sqeuclidean')   # per_dim=False: one range
        index.train(xt)                  # the quantizer's range (vaccel.ScalarQuantizer)
        index.add(xb, ids=None)          # encoded on the device, codes stay there
        D, I = index.search(xq, 10, filter=None)

    metric: 'sqeuclidean', 'euclidean', 'inner' (largest first) or 'cosine', between the query and
    the decoded vector, in float32. On the device the distance tiles decode the codes as they load
    them: the database is never decoded into memory. Searches that vaccel.knn would fuse (no
    filter, k <= 256, large enough; VACCEL_KNN_FUSED=0/1 as for knn) take its fused path: GEMM tiles
    that keep only the pairs within a bound from a random sample of the database, whose distances
    are then computed directly, so no distance tile is written either; others go through knn's
    tiles and chunked top-k. Where fewer than k vectors exist or pass the filter, I = -1 and
    D = +inf (-inf for 'inner').
    """

    METRICS = ("sqeuclidean", "euclidean", "inner", "cosine")

    def __init__(self, d, bits=8, metric="sqeuclidean", per_dim=True):
        if not isinstance(metric, str) or metric.lower() not in self.METRICS:
            raise ValueError(f"metric must be one of {self.METRICS}, got {metric!r}")
        self._sq = ScalarQuantizer(d, bits, per_dim)
        self._d = self._sq.d
        self._metric = metric.lower()
        self._init_storage(self._sq.code_size)

    @property
    def metric(self):
        return self._metric

    @property
    def bits(self):
        return self._sq.bits

    @property
    def per_dim(self):
        return self._sq.per_dim

    @property
    def quantizer(self):
        """The index's ScalarQuantizer (shared, not a copy: do not retrain it behind the index)."""
        return self._sq

    @property
    def is_trained(self):
        return self._sq.is_trained

    def __repr__(self):
        return (f"vaccel.SQIndex(d={self._d}, bits={self.bits}, metric={self._metric!r}, "
                f"per_dim={self.per_dim}, trained={self.is_trained}, ntotal={self._n})")

    def train(self, x):
        """Train the quantizer on the rows of x (n, d). Not allowed once vectors are stored (their
        codes would no longer mean the same thing): reset() first."""
        if self._n:
            raise ValueError("train: the index holds vectors encoded with the current training; reset() first")
        self._sq.train(x)
        return self

    def add(self, x, ids=None):
        """Encode and append the rows of x (n, d). ids: int64 (n,), non-negative and unused; by
        default sequential, continuing after the largest id given so far."""
        if not self.is_trained:
            raise NotTrainedError("SQIndex.add: the index is not trained; call train(x) first")
        x = self._sq._floats(x, "x")
        self._check_ids_early(ids, x.shape[0])
        if x.shape[0] == 0:
            self._store(np.zeros((0, self._width), np.uint8), ids)
            return
        if runtime.get_backend() == "cpu":
            rows = padded_codes(self._sq._encode_cpu(x), self._width)
        else:
            rows = self._sq._encode_rows(x, self._width)
        self._store(rows, ids)

    def reconstruct(self, id):
        """The decoded vector of id, float32 (d,)."""
        i = _int(id, "id")
        pos = int(self._positions(np.array([i], np.int64))[0])
        if pos < 0:
            raise ValueError(f"id {i} is not in the index")
        return self._sq.decode(self._host[pos:pos + 1, :self._code_size])[0]

    def search(self, q, k, filter=None):
        """The k best stored vectors for each row of q (nq, d): (D float32 (nq, k), I int64 ids).
        filter: an int64 array of allowed ids, or a boolean mask over the stored vectors in storage
        order (see .ids)."""
        if not self.is_trained:
            raise NotTrainedError("SQIndex.search: the index is not trained; call train(x) first")
        if runtime._is_array(q):
            q = q.numpy()
        q = distances._matrix(q, "q")
        if q.shape[1] != self._d:
            raise ValueError(f"q must have shape (n, {self._d}) for this index (d={self._d}), got {q.shape}")
        with np.errstate(over="ignore"):
            q = np.asarray(q, np.float32)
        k = self._k(k)
        f = self._filter(filter)
        nq, n = q.shape[0], self._n
        largest = self._metric == "inner"
        none_allowed = f is not None and not (f.any() if f.dtype == np.bool_ else f.size)
        if n == 0 or nq == 0 or none_allowed:
            return (np.full((nq, k), -np.inf if largest else np.inf, np.float32),
                    np.full((nq, k), -1, np.int64))
        sq = self._sq
        if runtime.get_backend() == "cpu":
            decoded = cpu.sq_decode(self._host[:n, :self._code_size], sq._vmin, sq._step, sq.bits, self._d)
            return self._results(*cpu.knn(q, decoded, k, self._metric, filter=f))
        metric = distances._CODE[self._metric]
        if f is None and _search._use_fused(q, self._database(), k, metric, None):
            D, raw, overflow = self._search_op(q, k, None, fused=True)
            redo = np.flatnonzero(overflow)
            if redo.size:
                # A query whose candidate list overflowed (rare): the tiled search.
                D[redo], raw[redo] = self._search_op(q[redo], k, None)
        else:
            D, raw = self._search_op(q, k, f)
        return self._results(D, _search._indices(raw))

    def _search_op(self, q, k, f, fused=False):
        """(D, raw uint32 rows[, overflow flags]) of the device search: knn's fused path (fused)
        or its tiles and chunked top-k (the filter honoured), both over the codes."""
        sq, nq = self._sq, q.shape[0]
        vmin, _, step = sq._device_params()
        D = np.empty((nq, k), np.float32)
        raw = np.empty((nq, k), np.uint32)
        names = {("in", 0): "q", ("in", 1): "codes", ("in", 4): "filter", ("out", 0): "D", ("out", 1): "I",
                 ("out", 2): "overflow"}
        metric = distances._CODE[self._metric]
        if fused:
            overflow = np.empty(nq, np.uint32)
            runtime.run_op("sq_knn_fused", (q, self._database(), vmin, step), (D, raw, overflow),
                           (sq.bits, metric, k), names=names)
        else:
            bits = None if f is None else _search._filter_bits(f, self._n)
            inputs = (q, self._database(), vmin, step) + (() if bits is None else (bits,))
            runtime.run_op("sq_knn", inputs, (D, raw), (sq.bits, metric, k, int(bits is not None)), names=names)
        if runtime.in_batch():
            runtime.synchronize()            # the results are host arrays, needed now
        return (D, raw, overflow) if fused else (D, raw)

    # ---- persistence --------------------------------------------------------------------------

    def save(self, path):
        """Write the index to path atomically (vaccel.indexfile's format, kind 'sq')."""
        sq = self._sq
        zero = np.zeros(self._d, np.float32)
        indexfile.write(path, self._file_kind,
                        {"d": self._d, "bits": sq.bits, "metric": self._metric, "per_dim": sq.per_dim,
                         "trained": sq.is_trained, "next_id": self._next_id},
                        {"codes": self.codes, "ids": self._ids[:self._n],
                         "vmin": sq._vmin if sq.is_trained else zero, "vmax": sq._vmax if sq.is_trained else zero})

    @classmethod
    def load(cls, path):
        """Read an index written by save; IndexFileError for a file that is not a vaccel SQIndex, is
        damaged or truncated, or comes from a newer format version."""
        return cls._from_file(indexfile.read(path, cls._file_kind))

    @classmethod
    def _from_file(cls, file):
        d = file.param("d", int, lambda v: v >= 1)
        bits = file.param("bits", int, lambda v: v in (8, 4))
        metric = file.param("metric", str, lambda m: m in cls.METRICS)
        per_dim = file.param("per_dim", bool)
        trained = file.param("trained", bool)
        index = cls(d, bits, metric, per_dim)
        codes, ids, next_id = index._file_common(file)
        vmin = file.array("vmin", np.float32, (d,))
        vmax = file.array("vmax", np.float32, (d,))
        if trained:
            if not (np.isfinite(vmin).all() and np.isfinite(vmax).all() and (vmin <= vmax).all()):
                file.fail("inconsistent quantizer range")
            if not per_dim and not ((vmin == vmin[0]).all() and (vmax == vmax[0]).all()):
                file.fail("inconsistent quantizer range (per_dim is false but the range varies)")
            try:
                index._sq._set_range(vmin, vmax)
            except ValueError as exc:
                file.fail(f"inconsistent quantizer range ({exc})")
        elif codes.shape[0]:
            file.fail("inconsistent description (codes stored in an untrained index)")
        if bits == 4 and d % 2 and codes.shape[0] and (codes[:, -1] >> 4).any():
            file.fail("inconsistent codes (bits set past the last element)")
        index._restore(codes, ids, next_id)
        return index


@indexfile.register("binary")
class BinaryIndex(CodeIndex):
    """Exact search over binary codes under the Hamming distance, like faiss.IndexBinaryFlat.

        index = vaccel.BinaryIndex(256)           # d in bits (a multiple of 8): 32-byte codes
        index.add(codes, ids=None)                # uint8 (n, d / 8), e.g. BinaryQuantizer's
        D, I = index.search(qcodes, 10, filter=None)

    D: int32 Hamming distances (faiss's type), I: int64 ids; best first, ties to the vector stored
    first (the lower id with default ids, as faiss). Where fewer than k vectors exist or pass the
    filter, I = -1 and D = 2147483647 (faiss's padding).

    On the device a fused kernel (csrc/ops/hamming.c) streams the codes once per block of queries
    held in shared memory and keeps only the rows within a per-query bound from a sample; the
    queries x database distance matrix is never written. Codes beyond 1024 bits or k beyond 1024
    go through vaccel.knn's 'bitwise_hamming' tiles instead.
    """

    def __init__(self, d):
        d = _int(d, "d")
        if d < 8 or d % 8:
            raise ValueError(f"d must be a positive multiple of 8 (bits per code), got {d}")
        self._d = d
        self._init_storage(d // 8)

    @property
    def is_trained(self):
        return True

    def __repr__(self):
        return f"vaccel.BinaryIndex(d={self._d}, ntotal={self._n})"

    def train(self, x):
        """Nothing to learn (faiss's IndexBinaryFlat.train is a no-op too); x is checked."""
        self._codes_arg(x, "x")
        return self

    def _codes_arg(self, x, name):
        if runtime._is_array(x):
            x = x.numpy()
        if x is None:
            raise TypeError(f"{name} must be an array, got None")
        a = np.asarray(x)
        if a.dtype != np.uint8:
            raise TypeError(f"{name} must be uint8 codes, got dtype {a.dtype}")
        if a.ndim != 2 or a.shape[1] != self._code_size:
            raise ValueError(f"{name} must have shape (n, {self._code_size}) for {self._d}-bit codes, got {a.shape}")
        return a

    def add(self, x, ids=None):
        """Append the codes x (n, d / 8) uint8. ids: as FlatIndex.add."""
        x = self._codes_arg(x, "x")
        self._check_ids_early(ids, x.shape[0])
        self._store(padded_codes(x, self._width), ids)

    def reconstruct(self, id):
        """The stored code of id, uint8 (d / 8,)."""
        i = _int(id, "id")
        pos = int(self._positions(np.array([i], np.int64))[0])
        if pos < 0:
            raise ValueError(f"id {i} is not in the index")
        return self._host[pos, :self._code_size].copy()

    def search(self, q, k, filter=None):
        """The k nearest stored codes of each query code q (nq, d / 8): (D int32 (nq, k), I int64
        ids). filter: an int64 array of allowed ids, or a boolean mask over the stored vectors in
        storage order (see .ids)."""
        q = self._codes_arg(q, "q")
        k = self._k(k)
        f = self._filter(filter)
        nq, n = q.shape[0], self._n
        pad = np.iinfo(np.int32).max
        none_allowed = f is not None and not (f.any() if f.dtype == np.bool_ else f.size)
        if n == 0 or nq == 0 or none_allowed:
            return np.full((nq, k), pad, np.int32), np.full((nq, k), -1, np.int64)
        if runtime.get_backend() == "cpu":
            D, I = cpu.knn(q, self._host[:n, :self._code_size], k, "bitwise_hamming", filter=f)
        else:
            D, I = self._search_device(padded_codes(q, self._width), k, f)
        D = np.where(I >= 0, D, 0).astype(np.int32)
        D[I < 0] = pad
        return self._results(D, I)

    def _search_device(self, q, k, f):
        db = self._database()
        n = self._n
        if self._width // 4 > HAMMING_MAX_WORDS or k > HAMMING_MAX_K:
            return _search.knn(q, db, k, "bitwise_hamming", filter=f)
        bits = None if f is None else _search._filter_bits(f, n)
        nq = q.shape[0]
        D = np.empty((nq, k), np.float32)
        raw = np.empty((nq, k), np.uint32)
        counts = np.empty(nq, np.uint32)
        inputs = (q, db) + (() if bits is None else (bits,))
        runtime.run_op("hamming_knn", inputs, (D, raw, counts), (k, HAMMING_CAP, int(bits is not None)),
                       names={("in", 0): "q", ("in", 1): "codes", ("in", 2): "filter",
                              ("out", 0): "D", ("out", 1): "I", ("out", 2): "counts"})
        if runtime.in_batch():
            runtime.synchronize()
        I = _search._indices(raw)
        over = np.flatnonzero(counts > HAMMING_CAP)
        if over.size:
            # More rows within the sampled bound than were kept: exact tiles for those queries.
            D2, I2 = _search.knn(q[over], db, k, "bitwise_hamming", filter=f)
            D[over], I[over] = D2, I2
        return D, I

    # ---- persistence --------------------------------------------------------------------------

    def save(self, path):
        """Write the index to path atomically (vaccel.indexfile's format, kind 'binary')."""
        indexfile.write(path, self._file_kind, {"d": self._d, "next_id": self._next_id},
                        {"codes": self.codes, "ids": self._ids[:self._n]})

    @classmethod
    def load(cls, path):
        """Read an index written by save; IndexFileError for a damaged or foreign file."""
        return cls._from_file(indexfile.read(path, cls._file_kind))

    @classmethod
    def _from_file(cls, file):
        d = file.param("d", int, lambda v: v >= 8 and v % 8 == 0)
        index = cls(d)
        index._restore(*index._file_common(file))
        return index
