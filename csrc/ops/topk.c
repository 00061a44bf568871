/* topk.c — the k best entries of each row (topk_rows.comp): one workgroup per row, rows split so
 * every binding window fits maxStorageBufferRange. Also the building block of knn's merges. */
#include "../core/internal.h"

#define SORT_MAX 2048u

va_status va_topk(va_stream *s, const va_tensor *x, int64_t k, int largest, const va_tensor *idx,
                  const va_tensor *mask, int64_t mask_offset, int64_t idx_base, const va_tensor *out_v,
                  const va_tensor *out_i) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    VA_TRY(va_check_matrix(x, "x", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_v, "values", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    int64_t m = x->shape[0], n = x->shape[1];
    if (k < 1 || out_v->shape[1] != k || out_i->shape[1] != k || out_v->shape[0] != m || out_i->shape[0] != m)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "values and indices must be (%lld, k) with k >= 1", (long long)m);
    if (n >= (int64_t)0xFFFFFFFE || idx_base + n >= (int64_t)0xFFFFFFFE)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "rows longer than 2^32 - 2 entries are not supported");
    if (idx) {
        VA_TRY(va_check_matrix(idx, "idx", VA_U32, VA_I32));
        if (idx->shape[0] != m || idx->shape[1] != n)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "idx must have the shape of x");
    }
    if (mask && (mask->ndim != 1 || mask->dtype != VA_U32 || (uint64_t)mask->shape[0] * 32 < (uint64_t)(mask_offset + n)))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "mask must be a uint32 bitset covering the columns");
    if (m == 0) return VA_SUCCESS;

    uint32_t spec[7] = {256, 1, 1, largest ? 1u : 0u, idx ? 1u : 0u, mask ? 1u : 0u, SORT_MAX};
    const va_kernel *kern;
    VA_TRY(va_kernel_get(ctx, "topk_rows", spec, 7, 0, &kern));

    int64_t ldx = m > 1 ? x->strides[0] : n, ldi = idx ? (m > 1 ? idx->strides[0] : n) : 0;
    int64_t ldv = m > 1 ? out_v->strides[0] : k, ldo = m > 1 ? out_i->strides[0] : k;
    va_tensor xv = *x, iv = idx ? *idx : *x, vv = *out_v, ov = *out_i;
    xv.strides[0] = ldx; iv.strides[0] = idx ? ldi : ldx; vv.strides[0] = ldv; ov.strides[0] = ldo;
    int64_t chunk = va_rows_per_binding(ctx, ldx, n > 0 ? n : 1, 4);
    int64_t c2 = va_rows_per_binding(ctx, ldv, k, 4), c3 = va_rows_per_binding(ctx, ldo, k, 4);
    if (c2 < chunk) chunk = c2;
    if (c3 < chunk) chunk = c3;
    if (idx) {
        int64_t c4 = va_rows_per_binding(ctx, ldi, n > 0 ? n : 1, 4);
        if (c4 < chunk) chunk = c4;
    }
    if (chunk <= 0) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a row does not fit the device's binding range");
    uint32_t mword_rem = 0;
    va_binding mb = {0};
    if (mask) {
        /* The whole bitset is one window (it is n/32 words). */
        mb = va_tensor_binding(mask, VA_READ);
        mb.offset = va_align_binding(ctx, mask->offset, 4, &mword_rem);
        mb.size = va_tensor_span(mask) + mword_rem * 4;
    }
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rc = m - r0 < chunk ? m - r0 : chunk;
        uint32_t rx, ri = 0, rv, ro;
        va_binding b[5];
        b[0] = va_rows_binding(ctx, &xv, r0, rc, n > 0 ? n : 1, VA_READ, &rx);
        b[1] = idx ? va_rows_binding(ctx, &iv, r0, rc, n > 0 ? n : 1, VA_READ, &ri) : b[0];
        b[2] = mask ? mb : b[0];
        b[3] = va_rows_binding(ctx, &vv, r0, rc, k, VA_READ_WRITE, &rv);
        b[4] = va_rows_binding(ctx, &ov, r0, rc, k, VA_READ_WRITE, &ro);
        uint32_t pc[13] = {(uint32_t)rc, (uint32_t)n, (uint32_t)k, (uint32_t)ldx, rx, (uint32_t)ldi, ri,
                           (uint32_t)ldv, rv, (uint32_t)ldo, ro,
                           (uint32_t)(mword_rem * 32 + (uint64_t)mask_offset), (uint32_t)idx_base};
        VA_TRY(va_stream_dispatch(s, kern, b, 5, pc, sizeof pc, (uint32_t)rc, 1, 1));
    }
    return VA_SUCCESS;
}

/* Registry adapter. iparams: k, largest, has_idx, has_mask, mask_offset, idx_base.
 * Inputs: x, then idx if has_idx, then mask if has_mask. Outputs: values, indices. */
static va_status op_topk(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                         const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 6 || n_out != 2) return va_fail(VA_ERROR_INVALID_ARGUMENT, "topk takes 6 integer parameters");
    int has_idx = ip[2] != 0, has_mask = ip[3] != 0;
    if (n_in != 1 + has_idx + has_mask) return va_fail(VA_ERROR_INVALID_ARGUMENT, "topk: wrong number of inputs");
    return va_topk(s, &in[0], ip[0], ip[1] != 0, has_idx ? &in[1] : NULL, has_mask ? &in[1 + has_idx] : NULL,
                   ip[4], ip[5], &out[0], &out[1]);
}
VA_REGISTER_OP(topk, op_topk);
