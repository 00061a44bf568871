"""Ceilings measured in the same run, from which every case's floor is computed.

device_copy_GBps   vaccel's device-to-device copy shader (Array.copy), (read + write) bytes / s
device_gemm_GFLOPs fp32 GEMM rate of the device: torch.cuda mm with TF32 off at 8192^3 when CUDA
                   is there; otherwise NumPy's fp32 matmul on the CPU (right for lavapipe, where
                   the "device" is the CPU)
device_gemm_f16_GFLOPs  fp16 GEMM rate (float32 accumulation): torch.cuda mm at 8192^3, when CUDA is
                   there; the floor of float16 matmul cases
device_gemm_bf16_GFLOPs bf16 GEMM rate (float32 accumulation), likewise; the floor of bfloat16 cases
host_copy_GBps     NumPy copy of a large array, (read + write) bytes / s
host_gemm_GFLOPs   NumPy fp32 matmul
torch_copy_GBps    torch.cuda clone, beside vaccel's copy

The bytes floor of a device case uses the best copy rate measured on the device in the run (the
larger of device_copy_GBps and torch_copy_GBps, see bandwidth()). Both are measured after at least
0.4 s of warm-up: an idle GPU raises its clocks only under load (on the H100 our copy kernel read
1.55 TB/s cold, 2.9 TB/s warm; torch's clone 2.7-2.8).
"""

import time

import numpy as np

MiB = 1 << 20


def _best_time(fn, sync, repeats, warmup=2, warmup_s=0.0):
    """Fastest of `repeats` calls: a ceiling is what the machine can reach, not what it usually does.
    warmup_s: keep warming up (each call waited for) until that long has passed: a GPU raises its
    clocks only after a few hundred ms of load (see harness.WARMUP_S)."""
    started = time.perf_counter()
    w = 0
    while w < warmup or time.perf_counter() - started < warmup_s:
        fn()
        sync()
        w += 1
    ts = []
    for _ in range(repeats):
        sync()
        t0 = time.perf_counter()
        r = fn()
        sync()
        ts.append(time.perf_counter() - t0)
        del r
    return float(np.min(ts))


def host_copy(quick):
    n = (64 if quick else 512) * MiB // 4
    src = np.random.default_rng(1).standard_normal(n, dtype=np.float32)
    dst = np.empty_like(src)
    t = _best_time(lambda: np.copyto(dst, src), lambda: None, 5 if quick else 10)
    return 2 * src.nbytes / t / 1e9, f"numpy copyto {src.nbytes // MiB} MiB"


def host_gemm(quick):
    n = 2048 if quick else 4096
    rng = np.random.default_rng(2)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    c = np.empty((n, n), np.float32)
    t = _best_time(lambda: np.matmul(a, b, out=c), lambda: None, 3 if quick else 5, warmup=1)
    return 2 * n**3 / t / 1e9, f"numpy fp32 matmul {n}^3 (CPU)"


def vaccel_copy(peers, quick):
    """A chain of copies recorded back to back in one batch, each reading what the one before
    wrote (x -> y -> x -> ...), timed by the wall clock over the whole batch: the rate one copy
    sustains in real use. The batch is long (tens of copies) so that its one submit and wait cost
    about 1 % of it. (Independent copies would overlap on the GPU and compete for memory; per-
    dispatch timestamps of such copies read 1.6 TB/s on the H100 for a kernel that moves more.)"""
    v = peers.vaccel
    from vaccel import runtime
    nbytes = (64 if quick else 256) * MiB
    copies = 8 if quick else 24
    host = np.random.default_rng(3).standard_normal(nbytes // 4, dtype=np.float32)
    pair = [v.asarray(host), v.empty(host.shape, host.dtype)]
    del host
    v.synchronize()

    def chain():
        with v.batch():
            stream = runtime._stream()
            for i in range(copies):
                a, b = pair[i % 2], pair[1 - i % 2]
                stream.copy(a._buf, a._offset, b._buf, b._offset, nbytes)

    t = _best_time(chain, v.synchronize, 3 if quick else 5, warmup_s=0.4)
    return (2 * nbytes * copies / t / 1e9,
            f"vaccel copy kernel {nbytes // MiB} MiB, a chain of {copies} in one batch, wall clock")


def torch_gemm(peers):
    torch = peers.torch
    torch.backends.cuda.matmul.allow_tf32 = False
    n = 8192
    g = torch.Generator(device="cuda").manual_seed(4)
    a = torch.randn(n, n, device="cuda", generator=g)
    b = torch.randn(n, n, device="cuda", generator=g)
    c = torch.empty(n, n, device="cuda")
    t = _best_time(lambda: torch.mm(a, b, out=c), torch.cuda.synchronize, 10, warmup_s=0.4)
    del a, b, c
    torch.cuda.empty_cache()
    return 2 * n**3 / t / 1e9, f"torch.cuda fp32 mm {n}^3, TF32 off"


def torch_gemm_f16(peers, dtype="float16"):
    torch = peers.torch
    n = 8192
    tdt = getattr(torch, dtype)
    g = torch.Generator(device="cuda").manual_seed(5)
    a = torch.randn(n, n, device="cuda", generator=g, dtype=tdt)
    b = torch.randn(n, n, device="cuda", generator=g, dtype=tdt)
    c = torch.empty(n, n, device="cuda", dtype=tdt)
    t = _best_time(lambda: torch.mm(a, b, out=c), torch.cuda.synchronize, 10, warmup_s=0.4)
    del a, b, c
    torch.cuda.empty_cache()
    name = "fp16" if dtype == "float16" else "bf16"
    return 2 * n**3 / t / 1e9, f"torch.cuda {name} mm {n}^3 (float32 accumulation)"


def torch_copy(peers):
    torch = peers.torch
    x = torch.empty(256 * MiB // 4, device="cuda").normal_()
    t = _best_time(lambda: x.clone(), torch.cuda.synchronize, 20, warmup_s=0.4)
    nbytes = x.numel() * 4
    del x
    torch.cuda.empty_cache()
    return 2 * nbytes / t / 1e9, "torch.cuda clone 256 MiB"


def measure(peers, quick, log=print):
    c = {}

    def attempt(key, fn, *args):
        try:
            val, how = fn(*args)
            c[key] = val
            c[key.rsplit("_", 1)[0] + "_source"] = how
        except Exception as e:  # noqa: BLE001 -- a missing ceiling only removes floors
            c[key] = None
            c[key.rsplit("_", 1)[0] + "_error"] = f"{type(e).__name__}: {e}"
            log(f"  ceiling {key}: not measured ({type(e).__name__}: {e})")

    attempt("host_copy_GBps", host_copy, quick)
    attempt("host_gemm_GFLOPs", host_gemm, quick)
    if peers.vaccel is not None:
        attempt("device_copy_GBps", vaccel_copy, peers, quick)
    else:
        c["device_copy_GBps"] = None
        c["device_copy_error"] = "vaccel not importable"
    if peers.torch_cuda:
        attempt("device_gemm_GFLOPs", torch_gemm, peers)
        attempt("device_gemm_f16_GFLOPs", torch_gemm_f16, peers)
        attempt("device_gemm_bf16_GFLOPs", torch_gemm_f16, peers, "bfloat16")
        attempt("torch_copy_GBps", torch_copy, peers)
    else:
        c["device_gemm_GFLOPs"] = c.get("host_gemm_GFLOPs")
        c["device_gemm_source"] = (c.get("host_gemm_source") or "") + "; no CUDA, the host's rate stands in"
    return c


def bandwidth(c, side):
    """Bytes/s ceiling (GB/s) for floors on `side` ('device' or 'host'): the best copy rate
    measured there in this run."""
    if side == "host":
        return c.get("host_copy_GBps")
    rates = [v for v in (c.get("device_copy_GBps"), c.get("torch_copy_GBps")) if v]
    return max(rates) if rates else None


def describe(c):
    def f(v, unit):
        return "n/a" if v is None else f"{v:,.1f} {unit}"
    lines = [
        f"  device copy  {f(c.get('device_copy_GBps'), 'GB/s'):>18}   {c.get('device_copy_source', c.get('device_copy_error', ''))}",
        f"  device GEMM  {f(c.get('device_gemm_GFLOPs'), 'GFLOP/s'):>18}   {c.get('device_gemm_source', c.get('device_gemm_error', ''))}",
        f"  host copy    {f(c.get('host_copy_GBps'), 'GB/s'):>18}   {c.get('host_copy_source', '')}",
        f"  device f16 GEMM {f(c.get('device_gemm_f16_GFLOPs'), 'GFLOP/s'):>15}   {c.get('device_gemm_f16_source', c.get('device_gemm_f16_error', ''))}",
        f"  device bf16 GEMM {f(c.get('device_gemm_bf16_GFLOPs'), 'GFLOP/s'):>14}   {c.get('device_gemm_bf16_source', c.get('device_gemm_bf16_error', ''))}",
        f"  host GEMM    {f(c.get('host_gemm_GFLOPs'), 'GFLOP/s'):>18}   {c.get('host_gemm_source', '')}",
    ]
    if c.get("torch_copy_GBps"):
        lines.append(f"  torch copy   {f(c['torch_copy_GBps'], 'GB/s'):>18}   {c.get('torch_copy_source', '')}")
    return "\n".join(lines)
