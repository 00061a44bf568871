"""matmul, matvec and transpose with NumPy's semantics: argument checks, 1-D promotion, batch
broadcasting, the dtype policy (float16 x float16 -> float16 and bfloat16 x bfloat16 -> bfloat16,
both with float32 accumulation; everything else computed in float32 and returned as float32) and
the dispatch to the Vulkan ops or the NumPy reference in vaccel.cpu."""

import math

import numpy as np

from . import cpu, runtime


def _operand(x, name, bfloat16=False):
    return runtime.numeric(x, name, bfloat16)


def _half_pair(a, b):
    """float16 or bfloat16 when a and b both hold it, else None."""
    da, db = np.dtype(a.dtype), np.dtype(b.dtype)
    return da if da == db and (da == np.float16 or runtime.is_bfloat16(da)) else None


def _result_dtype(a, b, out_dtype):
    half = _half_pair(a, b)
    if out_dtype is None:
        return half if half is not None else np.dtype(np.float32)
    dt = np.dtype(out_dtype)
    if dt == np.float32 or (half is not None and dt == half):
        return dt
    raise TypeError(f"out_dtype must be float32{' or ' + str(half) if half is not None else ''} for "
                    f"{a.dtype} x {b.dtype}, got {dt}")


def _device_dtype(x, pair=None):
    """The dtype the kernels read x in: float16 (and bfloat16 paired with bfloat16) stays so where
    the device stores 16-bit values, everything else is float32."""
    dt = np.dtype(x.dtype)
    if runtime.device_info()["storage_16bit"]:
        if dt == np.float16 or (runtime.is_bfloat16(dt) and pair == dt):
            return dt
    return np.dtype(np.float32)


def _as_dtype(x, dt):
    if np.dtype(x.dtype) == dt:
        return x
    if runtime._is_array(x):
        return runtime.asarray(x.numpy().astype(dt))
    with np.errstate(over="ignore"):
        return x.astype(dt)


def _strides(x):
    if runtime._is_array(x):
        return tuple(x._strides)
    return tuple(s // x.itemsize for s in x.strides)


def _kernel_ready(x, name):
    """x with a layout the kernels take: one of its last two axes contiguous, non-negative strides
    that are whole elements (NumPy arrays are copied otherwise; Arrays always qualify but a
    doubly-strided one is brought back through the host)."""
    if runtime._is_array(x):
        st = _strides(x)
        if x.ndim >= 2 and not (st[-1] == 1 or st[-2] == 1 or x.shape[-1] <= 1 or x.shape[-2] <= 1):
            return runtime.asarray(x.numpy())
        return x
    if x.flags.c_contiguous and x.flags.aligned:
        return x
    ok = all(s >= 0 and s % x.itemsize == 0 for s in x.strides) and x.ctypes.data % x.itemsize == 0
    if ok and x.ndim >= 2:
        st = _strides(x)
        ok = st[-1] == 1 or st[-2] == 1 or x.shape[-1] <= 1 or x.shape[-2] <= 1
    return x if ok else np.ascontiguousarray(x)


def _batched(x, batch_shape):
    """x (..., r, c) broadcast to batch_shape + (r, c), as a 3-D operand (batch, r, c): a batch axis
    of its own keeps its stride, a broadcast one gets stride 0; several batch axes are merged
    (copied when their strides do not chain)."""
    r, c = x.shape[-2:]
    nb = math.prod(batch_shape)
    st = _strides(x)
    lead = x.shape[:-2]
    if all(n == 1 for n in lead):
        if nb == 1 and not runtime._is_array(x):
            return x.reshape((1, r, c))     # a view (only axes of length 1 change)
        return runtime.view(x, (nb, r, c), (0,) + st[-2:])
    if len(lead) == 1 and len(batch_shape) == 1:
        return runtime.view(x, (nb, r, c), (st[0],) + st[-2:])
    if runtime._is_array(x):
        x = x.numpy()
    full = np.broadcast_to(x, tuple(batch_shape) + (r, c))
    try:
        return full.reshape(nb, r, c)
    except ValueError:
        return np.ascontiguousarray(full).reshape(nb, r, c)


def _check_out(out, shape, dtype):
    if out is None:
        return None
    if runtime._is_array(out):
        if out.shape != shape:
            raise ValueError(f"out has shape {out.shape}, expected {shape}")
        if out.dtype != dtype:
            raise TypeError(f"out must be {dtype}, got {out.dtype}")
        if not out._c_contiguous():
            raise ValueError("out must be a contiguous vaccel.Array")
        return out
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray or vaccel.Array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"out must be {dtype}, got {out.dtype}")
    if not out.flags.writeable:
        raise ValueError("out is read-only")
    return out


def _deliver(r, out, want_array):
    return runtime.deliver(r, out, want_array)


def _result(shape, dtype, out, want_array):
    """(result, target): target is what the kernel writes (contiguous), result what is returned."""
    if out is None:
        want_array = want_array or runtime.in_batch()
        res = runtime.empty(shape, dtype) if want_array else np.empty(shape, dtype)
    else:
        res = out
    target = res
    if not runtime._is_array(res) and not res.flags.c_contiguous:
        target = np.empty(shape, dtype)
    return res, target


def _fill_zeros(res):
    if runtime._is_array(res):
        res._assign(np.zeros(res.shape, res.dtype))
    else:
        res[...] = 0


def matmul(a, b, out=None, *, out_dtype=None):
    """Matrix product with numpy.matmul's shapes: 2-D, batched (leading axes broadcast), and 1-D
    operands promoted and squeezed as NumPy does. float16 x float16 gives float16 and bfloat16 x
    bfloat16 (ml_dtypes.bfloat16) gives bfloat16, both with float32 accumulation (out_dtype=
    numpy.float32 keeps the float32 result); everything else, bfloat16 with another dtype
    included, is computed in float32 and returned as float32. Transposed and strided views are read in place.
    Returns a vaccel.Array when a or b is one, else a NumPy array; `out` is filled and returned."""
    a = _operand(a, "a", bfloat16=True)
    b = _operand(b, "b", bfloat16=True)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul: a and b must be at least 1-D (use multiply for scalars)")
    rdt = _result_dtype(a, b, out_dtype)
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    a2 = runtime.view(a, (1, a.shape[0]), (0, _strides(a)[0])) if a_vec else a
    b2 = runtime.view(b, (b.shape[0], 1), (_strides(b)[0], 0)) if b_vec else b
    m, k = a2.shape[-2:]
    k2, n = b2.shape[-2:]
    if k != k2:
        raise ValueError(f"matmul: a has {k} columns but b has {k2} rows (a {a.shape}, b {b.shape})")
    try:
        batch_shape = () if a2.ndim == 2 and b2.ndim == 2 else tuple(np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2]))
    except ValueError:
        raise ValueError(f"matmul: the batch axes of a {a.shape} and b {b.shape} do not broadcast") from None
    shape = batch_shape + (m, n)
    final = batch_shape + ((m,) if not a_vec else ()) + ((n,) if not b_vec else ())
    out = _check_out(out, final, rdt)
    want_array = runtime._is_array(a) or runtime._is_array(b)
    if runtime.get_backend() == "cpu":
        ha = a.numpy() if runtime._is_array(a) else a
        hb = b.numpy() if runtime._is_array(b) else b
        return _deliver(cpu.matmul(ha, hb, rdt), out, want_array)

    res, target = _result(final, rdt, out, want_array)
    if math.prod(shape) == 0:
        return res
    if k == 0:
        _fill_zeros(res)
        return res
    # Operand dtypes: float16 and bfloat16 pairs stay so (cooperative matrices); a 16-bit result
    # needs them.
    half = _half_pair(a2, b2)
    da, db = _device_dtype(a2, half), _device_dtype(b2, half)
    if rdt.itemsize == 2 and (da != rdt or db != rdt):
        raise TypeError(f"a {rdt} result needs a device that stores 16-bit values; use out_dtype=numpy.float32")
    a3 = _batched(_kernel_ready(_as_dtype(a2, da), "a"), batch_shape)
    b3 = _batched(_kernel_ready(_as_dtype(b2, db), "b"), batch_shape)
    nb = math.prod(batch_shape)
    t3 = runtime.view(target, (nb, m, n), (m * n, n, 1))
    names = {("in", 0): "a", ("in", 1): "b", ("out", 0): "out"}
    runtime.run_op("matmul", (a3, b3), (t3,), (0,), (), names, results=True)
    if target is not res:
        res[...] = target
    return res


def matvec(a, x, out=None):
    """a @ x for a (..., m, k) and x (..., k) -> (..., m), float32 (float16 a is read as float16).
    Leading axes broadcast as in numpy.matmul."""
    a = _operand(a, "a")
    x = _operand(x, "x")
    if a.ndim < 2:
        raise ValueError(f"matvec: a must be at least 2-D, got shape {a.shape}")
    if x.ndim < 1:
        raise ValueError("matvec: x must be at least 1-D")
    m, k = a.shape[-2:]
    if x.shape[-1] != k:
        raise ValueError(f"matvec: a has {k} columns but x has {x.shape[-1]} entries (a {a.shape}, x {x.shape})")
    try:
        batch_shape = tuple(np.broadcast_shapes(a.shape[:-2], x.shape[:-1]))
    except ValueError:
        raise ValueError(f"matvec: the batch axes of a {a.shape} and x {x.shape} do not broadcast") from None
    final = batch_shape + (m,)
    out = _check_out(out, final, np.dtype(np.float32))
    want_array = runtime._is_array(a) or runtime._is_array(x)
    if runtime.get_backend() == "cpu":
        ha = a.numpy() if runtime._is_array(a) else a
        hx = x.numpy() if runtime._is_array(x) else x
        return _deliver(cpu.matvec(ha, hx), out, want_array)
    res, target = _result(final, np.float32, out, want_array)
    if math.prod(final) == 0:
        return res
    if k == 0:
        _fill_zeros(res)
        return res
    nb = math.prod(batch_shape)
    a3 = _batched(_kernel_ready(_as_dtype(a, _device_dtype(a)), "a"), batch_shape)
    # x as (batch or 1, k) rows, contiguous float32.
    hx = x.numpy() if runtime._is_array(x) else x
    hx = np.asarray(hx, np.float32)
    xb = np.ascontiguousarray(np.broadcast_to(hx, batch_shape + (k,)).reshape(nb, k)) if x.ndim > 1 \
        else np.ascontiguousarray(hx).reshape(1, k)
    t2 = runtime.view(target, (nb, m), (m, 1))
    runtime.run_op("matvec", (a3, xb), (t2,), (), (), {("in", 0): "a", ("in", 1): "x", ("out", 0): "out"},
                   results=True)
    if target is not res:
        res[...] = target
    return res


def transpose(a, out=None):
    """The last two axes of a swapped (2-D or batched), as a new contiguous array of a's dtype
    (float64 becomes float32 on the device, as elsewhere)."""
    a = _operand(a, "a", bfloat16=True)
    if a.ndim < 2:
        raise ValueError(f"transpose: a must be at least 2-D, got shape {a.shape}")
    want_array = runtime._is_array(a)
    if runtime.get_backend() == "cpu":
        ha = a.numpy() if want_array else a
        r = cpu.transpose(ha)
        out = _check_out(out, r.shape, r.dtype)
        return _deliver(r, out, want_array)
    dt = runtime._device_dtype(a.dtype)
    if dt.itemsize not in (2, 4):
        a = _as_dtype(a, np.dtype(np.float32))
        dt = np.dtype(np.float32)
    a = _as_dtype(a, dt)
    r, c = a.shape[-2:]
    batch_shape = tuple(a.shape[:-2])
    final = batch_shape + (c, r)
    out = _check_out(out, final, dt)
    res, target = _result(final, dt, out, want_array)
    if math.prod(final) == 0:
        return res
    if runtime._is_array(a):
        st = _strides(a)
        if a.shape[-1] > 1 and st[-1] != 1:
            a = runtime.asarray(a.numpy())
    elif not (a.ndim and (a.shape[-1] <= 1 or a.strides[-1] == a.itemsize)) or any(s < 0 for s in a.strides):
        a = np.ascontiguousarray(a)
    nb = math.prod(batch_shape)
    a3 = _batched(a, batch_shape)
    t3 = runtime.view(target, (nb, c, r), (c * r, r, 1))
    runtime.run_op("transpose", (a3,), (t3,), (), (), {("in", 0): "a", ("out", 0): "out"}, results=True)
    if target is not res:
        res[...] = target
    return res
