/* pq.c — product quantization: distance tables (pq_lut.comp) and the ADC search of PQIndex
 * (pq_scan.comp, then a topk merge), plus the selection plan and helpers the IVF planner shares
 * (scan.h).
 *
 * Search plan: the codes are bound in windows that fit maxStorageBufferRange, each window cut into
 * slices; a workgroup takes a group of QG queries (their tables in shared memory) and one slice,
 * and writes its k best rows per query; a topk over the items of every query (windows x slices)
 * gives the result. Queries are taken in chunks whose tables and partial results fit the scratch
 * budget. Work per query group is spread over enough slices to fill a large GPU (TARGET_GROUPS
 * workgroups), never slices shorter than MIN_SLICE rows. */
#include <stdlib.h>
#include <string.h>

#include "scan.h"

#define TARGET_GROUPS 8192u
#define MIN_SLICE 8192u
#define SHARED_RESERVE 256u        /* counters and thresholds of the selection, besides the buffers */
#define SHARED_CAP (48u << 10)     /* NVIDIA's per-workgroup shared memory; more is rarely offered */

/* ---- shared helpers (scan.h) ------------------------------------------------------------------ */

uint64_t va_scan_shared_bytes(const va_context *ctx) {
    uint64_t s = ctx->info.shared_memory_per_workgroup;
    if (s > SHARED_CAP) s = SHARED_CAP;
    return s > SHARED_RESERVE ? s - SHARED_RESERVE : 0;
}

va_select_plan va_select_plan_for(const va_context *ctx, int64_t k, uint32_t qg_max, uint64_t per_query,
                                  uint32_t unit, uint32_t p_max) {
    uint64_t avail_all = va_scan_shared_bytes(ctx);
    va_select_plan p = {1, 0, 1, 1, 2};
    for (uint32_t qg = qg_max; qg >= 1; qg /= 2) {
        if ((uint64_t)qg * per_query > avail_all) continue;
        uint64_t cap = (avail_all - (uint64_t)qg * per_query) / ((uint64_t)qg * 8);
        if (cap >= (uint64_t)(2 * k) + unit) {
            uint64_t pr = (cap - (uint64_t)(2 * k)) / unit;
            p.qg = qg;
            p.p = pr > p_max ? p_max : (uint32_t)pr;
            p.cap = (uint32_t)cap;
            p.sbuf = qg * p.cap;
            p.global = 0;
            return p;
        }
    }
    /* k too large for shared memory: one query per workgroup, its buffer in device scratch. */
    if (p.p > p_max) p.p = p_max;
    p.cap = (uint32_t)(2 * k) + unit * p.p;
    return p;
}

va_status va_scan_reset_bounds(va_stream *s, va_buffer *buf, uint64_t off, uint64_t n) {
    uint32_t *none = malloc(n * 4);
    if (!none) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "out of host memory");
    memset(none, 0xFF, n * 4);
    /* Under 1 MiB (n <= 65535 here): copied when recorded, so the block can go at once. */
    va_status st = va_stream_upload(s, buf, off, none, n * 4);
    free(none);
    return st;
}

uint64_t va_scan_budget(const va_context *ctx) {
    uint64_t heap = 0;
    for (uint32_t i = 0; i < ctx->info.heap_count; i++)
        if (ctx->info.heaps[i].device_local && ctx->info.heaps[i].size > heap) heap = ctx->info.heaps[i].size;
    uint64_t t = heap / 16;
    if (t < ((uint64_t)128 << 20)) t = (uint64_t)128 << 20;
    if (t > ((uint64_t)1 << 30)) t = (uint64_t)1 << 30;
    uint64_t range = ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64;
    return t < range ? t : range;
}

va_binding va_whole_binding(const va_context *ctx, const va_tensor *t, va_access access, uint32_t *rem) {
    va_binding b = va_tensor_binding(t, access);
    size_t es = va_dtype_size(t->dtype);
    b.offset = va_align_binding(ctx, t->offset, (uint32_t)es, rem);
    b.size = va_tensor_span(t) + (uint64_t)*rem * es;
    if (b.size == 0) b.size = es;
    return b;
}

static va_status check_centroids(const va_tensor *cent, int64_t m, int nbits, int64_t d) {
    if (m < 1 || nbits < 1 || nbits > 8)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "m must be at least 1 and nbits between 1 and 8");
    if (d % m) return va_fail(VA_ERROR_INVALID_ARGUMENT, "d (%lld) must be a multiple of m (%lld)", (long long)d,
                              (long long)m);
    VA_TRY(va_check_matrix(cent, "centroids", VA_F32, VA_F32));
    int64_t dsub = d / m, ksub = (int64_t)1 << nbits;
    if (cent->shape[0] != m * ksub || cent->shape[1] != dsub || (cent->shape[0] > 1 && cent->strides[0] != dsub))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "centroids must be a contiguous (m * 2^nbits, d / m) = (%lld, %lld) "
                       "float32 matrix", (long long)(m * ksub), (long long)dsub);
    return VA_SUCCESS;
}

static int64_t row_stride(const va_tensor *t) { return t->shape[0] > 1 ? t->strides[0] : t->shape[1]; }

va_status va_pq_lut(va_stream *s, const va_tensor *q, const va_tensor *cent, int64_t m, int nbits, int ip,
                    float scale, const va_tensor *coarse, const va_tensor *probes, int64_t nprobe,
                    va_buffer *out, uint64_t out_offset, int64_t ldo) {
    va_context *ctx = va_stream_context(s);
    int64_t nq = q->shape[0], d = q->shape[1], dsub = d / m, ksub = (int64_t)1 << nbits, mk = m * ksub;
    int64_t rows = probes ? nq * nprobe : nq;
    if (rows == 0) return VA_SUCCESS;
    if (rows > ctx->info.max_workgroup_count[1])
        return va_fail(VA_ERROR_INTERNAL, "pq_lut: %lld table rows exceed the grid", (long long)rows);
    uint32_t spec[8] = {VA_SCAN_WG, 1, 1, ip ? 1u : 0u, probes ? 1u : 0u, (uint32_t)dsub, (uint32_t)mk,
                        (uint32_t)ksub};
    const va_kernel *kern;
    VA_TRY(va_kernel_get(ctx, "pq_lut", spec, 8, 0, &kern));
    int64_t ldq = row_stride(q);
    va_tensor qv = *q;
    qv.strides[0] = ldq;
    uint32_t rq, rc, ry = 0, rp = 0, ro;
    va_binding b[5];
    b[0] = va_rows_binding(ctx, &qv, 0, nq, d, VA_READ, &rq);
    b[1] = va_whole_binding(ctx, cent, VA_READ, &rc);
    b[2] = coarse ? va_whole_binding(ctx, coarse, VA_READ, &ry) : b[1];
    b[3] = probes ? va_whole_binding(ctx, probes, VA_READ, &rp) : b[1];
    uint64_t base = va_align_binding(ctx, out_offset, 4, &ro);
    b[4] = (va_binding){out, base, ((uint64_t)(rows - 1) * (uint64_t)ldo + (uint64_t)mk + ro) * 4, VA_WRITE};
    struct {
        uint32_t rows, ldq, q_off, cent_off, coarse_off, ldc, nprobe, probe_off, out_off, ldo;
        float scale;
    } pc = {
        (uint32_t)rows, (uint32_t)ldq, rq, rc, ry, coarse ? (uint32_t)row_stride(coarse) : 0u,
        (uint32_t)(probes ? nprobe : 1), rp, ro, (uint32_t)ldo, scale};
    return va_stream_dispatch(s, kern, b, 5, &pc, sizeof pc, va_ceil_div((uint64_t)mk, VA_SCAN_WG), (uint32_t)rows, 1);
}

/* ---- public ops --------------------------------------------------------------------------------- */

va_status va_pq_tables(va_stream *s, const va_tensor *q, const va_tensor *centroids, int64_t m, int nbits,
                       va_metric metric, const va_tensor *out) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F32));
    VA_TRY(check_centroids(centroids, m, nbits, q->shape[1]));
    if (metric != VA_METRIC_SQEUCLIDEAN && metric != VA_METRIC_INNER)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "metric must be sqeuclidean or inner");
    VA_TRY(va_check_matrix(out, "tables", VA_F32, VA_F32));
    int64_t nq = q->shape[0], mk = m * ((int64_t)1 << nbits);
    if (out->shape[0] != nq || out->shape[1] != mk || (nq > 1 && out->strides[0] != mk))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "tables must be a contiguous (%lld, %lld) matrix", (long long)nq,
                       (long long)mk);
    int64_t chunk = va_scan_budget(ctx) / ((uint64_t)mk * 4);
    if (chunk > ctx->info.max_workgroup_count[1]) chunk = ctx->info.max_workgroup_count[1];
    if (chunk < 1) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a table row exceeds the device's binding range");
    for (int64_t q0 = 0; q0 < nq; q0 += chunk) {
        int64_t qn = nq - q0 < chunk ? nq - q0 : chunk;
        va_tensor qb = *q;
        qb.offset += (uint64_t)q0 * (uint64_t)row_stride(q) * 4;
        qb.shape[0] = qn;
        VA_TRY(va_pq_lut(s, &qb, centroids, m, nbits, metric == VA_METRIC_INNER, 1.0f, NULL, NULL, 1, out->buf,
                         out->offset + (uint64_t)q0 * (uint64_t)mk * 4, mk));
    }
    return VA_SUCCESS;
}

/* window_rows, slice_rows > 0 override the plan (for tests of the splitting). */
static va_status pq_search(va_stream *s, const va_tensor *q, const va_tensor *cent, const va_tensor *codes,
                           int64_t m, int nbits, va_metric metric, int64_t k, const va_tensor *mask, int half,
                           const va_tensor *out_d, const va_tensor *out_i, int64_t window_rows, int64_t slice_rows) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F32));
    VA_TRY(check_centroids(cent, m, nbits, q->shape[1]));
    if (metric != VA_METRIC_SQEUCLIDEAN && metric != VA_METRIC_INNER)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "metric must be sqeuclidean or inner");
    if (k < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "k must be at least 1");
    int64_t nq = q->shape[0], nb = codes->shape[0];
    int64_t ksub = (int64_t)1 << nbits, mk = m * ksub, csw = (m * nbits + 31) / 32;
    VA_TRY(va_check_matrix(codes, "codes", VA_U32, VA_I32));
    if (codes->shape[1] != csw || (nb > 1 && codes->strides[0] != csw))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "codes must be a contiguous (n, %lld) uint32 matrix", (long long)csw);
    if (nb >= (int64_t)VA_NONE - 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "more than 2^32 - 2 codes are not supported");
    VA_TRY(va_check_matrix(out_d, "distances", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    if (out_d->shape[0] != nq || out_d->shape[1] != k || out_i->shape[0] != nq || out_i->shape[1] != k)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "distances and indices must be (%lld, %lld)", (long long)nq,
                       (long long)k);
    if (mask && (mask->ndim != 1 || mask->dtype != VA_U32 || (uint64_t)mask->shape[0] * 32 < (uint64_t)nb))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "mask must be a uint32 bitset covering the codes");
    if (nq == 0) return VA_SUCCESS;
    int largest = metric == VA_METRIC_INNER;

    /* Tables in shared memory when at least one fits beside a minimal candidate buffer; float16
     * pairs (half) only for groups of two or four queries with their tables in shared memory. */
    uint64_t lut_bytes = (uint64_t)mk * 4;
    int lut_shared = lut_bytes + (uint64_t)(2 * k + VA_SCAN_WG) * 8 <= va_scan_shared_bytes(ctx);
    uint32_t qg_max = nq >= 4 ? 4 : (nq >= 2 ? 2 : 1);
    half = half && lut_shared && qg_max >= 2;
    va_select_plan sp = va_select_plan_for(ctx, k, qg_max, lut_shared ? lut_bytes / (half ? 2 : 1) : 0,
                                           VA_SCAN_WG, 4);
    if (half && (sp.global || sp.qg < 2)) {
        half = 0;
        sp = va_select_plan_for(ctx, k, qg_max, lut_shared ? lut_bytes : 0, VA_SCAN_WG, 4);
    }

    /* Windows of rows for the codes binding, slices within them. */
    int64_t wr = va_rows_per_binding(ctx, csw, csw, 4);
    if (window_rows > 0 && window_rows < wr) wr = window_rows;
    if (wr < 1) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a code row exceeds the device's binding range");
    int64_t groups = (nq + sp.qg - 1) / sp.qg;
    int64_t per = TARGET_GROUPS / groups;
    if (per < 1) per = 1;
    int64_t slice = (nb + per - 1) / per;
    if (slice < MIN_SLICE) slice = MIN_SLICE;
    uint64_t room = (uint64_t)VA_SCAN_WG * sp.p;
    slice = (int64_t)(((uint64_t)slice + room - 1) / room * room);
    if (slice_rows > 0) slice = slice_rows;
    uint64_t budget = va_scan_budget(ctx);
    int64_t nwin = nb == 0 ? 1 : (nb + wr - 1) / wr, W, max_ns, qc;
    for (;;) {
        W = 0;
        max_ns = 1;
        for (int64_t w = 0; w < nwin; w++) {
            int64_t rn = nb - w * wr < wr ? nb - w * wr : wr;
            int64_t ns = rn == 0 ? 1 : (rn + slice - 1) / slice;
            W += ns;
            if (ns > max_ns) max_ns = ns;
        }
        /* The most queries per chunk whose tables, partial results and device candidate buffers
         * fit the budget; fewer slices (larger items) when not even one query fits. */
        int ok = 0;
        for (qc = nq > ctx->info.max_workgroup_count[1] ? ctx->info.max_workgroup_count[1] : nq; qc >= 1;
             qc = qc == 1 ? 0 : (qc + 1) / 2) {
            uint64_t g = (uint64_t)(qc + sp.qg - 1) / sp.qg;
            uint64_t words = 2 * (uint64_t)qc * (uint64_t)W * (uint64_t)k + (uint64_t)qc +
                             (sp.global ? g * (uint64_t)max_ns * 2 * sp.qg * sp.cap : 0);
            if ((uint64_t)qc * lut_bytes <= budget && words * 4 <= budget && g <= ctx->info.max_workgroup_count[0] &&
                (uint64_t)max_ns <= ctx->info.max_workgroup_count[1]) {
                ok = 1;
                break;
            }
        }
        if (ok) break;
        if (slice >= nb || slice_rows > 0)
            return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "k = %lld needs more scratch than one binding holds",
                           (long long)k);
        slice *= 2;
    }

    uint32_t vec4 = csw % 4 == 0;
    uint32_t spec[21] = {VA_SCAN_WG, 1, 1, (uint32_t)largest, sp.qg, sp.cap, sp.sbuf, sp.global, (uint32_t)m,
                         (uint32_t)nbits, (uint32_t)csw, vec4, (uint32_t)lut_shared,
                         lut_shared && !half ? sp.qg * (uint32_t)mk : 1u, 0, 0, 0, mask ? 1u : 0u, sp.p,
                         (uint32_t)half, half ? (sp.qg + 1) / 2 * (uint32_t)mk : 1u};
    const va_kernel *kern[2] = {NULL, NULL};

    uint64_t g_max = (uint64_t)(qc + sp.qg - 1) / sp.qg;
    uint64_t pw = (uint64_t)qc * (uint64_t)W * (uint64_t)k;
    uint64_t sel_words = sp.global ? g_max * (uint64_t)max_ns * 2 * sp.qg * sp.cap : 0;
    va_buffer *lut, *obuf;
    VA_TRY(va_stream_scratch(s, (uint64_t)qc * lut_bytes, &lut));
    uint64_t gt = 2 * pw + sel_words;   /* the per-query bounds, after the candidate buffers */
    VA_TRY(va_stream_scratch(s, (gt + (uint64_t)qc) * 4, &obuf));
    uint32_t mrem = 0;
    va_binding mb = mask ? va_whole_binding(ctx, mask, VA_READ, &mrem) : (va_binding){0};

    for (int64_t q0 = 0; q0 < nq; q0 += qc) {
        int64_t qn = nq - q0 < qc ? nq - q0 : qc;
        va_tensor qb = *q;
        qb.offset += (uint64_t)q0 * (uint64_t)row_stride(q) * 4;
        qb.shape[0] = qn;
        VA_TRY(va_pq_lut(s, &qb, cent, m, nbits, largest, 1.0f, NULL, NULL, 1, lut, 0, mk));
        VA_TRY(va_scan_reset_bounds(s, obuf, gt * 4, (uint64_t)qn));
        uint64_t ldo = (uint64_t)W * (uint64_t)k;
        int64_t col0 = 0;
        for (int64_t w = 0; w < nwin; w++) {
            int64_t r0 = w * wr, rn = nb - r0 < wr ? nb - r0 : wr;
            int64_t ns = rn == 0 ? 1 : (rn + slice - 1) / slice;
            uint32_t rcode = 0;
            va_binding b[7];
            va_tensor cv = *codes;
            cv.strides[0] = csw;
            b[0] = rn > 0 ? va_rows_binding(ctx, &cv, r0, rn, csw, VA_READ, &rcode)
                          : va_whole_binding(ctx, codes, VA_READ, &rcode);
            b[1] = (va_binding){lut, 0, (uint64_t)qn * lut_bytes, VA_READ};
            b[2] = b[3] = b[4] = b[1];
            b[5] = mask ? mb : b[1];
            b[6] = (va_binding){obuf, 0, (gt + (uint64_t)qc) * 4, VA_READ_WRITE};
            int v = vec4 && rcode % 4 == 0;
            if (!kern[v]) {
                spec[11] = (uint32_t)v;
                /* float16 tables: float16 sums of four entries where the device computes in it */
                const char *name = half && ctx->info.fp16 && va_kernel_available("pq_scan_f16arith")
                                       ? "pq_scan_f16arith" : "pq_scan";
                VA_TRY(va_kernel_get(ctx, name, spec, 21, 0, &kern[v]));
            }
            uint32_t pc[20] = {(uint32_t)qn, (uint32_t)k, rcode, (uint32_t)r0, (uint32_t)rn, 0, (uint32_t)mk, 0,
                               (uint32_t)slice, (uint32_t)col0, (uint32_t)ldo, 0, 0, 0, 0, mrem * 32,
                               0, (uint32_t)pw, (uint32_t)(2 * pw), (uint32_t)gt};
            VA_TRY(va_stream_dispatch(s, kern[v], b, 7, pc, sizeof pc, va_ceil_div((uint64_t)qn, sp.qg),
                                      (uint32_t)ns, 1));
            col0 += ns;
        }
        va_tensor pv = {obuf, 0, VA_F32, 2, {qn, (int64_t)ldo}, {(int64_t)ldo, 1}};
        va_tensor pi = {obuf, pw * 4, VA_U32, 2, {qn, (int64_t)ldo}, {(int64_t)ldo, 1}};
        va_tensor od = *out_d, oi = *out_i;
        od.offset += (uint64_t)q0 * (uint64_t)row_stride(out_d) * 4;
        oi.offset += (uint64_t)q0 * (uint64_t)row_stride(out_i) * 4;
        od.shape[0] = oi.shape[0] = qn;
        VA_TRY(va_topk(s, &pv, k, largest, &pi, NULL, 0, 0, &od, &oi));
    }
    return VA_SUCCESS;
}

va_status va_pq_search(va_stream *s, const va_tensor *q, const va_tensor *centroids, const va_tensor *codes,
                       int64_t m, int nbits, va_metric metric, int64_t k, const va_tensor *mask, int half_tables,
                       const va_tensor *out_d, const va_tensor *out_i) {
    return pq_search(s, q, centroids, codes, m, nbits, metric, k, mask, half_tables, out_d, out_i, 0, 0);
}

/* Registry adapters.
 * pq_tables: (queries, centroids) -> tables; iparams: metric, m, nbits.
 * pq_search: (queries, centroids, codes[, mask]) -> (distances, indices); iparams: metric, k, m,
 *            nbits, has_mask[, window_rows, slice_rows, half_tables]. */
static va_status op_pq_tables(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_in != 2 || n_out != 1 || n_i < 3)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "pq_tables takes (queries, centroids) -> tables");
    return va_pq_tables(s, &in[0], &in[1], ip[1], (int)ip[2], (va_metric)ip[0], &out[0]);
}
VA_REGISTER_OP(pq_tables, op_pq_tables);

static va_status op_pq_search(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 5 || n_out != 2 || n_in != 3 + (ip[4] != 0))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "pq_search takes (queries, centroids, codes[, mask]) -> (D, I)");
    return pq_search(s, &in[0], &in[1], &in[2], ip[2], (int)ip[3], (va_metric)ip[0], ip[1], ip[4] ? &in[3] : NULL,
                     n_i > 7 ? (int)ip[7] : 0, &out[0], &out[1], n_i > 5 ? ip[5] : 0, n_i > 6 ? ip[6] : 0);
}
VA_REGISTER_OP(pq_search, op_pq_search);
