"""Reductions (sum, mean, min, max, argmin, argmax, var, std), one-pass statistics and histograms:
argument checks shared by both backends, the mapping of any view onto the kernel's strided
(B, R, C) form (reduce over R), empty-input rules as NumPy's, and the dispatch to the Vulkan op or
the NumPy reference in vaccel.cpu.

Precision: values are computed in float32 (float16 stays float16 in memory; float64 and integers
are converted to float32 first) and returned as float32; argmin/argmax as int64. Sums are
compensated (Neumaier) per thread and merged as (hi, lo) pairs, variances by Welford/Chan, so the
error does not grow with the length of the axis. Results are NumPy values (Array inputs are read
on the device; only the results come back)."""

import builtins
import math
import warnings

import numpy as np

from . import cpu, runtime

_WHAT = {"sum": 0, "mean": 1, "var": 2, "std": 3, "min": 4, "max": 5, "argmin": 6, "argmax": 7, "statistics": 8}
_NP_NAME = {"min": "minimum", "max": "maximum"}

# Elements one binding window may span; 0: the device's maxStorageBufferRange. Tests lower it to
# exercise the split of large inputs into windows.
_WINDOW_ELEMS = 0
# Rows along the reduced axis up to which a contiguous last-axis reduction runs one thread per row
# (many short rows) rather than one workgroup per row.
_SHORT_ROW = 64


def _axis(axis, ndim):
    if axis is None:
        return None
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be None or an integer, got {axis!r}")
    a = int(axis)
    if not -builtins.max(ndim, 1) <= a < builtins.max(ndim, 1):
        raise ValueError(f"axis {axis} is out of bounds for an array of {ndim} dimensions")
    return a % builtins.max(ndim, 1)


def _ddof(ddof):
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, (int, float, np.integer, np.floating)):
        raise TypeError(f"ddof must be a number, got {ddof!r}")
    return float(ddof)


def _host(x, name="x"):
    """x as a NumPy array of numbers (Array inputs of other than float32/float16 come back)."""
    a = runtime.numeric(x, name)
    return a.numpy() if runtime._is_array(a) else a


def _shape(x):
    return tuple(x.shape)


def _out_shape(shape, axis, keepdims):
    if axis is None:
        return (1,) * len(shape) if keepdims else ()
    if keepdims:
        return shape[:axis] + (1,) + shape[axis + 1:]
    return shape[:axis] + shape[axis + 1:]


def _device_operand(x, axis, ordered):
    """(operand, (B, R, C, sb, sr, sc), transposed) for the reduce op. ordered: the result depends
    on element order (argmin/argmax over the flattened array), so only C order may be used."""
    if runtime._is_array(x):
        if x.dtype == np.float32 or (x.dtype == np.float16 and runtime.device_info()["storage_16bit"]):
            if x._c_contiguous():
                flat = runtime.Array._from_parts(x._buf, (x.size,), x.dtype, x._offset, (1,))
                return flat, _contiguous_geom(x.shape, axis), False
            if x.ndim == 2 and axis is not None:
                return x, _row_geom(x.shape, x._strides[0], axis), False
        x = x.numpy()
    a = x
    use16 = a.dtype == np.float16 and runtime.device_info()["storage_16bit"]
    if not use16 and a.dtype != np.float32:
        with np.errstate(over="ignore"):
            a = a.astype(np.float32)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.flags.c_contiguous:
        return a.reshape(-1), _contiguous_geom(a.shape, axis), False
    if a.flags.f_contiguous and a.ndim >= 2 and not (ordered and axis is None):
        t = a.T
        k = None if axis is None else a.ndim - 1 - axis
        return t.reshape(-1), _contiguous_geom(t.shape, k), True
    item = a.itemsize
    if a.ndim == 2 and axis is not None and a.strides[1] == item and a.strides[0] > 0 \
            and a.strides[0] % item == 0 and a.strides[0] >= item * a.shape[1]:
        _, host = runtime.host_operand(a, "x")
        if host is a:
            return a, _row_geom(a.shape, a.strides[0] // item, axis), False
    a = np.ascontiguousarray(a)
    return a.reshape(-1), _contiguous_geom(a.shape, axis), False


def _contiguous_geom(shape, axis):
    if axis is None:
        return (1, math.prod(shape), 1, 0, 1, 1)
    B, R, C = math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])
    if C == 1 and R <= _SHORT_ROW and B > 1:
        return (1, R, B, 0, 1, R)      # many short rows: a thread per row
    return (B, R, C, R * C, C, 1)


def _row_geom(shape, ld, axis):
    m, n = shape
    if axis == 0:
        return (1, m, n, 0, ld, 1)
    if n <= _SHORT_ROW and m > 1:
        return (1, n, m, 0, 1, ld)
    return (m, n, 1, ld, 1, 1)


def _empty_axis(what, shape, axis):
    """Result of reducing over an empty axis, as NumPy gives it (or its error)."""
    if what in ("min", "max"):
        raise ValueError(f"zero-size array to reduction operation {_NP_NAME[what]} which has no identity")
    if what in ("argmin", "argmax"):
        raise ValueError(f"attempt to get {what} of an empty sequence")
    if what != "sum":
        warnings.warn("Mean of empty slice" if what == "mean" else "Degrees of freedom <= 0 for slice",
                      RuntimeWarning, stacklevel=4)
    return None


def _reduce(what, x, axis, keepdims, ddof=0.0):
    if not runtime._is_array(x):
        x = _host(x)
    ndim = x.ndim
    axis = _axis(axis, ndim)
    shape = _shape(x)
    n_axis = math.prod(shape) if axis is None else shape[axis]
    out_shape = _out_shape(shape, axis, keepdims)
    integer = what in ("argmin", "argmax")
    if n_axis == 0:
        _empty_axis(what, shape, axis)
        fill = 0.0 if what == "sum" else np.nan
        res = np.full(out_shape, fill, np.float32)
        return res if out_shape else res[()]
    if runtime.get_backend() == "cpu":
        host = x.numpy() if runtime._is_array(x) else x
        return cpu.reduce(what, host, axis, keepdims, ddof)
    operand, geom, transposed = _device_operand(x, axis, integer)
    B, R, C = geom[:3]
    nout = B * C
    res = np.empty(nout, np.int64 if integer else np.float32)
    if nout:
        runtime.run_op("reduce", (operand,), (res,), (_WHAT[what],) + tuple(geom) + (_WINDOW_ELEMS,), (ddof,),
                       names={("in", 0): "x", ("out", 0): "out"}, results=True)
        if runtime.in_batch():
            runtime.synchronize()   # the results are host data, needed now
    return _shape_result(res, shape, axis, keepdims, transposed)


def _shape_result(res, shape, axis, keepdims, transposed):
    if axis is None:
        r = res[0]
        return np.full((1,) * len(shape), r) if keepdims else r
    rest = shape[:axis] + shape[axis + 1:]
    if transposed:
        res = res.reshape(rest[::-1]).T
    else:
        res = res.reshape(rest)
    if keepdims:
        res = np.expand_dims(res, axis)
    return np.ascontiguousarray(res) if res.ndim else res[()]


def sum(x, axis=None, keepdims=False):
    """Sum over axis (None: all elements), compensated, float32. Empty: 0."""
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    """Mean over axis as float32 (sum / count). Empty: nan with a RuntimeWarning, as NumPy."""
    return _reduce("mean", x, axis, keepdims)


def min(x, axis=None, keepdims=False):
    """Minimum over axis (NaN propagates); ValueError over an empty axis, as NumPy."""
    return _reduce("min", x, axis, keepdims)


def max(x, axis=None, keepdims=False):
    """Maximum over axis (NaN propagates); ValueError over an empty axis, as NumPy."""
    return _reduce("max", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    """int64 index of the minimum along axis (flat C-order index when axis is None): the first
    NaN if any, else the first of equal minima, as NumPy."""
    return _reduce("argmin", x, axis, keepdims)


def argmax(x, axis=None, keepdims=False):
    """int64 index of the maximum along axis; first NaN, then first of ties, as NumPy."""
    return _reduce("argmax", x, axis, keepdims)


def var(x, axis=None, ddof=0, keepdims=False):
    """Variance over axis, sum((x - mean)^2) / max(n - ddof, 0), one pass (Welford/Chan)."""
    return _reduce("var", x, axis, keepdims, _ddof(ddof))


def std(x, axis=None, ddof=0, keepdims=False):
    """Standard deviation: sqrt(var(x, axis, ddof))."""
    return _reduce("std", x, axis, keepdims, _ddof(ddof))


def statistics(x, axis=0, ddof=0):
    """{'count', 'mean', 'var', 'min', 'max'} over axis (None: all elements) from one pass over the
    data: count int64, the others float32. An empty axis gives count 0 and NaN elsewhere."""
    if not runtime._is_array(x):
        x = _host(x)
    axis = _axis(axis, x.ndim)
    ddof = _ddof(ddof)
    shape = _shape(x)
    n_axis = math.prod(shape) if axis is None else shape[axis]
    rest = () if axis is None else shape[:axis] + shape[axis + 1:]
    if n_axis == 0:
        nan = np.full(rest, np.nan, np.float32)
        return {"count": np.zeros(rest, np.int64)[()], "mean": nan[()], "var": nan.copy()[()],
                "min": nan.copy()[()], "max": nan.copy()[()]}
    if runtime.get_backend() == "cpu":
        return cpu.statistics(x.numpy() if runtime._is_array(x) else x, axis, ddof)
    operand, geom, transposed = _device_operand(x, axis, False)
    nout = geom[0] * geom[2]
    vals = np.empty((nout, 4), np.float32)
    counts = np.empty(nout, np.int64)
    if nout:
        runtime.run_op("reduce", (operand,), (vals, counts), (_WHAT["statistics"],) + tuple(geom) + (_WINDOW_ELEMS,),
                       (ddof,), names={("in", 0): "x", ("out", 0): "out", ("out", 1): "count"}, results=True)
        if runtime.in_batch():
            runtime.synchronize()
    out = {"count": _shape_result(counts, shape, axis, False, transposed)}
    for i, key in enumerate(("mean", "var", "min", "max")):
        out[key] = _shape_result(np.ascontiguousarray(vals[:, i]), shape, axis, False, transposed)
    return out


# ---- histograms -------------------------------------------------------------------------------

MODES = ("uniform", "quantile", "log")


def _range(range_):
    if range_ is None:
        return None
    try:
        lo, hi = (float(v) for v in range_)
    except (TypeError, ValueError):
        raise TypeError(f"range must be None or a pair (min, max) of numbers, got {range_!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"range: supplied range of [{lo}, {hi}] is not finite")
    if lo > hi:
        raise ValueError(f"range: max must be larger than min, got {range_!r}")
    return lo, hi


def _nbins(bins):
    if isinstance(bins, (bool, np.bool_)) or not isinstance(bins, (int, np.integer)):
        raise TypeError(f"bins must be an integer for this mode, got {bins!r}")
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    return int(bins)


def _flat_values(x):
    """x flattened, in the dtype the device reads (float32, or float16 where stored)."""
    if runtime._is_array(x):
        if (x.dtype == np.float32 or (x.dtype == np.float16 and runtime.device_info()["storage_16bit"])) \
                and x._c_contiguous():
            return runtime.Array(x._buf, (x.size,), x.dtype, x._offset)
        x = x.numpy()
    a = np.asarray(x).reshape(-1)
    keep16 = a.dtype == np.float16 and runtime.device_info()["storage_16bit"]
    if not keep16 and a.dtype != np.float32:
        with np.errstate(over="ignore"):
            a = a.astype(np.float32)
    return np.ascontiguousarray(a)


def _extremes(x):
    """(min, max) of x as scalars of x's dtype (NaN when any value is NaN), from one GPU pass."""
    st = statistics(x, axis=None)
    dt = np.dtype(x.dtype)
    if dt.kind != "f":
        dt = np.dtype(np.float64)
    return dt.type(st["min"]), dt.type(st["max"])


def _edges_f32(edges):
    """Float32 images of float64 edges rounded up (lower bounds), and the last edge rounded down
    (the closed upper bound): float32 comparisons with them decide as float64 ones would."""
    e = np.asarray(edges, np.float64)
    with np.errstate(over="ignore"):
        up = e.astype(np.float32)
        low = up.astype(np.float64) < e
        up[low] = np.nextafter(up[low], np.float32(np.inf))
        last = np.float32(e[-1])
        if float(last) > e[-1]:
            last = np.nextafter(last, np.float32(-np.inf))
    return up, last


def histogram(x, bins=10, range=None, mode="uniform"):
    """(counts int64, edges) of the flattened x.

    mode 'uniform' (bins: a count or an increasing edge array): numpy.histogram's edges (same
    values and dtype) and counts, bin i holding edges[i] <= x < edges[i+1] and the last bin closed;
    values outside the range and NaN are not counted; without range, NaN or inf in x raise
    ValueError as in NumPy. mode 'quantile': edges at the quantiles of x (NaN ignored), so bins hold
    (nearly) equal counts. mode 'log': geometrically spaced edges over range or x's extremes, which
    must be positive. float64 data is compared as float32 values (inputs are computed in float32)."""
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if not runtime._is_array(x):
        x = _host(x)
    rng = _range(range)
    dtype = np.dtype(x.dtype)
    if isinstance(bins, str):
        raise ValueError(f"bins: estimator names such as {bins!r} are not supported; give a count or edges")
    if mode == "uniform" and np.ndim(bins) == 1:
        edges = np.asarray(bins)
        if edges.dtype.kind not in "biuf" or edges.size < 2:
            raise ValueError("bins: an edge array must hold at least two numbers")
        if np.any(edges[:-1] > edges[1:]):
            raise ValueError("bins must increase monotonically, when an array")
        uniform = False
    else:
        if np.ndim(bins) != 0:
            if mode != "uniform":
                raise TypeError(f"bins must be an integer for mode {mode!r}, got an array")
            raise ValueError(f"bins must be an integer or a 1-D array of edges, got shape {np.shape(bins)}")
        nb = _nbins(bins)
        uniform = mode == "uniform"
        if mode == "uniform":
            if rng is None and x.size and (dtype.itemsize > 4 or dtype.kind != "f") and not runtime._is_array(x):
                proxy = np.array([x.min(), x.max()], dtype)   # exact extremes of values float32 cannot hold
            elif rng is None and x.size:
                proxy = np.array(_extremes(x), dtype)
            else:
                proxy = np.empty(0, dtype)
            edges = np.histogram_bin_edges(proxy, nb, rng)
        elif mode == "log":
            lo, hi = rng if rng is not None else (_extremes(x) if x.size else (1.0, 10.0))
            if not lo > 0:
                raise ValueError(f"{'range' if rng is not None else 'x'}: log bins need positive values, "
                                 f"got a minimum of {lo}")
            if not np.isfinite(hi):
                raise ValueError(f"x: log bins need finite values, got a maximum of {hi}")
            if lo == hi:
                lo, hi = lo / 2, hi * 2
            edges = np.geomspace(float(lo), float(hi), nb + 1)
            edges[0], edges[-1] = lo, hi
        else:
            edges = _quantile_edges(x, nb, rng)
    # Edges found from x's own extremes hold every value (float32 images of float64 extremes may
    # fall just outside them): only NaN is left out then.
    counts = _counts(x, edges, uniform, clamp=rng is None and np.ndim(bins) == 0 and mode != "quantile")
    return counts, edges


def _quantile_edges(x, nb, rng):
    """Edges at the nb-quantiles of x's float32 values within range (NaN ignored), made strictly
    increasing where ties would leave a bin empty-width."""
    v = x.numpy() if runtime._is_array(x) else x
    with np.errstate(over="ignore"):
        v = np.asarray(v).reshape(-1).astype(np.float32).astype(np.float64)
    v = v[~np.isnan(v)]
    if rng is not None:
        v = v[(v >= rng[0]) & (v <= rng[1])]
    if v.size == 0:
        lo, hi = rng if rng is not None else (0.0, 1.0)
        return np.linspace(lo, hi, nb + 1)
    return np.quantile(v, np.linspace(0.0, 1.0, nb + 1))


def _counts(x, edges, uniform, clamp=False):
    edges = np.asarray(edges)
    nb = edges.size - 1
    if runtime.get_backend() == "cpu":
        return cpu.histogram_counts(x.numpy() if runtime._is_array(x) else x, edges, clamp)
    flat = _flat_values(x)
    counts = np.zeros(nb, np.int64)
    e32, hi = _edges_f32(edges)
    first, last = float(edges[0]), float(edges[-1])
    scale = nb / (last - first) if last > first else 0.0
    lo = -np.inf if clamp else float(e32[0])
    hi = np.inf if clamp else float(hi)
    runtime.run_op("histogram", (flat, e32), (counts,), (nb, int(uniform), _WINDOW_ELEMS), (lo, hi, scale),
                   names={("in", 0): "x", ("in", 1): "bins", ("out", 0): "counts"})
    if runtime.in_batch():
        runtime.synchronize()
    return counts
