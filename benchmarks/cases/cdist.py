"""cdist: vaccel.cdist against SciPy, NumPy, faiss, PyTorch and CuPy.

Work counted: 2*m*n*d operations for every metric (one FMA per coordinate pair for the GEMM-form
metrics; subtract and |.|-add for cityblock), and 4*(m*d + n*d + m*n) bytes (inputs read once,
the float32 output written once). The floor is the larger of flops / measured fp32 GEMM rate and
bytes / measured copy bandwidth; at the headline shape the output write dominates the bytes.

What the peers compute (all float32 on their device unless said):
  scipy        scipy.spatial.distance.cdist (float64 output: SciPy upcasts)
  numpy        GEMM form: |a|^2 + |b|^2 - 2 a.b (sqeuclidean/euclidean), normalized a.b (cosine);
               cityblock by blocks of broadcasting
  faiss        faiss.pairwise_distances (METRIC_L2, METRIC_L1, inner product on normalized rows)
  torch-*      torch.cdist (p=2: PyTorch's own mm-based path for >25 rows; sqeuclidean is
               torch.cdist(...).pow_(2)); cosine is 1 - normalize(a) @ normalize(b).T
  torch-cuda-mm  the explicit GEMM form: addmm(|b|^2, a, b.T, alpha=-2) + |a|^2, clamp (sqrt)
  cupy         cuBLAS GEMM + one fused elementwise epilogue (no cityblock: CuPy has no cdist
               without pylibraft)
  faiss-gpu    faiss.pairwise_distance_gpu on torch CUDA tensors
"""

import weakref

import numpy as np

from ..harness import (CPU_PEER_MAX_GEMM_WORK, CPU_PEER_MAX_LOOP_WORK, Case, Impl, Skip,
                       check_close, check_rows, collect_impls, cupy_peak_mem, host_peak_mem, register,
                       torch_peak_mem, vaccel_peak_mem)
from ._common import (HOST_OUTPUT_LIMIT, LARGE_REPEATS, LARGE_WORK, fetch_cupy, fetch_numpy, fetch_torch,
                      fetch_vaccel)

METRICS = ("sqeuclidean", "euclidean", "cosine", "cityblock")
GEMM_FORM = ("sqeuclidean", "euclidean", "cosine")

QUICK_SIZES = [(64, 1000, 32), (256, 4096, 64)]
FULL_SIZES = [(256, 4096, 64), (1024, 65536, 128), (1000, 99_991, 100), (2048, 100_000, 768)]
HEADLINE = (4096, 1_000_000, 128)
HEADLINE_METRICS = ("sqeuclidean", "euclidean")


# --------------------------------------------------------------------------------------------
# reference


def reference_rows(a, b, rows, metric):
    """float64 distances from rows `rows` of a (None: all) to every row of b."""
    A = (a if rows is None else a[rows]).astype(np.float64)
    n, d = b.shape
    out = np.empty((A.shape[0], n))
    aa = np.einsum("ij,ij->i", A, A)
    chunk = max(1, (1 << 24) // max(1, A.shape[0] * d)) if metric == "cityblock" else 1 << 16
    for j0 in range(0, n, chunk):
        j1 = min(j0 + chunk, n)
        B = b[j0:j1].astype(np.float64)
        if metric in ("sqeuclidean", "euclidean"):
            s = aa[:, None] + np.einsum("ij,ij->i", B, B)[None, :] - 2.0 * (A @ B.T)
            np.maximum(s, 0.0, out=s)
            out[:, j0:j1] = np.sqrt(s) if metric == "euclidean" else s
        elif metric == "cosine":
            nb = np.sqrt(np.einsum("ij,ij->i", B, B))
            out[:, j0:j1] = 1.0 - (A @ B.T) / (np.sqrt(aa)[:, None] * nb[None, :])
        elif metric == "cityblock":
            out[:, j0:j1] = np.abs(A[:, None, :] - B[None, :, :]).sum(-1)
        else:
            raise ValueError(metric)
    return out


def make_check(metric, m, n):
    """The check of a case; the float64 reference is computed once per input set and shared by
    every implementation (at the large shapes it costs seconds)."""
    cache = []      # [(weakref to a, weakref to b, reference)]: holds no input alive

    def check(get_rows, inputs):
        a, b = inputs
        rows = check_rows(m, m * n)
        if not (cache and cache[0][0]() is a and cache[0][1]() is b):
            cache[:] = [(weakref.ref(a), weakref.ref(b), reference_rows(a, b, rows, metric))]
        return check_close(get_rows(rows), cache[0][2])
    return check


# --------------------------------------------------------------------------------------------
# implementations


def _numpy_fn(metric):
    def gemm_sq(a, b):
        out = a @ b.T
        out *= -2.0
        out += np.einsum("ij,ij->i", a, a)[:, None]
        out += np.einsum("ij,ij->i", b, b)[None, :]
        np.maximum(out, 0.0, out=out)
        return out

    if metric == "sqeuclidean":
        return gemm_sq
    if metric == "euclidean":
        return lambda a, b: _sqrt_inplace(gemm_sq(a, b))
    if metric == "cosine":
        def cos(a, b):
            an = a / np.linalg.norm(a, axis=1, keepdims=True)
            bn = b / np.linalg.norm(b, axis=1, keepdims=True)
            out = an @ bn.T
            np.subtract(1.0, out, out=out)
            return out
        return cos
    if metric == "cityblock":
        def l1(a, b):
            m, d = a.shape
            n = b.shape[0]
            out = np.empty((m, n), np.float32)
            bs = max(1, (64 << 20) // max(1, 4 * n * d))
            for i in range(0, m, bs):
                out[i:i + bs] = np.abs(a[i:i + bs, None, :] - b[None, :, :]).sum(-1)
            return out
        return l1
    raise ValueError(metric)


def _sqrt_inplace(x):
    np.sqrt(x, out=x)
    return x


def _torch_fn(torch, metric, mm=False):
    F = torch.nn.functional
    if mm:
        def sq(a, b):
            out = torch.addmm((b * b).sum(1)[None, :], a, b.T, alpha=-2.0)
            return out.add_((a * a).sum(1)[:, None]).clamp_min_(0.0)
        if metric == "sqeuclidean":
            return sq
        if metric == "euclidean":
            return lambda a, b: sq(a, b).sqrt_()
        raise ValueError(metric)
    if metric == "euclidean":
        return lambda a, b: torch.cdist(a, b)
    if metric == "sqeuclidean":
        return lambda a, b: torch.cdist(a, b).pow_(2)
    if metric == "cityblock":
        return lambda a, b: torch.cdist(a, b, p=1.0)
    if metric == "cosine":
        return lambda a, b: torch.mm(F.normalize(a, dim=1), F.normalize(b, dim=1).T).neg_().add_(1.0)
    raise ValueError(metric)


def _cupy_fn(cp, metric):
    epi_sq = cp.ElementwiseKernel("float32 g, float32 x, float32 y", "float32 o",
                                  "o = max(x + y - 2.0f * g, 0.0f)", "bench_cdist_sq")
    epi_l2 = cp.ElementwiseKernel("float32 g, float32 x, float32 y", "float32 o",
                                  "o = sqrt(max(x + y - 2.0f * g, 0.0f))", "bench_cdist_l2")
    epi_cos = cp.ElementwiseKernel("float32 g, float32 x, float32 y", "float32 o",
                                   "o = 1.0f - g * x * y", "bench_cdist_cos")

    def run(a, b):
        g = a @ b.T
        if metric == "cosine":
            ia = 1.0 / cp.sqrt((a * a).sum(1))
            ib = 1.0 / cp.sqrt((b * b).sum(1))
            return epi_cos(g, ia[:, None], ib[None, :])
        aa = (a * a).sum(1)[:, None]
        bb = (b * b).sum(1)[None, :]
        # A fresh output rather than in place: the same bytes move, and no aliasing question.
        return (epi_sq if metric == "sqeuclidean" else epi_l2)(g, aa, bb)
    return run


def impl_vaccel(P, metric, m, n, d):
    V = P.vaccel

    def prepare(sets):
        dev = [(V.asarray(a), V.asarray(b)) for a, b in sets]
        out = V.empty((m, n), np.float32)

        def run(i):
            xa, xb = dev[i]
            return V.cdist(xa, xb, metric, out=out)
        return run
    probe = vaccel_peak_mem(V)
    return Impl("vaccel", prepare, fetch_vaccel, V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="inputs and output resident on the device (out=)")


def impl_vaccel_host(P, metric, m, n, d):
    if 4 * m * n > HOST_OUTPUT_LIMIT:
        raise Skip(f"the {4 * m * n / 2**30:.0f} GiB output would go to the host")
    V = P.vaccel

    def prepare(sets):
        return lambda i: V.cdist(sets[i][0], sets[i][1], metric)
    probe = vaccel_peak_mem(V)
    return Impl("vaccel-host", prepare, fetch_numpy, V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="NumPy in, NumPy out (transfers included)")


def _cpu_limit(metric, m, n, d, gemm_capable=True):
    lim = CPU_PEER_MAX_GEMM_WORK if (gemm_capable and metric in GEMM_FORM) else CPU_PEER_MAX_LOOP_WORK
    if m * n * d > lim:
        raise Skip(f"m*n*d={m * n * d:.2g} above the CPU peer limit {lim:.2g}")


def impl_scipy(P, metric, m, n, d):
    if P.scipy_distance is None:
        return None
    _cpu_limit(metric, m, n, d, gemm_capable=False)
    cd = P.scipy_distance.cdist
    return Impl("scipy", lambda sets: (lambda i: cd(sets[i][0], sets[i][1], metric)), fetch_numpy,
                P.sync_none, "host", P.host_name(), mem=host_peak_mem, mem_source="tracemalloc",
                note="float64 output")


def impl_numpy(P, metric, m, n, d):
    _cpu_limit(metric, m, n, d)
    fn = _numpy_fn(metric)
    return Impl("numpy", lambda sets: (lambda i: fn(*sets[i])), fetch_numpy, P.sync_none, "host",
                P.host_name(), mem=host_peak_mem, mem_source="tracemalloc",
                note="cityblock by broadcasting blocks" if metric == "cityblock" else "GEMM form")


def _faiss_metric(faiss, metric):
    return faiss.METRIC_L1 if metric == "cityblock" else (
        faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2)


def impl_faiss(P, metric, m, n, d):
    if P.faiss is None:
        return None
    _cpu_limit(metric, m, n, d)
    faiss = P.faiss
    fm = _faiss_metric(faiss, metric)

    def fn(a, b):
        if metric == "cosine":
            a, b = a.copy(), b.copy()
            faiss.normalize_L2(a)
            faiss.normalize_L2(b)
        out = faiss.pairwise_distances(a, b, fm)
        if metric == "euclidean":
            np.sqrt(out, out=out)
        elif metric == "cosine":
            np.subtract(1.0, out, out=out)
        return out
    return Impl("faiss", lambda sets: (lambda i: fn(*sets[i])), fetch_numpy, P.sync_none, "host",
                P.host_name(), mem=host_peak_mem, mem_source="tracemalloc",
                note="pairwise_distances" + (" + sqrt" if metric == "euclidean" else ""))


def impl_torch_cpu(P, metric, m, n, d):
    if P.torch is None or P.torch_cuda:
        return None     # on a CUDA machine the CPU build of the same library adds nothing
    _cpu_limit(metric, m, n, d)
    torch = P.torch
    fn = _torch_fn(torch, metric)

    def prepare(sets):
        ts = [(torch.from_numpy(a), torch.from_numpy(b)) for a, b in sets]
        return lambda i: fn(*ts[i])
    return Impl("torch-cpu", prepare, fetch_torch, P.sync_none, "host", P.host_name(),
                note="torch.cdist" if metric != "cosine" else "normalize + mm")


def _torch_cuda_impl(P, metric, name, mm):
    torch = P.torch
    fn = _torch_fn(torch, metric, mm=mm)

    def prepare(sets):
        ts = [(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()) for a, b in sets]
        return lambda i: fn(*ts[i])
    note = ("addmm GEMM form" if mm else
            {"sqeuclidean": "torch.cdist(...).pow_(2)", "euclidean": "torch.cdist (mm path)",
             "cityblock": "torch.cdist p=1", "cosine": "normalize + mm"}[metric])
    return Impl(name, prepare, fetch_torch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note=note + ", TF32 off")


def impl_torch_cuda(P, metric, m, n, d):
    if not P.torch_cuda:
        return None
    return _torch_cuda_impl(P, metric, "torch-cuda", mm=False)


def impl_torch_cuda_mm(P, metric, m, n, d):
    if not P.torch_cuda or metric not in ("sqeuclidean", "euclidean"):
        return None
    return _torch_cuda_impl(P, metric, "torch-cuda-mm", mm=True)


def impl_cupy(P, metric, m, n, d):
    if P.cupy is None:
        return None
    if metric == "cityblock":
        raise Skip("CuPy has no cityblock cdist without pylibraft")
    cp = P.cupy
    fn = _cupy_fn(cp, metric)

    def prepare(sets):
        cs = [(cp.asarray(a), cp.asarray(b)) for a, b in sets]
        return lambda i: fn(*cs[i])
    return Impl("cupy", prepare, fetch_cupy, P.sync_cupy, "device", P.cuda_device_name(),
                mem=cupy_peak_mem(cp), mem_source="cupy pool growth",
                note="cuBLAS GEMM + fused epilogue")


def impl_faiss_gpu(P, metric, m, n, d):
    if not (P.faiss_gpu and P.torch_cuda):
        return None
    faiss, torch = P.faiss, P.torch
    import faiss.contrib.torch_utils  # noqa: F401  (lets pairwise_distance_gpu take torch tensors)
    fm = _faiss_metric(faiss, metric)
    res = faiss.StandardGpuResources()

    def prepare(sets):
        ts = [(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()) for a, b in sets]

        def run(i):
            a, b = ts[i]
            if metric == "cosine":
                a = torch.nn.functional.normalize(a, dim=1)
                b = torch.nn.functional.normalize(b, dim=1)
            out = faiss.pairwise_distance_gpu(res, a, b, metric=fm)
            if metric == "euclidean":
                out.sqrt_()
            elif metric == "cosine":
                out.neg_().add_(1.0)
            return out
        return run
    return Impl("faiss-gpu", prepare, fetch_torch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note="pairwise_distance_gpu on torch tensors")


FACTORIES = [(f.__name__[5:].replace("_", "-"), f) for f in
             (impl_vaccel, impl_vaccel_host, impl_torch_cuda, impl_torch_cuda_mm, impl_cupy, impl_faiss_gpu,
              impl_scipy, impl_numpy, impl_faiss, impl_torch_cpu)]


def make_case(P, metric, m, n, d, headline=False):
    impls, skipped = collect_impls(P, FACTORIES, metric, m, n, d)

    def make_inputs(rng):
        return (rng.standard_normal((m, d), dtype=np.float32),
                rng.standard_normal((n, d), dtype=np.float32))

    return Case(
        name=f"cdist/{metric}/{m}x{n}x{d}", family="cdist", op=f"cdist/{metric}",
        params={"metric": metric, "m": m, "n": n, "d": d, "dtype": "float32", "headline": headline},
        make_inputs=make_inputs, impls=impls, check=make_check(metric, m, n),
        flops=2.0 * m * n * d, bytes=4.0 * (m * d + n * d + m * n), unit="GFLOP/s",
        size=float(m) * n * d, skipped=skipped,
        max_repeats=LARGE_REPEATS if m * n * d >= LARGE_WORK else None,
        warmup=1 if m * n * d >= LARGE_WORK else 2,
        priority=0 if headline else 1,
    )


@register
def cdist_cases(ctx):
    P = ctx.peers
    sizes = QUICK_SIZES if ctx.quick else FULL_SIZES
    for metric in METRICS:
        for m, n, d in sizes:
            yield make_case(P, metric, m, n, d)
    if not ctx.quick:
        for metric in HEADLINE_METRICS:
            yield make_case(P, metric, *HEADLINE, headline=True)
