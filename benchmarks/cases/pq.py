"""pq: product-quantization and IVF search (vaccel.PQIndex, IVFPQIndex, IVFFlatIndex) against
faiss on the host and a PyTorch ADC search on CUDA. Every record carries two recall figures
against the exact neighbours (see Recall below), so recall can be plotted against queries per
second (plots.py: recall_qps.png).

pq-index/<nb>x<d>/m=<m>/k=<k>          k best of nb PQ codes (8 bits per sub-code) for nq queries
                                       by asymmetric distance (ADC). Bytes counted: nb * m (the
                                       codes read once); the floor is those bytes over the copy
                                       bandwidth. The real limiter is the table lookups: nq * nb * m
                                       of them in shared memory (1.6e11 at the full size), so the
                                       fraction of that floor is small by nature; QPS = nq / time.
ivfpq/<nb>/nlist=<nlist>/nprobe=<p>    IVF-PQ (residual codes, m sub-quantizers of 8 bits, faiss's
                                       precomputed tables), the nprobe nearest lists of each query
                                       searched. Bytes counted: nq * nprobe * (nb / nlist) * m, the
                                       codes of the probed lists (each (query, list) pair reads its
                                       list once); one case per nprobe, 1, 2, 4, ... 128.
ivfflat/<nb>/nlist=<nlist>/nprobe=<p>  the same with raw float32 vectors in the lists (bytes:
                                       nq * nprobe * (nb / nlist) * 4 d).

What runs. Every implementation searches the same quantizers: the codebooks and coarse centroids
are trained once per size (vaccel.ProductQuantizer / IVFPQIndex.train on a sample, faiss's
ProductQuantizer / k-means where vaccel is missing), and every index is built from them outside
the timing (an IVF index once per size, reused by the nprobe cases). Training time is not counted.
  vaccel       index.search(xq, k[, nprobe]) on the index built on the device (NumPy queries in,
               NumPy (D, I) out)
  vaccel-f16tables  pq-index only: the same index searched with table_dtype='float16' (two queries'
               table entries per shared-memory read; distances within ~1e-3)
  torch-cuda   pq-index only: the ADC a PyTorch user writes: codes (m, nb) int64 on the GPU (encoded
               there), a table per query ((q_j - c_jk)^2 summed over the sub-vector), then per chunk
               of queries D = sum_j table[:, j].index_select(1, codes[j]) and torch.topk; the chunk
               keeps its nq_chunk x nb float32 matrix within 2 GiB
  faiss        faiss.IndexPQ / IndexIVFPQ (use_precomputed_table=1) / IndexIVFFlat on the host, all
               threads, built from the same quantizers; pq-index skipped above FAISS_PQ_MAX_WORK
               table lookups

Correctness (before timing): on a few queries (all when small), the distance of every returned id
recomputed in float64 (the ADC of its reference code, the distance to its IVF-PQ reconstruction, or
the exact distance for IVF-Flat) equals the returned distance within 1e-3 relative, and pq-index
results equal the exhaustive float64 ADC ranking rank by rank; 1% of entries may differ (an
implementation that encodes for itself can pick the other centroid of a near-tie).

Recall, against the exact neighbours (float64, knn_reference) of a fixed set of queries, the same
for every implementation and every case of a size: all nq queries when nq * nb <= RECALL_PAIRS,
else RECALL_PAIRS // nb of them evenly spaced (at least RECALL_MIN_QUERIES; 100 of the 1000 at
10M; the count is recorded as recall_queries). Two figures per record:
  recall_1_at_10  1-recall@10 (faiss's R@10 for PQ): the fraction of those queries whose exact
                  nearest neighbour is among the 10 returned. The figure PQ is usually judged by:
                  16 bytes per vector among 10M clustered vectors rarely rank the 10 exact
                  neighbours as the 10 best by ADC (an H100 run recorded 10-recall@10 = 0.0 for
                  every implementation, then over 8 queries).
  recall_at_10    10-recall@10: the fraction of the 10 exact nearest neighbours among the 10
                  returned (the intersection measure), over those queries.
"""

import numpy as np

from ..harness import Case, Impl, Skip, check_rows, collect_impls, register, torch_peak_mem, vaccel_peak_mem
from ._common import fetch_pair, fetch_pair_torch, knn_reference, recall, recall_1, standard_normal

K = 10
NBITS = 8
QUICK_PQ = [(20_000, 32, 8, 100)]                 # nb, d, m, nq
FULL_PQ = [(10_000_000, 128, 16, 1000), (1_000_000, 128, 16, 1000)]
QUICK_IVF = (20_000, 32, 64, 8, 100, (1, 4, 16))  # nb, d, nlist, m, nq, nprobes
FULL_IVF = (1_000_000, 128, 1024, 16, 1000, (1, 2, 4, 8, 16, 32, 64, 128))
FAISS_PQ_MAX_WORK = 2 ** 38      # nq * nb * m table lookups above which faiss's IndexPQ is skipped
TORCH_TILE_BYTES = 2 << 30       # the PyTorch ADC's distance chunk
TRAIN_ROWS = 65536               # training sample (faiss samples 256 points per centroid)
QUICK_TRAIN = (10_000, "random", 5)   # --quick: rows, initialisation, iterations (lavapipe is slow)
CHECK_MISS = 0.01                # fraction of checked entries allowed off (near-tie encodings)
CENTRES = 256                    # clusters of the synthetic data
RECALL_PAIRS = 10**9             # query x database pairs of the exact neighbours computed for recall
RECALL_MIN_QUERIES = 64          # ... but recall over at least this many queries (or all of them)

_BUILDS = {}                     # data, quantizers and references per size, shared by its cases
_INDEXES = {}                    # built indexes per (implementation, kind, size)


# --------------------------------------------------------------------------------------------
# data and quantizers


def clustered(rng, n, d, centres):
    """float32 (n, d): N(0, 1) around one of the centres per row (structure to quantize)."""
    x = standard_normal(rng, (n, d))
    step = 1 << 20
    for i in range(0, n, step):
        x[i:i + step] += centres[rng.integers(0, len(centres), min(step, n - i))]
    return x


def _data(key, nb, d, nq, quick):
    rng = np.random.default_rng(key[1] * 31 + d)
    centres = (rng.standard_normal((CENTRES, d)) * 1.5).astype(np.float32)
    xb, xq = clustered(rng, nb, d, centres), clustered(rng, nq, d, centres)
    rows = QUICK_TRAIN[0] if quick else TRAIN_ROWS
    xt = xb[np.sort(rng.choice(nb, min(nb, rows), replace=False))]
    return xb, xq, xt


def _train_pq(P, xt, d, m, quick):
    """(centroids (m, 256, d/m)) from vaccel.ProductQuantizer, or faiss's where vaccel is missing."""
    if P.vaccel is not None:
        init, iters = (QUICK_TRAIN[1], QUICK_TRAIN[2]) if quick else ("k-means++", 25)
        return P.vaccel.ProductQuantizer(d, m, NBITS, init=init, max_iter=iters).train(xt).centroids
    if P.faiss is not None:
        pq = P.faiss.ProductQuantizer(d, m, NBITS)
        pq.train(xt)
        return P.faiss.vector_to_array(pq.centroids).reshape(m, 1 << NBITS, d // m).astype(np.float32)
    raise Skip("neither vaccel nor faiss can train the quantizers")


def _encode(cent, x, chunk=1 << 18):
    """Reference PQ codes (n, m) uint8: nearest centroid per sub-vector, float64 (NumPy)."""
    m, ksub, ds = cent.shape
    c = cent.astype(np.float64)
    cn = (c * c).sum(2)
    out = np.empty((x.shape[0], m), np.uint8)
    for i in range(0, x.shape[0], chunk):
        blk = x[i:i + chunk].astype(np.float64).reshape(-1, m, ds)
        for j in range(m):
            out[i:i + chunk, j] = np.argmin(cn[j][None] - 2.0 * blk[:, j] @ c[j].T, axis=1)
    return out


def _decode(cent, codes):
    m = cent.shape[0]
    return np.concatenate([cent[j][codes[:, j]] for j in range(m)], axis=1)


def pq_build(P, nb, d, m, nq, quick):
    key = ("pq", nb, d, m, nq)
    if key not in _BUILDS:
        _BUILDS.clear()
        _INDEXES.clear()
        xb, xq, xt = _data(key, nb, d, nq, quick)
        cent = np.ascontiguousarray(_train_pq(P, xt, d, m, quick), np.float32)
        if P.vaccel is not None:
            pq = P.vaccel.ProductQuantizer(d, m, NBITS)
            pq.centroids = cent
            codes = pq.encode(xb)
        else:
            codes = _encode(cent, xb)
        _BUILDS[key] = {"xb": xb, "xq": xq, "cent": cent, "codes": codes, "refs": {},
                        "recall": exact_neighbours(xq, xb)}
    return key, _BUILDS[key]


def ivf_build(P, nb, d, nlist, m, nq, quick):
    key = ("ivf", nb, d, nlist, m, nq)
    if key not in _BUILDS:
        _BUILDS.clear()
        _INDEXES.clear()
        xb, xq, xt = _data(key, nb, d, nq, quick)
        if P.vaccel is not None:
            V = P.vaccel
            tmp = (V.IVFPQIndex(d, nlist, m, NBITS, init=QUICK_TRAIN[1], pq_max_iter=QUICK_TRAIN[2]) if quick else
                   V.IVFPQIndex(d, nlist, m, NBITS))
            tmp.train(xt)
            coarse, cent = tmp.centroids, tmp.pq.centroids
            from vaccel import cluster
            labels = cluster.assign(xb, coarse)[0]
            codes = tmp.pq.encode(xb - coarse[labels])
        elif P.faiss is not None:
            km = P.faiss.Kmeans(d, nlist, niter=10, seed=1234)
            km.train(xt)
            coarse = km.centroids.astype(np.float32)
            labels = km.index.search(xb, 1)[1][:, 0]
            cent = np.ascontiguousarray(_train_pq(P, xt - coarse[km.index.search(xt, 1)[1][:, 0]], d, m, quick))
            codes = _encode(cent, xb - coarse[labels])
        else:
            raise Skip("neither vaccel nor faiss can train the quantizers")
        _BUILDS[key] = {"xb": xb, "xq": xq, "coarse": np.ascontiguousarray(coarse, np.float32),
                        "cent": np.ascontiguousarray(cent, np.float32), "labels": np.asarray(labels, np.int64),
                        "codes": codes, "recall": exact_neighbours(xq, xb)}
    return key, _BUILDS[key]


def _cached(name, build):
    if name not in _INDEXES:
        _INDEXES[name] = build()
    return _INDEXES[name]


def _prepare(get_build, tag, make, run):
    """An Impl's prepare in this family: the size's shared build (data and quantizers), the index
    made from it by make(key, build) once per size (cached under tag, outside the timing), and
    the timed call run(index, build)."""
    def prepare(sets):
        key, build = get_build()
        index = _cached(tag + (key,), lambda: make(key, build))
        return lambda i: run(index, build)
    return prepare


# --------------------------------------------------------------------------------------------
# checks


def recall_rows(nq, nb):
    """The queries recall is measured on: all of them when nq * nb <= RECALL_PAIRS, else
    max(RECALL_MIN_QUERIES, RECALL_PAIRS // nb) of them, evenly spaced."""
    n = nq if nq * nb <= RECALL_PAIRS else min(nq, max(RECALL_MIN_QUERIES, RECALL_PAIRS // nb))
    return np.unique(np.linspace(0, nq - 1, n).round().astype(np.int64))


def exact_neighbours(xq, xb):
    """(rows, their K exact neighbours): the float64 ranking of the float32 data, for recall."""
    rows = recall_rows(xq.shape[0], xb.shape[0])
    return rows, knn_reference(xq, xb, rows, K)[1]


def recall_figures(I, build):
    """The recall entries of a record from the ids I (nq, K) of every query."""
    rows, gt = build["recall"]
    return {"recall_at_10": recall(I[rows], gt, K), "recall_1_at_10": recall_1(I[rows], gt, K),
            "recall_queries": int(rows.size)}


def _rows_ok(D, I, nb, true):
    """None or a message: ids valid and distinct per row, and D within 1e-3 of true(rows, I) for
    all but CHECK_MISS of the entries."""
    if I.min() < 0 or I.max() >= nb:
        return f"ids outside [0, {nb})"
    for r in range(I.shape[0]):
        if np.unique(I[r]).size != I.shape[1]:
            return f"row {r}: repeated ids"
    t = true(I)
    scale = max(1.0, float(np.abs(t).max()))
    off = np.abs(D.astype(np.float64) - t) > 1e-3 * np.abs(t) + 1e-5 * scale
    if off.mean() > CHECK_MISS:
        r, c = (int(v[0]) for v in np.nonzero(off))
        return (f"{int(off.sum())} of {off.size} distances are not the float64 distance of their id "
                f"(row {r}: {D[r, c]!r} vs {t[r, c]!r})")
    return None


def make_pq_check(build, nq, nb):
    def check(get_rows, inputs):
        rows = check_rows(nq, nq * nb, n_random=6)
        rows = np.arange(nq) if rows is None else rows
        D, I = (np.asarray(a) for a in get_rows(None))
        out = recall_figures(I, build)
        D, I = D[rows], I[rows]
        refs = build["refs"]
        key = tuple(rows.tolist())
        if key not in refs:
            cent, codes, xq = build["cent"].astype(np.float64), build["codes"], build["xq"][rows]
            m, ksub, ds = cent.shape
            tab = ((xq.astype(np.float64).reshape(-1, m, 1, ds) - cent[None]) ** 2).sum(3)
            adc = np.zeros((len(rows), nb))
            for j in range(m):
                adc += tab[:, j, :][:, codes[:, j]]
            best = np.sort(np.partition(adc, K - 1, axis=1)[:, :K], axis=1)
            refs.clear()
            refs[key] = (adc, best)
        adc, best = refs[key]
        err = _rows_ok(D, I, nb, lambda ids: np.take_along_axis(adc, ids, 1))
        if err is None:
            scale = max(1.0, float(np.abs(best).max()))
            off = np.abs(D - best) > 1e-3 * np.abs(best) + 1e-5 * scale
            if off.mean() > CHECK_MISS:
                err = f"{int(off.sum())} ranks differ from the exhaustive ADC ranking"
        out["error"] = err
        return out
    return check


def make_ivf_check(build, kind, nq, nb):
    def check(get_rows, inputs):
        D, I = (np.asarray(a) for a in get_rows(None))
        rows = np.unique(np.linspace(0, nq - 1, min(nq, 32)).astype(np.int64))
        q = build["xq"][rows].astype(np.float64)

        def true(ids):
            if kind == "flat":
                x = build["xb"][ids.ravel()].astype(np.float64)
            else:
                flat = ids.ravel()
                x = (build["coarse"][build["labels"][flat]].astype(np.float64) +
                     _decode(build["cent"].astype(np.float64), build["codes"][flat]))
            x = x.reshape(ids.shape + (-1,))
            return ((x - q[:, None, :]) ** 2).sum(2)
        out = recall_figures(I, build)
        out["error"] = "fewer than k results" if (I[rows] < 0).any() else _rows_ok(D[rows], I[rows], nb, true)
        return out
    return check


# --------------------------------------------------------------------------------------------
# pq-index implementations: each prepare builds (or reuses) its index from the shared build


def _pq_vaccel(P, get_build, nq, nb, m, tables):
    V = P.vaccel

    def make(key, build):
        index = V.PQIndex(build["xb"].shape[1], m, NBITS, table_dtype=tables)
        index.pq.centroids = build["cent"]
        index.add(build["xb"])
        return index
    name = "vaccel" if tables == "float32" else "vaccel-f16tables"
    note = ("PQIndex.search: float32 tables in shared memory, k best kept during the scan" if tables == "float32"
            else "PQIndex(table_dtype='float16'): two queries per table read, entries rounded to float16")
    return Impl(name, _prepare(get_build, ("vaccel", tables), make, lambda index, b: index.search(b["xq"], K)),
                fetch_pair, V.synchronize, "device", P.vaccel_device_name(),
                mem=vaccel_peak_mem(V), mem_source="vaccel.memory_stats", note=note)


def pq_vaccel(P, get_build, nq, nb, m):
    return _pq_vaccel(P, get_build, nq, nb, m, "float32")


def pq_vaccel_f16(P, get_build, nq, nb, m):
    return _pq_vaccel(P, get_build, nq, nb, m, "float16")


def pq_faiss(P, get_build, nq, nb, m):
    if P.faiss is None:
        return None
    if nq * nb * m > FAISS_PQ_MAX_WORK:
        raise Skip(f"nq*nb*m={nq * nb * m:.2g} table lookups above the host limit {FAISS_PQ_MAX_WORK:.2g}")
    faiss = P.faiss

    def make(key, build):
        index = faiss.IndexPQ(build["xb"].shape[1], m, NBITS)
        faiss.copy_array_to_vector(build["cent"].ravel(), index.pq.centroids)
        index.is_trained = True
        index.add(build["xb"])
        return index
    return Impl("faiss", _prepare(get_build, ("faiss",), make, lambda index, b: index.search(b["xq"], K)),
                fetch_pair, P.sync_none, "host", P.host_name(),
                note=f"IndexPQ.search, {faiss.omp_get_max_threads()} threads")


def pq_torch(P, get_build, nq, nb, m):
    if not P.torch_cuda:
        return None
    torch = P.torch
    chunk = max(1, min(1024, TORCH_TILE_BYTES // (4 * nb)))

    def make(key, build):
        ds = build["cent"].shape[2]
        cent = torch.from_numpy(build["cent"]).cuda()
        codes = torch.empty((m, nb), dtype=torch.int64, device="cuda")
        step = 1 << 20
        for i in range(0, nb, step):        # encoded on the GPU, as a PyTorch user would
            x = torch.from_numpy(build["xb"][i:i + step]).cuda().view(-1, m, ds)
            for j in range(m):
                c = cent[j]
                dist = (c * c).sum(1)[None] - 2.0 * x[:, j] @ c.T
                codes[j, i:i + step] = dist.argmin(1)
        return cent, codes, torch.from_numpy(build["xq"]).cuda()

    def run(made, build):
        cent, codes, xq = made
        tab = ((xq.view(nq, m, 1, cent.shape[2]) - cent[None]) ** 2).sum(3)       # (nq, m, ksub)
        Ds, Is = [], []
        for q0 in range(0, nq, chunk):
            t = tab[q0:q0 + chunk]
            dist = t[:, 0].index_select(1, codes[0])
            for j in range(1, m):
                dist += t[:, j].index_select(1, codes[j])
            v, ix = torch.topk(dist, K, dim=1, largest=False)
            Ds.append(v)
            Is.append(ix)
        return torch.cat(Ds), torch.cat(Is)
    return Impl("torch-cuda", _prepare(get_build, ("torch",), make, run), fetch_pair_torch, P.sync_torch, "device",
                P.cuda_device_name(), mem=torch_peak_mem(torch), mem_source="torch.cuda.max_memory_allocated",
                note=f"tables + index_select gathers summed over m, topk; chunks of {chunk} queries")


def make_pq_case(P, nb, d, m, nq, quick):
    holder = {}

    def get_build():
        key, b = pq_build(P, nb, d, m, nq, quick)
        holder["build"] = b
        return key, b

    impls, skipped = collect_impls(P, (("vaccel", pq_vaccel), ("vaccel-f16tables", pq_vaccel_f16),
                                       ("torch-cuda", pq_torch), ("faiss", pq_faiss)), get_build, nq, nb, m)

    def make_inputs(rng):
        _, b = get_build()
        return b["xq"], b["cent"]

    def check(get_rows, inputs):
        return make_pq_check(holder["build"], nq, nb)(get_rows, inputs)

    return Case(name=f"pq-index/{nb}x{d}/m={m}/k={K}", family="pq", op=f"pq-index/m={m}/k={K}",
                params={"nb": nb, "d": d, "m": m, "nbits": NBITS, "k": K, "nq": nq, "metric": "sqeuclidean"},
                make_inputs=make_inputs, impls=impls, check=check, flops=None,
                bytes=float(nb) * m * NBITS / 8, unit="GB/s", size=float(nb), skipped=skipped, rotate=False,
                max_repeats=10 if nq * nb * m >= 1 << 36 else None)


# --------------------------------------------------------------------------------------------
# IVF implementations


def ivf_vaccel(P, get_build, kind, nprobe):
    V = P.vaccel

    def make(key, build):
        _, nb, d, nlist, m, _ = key
        index = V.IVFFlatIndex(d, nlist) if kind == "flat" else V.IVFPQIndex(d, nlist, m, NBITS)
        index.centroids = build["coarse"]
        if kind == "pq":
            index.pq.centroids = build["cent"]
        index.add(build["xb"])
        return index
    return Impl("vaccel", _prepare(get_build, ("vaccel", kind), make,
                                   lambda index, b: index.search(b["xq"], K, nprobe=nprobe)),
                fetch_pair, V.synchronize, "device", P.vaccel_device_name(),
                mem=vaccel_peak_mem(V), mem_source="vaccel.memory_stats",
                note="one workgroup per (query, list) pair, k best kept during the scan, topk merge")


def ivf_faiss(P, get_build, kind, nprobe):
    if P.faiss is None:
        return None
    faiss = P.faiss

    def make(key, build):
        _, nb, d, nlist, m, _ = key
        quantizer = faiss.IndexFlatL2(d)
        quantizer.add(build["coarse"])
        if kind == "flat":
            index = faiss.IndexIVFFlat(quantizer, d, nlist)
        else:
            index = faiss.IndexIVFPQ(quantizer, d, nlist, m, NBITS)
            faiss.copy_array_to_vector(build["cent"].ravel(), index.pq.centroids)
        index.is_trained = True
        if kind == "pq":
            index.use_precomputed_table = 1
            index.precompute_table()
        index.add(build["xb"])
        return index, quantizer          # the index refers to its quantizer: keep both

    def run(made, build):
        index = made[0]
        index.nprobe = nprobe
        return index.search(build["xq"], K)
    what = "IndexIVFFlat" if kind == "flat" else "IndexIVFPQ (precomputed tables)"
    return Impl("faiss", _prepare(get_build, ("faiss", kind), make, run), fetch_pair, P.sync_none, "host",
                P.host_name(), note=f"{what}.search, {faiss.omp_get_max_threads()} threads")


def make_ivf_case(P, kind, nb, d, nlist, m, nq, nprobe, quick):
    holder = {}

    def get_build():
        key, b = ivf_build(P, nb, d, nlist, m, nq, quick)
        holder["build"] = b
        return key, b

    impls, skipped = collect_impls(P, (("vaccel", ivf_vaccel), ("faiss", ivf_faiss)), get_build, kind, nprobe)

    def make_inputs(rng):
        _, b = get_build()
        return b["xq"], b["coarse"]

    def check(get_rows, inputs):
        return make_ivf_check(holder["build"], kind, nq, nb)(get_rows, inputs)

    row_bytes = m * NBITS / 8 if kind == "pq" else 4 * d
    family = "ivfpq" if kind == "pq" else "ivfflat"
    params = {"nb": nb, "d": d, "nlist": nlist, "nprobe": nprobe, "k": K, "nq": nq, "metric": "sqeuclidean"}
    if kind == "pq":
        params.update(m=m, nbits=NBITS)
    return Case(name=f"{family}/{nb}/nlist={nlist}/nprobe={nprobe}", family="pq", op=f"{family}/{nb}/nlist={nlist}",
                params=params, make_inputs=make_inputs, impls=impls, check=check, flops=None,
                bytes=float(nq) * nprobe * (nb / nlist) * row_bytes, unit="GB/s", size=float(nprobe),
                skipped=skipped, rotate=False)


@register
def pq_cases(ctx):
    P = ctx.peers
    for nb, d, m, nq in (QUICK_PQ if ctx.quick else FULL_PQ):
        yield make_pq_case(P, nb, d, m, nq, ctx.quick)
    nb, d, nlist, m, nq, nprobes = QUICK_IVF if ctx.quick else FULL_IVF
    for kind in ("pq", "flat"):
        for p in nprobes:
            yield make_ivf_case(P, kind, nb, d, nlist, m, nq, p, ctx.quick)
