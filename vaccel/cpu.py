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
