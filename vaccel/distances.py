"""cdist and normalize: argument checks shared by both backends, dtype policy (float16 stays
float16 where the device stores it, other floats and integers are computed in float32), and the
dispatch to the Vulkan op or the NumPy reference in vaccel.cpu."""

import math

import numpy as np

from . import cpu, runtime

METRICS = ("sqeuclidean", "euclidean", "cosine", "cityblock", "chebyshev", "minkowski", "hamming",
           "inner", "dot", "bitwise_hamming")
_CODE = {"sqeuclidean": 0, "euclidean": 1, "cosine": 2, "inner": 3, "dot": 3, "cityblock": 4,
         "chebyshev": 5, "minkowski": 6, "hamming": 7, "bitwise_hamming": 8}


def _matrix(x, name):
    a = runtime.numeric(x, name)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    return a


def _check_cdist_args(xa, xb, metric, p, names=("xa", "xb")):
    """Validated (xa, xb, metric, p); names the offending argument."""
    na, nb = names
    if not isinstance(metric, str):
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    metric = metric.lower()
    if metric not in _CODE:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    try:
        p = float(p)
    except (TypeError, ValueError):
        raise TypeError(f"p must be a number, got {p!r}") from None
    if metric == "minkowski" and not (p > 0):
        raise ValueError(f"p must be positive for minkowski, got {p}")
    xa = _matrix(xa, na)
    xb = _matrix(xb, nb)
    if xa.shape[1] != xb.shape[1]:
        raise ValueError(f"{na} and {nb} must have the same number of columns, got {na} {xa.shape} and {nb} {xb.shape}")
    if metric == "bitwise_hamming":
        for name, x in ((na, xa), (nb, xb)):
            if np.dtype(x.dtype) != np.uint8:
                raise TypeError(f"{name} must be uint8 packed codes for bitwise_hamming, got {x.dtype}")
    return xa, xb, metric, p


def _check_out(out, shape, name="out"):
    if out is None:
        return None
    if runtime._is_array(out):
        if out.shape != shape:
            raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
        if out.dtype != np.float32:
            raise TypeError(f"{name} must be float32, got {out.dtype}")
        return out
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray or vaccel.Array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if out.dtype != np.float32:
        raise TypeError(f"{name} must be float32, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def _keeps_float16(x):
    """float16 operands are read as float16 (half the bytes) where the device stores 16-bit
    types; everything else is computed from float32."""
    return np.dtype(x.dtype) == np.float16 and runtime.device_info()["storage_16bit"]


def _float_operand(x, use16):
    """x in the dtype the kernel reads: float16 when use16, else float32 (values beyond float32's
    range become inf, as in the CPU reference)."""
    want = np.dtype(np.float16 if use16 else np.float32)
    if np.dtype(x.dtype) == want:
        return x
    if runtime._is_array(x):
        return runtime.asarray(x.numpy().astype(want))
    with np.errstate(over="ignore"):
        return x.astype(want)


def _padded_codes(x):
    """uint8 codes with rows padded to 4 bytes, as the kernel reads 32-bit words (zero bytes add
    no differing bits)."""
    d = x.shape[1]
    pad = (-d) % 4
    if runtime._is_array(x):
        if pad == 0:
            return x
        x = x.numpy()
    if pad == 0 and x.ctypes.data % 4 == 0 and (x.shape[0] <= 1 or x.strides[0] % 4 == 0) \
            and (x.shape[1] <= 1 or x.strides[1] == 1):
        return x
    out = np.zeros((x.shape[0], d + pad), np.uint8)
    out[:, :d] = x
    return out


def _cpu_result(r, out, want_array):
    return runtime.deliver(r, out, want_array)


def _run(op, inputs, shape, out, want_array, iparams=(), fparams=(), names=None):
    """Runs op into out (or a fresh result), handling host outputs the device cannot write directly."""
    if out is None:
        # Inside a batch results stay on the device, so chained ops never wait for the host.
        want_array = want_array or runtime.in_batch()
        res = runtime.empty(shape, np.float32) if want_array else np.empty(shape, np.float32)
    else:
        res = out
    target = res
    if not runtime._is_array(res) and not res.flags.c_contiguous:
        target = np.empty(shape, np.float32)
    if math.prod(shape):
        runtime.run_op(op, inputs, (target,), iparams, fparams, names, results=True)
    if target is not res:
        res[...] = target
    return res


def cdist(xa, xb, metric="euclidean", *, p=2.0, out=None):
    """Distances between the rows of xa (m, d) and xb (n, d) -> float32 (m, n), with SciPy's metric
    names and meanings, plus 'inner'/'dot' (u.v) and 'bitwise_hamming' (differing bits of uint8
    codes). Float64 and integer inputs are computed in float32; float16 stays float16 in memory.
    Returns a vaccel.Array when xa or xb is one, else a NumPy array; `out` is filled and returned."""
    xa, xb, metric, p = _check_cdist_args(xa, xb, metric, p)
    m, n = xa.shape[0], xb.shape[0]
    out = _check_out(out, (m, n))
    want_array = runtime._is_array(xa) or runtime._is_array(xb)
    if runtime.get_backend() == "cpu":
        ha = xa.numpy() if runtime._is_array(xa) else xa
        hb = xb.numpy() if runtime._is_array(xb) else xb
        return _cpu_result(cpu.cdist(ha, hb, metric, p=p), out, want_array)
    if metric == "bitwise_hamming":
        xa, xb = _padded_codes(xa), _padded_codes(xb)
    else:
        xa, xb = _float_operand(xa, _keeps_float16(xa)), _float_operand(xb, _keeps_float16(xb))
    names = {("in", 0): "xa", ("in", 1): "xb", ("out", 0): "out"}
    blocks = _row_blocks(xa, xb, out, want_array)
    if blocks is None:
        return _run("cdist", (xa, xb), (m, n), out, want_array, (_CODE[metric],), (p,), names)
    # Host data larger than the device allows: blocks of rows of xa and xb, each a sub-block of out.
    res = out if out is not None else np.empty((m, n), np.float32)
    bm, bn = blocks
    for i0 in range(0, m, bm):
        for j0 in range(0, n, bn):
            _run("cdist", (xa[i0:i0 + bm], xb[j0:j0 + bn]), res[i0:i0 + bm, j0:j0 + bn].shape,
                 res[i0:i0 + bm, j0:j0 + bn], False, (_CODE[metric],), (p,), names)
    return res


def _row_blocks(xa, xb, out, want_array):
    """(rows of xa, rows of xb) per block when a call on host data would exceed the device memory
    limit, else None. Device arrays are never split (they are on the device already)."""
    if want_array or runtime._is_array(out) or runtime.in_batch():
        return None
    m, n, d = xa.shape[0], xb.shape[0], xa.shape[1]
    ea, eb = np.dtype(xa.dtype).itemsize, np.dtype(xb.dtype).itemsize
    limit = runtime.device_memory_limit()
    if (m * d * ea + n * d * eb + m * n * 4) <= limit:
        return None
    # The whole of xb per block if it fits in half the limit, else halves of it.
    bn = n
    while bn > 1 and bn * d * eb + min(m, 64) * (d * ea + bn * 4) > limit:
        bn = (bn + 1) // 2
    bm = max(1, (limit - bn * d * eb) // max(1, d * ea + bn * 4))
    return min(bm, m), bn


def normalize(x, out=None):
    """Rows scaled to unit L2 norm (float32); zero rows stay zero; NaN propagates."""
    x = _matrix(x, "x")
    out = _check_out(out, x.shape)
    want_array = runtime._is_array(x)
    if runtime.get_backend() == "cpu":
        return _cpu_result(cpu.normalize(x.numpy() if want_array else x), out, want_array)
    x = _float_operand(x, _keeps_float16(x))
    names = {("in", 0): "x", ("out", 0): "out"}
    m, d = x.shape
    per_row = d * (np.dtype(x.dtype).itemsize + 4)
    if want_array or runtime._is_array(out) or runtime.in_batch() or m * per_row <= runtime.device_memory_limit():
        return _run("normalize", (x,), x.shape, out, want_array, names=names)
    # Host data larger than the device allows: blocks of rows.
    res = out if out is not None else np.empty((m, d), np.float32)
    bm = max(1, runtime.device_memory_limit() // max(1, per_row))
    for i0 in range(0, m, bm):
        _run("normalize", (x[i0:i0 + bm],), res[i0:i0 + bm].shape, res[i0:i0 + bm], False, names=names)
    return res
