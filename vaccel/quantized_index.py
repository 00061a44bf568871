"""Indexes over quantized codes, with FlatIndex's interface (add with ids, search with filters,
remove_ids, reset, save / load through vaccel.indexfile):

    index = vaccel.SQIndex(128, bits=8)          # scalar-quantized vectors, 4x smaller than float32
    index.train(xt); index.add(xb)               # codes on the device
    D, I = index.search(xq, 10)                  # float queries against the decoded codes

    index = vaccel.BinaryIndex(256)              # like faiss.IndexBinaryFlat: 256-bit codes
    index.add(codes); D, I = index.search(qcodes, 10)   # D int32 Hamming distances

CodeIndex is the shared base: stored rows are uint8 codes padded to whole 32-bit words, kept by
vaccel.indexbase.RowStore as FlatIndex's rows are (on the device with spare capacity, an add
uploads only the new rows; mirrored on the host for save, removal and the CPU backend; ids,
filters and removal the same code). Subclasses say how vectors become codes and how a search runs.
"""

from __future__ import annotations

import numpy as np

from . import cpu, distances, indexfile, runtime, search as _search
from .errors import NotTrainedError
from .indexbase import RowStore, _int, check_k, empty_results
from .indexfile import IndexFileError
from .quantizers import ScalarQuantizer, _padded_width, padded_codes

__all__ = ["CodeIndex", "SQIndex", "BinaryIndex", "IndexFileError", "NotTrainedError"]

# BinaryIndex's fused search (csrc/ops/hamming.c): codes up to this many 32-bit words, k up to
# HAMMING_MAX_K, at most HAMMING_CAP candidates kept per query (a query with more is redone
# exactly by vaccel.knn).
HAMMING_MAX_WORDS = 32
HAMMING_MAX_K = 1024
HAMMING_CAP = 8192



class CodeIndex(RowStore):
    """Base of the indexes that store uint8 codes (rows of the padded width on the host and the
    device). A subclass sets self._d (vector dimension as users see it) and calls
    _init_storage(code_size), and implements add (encoding), search and the file methods."""

    def _init_storage(self, code_size):
        self._code_size = code_size
        self._width = _padded_width(code_size)
        self.reset()

    def _row_shape(self):
        return (self._width,)

    def _row_dtype(self):
        return np.uint8

    @property
    def code_size(self):
        """Bytes per stored code."""
        return self._code_size

    @property
    def codes(self):
        """The stored codes in storage order, (ntotal, code_size) uint8 (a copy)."""
        return np.ascontiguousarray(self._host[:self._n, :self._code_size])

    def _file_codes(self, file):
        """(codes, ids, next_id) of an index file, checked."""
        return self._file_rows(file, "codes", np.uint8, (self._code_size,))

    def _restore_codes(self, codes, ids, next_id):
        self._restore(padded_codes(codes, self._width), ids, next_id)


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
        new_ids = self._new_ids(ids, x.shape[0])        # checked before the encoding
        if x.shape[0] == 0:
            return
        if runtime.get_backend() == "cpu":
            rows = padded_codes(self._sq._encode_cpu(x), self._width)
        else:
            rows = self._sq._encode_rows(x, self._width)
        self._append(rows, new_ids)

    def reconstruct(self, id):
        """The decoded vector of id, float32 (d,)."""
        pos = self._slot_of(id)
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
        k = check_k(k)
        f = self._allowed(filter)
        if self._nothing_to_search(q.shape[0], f):
            return empty_results(q.shape[0], k, self._metric == "inner")
        sq = self._sq
        if not self._use_device():
            decoded = cpu.sq_decode(self._host[:self._n, :self._code_size], sq._vmin, sq._step, sq.bits, self._d)
            D, I = cpu.knn(q, decoded, k, self._metric, filter=f)
            return D, self._to_ids(I)
        metric = distances._CODE[self._metric]
        if f is None and _search._use_fused(q, self._database(), k, metric, None):
            D, raw, overflow = self._search_op(q, k, None, fused=True)
            redo = np.flatnonzero(overflow)
            if redo.size:
                # A query whose candidate list overflowed (rare): the tiled search.
                D[redo], raw[redo] = self._search_op(q[redo], k, None)
        else:
            D, raw = self._search_op(q, k, f)
        return D, self._to_ids(_search._indices(raw))

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
        self._write(path, {"d": self._d, "bits": sq.bits, "metric": self._metric, "per_dim": sq.per_dim,
                           "trained": sq.is_trained}, "codes", self.codes,
                    {"vmin": sq._vmin if sq.is_trained else zero, "vmax": sq._vmax if sq.is_trained else zero})

    @classmethod
    def _from_file(cls, file):
        d = file.param("d", int, lambda v: v >= 1)
        bits = file.param("bits", int, lambda v: v in (8, 4))
        metric = file.param("metric", str, lambda m: m in cls.METRICS)
        per_dim = file.param("per_dim", bool)
        trained = file.param("trained", bool)
        index = cls(d, bits, metric, per_dim)
        codes, ids, next_id = index._file_codes(file)
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
        index._restore_codes(codes, ids, next_id)
        return index


@indexfile.register("binary")
class BinaryIndex(CodeIndex):
    """Exact search over binary codes under the Hamming distance, like faiss.IndexBinaryFlat.

        index = vaccel.BinaryIndex(256)           # d in bits (a multiple of 8): 32-byte codes
        index.add(codes, ids=None)                # uint8 (n, d / 8), e.g. BinaryQuantizer's
        D, I = index.search(qcodes, 10, filter=None)

    D: int32 Hamming distances (faiss's type; .metric is 'bitwise_hamming'), I: int64 ids; best
    first, ties to the vector stored first (the lower id with default ids, as faiss). Where fewer
    than k vectors exist or pass the filter, I = -1 and D = 2147483647 (faiss's padding).

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

    _metric = "bitwise_hamming"      # .metric, as FlatIndex names this distance

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
        new_ids = self._new_ids(ids, x.shape[0])
        self._append(padded_codes(x, self._width), new_ids)

    def reconstruct(self, id):
        """The stored code of id, uint8 (d / 8,)."""
        return self._host[self._slot_of(id), :self._code_size].copy()

    def search(self, q, k, filter=None):
        """The k nearest stored codes of each query code q (nq, d / 8): (D int32 (nq, k), I int64
        ids). filter: an int64 array of allowed ids, or a boolean mask over the stored vectors in
        storage order (see .ids)."""
        q = self._codes_arg(q, "q")
        k = check_k(k)
        f = self._allowed(filter)
        nq, pad = q.shape[0], np.iinfo(np.int32).max
        if self._nothing_to_search(nq, f):
            return np.full((nq, k), pad, np.int32), np.full((nq, k), -1, np.int64)
        if not self._use_device():
            D, I = cpu.knn(q, self._host[:self._n, :self._code_size], k, "bitwise_hamming", filter=f)
        else:
            D, I = self._search_device(padded_codes(q, self._width), k, f)
        D = np.where(I >= 0, D, 0).astype(np.int32)
        D[I < 0] = pad
        return D, self._to_ids(I)

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
        self._write(path, {"d": self._d}, "codes", self.codes)

    @classmethod
    def _from_file(cls, file):
        d = file.param("d", int, lambda v: v >= 8 and v % 8 == 0)
        index = cls(d)
        index._restore_codes(*index._file_codes(file))
        return index
