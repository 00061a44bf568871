"""What every vaccel index shares: the ids of its stored vectors (IdSlots) and, for the indexes
that keep their rows in one block (FlatIndex, SQIndex, BinaryIndex, PQIndex), that block on the
host and on the device (RowStore). The IVF indexes keep their own list layout over IdSlots.

IdSlots: stored vectors sit in storage slots and self._slots() gives the id held in each (-1 for
an empty slot: only the IVF lists have gaps). Everything about ids follows from that, the same
way (faiss's) for every index: default ids (sequential, continuing after the largest id given so
far), the checks on ids given to add, id -> slot lookup, the argument of remove_ids, filters (an
array of allowed ids, or a boolean mask over the stored vectors in storage order), result slots
-> ids (-1 kept), and the ids and next_id of an index file.

RowLayout: what one stored row is on the host (_row_shape, _row_dtype) and on the device
(_device_layout, _device_payload); RowStore and the IVF lists are built on it.

RowStore(IdSlots, RowLayout): rows [0, ntotal) of one host array with spare capacity (doubling),
mirrored on the device in an Array that also has spare capacity, so an add uploads only the new
rows (if the upload fails, the index is as it was); remove_ids compacts, keeping the order of the
rest.
"""

from __future__ import annotations

import numpy as np

from . import indexfile, runtime, search as _search
from .runtime import integer as _int

_MIN_CAPACITY = 64
_INT64_MAX = np.iinfo(np.int64).max

check_k = _search._k          # k of a search: an integer >= 1, checked as vaccel.knn checks it


# ---- argument checks shared by the indexes ----------------------------------------------------------

def check_new_ids(ids, m, positions):
    """ids given to an index's add for m rows, as int64: integers, one per row, non-negative,
    distinct, and not stored yet (positions(ids) -> -1 for ids not stored)."""
    if runtime._is_array(ids):
        ids = ids.numpy()
    a = np.asarray(ids)
    if a.dtype == np.bool_ or a.dtype.kind not in "iu":
        raise TypeError(f"ids must be integers (int64), got dtype {a.dtype}")
    if a.shape != (m,):
        raise ValueError(f"ids must have shape ({m},), one per row of x, got {a.shape}")
    if m == 0:
        return a.astype(np.int64)
    if a.min() < 0 or (a.dtype.kind == "u" and a.max() > _INT64_MAX):
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


def empty_results(nq, k, largest):
    """Search results where nothing is found: D +inf (-inf where larger is better), I -1."""
    return (np.full((nq, k), -np.inf if largest else np.inf, np.float32), np.full((nq, k), -1, np.int64))


# ---- ids over storage slots ---------------------------------------------------------------------------

class IdSlots:
    """Ids of the stored vectors, one per storage slot. A subclass implements _slots() (int64 ids
    over its slots, -1 for an empty slot) and ntotal, calls _reset_ids() when it empties, and
    _took_ids(new ids) / _ids_changed() after every change of its slots."""

    _contiguous = False   # True: slots [0, ntotal) all hold a vector, in storage order

    @property
    def d(self):
        return self._d

    @property
    def metric(self):
        return self._metric

    def __len__(self):
        return self.ntotal

    def _slots(self):
        raise NotImplementedError

    def _stored_slots(self):
        """Slots holding a vector, in storage order (the order of .ids and of boolean filters)."""
        return np.flatnonzero(self._slots() >= 0)

    @property
    def ids(self):
        """The stored ids in storage order (the order a boolean filter mask refers to)."""
        s = self._slots()
        return s[s >= 0].copy()

    def _reset_ids(self):
        self._next_id = 0
        self._lookup = None

    def _ids_changed(self):
        self._lookup = None

    def _new_ids(self, ids, m):
        """The ids of m rows to add, as int64: the given ones, checked, or the next defaults."""
        if ids is None:
            return np.arange(self._next_id, self._next_id + m, dtype=np.int64)
        return check_new_ids(ids, m, self._positions)

    def _took_ids(self, ids):
        if ids.size:
            self._next_id = max(self._next_id, int(ids.max()) + 1)
        self._ids_changed()

    def _positions(self, ids):
        """Slots of int64 ids, -1 for ids not stored."""
        if self._lookup is None:
            slots = self._stored_slots()
            sid = self._slots()[slots]
            order = np.argsort(sid, kind="stable")
            self._lookup = (sid[order], slots[order].astype(np.int64))
        sorted_ids, where = self._lookup
        if sorted_ids.size == 0:
            return np.full(np.shape(ids), -1, np.int64)
        j = np.minimum(np.searchsorted(sorted_ids, ids), sorted_ids.size - 1)
        return np.where(sorted_ids[j] == ids, where[j], -1)

    def _slots_of(self, ids):
        """Slots of these ids (a 1-D sequence of integers); ValueError for an id not stored."""
        if runtime._is_array(ids):
            ids = ids.numpy()
        a = np.asarray(ids)
        if a.dtype == np.bool_ or a.dtype.kind not in "iu" or a.ndim != 1:
            raise TypeError(f"ids must be a 1-D array of integers, got dtype {a.dtype} shape {a.shape}")
        pos = self._positions(a.astype(np.int64)) if a.size else np.empty(0, np.int64)
        if (pos < 0).any():
            raise ValueError(f"id {int(a[np.argmax(pos < 0)])} is not in the index")
        return pos

    def _slot_of(self, id):
        """The slot of one id (an integer); ValueError if it is not stored."""
        return int(self._slots_of(np.array([_int(id, "id")], np.int64))[0])

    def _slots_among(self, a):
        """Sorted unique slots of the stored ids among the integers a (1-D); the others, ids beyond
        int64 included, are ignored."""
        if a.dtype.kind == "u":
            a = a[a <= _INT64_MAX]
        pos = self._positions(a.astype(np.int64))
        return np.unique(pos[pos >= 0])

    def _remove_slots(self, ids):
        """remove_ids' argument (integers, or one) as the sorted slots of the stored ones among
        them; TypeError for anything but integers."""
        if runtime._is_array(ids):
            ids = ids.numpy()
        a = np.asarray(ids)
        if a.ndim == 0:
            a = a.reshape(1)
        if a.size == 0:
            return np.empty(0, np.int64)
        if a.dtype == np.bool_ or a.dtype.kind not in "iu" or a.ndim != 1:
            raise TypeError(f"ids must be a 1-D array of integers, got dtype {a.dtype} shape {a.shape}")
        return self._slots_among(a)

    def _allowed(self, filter):
        """What a search filter allows: None (no filter), a boolean mask over the slots (a mask
        given to an index whose slots are contiguous), or the sorted slots of the allowed ids
        (unknown ids ignored; [] allows nothing)."""
        if filter is None:
            return None
        if runtime._is_array(filter):
            filter = filter.numpy()
        f = np.asarray(filter)
        if f.size == 0 and f.ndim == 1 and f.dtype != np.bool_:
            f = f.astype(np.int64)
        if f.dtype == np.bool_:
            n = self.ntotal
            if f.shape != (n,):
                raise ValueError(f"filter: a boolean mask must have one entry per stored vector, shape "
                                 f"({n},), got {f.shape}")
            return f if self._contiguous else self._stored_slots()[f]
        if f.dtype.kind not in "iu" or f.ndim != 1:
            raise TypeError(f"filter must be a 1-D int64 array of allowed ids or a boolean mask, got dtype "
                            f"{f.dtype} shape {f.shape}")
        return self._slots_among(f)

    def _nothing_to_search(self, nq, allowed):
        """No query, no vector, or a filter that allows none: the search returns only padding."""
        none_allowed = allowed is not None and not (allowed.any() if allowed.dtype == np.bool_ else allowed.size)
        return self.ntotal == 0 or nq == 0 or none_allowed

    def _to_ids(self, I):
        """Result slots (int64, -1 for none) -> ids (-1 kept)."""
        I = np.asarray(I, np.int64)
        found = I >= 0
        out = np.full(I.shape, -1, np.int64)
        out[found] = self._slots()[I[found]]
        return out

    def _kernel_results(self, D, raw, largest):
        """Kernel results (float32 D, uint32 slots, NONE for none) -> (D with +-inf padding, int64 ids)."""
        slots = _search._indices(raw)
        D[slots < 0] = -np.inf if largest else np.inf
        return D, self._to_ids(slots)

    def _use_device(self):
        return runtime.get_backend() == "vulkan"

    # ---- persistence --------------------------------------------------------------------------

    @classmethod
    def load(cls, path):
        """Read an index written by save; IndexFileError for a file that is not one of this kind,
        is damaged or truncated, or comes from a newer format version."""
        return cls._from_file(indexfile.read(path, cls._file_kind))

    @staticmethod
    def _file_ids(file, count):
        """(ids, next_id) of an index file, checked: ids int64 (count,) (None: any count), distinct,
        non-negative and below next_id."""
        next_id = file.param("next_id", int, lambda v: v >= 0)
        ids = file.array("ids", np.int64, (count,))
        indexfile.check_ids(file, ids, next_id)
        return ids, next_id


# ---- stored rows, host and device ---------------------------------------------------------------------

class RowLayout:
    """A stored row: on the host an array of _row_shape() and _row_dtype(); on the device one row
    of _device_layout() = (width, dtype), made from host rows by _device_payload (by default the
    same row)."""

    def _row_shape(self):
        raise NotImplementedError

    def _row_dtype(self):
        raise NotImplementedError

    def _device_layout(self):
        return self._row_shape()[0], self._row_dtype()

    def _device_payload(self, rows):
        return rows


class RowStore(IdSlots, RowLayout):
    """Stored rows [0, ntotal) in storage order: self._host (capacity rows on the host), self._ids
    (their ids), self._dev (device copy with spare capacity; rows [0, self._dev_rows) current)."""

    _contiguous = True

    @property
    def ntotal(self):
        return self._n

    def _slots(self):
        return self._ids[:self._n]

    def _stored_slots(self):
        return np.arange(self._n, dtype=np.int64)

    def reset(self):
        """Remove every vector (ids start again from 0); device memory is released. Training, where
        the index has one, is kept."""
        self._n = 0
        self._host = np.zeros((0,) + self._row_shape(), self._row_dtype())
        self._ids = np.empty(0, np.int64)
        self._sequential = True      # ids[i] == i for every stored row: no lookup needed
        self._dev = None
        self._dev_rows = 0
        self._reset_ids()

    def _positions(self, ids):
        if self._sequential:
            return np.where((ids >= 0) & (ids < self._n), ids, -1)
        return super()._positions(ids)

    def _append(self, rows, new_ids):
        """Append host rows (m, *_row_shape()) with their ids (checked: _new_ids)."""
        m = rows.shape[0]
        if m == 0:
            return
        n = self._n
        host, id_store = self._host, self._ids
        if n + m > host.shape[0]:
            cap = max(_MIN_CAPACITY, 2 * host.shape[0], n + m)
            host = np.zeros((cap,) + self._row_shape(), self._row_dtype())
            host[:n] = self._host[:n]
            id_store = np.empty(cap, np.int64)
            id_store[:n] = self._ids[:n]
        host[n:n + m] = rows
        self._sync_device(host, n, n + m)       # first: if it fails, the index is as it was
        id_store[n:n + m] = new_ids
        self._host, self._ids = host, id_store
        self._n = n + m
        self._sequential = self._sequential and new_ids[0] == n and \
            bool(np.array_equal(new_ids, np.arange(n, n + m, dtype=np.int64)))
        self._took_ids(new_ids)

    def _sync_device(self, host, start, stop):
        """Make device rows [0, stop) equal host[:stop], given rows [0, start) are already there
        when the device copy is current. Only new rows are uploaded unless the array must grow."""
        if not self._use_device():
            self._dev, self._dev_rows = None, 0   # stale from now on; rebuilt when needed
            return
        dev = self._dev
        if dev is not None and self._dev_rows >= start and stop <= dev.shape[0]:
            if stop > start:
                dev[start:stop]._assign(self._device_payload(host[start:stop]))
        else:
            cap = max(_MIN_CAPACITY, host.shape[0], stop)
            if dev is not None:
                cap = max(cap, 2 * dev.shape[0])
            width, dtype = self._device_layout()
            self._dev = None                       # release the old array before the new one
            dev = runtime.empty((cap, width), dtype)
            if stop:
                dev[:stop]._assign(self._device_payload(host[:stop]))
            self._dev = dev
        self._dev_rows = stop

    def _database(self):
        """The stored rows as the backend reads them: a device view, or the host rows."""
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
        pos = self._remove_slots(ids)
        if pos.size == 0:
            return 0
        n = self._n
        keep = np.ones(n, bool)
        keep[pos] = False
        host, id_store = self._host[:n][keep], self._ids[:n][keep]
        m = host.shape[0]
        if self._dev is not None and self._use_device() and m:
            self._dev[:m]._assign(self._device_payload(host))     # one upload of the compacted rows
            self._dev_rows = m
        else:
            self._dev, self._dev_rows = None, 0
        self._host, self._ids, self._n = host, id_store, m
        self._sequential = bool(np.array_equal(id_store, np.arange(m, dtype=np.int64)))
        self._ids_changed()
        return int(pos.size)

    def _restore(self, rows, ids, next_id):
        """Storage from a file: host rows (n, *_row_shape()), their ids and next_id (checked)."""
        n = rows.shape[0]
        self._host, self._ids, self._n = rows, ids, n
        self._next_id = next_id
        self._sequential = bool(np.array_equal(ids, np.arange(n, dtype=np.int64)))
        self._ids_changed()
        if n and self._use_device():
            self._sync_device(self._host, 0, n)

    def _write(self, path, params, rows_name, rows, more=None):
        """Save through vaccel.indexfile: params plus next_id; arrays rows_name, ids, then more."""
        arrays = {rows_name: rows, "ids": self._ids[:self._n]}
        arrays.update(more or {})
        indexfile.write(path, self._file_kind, dict(params, next_id=self._next_id), arrays)

    @classmethod
    def _file_rows(cls, file, rows_name, dtype, row_shape):
        """(rows, ids, next_id) of an index file, checked."""
        rows = file.array(rows_name, dtype, (None,) + row_shape)
        ids, next_id = cls._file_ids(file, rows.shape[0])
        return rows, ids, next_id
