# NumPy reference of every vaccel op: the CPU backend and the oracle the tests trust.
#
# Semantics match the GPU path: inputs other than the uint8 codes of 'bitwise_hamming' are taken
# as float32 values. Plainly right before fast: every distance is then computed directly from the
# coordinates in float64 (no GEMM expansion, so no cancellation near zero) and rounded to float32
# once at the end. Work is split into blocks of rows of both operands so that temporaries stay
# below _BLOCK_BYTES whatever the input size.
#
# NaN propagates through every metric (np.maximum for chebyshev), unlike SciPy's chebyshev, which
# skips NaN coordinates; for 'hamming' NaN != NaN, so a NaN coordinate counts as differing.
#
# Argument validation is not done here: vaccel.distances._check_cdist_args is shared with the
# GPU path. Functions here assume validated 2-D NumPy arrays (any float/int/bool dtype, uint8 for
# 'bitwise_hamming').

import numpy as np

__all__ = ["cdist", "normalize"]

_BLOCK_BYTES = 256 << 20  # budget for the float64 temporaries of one block

# Number of set bits of every byte value, for 'bitwise_hamming'.
_POPCOUNT8 = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1)
_POPCOUNT8 = _POPCOUNT8.astype(np.uint8)


def _blocks(m, n, per_pair_bytes):
    """Yield (row slice of xa, row slice of xb) blocks whose temporaries fit the budget."""
    per_pair_bytes = max(int(per_pair_bytes), 1)
    pairs = max(_BLOCK_BYTES // per_pair_bytes, 1)
    bn = max(min(n, pairs), 1)
    bm = max(min(m, pairs // bn), 1)
    for i in range(0, m, bm):
        for j in range(0, n, bn):
            yield slice(i, min(i + bm, m)), slice(j, min(j + bn, n))


def _as_f32(x):
    # float64 values beyond float32's range become +-inf, as on the device.
    with np.errstate(over="ignore"):
        return np.asarray(x, dtype=np.float32)


def _sub64(a, b):
    return np.subtract(a, b, dtype=np.float64)


def _pairwise(xa, xb, reduce, temporaries=3):
    """out[i, j] = reduce(xa[i] - xb[j] over a block), float64 result.

    `reduce(diff)` receives a (bm, bn, d) float64 difference block and returns (bm, bn).
    """
    a, b = _as_f32(xa), _as_f32(xb)
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((m, n), dtype=np.float64)
    for si, sj in _blocks(m, n, temporaries * 8 * max(d, 1)):
        out[si, sj] = reduce(_sub64(a[si, None, :], b[None, sj, :]))
    return out


def _sqeuclidean(diff):
    return np.einsum("ijk,ijk->ij", diff, diff)


def _cityblock(diff):
    np.abs(diff, out=diff)
    return diff.sum(axis=2)


def _chebyshev(diff):
    # np.maximum propagates NaN; initial=0 makes d == 0 give 0 like SciPy.
    np.abs(diff, out=diff)
    return np.max(diff, axis=2, initial=0.0)


def _minkowski(p):
    def reduce(diff):
        np.abs(diff, out=diff)
        np.power(diff, p, out=diff)
        return diff.sum(axis=2) ** (1.0 / p)
    return reduce


def _inner(xa, xb):
    a, b = _as_f32(xa), _as_f32(xb)
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    a64 = a.astype(np.float64)
    out = np.empty((m, n), dtype=np.float64)
    # xb is converted to float64 one block of rows at a time, so memory stays flat.
    bn = max(min(n, _BLOCK_BYTES // (8 * (max(d, 1) + m))), 1)
    for j in range(0, n, bn):
        out[:, j:j + bn] = a64 @ b[j:j + bn].astype(np.float64).T
    return out


def _sq_norms(x):
    x = _as_f32(x)
    out = np.empty(x.shape[0], dtype=np.float64)
    step = max(_BLOCK_BYTES // (8 * max(x.shape[1], 1)), 1)
    for i in range(0, x.shape[0], step):
        blk = x[i:i + step].astype(np.float64)
        out[i:i + step] = np.einsum("ij,ij->i", blk, blk)
    return out


def _cosine(xa, xb):
    na = np.sqrt(_sq_norms(xa))
    nb = np.sqrt(_sq_norms(xb))
    dot = _inner(xa, xb)
    with np.errstate(divide="ignore", invalid="ignore"):
        cos = dot / na[:, None] / nb[None, :]
    # Same clamp as SciPy: rounding may put |cos| a little above 1. NaN stays NaN.
    np.clip(cos, -1.0, 1.0, out=cos)
    return 1.0 - cos


def _hamming(xa, xb):
    a, b = _as_f32(xa), _as_f32(xb)
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    count = np.empty((m, n), dtype=np.float64)
    for si, sj in _blocks(m, n, 2 * max(d, 1) + 8):
        count[si, sj] = np.count_nonzero(a[si, None, :] != b[None, sj, :], axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return count / d  # d == 0 gives NaN, as SciPy


def _bitwise_hamming(xa, xb):
    a = np.asarray(xa, dtype=np.uint8)
    b = np.asarray(xb, dtype=np.uint8)
    m, n, d = a.shape[0], b.shape[0], a.shape[1]
    out = np.empty((m, n), dtype=np.float64)
    for si, sj in _blocks(m, n, 10 * max(d, 1)):
        x = np.bitwise_xor(a[si, None, :], b[None, sj, :])
        out[si, sj] = _POPCOUNT8[x].sum(axis=2, dtype=np.int64)
    return out


def cdist(xa, xb, metric="euclidean", *, p=2.0):
    """Distances between the rows of xa (m, d) and xb (n, d) as float32 (m, n).

    Metrics have SciPy's meanings; 'inner'/'dot' are the plain inner product, and
    'bitwise_hamming' counts differing bits of packed uint8 codes.
    """
    xa = np.asarray(xa)
    xb = np.asarray(xb)
    # inf - inf and 0/0 are meant to give NaN here, as on the device: no warnings for them.
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if metric == "sqeuclidean":
            r = _pairwise(xa, xb, _sqeuclidean)
        elif metric == "euclidean":
            r = np.sqrt(_pairwise(xa, xb, _sqeuclidean))
        elif metric == "cosine":
            r = _cosine(xa, xb)
        elif metric == "cityblock":
            r = _pairwise(xa, xb, _cityblock)
        elif metric == "chebyshev":
            r = _pairwise(xa, xb, _chebyshev)
        elif metric == "minkowski":
            p = float(p)
            if np.isinf(p):
                r = _pairwise(xa, xb, _chebyshev)
            elif p == 1.0:
                r = _pairwise(xa, xb, _cityblock)
            elif p == 2.0:
                r = np.sqrt(_pairwise(xa, xb, _sqeuclidean))
            else:
                r = _pairwise(xa, xb, _minkowski(p))
        elif metric == "hamming":
            r = _hamming(xa, xb)
        elif metric in ("inner", "dot"):
            r = _inner(xa, xb)
        elif metric == "bitwise_hamming":
            r = _bitwise_hamming(xa, xb)
        else:
            raise ValueError(f"metric: unknown metric {metric!r}")
        return np.ascontiguousarray(r, dtype=np.float32)


def normalize(x):
    """Rows of x divided by their L2 norm, as float32; zero rows stay zero, NaN propagates."""
    a = _as_f32(x).astype(np.float64)
    if a.ndim == 0:
        raise ValueError("x: expected at least 1 dimension")
    norm = np.sqrt(np.einsum("...i,...i->...", a, a))[..., None]
    norm[norm == 0] = 1.0
    with np.errstate(invalid="ignore"):
        return np.ascontiguousarray(a / norm, dtype=np.float32)


# ---- search: topk and knn ---------------------------------------------------------------------
#
# Order is total and deterministic: best first (ascending, or descending with largest=True), NaN
# after every number, ties kept in index order (a stable sort). Selection works on blocks of rows:
# np.partition finds each row's k-th key t, every element not after t is a candidate (all of them
# when t is NaN), and a stable sort of the candidates, already in index order, gives the result.

def _select_rows(x, k, largest):
    """(values, indices) of the k best of every row of the 2-D float32 array x (k <= row length)."""
    m, n = x.shape
    vals = np.empty((m, k), np.float32)
    idx = np.empty((m, k), np.int64)
    if m == 0 or k == 0:
        return vals, idx
    step = max(1, _BLOCK_BYTES // (24 * max(n, 1)))
    for r in range(0, m, step):
        blk = x[r:r + step]
        # Negating maps largest-first onto ascending and keeps NaN a NaN (sorted last).
        key = np.negative(blk) if largest else blk
        if k == n:
            order = np.argsort(key, axis=1, kind="stable")
        else:
            t = np.partition(key, k - 1, axis=1)[:, k - 1:k]
            cand = (key <= t) | np.isnan(t)           # NaN keys join only when t is NaN
            rows, cols = np.nonzero(cand)             # row-major: index order within a row
            counts = np.bincount(rows, minlength=blk.shape[0])
            width = int(counts.max())
            rank = np.arange(rows.size) - np.repeat(np.cumsum(counts) - counts, counts)
            ck = np.full((blk.shape[0], width), np.nan, np.float32)
            pad = np.ones((blk.shape[0], width), np.int8)
            cc = np.zeros((blk.shape[0], width), np.int64)
            ck[rows, rank] = key[rows, cols]
            pad[rows, rank] = 0
            cc[rows, rank] = cols
            # Stable on (pad, key): padding last, equal keys in index order.
            order = np.lexsort((ck, pad), axis=1)[:, :k]
            order = np.take_along_axis(cc, order, axis=1)
        idx[r:r + step] = order
        vals[r:r + step] = np.take_along_axis(blk, order, axis=1)
    return vals, idx


def topk(x, k, axis=-1, largest=False):
    """The k smallest (largest=True: largest) values along axis and their int64 indices, best
    first; ties by the lower index; NaN counts as the worst value. Entries are ranked by their
    float32 values; the values returned keep x's dtype."""
    orig = np.asarray(x)
    a = _as_f32(orig)
    if a.ndim == 0:
        raise ValueError("x: expected at least 1 dimension")
    axis = int(axis)
    if not -a.ndim <= axis < a.ndim:
        raise ValueError(f"axis {axis} is out of range for x with {a.ndim} dimensions")
    n = a.shape[axis]
    k = int(k)
    if not 1 <= k <= n:
        raise ValueError(f"k must be between 1 and {n} (the length of axis {axis}), got {k}")
    moved = np.moveaxis(a, axis, -1)
    lead = moved.shape[:-1]
    flat = np.ascontiguousarray(moved).reshape(-1, n)
    with np.errstate(invalid="ignore"):
        vals, idx = _select_rows(flat, k, bool(largest))
    if orig.dtype != np.float32:
        # Selected on the float32 images; the values returned are the exact inputs.
        vals = np.take_along_axis(np.moveaxis(orig, axis, -1).reshape(-1, n), idx, axis=1)
    vals = np.moveaxis(vals.reshape(lead + (k,)), -1, axis)
    idx = np.moveaxis(idx.reshape(lead + (k,)), -1, axis)
    return np.ascontiguousarray(vals), np.ascontiguousarray(idx)


def _allowed_rows(filter, nb):
    """Sorted unique int64 row positions a filter allows, or None for all rows."""
    if filter is None:
        return None
    f = np.asarray(filter)
    if f.dtype == np.bool_:
        if f.shape != (nb,):
            raise ValueError(f"filter: a boolean mask must have shape ({nb},), got {f.shape}")
        return np.flatnonzero(f).astype(np.int64)
    if f.dtype.kind not in "iu" or f.ndim != 1:
        raise TypeError(f"filter must be a boolean mask or a 1-D integer array, got {f.dtype} {f.shape}")
    if f.size and (f.min() < 0 or f.max() >= nb):
        raise ValueError(f"filter: row positions must lie in [0, {nb}), got {f.min()}..{f.max()}")
    return np.unique(f.astype(np.int64))


def knn(queries, database, k, metric="sqeuclidean", *, p=2.0, filter=None):
    """Exact k nearest rows of database for every query: (D float32 (nq, k), I int64 (nq, k)).

    Best first: ascending distance, or the largest inner product first for 'inner'/'dot'; ties by
    the lower row; NaN distances last. Rows outside filter are never returned; where fewer than k
    rows remain, I is -1 and D is +inf (-inf for 'inner'/'dot')."""
    q = np.asarray(queries)
    db = np.asarray(database)
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    largest = metric in ("inner", "dot")
    nq, nb = q.shape[0], db.shape[0]
    rows = _allowed_rows(filter, nb)
    if rows is not None:
        db = db[rows]
    n = db.shape[0]
    kk = min(k, n)
    D = np.full((nq, k), -np.inf if largest else np.inf, np.float32)
    I = np.full((nq, k), -1, np.int64)
    if kk == 0:
        return D, I
    step = max(1, _BLOCK_BYTES // (16 * max(n, 1)))
    for r in range(0, nq, step):
        dist = cdist(q[r:r + step], db, metric, p=p)
        with np.errstate(invalid="ignore"):
            v, i = _select_rows(dist, kk, largest)
        D[r:r + step, :kk] = v
        I[r:r + step, :kk] = i if rows is None else rows[i]
    return D, I


# ---- product quantization and IVF search ------------------------------------------------------
#
# Asymmetric distances in float64: a PQ code's distance is the sum of its sub-codes' table entries,
# which equals (up to rounding) the distance to the code's reconstruction; IVF candidates are the
# rows of the nprobe best lists of each query (the coarse ranking of knn above). Rows are ranked
# as knn ranks them: by float32 distance, ties by the lower row, NaN last.

def pq_tables(queries, centroids, metric="sqeuclidean"):
    """(nq, m, ksub) float32 distance tables: ||q_j - c_jk||^2 ('sqeuclidean') or q_j . c_jk
    ('inner') for the sub-vectors q_j of each query and the centroids (m, ksub, dsub)."""
    q = _as_f32(queries).astype(np.float64)
    c = _as_f32(centroids).astype(np.float64)
    m, ksub, dsub = c.shape
    qs = q.reshape(q.shape[0], m, 1, dsub)
    with np.errstate(invalid="ignore", over="ignore"):
        if metric == "inner":
            t = np.einsum("qjis,jks->qjk", qs, c)
        else:
            t = ((qs - c[None]) ** 2).sum(axis=3)
    return t.astype(np.float32)


def _rank(dist, rows, k, largest):
    """The k best of float64 distances dist over rows (ascending row numbers): (D, I) padded."""
    D = np.full(k, -np.inf if largest else np.inf, np.float32)
    I = np.full(k, -1, np.int64)
    if rows.size:
        with np.errstate(invalid="ignore", over="ignore"):
            v, i = _select_rows(dist.astype(np.float32)[None], min(k, rows.size), largest)
        D[:i.shape[1]] = v[0]
        I[:i.shape[1]] = rows[i[0]]
    return D, I


def pq_search(queries, centroids, labels, k, metric="sqeuclidean", filter=None):
    """ADC search: (D float32 (nq, k), I int64 row positions (nq, k)) of the codes labels (n, m)
    (one centroid number per sub-quantizer) against the queries, with the centroids (m, ksub,
    dsub); 'inner' ranks the largest first; -1 / +-inf pad."""
    tables = pq_tables(queries, centroids, metric).astype(np.float64)
    labels = np.asarray(labels, np.int64)
    n, m = labels.shape
    rows = np.arange(n, dtype=np.int64) if filter is None else _allowed_rows(filter, n)
    out = [_rank(sum(t[j, labels[rows, j]] for j in range(m)) if m else np.zeros(rows.size), rows, k,
                 metric == "inner") for t in tables]
    nq = tables.shape[0]
    return (np.array([d for d, _ in out], np.float32).reshape(nq, k),
            np.array([i for _, i in out], np.int64).reshape(nq, k))


def ivf_search(queries, centroids, lists, vectors, k, nprobe, metric="sqeuclidean", filter=None):
    """IVF search: for each query the nprobe best centroids (knn), then the k best of the rows of
    those lists. lists: a sequence (one per centroid) of int64 row positions into vectors (n, d):
    the raw vectors (IVF-Flat) or the reconstructions (IVF-PQ), compared in float64. Returns
    (D float32 (nq, k), I int64 row positions), -1 / +-inf padded."""
    q = _as_f32(queries).astype(np.float64)
    x = np.asarray(vectors, np.float64)
    largest = metric == "inner"
    allowed = None if filter is None else np.zeros(x.shape[0], bool)
    if allowed is not None:
        allowed[_allowed_rows(filter, x.shape[0])] = True
    _, probes = knn(q.astype(np.float32), centroids, nprobe, metric)
    D = np.empty((q.shape[0], k), np.float32)
    I = np.empty((q.shape[0], k), np.int64)
    for i in range(q.shape[0]):
        rows = np.sort(np.concatenate([np.asarray(lists[p], np.int64) for p in probes[i] if p >= 0] +
                                      [np.empty(0, np.int64)]))
        if allowed is not None:
            rows = rows[allowed[rows]]
        with np.errstate(invalid="ignore", over="ignore"):
            xr = x[rows]
            dist = xr @ q[i] if largest else ((xr - q[i]) ** 2).sum(axis=1)
        D[i], I[i] = _rank(dist, rows, k, largest)
    return D, I


# ---- dense math: matmul, matvec, transpose ------------------------------------------------------

def matmul(a, b, result_dtype):
    """numpy.matmul computed in float32 (float16 operands are exact in float32), cast to the
    result dtype (float16 for two float16 operands unless asked otherwise, else float32)."""
    with np.errstate(over="ignore", invalid="ignore"):
        r = np.matmul(np.asarray(a).astype(np.float32), np.asarray(b).astype(np.float32))
        return np.asarray(r).astype(result_dtype)


def matvec(a, x):
    """a @ x over the last axes, float32."""
    a = np.asarray(a).astype(np.float32)
    x = np.asarray(x).astype(np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.matmul(a, x[..., None])[..., 0]


def transpose(a):
    """The last two axes swapped, contiguous; float64 becomes float32 as on the device."""
    a = np.asarray(a)
    if a.dtype == np.float64:
        a = a.astype(np.float32)
    return np.ascontiguousarray(np.swapaxes(a, -1, -2))



# ---- reductions, statistics, histograms --------------------------------------------------------
#
# The same semantics as vaccel.reductions on the device: values are taken as float32 (float64 and
# integers converted first), computed here in float64 and rounded to float32 once; argmin/argmax
# return int64. NaN propagates through sums, extremes and variances; argmin/argmax pick the first
# NaN, else the first of equal extremes (NumPy's rules). Callers have validated the arguments and
# handled empty axes.

def _f32_values(x):
    with np.errstate(over="ignore"):
        return np.asarray(x).astype(np.float32).astype(np.float64)


def reduce(what, x, axis, keepdims=False, ddof=0.0):
    """One of sum, mean, var, std, min, max, argmin, argmax over axis (None: all elements)."""
    v = _f32_values(x)
    if v.ndim == 0:
        v = v.reshape(1)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        if what in ("argmin", "argmax"):
            fn = np.argmin if what == "argmin" else np.argmax
            r = fn(v, axis=axis)
            if keepdims:
                r = np.full((1,) * v.ndim, r) if axis is None else np.expand_dims(r, axis)
            return np.asarray(r, np.int64)[()] if np.ndim(r) == 0 else np.asarray(r, np.int64)
        if what in ("var", "std"):
            n = v.size if axis is None else v.shape[axis]
            m = v.mean(axis=axis, keepdims=True)
            r = ((v - m) ** 2).sum(axis=axis, keepdims=keepdims) / max(n - ddof, 0)
            if what == "std":
                r = np.sqrt(r)
        else:
            fn = {"sum": np.sum, "mean": np.mean, "min": np.min, "max": np.max}[what]
            r = fn(v, axis=axis, keepdims=keepdims)
        r = np.asarray(r).astype(np.float32)
        return r[()] if r.ndim == 0 else r


def statistics(x, axis=0, ddof=0.0):
    """{'count', 'mean', 'var', 'min', 'max'} over axis: count int64, the rest float32."""
    v = _f32_values(x)
    n = v.size if axis is None else v.shape[axis]
    out = {"count": np.full(() if axis is None else v.shape[:axis] + v.shape[axis + 1:], n, np.int64)[()]}
    for key in ("mean", "var", "min", "max"):
        out[key] = reduce(key, x, axis, False, ddof)
    return out



def histogram_counts(x, edges, clamp=False):
    """Counts of x's float32 values in the bins of edges (NumPy's rule: [e_i, e_i+1), the last
    bin closed; values outside and NaN not counted). clamp: the edges came from x's extremes, so
    values beyond them (float32 images of float64 extremes) go to the first or last bin."""
    with np.errstate(over="ignore"):
        v = np.asarray(x).reshape(-1).astype(np.float32).astype(np.float64)
    e = np.asarray(edges, np.float64)   # float64 throughout: exact, whatever NumPy's casting rules
    if clamp:
        v = v[~np.isnan(v)]
        v = np.clip(v, e[0], e[-1])
    return np.histogram(v, bins=e)[0].astype(np.int64)


# ---- dense math: elementwise ops, fused expressions, softmax, layer_norm ------------------------
#
# Inputs are taken as float32 values (float64 and integers rounded to float32 first, as on the
# device), every operation is computed in float64 and the result rounded once to the result dtype
# (float16 when every array operand is float16, else float32). NaN and inf follow NumPy: maximum
# and minimum propagate NaN, log(0) = -inf, log(x < 0) = sqrt(x < 0) = nan, x / 0 = +-inf.

__all__ += ["evaluate", "softmax", "layer_norm"]

def _erfc(x):
    try:
        from scipy.special import erfc
    except ImportError:  # scipy is optional: the same function from the standard library
        import math
        erfc = np.frompyfunc(math.erfc, 1, 1)
    return np.asarray(erfc(x), dtype=np.float64)


def _gelu(x):
    return x * 0.5 * _erfc(-x / np.sqrt(2.0))


def _gelu_tanh(x):
    # 0.5 x (1 + tanh u) written as x sigmoid(2u): equal, and free of cancellation for u << 0
    return x / (1.0 + np.exp(-2.0 * np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


_ELEMENTWISE = {
    "add": np.add, "subtract": np.subtract, "multiply": np.multiply, "divide": np.divide,
    "maximum": np.maximum, "minimum": np.minimum, "negative": np.negative, "abs": np.abs, "exp": np.exp,
    "log": np.log, "sqrt": np.sqrt, "relu": lambda x: np.maximum(x, 0.0), "gelu": _gelu,
    "gelu_tanh": _gelu_tanh, "silu": lambda x: x / (1.0 + np.exp(-x)), "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "clip": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi), "copy": lambda x: x,
}


def _as_f32_values(v):
    return _as_f32(v).astype(np.float64)


def evaluate(tree, env, dtype):
    """An elementwise expression tree (("var", name) / ("const", value) / (op, *children), as
    vaccel.elementwise parses it) over env (name -> array or number), rounded to dtype."""
    memo = {}

    def ev(node):
        if node in memo:
            return memo[node]
        if node[0] == "var":
            r = _as_f32_values(env[node[1]])
        elif node[0] == "const":
            r = np.float64(np.float32(node[1]))
        else:
            r = _ELEMENTWISE[node[0]](*(ev(c) for c in node[1:]))
        memo[node] = r
        return r

    with np.errstate(all="ignore"):
        r = ev(tree)
        return np.asarray(r).astype(dtype)[()] if np.ndim(r) == 0 else np.asarray(r).astype(dtype)


def softmax(x, axis=-1):
    """exp(x - max) / sum(exp(x - max)) along axis; a row holding +-inf everywhere or NaN is NaN."""
    dtype = np.float16 if np.asarray(x).dtype == np.float16 else np.float32
    v = _as_f32_values(x)
    with np.errstate(all="ignore"):
        m = np.max(v, axis=axis, keepdims=True) if v.size else v
        e = np.exp(v - m)
        return (e / np.sum(e, axis=axis, keepdims=True)).astype(dtype)


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance), as
    torch.nn.functional.layer_norm."""
    dtype = np.float16 if np.asarray(x).dtype == np.float16 else np.float32
    v = _as_f32_values(x)
    with np.errstate(all="ignore"):
        mean = v.mean(axis=-1, keepdims=True)
        var = ((v - mean) ** 2).mean(axis=-1, keepdims=True)
        r = (v - mean) / np.sqrt(var + np.float64(np.float32(eps)))
        if weight is not None:
            r = r * _as_f32_values(weight)
        if bias is not None:
            r = r + _as_f32_values(bias)
        return r.astype(dtype)


# ---- k-means ---------------------------------------------------------------------------------------
#
# The same algorithm as the device path (vaccel.cluster), in float64 on the host: inputs taken as
# float32 values, the data centred on their column means, greedy k-means++ as scikit-learn's, and
# Lloyd iterations with scikit-learn's rules (labels of the previous step compared for strict
# convergence, the squared centre shift against the tolerance, empty clusters re-seeded with the
# points farthest from their centres, a last assignment so labels match the final centres).

__all__ += ["kmeans_assign", "kmeans_plusplus", "kmeans_lloyd"]


def _nearest64(x, c):
    """(labels, squared distances) of float64 rows x to float64 centres c: GEMM-form scores pick
    the candidates within 1e-9 relative of each row's best (BLAS may round two identical columns
    differently), then direct float64 distances decide among them, ties to the lowest index."""
    n = x.shape[0]
    labels = np.empty(n, np.int64)
    dist = np.empty(n)
    if n == 0:
        return labels, dist
    cn = np.einsum("ij,ij->i", c, c)
    step = max(1, _BLOCK_BYTES // (16 * max(c.shape[0], 1) + 8 * max(x.shape[1], 1)))
    with np.errstate(invalid="ignore", over="ignore"):
        for i in range(0, n, step):
            blk = x[i:i + step]
            s = cn[None, :] - 2.0 * (blk @ c.T)
            best = s.min(axis=1, keepdims=True)
            slack = 1e-9 * (np.einsum("ij,ij->i", blk, blk)[:, None] + cn.max() + np.abs(best))
            cand = s <= best + slack
            lab = np.argmax(cand, axis=1)
            multi = np.flatnonzero(cand.sum(axis=1) > 1)
            if multi.size:
                rows, cols = np.nonzero(cand[multi])
                diff = blk[multi[rows]] - c[cols]
                exact = np.einsum("ij,ij->i", diff, diff)
                # per row: the lowest column among the smallest exact distances
                order = np.lexsort((cols, exact, rows))
                first = np.r_[True, rows[order][1:] != rows[order][:-1]]
                lab[multi[rows[order][first]]] = cols[order][first]
            diff = blk - c[lab]
            labels[i:i + step], dist[i:i + step] = lab, np.einsum("ij,ij->i", diff, diff)
    return labels, dist


def kmeans_assign(x, centres):
    """(labels int64, squared distances float32): the nearest centre of each row, ties to the
    lowest index, in float64 on the data centred on the centres' mean; the distance of the winner
    computed directly from the coordinates."""
    a = _as_f32(x).astype(np.float64)
    c = _as_f32(centres).astype(np.float64)
    if a.shape[0] == 0:
        return np.empty(0, np.int64), np.empty(0, np.float32)
    shift = c.mean(axis=0)
    labels, dist = _nearest64(a - shift, c - shift)
    return labels, dist.astype(np.float32)


def kmeans_plusplus(x, k, random_state, weights=None, n_trials=None):
    """(centres (k, d) float64, row indices (k,)) by greedy k-means++ on float64 rows x: the first
    centre drawn with probability ∝ w, then per step `n_trials` candidates drawn with probability
    ∝ w·D² (uniforms drawn all at once, (k - 1) * n_trials of them, after the first choice) and the
    one lowering the potential most kept."""
    n = x.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    if n_trials is None:
        n_trials = 2 + int(np.log(k))
    first = int(random_state.choice(n, p=w / w.sum()))
    u = random_state.uniform(size=(k - 1) * n_trials) if k > 1 else np.empty(0)
    sq = np.einsum("ij,ij->i", x, x)
    centres = np.empty((k, x.shape[1]))
    idx = np.empty(k, np.int64)
    centres[0], idx[0] = x[first], first
    closest = np.maximum(sq - 2.0 * (x @ x[first]) + sq[first], 0.0)
    pot = float(closest @ w)
    for c in range(1, k):
        r = u[(c - 1) * n_trials:c * n_trials] * pot
        cand = np.minimum(np.searchsorted(np.cumsum(w * closest), r), n - 1)
        d = np.maximum(sq[None, :] - 2.0 * (x[cand] @ x.T) + sq[cand][:, None], 0.0)
        np.minimum(closest, d, out=d)
        pots = d @ w
        b = int(np.argmin(pots))
        pot, closest = float(pots[b]), d[b]
        centres[c], idx[c] = x[cand[b]], cand[b]
    return centres, idx


def _assign64(x, c):
    """Labels and squared distances of float64 rows x to float64 centres c (see _nearest64)."""
    return _nearest64(x, c)


def kmeans_lloyd(x, centres, max_iter, tol, weights=None, on_iteration=None):
    """Lloyd iterations on float64 rows x from float64 centres, as scikit-learn's: returns
    (labels int64, inertia, centres, iterations run, strict convergence). tol is absolute (compared
    with Σ‖c_new − c‖²). on_iteration(i, inertia, shift) is called after each iteration."""
    n, k = x.shape[0], centres.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, np.float64)
    c = np.array(centres, np.float64)
    prev = None
    strict = False
    it = 0
    for it in range(max_iter):
        labels, dist = _assign64(x, c)
        wsum = np.bincount(labels, weights=w, minlength=k)
        sums = np.stack([np.bincount(labels, weights=w * x[:, f], minlength=k) for f in range(x.shape[1])], axis=1) \
            if x.shape[1] else np.zeros((k, 0))
        empty = np.flatnonzero(wsum <= 0)
        if empty.size:
            # The farthest points (ties: the lower row) move to the empty clusters, in order.
            far = np.lexsort((np.arange(n), -dist))[:empty.size]
            for e, p in zip(empty, far):
                o = labels[p]
                sums[o] -= w[p] * x[p]
                wsum[o] -= w[p]
                sums[e] = w[p] * x[p]
                wsum[e] = w[p]
        new = np.where(wsum[:, None] > 0, sums / np.where(wsum > 0, wsum, 1.0)[:, None], sums)
        shift = float(((new - c) ** 2).sum())
        if on_iteration is not None:
            on_iteration(it, float(dist @ w), shift)
        c = new
        if prev is not None and np.array_equal(labels, prev):
            strict = True
            break
        if shift <= tol:
            break
        prev = labels
    labels, dist = _assign64(x, c)
    return labels, float(dist @ w), c, it + 1, strict


# ---- quantizers -------------------------------------------------------------------------------
#
# The exact reference of the GPU codecs (sq_codec.comp, binary_codec.comp): the same float32
# operations in the same order, each rounded once (NumPy never fuses), so codes and decoded values
# are equal bit for bit. Codes are (n, code_size) uint8.

def _sq_levels(bits):
    return np.float32(1 << int(bits))


def sq_encode(x, vmin, scale, bits):
    """ScalarQuantizer codes of the rows of x: t = (x - vmin) * scale, c = min(floor(t), L - 1)
    for t >= 0, else 0 (NaN too); 4-bit codes pack element 2i in the low nibble of byte i."""
    a = _as_f32(x)
    with np.errstate(invalid="ignore", over="ignore"):
        t = (a - np.asarray(vmin, np.float32)) * np.asarray(scale, np.float32)
        c = np.where(t >= 0, np.minimum(np.floor(t), _sq_levels(bits) - 1), 0).astype(np.uint8)
    if bits == 8:
        return np.ascontiguousarray(c)
    if c.shape[1] % 2:
        c = np.concatenate([c, np.zeros((c.shape[0], 1), np.uint8)], axis=1)
    return np.ascontiguousarray(c[:, 0::2] | (c[:, 1::2] << 4))


def sq_unpack(codes, bits, d):
    """The code of every element, (n, d) uint8, from packed codes."""
    codes = np.asarray(codes, np.uint8)
    if bits == 8:
        return codes[:, :d]
    out = np.empty((codes.shape[0], 2 * codes.shape[1]), np.uint8)
    out[:, 0::2] = codes & 0xF
    out[:, 1::2] = codes >> 4
    return out[:, :d]


def sq_decode(codes, vmin, step, bits, d):
    """Decoded rows, float32 (n, d): vmin + (c + 0.5) * step."""
    c = sq_unpack(codes, bits, d).astype(np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        return np.asarray(vmin, np.float32) + (c + np.float32(0.5)) * np.asarray(step, np.float32)


def binary_encode(x, thresholds, bitorder="big"):
    """BinaryQuantizer codes: bit set where x > threshold (NaN: clear), numpy.packbits' layout."""
    a = _as_f32(x)
    with np.errstate(invalid="ignore"):
        bits = a > np.asarray(thresholds, np.float32)
    return np.packbits(bits, axis=1, bitorder=bitorder)


def binary_decode(codes, d, bitorder="big"):
    """+1.0 / -1.0 for set / clear bits, float32 (n, d)."""
    bits = np.unpackbits(np.asarray(codes, np.uint8), axis=1, count=d, bitorder=bitorder)
    return np.where(bits != 0, np.float32(1.0), np.float32(-1.0)).astype(np.float32)
