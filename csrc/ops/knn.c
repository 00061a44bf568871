/* knn.c — exact k-nearest neighbours (and SQIndex's search over quantized codes, whose tiles decode
 * the codes as they load them): the database is taken in chunks; each chunk's distance tile
 * (cdist) is reduced to its k best per query (topk, with the filter bitset), and merged into the
 * running k best (topk over 2k candidates with their indices). Device memory is O(tile): the
 * nq x nb distance matrix never exists. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"

/* Database rows per chunk; the distance tile (a block of queries x one chunk) takes a sixteenth of
 * the largest device-local heap, between 128 MiB and 1 GiB: large enough that a chunk's kernels
 * fill the GPU, small enough to leave room for the data. */
#define CHUNK_ROWS ((int64_t)1 << 16)

static uint64_t tile_bytes(const va_context *ctx) {
    uint64_t heap = 0;
    for (uint32_t i = 0; i < ctx->info.heap_count; i++)
        if (ctx->info.heaps[i].device_local && ctx->info.heaps[i].size > heap) heap = ctx->info.heaps[i].size;
    uint64_t t = heap / 16;
    if (t < ((uint64_t)128 << 20)) t = (uint64_t)128 << 20;
    if (t > ((uint64_t)1 << 30)) t = (uint64_t)1 << 30;
    return t;
}

static va_tensor rows_of(const va_tensor *t, int64_t r0, int64_t rows) {
    va_tensor v = *t;
    v.offset += (uint64_t)r0 * (uint64_t)t->strides[0] * va_dtype_size(t->dtype);
    v.shape[0] = rows;
    return v;
}

static va_tensor matrix(va_buffer *buf, uint64_t offset, va_dtype dt, int64_t rows, int64_t cols, int64_t ld) {
    va_tensor t = {buf, offset, dt, 2, {rows, cols}, {ld, 1}};
    return t;
}

/* va_knn, and va_knn_sq when sq != NULL (db then holds scalar-quantizer codes, decoded inside the
 * distance tiles). */
static va_status knn_impl(va_stream *s, const va_tensor *q, const va_tensor *db, va_metric metric, float p,
                          int64_t k, const va_tensor *mask, const va_sq_codes *sq, const va_tensor *out_d,
                          const va_tensor *out_i) {
    va_context *ctx = va_stream_context(s);
    if (q->ndim != 2 || db->ndim != 2) return va_fail(VA_ERROR_INVALID_ARGUMENT, "queries and database must be 2-D");
    int64_t nq = q->shape[0], nb = db->shape[0];
    if (k < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "k must be at least 1");
    VA_TRY(va_check_matrix(out_d, "distances", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    if (out_d->shape[0] != nq || out_d->shape[1] != k || out_i->shape[0] != nq || out_i->shape[1] != k)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "distances and indices must be (%lld, %lld)", (long long)nq,
                       (long long)k);
    if (nq == 0) return VA_SUCCESS;
    int largest = metric == VA_METRIC_INNER;

    /* Chunk of database rows and block of queries so that one distance tile stays in budget and
     * in one binding window. */
    int64_t nbc = nb < CHUNK_ROWS ? nb : CHUNK_ROWS;
    if (nbc < 1) nbc = 1;
    int64_t qc = (int64_t)(tile_bytes(ctx) / 4 / (uint64_t)nbc);
    int64_t qr = va_rows_per_binding(ctx, nbc, nbc, 4);
    if (qr < qc) qc = qr;
    if (qc > nq) qc = nq;
    if (qc < 1) qc = 1;
    int64_t nchunks = nb == 0 ? 1 : (nb + nbc - 1) / nbc;

    va_buffer *tile = NULL, *cand_v[2] = {NULL, NULL}, *cand_i[2] = {NULL, NULL};
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * (uint64_t)nbc * 4, &tile));
    if (nchunks > 1) {
        for (int b = 0; b < 2; b++) {
            VA_TRY(va_stream_scratch(s, (uint64_t)qc * (uint64_t)(2 * k) * 4, &cand_v[b]));
            VA_TRY(va_stream_scratch(s, (uint64_t)qc * (uint64_t)(2 * k) * 4, &cand_i[b]));
        }
    }
    for (int64_t q0 = 0; q0 < nq; q0 += qc) {
        int64_t qn = nq - q0 < qc ? nq - q0 : qc;
        va_tensor qb = rows_of(q, q0, qn);
        va_tensor od = rows_of(out_d, q0, qn), oi = rows_of(out_i, q0, qn);
        int cur = 0;
        for (int64_t c = 0; c < nchunks; c++) {
            int64_t j0 = c * nbc, jn = nb - j0 < nbc ? nb - j0 : nbc;
            va_tensor dist = matrix(tile, 0, VA_F32, qn, jn, jn > 0 ? jn : 1);
            if (jn > 0) {
                va_tensor dbc = rows_of(db, j0, jn);
                if (sq) VA_TRY(va_cdist_sq(s, &qb, &dbc, sq, metric, &dist));
                else VA_TRY(va_cdist(s, &qb, &dbc, metric, p, &dist));
            }
            if (nchunks == 1) {
                VA_TRY(va_topk(s, &dist, k, largest, NULL, mask, j0, j0, &od, &oi));
                break;
            }
            /* Candidates: [running best k | this chunk's best k], row stride 2k. */
            va_tensor cv = matrix(cand_v[cur], 0, VA_F32, qn, 2 * k, 2 * k);
            va_tensor ci = matrix(cand_i[cur], 0, VA_U32, qn, 2 * k, 2 * k);
            va_tensor half_v = cv, half_i = ci;
            half_v.shape[1] = half_i.shape[1] = k;
            if (c > 0) {
                half_v.offset += (uint64_t)k * 4;
                half_i.offset += (uint64_t)k * 4;
            }
            VA_TRY(va_topk(s, &dist, k, largest, NULL, mask, j0, j0, &half_v, &half_i));
            if (c == 0) continue;
            /* Merge into the other buffer's first half, or into the output after the last chunk. */
            int last = c == nchunks - 1;
            va_tensor nv = matrix(cand_v[1 - cur], 0, VA_F32, qn, k, 2 * k);
            va_tensor ni = matrix(cand_i[1 - cur], 0, VA_U32, qn, k, 2 * k);
            VA_TRY(va_topk(s, &cv, k, largest, &ci, NULL, 0, 0, last ? &od : &nv, last ? &oi : &ni));
            cur = 1 - cur;
        }
    }
    return VA_SUCCESS;
}

/* ---- fused search: distance tiles that keep only candidates ---------------------------------
 * 1. A stratified random sample of S database rows: the GEMM kernel writes an upper bound of each
 *    query's distance to them (MODE 0) and knn_tau.comp bounds each query's k-th smallest of them
 *    from above: tau. The k-th best of a subset is no better than the k-th best of all, so every
 *    true neighbour lies within tau; about k * nb / S rows of the database do (a rank that does not depend on the data's
 *    distribution, only on the sample being random).
 * 2. The GEMM kernel runs over the whole database (MODE 1) and appends every pair whose lower bound
 *    is within tau to its query's list of cap slots: a few instructions per pair, and the nq x nb
 *    distances are never written.
 * 3. knn_select sorts each list and writes the k best. S is chosen so that a list overflows with
 *    a probability below about 1e-6 per query; an overflowed query is flagged and the caller
 *    recomputes it with va_knn (the Python wrapper does). */

#define FUSED_MAX_K 256

static uint32_t fused_cap(int64_t k) {
    uint32_t cap = k > 32 ? 4096 : 2048;
    const char *env = getenv("VACCEL_KNN_CAP");   /* tests force overflows with a small cap */
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 16 && v <= 4096 && (v & (v - 1)) == 0) cap = (uint32_t)v;
    }
    while (cap < (uint64_t)k) cap <<= 1;
    return cap;
}

int va_knn_fused_supported(const va_context *ctx, va_metric metric, int64_t k) {
    (void)ctx;
    return (metric == VA_METRIC_SQEUCLIDEAN || metric == VA_METRIC_EUCLIDEAN || metric == VA_METRIC_INNER ||
            metric == VA_METRIC_COSINE) && k >= 1 && k <= FUSED_MAX_K;
}

static uint32_t mix32(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return (uint32_t)(x ^ (x >> 31));
}

/* The sample: one random row of each of ns equal strata of nb rows, uploaded to *mapb and, where
 * map_out is not NULL, in *map_out (the caller frees it); ascending, or in a random order where shuffled (so that any fixed
 * grouping of the sample's positions is a random grouping of rows, whatever the rows' order). */
static va_status sample_rows(va_stream *s, int64_t nb, int64_t ns, int shuffled, uint32_t **map_out,
                             va_buffer **mapb) {
    va_context *ctx = va_stream_context(s);
    if (shuffled) {   /* the context's cached sample (host-visible, written when made) if it fits */
        va_buffer *hit = NULL;
        pthread_mutex_lock(&ctx->lock);
        if (ctx->sample_map && ctx->sample_nb == nb && ctx->sample_ns == ns) {
            hit = ctx->sample_map;
            va_buffer_retain(hit);
        }
        pthread_mutex_unlock(&ctx->lock);
        if (hit) {
            if (map_out) *map_out = NULL;
            *mapb = hit;
            va_status st = va_stream_hold(s, hit);   /* the stream keeps it until its work is done */
            va_buffer_release(hit);
            return st;
        }
    }
    uint32_t *map = malloc((size_t)ns * 4);
    if (!map) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "sample of %lld rows", (long long)ns);
    /* Strata bounds lo = floor(i nb / ns) step by step (no division per row), a row of each by a
     * multiply-shift of a hash; the shuffle likewise. */
    uint64_t q = (uint64_t)nb / (uint64_t)ns, r = (uint64_t)nb % (uint64_t)ns, acc = 0, lo = 0;
    for (int64_t i = 0; i < ns; i++) {
        uint64_t hi = lo + q;
        acc += r;
        if (acc >= (uint64_t)ns) { acc -= (uint64_t)ns; hi++; }
        map[i] = (uint32_t)(lo + (((uint64_t)mix32((uint64_t)i) * (hi - lo)) >> 32));
        lo = hi;
    }
    for (int64_t i = shuffled ? ns - 1 : 0; i > 0; i--) {   /* Fisher-Yates */
        int64_t j = (int64_t)(((uint64_t)mix32((uint64_t)(i + ns)) * (uint64_t)(i + 1)) >> 32);
        uint32_t t = map[i];
        map[i] = map[j];
        map[j] = t;
    }
    va_status st;
    va_buffer *hb = NULL;
    if (shuffled && va_buffer_alloc(ctx, VA_MEM_UPLOAD, (uint64_t)ns * 4, &hb) == VA_SUCCESS && va_buffer_map(hb)) {
        memcpy(va_buffer_map(hb), map, (size_t)ns * 4);
        st = va_stream_hold(s, hb);
        *mapb = hb;
        va_buffer *old = NULL;
        pthread_mutex_lock(&ctx->lock);
        old = ctx->sample_map;
        ctx->sample_map = hb;   /* the context's reference: the allocation's */
        ctx->sample_nb = nb;
        ctx->sample_ns = ns;
        pthread_mutex_unlock(&ctx->lock);
        if (old) va_buffer_release(old);
    } else {
        if (hb) va_buffer_release(hb);
        va_clear_error();
        st = va_stream_scratch(s, (uint64_t)ns * 4, mapb);
        for (int64_t i = 0; st == VA_SUCCESS && i < ns; i += 65536)   /* uploads under 1 MiB are copied now */
            st = va_stream_upload(s, *mapb, (uint64_t)i * 4, map + i, (uint64_t)((ns - i < 65536 ? ns - i : 65536) * 4));
    }
    if (st) {
        free(map);
        return st;
    }
    if (map_out) *map_out = map;
    else free(map);
    return VA_SUCCESS;
}

/* knn_select's first five bindings for queries [q0, q0 + qn): the candidate lists and counts, the
 * block's rows of D and I, its overflow flags; their element offsets in rd, ri, rf. */
static void select_bindings(va_context *ctx, va_buffer *cand, va_buffer *cnt, uint32_t cap, int64_t q0, int64_t qn,
                            int64_t k, const va_tensor *out_d, const va_tensor *out_i, const va_tensor *overflow,
                            va_binding *sb, uint32_t *rd, uint32_t *ri, uint32_t *rf) {
    sb[0] = (va_binding){cand, 0, (uint64_t)qn * cap * 8, VA_READ};
    sb[1] = (va_binding){cnt, 0, (uint64_t)qn * 4, VA_READ};
    sb[2] = va_rows_binding(ctx, out_d, q0, qn, k, VA_WRITE, rd);
    sb[3] = va_rows_binding(ctx, out_i, q0, qn, k, VA_WRITE, ri);
    va_tensor f2 = *overflow;   /* the flags as an (nq, 1) matrix */
    f2.ndim = 2;
    f2.shape[1] = 1;
    f2.strides[0] = f2.strides[1] = 1;
    sb[4] = va_rows_binding(ctx, &f2, q0, qn, 1, VA_WRITE, rf);
}

/* Queries per block of the fused search: the sample's bounds (ns per query) and the candidate lists
 * (cap per query) within the tile budget and one binding each, a multiple of bm where possible. */
static int64_t query_block(const va_context *ctx, const va_tensor *q, int64_t ns, uint32_t cap, uint32_t bm) {
    uint64_t budget = tile_bytes(ctx);
    int64_t nq = q->shape[0], qc = (int64_t)(budget / ((uint64_t)ns * 4));
    int64_t qc2 = (int64_t)(budget / ((uint64_t)cap * 8));
    if (qc2 < qc) qc = qc2;
    int64_t qr = va_rows_per_binding(ctx, ns, ns, 4);
    if (qr < qc) qc = qr;
    qr = va_rows_per_binding(ctx, (int64_t)cap * 2, (int64_t)cap * 2, 4);
    if (qr < qc) qc = qr;
    qr = va_rows_per_binding(ctx, q->strides[0], q->shape[1], va_dtype_size(q->dtype));
    if (qr < qc) qc = qr;
    if (qc >= (int64_t)bm) qc = qc / bm * bm;
    if (qc > nq) qc = nq;
    return qc;
}

/* See internal.h. */
va_status va_tau_rows(va_stream *s, va_buffer *tile, int64_t rows, int64_t n, int64_t k, int largest,
                      va_buffer *tau) {
    va_context *ctx = va_stream_context(s);
    uint32_t spec[4] = {256, 4096, 2048, largest != 0};
    const va_kernel *kt;
    VA_TRY(va_kernel_get(ctx, "knn_tau", spec, 4, 0, &kt));
    va_binding b[2] = {{tile, 0, (uint64_t)rows * n * 4, VA_READ}, {tau, 0, (uint64_t)rows * 4, VA_WRITE}};
    uint32_t pc[6] = {(uint32_t)rows, (uint32_t)n, (uint32_t)n, 0, 0, (uint32_t)k};
    uint32_t gx = rows < 65535 ? (uint32_t)rows : 65535;
    return va_stream_dispatch(s, kt, b, 2, pc, sizeof pc, gx, (uint32_t)va_ceil_div((uint64_t)rows, gx), 1);
}

/* ---- the tensor-core search (knn_coop.comp) -------------------------------------------------
 * The fused search's plan on cooperative matrices, for float32 or float16 rows alike: float16
 * copies of the queries (scaled by -2 for squared L2, -1 otherwise; unit rows for cosine) and of
 * the database (kept as it is when it is float16 already and suits the kernel) give distances
 * within a rigorous bound of the exact ones (knn_coop.glsl). The k-th least of the minima of the
 * sample's upper bounds over disjoint groups of sample rows gives tau;
 * the candidate pass keeps every pair whose lower bound is within tau; knn_select's refine variant
 * computes the exact distances of the about k candidates whose lower bound is within the k-th
 * smallest upper bound, from the original rows, and writes the k best. The result is therefore the
 * same as the float32 search's. */

typedef struct coop_plan {
    uint32_t sgm, sgn, fm, fn, mm, nn, kk, csteps, nchunks, dpad;
} coop_plan;

static int coop_plan_for(const va_context *ctx, int64_t d, coop_plan *p) {
    p->mm = ctx->info.coopmat_m;
    p->nn = ctx->info.coopmat_n;
    p->kk = ctx->info.coopmat_k;
    if (!p->mm || p->mm % 8 || p->nn % 8 || p->kk % 8) return 0;
    p->sgm = 4; p->sgn = 1; p->fm = 2; p->fn = 4;
    const char *env = getenv("VACCEL_KNN_COOP_TILE");   /* "SGM,SGN,FM,FN", for tuning */
    uint32_t e[4];
    if (env && sscanf(env, "%u,%u,%u,%u", &e[0], &e[1], &e[2], &e[3]) == 4 && e[0] && e[1] && e[2] && e[3] &&
        e[0] * e[1] <= 16 && e[2] * e[3] <= 16) {
        p->sgm = e[0]; p->sgn = e[1]; p->fm = e[2]; p->fn = e[3];
    }
    uint64_t d16 = ((uint64_t)d + p->kk - 1) / p->kk * p->kk;
    if (d16 <= 8ull * p->kk) {
        p->csteps = (uint32_t)(d16 / p->kk);
        p->nchunks = 1;
    } else {
        p->csteps = 8;
        p->nchunks = (uint32_t)((d16 + 8ull * p->kk - 1) / (8ull * p->kk));
    }
    p->dpad = p->csteps * p->kk * p->nchunks;
    uint32_t sg = ctx->info.subgroup_size, bm = p->sgm * p->fm * p->mm, bn = p->sgn * p->fn * p->nn;
    uint64_t rq = (uint64_t)p->csteps * p->kk / 8, stage = bn * (rq + 1) + bn / 4, sgs = (uint64_t)p->sgm * p->sgn;
    uint64_t shared = 2 * stage * 16 + sgs * p->mm * p->nn * 4 + sgs * 64 * 12 + sgs * 4;   /* as knn_coop.comp */
    return sg && bn % 4 == 0 && bm % 4 == 0 && (uint64_t)p->mm * p->nn % (4ull * sg) == 0 &&
           (uint64_t)p->mm * p->nn / (4ull * sg) <= 8 && bm / 4 <= 2 * stage &&
           shared <= ctx->info.shared_memory_per_workgroup &&
           p->sgm * p->sgn * sg <= ctx->info.max_workgroup_invocations && ctx->info.subgroup_size_control;
}

/* Whether the tensor-core search serves this call: VACCEL_KNN_COOP=0 turns it off. */
static int coop_applies(const va_context *ctx, const va_tensor *q, const va_tensor *db, const va_sq_codes *sq,
                        coop_plan *plan) {
    const char *env = getenv("VACCEL_KNN_COOP");
    if (sq || (env && strcmp(env, "0") == 0) || !va_coopmat_enabled(ctx)) return 0;
    if (!va_kernel_available("knn_coop") || !va_kernel_available("knn_select_refine")) return 0;
    int64_t nb = db->shape[0], d = q->shape[1];
    if (d < 1 || nb < 1 || !coop_plan_for(ctx, d, plan)) return 0;
    /* The refine pass reads any database row: the whole database in one binding; and the float16
     * copy within the tile budget. */
    if (va_rows_per_binding(ctx, db->strides[0], d, va_dtype_size(db->dtype)) < nb) return 0;
    if ((uint64_t)nb * plan->dpad * 2 > 4 * tile_bytes(ctx) ||
        va_rows_per_binding(ctx, plan->dpad, plan->dpad, 2) < nb)
        return 0;
    return 1;
}

/* Workgroups along the rows of a pass over ntiles tiles for qn queries (and the tiles each takes,
 * in *per): enough to fill the device, and for the sample pass (groups != 0: minima per subgroup
 * column and workgroup) enough for about 8 k minima per query. */
static uint64_t coop_splits(uint64_t ntiles, uint64_t qn, uint32_t bm, int64_t k, uint64_t groups, uint64_t *per) {
    uint64_t gx = va_ceil_div(qn, bm), splits = va_ceil_div(2048, gx);
    if (groups && splits < va_ceil_div(8 * (uint64_t)k, groups)) splits = va_ceil_div(8 * (uint64_t)k, groups);
    if (splits > ntiles) splits = ntiles;
    if (splits > 65535) splits = 65535;
    if (splits < 1) splits = 1;
    *per = va_ceil_div(ntiles, splits);
    return va_ceil_div(ntiles, *per);
}

/* See internal.h. */
va_status va_coop_prep(va_stream *s, const va_tensor *x, int64_t rows, int64_t valid, uint32_t dpad, uint32_t mode,
                       va_buffer *map, int64_t map_n, const va_tensor *shift, va_buffer *out, va_buffer *nrm,
                       va_buffer *res, float scale) {
    va_context *ctx = va_stream_context(s);
    if (rows == 0) return VA_SUCCESS;
    const uint32_t rows_per_wg = 8;
    uint32_t sg = ctx->info.max_subgroup_size;
    if (!sg || 64 % sg) sg = 0;
    uint32_t spec[8] = {64, 1, 1, mode, rows_per_wg, map != NULL, shift != NULL, res != NULL};
    const va_kernel *k;
    VA_TRY(va_kernel_get(ctx, x->dtype == VA_F16 ? "knn_coop_prep_f16" : "knn_coop_prep", spec, 8, sg, &k));
    int64_t d = x->shape[1];
    uint32_t rx, mu_rem = 0;
    va_binding b[6];
    b[0] = map ? va_rows_binding(ctx, x, 0, x->shape[0], d, VA_READ, &rx)
               : va_rows_binding(ctx, x, 0, valid > 0 ? valid : 1, d, VA_READ, &rx);
    b[1] = (va_binding){out, 0, (uint64_t)rows * dpad * 2, VA_WRITE};
    b[2] = (va_binding){nrm, 0, (uint64_t)(valid > 0 ? valid : 1) * 4, VA_WRITE};
    b[3] = map ? (va_binding){map, 0, (uint64_t)map_n * 4, VA_READ} : b[2];
    if (shift) {
        uint64_t at = va_align_binding(ctx, shift->offset, 4, &mu_rem);
        b[4] = (va_binding){shift->buf, at, ((uint64_t)d + mu_rem) * 4, VA_READ};
    } else {
        b[4] = b[2];
    }
    b[5] = res ? (va_binding){res, 0, (uint64_t)(valid > 0 ? valid : 1) * 4, VA_WRITE} : b[2];
    union { float f; uint32_t u; } sc = {scale};
    uint32_t pc[12] = {(uint32_t)rows, (uint32_t)valid, (uint32_t)d, dpad, (uint32_t)x->strides[0], rx,
                       dpad, 0, 0, 0, sc.u, mu_rem};
    uint64_t groups = va_ceil_div((uint64_t)rows, rows_per_wg);
    uint32_t gx = groups < 65535 ? (uint32_t)groups : 65535;
    return va_stream_dispatch(s, k, b, 6, pc, sizeof pc, gx, (uint32_t)va_ceil_div(groups, gx), 1);
}

static va_status knn_coop_impl(va_stream *s, const va_tensor *q, const va_tensor *db, const coop_plan *p,
                               va_metric metric, int64_t k, const va_tensor *out_d, const va_tensor *out_i,
                               const va_tensor *overflow) {
    va_context *ctx = va_stream_context(s);
    int64_t nq = q->shape[0], nb = db->shape[0], d = q->shape[1];
    uint32_t cap = fused_cap(k);
    uint32_t sg = ctx->info.subgroup_size, bm = p->sgm * p->fm * p->mm, bn = p->sgn * p->fn * p->nn;
    /* The sample: as large as leaves about max(4 k, 160) rows within tau (the k-th least of m >= 6 k
     * group minima lies at about 1.07 k of the sample's order, so about 1.07 k nb / ns rows of the
     * database do), because its pass (MODE 0) writes only the minima of its bounds over groups of
     * FN rows or more (knn_coop.comp) and so costs only its GEMM, while every candidate costs the
     * candidate pass. On an H100 (10,000 x 1,000,000 x 128 float16, GPU ms of the whole search) this
     * was the best of the sizes tried: k = 10, 67k rows 18.9 (45k 19.3, 90k 18.9); k = 100, 270k
     * rows 23.4 (135k 24.9, 180k 24.1, 360k 23.8). At least 6 k FN rows, for 6 k groups or more.
     * VACCEL_KNN_SAMPLE scales it, for tuning. */
    const char *se = getenv("VACCEL_KNN_SAMPLE");
    double sf = se && *se ? strtod(se, NULL) : 1.0;
    if (!(sf >= 0.05 && sf <= 64.0)) sf = 1.0;
    double within = 4.0 * (double)k < 160.0 ? 160.0 : 4.0 * (double)k;
    int64_t ns = nb <= cap ? nb : (int64_t)ceil((double)nb * 1.07 * (double)k / within * sf);
    if (ns < 6 * k * (int64_t)p->fn) ns = 6 * k * (int64_t)p->fn;
    if (ns > nb) ns = nb;
    if (ns < 1) ns = 1;
    /* The sample pass's groups: per query, NN minima for each of its SGN subgroup columns of each
     * workgroup along the rows (splits of the sample's tiles), about 8 k of them or as many as
     * fill the device. */
    const uint64_t ntiles_s = va_ceil_div((uint64_t)ns, bn), mgroups = (uint64_t)p->sgn * p->nn;
    int cosine = metric == VA_METRIC_COSINE;
    uint32_t mcode = metric == VA_METRIC_INNER ? 1 : cosine ? 2 : 0;
    uint32_t outcode = metric == VA_METRIC_EUCLIDEAN ? 1 : metric == VA_METRIC_INNER ? 2 : 0;

    /* Rounding bounds (knn_coop.glsl): float16 rounding of a float32 value is within 2^-10 of it
     * whatever the rounding mode, and values below float16's normal range lose at most 2^-14
     * (flushed to zero or not); float16 rows (not cosine's) are copied exactly. */
    double alpha = mcode == 0 ? 2.0 : 1.0;
    int q_exact = q->dtype == VA_F16 && !cosine, x_exact = db->dtype == VA_F16 && !cosine;
    double uq = q_exact ? 0.0 : 1.0 / 1024, ux = x_exact ? 0.0 : 1.0 / 1024;
    double eq = q_exact ? 0.0 : 1.0 / 16384, ex = x_exact ? 0.0 : 1.0 / 16384;
    float c2h = (float)(0.5 * alpha * (uq + ux + uq * ux) * 1.01);
    float c3 = (float)(alpha * (eq + ex) * sqrt((double)d) * 1.02);
    float c1 = (float)((2.0 * (double)d + 32.0) / 4194304.0);
    float c0 = (float)((double)d * eq * ex * 1.01 + 1e-30);
    union { float f; uint32_t u; } uc0 = {c0}, uc1 = {c1}, uc2 = {c2h}, uc3 = {c3};

    /* The database's float16 operand: the rows themselves where they suit the kernel. */
    uint32_t rdb;
    va_binding bdb = va_rows_binding(ctx, db, 0, nb, d, VA_READ, &rdb);
    int direct_x = x_exact && d == (int64_t)p->dpad && db->strides[0] % 8 == 0 && rdb % 8 == 0;
    va_buffer *xh = NULL, *xn = NULL, *xs = NULL, *xsn = NULL, *mapb = NULL, *qh = NULL, *qnrm = NULL;
    VA_TRY(va_stream_scratch(s, (uint64_t)nb * 4, &xn));
    if (direct_x) {
        va_tensor t = {xn, 0, VA_F32, 1, {nb}, {1}};
        VA_TRY(va_row_l2(s, db, &t, 0));
    } else {
        VA_TRY(va_stream_scratch(s, (uint64_t)nb * p->dpad * 2, &xh));
        VA_TRY(va_coop_prep(s, db, nb, nb, p->dpad, cosine, NULL, 0, NULL, xh, xn, NULL, 1.0f));
    }
    /* The sample, gathered into its own operand. */
    VA_TRY(sample_rows(s, nb, ns, 1, NULL, &mapb));
    VA_TRY(va_stream_scratch(s, (uint64_t)ns * p->dpad * 2, &xs));
    VA_TRY(va_stream_scratch(s, (uint64_t)ns * 4, &xsn));
    VA_TRY(va_coop_prep(s, db, ns, ns, p->dpad, cosine, mapb, ns, NULL, xs, xsn, NULL, 1.0f));

    /* Query blocks: the sample's bounds and the candidate lists within the tile budget. */
    uint64_t per_s, m_k = coop_splits(ntiles_s, (uint64_t)nq > 2048ull * bm ? (uint64_t)nq : 2048ull * bm, bm, k,
                                      mgroups, &per_s) * mgroups;   /* the minima per query where gx is large */
    int64_t qc = query_block(ctx, q, (int64_t)m_k, cap, bm);
    if (qc < 1) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "fused knn: no query block fits");
    int64_t qpad = (qc + bm - 1) / bm * bm;
    /* The minima of the largest and the last query block. */
    uint64_t tile_elems = (uint64_t)qc * coop_splits(ntiles_s, (uint64_t)qc, bm, k, mgroups, &per_s) * mgroups;
    uint64_t qlast = (uint64_t)(nq % qc ? nq % qc : qc);
    uint64_t tl_last = qlast * coop_splits(ntiles_s, qlast, bm, k, mgroups, &per_s) * mgroups;
    if (tl_last > tile_elems) tile_elems = tl_last;
    va_buffer *tile = NULL, *tau_v = NULL, *cand = NULL, *cnt = NULL;
    VA_TRY(va_stream_scratch(s, (uint64_t)qpad * p->dpad * 2, &qh));
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * 4, &qnrm));
    VA_TRY(va_stream_scratch(s, tile_elems * 4, &tile));
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * 4, &tau_v));
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * cap * 8, &cand));
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * 4, &cnt));

    const va_kernel *kern[2];
    /* VACCEL_KNN_COOP_PROBE=1 (profiling only, the results are wrong): the candidate pass without
     * its output, to time the GEMM and the candidate test alone. */
    const char *probe = getenv("VACCEL_KNN_COOP_PROBE");
    for (uint32_t mode = 0; mode < 2; mode++) {
        uint32_t kmode = mode == 1 && probe && strcmp(probe, "1") == 0 ? 2 : mode;
        uint32_t spec[15] = {p->sgm * p->sgn * sg, 1, 1, p->sgm, p->sgn, p->fm, p->fn, p->mm, p->nn, p->kk,
                             p->csteps, p->nchunks == 1, mcode, kmode, sg};
        VA_TRY(va_kernel_get(ctx, "knn_coop", spec, 15, sg, &kern[mode]));
    }
    const char *selname = q->dtype == VA_F16 ? (db->dtype == VA_F16 ? "knn_select_refine_f16" : "knn_select_refine_a16")
                                             : db->dtype == VA_F16 ? "knn_select_refine_b16" : "knn_select_refine";
    const uint32_t xcap = 1024;
    uint32_t sel_spec[6] = {256, cap, outcode, mcode, xcap, out_i->dtype == VA_I64};
    const va_kernel *ksel;
    VA_TRY(va_kernel_get(ctx, selname, sel_spec, 6, 0, &ksel));

    for (int64_t q0 = 0; q0 < nq; q0 += qc) {
        int64_t qn = nq - q0 < qc ? nq - q0 : qc;
        int64_t qp = (qn + bm - 1) / bm * bm;
        va_tensor qb = rows_of(q, q0, qn);
        VA_TRY(va_coop_prep(s, &qb, qp, qn, p->dpad, cosine, NULL, 0, NULL, qh, qnrm, NULL, (float)-alpha));
        for (uint32_t mode = 0; mode < 2; mode++) {
            int64_t ncols = mode == 0 ? ns : nb;
            va_binding b[7];
            b[0] = (va_binding){qh, 0, (uint64_t)qp * p->dpad * 2, VA_READ};
            uint32_t x_off = 0, ldx = p->dpad / 8;
            if (mode == 0) b[1] = (va_binding){xs, 0, (uint64_t)ns * p->dpad * 2, VA_READ};
            else if (direct_x) {
                b[1] = bdb;
                x_off = rdb / 8;
                ldx = (uint32_t)(db->strides[0] / 8);
            } else b[1] = (va_binding){xh, 0, (uint64_t)nb * p->dpad * 2, VA_READ};
            uint64_t ntiles = va_ceil_div((uint64_t)ncols, bn), gx = va_ceil_div((uint64_t)qn, bm), per;
            uint64_t splits = coop_splits(ntiles, (uint64_t)qn, bm, k, mode == 0 ? mgroups : 0, &per);
            const uint64_t m = splits * mgroups;   /* mode 0: the minima per query */
            b[2] = mode == 0 ? (va_binding){tile, 0, (uint64_t)qn * m * 4, VA_WRITE}
                             : (va_binding){cand, 0, (uint64_t)qn * cap * 8, VA_WRITE};
            b[3] = (va_binding){cnt, 0, (uint64_t)qn * 4, mode == 0 ? VA_WRITE : VA_READ_WRITE};
            b[4] = (va_binding){qnrm, 0, (uint64_t)qn * 4, VA_READ};
            b[5] = mode == 0 ? (va_binding){xsn, 0, (uint64_t)ns * 4, VA_READ}
                             : (va_binding){xn, 0, (uint64_t)nb * 4, VA_READ};
            b[6] = mode == 0 ? b[4] : (va_binding){tau_v, 0, (uint64_t)qn * 4, VA_READ};
            struct {
                uint32_t nq, nb, nchunks, ldq, ldx, q_off, x_off, qn_off, xn_off, tau_off, tau_ld, o_off, ldo,
                    col_base, tiles_per_wg, zero_counts, c0, c1, c2h, c3;
            } pc = {(uint32_t)qn, (uint32_t)ncols, p->nchunks, p->dpad / 8, ldx, 0, x_off, 0, 0,
                    0, 1, 0, mode == 0 ? (uint32_t)m : cap, 0, (uint32_t)per,
                    mode == 0, uc0.u, uc1.u, uc2.u, uc3.u};
            VA_TRY(va_stream_dispatch(s, kern[mode], b, 7, &pc, sizeof pc, (uint32_t)gx, (uint32_t)splits, 1));
            if (mode == 0) VA_TRY(va_tau_rows(s, tile, qn, (int64_t)m, k, 0, tau_v));   /* tau: each query's bound */
        }
        uint32_t rd, ri, rf, rq;
        va_binding sb[10];
        select_bindings(ctx, cand, cnt, cap, q0, qn, k, out_d, out_i, overflow, sb, &rd, &ri, &rf);
        sb[5] = (va_binding){qnrm, 0, (uint64_t)qn * 4, VA_READ};
        sb[6] = (va_binding){xn, 0, (uint64_t)nb * 4, VA_READ};
        sb[7] = (va_binding){tau_v, 0, (uint64_t)qn * 4, VA_READ};
        sb[8] = va_rows_binding(ctx, q, q0, qn, d, VA_READ, &rq);
        sb[9] = bdb;
        uint32_t need = (uint32_t)(k < nb ? k : nb);
        uint32_t spc[21] = {(uint32_t)qn, (uint32_t)k, rd, (uint32_t)out_d->strides[0], ri,
                            (uint32_t)out_i->strides[0], rf, need, 0, 0, 0, 1,
                            (uint32_t)d, (uint32_t)q->strides[0], rq, (uint32_t)db->strides[0], rdb,
                            uc0.u, uc1.u, uc2.u, uc3.u};
        uint32_t gx = qn < 65535 ? (uint32_t)qn : 65535;
        VA_TRY(va_stream_dispatch(s, ksel, sb, 10, spc, sizeof spc, gx, (uint32_t)va_ceil_div((uint64_t)qn, gx), 1));
    }
    return VA_SUCCESS;
}

/* va_knn_fused, and va_knn_fused_sq when sq != NULL: db then holds scalar-quantizer codes that
 * the tiles (matmul.comp's knn_sq8 / knn_sq4) and the exact distances of candidates decode. */
static va_status knn_fused_impl(va_stream *s, const va_tensor *q, const va_tensor *db, const va_sq_codes *sq,
                                va_metric metric, int64_t k, const va_tensor *out_d, const va_tensor *out_i,
                                const va_tensor *overflow) {
    va_context *ctx = va_stream_context(s);
    if (!va_knn_fused_supported(ctx, metric, k))
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "fused knn takes sqeuclidean, euclidean, inner or cosine "
                       "and k up to %d", FUSED_MAX_K);
    if (sq) {
        VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F32));
        VA_TRY(va_check_sq_codes(db, sq));
    } else {
        VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F16));
        VA_TRY(va_check_matrix(db, "database", VA_F32, VA_F16));
    }
    VA_TRY(va_check_matrix(out_d, "distances", VA_F32, VA_F32));
    /* indices: uint32 (0xFFFFFFFF for none) or int64 (-1 for none) */
    if (out_i->dtype == VA_I64) VA_TRY(va_check_matrix(out_i, "indices", VA_I64, VA_I64));
    else VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    int64_t nq = q->shape[0], nb = db->shape[0], d = q->shape[1];
    /* Columns of a database row a binding must cover: its code bytes for quantized rows. */
    int64_t dcols = sq ? db->shape[1] : d;
    if (sq ? sq->d != d : db->shape[1] != d)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "database has %lld columns, queries have %lld",
                       (long long)(sq ? sq->d : db->shape[1]), (long long)d);
    if (out_d->shape[0] != nq || out_d->shape[1] != k || out_i->shape[0] != nq || out_i->shape[1] != k)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "distances and indices must be (%lld, %lld)", (long long)nq,
                       (long long)k);
    if (!overflow || overflow->ndim != 1 || overflow->shape[0] != nq || va_dtype_size(overflow->dtype) != 4 ||
        (nq > 1 && overflow->strides[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "overflow must be a contiguous 32-bit vector of %lld flags",
                       (long long)nq);
    if (nb > 0xFFFFFFF0ll) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "database of more than 2^32 rows");
    if (nq == 0) return VA_SUCCESS;
    if (nb == 0) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "fused knn needs a database row");
    coop_plan plan;
    if (coop_applies(ctx, q, db, sq, &plan)) return knn_coop_impl(s, q, db, &plan, metric, k, out_d, out_i, overflow);

    uint32_t cap = fused_cap(k);
    double qk = (double)k + 7.0 * sqrt((double)k) + 14.0;
    int64_t ns = nb <= cap ? nb : (int64_t)ceil((double)nb * qk / cap);
    if (ns > nb) ns = nb;
    if (ns < 1) ns = 1;
    uint32_t mcode = metric == VA_METRIC_INNER ? 1 : metric == VA_METRIC_COSINE ? 2 : 0;
    uint32_t outcode = metric == VA_METRIC_EUCLIDEAN ? 1 : metric == VA_METRIC_INNER ? 2 : 0;
    size_t eb = va_dtype_size(db->dtype);

    /* Norms (inverse norms for cosine), once. */
    va_buffer *qnb = NULL, *dnb = NULL, *mapb = NULL;
    VA_TRY(va_stream_scratch(s, (uint64_t)nq * 4, &qnb));
    VA_TRY(va_stream_scratch(s, (uint64_t)(nb > 0 ? nb : 1) * 4, &dnb));
    va_tensor tqn = {qnb, 0, VA_F32, 1, {nq}, {1}}, tdn = {dnb, 0, VA_F32, 1, {nb}, {1}};
    uint32_t nmode = mcode == 2 ? 2 : 0;
    VA_TRY(va_row_l2(s, q, &tqn, nmode));
    if (nb > 0 && sq) VA_TRY(va_sq_row_norms(s, db, sq, nmode == 2, &tdn));
    else if (nb > 0) VA_TRY(va_row_l2(s, db, &tdn, nmode));

    /* The sample: one random row of each of ns equal strata, ascending. */
    uint32_t *map = NULL;
    VA_TRY(sample_rows(s, nb, ns, 0, &map, &mapb));
    va_status st = VA_SUCCESS;

    /* Tiles: the SIMT GEMM, 128 x 128 (128 x 64 for float16 operands, whose 8 x 8 register tile
     * spills). Devices with cooperative matrices take knn_coop_impl instead. */
    int half = !sq && (q->dtype == VA_F16 || db->dtype == VA_F16);
    uint32_t bm = 128, bn = half ? 64 : 128, bk = 8, tm = 8, tn = half ? 4 : 8;
    const char *tile_env = getenv("VACCEL_KNN_TILE");   /* "BM,BN,BK,TM,TN", for tuning on a new device */
    uint32_t e[5];
    if (tile_env && sscanf(tile_env, "%u,%u,%u,%u,%u", &e[0], &e[1], &e[2], &e[3], &e[4]) == 5 && e[3] &&
        e[4] && e[3] % 4 == 0 && e[4] % 4 == 0 && e[2] % 4 == 0 && e[0] % e[3] == 0 && e[1] % e[4] == 0 &&
        (e[0] / e[3]) * (e[1] / e[4]) <= ctx->info.max_workgroup_invocations &&
        2u * e[2] * (e[0] + e[1]) * 4 + 4u * (e[0] * 2 + e[1]) <= ctx->info.shared_memory_per_workgroup) {
        bm = e[0]; bn = e[1]; bk = e[2]; tm = e[3]; tn = e[4];
    }
    uint32_t wg = (bm / tm) * (bn / tn), vec = 4;
    const char *name = sq ? (sq->bits == 4 ? "matmul_knn_sq4" : "matmul_knn_sq8")
                     : q->dtype == VA_F16 ? (db->dtype == VA_F16 ? "matmul_knn_f16" : "matmul_knn_a16")
                     : db->dtype == VA_F16 ? "matmul_knn_b16" : "matmul_knn";

    /* Query blocks (query_block); database chunks: one binding, and at most 65535 workgroups
     * along y. */
    int64_t qc = query_block(ctx, q, ns, cap, bm);
    if (qc < 1) { free(map); return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "fused knn: no query block fits"); }
    int64_t nbc = va_rows_per_binding(ctx, db->strides[0], dcols, eb);
    if (nbc > (int64_t)65535 * bn) nbc = (int64_t)65535 * bn;
    if (nbc < 1) { free(map); return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a database row exceeds the binding range"); }

    va_buffer *tile = NULL, *tau_v = NULL, *cand = NULL, *cnt = NULL;
    st = va_stream_scratch(s, (uint64_t)qc * (uint64_t)ns * 4, &tile);
    if (!st) st = va_stream_scratch(s, (uint64_t)qc * 4, &tau_v);
    if (!st) st = va_stream_scratch(s, (uint64_t)qc * cap * 8, &cand);
    if (!st) st = va_stream_scratch(s, (uint64_t)qc * 4, &cnt);
    if (st) { free(map); return st; }

    union { float f; uint32_t u; } slack = {(float)((8.0 * (double)d + 32.0) / 16777216.0)}, guard = {1.0f / 64.0f};
    const va_kernel *kern[2][2][2] = {{{NULL}}};   /* [mode][vec_a][vec_b] */
    uint32_t sel_spec[6] = {256, cap, outcode, 0, 0, out_i->dtype == VA_I64};
    const va_kernel *ksel;
    st = va_kernel_get(ctx, "knn_select", sel_spec, 6, 0, &ksel);
    for (int64_t q0 = 0; st == VA_SUCCESS && q0 < nq; q0 += qc) {
        int64_t qn = nq - q0 < qc ? nq - q0 : qc;
        uint32_t ra, rqn;
        va_binding bq = va_rows_binding(ctx, q, q0, qn, d, VA_READ, &ra);
        va_tensor tqn2 = {qnb, 0, VA_F32, 2, {nq, 1}, {1, 1}};
        va_binding bqn = va_rows_binding(ctx, &tqn2, q0, qn, 1, VA_READ, &rqn);
        int va_ = d % vec == 0 && q->strides[0] % vec == 0 && ra % vec == 0;
        for (int mode = 0; st == VA_SUCCESS && mode < 2; mode++) {
            int first = 1;
            for (int64_t j0 = 0; st == VA_SUCCESS && j0 < nb; j0 += nbc) {
                int64_t jn = nb - j0 < nbc ? nb - j0 : nbc;
                /* MODE 0: the sample rows inside this chunk, map[s0, s1). */
                int64_t s0 = 0, s1 = 0;
                if (mode == 0) {
                    while (s0 < ns && map[s0] < (uint64_t)j0) s0++;
                    s1 = s0;
                    while (s1 < ns && map[s1] < (uint64_t)(j0 + jn)) s1++;
                    if (s1 == s0) continue;
                }
                uint32_t rb, rdn;
                va_binding bind[10];
                bind[0] = bq;
                bind[1] = va_rows_binding(ctx, db, j0, jn, dcols, VA_READ, &rb);
                uint32_t nbind = 8;
                if (sq) {
                    bind[8] = va_tensor_binding(sq->vmin, VA_READ);
                    bind[9] = va_tensor_binding(sq->step, VA_READ);
                    nbind = 10;
                }
                bind[2] = mode == 0 ? (va_binding){tile, 0, (uint64_t)qn * (uint64_t)ns * 4, VA_WRITE}
                                    : (va_binding){cand, 0, (uint64_t)qn * cap * 8, VA_WRITE};
                bind[3] = bqn;
                va_tensor tdn2 = {dnb, 0, VA_F32, 2, {nb, 1}, {1, 1}};
                bind[4] = va_rows_binding(ctx, &tdn2, j0, jn, 1, VA_READ, &rdn);
                bind[5] = (va_binding){mapb, 0, (uint64_t)ns * 4, VA_READ};
                bind[6] = mode == 0 ? bind[5] : (va_binding){tau_v, 0, (uint64_t)qn * 4, VA_READ};
                bind[7] = (va_binding){cnt, 0, (uint64_t)qn * 4, mode == 0 ? VA_WRITE : VA_READ_WRITE};
                int vb = d % vec == 0 && db->strides[0] % vec == 0 && rb % vec == 0;
                if (!kern[mode][va_][vb]) {
                    uint32_t spec[14] = {wg, 1, 1, bm, bn, bk, tm, tn, 0, 1, (uint32_t)va_, (uint32_t)vb,
                                         mcode, (uint32_t)mode};
                    st = va_kernel_get(ctx, name, spec, 14, 0, &kern[mode][va_][vb]);
                    if (st) break;
                }
                struct {
                    uint32_t m, n, k, lda, ldb, ldo, a_off, b_off, o_off, qn_off, dn_off, map_off, map_base,
                        col_base, cap, tau_ld, tau_off, zero_counts, slack, guard;
                } pc = {(uint32_t)qn, (uint32_t)(mode == 0 ? s1 - s0 : jn), (uint32_t)d, (uint32_t)q->strides[0],
                        (uint32_t)db->strides[0], mode == 0 ? (uint32_t)ns : cap, ra, rb,
                        mode == 0 ? (uint32_t)s0 : 0, rqn, rdn, (uint32_t)s0, (uint32_t)j0,
                        (uint32_t)j0, cap, 1, 0, (uint32_t)first, slack.u, guard.u};
                uint32_t ncols = pc.n;
                st = va_stream_dispatch(s, kern[mode][va_][vb], bind, nbind, &pc, sizeof pc,
                                        va_ceil_div((uint64_t)qn, bm), va_ceil_div(ncols, bn), 1);
                first = 0;
            }
            if (st) break;
            if (mode == 0 && (st = va_tau_rows(s, tile, qn, ns, k, 0, tau_v)) != VA_SUCCESS) break;   /* tau */
        }
        if (st) break;
        uint32_t rd, ri, rf;
        va_binding sb[5];
        select_bindings(ctx, cand, cnt, cap, q0, qn, k, out_d, out_i, overflow, sb, &rd, &ri, &rf);
        uint32_t spc[8] = {(uint32_t)qn, (uint32_t)k, rd, (uint32_t)out_d->strides[0], ri,
                           (uint32_t)out_i->strides[0], rf, 0};
        uint32_t gx = qn < 65535 ? (uint32_t)qn : 65535;
        st = va_stream_dispatch(s, ksel, sb, 5, spc, sizeof spc, gx, va_ceil_div((uint64_t)qn, gx), 1);
    }
    free(map);
    return st;
}

va_status va_knn(va_stream *s, const va_tensor *q, const va_tensor *db, va_metric metric, float p, int64_t k,
                 const va_tensor *mask, const va_tensor *out_d, const va_tensor *out_i) {
    va_clear_error();
    return knn_impl(s, q, db, metric, p, k, mask, NULL, out_d, out_i);
}

va_status va_knn_sq(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_sq_codes *sq,
                    va_metric metric, int64_t k, const va_tensor *mask, const va_tensor *out_d,
                    const va_tensor *out_i) {
    return knn_impl(s, q, codes, metric, 2.0f, k, mask, sq, out_d, out_i);
}

va_status va_knn_fused(va_stream *s, const va_tensor *q, const va_tensor *db, va_metric metric, int64_t k,
                       const va_tensor *out_d, const va_tensor *out_i, const va_tensor *overflow) {
    va_clear_error();
    return knn_fused_impl(s, q, db, NULL, metric, k, out_d, out_i, overflow);
}

va_status va_knn_fused_sq(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_sq_codes *sq,
                          va_metric metric, int64_t k, const va_tensor *out_d, const va_tensor *out_i,
                          const va_tensor *overflow) {
    return knn_fused_impl(s, q, codes, sq, metric, k, out_d, out_i, overflow);
}

/* Registry adapter. Inputs: queries, database[, mask]; outputs: distances, indices.
 * iparams: metric, k, has_mask; fparams: p. */
static va_status op_knn(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                        const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_i < 3 || n_out != 2 || n_in != 2 + (ip[2] != 0))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "knn takes (queries, database[, mask]) -> (distances, indices)");
    return va_knn(s, &in[0], &in[1], (va_metric)ip[0], n_f > 0 ? (float)fp[0] : 2.0f, ip[1],
                  ip[2] ? &in[2] : NULL, &out[0], &out[1]);
}
VA_REGISTER_OP(knn, op_knn);

/* Inputs: queries, database; outputs: distances, indices, overflow flags. iparams: metric, k. */
static va_status op_knn_fused(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 2 || n_out != 3 || n_in != 2)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "knn_fused takes (queries, database) -> (distances, indices, overflow)");
    return va_knn_fused(s, &in[0], &in[1], (va_metric)ip[0], ip[1], &out[0], &out[1], &out[2]);
}
VA_REGISTER_OP(knn_fused, op_knn_fused);
