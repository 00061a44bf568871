/* knn.c — exact k-nearest neighbours: the database is taken in chunks; each chunk's distance tile
 * (cdist) is reduced to its k best per query (topk, with the filter bitset), and merged into the
 * running k best (topk over 2k candidates with their indices). Device memory is O(tile): the
 * nq x nb distance matrix never exists. */
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

va_status va_knn(va_stream *s, const va_tensor *q, const va_tensor *db, va_metric metric, float p, int64_t k,
                 const va_tensor *mask, const va_tensor *out_d, const va_tensor *out_i) {
    va_clear_error();
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
                VA_TRY(va_cdist(s, &qb, &dbc, metric, p, &dist));
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
