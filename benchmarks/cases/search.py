"""search: vaccel.topk and vaccel.knn against PyTorch, CuPy, NumPy and faiss.

topk/<m>x<n>/k=<k>         the k smallest entries of every row of an m x n float32 matrix, sorted,
                           with their int64 indices. Bytes counted: 4*m*n (the input read once; the
                           m*k results are noise); no flops. The floor is those bytes over the
                           measured copy bandwidth (a copy's read + write rate, as every floor here).
knn/<nq>x<nb>x<d>/k=<k>    the k nearest database rows (sqeuclidean) of every query, (D, I).
                           Work counted: 2*nq*nb*d flops (the distance GEMM) and 4*(nq*d + nb*d)
                           bytes (both inputs read once); the floor is the larger of flops / measured
                           fp32 GEMM rate and bytes / copy bandwidth, i.e. the GEMM at these shapes.
flat-index/<nq>x<nb>x<d>/k=10  the same search through vaccel.FlatIndex (database added once,
                           untimed; host queries), against faiss IndexFlatL2 and the PyTorch
                           search; same check, flops and bytes as knn.

The topk floor is the same for every path: the input must be read once. vaccel's filter path reads
it once plus a sample (1/64 of it up to k ~ 500, 1/32 up to k ~ 1000), which it copies and reads
again (the row kernel over the sample), and writes and sorts a few thousand candidates per row:
at 1000 x 1,000,000 about 4.0 GB + 0.21 GB at k = 10 or 100 and 4.0 GB + 0.43 GB at k = 1000
(csrc/ops/topk.c), i.e. 95% and 90% of the floor at best.

What runs (inputs resident on the device, moved there outside the timing, unless said):
  vaccel       topk: vaccel.topk(xa, k) on a vaccel.Array (values stay an Array, the int64
               indices come back as NumPy: the call includes that download) then synchronize;
               long rows take the filter path (sample, bound, one streaming pass, sort of the
               candidates, flagged rows recomputed);
               knn: vaccel.knn(qa, dba, k) on resident queries and database
  vaccel-rowkernel  topk only: the same call with VACCEL_TOPK_FILTER=0, the one-workgroup-per-row
               kernel every row took before the filter path (kept for comparison)
  vaccel-f16   knn only: queries and database stored as float16 (vaccel.asarray(x.astype(float16)));
               checked against the exact neighbours of the float16-rounded data, and its recall
               against the exact float32 result is recorded (recall, recall_at_10)
  torch-cuda   topk: torch.topk(x, k, dim=1, largest=False, sorted=True); knn: the PyTorch
               baseline a user writes: |db|^2 once, then per chunk of queries
               d2 = |q|^2 - 2 q @ db.T + |db|^2 and torch.topk(d2, k, largest=False), TF32 off; the
               chunk is 1024 queries, halved while its nq_chunk x nb float32 tile exceeds 4 GiB
               (recorded as params.torch_chunk)
  torch-cpu    the same on the CPU, only where torch has no CUDA, under the CPU size limits
  cupy         topk: cp.argpartition(x, k-1, axis=1)[:, :k], then a sort of those k (CuPy's
               argpartition sorts the whole row internally)
  numpy        topk: np.argpartition + a sort of the k, on the host, under a size limit
  faiss        knn: faiss.IndexFlatL2 (database added outside the timing), on the host, under the
               CPU GEMM-work limit
  faiss-gpu    knn: faiss.GpuIndexFlatL2, where faiss has GPU support

Correctness: topk against np.argsort(kind='stable') of a few rows (all rows when small): values
exactly equal; vaccel's indices exactly equal (ties go to the lower index), a peer's indices may
order ties differently but must point at those values. knn against a float64 NumPy exact search of
a few queries (32 at the full size, all when small): the exact distance of every returned index
equals the exact k-th-best distance at its position within 1e-4 relative (so only ties may
differ), D within 1e-3 of the exact distances; every record carries recall (recall@k) and
recall_at_10 against the exact float32 result of those queries.
"""

import weakref
from collections import namedtuple

import numpy as np

from ..harness import (CPU_PEER_MAX_GEMM_WORK, L2_BYTES, Case, Impl, Skip, check_close, check_rows,
                       collect_impls, cupy_peak_mem, host_peak_mem, register, torch_peak_mem, vaccel_peak_mem)
from ._common import (LARGE_REPEATS, LARGE_WORK, _as64, fetch_cupy, fetch_numpy, fetch_pair, fetch_pair_torch,
                      knn_reference, recall, standard_normal, torch_chunk, torch_knn, under_env)

QUICK_TOPK = [(64, 20_000)]
QUICK_TOPK_KS = (10, 100)
FULL_TOPK = [(1000, 1_000_000)]
FULL_TOPK_KS = (10, 100, 1000)
QUICK_KNN = [(100, 20_000, 64)]
QUICK_KNN_KS = (10,)
FULL_KNN = [(10_000, 1_000_000, 128)]
FULL_KNN_KS = (10, 100)
QUICK_FLAT = [(64, 20_000, 32)]       # flat-index: nq, nb, d (k = 10)
FULL_FLAT = [(1_000, 1_000_000, 128)]

CPU_TOPK_MAX_ELEMS = 1 << 26    # m*n above which the host topk peers (numpy, torch-cpu) are not run
LARGE_TOPK_ELEMS = 10**8        # m*n from which a topk case is timed at most LARGE_REPEATS times
KNN_CHECK_ROWS = 32             # queries checked (and recall measured on) at large sizes
KNN_TIE_RTOL = 1e-4             # a returned index whose exact distance is this close is a tie
F16_MIN_RECALL = 0.9            # vaccel-f16 recall@k below this vs the exact float32 result: wrong
PRIORITY = 0                    # the headline: right after cdist's headline, latency, copy

# What an implementation's fetch returns to the check: result rows on the host, plus how to judge
# them (strict: ties must go to the lower index; storage: the precision the search ran on).
TopkRows = namedtuple("TopkRows", "values indices strict")
KnnRows = namedtuple("KnnRows", "D I storage")


# --------------------------------------------------------------------------------------------
# topk: reference and check


def topk_reference(x, rows, k):
    """(values, indices) of the k smallest entries of rows `rows` of x, ties by the lower index:
    np.argsort(kind='stable') restricted to the entries up to the k-th smallest value."""
    V = np.empty((len(rows), k), x.dtype)
    I = np.empty((len(rows), k), np.int64)
    for j, r in enumerate(rows):
        row = x[r]
        thr = np.partition(row, k - 1)[k - 1]
        cand = np.flatnonzero(row <= thr)                      # ascending indices
        order = cand[np.argsort(row[cand], kind="stable")][:k]
        I[j], V[j] = order, row[order]
    return V, I


def compare_topk(got, x, rows, ref_v, ref_i):
    vals, idx = np.asarray(got.values), np.asarray(got.indices)
    if vals.shape != ref_v.shape or idx.shape != ref_i.shape:
        return f"shapes {vals.shape}/{idx.shape}, expected {ref_v.shape}"
    for j, r in enumerate(rows):
        if not np.array_equal(vals[j], ref_v[j]):
            bad = int(np.flatnonzero(vals[j] != ref_v[j])[0])
            return f"row {r}: value {bad} is {vals[j][bad]!r}, expected {ref_v[j][bad]!r}"
        if got.strict:
            if not np.array_equal(idx[j], ref_i[j]):
                bad = int(np.flatnonzero(idx[j] != ref_i[j])[0])
                return (f"row {r}: index {bad} is {idx[j][bad]}, expected {ref_i[j][bad]} "
                        f"(ties go to the lower index)")
        else:
            if idx[j].min() < 0 or idx[j].max() >= x.shape[1] or len(np.unique(idx[j])) != idx.shape[1]:
                return f"row {r}: indices out of range or repeated"
            if not np.array_equal(x[r][idx[j]], vals[j]):
                return f"row {r}: indices do not point at the returned values"
    return None


def make_topk_check(m, n, k):
    cache = []      # [(weakref to x, rows, reference)]: holds no input alive

    def check(get_rows, inputs):
        x, = inputs
        rows = check_rows(m, m * n)
        rows_list = np.arange(m) if rows is None else rows
        if not (cache and cache[0][0]() is x):
            cache[:] = [(weakref.ref(x), topk_reference(x, rows_list, k))]
        return compare_topk(get_rows(rows), x, rows_list, *cache[0][1])
    return check


# --------------------------------------------------------------------------------------------
# knn: reference and check


def exact_distances(q, db, rows, I, storage):
    """float64 sqeuclidean distance from query rows[j] to database rows I[j] (direct differences)."""
    out = np.empty(I.shape)
    for j, r in enumerate(rows):
        diff = _as64(db[I[j]], storage) - _as64(q[r], storage)[None, :]
        out[j] = np.einsum("ij,ij->i", diff, diff)
    return out


def compare_knn(got, q, db, rows, ref_d, ref_i):
    D, I = np.asarray(got.D), np.asarray(got.I)
    if D.shape != ref_d.shape or I.shape != ref_i.shape:
        return f"shapes {D.shape}/{I.shape}, expected {ref_d.shape}"
    if I.min() < 0 or I.max() >= db.shape[0]:
        return f"indices outside [0, {db.shape[0]})"
    for j, r in enumerate(rows):
        if len(np.unique(I[j])) != I.shape[1]:
            return f"query {r}: repeated indices"
    exact = exact_distances(q, db, rows, I, got.storage)
    off = np.abs(exact - ref_d) > KNN_TIE_RTOL * np.maximum(np.abs(ref_d), 1e-30)
    if off.any():
        j, c = (int(v[0]) for v in np.nonzero(off))
        return (f"query {rows[j]}: neighbour {c} is row {I[j, c]} at exact distance {exact[j, c]:.7g}, "
                f"expected row {ref_i[j, c]} at {ref_d[j, c]:.7g} (not a tie)")
    err = check_close(D, ref_d, rtol=1e-3)
    return f"distances: {err}" if err else None


def make_knn_check(nq, nb, k):
    cache = {}      # 'inputs': (weakref q, weakref db); storage -> reference; holds no input alive

    def check(get_rows, inputs):
        q, db = inputs
        rows = check_rows(nq, nq * nb, n_random=KNN_CHECK_ROWS - 2)
        rows_list = np.arange(nq) if rows is None else rows
        key = cache.get("inputs")
        if not (key and key[0]() is q and key[1]() is db):
            cache.clear()
            cache["inputs"] = (weakref.ref(q), weakref.ref(db))
        got = get_rows(rows)
        for storage in {"float32", got.storage}:
            if storage not in cache:
                cache[storage] = knn_reference(q, db, rows_list, k, storage)
        ref_d, ref_i = cache[got.storage]
        exact_i = cache["float32"][1]
        out = {"recall": recall(np.asarray(got.I), exact_i, k)}
        if k >= 10:
            out["recall_at_10"] = recall(np.asarray(got.I), exact_i, 10)
        out["error"] = compare_knn(got, q, db, rows_list, ref_d, ref_i)
        if out["error"] is None and got.storage != "float32" and out["recall"] < F16_MIN_RECALL:
            out["error"] = f"recall@{k} {out['recall']:.3f} vs the exact float32 result, below {F16_MIN_RECALL}"
        return out
    return check


# --------------------------------------------------------------------------------------------
# fetching rows of results to the host


def fetch_topk_vaccel(res, rows):
    values, idx = res
    return TopkRows(fetch_numpy(values.numpy() if hasattr(values, "numpy") else values, rows),
                    fetch_numpy(idx, rows), strict=True)


def fetch_topk_numpy(res, rows):
    return TopkRows(*fetch_pair(res, rows), strict=False)


def fetch_topk_torch(res, rows):
    return TopkRows(*fetch_pair_torch(res, rows), strict=False)


def fetch_topk_cupy(res, rows):
    return TopkRows(fetch_cupy(res[0], rows), fetch_cupy(res[1], rows), strict=False)


def fetch_knn(storage):
    return lambda res, rows: KnnRows(*fetch_pair(res, rows), storage)


def fetch_knn_torch(res, rows):
    return KnnRows(*fetch_pair_torch(res, rows), "float32")


# --------------------------------------------------------------------------------------------
# topk implementations


def _host_topk(xp, x, k):
    """argpartition + a sort of the k: what a NumPy (or CuPy) user writes."""
    part = xp.argpartition(x, k - 1, axis=1)[:, :k]
    vals = xp.take_along_axis(x, part, 1)
    o = xp.argsort(vals, axis=1)
    return xp.take_along_axis(vals, o, 1), xp.take_along_axis(part, o, 1)


def topk_vaccel(P, m, n, k):
    V = P.vaccel

    def prepare(sets):
        dev = [V.asarray(s[0]) for s in sets]
        return lambda i: V.topk(dev[i], k)
    probe = vaccel_peak_mem(V)
    return Impl("vaccel", prepare, fetch_topk_vaccel, V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="resident input; values an Array, int64 indices to NumPy; rows of 16384+ take the filter path")


def topk_vaccel_rowkernel(P, m, n, k):
    V = P.vaccel

    def prepare(sets):
        dev = [V.asarray(s[0]) for s in sets]

        # VACCEL_TOPK_FILTER is read by the C planner at each call.
        return under_env("VACCEL_TOPK_FILTER", "0", lambda i: V.topk(dev[i], k))
    probe = vaccel_peak_mem(V)
    return Impl("vaccel-rowkernel", prepare, fetch_topk_vaccel, V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="VACCEL_TOPK_FILTER=0: one workgroup per row, every row read about twice")


def topk_torch_cuda(P, m, n, k):
    if not P.torch_cuda:
        return None
    torch = P.torch

    def prepare(sets):
        ts = [torch.from_numpy(s[0]).cuda() for s in sets]
        return lambda i: torch.topk(ts[i], k, dim=1, largest=False, sorted=True)
    return Impl("torch-cuda", prepare, fetch_topk_torch, P.sync_torch, "device", P.cuda_device_name(),
                mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note="torch.topk(largest=False, sorted=True)")


def _cpu_topk_limit(m, n):
    if m * n > CPU_TOPK_MAX_ELEMS:
        raise Skip(f"m*n={m * n:.2g} above the host topk limit {CPU_TOPK_MAX_ELEMS:.2g}")


def topk_torch_cpu(P, m, n, k):
    if P.torch is None or P.torch_cuda:
        return None     # on a CUDA machine the CPU build of the same library adds nothing
    _cpu_topk_limit(m, n)
    torch = P.torch

    def prepare(sets):
        ts = [torch.from_numpy(s[0]) for s in sets]
        return lambda i: torch.topk(ts[i], k, dim=1, largest=False, sorted=True)
    return Impl("torch-cpu", prepare, fetch_topk_torch, P.sync_none, "host", P.host_name(),
                note="torch.topk(largest=False, sorted=True)")


def topk_cupy(P, m, n, k):
    if P.cupy is None:
        return None
    cp = P.cupy

    def prepare(sets):
        cs = [cp.asarray(s[0]) for s in sets]
        return lambda i: _host_topk(cp, cs[i], k)
    return Impl("cupy", prepare, fetch_topk_cupy, P.sync_cupy, "device", P.cuda_device_name(),
                mem=cupy_peak_mem(cp), mem_source="cupy pool growth",
                note="argpartition (a full sort in CuPy) + sort of the k")


def topk_numpy(P, m, n, k):
    _cpu_topk_limit(m, n)
    return Impl("numpy", lambda sets: (lambda i: _host_topk(np, sets[i][0], k)), fetch_topk_numpy,
                P.sync_none, "host", P.host_name(), mem=host_peak_mem, mem_source="tracemalloc",
                note="argpartition + sort of the k")


TOPK_FACTORIES = [("vaccel", topk_vaccel), ("vaccel-rowkernel", topk_vaccel_rowkernel),
                  ("torch-cuda", topk_torch_cuda), ("cupy", topk_cupy),
                  ("numpy", topk_numpy), ("torch-cpu", topk_torch_cpu)]


# --------------------------------------------------------------------------------------------
# knn implementations


def knn_vaccel(P, nq, nb, d, k):
    V = P.vaccel

    def prepare(sets):
        dev = [(V.asarray(q), V.asarray(db)) for q, db in sets]
        return lambda i: V.knn(dev[i][0], dev[i][1], k)
    probe = vaccel_peak_mem(V)
    return Impl("vaccel", prepare, fetch_knn("float32"), V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="resident queries and database")


def knn_vaccel_f16(P, nq, nb, d, k):
    V = P.vaccel
    info = P.vaccel_info() or {}
    dev_info = info.get("device") if isinstance(info, dict) else None
    if isinstance(dev_info, dict) and not dev_info.get("storage_16bit", True):
        raise Skip("the device has no 16-bit storage")

    def prepare(sets):
        dev = [(V.asarray(q.astype(np.float16)), V.asarray(db.astype(np.float16))) for q, db in sets]
        return lambda i: V.knn(dev[i][0], dev[i][1], k)
    probe = vaccel_peak_mem(V)
    return Impl("vaccel-f16", prepare, fetch_knn("float16"), V.synchronize, "device",
                P.vaccel_device_name(), mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="float16 storage, resident; recall vs the exact float32 result recorded")


def _torch_knn_impl(P, name, device, nb, k):
    torch = P.torch
    chunk = torch_chunk(nb)
    fn = torch_knn(torch, k, chunk)
    cuda = device == "cuda"

    def prepare(sets):
        ts = [(torch.from_numpy(q).to(device), torch.from_numpy(db).to(device)) for q, db in sets]
        return lambda i: fn(*ts[i])
    return Impl(name, prepare, fetch_knn_torch, P.sync_torch if cuda else P.sync_none,
                "device" if cuda else "host", P.cuda_device_name() if cuda else P.host_name(),
                mem=torch_peak_mem(torch) if cuda else None,
                mem_source="torch.cuda.max_memory_allocated" if cuda else None,
                note=f"chunks of {chunk} queries: |q|^2 - 2 q@db.T + |db|^2, topk" +
                     (", TF32 off" if cuda else ""))


def knn_torch_cuda(P, nq, nb, d, k):
    if not P.torch_cuda:
        return None
    return _torch_knn_impl(P, "torch-cuda", "cuda", nb, k)


def _cpu_knn_limit(nq, nb, d):
    if nq * nb * d > CPU_PEER_MAX_GEMM_WORK:
        raise Skip(f"nq*nb*d={nq * nb * d:.2g} above the CPU peer limit {CPU_PEER_MAX_GEMM_WORK:.2g}")


def knn_torch_cpu(P, nq, nb, d, k):
    if P.torch is None or P.torch_cuda:
        return None     # on a CUDA machine the CPU build of the same library adds nothing
    _cpu_knn_limit(nq, nb, d)
    return _torch_knn_impl(P, "torch-cpu", "cpu", nb, k)


def _index_search(new_index, k):
    """prepare(sets) for an index implementation: one index per input set with its database
    added (untimed); the timed call searches the set's queries."""
    def prepare(sets):
        idx = []
        for q, db in sets:
            index = new_index()
            index.add(db)
            idx.append((q, index))
        return lambda i: idx[i][1].search(idx[i][0], k)
    return prepare


def knn_faiss(P, nq, nb, d, k):
    if P.faiss is None:
        return None
    _cpu_knn_limit(nq, nb, d)
    faiss = P.faiss
    prepare = _index_search(lambda: faiss.IndexFlatL2(d), k)
    return Impl("faiss", prepare, fetch_knn("float32"), P.sync_none, "host", P.host_name(),
                mem=host_peak_mem, mem_source="tracemalloc", note="IndexFlatL2.search (database added untimed)")


def knn_faiss_gpu(P, nq, nb, d, k):
    if not P.faiss_gpu:
        return None
    faiss = P.faiss
    if k > 2048:
        raise Skip("faiss GPU indexes cap k at 2048")
    res = faiss.StandardGpuResources()

    def prepare(sets):
        idx = []
        for q, db in sets:
            index = faiss.GpuIndexFlatL2(res, d)
            index.add(db)
            idx.append((q, index))
        return lambda i: idx[i][1].search(idx[i][0], k)
    return Impl("faiss-gpu", prepare, fetch_knn("float32"), P.sync_none, "device", P.cuda_device_name(),
                note="GpuIndexFlatL2.search, NumPy queries (database added untimed)")


KNN_FACTORIES = [("vaccel", knn_vaccel), ("vaccel-f16", knn_vaccel_f16), ("torch-cuda", knn_torch_cuda),
                 ("faiss-gpu", knn_faiss_gpu), ("faiss", knn_faiss), ("torch-cpu", knn_torch_cpu)]


# --------------------------------------------------------------------------------------------
# cases


def make_topk_case(P, m, n, k):
    impls, skipped = collect_impls(P, TOPK_FACTORIES, m, n, k)
    large = m * n >= LARGE_TOPK_ELEMS
    return Case(
        name=f"topk/{m}x{n}/k={k}", family="search", op=f"topk/k={k}",
        params={"m": m, "n": n, "k": k, "largest": False, "dtype": "float32"},
        make_inputs=lambda rng: (standard_normal(rng, (m, n)),),
        impls=impls, check=make_topk_check(m, n, k), flops=None, bytes=4.0 * m * n, unit="GB/s",
        size=float(m) * n, skipped=skipped,
        rotate=4 * m * n < 2 * L2_BYTES,   # larger: one input set already exceeds the L2 many times
        max_repeats=LARGE_REPEATS if large else None, warmup=1 if large else 2, priority=PRIORITY,
    )


def flat_vaccel(P, nq, nb, d, k):
    V = P.vaccel
    prepare = _index_search(lambda: V.FlatIndex(d), k)
    probe = vaccel_peak_mem(V)
    return Impl("vaccel", prepare, fetch_knn("float32"), V.synchronize, "device", P.vaccel_device_name(),
                mem=probe, mem_source="vaccel memory stats" if probe else None,
                note="FlatIndex.search of host queries (database added untimed, resident on the device)")


FLAT_FACTORIES = [("vaccel", flat_vaccel), ("torch-cuda", knn_torch_cuda), ("torch-cpu", knn_torch_cpu),
                  ("faiss", knn_faiss)]


def make_flat_case(P, nq, nb, d, k):
    impls, skipped = collect_impls(P, FLAT_FACTORIES, nq, nb, d, k)

    def make_inputs(rng):
        return standard_normal(rng, (nq, d)), standard_normal(rng, (nb, d))

    return Case(
        name=f"flat-index/{nq}x{nb}x{d}/k={k}", family="search", op=f"flat-index/sqeuclidean/k={k}",
        params={"metric": "sqeuclidean", "nq": nq, "nb": nb, "d": d, "k": k, "dtype": "float32"},
        make_inputs=make_inputs, impls=impls, check=make_knn_check(nq, nb, k),
        flops=2.0 * nq * nb * d, bytes=4.0 * (nq * d + nb * d), unit="GFLOP/s",
        size=float(nq) * nb * d, skipped=skipped, rotate=4 * (nq + nb) * d < 2 * L2_BYTES,
        priority=PRIORITY,
    )


def make_knn_case(P, nq, nb, d, k):
    impls, skipped = collect_impls(P, KNN_FACTORIES, nq, nb, d, k)
    large = nq * nb * d >= LARGE_WORK

    def make_inputs(rng):
        return standard_normal(rng, (nq, d)), standard_normal(rng, (nb, d))

    return Case(
        name=f"knn/{nq}x{nb}x{d}/k={k}", family="search", op=f"knn/sqeuclidean/k={k}",
        params={"metric": "sqeuclidean", "nq": nq, "nb": nb, "d": d, "k": k, "dtype": "float32",
                "torch_chunk": torch_chunk(nb)},
        make_inputs=make_inputs, impls=impls, check=make_knn_check(nq, nb, k),
        flops=2.0 * nq * nb * d, bytes=4.0 * (nq * d + nb * d), unit="GFLOP/s",
        size=float(nq) * nb * d, skipped=skipped,
        rotate=4 * (nq + nb) * d < 2 * L2_BYTES,
        max_repeats=LARGE_REPEATS if large else None, warmup=1 if large else 2, priority=PRIORITY,
    )


@register
def search_cases(ctx):
    P = ctx.peers
    for m, n in (QUICK_TOPK if ctx.quick else FULL_TOPK):
        for k in (QUICK_TOPK_KS if ctx.quick else FULL_TOPK_KS):
            yield make_topk_case(P, m, n, k)
    for nq, nb, d in (QUICK_KNN if ctx.quick else FULL_KNN):
        for k in (QUICK_KNN_KS if ctx.quick else FULL_KNN_KS):
            yield make_knn_case(P, nq, nb, d, k)
    for nq, nb, d in (QUICK_FLAT if ctx.quick else FULL_FLAT):
        yield make_flat_case(P, nq, nb, d, 10)
