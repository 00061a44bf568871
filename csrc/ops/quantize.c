/* quantize.c — scalar and binary quantizers (sq_codec.comp, binary_codec.comp): encoding float rows
 * into codes and decoding them, the decoded rows' norms the quantized distance tiles need, and
 * SQIndex's searches, which decode the codes inside the distance tiles so no float copy of the
 * database is made: va_sq_knn (knn.c's chunked tiles + top-k with cdist_tile's sq8/sq4 variants;
 * filters) and va_sq_knn_fused (knn.c's fused search with matmul.comp's knn_sq8/knn_sq4). Code rows are
 * whole 32-bit words (see va_sq_codes in internal.h); rows are split so every binding window fits
 * maxStorageBufferRange, and work items over a 2-D grid. */
#include "../core/internal.h"

#define CODEC_WG 256u
#define NORM_ROWS 8u     /* rows per workgroup of the norm kernel (one subgroup per row at a time) */
#define GRID_X 65535u

/* A 1-D launch of `groups` workgroups as a 2-D grid (gx, gy). */
static void grid(uint64_t groups, uint32_t *gx, uint32_t *gy) {
    *gx = groups < GRID_X ? (uint32_t)(groups ? groups : 1) : GRID_X;
    *gy = (uint32_t)((groups + *gx - 1) / *gx);
    if (*gy == 0) *gy = 1;
}

/* Code rows: (n, cw) u8, cw a multiple of 4 bytes covering `need` code bytes, rows and offset
 * word-aligned. */
static va_status check_code_rows(const va_tensor *codes, const char *arg, int64_t need) {
    VA_TRY(va_check_matrix(codes, arg, VA_U8, VA_U8));
    int64_t cw = codes->shape[1];
    if (cw % 4 || cw < need || (codes->shape[0] > 1 && codes->strides[0] % 4) || codes->offset % 4)
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "%s must be rows of whole 32-bit words (width a multiple of 4 bytes, at least %lld, "
                       "4-byte aligned), got width %lld", arg, (long long)need, (long long)cw);
    return VA_SUCCESS;
}

static va_status check_vector(const va_tensor *v, const char *arg, int64_t d) {
    if (!v || !v->buf || v->ndim != 1 || v->dtype != VA_F32 || v->shape[0] != d || (d > 1 && v->strides[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s must be a contiguous float32 vector of %lld elements", arg,
                       (long long)d);
    if (v->offset + va_tensor_span(v) > va_buffer_size(v->buf))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s reaches past the end of its buffer", arg);
    return VA_SUCCESS;
}

static int64_t sq_code_bytes(int64_t d, int bits) { return (d * bits + 7) / 8; }

va_status va_check_sq_codes(const va_tensor *codes, const va_sq_codes *sq) {
    if (sq->bits != 8 && sq->bits != 4)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "bits must be 8 or 4, got %d", sq->bits);
    if (sq->d < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "d must be at least 1");
    VA_TRY(check_code_rows(codes, "codes", sq_code_bytes(sq->d, sq->bits)));
    VA_TRY(check_vector(sq->vmin, "vmin", sq->d));
    VA_TRY(check_vector(sq->step, "step", sq->d));
    return VA_SUCCESS;
}

/* Records one codec kernel over rows of `in` -> `out`. Each row is `words` work items (MODE 0/1 of
 * either codec) or one row (norm modes, per_row != 0). in_cols / out_cols: elements of a row that
 * a window must cover. Offsets passed to the kernel are in elements of the tensor's dtype (bytes
 * for codes). */
static va_status run_codec(va_stream *s, const char *name, const uint32_t *spec, uint32_t nspec,
                           const va_tensor *in, int64_t in_cols, const va_tensor *out, int64_t out_cols,
                           const va_binding *extra, uint32_t nextra, int64_t d, int64_t words, int per_row) {
    va_context *ctx = va_stream_context(s);
    int64_t n = in->shape[0];
    if (n == 0) return VA_SUCCESS;
    const va_kernel *k;
    VA_TRY(va_kernel_get(ctx, name, spec, nspec, 0, &k));
    va_tensor iv = *in, ov = *out;
    if (n == 1) {
        iv.strides[0] = in_cols;
        ov.strides[0] = out_cols;
    }
    size_t ei = va_dtype_size(in->dtype), eo = va_dtype_size(out->dtype);
    int64_t chunk = va_rows_per_binding(ctx, iv.strides[0], in_cols, ei);
    int64_t c2 = va_rows_per_binding(ctx, ov.strides[0], out_cols, eo);
    if (c2 < chunk) chunk = c2;
    int64_t items = per_row ? 1 : words;
    int64_t c3 = (int64_t)(0xFFFFFFFFu / CODEC_WG) * CODEC_WG / (items > 0 ? items : 1) / 2;
    if (c3 < chunk) chunk = c3;
    if (chunk <= 0)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a row of %lld elements exceeds the device's binding range",
                       (long long)d);
    for (int64_t r0 = 0; r0 < n; r0 += chunk) {
        int64_t rc = n - r0 < chunk ? n - r0 : chunk;
        uint32_t ri, ro;
        va_binding b[4];
        b[0] = va_rows_binding(ctx, &iv, r0, rc, in_cols, VA_READ, &ri);
        if (per_row) {
            va_tensor o1 = ov; /* one value per row: the vector as an (n, 1) matrix */
            o1.ndim = 2;
            o1.shape[1] = 1;
            o1.strides[0] = o1.strides[1] = 1;
            b[1] = va_rows_binding(ctx, &o1, r0, rc, 1, VA_WRITE, &ro);
        } else {
            b[1] = va_rows_binding(ctx, &ov, r0, rc, out_cols, VA_WRITE, &ro);
        }
        for (uint32_t i = 0; i < nextra; i++) b[2 + i] = extra[i];
        uint64_t groups = per_row ? va_ceil_div((uint64_t)rc, NORM_ROWS)
                                  : va_ceil_div((uint64_t)rc * (uint64_t)words, CODEC_WG);
        uint32_t gx, gy;
        grid(groups, &gx, &gy);
        uint32_t pc[8] = {(uint32_t)rc, (uint32_t)d, (uint32_t)iv.strides[0], ri, (uint32_t)ov.strides[0], ro,
                          (uint32_t)words, gx};
        VA_TRY(va_stream_dispatch(s, k, b, 2 + nextra, pc, sizeof pc, gx, gy, 1));
    }
    return VA_SUCCESS;
}

static va_status check_float_rows(va_context *ctx, const va_tensor *x, const char *arg, int64_t d) {
    VA_TRY(va_check_matrix(x, arg, VA_F32, VA_F16));
    if (x->shape[1] != d)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s has %lld columns, expected %lld", arg, (long long)x->shape[1],
                       (long long)d);
    if (x->dtype == VA_F16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");
    return VA_SUCCESS;
}

/* ---- scalar quantizer ---------------------------------------------------------------------- */

va_status va_sq_encode(va_stream *s, const va_tensor *x, const va_tensor *vmin, const va_tensor *scale, int bits,
                       const va_tensor *codes) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    if (bits != 8 && bits != 4) return va_fail(VA_ERROR_INVALID_ARGUMENT, "bits must be 8 or 4, got %d", bits);
    if (!x || x->ndim != 2) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must be 2-D");
    int64_t d = x->shape[1];
    if (d < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must have at least one column");
    VA_TRY(check_float_rows(ctx, x, "x", d));
    VA_TRY(check_vector(vmin, "vmin", d));
    VA_TRY(check_vector(scale, "scale", d));
    VA_TRY(check_code_rows(codes, "codes", sq_code_bytes(d, bits)));
    if (codes->shape[0] != x->shape[0])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "codes must have %lld rows", (long long)x->shape[0]);
    int64_t words = codes->shape[1] / 4;
    uint32_t spec[6] = {CODEC_WG, 1, 1, 0, (uint32_t)bits, NORM_ROWS};
    va_binding extra[2] = {va_tensor_binding(vmin, VA_READ), va_tensor_binding(scale, VA_READ)};
    return run_codec(s, x->dtype == VA_F16 ? "sq_codec_f16" : "sq_codec", spec, 6, x, d, codes, codes->shape[1],
                     extra, 2, d, words, 0);
}

va_status va_sq_decode(va_stream *s, const va_tensor *codes, const va_tensor *vmin, const va_tensor *step, int bits,
                       const va_tensor *out) {
    va_clear_error();
    VA_TRY(va_check_matrix(out, "out", VA_F32, VA_F32));
    va_sq_codes sq = {vmin, step, bits, out->shape[1]};
    VA_TRY(va_check_sq_codes(codes, &sq));
    if (out->shape[0] != codes->shape[0])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must have %lld rows", (long long)codes->shape[0]);
    int64_t words = va_ceil_div((uint64_t)sq_code_bytes(sq.d, bits), 4);
    uint32_t spec[6] = {CODEC_WG, 1, 1, 1, (uint32_t)bits, NORM_ROWS};
    va_binding extra[2] = {va_tensor_binding(vmin, VA_READ), va_tensor_binding(step, VA_READ)};
    return run_codec(s, "sq_codec", spec, 6, codes, codes->shape[1], out, sq.d, extra, 2, sq.d, words, 0);
}

va_status va_sq_row_norms(va_stream *s, const va_tensor *codes, const va_sq_codes *sq, int inverse,
                          const va_tensor *out) {
    VA_TRY(va_check_sq_codes(codes, sq));
    if (!out || out->ndim != 1 || out->dtype != VA_F32 || out->shape[0] != codes->shape[0])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must be a float32 vector of %lld elements",
                       (long long)codes->shape[0]);
    int64_t words = va_ceil_div((uint64_t)sq_code_bytes(sq->d, sq->bits), 4);
    uint32_t spec[6] = {64, 1, 1, inverse ? 3u : 2u, (uint32_t)sq->bits, NORM_ROWS};
    va_binding extra[2] = {va_tensor_binding(sq->vmin, VA_READ), va_tensor_binding(sq->step, VA_READ)};
    return run_codec(s, "sq_codec", spec, 6, codes, codes->shape[1], out, 1, extra, 2, sq->d, words, 1);
}

va_status va_sq_knn(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_tensor *vmin,
                    const va_tensor *step, int bits, va_metric metric, int64_t k, const va_tensor *mask,
                    const va_tensor *out_d, const va_tensor *out_i) {
    va_clear_error();
    VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F32));
    va_sq_codes sq = {vmin, step, bits, q->shape[1]};
    VA_TRY(va_check_sq_codes(codes, &sq));
    return va_knn_sq(s, q, codes, &sq, metric, k, mask, out_d, out_i);
}

/* The fused search (knn.c's va_knn_fused, whose GEMM tiles decode the codes as they fetch them). */
va_status va_sq_knn_fused(va_stream *s, const va_tensor *q, const va_tensor *codes, const va_tensor *vmin,
                          const va_tensor *step, int bits, va_metric metric, int64_t k, const va_tensor *out_d,
                          const va_tensor *out_i, const va_tensor *overflow) {
    va_clear_error();
    VA_TRY(va_check_matrix(q, "queries", VA_F32, VA_F32));
    va_sq_codes sq = {vmin, step, bits, q->shape[1]};
    VA_TRY(va_check_sq_codes(codes, &sq));
    return va_knn_fused_sq(s, q, codes, &sq, metric, k, out_d, out_i, overflow);
}

/* ---- binary quantizer ---------------------------------------------------------------------- */

va_status va_binary_encode(va_stream *s, const va_tensor *x, const va_tensor *thresholds, int little,
                           const va_tensor *codes) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    if (!x || x->ndim != 2) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must be 2-D");
    int64_t d = x->shape[1];
    if (d < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must have at least one column");
    VA_TRY(check_float_rows(ctx, x, "x", d));
    VA_TRY(check_vector(thresholds, "thresholds", d));
    VA_TRY(check_code_rows(codes, "codes", (d + 7) / 8));
    if (codes->shape[0] != x->shape[0])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "codes must have %lld rows", (long long)x->shape[0]);
    uint32_t spec[5] = {CODEC_WG, 1, 1, 0, little ? 1u : 0u};
    va_binding extra[1] = {va_tensor_binding(thresholds, VA_READ)};
    return run_codec(s, x->dtype == VA_F16 ? "binary_codec_f16" : "binary_codec", spec, 5, x, d, codes,
                     codes->shape[1], extra, 1, d, codes->shape[1] / 4, 0);
}

va_status va_binary_decode(va_stream *s, const va_tensor *codes, int little, const va_tensor *out) {
    va_clear_error();
    VA_TRY(va_check_matrix(out, "out", VA_F32, VA_F32));
    int64_t d = out->shape[1];
    if (d < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must have at least one column");
    VA_TRY(check_code_rows(codes, "codes", (d + 7) / 8));
    if (out->shape[0] != codes->shape[0])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must have %lld rows", (long long)codes->shape[0]);
    uint32_t spec[5] = {CODEC_WG, 1, 1, 1, little ? 1u : 0u};
    /* The decode kernel takes one work item per element; it binds no thresholds but the layout
     * has that binding: the codes stand in for it. */
    va_binding extra[1] = {va_tensor_binding(codes, VA_READ)};
    return run_codec(s, "binary_codec", spec, 5, codes, codes->shape[1], out, d, extra, 1, d, d, 0);
}

/* ---- registry adapters ----------------------------------------------------------------------- */

/* Inputs: x, vmin, scale; output: codes. iparams: bits. */
static va_status op_sq_encode(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 3 || n_out != 1 || n_i < 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "sq_encode takes (x, vmin, scale) -> codes and bits");
    return va_sq_encode(s, &in[0], &in[1], &in[2], (int)ip[0], &out[0]);
}
VA_REGISTER_OP(sq_encode, op_sq_encode);

/* Inputs: codes, vmin, step; output: out (n, d). iparams: bits. */
static va_status op_sq_decode(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 3 || n_out != 1 || n_i < 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "sq_decode takes (codes, vmin, step) -> out and bits");
    return va_sq_decode(s, &in[0], &in[1], &in[2], (int)ip[0], &out[0]);
}
VA_REGISTER_OP(sq_decode, op_sq_decode);

/* Inputs: queries, codes, vmin, step[, mask]; outputs: distances, indices.
 * iparams: bits, metric, k, has_mask. */
static va_status op_sq_knn(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                           const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_i < 4 || n_out != 2 || n_in != 4 + (ip[3] != 0))
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "sq_knn takes (queries, codes, vmin, step[, mask]) -> (distances, indices)");
    return va_sq_knn(s, &in[0], &in[1], &in[2], &in[3], (int)ip[0], (va_metric)ip[1], ip[2], ip[3] ? &in[4] : NULL,
                     &out[0], &out[1]);
}
VA_REGISTER_OP(sq_knn, op_sq_knn);

/* Inputs: queries, codes, vmin, step; outputs: distances, indices, overflow flags.
 * iparams: bits, metric, k. */
static va_status op_sq_knn_fused(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                 const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_i < 3 || n_out != 3 || n_in != 4)
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "sq_knn_fused takes (queries, codes, vmin, step) -> (distances, indices, overflow)");
    return va_sq_knn_fused(s, &in[0], &in[1], &in[2], &in[3], (int)ip[0], (va_metric)ip[1], ip[2], &out[0], &out[1],
                           &out[2]);
}
VA_REGISTER_OP(sq_knn_fused, op_sq_knn_fused);

/* Inputs: x, thresholds; output: codes. iparams: little. */
static va_status op_binary_encode(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                  const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 2 || n_out != 1 || n_i < 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "binary_encode takes (x, thresholds) -> codes and a bit order");
    return va_binary_encode(s, &in[0], &in[1], ip[0] != 0, &out[0]);
}
VA_REGISTER_OP(binary_encode, op_binary_encode);

/* Inputs: codes; output: out (n, d). iparams: little. */
static va_status op_binary_decode(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                  const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 1 || n_out != 1 || n_i < 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "binary_decode takes codes -> out and a bit order");
    return va_binary_decode(s, &in[0], ip[0] != 0, &out[0]);
}
VA_REGISTER_OP(binary_decode, op_binary_decode);
