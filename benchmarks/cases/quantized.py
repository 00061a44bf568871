"""quantized: searches over quantized codes, vaccel.BinaryIndex and vaccel.SQIndex, against faiss
(host) and PyTorch on CUDA.

binary-index/<nb>x<bits>b/q=<nq>/k=<k>   the k nearest of nb binary codes (Hamming distance) for
              each of nq query codes, (D int32, I int64). Bytes counted: nb * bits / 8 (the codes
              read once; the floor is those bytes over the measured copy bandwidth). That floor is
              not the binding one: the pairs need nq * nb * bits / 32 popcounts of 32-bit words
              (params.popcounts), and at 16 popcounts per clock per SM (NVIDIA's rate from compute
              capability 5 to 9) an H100 SXM (132 SMs, 1.98 GHz) does 4.18e12 per second:
              params.popcount_floor_s_h100 is that second floor, the one to compare vaccel's time
              with (its 'fraction_of_floor' uses the bandwidth floor only).
sq-index/<nb>x<d>/sq8/q=<nq>/k=<k>       the k nearest (sqeuclidean) of nb vectors stored as 8-bit
              scalar-quantizer codes for each of nq float32 queries. Work counted: 2 * nq * nb * d
              flops (the distance GEMM against the decoded vectors) and nb * d + 4 * nq * d bytes
              (codes and queries read once); the floor is the larger of flops / fp32 GEMM rate and
              bytes / copy bandwidth.

What runs (database added outside the timing, queries on the host unless said):
  vaccel       BinaryIndex(bits).search(q, k) / SQIndex(d, bits=8).search(q, k): codes resident on
               the device, NumPy queries, NumPy results (SQIndex: knn's fused path, its GEMM tiles
               decoding the codes)
  vaccel-csa   binary only: the same search with VACCEL_HAMMING_CSA=1 (carry-save adders add each
               8 words of xors bitwise first, so 4 popcounts count them instead of 8: faster only if
               logic operations issue beside the popcounts; this row says whether they do)
  vaccel-unfused  sq8 only: the same SQIndex search with VACCEL_KNN_FUSED=0 (cdist tiles decoding
               the codes, written to memory, chunked top-k and merges), which filtered searches take
  faiss        IndexBinaryFlat / IndexScalarQuantizer(QT_8bit, L2) on the host, under size limits
  torch-cuda   binary: query codes and database as int64 words on the GPU; per chunk of queries the
               xor of every (query, code) pair, a SWAR popcount of each word (shifts, masks, one
               multiply), the sum over words and torch.topk(largest=False); the chunk keeps its
               nq_chunk x nb int64 tensor within 1 GiB.
               sq8: the codes decoded once (outside the timing) into a float32 database resident
               on the GPU (4x the memory of the codes), then search.py's chunked GEMM + topk
  torch-cpu    the same on the CPU, only where torch has no CUDA, under the CPU size limits

Correctness: binary: D of the checked queries exactly equal to a NumPy popcount reference; vaccel's
and faiss's I exactly equal too (ties by the lower id), a torch I must point at codes at those
distances. sq8: every record carries recall (recall@k) against the exact float32 search of the raw
vectors (error below SQ8_MIN_RECALL); vaccel's and torch's D must equal the float64 distance to the
decoded vector of the id returned (1e-3 relative), and a returned id may differ from the exact
search over the decoded vectors only by a tie.
"""

import weakref

import numpy as np

from ..harness import CPU_PEER_MAX_GEMM_WORK, Case, Impl, Skip, check_rows, collect_impls, host_peak_mem, register, \
    torch_peak_mem, vaccel_peak_mem
from ._common import (LARGE_REPEATS, fetch_pair, fetch_pair_torch, knn_reference, recall, standard_normal,
                      torch_chunk, torch_knn, under_env)

QUICK_BINARY = [(20_000, 256, 100, 10)]
FULL_BINARY = [(10_000_000, 256, 1000, 10)]
QUICK_SQ = [(20_000, 64, 100, 10)]
FULL_SQ = [(1_000_000, 128, 10_000, 10)]

H100_POPCOUNTS_PER_S = 132 * 16 * 1.98e9      # SMs x popcounts per clock per SM x boost clock
TORCH_BINARY_CHUNK_BYTES = 1 << 30
CPU_BINARY_MAX_POPCOUNTS = 2**36               # faiss IndexBinaryFlat: nq * nb * bits / 64 above this: skipped
CPU_SQ_MAX_WORK = 2**41                        # faiss IndexScalarQuantizer: nq * nb * d above this: skipped
LARGE_BINARY_PAIRS = 10**9                     # nq * nb from which a case is timed at most LARGE_REPEATS times
SQ8_MIN_RECALL = 0.9
KNN_TIE_RTOL = 1e-4
PRIORITY = 1

_POPCOUNT8 = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.int32)


# --------------------------------------------------------------------------------------------
# binary: inputs, reference, check


def binary_inputs(rng, nb, bits, nq):
    """Random codes, plus queries that are database codes with a few bits flipped (so each has
    true near neighbours, as in real use) and a handful of exact duplicates (ties)."""
    nbytes = bits // 8
    db = np.frombuffer(rng.bytes(nb * nbytes), np.uint8).reshape(nb, nbytes).copy()
    src = rng.integers(0, nb, nq)
    q = db[src].copy()
    flips = rng.integers(0, bits, (nq, 8))
    for j in range(8):
        q[np.arange(nq), flips[:, j] // 8] ^= (1 << (flips[:, j] % 8)).astype(np.uint8)
    dup = rng.integers(0, nb, min(nb // 4, 16))
    db[dup[len(dup) // 2:]] = db[dup[:len(dup) // 2]]
    return db, q


def binary_reference(db, q, rows, k, chunk=1 << 20):
    """Exact (D int64, I int64) of query rows `rows`, ties by the lower index."""
    D = np.empty((len(rows), k), np.int64)
    I = np.empty((len(rows), k), np.int64)
    for j, r in enumerate(rows):
        dist = np.empty(db.shape[0], np.int32)
        for j0 in range(0, db.shape[0], chunk):
            dist[j0:j0 + chunk] = _POPCOUNT8[np.bitwise_xor(db[j0:j0 + chunk], q[r])].sum(1)
        kk = min(k, len(dist))
        thr = np.partition(dist, kk - 1)[kk - 1]
        cand = np.flatnonzero(dist <= thr)
        o = cand[np.argsort(dist[cand], kind="stable")][:k]
        D[j], I[j] = dist[o], o
    return D, I


def make_binary_check(nq, nb, k):
    cache = []

    def check(get_rows, inputs):
        db, q = inputs
        rows = check_rows(nq, nq * nb, max_full=1 << 22)
        rows_list = np.arange(nq) if rows is None else rows
        if not (cache and cache[0][0]() is db):
            cache[:] = [(weakref.ref(db), binary_reference(db, q, rows_list, k))]
        ref_d, ref_i = cache[0][1]
        D, I, strict = get_rows(rows)
        D, I = np.asarray(D).astype(np.int64), np.asarray(I).astype(np.int64)
        if D.shape != ref_d.shape or I.shape != ref_i.shape:
            return f"shapes {D.shape}/{I.shape}, expected {ref_d.shape}"
        if not np.array_equal(D, ref_d):
            j, c = (int(v[0]) for v in np.nonzero(D != ref_d))
            return f"query {rows_list[j]}: distance {c} is {D[j, c]}, expected {ref_d[j, c]}"
        if strict and not np.array_equal(I, ref_i):
            j, c = (int(v[0]) for v in np.nonzero(I != ref_i))
            return f"query {rows_list[j]}: neighbour {c} is {I[j, c]}, expected {ref_i[j, c]} (ties to the lower id)"
        for j, r in enumerate(rows_list):
            got = _POPCOUNT8[np.bitwise_xor(db[I[j]], q[r])].sum(1)
            if not np.array_equal(got, D[j]) or len(np.unique(I[j])) != I.shape[1]:
                return f"query {r}: returned ids are not at the returned distances"
        return None
    return check


# --------------------------------------------------------------------------------------------
# what the implementations share


def _fetch_rows(strict, torch=False):
    """An Impl's fetch giving the checks (D rows, I rows, strict): strict, its ids are judged
    exactly (binary: ties to the lower id; sq8: the exact search over the decoded vectors)."""
    fetch = fetch_pair_torch if torch else fetch_pair
    return lambda res, rows: fetch(res, rows) + (strict,)


def _index_searches(make_index, k, env=None):
    """An Impl's prepare for an index: one index per input set (db, q), made and filled by
    make_index(db) outside the timing; run(i) is index.search(q, k), under env=(name, value) if
    given."""
    def prepare(sets):
        idx = [(make_index(db), q) for db, q in sets]

        def run(i):
            return idx[i][0].search(idx[i][1], k)
        return run if env is None else under_env(*env, run)
    return prepare


def _vaccel_index_impl(P, name, make_index, k, note, env=None):
    V = P.vaccel
    probe = vaccel_peak_mem(V)
    return Impl(name, _index_searches(make_index, k, env), _fetch_rows(True), V.synchronize, "device",
                P.vaccel_device_name(), mem=probe, mem_source="vaccel memory stats" if probe else None, note=note)


def _faiss_index_impl(P, make_index, k, strict, note):
    return Impl("faiss", _index_searches(make_index, k), _fetch_rows(strict), P.sync_none, "host", P.host_name(),
                mem=host_peak_mem, mem_source="tracemalloc", note=note)


def _filled(index, db, train=False):
    if train:
        index.train(db)
    index.add(db)
    return index


# --------------------------------------------------------------------------------------------
# binary: implementations


def binary_vaccel(P, nb, bits, nq, k):
    return _vaccel_index_impl(P, "vaccel", lambda db: _filled(P.vaccel.BinaryIndex(bits), db), k,
                              "BinaryIndex.search: resident codes, NumPy queries and results")


def binary_vaccel_csa(P, nb, bits, nq, k):
    """The fused pass with carry-save adders before the popcounts (VACCEL_HAMMING_CSA=1)."""
    if bits % 256:
        raise Skip("carry-save adders take codes of a multiple of 256 bits")
    return _vaccel_index_impl(
        P, "vaccel-csa", lambda db: _filled(P.vaccel.BinaryIndex(bits), db), k,
        "BinaryIndex.search with VACCEL_HAMMING_CSA=1: Harley-Seal adders, 4 popcounts per 8 words",
        env=("VACCEL_HAMMING_CSA", "1"))


def binary_faiss(P, nb, bits, nq, k):
    if P.faiss is None:
        return None
    if nq * nb * bits / 64 > CPU_BINARY_MAX_POPCOUNTS:
        raise Skip(f"nq*nb*bits/64={nq * nb * bits / 64:.2g} above the host limit {CPU_BINARY_MAX_POPCOUNTS:.2g}")
    return _faiss_index_impl(P, lambda db: _filled(P.faiss.IndexBinaryFlat(bits), db), k, True,
                             "IndexBinaryFlat.search (database added untimed)")


def _torch_popcount64(torch, x):
    """In-place SWAR popcount of every int64 of x (arithmetic shifts are masked)."""
    m1, m2, m4, h01 = 0x5555555555555555, 0x3333333333333333, 0x0F0F0F0F0F0F0F0F, 0x0101010101010101
    x.sub_((x >> 1) & m1)
    x.copy_((x & m2) + ((x >> 2) & m2))
    x.add_(x >> 4).bitwise_and_(m4)
    x.mul_(h01)
    x.bitwise_right_shift_(56)
    return x


def _torch_binary_search(torch, k, chunk):
    def search(q, db):
        Ds, Is = [], []
        for i in range(0, q.shape[0], chunk):
            qc = q[i:i + chunk]
            acc = None
            for w in range(q.shape[1]):
                x = torch.bitwise_xor(qc[:, w:w + 1], db[:, w][None, :])
                _torch_popcount64(torch, x)
                acc = x if acc is None else acc.add_(x)
            D, I = torch.topk(acc, k, dim=1, largest=False)
            Ds.append(D)
            Is.append(I)
        return torch.cat(Ds), torch.cat(Is)
    return search


def _binary_torch(P, name, device, nb, bits, nq, k):
    if bits % 64:
        raise Skip("the torch baseline packs codes into int64 words")
    torch = P.torch
    chunk = max(1, TORCH_BINARY_CHUNK_BYTES // (8 * nb))
    fn = _torch_binary_search(torch, k, chunk)
    cuda = device == "cuda"

    def prepare(sets):
        ts = [(torch.from_numpy(q.view(np.int64).copy()).to(device),
               torch.from_numpy(db.view(np.int64).copy()).to(device)) for db, q in sets]
        return lambda i: fn(*ts[i])
    return Impl(name, prepare, _fetch_rows(False, torch=True),
                P.sync_torch if cuda else P.sync_none, "device" if cuda else "host",
                P.cuda_device_name() if cuda else P.host_name(),
                mem=torch_peak_mem(torch) if cuda else None,
                mem_source="torch.cuda.max_memory_allocated" if cuda else None,
                note=f"chunks of {chunk} queries: xor, SWAR popcount of int64 words, sum, topk")


def binary_torch_cuda(P, nb, bits, nq, k):
    if not P.torch_cuda:
        return None
    return _binary_torch(P, "torch-cuda", "cuda", nb, bits, nq, k)


def binary_torch_cpu(P, nb, bits, nq, k):
    if P.torch is None or P.torch_cuda:
        return None
    if nq * nb * bits / 64 > CPU_PEER_MAX_GEMM_WORK // 16:
        raise Skip("above the CPU size limit")
    return _binary_torch(P, "torch-cpu", "cpu", nb, bits, nq, k)


BINARY_FACTORIES = [("vaccel", binary_vaccel), ("vaccel-csa", binary_vaccel_csa), ("torch-cuda", binary_torch_cuda),
                    ("faiss", binary_faiss), ("torch-cpu", binary_torch_cpu)]


# --------------------------------------------------------------------------------------------
# sq8: inputs, reference, check


def sq8_decoded(db):
    """The vectors vaccel's 8-bit ScalarQuantizer trained on db stands db's rows for (its formula,
    written out in NumPy: per-dimension min/max, 256 buckets, centres), float32."""
    vmin, vmax = db.min(0), db.max(0)
    rng = (vmax - vmin).astype(np.float32)
    L = np.float32(256)
    scale = np.where(rng > 0, L / np.where(rng > 0, rng, 1), 0).astype(np.float32)
    step = (rng / L).astype(np.float32)
    out = np.empty_like(db)
    for j0 in range(0, db.shape[0], 1 << 18):
        t = (db[j0:j0 + (1 << 18)] - vmin) * scale
        c = np.where(t >= 0, np.minimum(np.floor(t), L - 1), 0).astype(np.float32)
        out[j0:j0 + (1 << 18)] = vmin + (c + np.float32(0.5)) * step
    return out


def make_sq_check(nq, nb, k):
    cache = {}

    def check(get_rows, inputs):
        db, q = inputs
        rows = check_rows(nq, nq * nb, n_random=30)
        rows_list = np.arange(nq) if rows is None else rows
        if cache.get("db") is None or cache["db"]() is not db:
            cache.clear()
            cache["db"] = weakref.ref(db)
            dec = sq8_decoded(db)
            cache["raw"] = knn_reference(q, db, rows_list, k)
            cache["dec"] = knn_reference(q, dec, rows_list, k)
            cache["decoded"] = dec
        D, I, exact_on_decoded = get_rows(rows)
        D, I = np.asarray(D), np.asarray(I).astype(np.int64)
        out = {"recall": recall(I, cache["raw"][1], k)}
        if k >= 10:
            out["recall_at_10"] = recall(I, cache["raw"][1], 10)
        err = None
        if I.shape != cache["raw"][1].shape or I.min() < 0 or I.max() >= nb:
            err = f"shape {I.shape} or ids outside [0, {nb})"
        elif out["recall"] < SQ8_MIN_RECALL:
            err = f"recall@{k} {out['recall']:.3f} vs the exact float32 search, below {SQ8_MIN_RECALL}"
        elif exact_on_decoded:
            dec = cache["decoded"]
            ref_d = cache["dec"][0]
            for j, r in enumerate(rows_list):
                diff = dec[I[j]].astype(np.float64) - q[r].astype(np.float64)
                true = np.einsum("ij,ij->i", diff, diff)
                if not np.allclose(D[j], true, rtol=1e-3, atol=1e-3 * float(true.max())):
                    err = f"query {r}: distances differ from those to the decoded vectors returned"
                    break
                if (np.abs(true - ref_d[j]) > KNN_TIE_RTOL * np.maximum(ref_d[j], 1e-30) + 1e-3).any():
                    err = f"query {r}: a neighbour is not the exact one over the decoded vectors (nor a tie)"
                    break
        out["error"] = err
        return out
    return check


# --------------------------------------------------------------------------------------------
# sq8: implementations


def sq_vaccel(P, nb, d, nq, k):
    return _vaccel_index_impl(P, "vaccel", lambda db: _filled(P.vaccel.SQIndex(d, bits=8), db, train=True), k,
                              "SQIndex(bits=8).search: resident codes decoded inside the distance tiles")


def sq_vaccel_unfused(P, nb, d, nq, k):
    """The same search through knn's tiled path (distance tiles written, chunked top-k and merges:
    what filtered searches take), VACCEL_KNN_FUSED=0, for comparison with the fused path."""
    return _vaccel_index_impl(P, "vaccel-unfused", lambda db: _filled(P.vaccel.SQIndex(d, bits=8), db, train=True),
                              k, "SQIndex search with VACCEL_KNN_FUSED=0: cdist tiles written, chunked top-k",
                              env=("VACCEL_KNN_FUSED", "0"))


def sq_faiss(P, nb, d, nq, k):
    if P.faiss is None:
        return None
    if nq * nb * d > CPU_SQ_MAX_WORK:
        raise Skip(f"nq*nb*d={nq * nb * d:.2g} above the host limit {CPU_SQ_MAX_WORK:.2g}")
    faiss = P.faiss
    return _faiss_index_impl(
        P, lambda db: _filled(faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_L2), db,
                              train=True),
        k, False, "IndexScalarQuantizer(QT_8bit).search (trained and added untimed)")


def _sq_torch(P, name, device, nb, d, nq, k):
    torch = P.torch
    chunk = torch_chunk(nb)
    fn = torch_knn(torch, k, chunk)
    cuda = device == "cuda"

    def prepare(sets):
        ts = [(torch.from_numpy(q).to(device), torch.from_numpy(sq8_decoded(db)).to(device)) for db, q in sets]
        return lambda i: fn(*ts[i])
    return Impl(name, prepare, _fetch_rows(True, torch=True),
                P.sync_torch if cuda else P.sync_none, "device" if cuda else "host",
                P.cuda_device_name() if cuda else P.host_name(),
                mem=torch_peak_mem(torch) if cuda else None,
                mem_source="torch.cuda.max_memory_allocated" if cuda else None,
                note=f"codes decoded once into a float32 database (untimed), then chunks of {chunk} queries: "
                     "GEMM form + topk")


def sq_torch_cuda(P, nb, d, nq, k):
    if not P.torch_cuda:
        return None
    return _sq_torch(P, "torch-cuda", "cuda", nb, d, nq, k)


def sq_torch_cpu(P, nb, d, nq, k):
    if P.torch is None or P.torch_cuda:
        return None
    if nq * nb * d > CPU_PEER_MAX_GEMM_WORK:
        raise Skip("above the CPU GEMM-work limit")
    return _sq_torch(P, "torch-cpu", "cpu", nb, d, nq, k)


SQ_FACTORIES = [("vaccel", sq_vaccel), ("vaccel-unfused", sq_vaccel_unfused), ("torch-cuda", sq_torch_cuda),
                ("faiss", sq_faiss), ("torch-cpu", sq_torch_cpu)]


# --------------------------------------------------------------------------------------------
# cases


def make_binary_case(P, nb, bits, nq, k):
    impls, skipped = collect_impls(P, BINARY_FACTORIES, nb, bits, nq, k)
    popcounts = nq * nb * bits / 32
    large = nq * nb >= LARGE_BINARY_PAIRS
    return Case(
        name=f"binary-index/{nb}x{bits}b/q={nq}/k={k}", family="quantized", op=f"binary-index/k={k}",
        params={"nb": nb, "bits": bits, "nq": nq, "k": k, "popcounts": popcounts,
                "popcount_floor_s_h100": popcounts / H100_POPCOUNTS_PER_S},
        make_inputs=lambda rng: binary_inputs(rng, nb, bits, nq),
        impls=impls, check=make_binary_check(nq, nb, k), flops=None, bytes=nb * bits / 8.0, unit="GB/s",
        size=float(nq) * nb, skipped=skipped, rotate=nb * bits / 8 < 2 * 50e6,
        max_repeats=LARGE_REPEATS if large else None, warmup=1 if large else 2, priority=PRIORITY,
        note="the popcount floor (params.popcount_floor_s_h100) binds, not the bandwidth floor",
    )


def make_sq_case(P, nb, d, nq, k):
    impls, skipped = collect_impls(P, SQ_FACTORIES, nb, d, nq, k)
    large = nq * nb * d >= 10**11

    def make_inputs(rng):
        return standard_normal(rng, (nb, d)), standard_normal(rng, (nq, d))

    return Case(
        name=f"sq-index/{nb}x{d}/sq8/q={nq}/k={k}", family="quantized", op=f"sq-index/sq8/k={k}",
        params={"nb": nb, "d": d, "nq": nq, "k": k, "bits": 8, "metric": "sqeuclidean"},
        make_inputs=make_inputs, impls=impls, check=make_sq_check(nq, nb, k),
        flops=2.0 * nq * nb * d, bytes=float(nb * d + 4 * nq * d), unit="GFLOP/s",
        size=float(nq) * nb * d, skipped=skipped, rotate=nb * d < 2 * 50e6,
        max_repeats=LARGE_REPEATS if large else None, warmup=1 if large else 2, priority=PRIORITY,
    )


@register
def quantized_cases(ctx):
    P = ctx.peers
    for nb, bits, nq, k in (QUICK_BINARY if ctx.quick else FULL_BINARY):
        yield make_binary_case(P, nb, bits, nq, k)
    for nb, d, nq, k in (QUICK_SQ if ctx.quick else FULL_SQ):
        yield make_sq_case(P, nb, d, nq, k)
