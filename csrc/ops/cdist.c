/* cdist.c — pairwise distances (SciPy's metrics plus inner product and bitwise Hamming), row
 * norms and L2 normalisation: picks tile sizes per device, precomputes norms for the dot-product
 * metrics, and splits work so every binding window fits maxStorageBufferRange. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"

/* Shader metric codes (cdist_tile.comp). */
enum { M_SQEUCLID = 0, M_EUCLID = 1, M_COSINE = 2, M_INNER = 3, M_L1 = 4, M_LINF = 5, M_LP = 6,
       M_HAMMING = 7, M_DIRECT_EUCLID = 8, M_BITS = 9 };

typedef struct tile_cfg { uint32_t bm, bn, bk, tm, tn; } tile_cfg;

/* 64x64 tiles, 4x4 results per thread, 256 threads (a multiple of every subgroup size), 8.3 KiB
 * of shared memory. Measured on an H100: 20 TFLOP/s; 128x128 with 8x8 per thread ran at 2 (the
 * driver keeps 64 accumulators out of registers). */
static tile_cfg choose_tiles(const va_context *ctx) {
    const va_device_info *di = &ctx->info;
    tile_cfg c = {64, 64, 16, 4, 4};
    /* VACCEL_CDIST_TILE="BM,BN,BK,TM,TN" overrides, for tuning on a new device. */
    const char *env = getenv("VACCEL_CDIST_TILE");
    tile_cfg e;
    if (env && sscanf(env, "%u,%u,%u,%u,%u", &e.bm, &e.bn, &e.bk, &e.tm, &e.tn) == 5 && e.tm && e.tn &&
        e.tm * e.tn <= 64 && e.tn % 4 == 0 &&
        e.bm % e.tm == 0 && e.bn % e.tn == 0 && (e.bm / e.tm) * (e.bn / e.tn) <= di->max_workgroup_invocations)
        c = e;
    while ((c.bk * (c.bm + 1) + c.bk * (c.bn + 1)) * 4 > di->shared_memory_per_workgroup && c.bk > 4) c.bk /= 2;
    return c;
}

va_status va_row_l2(va_stream *s, const va_tensor *x, const va_tensor *out, uint32_t mode) {
    va_context *ctx = va_stream_context(s);
    int64_t m = x->shape[0], d = x->shape[1];
    if (m == 0) return VA_SUCCESS;
    size_t es = va_dtype_size(x->dtype);
    const char *name = x->dtype == VA_F16 ? "row_l2_f16" : "row_l2";
    const uint32_t rows_per_wg = 8;
    uint32_t spec[5] = {64, 1, 1, mode, rows_per_wg};
    /* The widest subgroup that divides the workgroup: fewer steps per row's reduction, and a
     * fixed size on devices whose size varies between pipelines (Intel, AMD). */
    uint32_t sg = ctx->info.max_subgroup_size;
    if (!sg || 64 % sg) sg = 0;
    const va_kernel *k;
    VA_TRY(va_kernel_get(ctx, name, spec, 5, sg, &k));
    int64_t ldx = x->strides[0] ? x->strides[0] : d;
    int rows_out = mode == 1;  /* mode 1 writes rows; 0 and 2 one value per row */
    int64_t ldo = rows_out ? out->strides[0] : 1;
    int64_t chunk = va_rows_per_binding(ctx, ldx, d, es);
    int64_t co = rows_out ? va_rows_per_binding(ctx, ldo, d, 4) : va_rows_per_binding(ctx, 1, 1, 4);
    if (co < chunk) chunk = co;
    if (chunk <= 0)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a row of %lld elements exceeds the device's binding range",
                       (long long)d);
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rc = m - r0 < chunk ? m - r0 : chunk;
        uint32_t rx, ro;
        va_binding b[2];
        b[0] = va_rows_binding(ctx, x, r0, rc, d, VA_READ, &rx);
        if (rows_out) {
            b[1] = va_rows_binding(ctx, out, r0, rc, d, VA_WRITE, &ro);
        } else {
            va_tensor o1 = *out; /* a vector as an (m, 1) matrix */
            o1.ndim = 2;
            o1.shape[1] = 1;
            o1.strides[0] = o1.strides[1] = 1;
            b[1] = va_rows_binding(ctx, &o1, r0, rc, 1, VA_WRITE, &ro);
        }
        uint32_t pc[6] = {(uint32_t)rc, (uint32_t)d, (uint32_t)ldx, rx, (uint32_t)ldo, ro};
        VA_TRY(va_stream_dispatch(s, k, b, 2, pc, sizeof pc, va_ceil_div((uint64_t)rc, rows_per_wg), 1, 1));
    }
    return VA_SUCCESS;
}

va_status va_row_sqnorms(va_stream *s, const va_tensor *x, const va_tensor *out) {
    va_clear_error();
    VA_TRY(va_check_matrix(x, "x", VA_F32, VA_F16));
    if (!out || out->ndim != 1 || out->dtype != VA_F32 || out->shape[0] != x->shape[0] ||
        (out->shape[0] > 1 && out->strides[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must be a contiguous float32 vector of %lld elements",
                       (long long)x->shape[0]);
    return va_row_l2(s, x, out, 0);
}

va_status va_normalize(va_stream *s, const va_tensor *x, const va_tensor *out) {
    va_clear_error();
    VA_TRY(va_check_matrix(x, "x", VA_F32, VA_F16));
    VA_TRY(va_check_matrix(out, "out", VA_F32, VA_F32));
    if (out->shape[0] != x->shape[0] || out->shape[1] != x->shape[1])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out has shape (%lld, %lld), expected (%lld, %lld)",
                       (long long)out->shape[0], (long long)out->shape[1], (long long)x->shape[0],
                       (long long)x->shape[1]);
    if (x->shape[1] == 0) return VA_SUCCESS;
    return va_row_l2(s, x, out, 1);
}

/* va_cdist, and va_cdist_sq when sq != NULL: xb then holds scalar-quantizer codes (rows of whole
 * 32-bit words) that the tile kernel decodes as it stages them. */
static va_status cdist_impl(va_stream *s, const va_tensor *xa, const va_tensor *xb, va_metric metric,
                            float p, const va_sq_codes *sq, const va_tensor *out) {
    va_context *ctx = va_stream_context(s);
    int bits = metric == VA_METRIC_BITWISE_HAMMING;
    if (sq) {
        VA_TRY(va_check_matrix(xa, "queries", VA_F32, VA_F32));
        VA_TRY(va_check_sq_codes(xb, sq));
        if (metric != VA_METRIC_SQEUCLIDEAN && metric != VA_METRIC_EUCLIDEAN && metric != VA_METRIC_COSINE &&
            metric != VA_METRIC_INNER)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "quantized codes take sqeuclidean, euclidean, cosine or inner");
    } else if (bits) {
        VA_TRY(va_check_matrix(xa, "xa", VA_U8, VA_U8));
        VA_TRY(va_check_matrix(xb, "xb", VA_U8, VA_U8));
    } else {
        VA_TRY(va_check_matrix(xa, "xa", VA_F32, VA_F16));
        VA_TRY(va_check_matrix(xb, "xb", VA_F32, VA_F16));
    }
    VA_TRY(va_check_matrix(out, "out", VA_F32, VA_F32));
    int64_t m = xa->shape[0], n = xb->shape[0], d = xa->shape[1];
    if (sq ? sq->d != d : xb->shape[1] != d)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "xb has %lld columns, xa has %lld",
                       (long long)(sq ? sq->d : xb->shape[1]), (long long)d);
    if (out->shape[0] != m || out->shape[1] != n)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out has shape (%lld, %lld), expected (%lld, %lld)",
                       (long long)out->shape[0], (long long)out->shape[1], (long long)m, (long long)n);
    if ((int)metric < 0 || metric > VA_METRIC_BITWISE_HAMMING)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "unknown metric %d", (int)metric);
    if (metric == VA_METRIC_MINKOWSKI && !(p > 0))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "p must be positive, got %g", (double)p);
    if (m == 0 || n == 0) return VA_SUCCESS;

    uint32_t code;
    switch (metric) {
    case VA_METRIC_SQEUCLIDEAN: code = M_SQEUCLID; break;
    case VA_METRIC_EUCLIDEAN: code = M_EUCLID; break;
    case VA_METRIC_COSINE: code = M_COSINE; break;
    case VA_METRIC_INNER: code = M_INNER; break;
    case VA_METRIC_CITYBLOCK: code = M_L1; break;
    case VA_METRIC_CHEBYSHEV: code = M_LINF; break;
    case VA_METRIC_HAMMING: code = M_HAMMING; break;
    case VA_METRIC_BITWISE_HAMMING: code = M_BITS; break;
    default: /* Minkowski: exact special cases keep pow() out of the common orders */
        code = isinf(p) ? M_LINF : p == 1.0f ? M_L1 : p == 2.0f ? M_DIRECT_EUCLID : M_LP;
    }

    /* Bitwise codes are read as 32-bit words. */
    va_tensor a = *xa, b = *xb;
    size_t es = va_dtype_size(xa->dtype), esb = va_dtype_size(xb->dtype);
    if (bits) {
        if (d % 4 || (a.strides[0] % 4 && m > 1) || (b.strides[0] % 4 && n > 1) || a.offset % 4 || b.offset % 4)
            return va_fail(VA_ERROR_INVALID_ARGUMENT,
                           "bitwise_hamming needs rows of a multiple of 4 bytes, 4-byte aligned");
        a.dtype = b.dtype = VA_U32;
        a.shape[1] = b.shape[1] = d / 4;
        a.strides[0] /= 4;
        b.strides[0] /= 4;
        d /= 4;
        es = esb = 4;
    }
    /* Columns of b's rows a window must cover: the code bytes for quantized rows. */
    int64_t bcols = sq ? xb->shape[1] : d;
    if (m == 1) a.strides[0] = d;
    if (n == 1) b.strides[0] = bcols;

    int norms = code == M_SQEUCLID || code == M_EUCLID || code == M_COSINE;
    va_buffer *na = NULL, *nb = NULL;
    if (norms) {
        VA_TRY(va_stream_scratch(s, (uint64_t)m * 4, &na));
        VA_TRY(va_stream_scratch(s, (uint64_t)n * 4, &nb));
        va_tensor tna = {na, 0, VA_F32, 1, {m}, {1}}, tnb = {nb, 0, VA_F32, 1, {n}, {1}};
        /* Cosine takes inverse norms, so its epilogue is two multiplies. */
        uint32_t mode = code == M_COSINE ? 2 : 0;
        VA_TRY(va_row_l2(s, &a, &tna, mode));
        if (sq) VA_TRY(va_sq_row_norms(s, &b, sq, mode == 2, &tnb));
        else VA_TRY(va_row_l2(s, &b, &tnb, mode));
    }

    tile_cfg tc = choose_tiles(ctx);
    const char *name = sq ? (sq->bits == 4 ? "cdist_tile_sq4" : "cdist_tile_sq8")
                     : bits ? "cdist_tile_u32"
                     : xa->dtype == VA_F16 ? (xb->dtype == VA_F16 ? "cdist_tile_f16" : "cdist_tile_a16")
                     : xb->dtype == VA_F16 ? "cdist_tile_b16" : "cdist_tile";
    union { float f; uint32_t u; } guard = {1.0f / 64.0f};
    uint32_t spec[11] = {(tc.bm / tc.tm) * (tc.bn / tc.tn), 1, 1, tc.bm, tc.bn, tc.bk, tc.tm, tc.tn, code, guard.u, 1};
    const va_kernel *k1, *k4 = NULL;
    VA_TRY(va_kernel_get(ctx, name, spec, 11, 0, &k1));

    /* Chunks: every window (rows of xa, rows of xb, the output block, the norms) within range. */
    int64_t lda = a.strides[0], ldb = b.strides[0], ldo = m == 1 ? n : out->strides[0];
    int64_t nc = va_rows_per_binding(ctx, ldb, bcols, esb);
    int64_t out_cols_max = (int64_t)((ctx->info.max_storage_buffer_range - 512) / 4);
    if (nc > out_cols_max) nc = out_cols_max;
    if (nc > n) nc = n;
    int64_t mc = va_rows_per_binding(ctx, lda, d, es);
    if (nc > 0) {
        int64_t mo = va_rows_per_binding(ctx, ldo, nc, 4);
        if (mo < mc) mc = mo;
    }
    if (mc > m) mc = m;
    if (nc <= 0 || mc <= 0)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a row of %lld elements exceeds the device's binding range",
                       (long long)d);
    /* Keep each dispatch to at most ~2^34 multiply-adds so no single one runs for seconds. */
    int64_t per_dispatch = ((int64_t)1 << 34) / (d > 0 ? d : 1) / (nc > 0 ? nc : 1);
    if (per_dispatch < (int64_t)tc.bm) per_dispatch = tc.bm;
    per_dispatch = per_dispatch / tc.bm * tc.bm;
    if (mc > per_dispatch) mc = per_dispatch;

    /* The norms as (rows, 1) matrices, for their windows. */
    va_tensor tna = {na, 0, VA_F32, 2, {m, 1}, {1, 1}}, tnb = {nb, 0, VA_F32, 2, {n, 1}, {1, 1}};
    for (int64_t j0 = 0; j0 < n; j0 += nc) {
        int64_t jc = n - j0 < nc ? n - j0 : nc;
        for (int64_t i0 = 0; i0 < m; i0 += mc) {
            int64_t ic = m - i0 < mc ? m - i0 : mc;
            uint32_t ra, rb, ro, rna = 0, rnb = 0;
            va_binding bind[7];
            bind[0] = va_rows_binding(ctx, &a, i0, ic, d, VA_READ, &ra);
            bind[1] = va_rows_binding(ctx, &b, j0, jc, bcols, VA_READ, &rb);
            va_tensor o = *out;
            o.offset += (uint64_t)j0 * 4;
            o.strides[0] = ldo;
            bind[2] = va_rows_binding(ctx, &o, i0, ic, jc, VA_WRITE, &ro);
            if (norms) {
                bind[3] = va_rows_binding(ctx, &tna, i0, ic, 1, VA_READ, &rna);
                bind[4] = va_rows_binding(ctx, &tnb, j0, jc, 1, VA_READ, &rnb);
            } else {
                bind[3] = bind[0];
                bind[4] = bind[1];
            }
            struct {
                uint32_t m, n, d, lda, ldb, ldo, a_off, b_off, o_off, na_off, nb_off;
                float p, inv_p;
            } pc = {(uint32_t)ic, (uint32_t)jc, (uint32_t)d, (uint32_t)lda, (uint32_t)ldb, (uint32_t)ldo,
                    ra, rb, ro, rna, rnb, p, 1.0f / p};
            uint32_t nbind = 5;
            if (sq) {
                bind[5] = va_tensor_binding(sq->vmin, VA_READ);
                bind[6] = va_tensor_binding(sq->step, VA_READ);
                nbind = 7;
            }
            /* Four-element loads when every row start is 4-aligned (the common case); quantized
             * rows are whole words, read a word (4 or 8 codes) at a time. */
            const va_kernel *k = k1;
            uint32_t per_word = sq ? 32u / (uint32_t)sq->bits : 4u;
            if (d % 4 == 0 && lda % 4 == 0 && ldb % 4 == 0 && ra % 4 == 0 && rb % 4 == 0 && tc.bk % per_word == 0) {
                if (!k4) {
                    spec[10] = 4;
                    VA_TRY(va_kernel_get(ctx, name, spec, 11, 0, &k4));
                }
                k = k4;
            }
            VA_TRY(va_stream_dispatch(s, k, bind, nbind, &pc, sizeof pc, va_ceil_div((uint64_t)jc, tc.bn),
                                      va_ceil_div((uint64_t)ic, tc.bm), 1));
        }
    }
    return VA_SUCCESS;
}

va_status va_cdist(va_stream *s, const va_tensor *xa, const va_tensor *xb, va_metric metric,
                   float p, const va_tensor *out) {
    va_clear_error();
    return cdist_impl(s, xa, xb, metric, p, NULL, out);
}

va_status va_cdist_sq(va_stream *s, const va_tensor *xa, const va_tensor *codes, const va_sq_codes *sq,
                      va_metric metric, const va_tensor *out) {
    return cdist_impl(s, xa, codes, metric, 2.0f, sq, out);
}

/* Registry adapters: iparams[0] = metric; fparams[0] = p. */
static va_status op_cdist(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                          const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 2 || n_out != 1 || n_i < 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "cdist takes (xa, xb) -> out and a metric");
    return va_cdist(s, &in[0], &in[1], (va_metric)ip[0], n_f > 0 ? (float)fp[0] : 2.0f, &out[0]);
}
VA_REGISTER_OP(cdist, op_cdist);

static va_status op_normalize(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)ip; (void)n_i; (void)fp; (void)n_f;
    if (n_in != 1 || n_out != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "normalize takes x -> out");
    return va_normalize(s, &in[0], &out[0]);
}
VA_REGISTER_OP(normalize, op_normalize);

static va_status op_row_sqnorms(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)ip; (void)n_i; (void)fp; (void)n_f;
    if (n_in != 1 || n_out != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "row_sqnorms takes x -> out");
    return va_row_sqnorms(s, &in[0], &out[0]);
}
VA_REGISTER_OP(row_sqnorms, op_row_sqnorms);
