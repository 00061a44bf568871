"""The measuring machinery: case registry, timing, correctness gate, floors and records.

A case is one problem (an op at one shape) with several implementations of it: vaccel and its
peers. For every implementation the harness
  1. moves the inputs where that implementation wants them (device or host), untimed;
  2. runs it once and checks the result against a float64 NumPy reference (a random subset of
     rows on large outputs) -- an implementation that is wrong is recorded with correct=False and
     never timed; a timed record says correct=True (None where the case has no check);
  3. warms up (on a GPU for at least WARMUP_S: its clocks rise only under load), measures its
     peak extra memory over one call (vaccel: memory_stats), then times `repeats` calls (at
     most `max_repeats` for large cases), each bracketed by the implementation's own
     synchronize, rotating over several input sets so that together they exceed the GPU's L2
     (unless --quick);
  4. records median/min time, throughput, the floor (the larger of bytes / measured bandwidth
     and flops / measured GEMM rate) and, for vaccel rows, the ratio to each peer.

Op families register case generators with @register; each file in benchmarks/cases/ is one
family, imported automatically.
"""

import gc
import math
import re
import time
import tracemalloc
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np

from .ceilings import bandwidth

L2_BYTES = 50 * 10**6          # H100 L2; rotation makes the input working set exceed twice this
MAX_INPUT_SETS = 64
WARMUP_S = 0.4                 # device implementations warm up for at least this long (clocks)
MAX_WARMUP_CALLS = 10000
CPU_PEER_MAX_GEMM_WORK = 2**34   # m*n*d above which CPU peers (GEMM-form) are not run
CPU_PEER_MAX_LOOP_WORK = 2**30   # m*n*d above which CPU peers without BLAS are not run


class Skip(Exception):
    """Raised by an implementation (or its preparation) that cannot run this case here."""


class WrongResult(AssertionError):
    """The implementation's first result failed the case's check: it is recorded, never timed."""


@dataclass
class Impl:
    """One implementation of a case.

    prepare(input_sets) -> run(i): moves every input set where the implementation needs it
        (untimed) and returns the function that computes input set i and returns its result.
    fetch(result, rows) -> ndarray: brings rows `rows` (None: all) of a result to the host.
    sync(): waits for the implementation's queued work.
    """
    name: str
    prepare: Callable[[list], Callable[[int], Any]]
    fetch: Callable[[Any, Any], np.ndarray]
    sync: Callable[[], None]
    where: str = "device"          # 'device' or 'host': which ceilings give its floor
    device: str = ""
    mem: Optional[Callable[[Callable[[], Any]], Optional[int]]] = None  # peak extra bytes of one call
    mem_source: Optional[str] = None
    note: str = ""


@dataclass
class Case:
    name: str
    family: str
    op: str                        # groups cases of different sizes in plots, e.g. 'cdist/euclidean'
    params: dict
    make_inputs: Callable[[np.random.Generator], tuple]
    impls: list
    # check(get_rows, inputs) -> None (correct) or a message; or a dict whose 'error' entry is
    # that verdict and whose other entries are added to the record (knn: recall)
    check: Optional[Callable[[Callable, tuple], Any]] = None
    flops: Optional[float] = None  # useful operations (for the GEMM floor and GFLOP/s)
    bytes: Optional[float] = None  # bytes that must move at least (for the bandwidth floor)
    unit: str = "GFLOP/s"          # 'GFLOP/s', 'GB/s' or 'call/s'
    size: Optional[float] = None   # x axis of the throughput plots
    rotate: bool = True
    repeats: Optional[int] = None  # fixed repeats (e.g. latency cases), overrides --repeats
    max_repeats: Optional[int] = None  # a cap on --repeats for large cases (seconds per call)
    warmup: int = 2
    priority: int = 1              # 0: the cases a short run must not lose; run first
    skipped: dict = field(default_factory=dict)   # impl name -> reason it is not offered here
    has_floor: bool = True         # False where no ceiling we measure bounds it (PCIe, latency)
    gemm_rate: str = ""            # which GEMM ceiling bounds its flops: "" fp32, "_f16" fp16
    note: str = ""


@dataclass
class Context:
    """What case generators may look at."""
    quick: bool
    peers: Any
    ceilings: dict = field(default_factory=dict)


_REGISTRY = []


def register(fn):
    """Decorator for a case generator: fn(ctx: Context) -> iterable of Case."""
    _REGISTRY.append(fn)
    return fn


def collect_impls(P, factories, *args):
    """(impls, skipped) of a case: each factory(P, *args) of (name, factory) pairs gives an Impl,
    None (not offered here: nothing recorded) or raises Skip (recorded as skipped with the
    reason). The vaccel factories (names 'vaccel...') are not called when vaccel is missing."""
    impls, skipped = [], {}
    if P.vaccel is None:
        skipped["vaccel"] = "vaccel not importable (see the header)"
    for name, factory in factories:
        if P.vaccel is None and name.startswith("vaccel"):
            continue
        try:
            impl = factory(P, *args)
        except Skip as e:
            skipped[name] = str(e)
            continue
        if impl is not None:
            impls.append(impl)
    return impls, skipped


def load_cases(ctx):
    from . import cases  # noqa: F401  (imports every family module, which registers itself)
    out = []
    for gen in _REGISTRY:
        out.extend(gen(ctx))
    out.sort(key=lambda c: c.priority)     # stable: families keep their own order within a rank
    return out


def select(cases, pattern):
    if not pattern:
        return cases
    try:
        rx = re.compile(pattern)
        return [c for c in cases if rx.search(c.name)]
    except re.error:
        return [c for c in cases if pattern in c.name]


# --------------------------------------------------------------------------------------------
# memory probes


def host_peak_mem(call):
    """Peak bytes NumPy allocates during one call (tracemalloc sees NumPy's data allocations)."""
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        r = call()
        peak = tracemalloc.get_traced_memory()[1] - base
        del r
    finally:
        tracemalloc.stop()
    return max(int(peak), 0)


def torch_peak_mem(torch):
    def probe(call):
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        r = call()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        del r
        return max(int(peak), 0)
    return probe


def cupy_peak_mem(cupy):
    def probe(call):
        pool = cupy.get_default_memory_pool()
        cupy.cuda.get_current_stream().synchronize()
        pool.free_all_blocks()
        base = pool.used_bytes()
        r = call()
        cupy.cuda.get_current_stream().synchronize()
        peak = pool.total_bytes() - base     # the pool grows to the peak of live blocks
        del r
        return max(int(peak), 0)
    return probe


def vaccel_peak_mem(vaccel):
    """Peak extra device bytes of one vaccel call, from vaccel.memory_stats(): the peak restarts
    (reset_peak=True) just before the call, and the probe reports device_bytes_peak after it minus
    device_bytes_in_use before it. None (no probe) where vaccel has no device memory to report."""
    stats = getattr(vaccel, "memory_stats", None)
    if stats is None:
        return None
    try:
        if vaccel.get_backend() != "vulkan":
            return None
        mem0 = stats()
    except Exception:
        return None
    if "device_bytes_peak" not in mem0 or "device_bytes_in_use" not in mem0:
        return None

    def probe(call):
        vaccel.synchronize()
        before = stats(reset_peak=True)["device_bytes_in_use"]
        r = call()
        vaccel.synchronize()
        peak = stats()["device_bytes_peak"]
        del r
        return max(int(peak) - int(before), 0)
    return probe


# --------------------------------------------------------------------------------------------
# running


def _is_oom(exc, peers):
    if isinstance(exc, MemoryError):
        return True
    v = peers.vaccel
    if v is not None and isinstance(exc, getattr(v, "OutOfDeviceMemory", ())):
        return True
    t = peers.torch
    if t is not None and isinstance(exc, getattr(t.cuda, "OutOfMemoryError", ())):
        return True
    c = peers.cupy
    if c is not None:
        try:
            if isinstance(exc, c.cuda.memory.OutOfMemoryError):
                return True
        except AttributeError:
            pass
    return "out of memory" in str(exc).lower()


def _is_unavailable(exc, peers):
    v = peers.vaccel
    kinds = tuple(getattr(v, k) for k in ("DeviceNotAvailable", "FeatureNotSupported")
                  if v is not None and hasattr(v, k))
    return bool(kinds) and isinstance(exc, kinds)


def _release(peers):
    gc.collect()
    if peers.torch_cuda:
        peers.torch.cuda.empty_cache()
    if peers.cupy is not None:
        try:
            peers.cupy.get_default_memory_pool().free_all_blocks()
        except Exception:
            pass


def n_input_sets(case, input_bytes, quick):
    if quick or not case.rotate:
        return 1
    return int(min(MAX_INPUT_SETS, max(2, math.ceil(2 * L2_BYTES / max(input_bytes, 1)))))


def floors(case, impl, ceilings):
    """(floor_s, {'gemm': s, 'bytes': s}) using the ceilings of the processor impl runs on."""
    side = "device" if impl.where == "device" else "host"
    bw = bandwidth(ceilings, side)
    rate = ceilings.get(f"{side}_gemm{case.gemm_rate}_GFLOPs")
    parts = {}
    if not case.has_floor:
        return None, parts
    if case.flops and rate:
        parts["gemm"] = case.flops / (rate * 1e9)
    if case.bytes and bw:
        parts["bytes"] = case.bytes / (bw * 1e9)
    return (max(parts.values()) if parts else None), parts


def _throughput(case, t):
    if not t:
        return None
    if case.unit == "GFLOP/s":
        return case.flops / t / 1e9 if case.flops else None
    if case.unit == "GB/s":
        return case.bytes / t / 1e9 if case.bytes else None
    if case.unit == "call/s":
        return 1.0 / t
    return None


def _base_record(case, impl):
    return {
        "case": case.name, "family": case.family, "op": case.op, "impl": impl,
        "params": dict(case.params), "unit": case.unit,
        "flops": case.flops, "bytes": case.bytes, "size": case.size,
    }


def run_case(case, ctx, repeats, budget_s, log=print):
    """Run every implementation of a case; returns the list of records (ok, skipped, error)."""
    peers = ctx.peers
    records = []
    not_offered = []
    for name, reason in case.skipped.items():
        r = _base_record(case, name)
        r.update(status="skipped", reason=reason)
        not_offered.append(r)
    if not case.impls:
        return not_offered

    rng = np.random.default_rng(zlib.crc32(case.name.encode()))
    try:
        first = case.make_inputs(rng)
        input_bytes = sum(getattr(x, "nbytes", 0) for x in first)
        sets = [first] + [case.make_inputs(rng)
                          for _ in range(n_input_sets(case, input_bytes, ctx.quick) - 1)]
    except MemoryError as e:
        for impl in case.impls:
            r = _base_record(case, impl.name)
            r.update(status="skipped", reason=f"host memory: {e}")
            records.append(r)
        return records + not_offered

    for impl in case.impls:
        rec = _base_record(case, impl.name)
        rec.update(device=impl.device, where=impl.where, note=impl.note, input_sets=len(sets))
        try:
            rec.update(_measure(case, impl, sets, repeats, budget_s, ctx))
        except Skip as e:
            rec.update(status="skipped", reason=str(e))
        except WrongResult as e:
            rec.update(status="error", correct=False, reason=str(e))
        except Exception as e:  # noqa: BLE001 -- one broken implementation must not stop the run
            if _is_oom(e, peers):
                rec.update(status="skipped", reason=f"out of memory: {type(e).__name__}: {e}")
            elif _is_unavailable(e, peers):
                rec.update(status="skipped", reason=f"{type(e).__name__}: {e}")
            else:
                rec.update(status="error", reason=f"{type(e).__name__}: {e}")
        finally:
            _release(peers)
        records.append(rec)

    _add_ratios(records)
    return records + not_offered


def _measure(case, impl, sets, repeats, budget_s, ctx):
    run = impl.prepare(sets)
    impl.sync()
    k = len(sets)

    # Correctness gate: the first result of input set 0, against the case's reference.
    res = run(0)
    impl.sync()
    correct = None
    extra = {}
    if case.check is not None:
        err = case.check(lambda rows: impl.fetch(res, rows), sets[0])
        if isinstance(err, dict):
            extra = {k: v for k, v in err.items() if k != "error"}
            err = err.get("error")
        if err:
            raise WrongResult(f"wrong result: {err}")
        correct = True
    del res

    # Warm-up: case.warmup calls, and on a GPU at least WARMUP_S of back-to-back calls. A GPU
    # left idle (inputs made on the host between cases) raises its clocks only after a few hundred
    # ms of load: on the H100 an add over 2^28 floats took 1.82 ms a call for the first 0.4 s of
    # calls, then 1.05 ms. Without this the first implementation of a case is timed cold and the
    # next one warm. Each call is waited for, as in the timed loop (an asynchronous peer would
    # otherwise queue seconds of work).
    started = time.perf_counter()
    w = 0
    while w < case.warmup or (impl.where == "device" and time.perf_counter() - started < WARMUP_S
                              and w < MAX_WARMUP_CALLS):
        run(w % k)
        impl.sync()
        w += 1

    peak = None
    if impl.mem is not None:
        try:
            peak = impl.mem(lambda: run(0))
        except Exception:
            peak = None
        impl.sync()

    n = case.repeats or (min(repeats, case.max_repeats) if case.max_repeats else repeats)
    min_repeats = min(n, 3)
    times = []
    started = time.perf_counter()
    for i in range(n):
        impl.sync()
        t0 = time.perf_counter()
        out = run(i % k)
        impl.sync()
        t1 = time.perf_counter()
        times.append(t1 - t0)
        del out
        if i + 1 >= min_repeats and t1 - started > budget_s and case.repeats is None:
            break
    del run

    med = float(np.median(times))
    floor_s, parts = floors(case, impl, ctx.ceilings)
    return {
        "status": "ok",
        "correct": correct,        # True: checked against the reference; None: no check exists
        "median_s": med,
        "min_s": float(np.min(times)),
        "repeats": len(times),
        "throughput": _throughput(case, med),
        "floor_s": floor_s,
        "floors_s": parts,
        "fraction_of_floor": (floor_s / med) if floor_s else None,
        "peak_mem_bytes": peak,
        "peak_mem_source": impl.mem_source if peak is not None else None,
        **({"per_iteration_s": med / case.params["iterations"]} if case.params.get("iterations") else {}),
        **extra,
    }


def _add_ratios(records):
    ok = [r for r in records if r.get("status") == "ok"]
    for r in ok:
        if not r["impl"].startswith("vaccel"):
            continue
        for p in ok:
            if p["impl"].startswith("vaccel"):
                continue
            r[f"ratio_vs_{p['impl']}"] = p["median_s"] / r["median_s"]


# --------------------------------------------------------------------------------------------
# correctness helpers shared by families


def check_close(got, ref, rtol=1e-3):
    """None if got matches ref to rtol, scaled by the largest reference magnitude for entries
    near zero (cancellation in GEMM-form distances); else a message."""
    got = np.asarray(got)
    if got.shape != ref.shape:
        return f"shape {got.shape}, expected {ref.shape}"
    got = got.astype(np.float64)
    finite = np.isfinite(ref)
    if not np.array_equal(np.isfinite(got), finite):
        return "non-finite values where the reference is finite (or the reverse)"
    scale = float(np.max(np.abs(ref[finite]))) if finite.any() else 0.0
    err = np.abs(got[finite] - ref[finite])
    tol = rtol * np.abs(ref[finite]) + rtol * scale
    bad = err > tol
    if bad.any():
        i = int(np.argmax(err - tol))
        return (f"{int(bad.sum())} of {err.size} entries off; worst |err|={err[i]:.3g} "
                f"(ref {ref[finite][i]:.6g}, tol {tol[i]:.3g})")
    return None


def check_rows(n_rows, total_elems, rng_seed=0, max_full=1 << 22, n_random=8):
    """Rows to verify: all of them for small outputs, else first, last and a few random ones."""
    if total_elems <= max_full:
        return None
    rng = np.random.default_rng(rng_seed)
    rows = set(rng.integers(0, n_rows, n_random).tolist()) | {0, n_rows - 1}
    return np.array(sorted(rows), dtype=np.int64)
