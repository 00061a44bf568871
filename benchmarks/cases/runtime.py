"""runtime: what every call pays, and how fast bytes move.

runtime/latency/cdist-8x8x8  one tiny cdist, median over 200 calls: vaccel from NumPy arrays
                             end to end (vaccel-host) and on resident arrays (vaccel), against
                             SciPy, NumPy, PyTorch and CuPy at the same size; GPU peers both from
                             NumPy to NumPy (torch-cuda, cupy) and on resident arrays
                             (torch-cuda-dev, cupy-dev), each call followed by its synchronize
runtime/copy/<N>MiB          device-to-device copy: vaccel Array.copy() then synchronize (the
                             bandwidth ceiling), torch clone, cupy copy, NumPy copy on the host;
                             bytes counted = read + write
runtime/upload/<N>MiB        host NumPy -> device: vaccel.asarray, torch .cuda(), cupy.asarray
runtime/download/<N>MiB      device -> host NumPy: Array.numpy(), torch .cpu().numpy(), cupy .get()
"""

import numpy as np

from ..harness import Case, Impl, register
from ._common import fetch_cupy, fetch_numpy, fetch_torch, fetch_vaccel
from .cdist import reference_rows

MiB = 1 << 20
LATENCY_SHAPE = (8, 8, 8)
LATENCY_CALLS = 200


def _latency_case(P):
    m, n, d = LATENCY_SHAPE
    metric = "sqeuclidean"
    impls = []
    V = P.vaccel
    if V is not None:
        impls.append(Impl("vaccel-host", lambda sets: (lambda i: V.cdist(sets[i][0], sets[i][1], metric)),
                          fetch_numpy, V.synchronize, "device", P.vaccel_device_name(),
                          note="NumPy in, NumPy out"))

        def prep_resident(sets):
            dev = [(V.asarray(a), V.asarray(b)) for a, b in sets]
            out = V.empty((m, n), np.float32)
            return lambda i: V.cdist(dev[i][0], dev[i][1], metric, out=out)
        impls.append(Impl("vaccel", prep_resident, fetch_vaccel, V.synchronize, "device",
                          P.vaccel_device_name(), note="resident arrays, out=, then synchronize"))
    if P.scipy_distance is not None:
        cd = P.scipy_distance.cdist
        impls.append(Impl("scipy", lambda sets: (lambda i: cd(sets[i][0], sets[i][1], metric)),
                          fetch_numpy, P.sync_none, "host", P.host_name()))

    def np_sq(a, b):
        t = a[:, None, :] - b[None, :, :]
        return np.einsum("ijk,ijk->ij", t, t)
    impls.append(Impl("numpy", lambda sets: (lambda i: np_sq(*sets[i])), fetch_numpy, P.sync_none,
                      "host", P.host_name(), note="broadcast + einsum"))
    if P.torch is not None:
        torch = P.torch
        impls.append(Impl("torch-cpu",
                          lambda sets: (lambda i: torch.cdist(torch.from_numpy(sets[i][0]),
                                                              torch.from_numpy(sets[i][1])).pow_(2).numpy()),
                          fetch_numpy, P.sync_none, "host", P.host_name(), note="torch.cdist().pow_(2)"))
    if P.torch_cuda:
        torch = P.torch
        impls.append(Impl("torch-cuda",
                          lambda sets: (lambda i: torch.cdist(torch.from_numpy(sets[i][0]).cuda(),
                                                              torch.from_numpy(sets[i][1]).cuda())
                                        .pow_(2).cpu().numpy()),
                          fetch_numpy, P.sync_torch, "device", P.cuda_device_name(),
                          note="NumPy in, NumPy out"))

        def prep_torch_dev(sets):
            ts = [(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()) for a, b in sets]
            return lambda i: torch.cdist(ts[i][0], ts[i][1]).pow_(2)
        impls.append(Impl("torch-cuda-dev", prep_torch_dev, fetch_torch, P.sync_torch, "device",
                          P.cuda_device_name(), note="resident tensors, then synchronize"))
    if P.cupy is not None:
        cp = P.cupy

        def cp_sq(a, b):
            a, b = cp.asarray(a), cp.asarray(b)
            t = a[:, None, :] - b[None, :, :]
            return (t * t).sum(-1).get()
        impls.append(Impl("cupy", lambda sets: (lambda i: cp_sq(*sets[i])), fetch_numpy, P.sync_cupy,
                          "device", P.cuda_device_name(), note="NumPy in, NumPy out"))

        def prep_cupy_dev(sets):
            cs = [(cp.asarray(a), cp.asarray(b)) for a, b in sets]

            def run(i):
                t = cs[i][0][:, None, :] - cs[i][1][None, :, :]
                return (t * t).sum(-1)
            return run
        impls.append(Impl("cupy-dev", prep_cupy_dev, fetch_cupy, P.sync_cupy, "device",
                          P.cuda_device_name(), note="resident arrays, then synchronize"))

    def make_inputs(rng):
        return (rng.standard_normal((m, d), dtype=np.float32),
                rng.standard_normal((n, d), dtype=np.float32))

    def check(get_rows, inputs):
        from ..harness import check_close
        return check_close(get_rows(None), reference_rows(inputs[0], inputs[1], None, metric))

    return Case(name=f"runtime/latency/cdist-{m}x{n}x{d}", family="runtime", op="runtime/latency",
                params={"metric": metric, "m": m, "n": n, "d": d}, make_inputs=make_inputs,
                impls=impls, check=check, flops=2.0 * m * n * d, bytes=4.0 * (m * d + n * d + m * n),
                unit="call/s", size=float(m * n * d), rotate=False, repeats=LATENCY_CALLS,
                warmup=20, has_floor=False, priority=0)


def _exact_check(get_rows, inputs):
    got = np.asarray(get_rows(None))
    if got.shape != inputs[0].shape or not np.array_equal(got, inputs[0]):
        return "bytes differ from the source"
    return None


def _resident_impls(P, ops, fetches, notes):
    """vaccel / torch-cuda / cupy implementations that apply ops[peer] to an input already on the
    device (the input's upload is outside the timing)."""
    impls = []
    V = P.vaccel
    if V is not None:
        def prep(sets):
            dev = [V.asarray(s[0]) for s in sets]
            return lambda i: ops["vaccel"](dev[i])
        impls.append(Impl("vaccel", prep, fetches["vaccel"], V.synchronize, "device",
                          P.vaccel_device_name(), note=notes["vaccel"]))
    if P.torch_cuda:
        torch = P.torch

        def prep_t(sets):
            ts = [torch.from_numpy(s[0]).cuda() for s in sets]
            return lambda i: ops["torch"](ts[i])
        impls.append(Impl("torch-cuda", prep_t, fetches["torch"], P.sync_torch, "device",
                          P.cuda_device_name(), note=notes["torch"]))
    if P.cupy is not None:
        cp = P.cupy

        def prep_c(sets):
            cs = [cp.asarray(s[0]) for s in sets]
            return lambda i: ops["cupy"](cs[i])
        impls.append(Impl("cupy", prep_c, fetches["cupy"], P.sync_cupy, "device", P.cuda_device_name(),
                          note=notes["cupy"]))
    return impls


def _copy_case(P, nbytes):
    impls = _resident_impls(P, {"vaccel": lambda x: x.copy(), "torch": lambda x: x.clone(),
                                "cupy": lambda x: x.copy()},
                            {"vaccel": fetch_vaccel, "torch": fetch_torch, "cupy": fetch_cupy},
                            {"vaccel": "Array.copy()", "torch": "clone()", "cupy": "copy()"})
    impls.append(Impl("numpy", lambda sets: (lambda i: sets[i][0].copy()), fetch_numpy, P.sync_none,
                      "host", P.host_name(), note="copy() on the host"))
    return Case(name=f"runtime/copy/{nbytes // MiB}MiB", family="runtime", op="runtime/copy",
                params={"bytes": nbytes}, make_inputs=lambda rng: (rng.random(nbytes // 4, dtype=np.float32),),
                impls=impls, check=_exact_check, bytes=2.0 * nbytes, unit="GB/s", size=float(nbytes),
                priority=0)


def _upload_case(P, nbytes):
    impls = []
    V = P.vaccel
    if V is not None:
        impls.append(Impl("vaccel", lambda sets: (lambda i: V.asarray(sets[i][0])), fetch_vaccel,
                          V.synchronize, "device", P.vaccel_device_name(), note="vaccel.asarray"))
    if P.torch_cuda:
        torch = P.torch
        impls.append(Impl("torch-cuda", lambda sets: (lambda i: torch.from_numpy(sets[i][0]).cuda()),
                          fetch_torch, P.sync_torch, "device", P.cuda_device_name(),
                          note="from_numpy().cuda(), pageable"))
    if P.cupy is not None:
        cp = P.cupy
        impls.append(Impl("cupy", lambda sets: (lambda i: cp.asarray(sets[i][0])), fetch_cupy,
                          P.sync_cupy, "device", P.cuda_device_name(), note="cupy.asarray, pageable"))
    return Case(name=f"runtime/upload/{nbytes // MiB}MiB", family="runtime", op="runtime/upload",
                params={"bytes": nbytes}, make_inputs=lambda rng: (rng.random(nbytes // 4, dtype=np.float32),),
                impls=impls, check=_exact_check, bytes=float(nbytes), unit="GB/s", size=float(nbytes),
                has_floor=False)


def _download_case(P, nbytes):
    impls = _resident_impls(P, {"vaccel": lambda x: x.numpy(), "torch": lambda x: x.cpu().numpy(),
                                "cupy": lambda x: x.get()},
                            {"vaccel": fetch_numpy, "torch": fetch_numpy, "cupy": fetch_numpy},
                            {"vaccel": "Array.numpy()", "torch": ".cpu().numpy(), pageable",
                             "cupy": ".get(), pageable"})
    return Case(name=f"runtime/download/{nbytes // MiB}MiB", family="runtime", op="runtime/download",
                params={"bytes": nbytes}, make_inputs=lambda rng: (rng.random(nbytes // 4, dtype=np.float32),),
                impls=impls, check=_exact_check, bytes=float(nbytes), unit="GB/s", size=float(nbytes),
                has_floor=False)


@register
def runtime_cases(ctx):
    P = ctx.peers
    nbytes = (64 if ctx.quick else 256) * MiB
    yield _latency_case(P)
    yield _copy_case(P, nbytes)
    yield _upload_case(P, nbytes)
    yield _download_case(P, nbytes)
