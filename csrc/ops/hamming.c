/* hamming.c — exact k-NN under the Hamming distance of binary codes (BinaryIndex's search), fused:
 * the queries x database distance matrix is never written.
 *   1. hamming_threshold.comp: per query, an upper bound tau on its k-th smallest distance from a
 *      sample of the database (histogram of small-integer distances in shared memory);
 *   2. hamming_filter.comp: the whole database streamed once per block of queries (the block held
 *      in shared memory), each (distance, row) with distance <= tau appended to the query's
 *      candidate row (at most cap kept, all counted);
 *   3. topk_rows.comp over the candidate rows: the k best by (distance, row), ties to the lower row.
 * A query whose count exceeds cap has an incomplete candidate row: out_count tells the caller,
 * which redoes it exactly (vaccel's BinaryIndex does, through va_knn). */
#include <stdlib.h>

#include "../core/internal.h"

#define HAM_WG 256u
#define HAM_QT 4u            /* queries per workgroup of the threshold pass */
#define HAM_MAX_WORDS 32u    /* codes up to 1024 bits */
#define HAM_STEPS 4u         /* register-blocks of rows per workgroup of the filter pass */
#define HAM_MIN_SAMPLE 4096
#define HAM_CAND_BYTES ((uint64_t)256 << 20)   /* candidate rows of one query block */
#define GRID_X 65535u

/* Codes per thread: R * W words stay in registers (at most 32). */
static uint32_t rows_per_thread(uint32_t w) {
    uint32_t r = 32u / w;
    return r < 1 ? 1 : r > 8 ? 8 : r;
}

static va_tensor sub_rows(const va_tensor *t, int64_t r0, int64_t rows) {
    va_tensor v = *t;
    v.offset += (uint64_t)r0 * (uint64_t)t->strides[0] * va_dtype_size(t->dtype);
    v.shape[0] = rows;
    return v;
}

/* A vector as an (n, 1) matrix, for row windows. */
static va_tensor column(const va_tensor *v) {
    va_tensor c = *v;
    c.ndim = 2;
    c.shape[1] = 1;
    c.strides[0] = c.strides[1] = 1;
    return c;
}

va_status va_hamming_knn(va_stream *s, const va_tensor *q, const va_tensor *db, int64_t k, const va_tensor *mask,
                         int64_t cap, const va_tensor *out_d, const va_tensor *out_i, const va_tensor *out_count) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    VA_TRY(va_check_matrix(q, "queries", VA_U8, VA_U8));
    VA_TRY(va_check_matrix(db, "database", VA_U8, VA_U8));
    VA_TRY(va_check_matrix(out_d, "distances", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    int64_t nq = q->shape[0], nb = db->shape[0], cb = q->shape[1];
    if (db->shape[1] != cb)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "database has %lld bytes per code, queries %lld",
                       (long long)db->shape[1], (long long)cb);
    if (cb < 4 || cb % 4 || cb / 4 > HAM_MAX_WORDS || (nq > 1 && q->strides[0] % 4) || (nb > 1 && db->strides[0] % 4) ||
        q->offset % 4 || db->offset % 4)
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "codes must be rows of 1 to %u whole 32-bit words, 4-byte aligned (got %lld bytes)",
                       HAM_MAX_WORDS, (long long)cb);
    if (k < 1 || cap < k || cap > ((int64_t)1 << 24))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "need 1 <= k <= cap <= 2^24 (k %lld, cap %lld)", (long long)k,
                       (long long)cap);
    if (out_d->shape[0] != nq || out_d->shape[1] != k || out_i->shape[0] != nq || out_i->shape[1] != k)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "distances and indices must be (%lld, %lld)", (long long)nq,
                       (long long)k);
    if (!out_count || !out_count->buf || out_count->ndim != 1 || (out_count->dtype != VA_U32 && out_count->dtype != VA_I32) ||
        out_count->shape[0] != nq || (nq > 1 && out_count->strides[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "counts must be a contiguous uint32 vector of %lld elements",
                       (long long)nq);
    if (nb >= (int64_t)0xFFFFFFFE) return va_fail(VA_ERROR_INVALID_ARGUMENT, "at most 2^32 - 2 database rows");
    if (mask && (mask->ndim != 1 || mask->dtype != VA_U32 || (uint64_t)mask->shape[0] * 32 < (uint64_t)nb))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "mask must be a uint32 bitset covering the database rows");
    if (nq == 0) return VA_SUCCESS;
    /* nb == 0 runs too: the top-k of empty candidate rows pads every query. */

    const uint32_t W = (uint32_t)(cb / 4), R = rows_per_thread(W);
    va_tensor qw = *q, dw = *db;   /* as words */
    qw.dtype = dw.dtype = VA_U32;
    qw.shape[1] = dw.shape[1] = W;
    qw.strides[0] = nq > 1 ? q->strides[0] / 4 : W;
    dw.strides[0] = nb > 1 ? db->strides[0] / 4 : W;

    /* Queries per block: what shared memory holds (their words and bounds), what the candidate
     * budget holds, and what one binding window of candidates holds. */
    uint64_t smem = ctx->info.shared_memory_per_workgroup;
    int64_t qmax = (int64_t)((smem > 2048 ? smem - 1024 : smem / 2) / (4u * (W + 1u)));
    int64_t qbud = (int64_t)(HAM_CAND_BYTES / (8u * (uint64_t)cap));
    int64_t qwin = va_rows_per_binding(ctx, cap, cap, 4);
    if (qbud < qmax) qmax = qbud;
    if (qwin < qmax) qmax = qwin;
    if (qmax < 1) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "candidate rows of %lld do not fit", (long long)cap);
    /* The shared array's size is a specialization constant: round the block up so a few sizes
     * serve every call. */
    int64_t qspec = nq < qmax ? ((nq + 63) / 64) * 64 : qmax;
    if (qspec > qmax) qspec = qmax;
    int64_t qb = qspec;

    /* Database windows (each within one binding); the sample comes from the first. */
    int64_t dwin = va_rows_per_binding(ctx, dw.strides[0], W, 4);
    if (dwin <= 0) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a code row exceeds the binding range");
    int64_t n0 = nb < dwin ? nb : dwin;
    int64_t want = (int64_t)((8.0 * (double)k * (double)nb) / (double)cap) + 1;
    if (want < HAM_MIN_SAMPLE) want = HAM_MIN_SAMPLE;
    if (want > n0) want = n0;
    int64_t stride = want > 0 ? n0 / want : 1;
    if (stride < 1) stride = 1;
    int64_t sample = n0 > 0 ? (n0 + stride - 1) / stride : 0;
    const char *env = getenv("VACCEL_HAMMING_SAMPLE");   /* tuning: a fixed sample size */
    if (env && atoll(env) > 0 && n0 > 0) {
        int64_t e = atoll(env);
        stride = n0 / (e < n0 ? e : n0);
        if (stride < 1) stride = 1;
        sample = (n0 + stride - 1) / stride;
    }

    /* Carry-save adders before the popcounts (hamming_filter.comp's CSA): off unless asked for,
     * until measured faster. */
    const char *csa_env = getenv("VACCEL_HAMMING_CSA");
    int csa = W % 8 == 0 && csa_env && atoi(csa_env) > 0;

    uint32_t spec_t[6] = {HAM_WG, 1, 1, W, HAM_QT, mask ? 1u : 0u};
    const va_kernel *kt;
    VA_TRY(va_kernel_get(ctx, "hamming_threshold", spec_t, 6, 0, &kt));

    va_buffer *tau = NULL, *cv = NULL, *ci = NULL;
    VA_TRY(va_stream_scratch(s, (uint64_t)qb * 4, &tau));
    VA_TRY(va_stream_scratch(s, (uint64_t)qb * (uint64_t)cap * 4, &cv));
    VA_TRY(va_stream_scratch(s, (uint64_t)qb * (uint64_t)cap * 4, &ci));

    uint32_t mrem = 0;
    va_binding mb = {0};
    if (mask) {
        mb = va_tensor_binding(mask, VA_READ);
        mb.offset = va_align_binding(ctx, mask->offset, 4, &mrem);
        mb.size = va_tensor_span(mask) + mrem * 4;
    }
    va_tensor oc = column(out_count);
    const uint64_t slab = (uint64_t)HAM_WG * R * HAM_STEPS;

    for (int64_t q0 = 0; q0 < nq; q0 += qb) {
        int64_t qn = nq - q0 < qb ? nq - q0 : qb;
        va_tensor qv = sub_rows(&qw, q0, qn), cnt = sub_rows(&oc, q0, qn);
        uint32_t rq, rc, r0w;
        va_binding bq = va_rows_binding(ctx, &qv, 0, qn, W, VA_READ, &rq);
        va_binding bc = va_rows_binding(ctx, &cnt, 0, qn, 1, VA_READ_WRITE, &rc);
        va_binding btau = {tau, 0, (uint64_t)qn * 4, VA_READ_WRITE};
        va_binding bcv = {cv, 0, (uint64_t)qn * (uint64_t)cap * 4, VA_READ_WRITE};
        va_binding bci = {ci, 0, (uint64_t)qn * (uint64_t)cap * 4, VA_READ_WRITE};

        /* 1. bounds, counts zeroed, candidate rows emptied */
        {
            va_binding b[7];
            b[0] = bq;
            b[1] = n0 > 0 ? va_rows_binding(ctx, &dw, 0, n0, W, VA_READ, &r0w) : bq;
            if (n0 == 0) r0w = 0;
            b[2] = mask ? mb : b[1];
            b[3] = btau; b[4] = bc; b[5] = bcv; b[6] = bci;
            uint32_t pc[12] = {(uint32_t)qn, (uint32_t)n0, (uint32_t)qv.strides[0], rq, (uint32_t)dw.strides[0], r0w,
                               (uint32_t)sample, (uint32_t)stride, (uint32_t)k, (uint32_t)cap, mrem * 32, rc};
            VA_TRY(va_stream_dispatch(s, kt, b, 7, pc, sizeof pc, va_ceil_div((uint64_t)qn, HAM_QT), 1, 1));
        }
        /* 2. the database, window by window */
        for (int64_t j0 = 0; j0 < nb; j0 += dwin) {
            int64_t jn = nb - j0 < dwin ? nb - j0 : dwin;
            uint32_t rb;
            va_binding b[7];
            b[0] = bq;
            b[1] = va_rows_binding(ctx, &dw, j0, jn, W, VA_READ, &rb);
            b[2] = mask ? mb : b[1];
            b[3] = btau; b[4] = bc; b[5] = bcv; b[6] = bci;
            int vec = W % 4 == 0 && dw.strides[0] % 4 == 0 && rb % 4 == 0;
            uint32_t spec_f[9] = {HAM_WG, 1, 1, W, R, (uint32_t)qspec, mask ? 1u : 0u, vec ? 4u : 1u, csa ? 1u : 0u};
            const va_kernel *kf;
            VA_TRY(va_kernel_get(ctx, "hamming_filter", spec_f, 9, 0, &kf));
            uint64_t groups = ((uint64_t)jn + slab - 1) / slab;
            uint32_t gx = groups < GRID_X ? (uint32_t)groups : GRID_X, gy = (uint32_t)((groups + gx - 1) / gx);
            uint32_t pc[12] = {(uint32_t)qn, (uint32_t)jn, (uint32_t)qv.strides[0], rq, (uint32_t)dw.strides[0], rb,
                               (uint32_t)slab, (uint32_t)cap, (uint32_t)(mrem * 32 + (uint64_t)j0), gx, (uint32_t)j0, rc};
            VA_TRY(va_stream_dispatch(s, kf, b, 7, pc, sizeof pc, gx, gy, 1));
        }
        /* 3. the k best of each candidate row */
        va_tensor xv = {cv, 0, VA_F32, 2, {qn, cap}, {cap, 1}};
        va_tensor iv = {ci, 0, VA_U32, 2, {qn, cap}, {cap, 1}};
        va_tensor od = sub_rows(out_d, q0, qn), oi = sub_rows(out_i, q0, qn);
        VA_TRY(va_topk(s, &xv, k, 0, &iv, NULL, 0, 0, &od, &oi));
    }
    return VA_SUCCESS;
}

/* Registry adapter. Inputs: queries, database[, mask]; outputs: distances, indices, counts.
 * iparams: k, cap, has_mask. */
static va_status op_hamming_knn(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 3 || n_out != 3 || n_in != 2 + (ip[2] != 0))
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "hamming_knn takes (queries, database[, mask]) -> (distances, indices, counts)");
    return va_hamming_knn(s, &in[0], &in[1], ip[0], ip[2] ? &in[2] : NULL, ip[1], &out[0], &out[1], &out[2]);
}
VA_REGISTER_OP(hamming_knn, op_hamming_knn);
