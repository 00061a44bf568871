/* ivf.c — IVF search (IVF-Flat and IVF-PQ): the coarse quantizer's nprobe best lists per query
 * (va_knn over the centroids), then one workgroup per (query, probed list) pair scanning that
 * list with its k best selected in the same pass (ivf_flat_scan.comp: exact distances to the raw
 * vectors; pq_scan.comp: ADC over residual codes), then a topk over the pairs of each query.
 *
 * IVF-PQ tables (codes encode x - y_C, y_C the list's centroid; y_R the decoded residual):
 *   sqeuclidean with the precomputed term (faiss's precomputed tables):
 *     ||q - y_C - y_R||^2 = ||q - y_C||^2 + (||y_R||^2 + 2 y_C.y_R) + (-2 q.y_R)
 *     = the coarse distance + term[list] + a per-query table of -2 q.c
 *   sqeuclidean without it (term too large to keep): a table per pair of the residual q - y_C
 *   inner: q.(y_C + y_R) = the coarse inner product + a per-query table of q.c
 * The stored rows (slots) are bound in windows that fit maxStorageBufferRange; a pair's list is
 * scanned where it meets each window, and every (window, pair) has its own columns of the
 * partial results. Queries are taken in chunks whose scratch fits the budget. */
#include "scan.h"

static int64_t row_stride(const va_tensor *t) { return t->shape[0] > 1 ? t->strides[0] : t->shape[1]; }

static va_tensor rows_of(const va_tensor *t, int64_t r0, int64_t rows) {
    va_tensor v = *t;
    v.offset += (uint64_t)r0 * (uint64_t)row_stride(t) * va_dtype_size(t->dtype);
    v.shape[0] = rows;
    return v;
}

/* window_rows > 0 overrides the plan (for tests of the splitting). */
static va_status ivf_search(va_stream *s, const va_ivf_index *ix, const va_tensor *q, int64_t nprobe, int64_t k,
                            const va_tensor *mask, const va_tensor *out_d, const va_tensor *out_i,
                            int64_t window_rows) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    int is_pq = ix->codes != NULL;
    VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(ix->centroids, "centroids", VA_F32, VA_F32));
    int64_t nq = q->shape[0], d = q->shape[1], nlist = ix->centroids->shape[0];
    if (ix->centroids->shape[1] != d) return va_fail(VA_ERROR_INVALID_ARGUMENT, "centroids must have d columns");
    if (ix->metric != VA_METRIC_SQEUCLIDEAN && ix->metric != VA_METRIC_INNER)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "metric must be sqeuclidean or inner");
    if (k < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "k must be at least 1");
    if (nlist < 1 || nprobe < 1 || nprobe > nlist)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "nprobe must be between 1 and the number of lists (%lld)",
                       (long long)nlist);
    VA_TRY(va_check_matrix(ix->lists, "lists", VA_U32, VA_I32));
    if (ix->lists->shape[0] != nlist || ix->lists->shape[1] != 2 || (nlist > 1 && ix->lists->strides[0] != 2))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "lists must be a contiguous (nlist, 2) uint32 matrix");
    const va_tensor *data = is_pq ? ix->codes : ix->vectors;
    if (!data) return va_fail(VA_ERROR_INVALID_ARGUMENT, "an IVF index needs vectors or codes");
    int64_t m = ix->m, nbits = ix->nbits, ksub = 0, mk = 0, csw = 0, row_words;
    if (is_pq) {
        if (m < 1 || nbits < 1 || nbits > 8 || d % m)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "m must divide d and nbits lie between 1 and 8");
        ksub = (int64_t)1 << nbits;
        mk = m * ksub;
        csw = (m * nbits + 31) / 32;
        VA_TRY(va_check_matrix(ix->codes, "codes", VA_U32, VA_I32));
        VA_TRY(va_check_matrix(ix->pq_centroids, "pq_centroids", VA_F32, VA_F32));
        if (ix->codes->shape[1] != csw || (ix->codes->shape[0] > 1 && ix->codes->strides[0] != csw))
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "codes must be a contiguous (slots, %lld) uint32 matrix",
                           (long long)csw);
        if (ix->pq_centroids->shape[0] != mk || ix->pq_centroids->shape[1] != d / m ||
            (mk > 1 && ix->pq_centroids->strides[0] != d / m))
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "pq_centroids must be a contiguous (m * 2^nbits, d / m) matrix");
        if (ix->pq_term) {
            VA_TRY(va_check_matrix(ix->pq_term, "pq_term", VA_F32, VA_F32));
            if (ix->pq_term->shape[0] != nlist || ix->pq_term->shape[1] != mk ||
                (nlist > 1 && ix->pq_term->strides[0] != mk))
                return va_fail(VA_ERROR_INVALID_ARGUMENT, "pq_term must be a contiguous (nlist, m * 2^nbits) matrix");
            if (ix->metric != VA_METRIC_SQEUCLIDEAN)
                return va_fail(VA_ERROR_INVALID_ARGUMENT, "pq_term serves the sqeuclidean metric only");
            if (va_tensor_span(ix->pq_term) + 64 > ctx->info.max_storage_buffer_range)
                return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "pq_term exceeds the device's binding range");
        }
        row_words = csw;
    } else {
        VA_TRY(va_check_matrix(ix->vectors, "vectors", VA_F32, VA_F32));
        if (ix->vectors->shape[1] != d) return va_fail(VA_ERROR_INVALID_ARGUMENT, "vectors must have d columns");
        row_words = row_stride(ix->vectors);
    }
    int64_t slots = data->shape[0];
    if (slots >= (int64_t)VA_NONE - 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "more than 2^32 - 2 stored rows are not supported");
    VA_TRY(va_check_matrix(out_d, "distances", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    if (out_d->shape[0] != nq || out_d->shape[1] != k || out_i->shape[0] != nq || out_i->shape[1] != k)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "distances and indices must be (%lld, %lld)", (long long)nq,
                       (long long)k);
    if (mask && (mask->ndim != 1 || mask->dtype != VA_U32 || (uint64_t)mask->shape[0] * 32 < (uint64_t)slots))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "mask must be a uint32 bitset covering the stored rows");
    if (nq == 0) return VA_SUCCESS;
    int largest = ix->metric == VA_METRIC_INNER;
    int pair_lut = is_pq && !largest && !ix->pq_term;

    /* Selection: PQ tables share the shared memory with the candidates; a flat scan offers a row
     * per subgroup, so a round offers at most 256 / (smallest subgroup) rows. */
    uint64_t lut_bytes = (uint64_t)mk * 4;
    int lut_shared = is_pq && lut_bytes + (uint64_t)(2 * k + VA_SCAN_WG) * 8 <= va_scan_shared_bytes(ctx);
    uint32_t min_sg = ctx->info.min_subgroup_size ? ctx->info.min_subgroup_size : ctx->info.subgroup_size;
    if (min_sg < 1) min_sg = 1;
    uint32_t unit = is_pq ? VA_SCAN_WG : VA_SCAN_WG / min_sg;
    /* PQ lists: rounds of one row per thread, so a work item's threshold forms after 256 rows;
     * flat: a few rows per subgroup per round (each row is a vector read). */
    va_select_plan sp = va_select_plan_for(ctx, k, 1, lut_shared ? lut_bytes : 0, unit, is_pq ? 1 : 16);

    int64_t wr = va_rows_per_binding(ctx, row_words, is_pq ? csw : d, 4);
    if (window_rows > 0 && window_rows < wr) wr = window_rows;
    if (wr < 1) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a stored row exceeds the device's binding range");
    int64_t nwin = slots == 0 ? 1 : (slots + wr - 1) / wr;
    int64_t W = nwin * nprobe;
    if (nprobe > ctx->info.max_workgroup_count[1])
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "nprobe %lld exceeds the device's grid", (long long)nprobe);

    /* Queries per chunk: coarse results, tables, partial results and candidate buffers in budget. */
    uint64_t budget = va_scan_budget(ctx);
    uint64_t lut_rows_per_q = pair_lut ? (uint64_t)nprobe : 1;
    /* The grid takes queries in x; the pair tables (pq_lut) take their rows in y. */
    int64_t qc = nq > ctx->info.max_workgroup_count[0] ? ctx->info.max_workgroup_count[0] : nq;
    if (qc > 65535) qc = 65535;
    for (;;) {
        uint64_t lut = is_pq ? (uint64_t)qc * lut_rows_per_q * lut_bytes : 0;
        uint64_t words = 2 * (uint64_t)qc * (uint64_t)W * (uint64_t)k + (uint64_t)qc +
                         (sp.global ? (uint64_t)qc * (uint64_t)nprobe * 2 * sp.cap : 0);
        uint64_t work = (uint64_t)qc * (uint64_t)nprobe * 8;
        int rows_ok = !pair_lut || (uint64_t)qc * (uint64_t)nprobe <= ctx->info.max_workgroup_count[1];
        if (lut <= budget && words * 4 <= budget && work <= budget && rows_ok) break;
        if (qc == 1)
            return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "k = %lld with nprobe = %lld needs more scratch than one "
                           "binding holds", (long long)k, (long long)nprobe);
        qc = (qc + 1) / 2;
    }

    uint64_t pw = (uint64_t)qc * (uint64_t)W * (uint64_t)k;
    uint64_t sel_words = sp.global ? (uint64_t)qc * (uint64_t)nprobe * 2 * sp.cap : 0;
    uint64_t gt = 2 * pw + sel_words;   /* the per-query bounds, after the candidate buffers */
    uint64_t obytes = (gt + (uint64_t)qc) * 4;
    va_buffer *work, *obuf, *lut = NULL;
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * (uint64_t)nprobe * 8, &work));
    VA_TRY(va_stream_scratch(s, obytes, &obuf));
    if (is_pq) VA_TRY(va_stream_scratch(s, (uint64_t)qc * lut_rows_per_q * lut_bytes, &lut));

    uint32_t mrem = 0, lrem = 0, trem = 0;
    va_binding mb = mask ? va_whole_binding(ctx, mask, VA_READ, &mrem) : (va_binding){0};
    va_binding lb = va_whole_binding(ctx, ix->lists, VA_READ, &lrem);
    va_binding tb = is_pq && ix->pq_term ? va_whole_binding(ctx, ix->pq_term, VA_READ, &trem) : lb;
    const va_kernel *kern[2] = {NULL, NULL};
    int64_t ldx = is_pq ? csw : row_stride(ix->vectors);

    for (int64_t q0 = 0; q0 < nq; q0 += qc) {
        int64_t qn = nq - q0 < qc ? nq - q0 : qc;
        va_tensor qb = rows_of(q, q0, qn);
        /* Coarse: probes (qn, nprobe) u32 at word 0 of work, their distances after them. */
        va_tensor pr = {work, 0, VA_U32, 2, {qn, nprobe}, {nprobe, 1}};
        va_tensor cd = {work, (uint64_t)qc * (uint64_t)nprobe * 4, VA_F32, 2, {qn, nprobe}, {nprobe, 1}};
        VA_TRY(va_knn(s, &qb, ix->centroids, ix->metric, 2.0f, nprobe, NULL, &cd, &pr));
        if (is_pq) {
            if (pair_lut)
                VA_TRY(va_pq_lut(s, &qb, ix->pq_centroids, m, (int)nbits, 0, 1.0f, ix->centroids, &pr, nprobe, lut, 0,
                                 mk));
            else
                VA_TRY(va_pq_lut(s, &qb, ix->pq_centroids, m, (int)nbits, 1, largest ? 1.0f : -2.0f, NULL, NULL, 1,
                                 lut, 0, mk));
        }
        VA_TRY(va_scan_reset_bounds(s, obuf, gt * 4, (uint64_t)qn));
        uint64_t ldo = (uint64_t)W * (uint64_t)k;
        uint32_t rq = 0;
        va_tensor qv = qb;
        qv.strides[0] = row_stride(q);
        va_binding qbind = va_rows_binding(ctx, &qv, 0, qn, d, VA_READ, &rq);
        for (int64_t w = 0; w < nwin; w++) {
            int64_t r0 = w * wr, rn = slots - r0 < wr ? slots - r0 : wr;
            uint32_t rx = 0;
            va_tensor dv = *data;
            dv.strides[0] = ldx;
            va_binding xb = rn > 0 ? va_rows_binding(ctx, &dv, r0, rn, is_pq ? csw : d, VA_READ, &rx)
                                   : va_whole_binding(ctx, data, VA_READ, &rx);
            va_binding wb = {work, 0, (uint64_t)qc * (uint64_t)nprobe * 8, VA_READ};
            va_binding ob = {obuf, 0, obytes, VA_READ_WRITE};
            uint32_t col0 = (uint32_t)(w * nprobe);
            if (is_pq) {
                int v = csw % 4 == 0 && rx % 4 == 0;
                if (!kern[v]) {
                    uint32_t spec[21] = {VA_SCAN_WG, 1, 1, (uint32_t)largest, 1, sp.cap, sp.sbuf, sp.global,
                                         (uint32_t)m, (uint32_t)nbits, (uint32_t)csw, (uint32_t)v,
                                         (uint32_t)lut_shared, lut_shared ? (uint32_t)mk : 1u, 1,
                                         ix->pq_term ? 1u : 0u, (uint32_t)pair_lut, mask ? 1u : 0u, sp.p, 0, 1};
                    VA_TRY(va_kernel_get(ctx, "pq_scan", spec, 21, 0, &kern[v]));
                }
                va_binding b[7] = {xb, {lut, 0, (uint64_t)qn * lut_rows_per_q * lut_bytes, VA_READ}, tb, wb, lb,
                                   mask ? mb : lb, ob};
                uint32_t pc[20] = {(uint32_t)qn, (uint32_t)k, rx, (uint32_t)r0, (uint32_t)rn, 0, (uint32_t)mk, trem,
                                   0, col0, (uint32_t)ldo, (uint32_t)nprobe, 0, (uint32_t)(qc * nprobe), lrem,
                                   mrem * 32, 0, (uint32_t)pw, (uint32_t)(2 * pw), (uint32_t)gt};
                VA_TRY(va_stream_dispatch(s, kern[v], b, 7, pc, sizeof pc, (uint32_t)qn, (uint32_t)nprobe, 1));
            } else {
                int v = d % 4 == 0 && ldx % 4 == 0 && rx % 4 == 0;
                if (!kern[v]) {
                    uint32_t spec[11] = {VA_SCAN_WG, 1, 1, (uint32_t)largest, 1, sp.cap, sp.sbuf, sp.global,
                                         (uint32_t)v, mask ? 1u : 0u, sp.p};
                    VA_TRY(va_kernel_get(ctx, "ivf_flat_scan", spec, 11, 0, &kern[v]));
                }
                va_binding b[6] = {xb, qbind, wb, lb, mask ? mb : lb, ob};
                uint32_t pc[19] = {(uint32_t)qn, (uint32_t)k, (uint32_t)d, rx, (uint32_t)ldx, (uint32_t)r0,
                                   (uint32_t)rn, rq, (uint32_t)row_stride(q), (uint32_t)nprobe, 0, lrem, mrem * 32,
                                   col0, (uint32_t)ldo, 0, (uint32_t)pw, (uint32_t)(2 * pw), (uint32_t)gt};
                VA_TRY(va_stream_dispatch(s, kern[v], b, 6, pc, sizeof pc, (uint32_t)qn, (uint32_t)nprobe, 1));
            }
        }
        va_tensor pv = {obuf, 0, VA_F32, 2, {qn, (int64_t)ldo}, {(int64_t)ldo, 1}};
        va_tensor pi = {obuf, pw * 4, VA_U32, 2, {qn, (int64_t)ldo}, {(int64_t)ldo, 1}};
        va_tensor od = rows_of(out_d, q0, qn), oi = rows_of(out_i, q0, qn);
        VA_TRY(va_topk(s, &pv, k, largest, &pi, NULL, 0, 0, &od, &oi));
    }
    return VA_SUCCESS;
}

va_status va_ivf_search(va_stream *s, const va_ivf_index *index, const va_tensor *q, int64_t nprobe, int64_t k,
                        const va_tensor *mask, const va_tensor *out_d, const va_tensor *out_i) {
    return ivf_search(s, index, q, nprobe, k, mask, out_d, out_i, 0);
}

/* Registry adapter. Inputs: queries, centroids, lists, then vectors (IVF-Flat, m = 0) or codes,
 * pq_centroids[, pq_term] (IVF-PQ), then mask if has_mask. Outputs: distances, indices.
 * iparams: metric, k, nprobe, m, nbits, has_term, has_mask[, window_rows]. */
static va_status op_ivf_search(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                               const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 7 || n_out != 2)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "ivf_search takes 7 integer parameters and gives (D, I)");
    int pq = ip[3] != 0, has_term = pq && ip[5] != 0, has_mask = ip[6] != 0;
    int want = 4 + (pq ? 1 + has_term : 0) + has_mask;
    if (n_in != want) return va_fail(VA_ERROR_INVALID_ARGUMENT, "ivf_search: wrong number of inputs");
    va_ivf_index ix = {(va_metric)ip[0], &in[1], &in[2], pq ? NULL : &in[3], pq ? &in[3] : NULL,
                       pq ? &in[4] : NULL, has_term ? &in[5] : NULL, ip[3], (int)ip[4]};
    return ivf_search(s, &ix, &in[0], ip[2], ip[1], has_mask ? &in[n_in - 1] : NULL, &out[0], &out[1],
                      n_i > 7 ? ip[7] : 0);
}
VA_REGISTER_OP(ivf_search, op_ivf_search);
