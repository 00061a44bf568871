"""Exact search: topk (the k best entries along an axis) and knn (the k nearest database rows of
each query, under cdist's metrics, with filters). Both return (values, int64 indices), best first,
ties by the lower index; knn pads with -1 / +inf (-inf for 'inner') where fewer than k exist."""

import os

import numpy as np

from . import cpu, distances, runtime

NONE = 0xFFFFFFFF  # the kernels' "no entry" index


def _k(k, name="k"):
    """k as an int >= 1 (the upper bound, if any, is checked by the caller)."""
    k = runtime.integer(k, name)
    if k < 1:
        raise ValueError(f"{name} must be at least 1, got {k}")
    return k


def _indices(raw, bound=None):
    """uint32 kernel indices -> int64 with -1 for 'none'. bound: every index is below it; at most
    2^31 lets one pass do it (NONE read as int32 is -1), twice as fast as the general path."""
    if bound is not None and bound <= 2 ** 31:
        return raw.view(np.int32).astype(np.int64)
    out = raw.astype(np.int64)
    out[raw == NONE] = -1
    return out


def topk(x, k, axis=-1, largest=False):
    """(values, indices) of the k smallest (or largest) entries along axis, sorted best first;
    ties go to the lower index and NaN ranks after every number. k may be anything from 1 to the
    axis length. Values keep x's dtype for NumPy input (float32 for vaccel.Array input). Ranked in
    float32 (float16 is read as it is where the device can).

    Long rows (16384 entries or more, k up to about 2800) take a filter path (csrc/ops/topk.c): a
    sample of each row gives it a bound, one streaming read keeps the few thousand entries within
    it, and those are sorted; a row the bound serves badly is recomputed exactly on the device, so
    results never depend on the sample. VACCEL_TOPK_FILTER=0 turns the path off, =1 takes it
    wherever it can run."""
    is_array = runtime._is_array(x)
    if is_array:
        if x.ndim != 2 or axis not in (-1, 1):
            raise ValueError("topk of a vaccel.Array works along the last axis of a 2-D array")
        host = None
        n = x.shape[1]
    else:
        host = np.asarray(x)
        if host.dtype.kind not in "biuf":
            raise TypeError(f"x must hold numbers, got dtype {host.dtype}")
        if host.ndim == 0:
            raise ValueError("x must have at least one dimension")
        if not isinstance(axis, (int, np.integer)) or not -host.ndim <= axis < host.ndim:
            raise ValueError(f"axis {axis!r} is out of bounds for an array of {host.ndim} dimensions")
        axis = int(axis) % host.ndim
        n = host.shape[axis]
    k = _k(k)
    if k > n:
        raise ValueError(f"k must be at most the axis length {n}, got {k}")
    if runtime.get_backend() == "cpu":
        if is_array:
            v, i = cpu.topk(x.numpy(), k, -1, largest)
            return runtime.asarray(v), i
        return cpu.topk(host, k, axis, largest)
    keep16 = runtime.device_info()["storage_16bit"]
    if is_array:
        rows = x if x.dtype == np.float32 or (x.dtype == np.float16 and keep16) else \
            runtime.asarray(x.numpy().astype(np.float32))
        m = x.shape[0]
    else:
        moved = np.moveaxis(host, axis, -1)
        lead = moved.shape[:-1]
        rows = moved.reshape(-1, n)
        if rows.dtype != np.float32 and not (rows.dtype == np.float16 and keep16):
            with np.errstate(over="ignore"):
                rows = rows.astype(np.float32)
        m = rows.shape[0]
    values = runtime.empty((m, k), np.float32) if is_array or runtime.in_batch() else np.empty((m, k), np.float32)
    raw = np.empty((m, k), np.uint32)
    if m:
        runtime.run_op("topk", (rows,), (values, raw), (k, int(bool(largest)), 0, 0, 0, 0),
                       names={("in", 0): "x", ("out", 0): "values", ("out", 1): "indices"})
        if runtime.in_batch():
            runtime.synchronize()  # the indices are host data, needed now
    idx = _indices(raw, n)
    if is_array:
        return values, idx
    if host.dtype != np.float32 and m:
        # The exact input values (float64, integers) rather than their float32 images.
        values = np.take_along_axis(moved.reshape(-1, n), idx, axis=1)
    values = np.moveaxis(np.asarray(values).reshape(lead + (k,)), -1, axis)
    return values, np.moveaxis(idx.reshape(lead + (k,)), -1, axis)


def _filter_bits(filter, nb):
    """A filter (boolean mask over database rows, or allowed row positions) as a uint32 bitset."""
    f = np.asarray(filter)
    if f.dtype == np.bool_:
        if f.shape != (nb,):
            raise ValueError(f"filter: a boolean mask must have one entry per database row ({nb}), got {f.shape}")
        allowed = f
    elif f.dtype.kind in "iu":
        if f.ndim != 1:
            raise ValueError(f"filter: an array of allowed row positions must be 1-D, got shape {f.shape}")
        if f.size and (f.min() < 0 or f.max() >= nb):
            raise ValueError(f"filter: positions must be in [0, {nb}), got [{f.min()}, {f.max()}]")
        allowed = np.zeros(nb, np.bool_)
        allowed[f] = True
    else:
        raise TypeError(f"filter must be a boolean mask or an integer array of row positions, got dtype {f.dtype}")
    packed = np.packbits(allowed, bitorder="little")
    packed = np.concatenate([packed, np.zeros((-packed.size) % 4 + (4 if packed.size == 0 else 0), np.uint8)])
    return packed.view(np.uint32)


def knn(queries, database, k, metric="sqeuclidean", *, p=2.0, filter=None):
    """(D, I): the k nearest database rows of each query, float32 distances and int64 row
    positions, best first (ascending distance; descending inner product for 'inner'/'dot'), ties
    by the lower position. Where fewer than k rows exist or pass the filter, I is -1 and D is +inf
    (-inf for 'inner'). Metrics as cdist. filter: a boolean mask over database rows or an array of
    allowed row positions, honoured exactly."""
    q, db, metric, p = distances._check_cdist_args(queries, database, metric, p, ("queries", "database"))
    k = _k(k)
    nq, nb = q.shape[0], db.shape[0]
    bits = None if filter is None else _filter_bits(filter, nb)
    if runtime.get_backend() == "cpu":
        hq = q.numpy() if runtime._is_array(q) else q
        hdb = db.numpy() if runtime._is_array(db) else db
        return cpu.knn(hq, hdb, k, metric, p=p, filter=filter)
    if metric == "bitwise_hamming":
        q, db = distances._padded_codes(q), distances._padded_codes(db)
    else:
        q = distances._float_operand(q, distances._keeps_float16(q))
        db = distances._float_operand(db, distances._keeps_float16(db))
    code = distances._CODE[metric]
    if nq == 0:
        return np.empty((0, k), np.float32), np.empty((0, k), np.int64)
    rows = _database_block(q, db)
    if rows >= nb:
        return _knn_call(q, db, k, code, p, bits)
    # A host database larger than the device allows: blocks of rows, merged here. Each block's
    # best k are exact for that block, so the merge of all of them is exact.
    # The blocks come to the device through runtime.HostBlocks: the next one's upload (on the
    # transfer queue where the device has one) overlaps the search of the current one.
    allowed = None if filter is None else np.unpackbits(bits.view(np.uint8), bitorder="little")[:nb].astype(bool)
    q = runtime.asarray(q)
    parts = []
    for j0, block in runtime.HostBlocks(db, rows):
        sub = None if allowed is None else _filter_bits(allowed[j0:j0 + rows], block.shape[0])
        D, I = _knn_call(q, block, k, code, p, sub)
        parts.append((D, np.where(I >= 0, I + j0, -1)))
    D = np.concatenate([d for d, _ in parts], axis=1)
    I = np.concatenate([i for _, i in parts], axis=1)
    key = -D.astype(np.float64) if metric in ("inner", "dot") else D.astype(np.float64)
    key = np.where(np.isnan(D), np.inf, key)
    order = np.lexsort((np.where(I < 0, np.iinfo(np.int64).max, I), I < 0, np.isnan(D), key), axis=1)[:, :k]
    return np.take_along_axis(D, order, 1), np.take_along_axis(I, order, 1)


def _database_block(q, db):
    """Rows of a host database one device call may take (all of them when it fits)."""
    if runtime._is_array(db) or runtime.in_batch():
        return db.shape[0]
    per_row = db.shape[1] * np.dtype(db.dtype).itemsize
    budget = runtime.device_memory_limit() - q.shape[0] * q.shape[1] * np.dtype(q.dtype).itemsize
    return max(1, budget // max(1, 3 * per_row))   # two blocks in turn, room for the search's own


_FUSED_CODES = {distances._CODE[m] for m in ("sqeuclidean", "euclidean", "inner", "cosine")}
_FUSED_MAX_K = 256


def _use_fused(q, db, k, code, bits):
    """Whether knn takes the fused path (distance tiles that keep only candidates, knn.c):
    VACCEL_KNN_FUSED=1 forces it where it applies, 0 turns it off; by default it serves every
    search large enough for its sample to pay off."""
    if bits is not None or code not in _FUSED_CODES or k > _FUSED_MAX_K or db.shape[0] == 0:
        return False
    env = os.environ.get("VACCEL_KNN_FUSED", "")
    if env in ("0", "1"):
        return env == "1"
    return db.shape[0] >= 8192 and q.shape[0] * db.shape[0] >= (1 << 22)


def _knn_call(q, db, k, code, p, bits):
    if _use_fused(q, db, k, code, bits):
        D = np.empty((q.shape[0], k), np.float32)
        I = np.empty((q.shape[0], k), np.int64)   # the kernel writes int64 indices, -1 for none
        flags = np.empty(q.shape[0], np.uint32)
        runtime.run_op("knn_fused", (q, db), (D, I, flags), (code, k),
                       names={("in", 0): "queries", ("in", 1): "database", ("out", 0): "D", ("out", 1): "I"})
        if runtime.in_batch():
            runtime.synchronize()
        redo = np.flatnonzero(flags)
        if redo.size:
            # Queries whose candidate list overflowed (rare): the exact tiled search.
            qr = q.numpy()[redo] if runtime._is_array(q) else q[redo]
            Dr, Ir = _knn_plain(qr, db, k, code, p, None)
            D[redo] = Dr
            I[redo] = _indices(Ir, db.shape[0])
        return D, I
    D, raw = _knn_plain(q, db, k, code, p, bits)
    return D, _indices(raw, db.shape[0])


def _knn_plain(q, db, k, code, p, bits):
    D = np.empty((q.shape[0], k), np.float32)
    raw = np.empty((q.shape[0], k), np.uint32)
    inputs = (q, db) if bits is None else (q, db, bits)
    runtime.run_op("knn", inputs, (D, raw), (code, k, int(bits is not None)), (p,),
                   names={("in", 0): "queries", ("in", 1): "database", ("in", 2): "filter",
                          ("out", 0): "D", ("out", 1): "I"})
    if runtime.in_batch():
        runtime.synchronize()  # the results are host arrays, needed now
    return D, raw
