"""kmeans: one Lloyd iteration, a whole fit, and the nearest-centre assignment alone, against
PyTorch and scikit-learn.

kmeans/<n>x<d>/k=<k>         one Lloyd iteration of float32 X (n, d) from fixed centres (k rows of
                             X): assign every row to its nearest centre, new centres as the means of
                             their rows, and the convergence scalars (inertia, centre shift) back on
                             the host, as a fit needs them every iteration. Every call starts from
                             the same centres, so every call does the same work. Work counted:
                             2*n*k*d flops (the distance GEMM) and 4*n*d bytes (X read once); the
                             floor is the larger of flops / fp32 GEMM rate and bytes / copy
                             bandwidth, i.e. the GEMM.
                             This is the step without Hamerly's bounds (see kmeans-fit), as a
                             fit's first iteration runs it: no row can be skipped there.
kmeans-fit/<n>x<d>/k=<k>     a whole fit of ITERS iterations (tol=0) from the same k initial rows of
                             X for every implementation, then the labels of the final centres; the
                             time per iteration of a real fit is the call's time / ITERS (recorded
                             as per_iteration_s). Work counted: 2*n*k*d flops per assignment (ITERS +
                             1 of them) and 4*n*d bytes per iteration; the floor is the GEMM's, i.e.
                             that of a fit that computes every distance: with bounds vaccel can be
                             faster than that floor.
kmeans-assign/<n>x<d>/k=<k>  the assignment alone: labels and squared distances of every row of X
                             to its nearest centre. Same flops; bytes 4*n*d + 8*n (X read, labels
                             and distances written); the floor is the GEMM.

What runs (X and the centres resident on the device, moved there outside the timing):
  vaccel       kmeans: the step vaccel.KMeans.fit runs per iteration (vaccel.cluster._Device.step:
               fused assignment, counting sort by label, exact fixed-point sums, new centres,
               statistics, all in one submit; 16 bytes read back); the assignment takes the
               tensor cores where they serve (kmeans_coop.comp: float16 scores with a rigorous
               bound, the rows it cannot settle on the float32 kernel); vaccel-float32 the same
               step with VACCEL_KMEANS_COOP=0. kmeans-fit: vaccel.KMeans(k, init=the rows,
               max_iter=ITERS, tol=0).fit(X as a vaccel.Array) as configured by default (tensor
               cores, every row every iteration, where they serve; else Hamerly's bounds);
               vaccel-bounds with VACCEL_KMEANS_BOUNDS=1 (after the first iteration only the rows
               whose bounds fail are assigned in full; recorded per iteration as rows_recomputed,
               and their mean fraction over iterations 1.. and the final assignment as
               recomputed_fraction); vaccel-float32 with VACCEL_KMEANS_BOUNDS=0 and
               VACCEL_KMEANS_COOP=0 (every row, every iteration, float32 kernel). kmeans-assign:
               op kmeans_assign into device arrays (vaccel), float32 kernel only (vaccel-float32)
  torch-cuda   the PyTorch step a user writes, TF32 off: d = addmm(|c|^2, x, c.T, alpha=-2)
               (n x k, never needed in full by vaccel), d.min(1) -> labels and inertia (+ sum |x|^2,
               precomputed), index_add_ of the rows and bincount -> new centres (an empty centre
               keeps its place), the centre shift; shift and inertia brought to the host with one
               .cpu(). kmeans-fit: ITERS of these steps from the init rows, then addmm + min(1)
               for the labels of the final centres. kmeans-assign: addmm + min(1).
  sklearn      kmeans, on the host, under the CPU GEMM-work limit (per iteration): scikit-learn's
               own Lloyd iteration (sklearn.cluster._k_means_lloyd.lloyd_iter_chunked_dense, all
               threads), skipped when that private function is not there; kmeans-fit:
               sklearn.cluster.KMeans(k, init=the rows, n_init=1, max_iter=ITERS, tol=0,
               algorithm='lloyd').fit(X)

Correctness: against a float64 NumPy Lloyd step from the same centres: the inertia within 1e-4
relative (recorded as inertia_rel_err for every implementation), the new centres within 1e-2 of
the largest centre coordinate (a float32 near-tie that flips a row between two centres moves both
a little; a wrong centre is far off). kmeans-assign: on a few rows (all when small), the exact
float64 distance of the returned centre equals the smallest within 1e-5 relative (ties may
differ), and the returned distance matches it within 1e-4. kmeans-fit: the inertia within 1e-3
relative of a float64 NumPy Lloyd fit from the same rows (float32 near-ties may take a slightly
different path), the returned inertia equal to Σ‖x − c(label)‖² of the returned labels and
centres (1e-4), and on a few rows (all when small) the label the nearest centre (1e-5); also
recorded: n_iter (iterations run; an implementation stopping early on unchanged labels is timed
for fewer).
"""

import weakref

import numpy as np

from ..harness import CPU_PEER_MAX_GEMM_WORK, Case, Impl, check_close, check_rows, register, torch_peak_mem, \
    vaccel_peak_mem
from ._common import standard_normal, under_env

QUICK = [(20_000, 32, 64)]
FULL = [(1_000_000, 128, 1024), (200_000, 64, 256)]
QUICK_FIT = [(10_000, 32, 64)]
FULL_FIT = [(1_000_000, 128, 1024), (200_000, 64, 256)]
ITERS = 20
QUICK_ITERS = 6                 # --quick must finish within 2 minutes on lavapipe
QUICK_ASSIGN = [(20_000, 32, 64)]
FULL_ASSIGN = [(1_000_000, 128, 1024), (1_000_000, 16, 256)]
HEADLINE = (1_000_000, 128, 1024)
REF_BLOCK = 1 << 15        # rows per block of the float64 reference


def make_inputs_fn(n, d, k):
    def make_inputs(rng):
        x = standard_normal(rng, (n, d))
        # a little structure: a shift per row group, so clusters are not all alike
        x += np.repeat(rng.standard_normal((64, d)).astype(np.float32), -(-n // 64), axis=0)[:n]
        init = np.ascontiguousarray(x[np.sort(rng.choice(n, k, replace=False))])
        return x, init
    return make_inputs


# --------------------------------------------------------------------------------------------
# reference


def reference_step(x, c):
    """(new centres float64, inertia) of one float64 Lloyd step of x from centres c."""
    c64 = c.astype(np.float64)
    k, d = c64.shape
    cn = np.einsum("ij,ij->i", c64, c64)
    sums = np.zeros((k, d))
    counts = np.zeros(k)
    inertia = 0.0
    for i in range(0, x.shape[0], REF_BLOCK):
        blk = x[i:i + REF_BLOCK].astype(np.float64)
        s = cn[None, :] - 2.0 * (blk @ c64.T)
        lab = np.argmin(s, axis=1)
        diff = blk - c64[lab]
        inertia += float(np.einsum("ij,ij->", diff, diff))
        np.add.at(counts, lab, 1.0)
        order = np.argsort(lab, kind="stable")
        ls = lab[order]
        starts = np.flatnonzero(np.r_[True, ls[1:] != ls[:-1]])
        sums[ls[starts]] += np.add.reduceat(blk[order], starts, axis=0)
    new = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1.0)[:, None], c64)
    return new, inertia


def make_step_check():
    cache = []

    def check(get_rows, inputs):
        x, c = inputs
        if not (cache and cache[0][0]() is x and cache[0][1]() is c):
            cache[:] = [(weakref.ref(x), weakref.ref(c), reference_step(x, c))]
        ref_c, ref_inertia = cache[0][2]
        centres, inertia = get_rows(None)
        rel = abs(inertia - ref_inertia) / abs(ref_inertia)
        err = None
        if not rel <= 1e-4:
            err = f"inertia {inertia:.9g}, expected {ref_inertia:.9g} (relative error {rel:.2e})"
        else:
            err = check_close(np.asarray(centres, np.float64), ref_c, rtol=1e-2)
        return {"error": err, "inertia_rel_err": rel}
    return check


def reference_fit(x, c, iters):
    """(centres, labels, inertia) of a float64 Lloyd fit of x from centres c: iters steps (an empty
    centre keeps its place), then the labels of the final centres."""
    c64 = c.astype(np.float64)
    for _ in range(iters):
        c64, _ = reference_step(x, c64)
    labels, inertia = reference_labels(x, c64)
    return c64, labels, inertia


def reference_labels(x, c64):
    cn = np.einsum("ij,ij->i", c64, c64)
    labels = np.empty(x.shape[0], np.int64)
    inertia = 0.0
    for i in range(0, x.shape[0], REF_BLOCK):
        blk = x[i:i + REF_BLOCK].astype(np.float64)
        lab = np.argmin(cn[None, :] - 2.0 * (blk @ c64.T), axis=1)
        diff = blk - c64[lab]
        inertia += float(np.einsum("ij,ij->", diff, diff))
        labels[i:i + REF_BLOCK] = lab
    return labels, inertia


def make_fit_check(n, k, iters):
    cache = []

    def check(get_rows, inputs):
        x, c = inputs
        if not (cache and cache[0][0]() is x and cache[0][1]() is c):
            cache[:] = [(weakref.ref(x), weakref.ref(c), reference_fit(x, c, iters))]
        ref_inertia = cache[0][2][2]
        res = get_rows(None)
        centres, labels, inertia = (np.asarray(res["centres"], np.float64), np.asarray(res["labels"], np.int64),
                                    float(res["inertia"]))
        extra = {"n_iter": res.get("n_iter")}
        if res.get("rows") is not None:
            rows = [int(r) for r in res["rows"]]
            extra["rows_recomputed"] = rows
            later = rows[1:]
            extra["recomputed_fraction"] = float(np.mean(later)) / n if later else 1.0
        rel = abs(inertia - ref_inertia) / abs(ref_inertia)
        extra["inertia_rel_err"] = rel
        if not rel <= 1e-3:
            return {"error": f"inertia {inertia:.9g}, expected {ref_inertia:.9g} (relative error {rel:.2e})", **extra}
        own = 0.0
        for i in range(0, n, REF_BLOCK):
            blk = x[i:i + REF_BLOCK].astype(np.float64)
            diff = blk - centres[labels[i:i + REF_BLOCK]]
            own += float(np.einsum("ij,ij->", diff, diff))
        if not abs(own - inertia) <= 1e-4 * abs(own):
            return {"error": f"inertia {inertia:.9g} is not that of the labels and centres returned ({own:.9g})",
                    **extra}
        rows = check_rows(n, n * k, max_full=1 << 22)
        rows = np.arange(n) if rows is None else rows
        X = x[rows].astype(np.float64)
        D = np.stack([((X[i] - centres) ** 2).sum(-1) for i in range(X.shape[0])]) if X.shape[0] <= 64 else \
            (X * X).sum(1)[:, None] - 2.0 * X @ centres.T + (centres * centres).sum(1)[None, :]
        got = D[np.arange(len(rows)), labels[rows]]
        bad = got > D.min(axis=1) * (1 + 1e-5) + 1e-6
        if bad.any():
            return {"error": f"{int(bad.sum())} of {len(rows)} rows not at their nearest centre", **extra}
        return {"error": None, **extra}
    return check


def make_assign_check(n):
    def check(get_rows, inputs):
        x, c = inputs
        rows = check_rows(n, n * c.shape[0], max_full=1 << 20)
        labels, dist = get_rows(rows)
        X = (x if rows is None else x[rows]).astype(np.float64)
        D = ((X[:, None, :] - c.astype(np.float64)[None, :, :]) ** 2).sum(-1) if X.shape[0] * c.shape[0] <= 1 << 24 \
            else np.stack([((X[i] - c.astype(np.float64)) ** 2).sum(-1) for i in range(X.shape[0])])
        best = D.min(axis=1)
        labels = np.asarray(labels).astype(np.int64)
        got = D[np.arange(len(labels)), labels]
        bad = got > best * (1 + 1e-5) + 1e-6
        if bad.any():
            return f"{int(bad.sum())} of {len(labels)} rows not at their nearest centre"
        return check_close(np.asarray(dist, np.float64), got, rtol=1e-4)
    return check


# --------------------------------------------------------------------------------------------
# implementations


def _vaccel_step(P, n, d, k, float32=False):
    V = P.vaccel
    from vaccel import cluster

    def prepare(sets):
        states = []
        for x, init in sets:
            data = cluster._Device(x, None)
            c0 = data.given(init)
            c1 = V.empty((k, d), np.float32)
            lab = [V.empty(n, np.uint32), V.empty(n, np.uint32)]
            dists, aux = V.empty(n, np.float32), V.empty(2 * k + 4, np.float32)
            stats = np.zeros(4, np.uint32)
            data.step(c0, c1, None, lab[0], dists, aux, stats)     # labels of a previous step
            states.append((data, c0, c1, lab, dists, aux, stats))

        def run(i):
            data, c0, c1, lab, dists, aux, stats = states[i]
            data.step(c0, c1, lab[0], lab[1], dists, aux, stats)
            return c1, data.mu, stats.copy()
        return under_env("VACCEL_KMEANS_COOP", "0", run) if float32 else run

    def fetch(res, rows):
        c1, mu, stats = res
        return c1.numpy().astype(np.float64) + mu, float(stats[2:].view(np.float32)[0])
    return Impl("vaccel-float32" if float32 else "vaccel", prepare, fetch, V.synchronize, "device", P.vaccel_device_name(), mem=vaccel_peak_mem(V),
                mem_source="vaccel.memory_stats", note="the step KMeans.fit runs per iteration; 16 bytes read back")


def _torch_step(P, n, d, k):
    torch = P.torch

    def prepare(sets):
        torch.backends.cuda.matmul.allow_tf32 = False
        ts = []
        for x, init in sets:
            tx = torch.from_numpy(x).cuda()
            ts.append((tx, torch.from_numpy(init).cuda(), float((x.astype(np.float64) ** 2).sum())))

        def run(i):
            x, c, xx = ts[i]
            new, scalars = _torch_lloyd(torch, x, c, k)
            return new, float(scalars[1]) + xx
        return run

    def fetch(res, rows):
        new, inertia = res
        return new.cpu().numpy().astype(np.float64), inertia
    return Impl("torch-cuda", prepare, fetch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note="addmm + min + index_add_ + bincount, TF32 off")


def _vaccel_fit(P, n, d, k, iters, variant):
    """variant: "default" (the library's choice), "bounds" (Hamerly's bounds forced on) or
    "float32" (neither bounds nor tensor cores: every row every iteration on the float32 kernel)."""
    V = P.vaccel

    def prepare(sets):
        states = [(V.asarray(x), init) for x, init in sets]

        def run(i):
            x, init = states[i]
            return V.KMeans(k, init=init, n_init=1, max_iter=iters, tol=0.0).fit(x)
        if variant == "bounds":
            return under_env("VACCEL_KMEANS_BOUNDS", "1", run)
        if variant == "float32":
            return under_env("VACCEL_KMEANS_BOUNDS", "0", under_env("VACCEL_KMEANS_COOP", "0", run))
        return run

    def fetch(km, rows):
        return {"centres": km.cluster_centers_, "labels": km.labels_, "inertia": km.inertia_, "n_iter": km.n_iter_,
                "rows": getattr(km, "_rows_assigned", None)}
    name = {"default": "vaccel", "bounds": "vaccel-bounds", "float32": "vaccel-float32"}[variant]
    note = {"default": "KMeans.fit as configured by default (tensor cores without bounds where they serve, "
                       "else Hamerly's bounds)",
            "bounds": "KMeans.fit, VACCEL_KMEANS_BOUNDS=1: Hamerly's bounds",
            "float32": "KMeans.fit, VACCEL_KMEANS_BOUNDS=0 VACCEL_KMEANS_COOP=0: every row every iteration, "
                       "float32 kernel"}[variant]
    return Impl(name, prepare, fetch, V.synchronize, "device", P.vaccel_device_name(), mem=vaccel_peak_mem(V),
                mem_source="vaccel.memory_stats", note=note)


def _torch_lloyd(torch, x, c, k):
    """One PyTorch Lloyd step: (new centres, per-row minimum scores, the scalars read back)."""
    cn = (c * c).sum(1)
    dist = torch.addmm(cn, x, c.t(), beta=1.0, alpha=-2.0)
    mins, labels = dist.min(1)
    sums = torch.zeros_like(c).index_add_(0, labels, x)
    counts = torch.bincount(labels, minlength=k).to(x.dtype)
    new = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1.0)[:, None], c)
    shift = ((new - c) ** 2).sum()
    scalars = torch.stack([shift, mins.sum()]).cpu()     # what a fit checks every iteration
    return new, scalars


def _torch_inputs(torch, sets):
    """(X, initial centres) of every input set on the GPU, TF32 off (as a careful user runs it)."""
    torch.backends.cuda.matmul.allow_tf32 = False
    return [(torch.from_numpy(x).cuda(), torch.from_numpy(init).cuda()) for x, init in sets]


def _torch_fit(P, n, d, k, iters):
    torch = P.torch

    def prepare(sets):
        ts = _torch_inputs(torch, sets)

        def run(i):
            x, c = ts[i]
            for _ in range(iters):
                c, _ = _torch_lloyd(torch, x, c, k)
            dist = torch.addmm((c * c).sum(1), x, c.t(), beta=1.0, alpha=-2.0)
            mins, labels = dist.min(1)
            inertia = float(mins.sum() + (x * x).sum())
            return c, labels, inertia
        return run

    def fetch(res, rows):
        c, labels, inertia = res
        return {"centres": c.cpu().numpy(), "labels": labels.cpu().numpy(), "inertia": inertia, "n_iter": iters}
    return Impl("torch-cuda", prepare, fetch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note=f"{iters} x (addmm + min + index_add_ + bincount) + addmm + min, TF32 off")


def _sklearn_fit(P, n, d, k, iters):
    try:
        from sklearn.cluster import KMeans
    except Exception as e:
        return None, f"scikit-learn is not importable: {type(e).__name__}: {e}"

    def prepare(sets):
        st = [(np.ascontiguousarray(x), init.copy()) for x, init in sets]

        def run(i):
            x, init = st[i]
            return KMeans(k, init=init, n_init=1, max_iter=iters, tol=0.0, algorithm="lloyd").fit(x)
        return run

    def fetch(km, rows):
        return {"centres": km.cluster_centers_, "labels": km.labels_, "inertia": km.inertia_, "n_iter": km.n_iter_}
    return Impl("sklearn", prepare, fetch, P.sync_none, "host", P.host_name(),
                note="sklearn.cluster.KMeans(algorithm='lloyd'), all threads"), None


def _sklearn_step(P, n, d, k):
    try:
        from sklearn.cluster._k_means_lloyd import lloyd_iter_chunked_dense
    except Exception as e:  # private API: absent in other versions
        return None, f"scikit-learn's Lloyd iteration is not importable: {type(e).__name__}: {e}"
    import os

    threads = os.cpu_count() or 1

    def prepare(sets):
        st = []
        for x, init in sets:
            st.append((np.ascontiguousarray(x), np.ones(n, np.float32), init.copy(), np.empty_like(init),
                       np.empty(k, np.float32), np.empty(n, np.int32), np.empty(k, np.float32)))

        def run(i):
            x, w, c_old, c_new, wic, labels, shift = st[i]
            lloyd_iter_chunked_dense(x, w, c_old, c_new, wic, labels, shift, threads)
            return c_new.copy(), labels.copy(), x, c_old
        return run

    def fetch(res, rows):
        c_new, labels, x, c_old = res
        diff = x.astype(np.float64) - c_old.astype(np.float64)[labels]
        return c_new.astype(np.float64), float(np.einsum("ij,ij->", diff, diff))
    return Impl("sklearn", prepare, fetch, P.sync_none, "host", P.host_name(),
                note=f"lloyd_iter_chunked_dense, {threads} threads"), None


def _vaccel_assign(P, n, d, k, float32=False):
    V = P.vaccel
    from vaccel import cluster, runtime

    def prepare(sets):
        states = []
        for x, init in sets:
            mu = init.astype(np.float64).mean(0).astype(np.float32)
            states.append((V.asarray(x), V.asarray((init - mu).astype(np.float32)), V.asarray(mu),
                           V.empty(n, np.uint32), V.empty(n, np.float32)))

        def run(i):
            x, c, mu, lab, dist = states[i]
            coop = 0 if float32 else int(cluster._coop(n, k, d))
            runtime.run_op("kmeans_assign", (x, c, mu), (lab, dist), (0, 1, 1, 0, coop))
            return lab, dist
        return run

    def fetch(res, rows):
        lab, dist = res
        lab, dist = lab.numpy(), dist.numpy()
        return (lab, dist) if rows is None else (lab[rows], dist[rows])
    return Impl("vaccel-float32" if float32 else "vaccel", prepare, fetch, V.synchronize, "device",
                P.vaccel_device_name(), mem=vaccel_peak_mem(V), mem_source="vaccel.memory_stats",
                note="op kmeans_assign, device arrays out" + (": float32 kernel only" if float32 else
                                                               " (tensor cores where they serve)"))


def _torch_assign(P, n, d, k):
    torch = P.torch

    def prepare(sets):
        ts = _torch_inputs(torch, sets)

        def run(i):
            x, c = ts[i]
            dist = torch.addmm((c * c).sum(1), x, c.t(), beta=1.0, alpha=-2.0)
            mins, labels = dist.min(1)
            return labels, mins + (x * x).sum(1)
        return run

    def fetch(res, rows):
        labels, dist = res
        labels, dist = labels.cpu().numpy(), dist.cpu().numpy()
        return (labels, dist) if rows is None else (labels[rows], dist[rows])
    return Impl("torch-cuda", prepare, fetch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note="addmm + min(1), TF32 off")


def _step_case(P, n, d, k):
    impls, skipped = [], {}
    if P.vaccel is not None:
        impls.append(_vaccel_step(P, n, d, k))
        impls.append(_vaccel_step(P, n, d, k, float32=True))
    if P.torch_cuda:
        impls.append(_torch_step(P, n, d, k))
    _add_sklearn(impls, skipped, n, d, k, lambda: _sklearn_step(P, n, d, k))
    return Case(name=f"kmeans/{n}x{d}/k={k}", family="kmeans", op="kmeans/lloyd-step",
                params={"n": n, "d": d, "k": k, "dtype": "float32"}, make_inputs=make_inputs_fn(n, d, k),
                impls=impls, check=make_step_check(), flops=2.0 * n * k * d, bytes=4.0 * n * d, unit="GFLOP/s",
                size=float(n) * k * d, skipped=skipped, rotate=False, max_repeats=20 if n * k * d >= 1 << 34 else None,
                priority=0 if (n, d, k) == HEADLINE else 1)


def _add_sklearn(impls, skipped, n, d, k, make):
    """scikit-learn's implementation (make() -> (impl or None, why)) under the CPU work limit."""
    if n * k * d > CPU_PEER_MAX_GEMM_WORK:
        skipped["sklearn"] = f"n*k*d={n * k * d:.2g} above the CPU peer limit {CPU_PEER_MAX_GEMM_WORK:.2g}"
        return
    impl, why = make()
    if impl is not None:
        impls.append(impl)
    else:
        skipped["sklearn"] = why


def _fit_case(P, n, d, k, iters=ITERS):
    impls, skipped = [], {}
    if P.vaccel is not None:
        for variant in ("default", "bounds", "float32"):
            impls.append(_vaccel_fit(P, n, d, k, iters, variant))
    if P.torch_cuda:
        impls.append(_torch_fit(P, n, d, k, iters))
    _add_sklearn(impls, skipped, n, d, k, lambda: _sklearn_fit(P, n, d, k, iters))
    return Case(name=f"kmeans-fit/{n}x{d}/k={k}", family="kmeans", op="kmeans/fit",
                params={"n": n, "d": d, "k": k, "dtype": "float32", "iterations": iters},
                make_inputs=make_inputs_fn(n, d, k), impls=impls, check=make_fit_check(n, k, iters),
                flops=2.0 * n * k * d * (iters + 1), bytes=4.0 * n * d * iters, unit="GFLOP/s",
                size=float(n) * k * d, skipped=skipped, rotate=False,
                max_repeats=3 if n * k * d >= 1 << 34 else None, warmup=1,
                priority=0 if (n, d, k) == HEADLINE else 1)


def _assign_case(P, n, d, k):
    impls, skipped = [], {}
    if P.vaccel is not None:
        impls.append(_vaccel_assign(P, n, d, k))
        impls.append(_vaccel_assign(P, n, d, k, float32=True))
    if P.torch_cuda:
        impls.append(_torch_assign(P, n, d, k))
    return Case(name=f"kmeans-assign/{n}x{d}/k={k}", family="kmeans", op="kmeans/assign",
                params={"n": n, "d": d, "k": k, "dtype": "float32"}, make_inputs=make_inputs_fn(n, d, k),
                impls=impls, check=make_assign_check(n), flops=2.0 * n * k * d, bytes=4.0 * n * d + 8.0 * n,
                unit="GFLOP/s", size=float(n) * k * d, skipped=skipped, rotate=False,
                max_repeats=20 if n * k * d >= 1 << 34 else None)


@register
def kmeans_cases(ctx):
    P = ctx.peers
    for n, d, k in (QUICK if ctx.quick else FULL):
        yield _step_case(P, n, d, k)
    for n, d, k in (QUICK_FIT if ctx.quick else FULL_FIT):
        yield _fit_case(P, n, d, k, QUICK_ITERS if ctx.quick else ITERS)
    for n, d, k in (QUICK_ASSIGN if ctx.quick else FULL_ASSIGN):
        yield _assign_case(P, n, d, k)
