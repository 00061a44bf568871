"""reductions: vaccel.sum / argmax / var (axis=0) and vaccel.histogram against PyTorch, CuPy and
NumPy.

reduce/sum/<n>           sum of n float32 values (2^28 on a GPU: 1 GiB, far beyond L2)
reduce/argmax/<n>        index of the largest of n float32 values (first of ties)
reduce/var-axis0/<m>x<d> column variances of an (m, d) float32 matrix: a reduction down a
                         non-contiguous axis (coalesced reads across columns, rows split over
                         workgroups, then merged)
reduce/mean-axis1/<m>x<d> row means of an (m, d) float32 matrix, d = 128: many short contiguous
                         rows (an embedding's mean, say); m results of 4 bytes, brought to the
                         host by every implementation (vaccel returns NumPy; the peers' .cpu() /
                         .get() are timed too)
histogram/<n>/bins=256   numpy.histogram(x, 256) of n float32 values (edges from the data's extremes,
                         then the counts: vaccel reads x twice, once for min/max and once to count)

Bytes counted: 4*n (the input read once; results are noise); no flops. The floor is those bytes
over the measured copy bandwidth. vaccel runs on a resident vaccel.Array and returns NumPy results
(the call includes their download); torch-cuda and cupy on resident device arrays (their results
stay on the device until the check); numpy on the host, under a size limit.
Correctness: against NumPy in float64: values within 1e-4 relative, indices and counts exactly.
"""

import numpy as np

from ..harness import L2_BYTES, Case, Impl, register, vaccel_peak_mem
from ._common import standard_normal

QUICK_N = 1 << 20
FULL_N = 1 << 28
CPU_MAX_ELEMS = 1 << 26          # n above which the numpy peer is not run
HIST_BINS = 256


def _ops(kind):
    """(vaccel, torch, cupy, numpy) callables of one case kind."""
    if kind == "sum":
        return (lambda V, x: V.sum(x), lambda t, x: t.sum(x), lambda cp, x: cp.sum(x), lambda x: np.sum(x))
    if kind == "argmax":
        return (lambda V, x: V.argmax(x), lambda t, x: t.argmax(x), lambda cp, x: cp.argmax(x),
                lambda x: np.argmax(x))
    if kind == "var-axis0":
        return (lambda V, x: V.var(x, axis=0), lambda t, x: t.var(x, dim=0, unbiased=False),
                lambda cp, x: cp.var(x, axis=0), lambda x: np.var(x, axis=0))
    if kind == "mean-axis1":
        return (lambda V, x: V.mean(x, axis=1), lambda t, x: t.mean(x, dim=1).cpu(),
                lambda cp, x: cp.mean(x, axis=1).get(), lambda x: np.mean(x, axis=1))
    return (lambda V, x: V.histogram(x, HIST_BINS)[0],
            lambda t, x: t.histc(x, HIST_BINS, float(x.min()), float(x.max())),
            lambda cp, x: cp.histogram(x, HIST_BINS)[0], lambda x: np.histogram(x, HIST_BINS)[0])


def _fetch(res, rows):
    if hasattr(res, "get"):          # cupy
        return np.asarray(res.get())
    if hasattr(res, "cpu"):          # torch
        return res.cpu().numpy()
    return np.asarray(res)


def make_check(kind):
    def check(get_rows, inputs):
        x, = inputs
        got = np.asarray(get_rows(None))
        if kind == "sum":
            want = np.sum(x, dtype=np.float64)
            tol = 1e-4 * float(np.abs(x).sum(dtype=np.float64)) / max(1, x.size) ** 0.5
            return None if abs(float(got) - want) <= tol else f"sum {float(got)!r}, expected {want!r}"
        if kind == "argmax":
            want = int(np.argmax(x))
            return None if int(got) == want else f"argmax {int(got)}, expected {want}"
        if kind == "var-axis0":
            want = np.var(x.astype(np.float64), axis=0)
            bad = np.abs(got - want) > 1e-4 * np.abs(want) + 1e-6
            return None if not bad.any() else f"{int(bad.sum())} of {want.size} variances off"
        if kind == "mean-axis1":
            want = x.mean(axis=1, dtype=np.float64)
            bad = np.abs(got - want) > 1e-5 * np.abs(x).mean(axis=1, dtype=np.float64) + 1e-7
            return None if not bad.any() else f"{int(bad.sum())} of {want.size} means off"
        want = np.histogram(x, HIST_BINS)[0]
        # torch.histc's float bin arithmetic may move values that sit on an edge by one bin.
        diff = int(np.abs(got.astype(np.int64) - want).sum())
        allowed = 0 if got.dtype.kind in "iu" else 64     # histc returns float counts
        return None if diff <= allowed else f"{diff} values counted in other bins than numpy.histogram's"
    return check


def _impls(P, kind, n):
    fv, ft, fc, fn = _ops(kind)
    impls, skipped = [], {}
    if P.vaccel is not None:
        V = P.vaccel

        def prep_v(sets):
            dev = [V.asarray(s[0]) for s in sets]
            return lambda i: fv(V, dev[i])
        probe = vaccel_peak_mem(V)
        impls.append(Impl("vaccel", prep_v, _fetch, V.synchronize, "device", P.vaccel_device_name(),
                          mem=probe, mem_source="vaccel memory stats" if probe else None,
                          note="resident input; NumPy result"))
    else:
        skipped["vaccel"] = "vaccel not importable"
    if P.torch_cuda:
        torch = P.torch

        def prep_t(sets):
            ts = [torch.from_numpy(s[0]).cuda() for s in sets]
            return lambda i: ft(torch, ts[i])
        impls.append(Impl("torch-cuda", prep_t, _fetch, P.sync_torch, "device", P.cuda_device_name(),
                          note="histc (range from min/max)" if kind == "histogram" else ""))
    if P.cupy is not None:
        cp = P.cupy

        def prep_c(sets):
            cs = [cp.asarray(s[0]) for s in sets]
            return lambda i: fc(cp, cs[i])
        impls.append(Impl("cupy", prep_c, _fetch, P.sync_cupy, "device", P.cuda_device_name()))
    if n <= CPU_MAX_ELEMS:
        impls.append(Impl("numpy", lambda sets: (lambda i: fn(sets[i][0])), _fetch, P.sync_none, "host",
                          P.host_name()))
    else:
        skipped["numpy"] = f"n={n:.2g} above the host limit {CPU_MAX_ELEMS:.2g}"
    return impls, skipped


def make_case(P, kind, n):
    impls, skipped = _impls(P, kind, n)
    if kind in ("var-axis0", "mean-axis1"):
        d = 128
        shape, name = (n // d, d), f"reduce/{kind}/{n // d}x{d}"
    elif kind == "histogram":
        shape, name = (n,), f"histogram/{n}/bins={HIST_BINS}"
    else:
        shape, name = (n,), f"reduce/{kind}/{n}"
    return Case(
        name=name, family="reductions", op=name.rsplit("/", 1)[0] if kind != "histogram" else "histogram",
        params={"n": n, "shape": list(shape), "dtype": "float32"},
        make_inputs=lambda rng: (standard_normal(rng, shape),),
        impls=impls, check=make_check(kind), flops=None, bytes=4.0 * n, unit="GB/s", size=float(n),
        skipped=skipped, rotate=4 * n < 2 * L2_BYTES, max_repeats=20 if n >= FULL_N else None,
    )


@register
def reduction_cases(ctx):
    n = QUICK_N if ctx.quick else FULL_N
    for kind in ("sum", "argmax", "var-axis0", "mean-axis1", "histogram"):
        yield make_case(ctx.peers, kind, n)
