"""IVF indexes: IVFFlatIndex (inverted lists of raw vectors) and IVFPQIndex (inverted lists of
product-quantization codes of the residuals x - centroid, faiss's IndexIVFPQ with by_residual).

A coarse quantizer (vaccel.cluster.KMeans, nlist centroids) sends every vector to one list. The
lists live on the device in one array of slots, each list contiguous in its own region with spare
room at its end: an add writes only the new rows (a list that runs out of room makes the layout
grow, 25% spare per list); remove_ids compacts the lists it touches, keeping their order.
The host keeps a mirror (reconstruct, save, the CPU backend).

Search (csrc/ops/ivf.c): the nprobe best centroids of every query (vaccel.knn on the device), then
one workgroup per (query, probed list) pair scans that list, exact distances (IVF-Flat) or
asymmetric distances through distance tables (IVF-PQ), keeping its k best as it goes; a topk merges
the pairs of each query. IVF-PQ under 'sqeuclidean' uses faiss's precomputed tables
(||y_R||^2 + 2 y_C.y_R per list, kept on the device when it takes at most _PRECOMPUTED_MAX_BYTES),
else a table per (query, list) pair.

'inner': lists are chosen and searched by the largest inner product (faiss with an inner-product
quantizer); the centroids come from the same (L2) k-means.
"""

from __future__ import annotations

import numpy as np

from . import cpu, indexfile, runtime, search
from .errors import NotTrainedError
from .indexbase import IdSlots, RowLayout, _int, check_k, empty_results
from .pq import (_METRIC_CODE, METRICS, ProductQuantizer, _assign, _CodeRows, _file_kmeans_options, _kmeans,
                 _kmeans_options, _metric, _training_sample, _vectors, code_size, unpack_codes)

__all__ = ["IVFFlatIndex", "IVFPQIndex"]

_PRECOMPUTED_MAX_BYTES = 256 << 20   # IVF-PQ precomputed tables kept on the device up to this size
_WINDOW_ROWS = 0                     # planner override for tests of the splitting (0: none)
_SPARE_MIN = 8                       # spare slots a growing list gets at least


class _IVF(IdSlots, RowLayout):
    """What both IVF indexes share: coarse quantizer, list layout, search, persistence; the ids of
    the slots through vaccel.indexbase.IdSlots."""

    _kind_name = "IVF"

    def __init__(self, d, nlist, metric, max_iter, init, random_state):
        d, nlist = _int(d, "d"), _int(nlist, "nlist")
        if d < 1:
            raise ValueError(f"d must be at least 1, got {d}")
        if nlist < 1:
            raise ValueError(f"nlist must be at least 1, got {nlist}")
        self._d, self._nlist = d, nlist
        self._metric = _metric(metric)
        self._max_iter, self._init, self._seed = _kmeans_options(max_iter, init, random_state)
        self._nprobe = 1
        self._centroids = None
        self._dev_coarse = None
        self.reset()

    nlist = property(lambda self: self._nlist)
    ntotal = property(lambda self: int(self._size.sum()))
    is_trained = property(lambda self: self._centroids is not None)

    @property
    def centroids(self):
        """The coarse centroids, float32 (nlist, d); None before training. Assigning an array of
        that shape sets the coarse quantizer without training it (an empty index only)."""
        return self._centroids

    @centroids.setter
    def centroids(self, value):
        if self.ntotal:
            raise ValueError("centroids: the index holds vectors assigned to the current lists; reset() first")
        a = np.asarray(value)
        if a.shape != (self._nlist, self._d) or a.dtype.kind not in "fiu":
            raise ValueError(f"centroids must be a numeric array of shape ({self._nlist}, {self._d}), "
                             f"got {a.dtype} {a.shape}")
        self._centroids = np.ascontiguousarray(a, dtype=np.float32)

    @property
    def nprobe(self):
        """Lists searched per query (default 1, as faiss); search(..., nprobe=) overrides it."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value):
        self._nprobe = self._check_nprobe(value)

    @staticmethod
    def _check_nprobe(value):
        v = _int(value, "nprobe")
        if v < 1:
            raise ValueError(f"nprobe must be at least 1, got {v}")
        return v

    @property
    def list_sizes(self):
        """int64 (nlist,): vectors in each inverted list."""
        return self._size.copy()

    # ---- storage ------------------------------------------------------------------------------

    def reset(self):
        """Remove every vector (ids start again from 0); the training stays."""
        n = self._nlist
        self._start = np.zeros(n, np.int64)
        self._size = np.zeros(n, np.int64)
        self._cap = np.zeros(n, np.int64)
        self._rows = np.empty((0,) + self._row_shape(), self._row_dtype())
        self._slot_ids = np.empty(0, np.int64)
        self._dev_rows = None       # device rows over every slot, None: to upload in full
        self._dev_lists = None
        self._reset_ids()

    def _slots(self):
        return self._slot_ids

    def _list_of(self, slots):
        """The list holding each slot."""
        return np.searchsorted(self._start, slots, side="right") - 1 if slots.size else slots

    def _relayout(self, caps):
        """Regions of these capacities for the lists, rows moved over (their order kept)."""
        start = np.zeros(self._nlist, np.int64)
        np.cumsum(caps[:-1], out=start[1:])
        total = int(caps.sum())
        rows = np.zeros((total,) + self._row_shape(), self._row_dtype())
        ids = np.full(total, -1, np.int64)
        lst = np.repeat(np.arange(self._nlist), self._size)
        rank = np.arange(lst.size) - np.repeat(np.cumsum(self._size) - self._size, self._size)
        old, new = self._start[lst] + rank, start[lst] + rank
        rows[new] = self._rows[old]
        ids[new] = self._slot_ids[old]
        self._start, self._cap, self._rows, self._slot_ids = start, caps.astype(np.int64), rows, ids
        self._dev_rows = None

    def _coarse_labels(self, x):
        """The list of every row of x: the nearest centroid ('sqeuclidean', vaccel.cluster.assign)
        or the one of largest inner product ('inner')."""
        if x.shape[0] == 0:
            return np.empty(0, np.int64)
        if self._metric == "sqeuclidean":
            return _assign(x, self._centroids)
        _, I = search.knn(x, self._centroids, 1, "inner")
        return I[:, 0].astype(np.int64)

    def _upload_ranges(self, ranges):
        """Device rows current again after host changes to these slot ranges [a, b) (and the list
        table); a full upload when the device copy is missing or there are many ranges."""
        self._dev_lists = None
        if self._dev_rows is None or not self._use_device():
            self._dev_rows = None
            return
        ranges = [(a, b) for a, b in ranges if b > a]
        if len(ranges) > 64:
            ranges = [(min(a for a, _ in ranges), max(b for _, b in ranges))]
        with runtime.batch():
            for a, b in ranges:
                self._dev_rows[a:b]._assign(self._device_payload(self._rows[a:b]))

    def _device(self):
        """(rows Array over every slot, lists Array (nlist, 2) uint32), uploaded when stale."""
        if self._dev_rows is None:
            total = self._rows.shape[0]
            width, dtype = self._device_layout()
            dev = runtime.empty((max(total, 1), width), dtype)
            if total:
                dev[:total]._assign(self._device_payload(self._rows))
            self._dev_rows = dev
        if self._dev_lists is None:
            self._dev_lists = runtime.asarray(np.stack([self._start, self._size], axis=1).astype(np.uint32))
        if self._dev_coarse is None or self._dev_coarse[0] is not self._centroids:
            self._dev_coarse = (self._centroids, runtime.asarray(self._centroids))
        return self._dev_rows[:max(self._rows.shape[0], 1)], self._dev_lists

    # ---- training and adding ----------------------------------------------------------------------

    def _trained(self, what):
        if not self.is_trained:
            raise NotTrainedError(f"this {type(self).__name__} is not trained: call train(x) before {what}")

    def train(self, x):
        """Train the coarse quantizer (k-means, nlist centroids, max_iter iterations; faiss warns
        below 39 points per centroid and so does this, and raises below one) and, for IVF-PQ, the
        product quantizer on the residuals."""
        if self.ntotal:
            raise ValueError("train: the index holds vectors assigned with the current training; reset() first")
        x = _vectors(x, self._d, "x")
        sample = _training_sample(x, self._nlist, self._seed, f"{type(self).__name__}.train")
        self._centroids = _kmeans(sample, self._nlist, self._max_iter, self._seed, self._init)
        self._train_codec(x)
        return self

    def _train_codec(self, x):
        pass

    def _encode(self, x, labels):
        """Host rows of x (in lists labels) as stored."""
        return x

    def add(self, x, ids=None):
        """Add the rows of x (n, d) to their lists. ids: int64 (n,) non-negative and unused; by
        default sequential, continuing after the largest id given so far."""
        self._trained("add")
        x = _vectors(x, self._d, "x")
        m = x.shape[0]
        new_ids = self._new_ids(ids, m)
        if m == 0:
            return
        labels = self._coarse_labels(x)
        rows = self._encode(x, labels)
        counts = np.bincount(labels, minlength=self._nlist)
        need = self._size + counts
        if (need > self._cap).any():
            self._relayout(np.where(need > self._cap, need + need // 4 + _SPARE_MIN, self._cap))
        order = np.argsort(labels, kind="stable")
        sl = labels[order]
        first = np.cumsum(counts) - counts
        slots = self._start[sl] + self._size[sl] + (np.arange(m) - first[sl])
        self._rows[slots] = rows[order]
        self._slot_ids[slots] = new_ids[order]
        touched = np.flatnonzero(counts)
        ranges = [(int(self._start[l] + self._size[l]), int(self._start[l] + need[l])) for l in touched]
        self._size = need
        self._upload_ranges(ranges)
        self._took_ids(new_ids)

    def remove_ids(self, ids):
        """Remove the vectors with these ids (ids not stored are ignored); returns how many were
        removed. The lists they were in are compacted, keeping the order of the rest."""
        slots = self._remove_slots(ids)
        if slots.size == 0:
            return 0
        gone = np.zeros(self._rows.shape[0], bool)
        gone[slots] = True
        ranges = []
        for l in np.unique(self._list_of(slots)):
            a, n = int(self._start[l]), int(self._size[l])
            keep = ~gone[a:a + n]
            k = int(keep.sum())
            self._rows[a:a + k] = self._rows[a:a + n][keep]
            self._slot_ids[a:a + k] = self._slot_ids[a:a + n][keep]
            self._slot_ids[a + k:a + n] = -1
            self._size[l] = k
            ranges.append((a, a + k))
        self._upload_ranges(ranges)
        self._ids_changed()
        return int(slots.size)

    def _reconstruct_slots(self, slots):
        raise NotImplementedError

    def reconstruct(self, id):
        """The stored vector of id (IVF-PQ: its reconstruction, centroid + decoded residual)."""
        return self.reconstruct_batch([_int(id, "id")])[0]

    def reconstruct_batch(self, ids):
        """The stored vectors (IVF-PQ: reconstructions) of these ids, float32 (len(ids), d);
        ValueError for an id not stored."""
        return self._reconstruct_slots(self._slots_of(ids)).astype(np.float32, copy=False)

    # ---- search ----------------------------------------------------------------------------------

    def _device_inputs(self):
        """(inputs after the lists, m, nbits, has_term) of the ivf_search op."""
        raise NotImplementedError

    def search(self, q, k, filter=None, nprobe=None):
        """The k best stored vectors for each row of q (nq, d) among the nprobe lists nearest to
        it: (D float32 (nq, k), I int64 ids). nprobe: this search's (default: the nprobe
        attribute; at most nlist). filter: an int64 array of allowed ids, or a boolean mask over
        the stored vectors in storage order (see .ids). Where fewer than k are eligible in the
        probed lists: I = -1, D = +inf (-inf for 'inner')."""
        self._trained("search")
        q = _vectors(q, self._d, "q")
        k = check_k(k)
        nprobe = min(self._nprobe if nprobe is None else self._check_nprobe(nprobe), self._nlist)
        allowed = self._allowed(filter)
        nq, largest = q.shape[0], self._metric == "inner"
        if self._nothing_to_search(nq, allowed):
            return empty_results(nq, k, largest)
        if not self._use_device():
            lists = [np.arange(a, a + n, dtype=np.int64) for a, n in zip(self._start, self._size)]
            D, I = cpu.ivf_search(q, self._centroids, lists, self._cpu_vectors(), k, nprobe, self._metric,
                                  filter=allowed)
            return D, self._to_ids(I)
        rows, lists = self._device()
        extra, m, nbits, has_term = self._device_inputs()
        inputs = (q, self._dev_coarse[1], lists, rows) + extra
        if allowed is not None:
            inputs += (search._filter_bits(allowed, self._rows.shape[0]),)
        D = np.empty((nq, k), np.float32)
        raw = np.empty((nq, k), np.uint32)
        runtime.run_op("ivf_search", inputs, (D, raw),
                       (_METRIC_CODE[self._metric], k, nprobe, m, nbits, int(has_term), int(allowed is not None),
                        _WINDOW_ROWS),
                       names={("in", 0): "q", ("out", 0): "D", ("out", 1): "I"})
        if runtime.in_batch():
            runtime.synchronize()
        return self._kernel_results(D, raw, largest)

    def _cpu_vectors(self):
        raise NotImplementedError

    # ---- persistence -----------------------------------------------------------------------------

    def _params(self):
        return {"d": self._d, "nlist": self._nlist, "metric": self._metric, "trained": self.is_trained,
                "next_id": self._next_id, "nprobe": self._nprobe, "max_iter": self._max_iter, "init": self._init,
                "random_state": self._seed}

    def _arrays(self):
        occ = self._stored_slots()
        out = {"list_sizes": self._size.copy(), "ids": self._slot_ids[occ], "rows": self._rows[occ]}
        if self.is_trained:
            out["centroids"] = self._centroids
        return out

    def save(self, path):
        """Write the index to path atomically (vaccel.indexfile's format)."""
        indexfile.write(path, self._file_kind, self._params(), self._arrays())

    @staticmethod
    def _common_params(file):
        d = file.param("d", int, lambda v: v >= 1)
        nlist = file.param("nlist", int, lambda v: v >= 1)
        metric = file.param("metric", str, lambda v: v in METRICS)
        return (d, nlist, metric) + _file_kmeans_options(file)

    def _restore(self, file, row_shape, row_dtype):
        trained = file.param("trained", bool)
        self._nprobe = file.param("nprobe", int, lambda v: v >= 1)
        sizes = file.array("list_sizes", np.int64, (self._nlist,))
        ids, next_id = self._file_ids(file, None)
        rows = file.array("rows", row_dtype, (ids.shape[0],) + row_shape)
        if (sizes < 0).any() or int(sizes.sum()) != ids.shape[0]:
            file.fail("inconsistent description (list sizes do not add up to the stored vectors)")
        if trained:
            self._centroids = np.ascontiguousarray(file.array("centroids", np.float32, (self._nlist, self._d)))
        elif ids.shape[0]:
            file.fail("inconsistent description (vectors in an untrained index)")
        self.reset()
        self._next_id = next_id
        caps = np.where(sizes > 0, sizes + sizes // 4 + _SPARE_MIN, 0)
        self._relayout(caps)
        lst = np.repeat(np.arange(self._nlist), sizes)
        slots = self._start[lst] + (np.arange(lst.size) - np.repeat(np.cumsum(sizes) - sizes, sizes))
        self._rows[slots] = rows
        self._slot_ids[slots] = ids
        self._size = sizes.copy()
        self._ids_changed()


@indexfile.register("ivfflat")
class IVFFlatIndex(_IVF):
    """Inverted-file index of raw vectors, faiss's IndexIVFFlat with FlatIndex's interface:

        index = vaccel.IVFFlatIndex(128, nlist=1024)    # metric='sqeuclidean' or 'inner'
        index.train(xtrain)                             # k-means, 1024 centroids
        index.add(xb)                                   # ids 0.. by default, or add(xb, ids=...)
        D, I = index.search(xq, 10, nprobe=16)          # or index.nprobe = 16; filters as FlatIndex
        index.remove_ids([3, 7]); index.save("x.vx"); vaccel.IVFFlatIndex.load("x.vx")

    Distances are exact (float32, computed from differences); with nprobe = nlist the search is
    exact. Untrained use raises NotTrainedError.
    """

    def __init__(self, d, nlist, metric="sqeuclidean", *, max_iter=10, init="k-means++", random_state=1234):
        super().__init__(d, nlist, metric, max_iter, init, random_state)

    def __repr__(self):
        return (f"vaccel.IVFFlatIndex(d={self._d}, nlist={self._nlist}, metric={self._metric!r}, "
                f"nprobe={self._nprobe}, trained={self.is_trained}, ntotal={self.ntotal})")

    def _row_shape(self):
        return (self._d,)

    def _row_dtype(self):
        return np.float32

    def _reconstruct_slots(self, slots):
        return self._rows[slots].copy()

    def _cpu_vectors(self):
        return self._rows

    def _device_inputs(self):
        return (), 0, 0, False

    @classmethod
    def _from_file(cls, file):
        d, nlist, metric, max_iter, init, seed = cls._common_params(file)
        index = cls(d, nlist, metric, max_iter=max_iter, init=init, random_state=seed)
        index._restore(file, (d,), np.float32)
        return index


@indexfile.register("ivfpq")
class IVFPQIndex(_CodeRows, _IVF):
    """Inverted-file index of product-quantization codes of the residuals x - centroid, faiss's
    IndexIVFPQ (by_residual):

        index = vaccel.IVFPQIndex(128, nlist=1024, m=16)   # nbits=8, metric='sqeuclidean'|'inner'
        index.train(xtrain)            # coarse k-means, then the PQ codebooks on the residuals
        index.add(xb); D, I = index.search(xq, 10, nprobe=32)

    D is the distance to each vector's reconstruction (centroid + decoded residual), or its inner
    product for 'inner'. Untrained use raises NotTrainedError.
    """

    def __init__(self, d, nlist, m, nbits=8, metric="sqeuclidean", *, max_iter=10, pq_max_iter=25,
                 init="k-means++", random_state=1234):
        self._pq = ProductQuantizer(d, m, nbits, max_iter=pq_max_iter, init=init, random_state=random_state)
        super().__init__(d, nlist, metric, max_iter, init, random_state)
        self._dev_pq = None

    m = property(lambda self: self._pq.m)
    nbits = property(lambda self: self._pq.nbits)
    pq = property(lambda self: self._pq, doc="the ProductQuantizer of the residuals")
    is_trained = property(lambda self: self._centroids is not None and self._pq.is_trained)

    def __repr__(self):
        return (f"vaccel.IVFPQIndex(d={self._d}, nlist={self._nlist}, m={self.m}, nbits={self.nbits}, "
                f"metric={self._metric!r}, nprobe={self._nprobe}, trained={self.is_trained}, "
                f"ntotal={self.ntotal})")

    def _train_codec(self, x):
        labels = self._coarse_labels(x)
        self._pq.train(x - self._centroids[labels])

    def _encode(self, x, labels):
        return self._pq.encode(x - self._centroids[labels])

    def _reconstruct_slots(self, slots):
        pq = self._pq
        labels = unpack_codes(self._rows[slots], pq.m, pq.nbits)
        return pq._decode_labels(labels) + self._centroids[self._list_of(slots)]

    def _cpu_vectors(self):
        out = np.zeros((self._rows.shape[0], self._d), np.float64)
        occ = self._stored_slots()
        if occ.size:
            out[occ] = self._reconstruct_slots(occ).astype(np.float64)
        return out

    def _precomputed_term(self):
        """float32 (nlist, m * ksub): ||c_jk||^2 + 2 y_C[l]_j . c_jk, or None when too large."""
        pq = self._pq
        size = self._nlist * pq.m * pq.ksub * 4
        limit = min(_PRECOMPUTED_MAX_BYTES, runtime.device_info()["max_storage_buffer_range"] - 4096)
        if self._metric != "sqeuclidean" or size > limit:
            return None
        c = pq.centroids.astype(np.float64)                          # (m, ksub, dsub)
        y = self._centroids.astype(np.float64).reshape(self._nlist, pq.m, pq.dsub)
        term = (c * c).sum(axis=2)[None] + 2.0 * np.einsum("ljs,jks->ljk", y, c)
        return np.ascontiguousarray(term.reshape(self._nlist, -1), dtype=np.float32)

    def _device_inputs(self):
        pq = self._pq
        src = (pq.centroids, self._centroids, _PRECOMPUTED_MAX_BYTES)
        if self._dev_pq is None or any(a is not b for a, b in zip(self._dev_pq[0][:2], src[:2])) or \
                self._dev_pq[0][2] != src[2]:
            term = self._precomputed_term()
            self._dev_pq = (src, runtime.asarray(pq.centroids.reshape(-1, pq.dsub)),
                            None if term is None else runtime.asarray(term))
        _, cent, term = self._dev_pq
        extra = (cent,) if term is None else (cent, term)
        return extra, pq.m, pq.nbits, term is not None

    def _params(self):
        p = super()._params()
        p.update(m=self._pq.m, nbits=self._pq.nbits, pq_max_iter=self._pq._max_iter)
        return p

    def _arrays(self):
        out = super()._arrays()
        if self.is_trained:
            out["pq_centroids"] = self._pq.centroids
        return out

    @classmethod
    def _from_file(cls, file):
        d, nlist, metric, max_iter, init, seed = cls._common_params(file)
        m = file.param("m", int, lambda v: v >= 1 and d % v == 0)
        nbits = file.param("nbits", int, lambda v: 1 <= v <= 8)
        pq_max_iter = file.param("pq_max_iter", int, lambda v: v >= 1)
        index = cls(d, nlist, m, nbits, metric, max_iter=max_iter, pq_max_iter=pq_max_iter, init=init,
                    random_state=seed)
        if file.param("trained", bool):
            index._pq.centroids = file.array("pq_centroids", np.float32, (m, 1 << nbits, d // m))
        index._restore(file, (code_size(m, nbits),), np.uint8)
        return index
