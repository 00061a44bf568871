"""Product quantization: ProductQuantizer (m sub-codebooks trained with KMeans per sub-space, as
faiss trains them) and PQIndex (asymmetric-distance search on the GPU).

Codes follow faiss's layout: m sub-codes of nbits bits each, packed LSB first into
ceil(m * nbits / 8) bytes (one byte per sub-code for nbits = 8). On the device each code row is
padded to whole 32-bit words.

Search (pq_scan.comp through csrc/ops/pq.c): a table of m x 2^nbits distances from each query's
sub-vectors to the centroids is computed on the GPU (pq_lut.comp); a workgroup holds the tables of
a few queries in shared memory while it scans a slice of the codes, keeps each query's k best rows
as it goes, and a topk merges the slices. The nq x nb distance matrix never exists.

PQIndex keeps its codes and ids as FlatIndex keeps its rows (vaccel.indexbase.RowStore).
"""

from __future__ import annotations

import warnings

import numpy as np

from . import cpu, distances, indexfile, runtime, search as _search
from .errors import NotTrainedError
from .indexbase import RowLayout, RowStore, _int, check_k, empty_results
from .indexfile import IndexFileError

__all__ = ["ProductQuantizer", "PQIndex", "NotTrainedError", "IndexFileError"]

METRICS = ("sqeuclidean", "inner")
_METRIC_CODE = {"sqeuclidean": 0, "inner": 3}
MIN_POINTS_PER_CENTROID = 39    # faiss warns below this many training points per centroid
MAX_POINTS_PER_CENTROID = 256   # and trains on a random sample of at most this many

# Planner overrides for tests of the splitting (0: the planner's choice).
_WINDOW_ROWS = 0
_SLICE_ROWS = 0


# ---- arguments --------------------------------------------------------------------------------


def _metric(metric):
    if not isinstance(metric, str) or metric.lower() not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return metric.lower()


def _vectors(x, d, name):
    """x as a C-contiguous float32 (n, d) host array (float16/float64/integers and strided views
    are converted; a vaccel.Array is brought back)."""
    if runtime._is_array(x):
        x = x.numpy()
    a = distances._matrix(x, name)
    if a.shape[1] != d:
        raise ValueError(f"{name} must have shape (n, {d}), got {a.shape}")
    with np.errstate(over="ignore"):
        return np.ascontiguousarray(a, dtype=np.float32)


def _seed(random_state):
    if random_state is None:
        return None
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**31 - 1))
    return _int(random_state, "random_state")


def _training_sample(x, k, seed, what):
    """x, checked and subsampled as faiss's clustering does: an error below k points, a warning
    below MIN_POINTS_PER_CENTROID * k, a random sample of MAX_POINTS_PER_CENTROID * k above it."""
    n = x.shape[0]
    if n < k:
        raise ValueError(f"{what}: {n} training points are fewer than the {k} centroids to train; "
                         f"give at least {k}")
    if n < MIN_POINTS_PER_CENTROID * k:
        warnings.warn(f"{what}: clustering {n} points to {k} centroids: please provide at least "
                      f"{MIN_POINTS_PER_CENTROID * k} training points", UserWarning, stacklevel=3)
    if n > MAX_POINTS_PER_CENTROID * k:
        rows = np.random.default_rng(seed).choice(n, MAX_POINTS_PER_CENTROID * k, replace=False)
        x = x[np.sort(rows)]
    return x


def _kmeans_options(max_iter, init, random_state):
    """(max_iter, init, seed) of a quantizer's k-means, checked."""
    max_iter = _int(max_iter, "max_iter")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    seed = _seed(random_state)
    if init not in ("k-means++", "random"):
        raise ValueError(f"init must be 'k-means++' or 'random', got {init!r}")
    return max_iter, init, seed


def _file_kmeans_options(file):
    """(max_iter, init, seed) of an index file, checked."""
    max_iter = file.param("max_iter", int, lambda v: v >= 1)
    init = file.param("init", str, lambda v: v in ("k-means++", "random"))
    seed = file.params.get("random_state")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        file.fail(f"inconsistent description (random_state = {seed!r})")
    return max_iter, init, seed


def _kmeans(x, k, max_iter, seed, init="k-means++"):
    """k centroids of x (float32 (k, d)) from vaccel.cluster.KMeans (one run)."""
    from .cluster import KMeans
    km = KMeans(n_clusters=k, init=init, n_init=1, max_iter=max_iter, random_state=seed).fit(x)
    return np.ascontiguousarray(km.cluster_centers_, dtype=np.float32)


def _assign(x, centres):
    """Nearest centre of every row of x: int64 labels (vaccel.cluster.assign, on the GPU)."""
    from .cluster import assign
    labels, _ = assign(np.ascontiguousarray(x, np.float32), np.ascontiguousarray(centres, np.float32))
    return np.asarray(labels, np.int64)


# ---- code layout --------------------------------------------------------------------------------

def code_size(m, nbits):
    """Bytes per code (faiss's code_size)."""
    return (m * nbits + 7) // 8


def pack_codes(labels, nbits):
    """(n, m) sub-codes in [0, 2^nbits) -> uint8 (n, code_size) codes, LSB-first bit stream."""
    labels = np.asarray(labels)
    n, m = labels.shape
    if nbits == 8:
        return np.ascontiguousarray(labels, dtype=np.uint8)
    shifts = np.arange(nbits, dtype=np.uint8)
    bits = ((labels.astype(np.uint8)[:, :, None] >> shifts) & 1).reshape(n, m * nbits)
    return np.ascontiguousarray(np.packbits(bits, axis=1, bitorder="little"))


def unpack_codes(codes, m, nbits):
    """uint8 (n, code_size) codes -> (n, m) int64 sub-codes."""
    codes = np.asarray(codes, np.uint8)
    if nbits == 8:
        return codes[:, :m].astype(np.int64)
    n = codes.shape[0]
    bits = np.unpackbits(codes, axis=1, bitorder="little")[:, :m * nbits].reshape(n, m, nbits)
    return (bits.astype(np.int64) << np.arange(nbits, dtype=np.int64)).sum(axis=2)


def code_words(codes):
    """uint8 (n, code_size) codes -> uint32 (n, words) rows, zero-padded to whole words (the
    device layout)."""
    codes = np.asarray(codes, np.uint8)
    n, cs = codes.shape
    w = (cs + 3) // 4
    if cs == 4 * w:
        return np.ascontiguousarray(codes).view(np.uint32).reshape(n, w)
    out = np.zeros((n, 4 * w), np.uint8)
    out[:, :cs] = codes
    return out.view(np.uint32).reshape(n, w)


# ---- the quantizer -------------------------------------------------------------------------------

class ProductQuantizer:
    """faiss-like product quantizer: d split into m sub-vectors of d/m, each quantized with its own
    codebook of 2^nbits centroids (k-means per sub-space, vaccel.cluster.KMeans).

        pq = vaccel.ProductQuantizer(128, m=16)         # nbits=8: one byte per sub-code
        pq.train(x)                                      # (n, 128); samples 256 * 2^nbits points
        codes = pq.encode(x)                             # uint8 (n, 16)
        y = pq.decode(codes)                             # float32 (n, 128)
        pq.centroids                                     # float32 (16, 256, 8)

    nbits from 1 to 8; below 8 the sub-codes are packed LSB first into ceil(m * nbits / 8)
    bytes, faiss's layout. Training warns below 39 * 2^nbits points and raises ValueError
    below 2^nbits, like faiss; max_iter k-means iterations (faiss: 25), seeded by random_state;
    init 'k-means++' (default) or 'random' (faiss's: quicker, a little worse).
    """

    def __init__(self, d, m, nbits=8, *, max_iter=25, init="k-means++", random_state=1234):
        d, m, nbits = _int(d, "d"), _int(m, "m"), _int(nbits, "nbits")
        if d < 1:
            raise ValueError(f"d must be at least 1, got {d}")
        if m < 1:
            raise ValueError(f"m must be at least 1, got {m}")
        if d % m:
            raise ValueError(f"d ({d}) must be divisible by m ({m})")
        if not 1 <= nbits <= 8:
            raise ValueError(f"nbits must be between 1 and 8, got {nbits}")
        self._max_iter, self._init, self._seed = _kmeans_options(max_iter, init, random_state)
        self._d, self._m, self._nbits = d, m, nbits
        self._centroids = None

    d = property(lambda self: self._d)
    m = property(lambda self: self._m)
    nbits = property(lambda self: self._nbits)
    ksub = property(lambda self: 1 << self._nbits, doc="centroids per sub-quantizer (2^nbits)")
    dsub = property(lambda self: self._d // self._m, doc="dimensions per sub-vector (d / m)")
    code_size = property(lambda self: code_size(self._m, self._nbits), doc="bytes per code")
    is_trained = property(lambda self: self._centroids is not None)

    def __repr__(self):
        return (f"vaccel.ProductQuantizer(d={self._d}, m={self._m}, nbits={self._nbits}, "
                f"trained={self.is_trained})")

    @property
    def centroids(self):
        """float32 (m, 2^nbits, d/m): centroid c of sub-quantizer j is centroids[j, c]; None
        before training. Assigning an array of that shape sets the codebooks (trained)."""
        return self._centroids

    @centroids.setter
    def centroids(self, value):
        a = np.asarray(value)
        shape = (self._m, self.ksub, self.dsub)
        if a.shape != shape or a.dtype.kind not in "fiu":
            raise ValueError(f"centroids must be a numeric array of shape {shape}, got {a.dtype} {a.shape}")
        self._centroids = np.ascontiguousarray(a, dtype=np.float32)

    def _trained(self):
        if self._centroids is None:
            raise NotTrainedError("this ProductQuantizer is not trained: call train(x) first")
        return self._centroids

    def train(self, x):
        """Train the m codebooks on x (n, d): k-means with 2^nbits centroids per sub-space."""
        x = _vectors(x, self._d, "x")
        x = _training_sample(x, self.ksub, self._seed, "ProductQuantizer.train")
        ds = self.dsub
        cent = np.empty((self._m, self.ksub, ds), np.float32)
        for j in range(self._m):
            cent[j] = _kmeans(np.ascontiguousarray(x[:, j * ds:(j + 1) * ds]), self.ksub, self._max_iter,
                              self._seed, self._init)
        self._centroids = cent
        return self

    def _labels(self, x):
        """(n, m) int64 sub-codes of float32 rows x: the nearest centroid per sub-space."""
        cent = self._trained()
        ds = self.dsub
        out = np.empty((x.shape[0], self._m), np.int64)
        if x.shape[0]:
            for j in range(self._m):
                out[:, j] = _assign(x[:, j * ds:(j + 1) * ds], cent[j])
        return out

    def encode(self, x):
        """uint8 (n, code_size) codes of x (n, d): the nearest centroid of every sub-vector."""
        self._trained()
        return pack_codes(self._labels(_vectors(x, self._d, "x")), self._nbits)

    def decode(self, codes):
        """float32 (n, d) reconstructions of uint8 (n, code_size) codes."""
        self._trained()
        return self._decode_labels(unpack_codes(self._codes(codes), self._m, self._nbits))

    def _decode_labels(self, labels):
        cent = self._centroids
        n = labels.shape[0]
        out = np.empty((n, self._m, self.dsub), np.float32)
        for j in range(self._m):
            out[:, j] = cent[j][labels[:, j]]
        return out.reshape(n, self._d)

    def _codes(self, codes):
        if runtime._is_array(codes):
            codes = codes.numpy()
        c = np.asarray(codes)
        if c.dtype != np.uint8:
            raise TypeError(f"codes must be uint8, got {c.dtype}")
        if c.ndim != 2 or c.shape[1] != self.code_size:
            raise ValueError(f"codes must have shape (n, {self.code_size}), got {c.shape}")
        return c

    def compute_distance_tables(self, q, metric="sqeuclidean"):
        """float32 (nq, m, 2^nbits): ||q_j - centroids[j, c]||^2 ('sqeuclidean') or
        q_j . centroids[j, c] ('inner') for the sub-vectors q_j of every query (on the GPU)."""
        cent = self._trained()
        metric = _metric(metric)
        q = _vectors(q, self._d, "q")
        if runtime.get_backend() == "cpu":
            return cpu.pq_tables(q, cent, metric)
        out = np.empty((q.shape[0], self._m * self.ksub), np.float32)
        if q.shape[0]:
            runtime.run_op("pq_tables", (q, cent.reshape(-1, self.dsub)), (out,),
                           (_METRIC_CODE[metric], self._m, self._nbits),
                           names={("in", 0): "q", ("in", 1): "centroids", ("out", 0): "tables"})
        return out.reshape(q.shape[0], self._m, self.ksub)


# ---- the index ------------------------------------------------------------------------------------

class _CodeRows(RowLayout):
    """Stored rows that are the codes of self._pq (PQIndex, IVFPQIndex): code_size bytes on the
    host, padded to whole 32-bit words on the device."""

    def _row_shape(self):
        return (self._pq.code_size,)

    def _row_dtype(self):
        return np.uint8

    def _device_layout(self):
        return (self._pq.code_size + 3) // 4, np.uint32

    def _device_payload(self, rows):
        return code_words(rows)


@indexfile.register("pq")
class PQIndex(_CodeRows, RowStore):
    """Product-quantization index with asymmetric-distance (ADC) search on the GPU, faiss's IndexPQ
    with FlatIndex's interface:

        index = vaccel.PQIndex(128, m=16)             # nbits=8, metric='sqeuclidean' or 'inner'
        index.train(xtrain)                           # the codebooks (ProductQuantizer.train)
        index.add(xb)                                 # ids 0.. by default, or add(xb, ids=...)
        D, I = index.search(xq, 10)                   # filter=allowed ids or a mask
        index.remove_ids([3, 7]); index.save("x.vx"); vaccel.PQIndex.load("x.vx")

    D is the distance from the query to each code's reconstruction (its inner product for
    'inner', largest first), computed as a sum of table lookups; where fewer than k vectors are
    eligible I is -1 and D is +inf (-inf for 'inner'). Untrained use raises NotTrainedError.

    table_dtype: 'float32' (default: distances accurate to float32 rounding) or 'float16': the
    GPU keeps the distance tables as float16 (scaled per query by a power of two), two queries
    per shared-memory read, and (where the device computes in float16) sums four entries at a
    time in float16: faster (the lookups bind the scan), distances within ~2e-3 relative, so
    near-ties may rank differently. The CPU backend computes exact tables either way.
    """

    def __init__(self, d, m, nbits=8, metric="sqeuclidean", *, table_dtype="float32", max_iter=25,
                 init="k-means++", random_state=1234):
        self._pq = ProductQuantizer(d, m, nbits, max_iter=max_iter, init=init, random_state=random_state)
        self._d = self._pq.d
        self._metric = _metric(metric)
        if table_dtype not in ("float32", "float16"):
            raise ValueError(f"table_dtype must be 'float32' or 'float16', got {table_dtype!r}")
        self._table_dtype = table_dtype
        self.reset()

    m = property(lambda self: self._pq.m)
    nbits = property(lambda self: self._pq.nbits)
    table_dtype = property(lambda self: self._table_dtype)
    pq = property(lambda self: self._pq, doc="the ProductQuantizer (its codebooks)")
    is_trained = property(lambda self: self._pq.is_trained)

    def __repr__(self):
        return (f"vaccel.PQIndex(d={self.d}, m={self.m}, nbits={self.nbits}, metric={self._metric!r}, "
                f"table_dtype={self._table_dtype!r}, trained={self.is_trained}, ntotal={self._n})")

    def reset(self):
        """Remove every vector (ids start again from 0); device memory is released. The codebooks
        stay trained."""
        super().reset()
        self._dev_cent = None     # (host centroids it was made from, device copy)

    def train(self, x):
        """Train the codebooks on x (n, d) (ProductQuantizer.train). An index holding vectors is
        not retrained (its codes only mean something under their codebooks): reset() first."""
        if self._n:
            raise ValueError("train: the index holds vectors encoded with the current codebooks; reset() first")
        self._pq.train(x)
        return self

    def add(self, x, ids=None):
        """Encode and append the rows of x (n, d). ids: int64 (n,) non-negative and unused; by
        default sequential, continuing after the largest id given so far."""
        if not self.is_trained:
            raise NotTrainedError("this PQIndex is not trained: call train(x) before add")
        x = _vectors(x, self.d, "x")
        new_ids = self._new_ids(ids, x.shape[0])
        if x.shape[0]:
            self._append(self._pq.encode(x), new_ids)

    def reconstruct(self, id):
        """The decoded (reconstructed) vector of id, float32 (d,)."""
        return self.reconstruct_batch([_int(id, "id")])[0]

    def reconstruct_batch(self, ids):
        """The decoded vectors of these ids, float32 (len(ids), d); ValueError for an id not
        stored."""
        return self._pq.decode(self._host[self._slots_of(ids)])

    def search(self, q, k, filter=None):
        """The k best stored vectors for each row of q (nq, d) by asymmetric distance: (D float32
        (nq, k), I int64 ids). filter: an int64 array of allowed ids, or a boolean mask over the
        stored vectors in storage order (see .ids)."""
        if not self.is_trained:
            raise NotTrainedError("this PQIndex is not trained: call train(x) before search")
        q = _vectors(q, self.d, "q")
        k = check_k(k)
        allowed = self._allowed(filter)
        nq, largest = q.shape[0], self._metric == "inner"
        if self._nothing_to_search(nq, allowed):
            return empty_results(nq, k, largest)
        pq = self._pq
        if not self._use_device():
            labels = unpack_codes(self._host[:self._n], pq.m, pq.nbits)
            D, I = cpu.pq_search(q, pq.centroids, labels, k, self._metric, filter=allowed)
            return D, self._to_ids(I)
        if self._dev_cent is None or self._dev_cent[0] is not pq.centroids:
            self._dev_cent = (pq.centroids, runtime.asarray(pq.centroids.reshape(-1, pq.dsub)))
        D = np.empty((nq, k), np.float32)
        raw = np.empty((nq, k), np.uint32)
        inputs = (q, self._dev_cent[1], self._database())
        if allowed is not None:
            inputs += (_search._filter_bits(allowed, self._n),)
        runtime.run_op("pq_search", inputs, (D, raw),
                       (_METRIC_CODE[self._metric], k, pq.m, pq.nbits, int(allowed is not None),
                        _WINDOW_ROWS, _SLICE_ROWS, int(self._table_dtype == "float16")),
                       names={("in", 0): "q", ("in", 1): "centroids", ("in", 2): "codes",
                              ("in", 3): "filter", ("out", 0): "D", ("out", 1): "I"})
        if runtime.in_batch():
            runtime.synchronize()
        return self._kernel_results(D, raw, largest)

    # ---- persistence ----------------------------------------------------------------------------

    def save(self, path):
        """Write the index to path atomically (vaccel.indexfile's format, kind 'pq')."""
        pq = self._pq
        self._write(path, {"d": pq.d, "m": pq.m, "nbits": pq.nbits, "metric": self._metric, "trained": pq.is_trained,
                           "max_iter": pq._max_iter, "init": pq._init, "random_state": pq._seed,
                           "table_dtype": self._table_dtype},
                    "codes", self._host[:self._n], {"centroids": pq.centroids} if pq.is_trained else None)

    @classmethod
    def _from_file(cls, file):
        d = file.param("d", int, lambda v: v >= 1)
        m = file.param("m", int, lambda v: v >= 1 and d % v == 0)
        nbits = file.param("nbits", int, lambda v: 1 <= v <= 8)
        metric = file.param("metric", str, lambda v: v in METRICS)
        trained = file.param("trained", bool)
        max_iter, init, seed = _file_kmeans_options(file)
        table_dtype = file.param("table_dtype", str, lambda v: v in ("float32", "float16"))
        codes, ids, next_id = cls._file_rows(file, "codes", np.uint8, (code_size(m, nbits),))
        index = cls(d, m, nbits, metric, table_dtype=table_dtype, max_iter=max_iter, init=init, random_state=seed)
        if trained:
            index._pq.centroids = file.array("centroids", np.float32, (m, 1 << nbits, d // m))
        elif codes.shape[0]:
            file.fail("inconsistent description (codes in an untrained index)")
        index._restore(codes, ids, next_id)
        return index
