"""matmul: vaccel.matmul against PyTorch, CuPy and NumPy.

matmul/<dtype>/<m>x<k>x<n>   C = A·B, row-major operands resident on the device, C written into a
                             preallocated output. Work counted: 2*m*n*k flops; bytes: the operands
                             read once and C written once. The floor is flops over the measured GEMM
                             rate of that dtype (torch fp32 mm with TF32 off; torch fp16 / bf16 mm
                             for float16 / bfloat16, whose result is of that dtype with float32
                             accumulation). bfloat16 is ml_dtypes' (the case is left out without it).
matmul/latency/64x64x64      one small float32 product from NumPy to NumPy, median over 200 calls
                             (no floor: it measures what a call costs).

What runs:
  vaccel       vaccel.matmul(a, b, out=c) on vaccel.Arrays (float16: cooperative matrices where the
               device has them), then synchronize
  torch-cuda   torch.mm(a, b, out=c), TF32 off
  cupy         cupy.matmul(a, b, out=c) (cuBLAS; CuPy has no bfloat16)
  numpy        numpy.matmul on the host, under the CPU GEMM-work limit

Correctness: a few rows (all when small) against a float64 NumPy product of the same (float16-
rounded) operands, within 1e-3 relative (float32 results) or 1e-2 (float16 and bfloat16 results)
of the row's largest magnitude.
"""

import numpy as np

from ..harness import CPU_PEER_MAX_GEMM_WORK, Case, Impl, check_close, check_rows, register
from ._common import fetch_cupy, fetch_numpy, fetch_torch, fetch_vaccel

QUICK = [("float32", 256, 256, 256), ("float16", 256, 256, 256), ("bfloat16", 256, 256, 256)]
FULL = [("float32", 4096, 4096, 4096), ("float32", 8192, 8192, 8192), ("float16", 4096, 4096, 4096),
        ("float16", 8192, 8192, 8192), ("bfloat16", 8192, 8192, 8192), ("float32", 10_000, 128, 100_000)]
LATENCY = 64


def _check(m, n, dtype):
    rtol = 1e-2 if dtype in ("float16", "bfloat16") else 1e-3

    def check(get_rows, inputs):
        a, b = inputs
        rows = check_rows(m, m * n, max_full=1 << 20)
        A = (a if rows is None else a[rows]).astype(np.float64)
        ref = A @ b.astype(np.float64)
        return check_close(np.asarray(get_rows(rows), np.float64), ref, rtol=rtol)
    return check


def _np_dtype(dtype):
    if dtype == "bfloat16":
        import ml_dtypes
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(dtype)


def _impls(P, dtype, m, k, n):
    impls, skipped = [], {}
    ndt = _np_dtype(dtype)
    V = P.vaccel
    if V is not None:
        def prep(sets):
            dev = [(V.asarray(a), V.asarray(b)) for a, b in sets]
            out = V.empty((m, n), ndt)

            def run(i):
                return V.matmul(dev[i][0], dev[i][1], out=out)
            return run
        impls.append(Impl("vaccel", prep, fetch_vaccel, V.synchronize, "device", P.vaccel_device_name(),
                          note="resident operands, out="))
    if P.torch_cuda:
        torch = P.torch
        tdt = getattr(torch, dtype)

        def tensor(x):
            if dtype == "bfloat16":   # the same bits, seen as torch's bfloat16
                return torch.from_numpy(x.view(np.uint16).view(np.int16)).cuda().view(torch.bfloat16)
            return torch.from_numpy(x).cuda()

        def prep_t(sets):
            torch.backends.cuda.matmul.allow_tf32 = False
            ts = [(tensor(a), tensor(b)) for a, b in sets]
            out = torch.empty((m, n), device="cuda", dtype=tdt)
            return lambda i: torch.mm(ts[i][0], ts[i][1], out=out)
        impls.append(Impl("torch-cuda", prep_t, fetch_torch, P.sync_torch, "device", P.cuda_device_name(),
                          note="torch.mm, TF32 off"))
    if P.cupy is not None and dtype != "bfloat16":
        cp = P.cupy

        def prep_c(sets):
            cs = [(cp.asarray(a), cp.asarray(b)) for a, b in sets]
            out = cp.empty((m, n), dtype=dtype)
            return lambda i: cp.matmul(cs[i][0], cs[i][1], out=out)
        impls.append(Impl("cupy", prep_c, fetch_cupy, P.sync_cupy, "device", P.cuda_device_name(),
                          note="cupy.matmul (cuBLAS)"))
    if m * n * k <= CPU_PEER_MAX_GEMM_WORK:
        impls.append(Impl("numpy", lambda sets: (lambda i: np.matmul(*sets[i])), fetch_numpy, P.sync_none,
                          "host", P.host_name()))
    else:
        skipped["numpy"] = f"m*n*k={m * n * k:.2g} above the CPU peer limit {CPU_PEER_MAX_GEMM_WORK:.2g}"
    return impls, skipped


def _case(P, dtype, m, k, n):
    impls, skipped = _impls(P, dtype, m, k, n)
    ndt = _np_dtype(dtype)
    es = ndt.itemsize

    def make_inputs(rng):
        return (rng.standard_normal((m, k), dtype=np.float32).astype(ndt),
                rng.standard_normal((k, n), dtype=np.float32).astype(ndt))
    big = m * n * k >= 1 << 36
    return Case(name=f"matmul/{dtype}/{m}x{k}x{n}", family="matmul", op=f"matmul/{dtype}",
                params={"dtype": dtype, "m": m, "k": k, "n": n}, make_inputs=make_inputs, impls=impls,
                check=_check(m, n, dtype), flops=2.0 * m * n * k, bytes=float(es * (m * k + k * n + m * n)),
                unit="GFLOP/s", size=float(m) * n * k, skipped=skipped, gemm_rate={"float16": "_f16", "bfloat16": "_bf16"}.get(dtype, ""),
                max_repeats=5 if big else None, priority=0 if (m, k, n) == (8192, 8192, 8192) else 1)


def _latency_case(P):
    s = LATENCY
    impls = []
    V = P.vaccel
    if V is not None:
        impls.append(Impl("vaccel-host", lambda sets: (lambda i: V.matmul(*sets[i])), fetch_numpy, V.synchronize,
                          "device", P.vaccel_device_name(), note="NumPy in, NumPy out"))
    impls.append(Impl("numpy", lambda sets: (lambda i: np.matmul(*sets[i])), fetch_numpy, P.sync_none, "host",
                      P.host_name()))
    if P.torch_cuda:
        torch = P.torch
        impls.append(Impl("torch-cuda", lambda sets: (lambda i: torch.mm(torch.from_numpy(sets[i][0]).cuda(),
                                                                          torch.from_numpy(sets[i][1]).cuda()).cpu().numpy()),
                          fetch_numpy, P.sync_torch, "device", P.cuda_device_name(), note="NumPy in, NumPy out"))

    def make_inputs(rng):
        return (rng.standard_normal((s, s), dtype=np.float32), rng.standard_normal((s, s), dtype=np.float32))
    return Case(name=f"matmul/latency/{s}x{s}x{s}", family="matmul", op="matmul/latency",
                params={"m": s, "k": s, "n": s, "dtype": "float32"}, make_inputs=make_inputs, impls=impls,
                check=_check(s, s, "float32"), flops=2.0 * s ** 3, bytes=12.0 * s * s, unit="call/s",
                size=float(s) ** 3, rotate=False, repeats=200, warmup=20, has_floor=False)


@register
def matmul_cases(ctx):
    P = ctx.peers
    for dtype, m, k, n in (QUICK if ctx.quick else FULL):
        if dtype != "float32" and P.vaccel is not None and not P.vaccel.devices()[0].get("storage_16bit", True):
            continue
        if dtype == "bfloat16":
            try:
                import ml_dtypes  # noqa: F401
            except ImportError:
                continue
        yield _case(P, dtype, m, k, n)
    yield _latency_case(P)
