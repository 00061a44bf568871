"""elementwise: vaccel's elementwise ops, activations, softmax, layer_norm and a fused chain against
PyTorch, CuPy and NumPy.

elementwise/<op>/<m>x<n>   add (x + y), exp, gelu (erf form), silu over an m x n float32 matrix;
                           softmax and layer_norm (weight and bias) along its rows. Bytes counted:
                           every operand read once and the result written once (12 mn for add,
                           8 mn for the others); no flops: the floor is bytes / copy bandwidth.
fused/<m>x<n>              gelu(x * w + b) * 0.5 with w, b vectors along the rows: four elementwise
                           ops; vaccel runs them as one fused pass (vaccel.fuse), the peers as the
                           four separate kernels a user writes (torch: x * w, + b, gelu, * 0.5).
                           Bytes counted: the fused pass's 8 mn (its floor); a peer's separate
                           kernels move 32 mn, which is the point of fusing.

What runs (inputs resident on the device, moved there outside the timing):
  vaccel       vaccel.<op>(Arrays) -> Array, then synchronize
  torch-cuda   torch.add / torch.exp / F.gelu / F.silu / torch.softmax(dim=1) / F.layer_norm
  cupy         cp.add / cp.exp / the softmax composition (max, exp, sum, divide); no gelu, silu,
               layer_norm of its own: not run there
  numpy        on the host, under a size limit: np.add / np.exp / the softmax composition

Correctness: a few rows (all when small) against float64 NumPy/SciPy, relative 1e-3 of the row
scale (check_close).
"""

import numpy as np

from ..harness import L2_BYTES, Case, Impl, Skip, check_close, check_rows, collect_impls, cupy_peak_mem, \
    host_peak_mem, register, torch_peak_mem, vaccel_peak_mem
from ._common import fetch_cupy, fetch_numpy, fetch_torch, fetch_vaccel, standard_normal

QUICK_SHAPES = [(1024, 1024)]
FULL_SHAPES = [(1 << 14, 1 << 14), (1 << 18, 1024)]     # 2^28 floats, 1 GiB per operand
HOST_MAX_ELEMS = 1 << 26
PRIORITY = 1
FUSED_EXPR = "gelu(x * w + b) * 0.5"


def _erf(x):
    from scipy.special import erf
    return erf(x)


def _ref(op, inputs, rows):
    x = inputs[0] if rows is None else inputs[0][rows]
    x = x.astype(np.float64)
    if op == "add":
        y = inputs[1] if rows is None else inputs[1][rows]
        return x + y
    if op == "exp":
        return np.exp(x)
    if op == "gelu":
        return 0.5 * x * (1 + _erf(x / np.sqrt(2)))
    if op == "silu":
        return x / (1 + np.exp(-x))
    if op == "softmax":
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    if op == "layer_norm":
        w, b = inputs[1].astype(np.float64), inputs[2].astype(np.float64)
        mu = x.mean(axis=1, keepdims=True)
        return (x - mu) / np.sqrt(((x - mu) ** 2).mean(axis=1, keepdims=True) + 1e-5) * w + b
    if op == "fused":
        w, b = inputs[1].astype(np.float64), inputs[2].astype(np.float64)
        t = x * w + b
        return 0.5 * t * (1 + _erf(t / np.sqrt(2))) * 0.5
    raise ValueError(op)


def make_check(op, m, n):
    def check(get_rows, inputs):
        rows = check_rows(m, m * n)
        return check_close(get_rows(rows), _ref(op, inputs, rows))
    return check


def _inputs(op, m, n):
    def make(rng):
        x = standard_normal(rng, (m, n))
        if op == "add":
            return x, standard_normal(rng, (m, n))
        if op in ("layer_norm", "fused"):
            return x, rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
        return (x,)
    return make


# --------------------------------------------------------------------------------------------
# implementations: fn(module, *inputs) per library


def _vaccel_fn(V, op):
    if op == "add":
        return V.add
    if op == "layer_norm":
        return lambda x, w, b: V.layer_norm(x, w, b)
    if op == "fused":
        f = V.compile_expr(FUSED_EXPR)
        return lambda x, w, b: f(x=x, w=w, b=b)
    return getattr(V, op)


def _torch_fn(torch, op):
    F = torch.nn.functional
    return {"add": torch.add, "exp": torch.exp, "gelu": F.gelu, "silu": F.silu,
            "softmax": lambda x: torch.softmax(x, dim=1),
            "layer_norm": lambda x, w, b: F.layer_norm(x, (x.shape[1],), w, b),
            "fused": lambda x, w, b: F.gelu(x * w + b) * 0.5}[op]


def _xp_fn(xp, op):
    def softmax(x):
        e = xp.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    fns = {"add": xp.add, "exp": xp.exp, "softmax": softmax}
    if op not in fns:
        raise Skip(f"no {op} of its own")
    return fns[op]


def impl_vaccel(P, op, m, n):
    V = P.vaccel
    fn = _vaccel_fn(V, op)

    def prepare(sets):
        dev = [tuple(V.asarray(a) for a in s) for s in sets]
        return lambda i: fn(*dev[i])
    probe = vaccel_peak_mem(V)
    note = "one fused pass (vaccel.compile_expr)" if op == "fused" else "resident inputs, Array result"
    return Impl("vaccel", prepare, fetch_vaccel, V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None, note=note)


def impl_torch_cuda(P, op, m, n):
    if not P.torch_cuda:
        return None
    torch = P.torch
    fn = _torch_fn(torch, op)

    def prepare(sets):
        ts = [tuple(torch.from_numpy(a).cuda() for a in s) for s in sets]
        return lambda i: fn(*ts[i])
    note = "four separate kernels: x * w, + b, gelu, * 0.5" if op == "fused" else ""
    return Impl("torch-cuda", prepare, fetch_torch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated", note=note)


def impl_cupy(P, op, m, n):
    if P.cupy is None:
        return None
    cp = P.cupy
    fn = _xp_fn(cp, op)

    def prepare(sets):
        cs = [tuple(cp.asarray(a) for a in s) for s in sets]
        return lambda i: fn(*cs[i])
    return Impl("cupy", prepare, fetch_cupy, P.sync_cupy, "device", P.cuda_device_name(),
                mem=cupy_peak_mem(cp), mem_source="cupy pool growth")


def impl_numpy(P, op, m, n):
    if m * n > HOST_MAX_ELEMS:
        raise Skip(f"m*n={m * n:.2g} above the host limit {HOST_MAX_ELEMS:.2g}")
    fn = _xp_fn(np, op)
    return Impl("numpy", lambda sets: (lambda i: fn(*sets[i])), fetch_numpy, P.sync_none, "host",
                P.host_name(), mem=host_peak_mem, mem_source="tracemalloc")


FACTORIES = [("vaccel", impl_vaccel), ("torch-cuda", impl_torch_cuda), ("cupy", impl_cupy), ("numpy", impl_numpy)]
OPS = ("add", "exp", "gelu", "silu", "softmax", "layer_norm", "fused")


def make_case(P, op, m, n):
    impls, skipped = collect_impls(P, FACTORIES, op, m, n)
    nbytes = (12.0 if op == "add" else 8.0) * m * n
    name = f"fused/{m}x{n}" if op == "fused" else f"elementwise/{op}/{m}x{n}"
    return Case(
        name=name, family="elementwise", op="fused" if op == "fused" else f"elementwise/{op}",
        params={"m": m, "n": n, "dtype": "float32"} | ({"expr": FUSED_EXPR} if op == "fused" else {}),
        make_inputs=_inputs(op, m, n), impls=impls, check=make_check(op, m, n), flops=None, bytes=nbytes,
        unit="GB/s", size=float(m) * n, skipped=skipped, rotate=4 * m * n < 2 * L2_BYTES,
        max_repeats=20 if m * n >= 1 << 26 else None, priority=PRIORITY,
    )


@register
def cases(ctx):
    P = ctx.peers
    for m, n in (QUICK_SHAPES if ctx.quick else FULL_SHAPES):
        for op in OPS:
            yield make_case(P, op, m, n)
