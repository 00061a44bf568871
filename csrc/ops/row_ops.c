/* row_ops.c — normalisations along rows: softmax (softmax.comp) and layer_norm (layer_norm.comp).
 * Short rows go one per subgroup, longer ones one per workgroup; rows are split into blocks so
 * every binding window fits maxStorageBufferRange; vec4 accesses where rows are contiguous and
 * 4-aligned. */
#include <stdio.h>
#include <stdlib.h>

#include "../core/internal.h"

#define ROW_WG 256u
#define ROW_WG_LONG 1024u /* rows beyond 256 threads' registers: more threads keep them cached */
#define ROW_VPT 8u /* vec4 per thread held in registers */

static va_status check_rows(const va_tensor *x, const va_tensor *out) {
    if (!x || !x->buf || x->ndim != 2 || (x->dtype != VA_F32 && x->dtype != VA_F16))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must be a 2-D float32 or float16 tensor");
    VA_TRY(va_check_matrix(out, "out", x->dtype, x->dtype));
    if (out->shape[0] != x->shape[0] || out->shape[1] != x->shape[1])
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out has shape (%lld, %lld), expected (%lld, %lld)",
                       (long long)out->shape[0], (long long)out->shape[1], (long long)x->shape[0],
                       (long long)x->shape[1]);
    if (x->strides[0] < 0 || x->strides[1] < 0)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x has a negative stride");
    if (x->offset + va_tensor_span(x) > va_buffer_size(x->buf))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x reaches past the end of its buffer");
    return VA_SUCCESS;
}

/* Records the row kernel `name` over x -> out; extra bindings (layer_norm's weight and bias) go
 * between them. spec[3..] beyond ROWS, VPT, VEC come from `more`. */
static va_status run_rows(va_stream *s, const char *name, const va_tensor *x, const va_tensor *out,
                          const va_binding *extra, int nextra, const uint32_t *more, int nmore,
                          const uint32_t *push_tail, int ntail) {
    va_context *ctx = va_stream_context(s);
    int64_t m = x->shape[0], n = x->shape[1];
    if (m == 0 || n == 0) return VA_SUCCESS;
    if (n > 0x7FFFFFFF) return va_fail(VA_ERROR_INVALID_ARGUMENT, "rows of more than 2^31 elements are not supported");
    if (x->dtype == VA_F16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");
    size_t es = va_dtype_size(x->dtype);
    int64_t sx = n > 1 ? x->strides[1] : 1;
    int64_t ldx = m > 1 ? x->strides[0] : 0, ldo = m > 1 ? out->strides[0] : 0;
    int64_t xcols = (n - 1) * sx + 1;
    va_tensor xv = *x, ov = *out;
    xv.strides[0] = ldx;
    ov.strides[0] = ldo;
    int64_t chunk = va_rows_per_binding(ctx, ldx, xcols, es);
    int64_t co = va_rows_per_binding(ctx, ldo, n, es);
    if (co < chunk) chunk = co;
    if (chunk <= 0)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a row of %lld elements exceeds the device's binding range",
                       (long long)n);
    /* A subgroup per row while a row fits its registers, else the whole workgroup. */
    uint32_t sg = ctx->info.subgroup_size ? ctx->info.subgroup_size : 32;
    uint32_t rows = (uint64_t)n <= 4ull * ROW_VPT * sg && ROW_WG % sg == 0 ? ROW_WG / sg : 1;
    /* A workgroup per row: the fewest threads (256, 512, 1024) whose registers hold it, so that no
     * register sits unused; registers are what limits the workgroups an SM runs at once (rows of
     * 16384 on the H100: 1024 threads with room for 32768 elements ran 0.97 ms, 512 threads 0.72). */
    uint32_t wg = ROW_WG;
    while (rows == 1 && (uint64_t)n > 4ull * ROW_VPT * wg && wg < ROW_WG_LONG &&
           2 * wg <= ctx->info.max_workgroup_invocations)
        wg *= 2;
    uint32_t vpt = ROW_VPT;
    const char *tile = getenv("VACCEL_ROW_TILE");   /* tuning: "wg,vpt" for rows a workgroup takes */
    if (tile && rows == 1) {
        int tw = 0, tv = 0, used = 0;
        if (sscanf(tile, "%d,%d%n", &tw, &tv, &used) == 2 && tile[used] == '\0' && tw >= (int)sg &&
            tw % (int)sg == 0 && tw <= (int)ctx->info.max_workgroup_invocations && tw <= 1024 && tv >= 1 &&
            tv <= 32) {
            wg = tw;
            vpt = tv;
        }
    }
    int aligned16 = ctx->info.min_storage_buffer_offset_alignment % 16 == 0;
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rc = m - r0 < chunk ? m - r0 : chunk;
        uint32_t rx, ro;
        va_binding b[4];
        b[0] = va_rows_binding(ctx, &xv, r0, rc, xcols, VA_READ, &rx);
        for (int i = 0; i < nextra; i++) b[1 + i] = extra[i];
        b[1 + nextra] = va_rows_binding(ctx, &ov, r0, rc, n, VA_WRITE, &ro);
        int vec = aligned16 && n % 4 == 0 && sx == 1 && ldx % 4 == 0 && ldo % 4 == 0 && rx % 4 == 0 && ro % 4 == 0;
        uint32_t spec[8] = {wg, 1, 1, rows, vpt, vec ? 4u : 1u};
        for (int i = 0; i < nmore; i++) spec[6 + i] = more[i];
        const va_kernel *k;
        VA_TRY(va_kernel_get(ctx, name, spec, (uint32_t)(6 + nmore), 0, &k));
        uint32_t pc[12] = {(uint32_t)rc, (uint32_t)n, (uint32_t)ldx, (uint32_t)sx, rx, (uint32_t)ldo, ro};
        for (int i = 0; i < ntail; i++) pc[7 + i] = push_tail[i];
        VA_TRY(va_stream_dispatch(s, k, b, (uint32_t)(2 + nextra), pc, (uint32_t)(4 * (7 + ntail)),
                                  va_ceil_div((uint64_t)rc, rows), 1, 1));
    }
    return VA_SUCCESS;
}

va_status va_softmax(va_stream *s, const va_tensor *x, const va_tensor *out) {
    va_clear_error();
    VA_TRY(check_rows(x, out));
    return run_rows(s, x->dtype == VA_F16 ? "softmax_f16" : "softmax", x, out, NULL, 0, NULL, 0, NULL, 0);
}

static va_status check_vector(const va_tensor *t, const char *arg, int64_t n) {
    if (!t) return VA_SUCCESS;
    if (!t->buf || t->ndim != 1 || t->dtype != VA_F32 || t->shape[0] != n || (n > 1 && t->strides[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s must be a contiguous float32 vector of %lld elements", arg,
                       (long long)n);
    if (t->offset + va_tensor_span(t) > va_buffer_size(t->buf))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s reaches past the end of its buffer", arg);
    return VA_SUCCESS;
}

va_status va_layer_norm(va_stream *s, const va_tensor *x, const va_tensor *weight, const va_tensor *bias, float eps,
                        const va_tensor *out) {
    va_clear_error();
    VA_TRY(check_rows(x, out));
    int64_t n = x->shape[1];
    VA_TRY(check_vector(weight, "weight", n));
    VA_TRY(check_vector(bias, "bias", n));
    va_context *ctx = va_stream_context(s);
    va_binding extra[2];
    uint32_t woff = 0, boff = 0;
    /* Absent vectors: x's first window stands in (never read). */
    const va_tensor *wt = weight ? weight : x, *bt = bias ? bias : x;
    extra[0] = (va_binding){wt->buf, va_align_binding(ctx, wt->offset, (uint32_t)va_dtype_size(wt->dtype), &woff),
                            0, VA_READ};
    extra[0].size = weight ? va_tensor_span(weight) + woff * 4 : 4;
    extra[1] = (va_binding){bt->buf, va_align_binding(ctx, bt->offset, (uint32_t)va_dtype_size(bt->dtype), &boff),
                            0, VA_READ};
    extra[1].size = bias ? va_tensor_span(bias) + boff * 4 : 4;
    union { float f; uint32_t u; } e = {eps};
    uint32_t more[2] = {weight != NULL, bias != NULL};
    uint32_t tail[3] = {woff, boff, e.u};
    return run_rows(s, x->dtype == VA_F16 ? "layer_norm_f16" : "layer_norm", x, out, extra, 2, more, 2, tail, 3);
}

/* Registry adapters. softmax: x -> out. layer_norm: x[, weight][, bias] -> out; iparams: has_weight,
 * has_bias; fparams: eps. */
static va_status op_softmax(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                            const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 1 || n_out != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "softmax takes x -> out");
    return va_softmax(s, &in[0], &out[0]);
}
VA_REGISTER_OP(softmax, op_softmax);

static va_status op_layer_norm(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                               const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_i < 2 || n_out != 1 || n_f < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "layer_norm takes x -> out, flags and eps");
    int hw = ip[0] != 0, hb = ip[1] != 0;
    if (n_in != 1 + hw + hb) return va_fail(VA_ERROR_INVALID_ARGUMENT, "layer_norm: wrong number of inputs");
    return va_layer_norm(s, &in[0], hw ? &in[1] : NULL, hb ? &in[1 + hw] : NULL, (float)fp[0], &out[0]);
}
VA_REGISTER_OP(layer_norm, op_layer_norm);
