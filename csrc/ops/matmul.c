/* matmul.c — C = A·B (2-D and batched): picks the kernel (cooperative matrices for float16 where the
 * device has them, the vec4 SIMT tile otherwise), its tile and vector width per operand layout, and
 * splits batches, rows, columns and depth so that every binding window fits
 * maxStorageBufferRange. Also matvec (a subgroup per row, or a thread per output for column-major
 * A) and a batched 2-D transpose through shared-memory tiles. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"

/* One operand's last two axes: rows x cols, stored row-major (element (r, c) at r*ld + c) or
 * column-major (at c*ld + r); bs is the batch stride (0 broadcasts). All in elements. */
typedef struct operand {
    const va_tensor *t;
    int64_t rows, cols, ld, bs, batch;
    int colmajor;
} operand;

static va_status describe(const va_tensor *t, const char *arg, operand *o) {
    if (!t || !t->buf) return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: missing tensor", arg);
    if (t->ndim != 2 && t->ndim != 3)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s must be 2-D or 3-D, got %d dimensions", arg, t->ndim);
    int b = t->ndim == 3;
    o->t = t;
    o->batch = b ? t->shape[0] : 1;
    o->bs = b && t->shape[0] > 1 ? t->strides[0] : 0;
    o->rows = t->shape[b];
    o->cols = t->shape[b + 1];
    int64_t sr = t->strides[b], sc = t->strides[b + 1];
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || t->strides[i] < 0)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s has a negative dimension or stride", arg);
    if (o->cols <= 1 || sc == 1) {
        o->colmajor = 0;
        o->ld = o->rows > 1 ? sr : (o->cols > 0 ? o->cols : 1);
        if (o->rows > 1 && o->ld < o->cols)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: rows overlap (row stride %lld < %lld)", arg,
                           (long long)o->ld, (long long)o->cols);
    } else if (o->rows <= 1 || sr == 1) {
        o->colmajor = 1;
        o->ld = sc;
        if (o->ld < o->rows)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: columns overlap (column stride %lld < %lld)", arg,
                           (long long)o->ld, (long long)o->rows);
    } else {
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: one of the last two axes must be contiguous", arg);
    }
    if (t->offset + va_tensor_span(t) > va_buffer_size(t->buf))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s reaches past the end of its buffer", arg);
    return VA_SUCCESS;
}

/* Elements spanned by batches [0, nb) x rows [0, nr) x cols [0, nc) of o (from its first). */
static uint64_t block_span(const operand *o, int64_t nb, int64_t nr, int64_t nc) {
    if (nb <= 0 || nr <= 0 || nc <= 0) return 1;
    uint64_t e = o->colmajor ? (uint64_t)(nc - 1) * o->ld + nr : (uint64_t)(nr - 1) * o->ld + nc;
    return (uint64_t)(nb - 1) * o->bs + e;
}

/* The binding window of that block starting at (b0, r0, c0); *rem gets the element remainder. */
static va_binding block_binding(va_context *ctx, const operand *o, int64_t b0, int64_t r0, int64_t c0, int64_t nb,
                                int64_t nr, int64_t nc, va_access acc, uint32_t *rem) {
    size_t es = va_dtype_size(o->t->dtype);
    uint64_t first = (uint64_t)b0 * o->bs + (o->colmajor ? (uint64_t)c0 * o->ld + r0 : (uint64_t)r0 * o->ld + c0);
    uint64_t start = o->t->offset + first * es;
    uint64_t base = va_align_binding(ctx, start, (uint32_t)es, rem);
    va_binding b = {o->t->buf, base, (block_span(o, nb, nr, nc) + *rem) * es, acc};
    if (b.offset + b.size > va_buffer_size(o->t->buf)) b.size = va_buffer_size(o->t->buf) - b.offset;
    return b;
}

/* Whether v-element loads along the contiguous axis are exact for this block. */
static int vectorizable(const operand *o, uint32_t rem, int64_t nb, uint32_t v) {
    int64_t extent = o->colmajor ? o->rows : o->cols;
    return extent % v == 0 && o->ld % v == 0 && rem % v == 0 && (nb <= 1 || o->bs % v == 0);
}

typedef struct simt_cfg { uint32_t bm, bn, bk, tm, tn; } simt_cfg;

static simt_cfg simt_tiles(const va_context *ctx, int64_t m, int64_t n, int64_t batch, int half) {
    /* 128x128 tiles with 8x8 results per thread where there are enough of them to fill the GPU;
     * 64x64 with 4x4 for small problems (more workgroups, less padding). */
    simt_cfg big = {128, 128, 8, 8, 8}, small = {64, 64, 16, 4, 4};
    uint64_t tiles = (uint64_t)va_ceil_div((uint64_t)m, 128) * va_ceil_div((uint64_t)n, 128) * (uint64_t)batch;
    /* With float16 operands NVIDIA's compiler spills the 8x8 tile (2 TFLOP/s on an H100 against
     * 33 for 8x4), so those take 128x64. */
    if (half) big.tn = 4, big.bn = 64;
    simt_cfg c = tiles >= 256 ? big : small;
    const char *env = getenv("VACCEL_MATMUL_TILE");
    simt_cfg e;
    if (env && sscanf(env, "%u,%u,%u,%u,%u", &e.bm, &e.bn, &e.bk, &e.tm, &e.tn) == 5 && e.tm && e.tn &&
        e.tm % 4 == 0 && e.tn % 4 == 0 && e.bk % 4 == 0 && e.bm % e.tm == 0 && e.bn % e.tn == 0 &&
        (e.bm / e.tm) * (e.bn / e.tn) <= ctx->info.max_workgroup_invocations &&
        2u * e.bk * (e.bm + e.bn) * 4 <= ctx->info.shared_memory_per_workgroup)
        c = e;
    return c;
}

static const char *coop_name(const va_tensor *a, const va_tensor *c) {
    if (a->dtype == VA_BF16) return c->dtype == VA_BF16 ? "matmul_coopmat_bf16c" : "matmul_coopmat_bf16";
    return c->dtype == VA_F16 ? "matmul_coopmat_f16c" : "matmul_coopmat";
}

int va_coopmat_enabled(const va_context *ctx) {
    if (!ctx->info.coopmat_m) return 0;
    const char *off = getenv("VACCEL_NO_COOPMAT");
    return !(off && *off && strcmp(off, "0") != 0);
}

/* float16 pairs where the device has cooperative matrices; bfloat16 pairs where it also lists
 * bfloat16 ones at the same shape (and this build has their kernel). */
static int use_coopmat(const va_context *ctx, const va_tensor *a, const va_tensor *b, const va_tensor *c) {
    if (a->dtype != b->dtype || !va_coopmat_enabled(ctx)) return 0;
    if (a->dtype != VA_F16 && !(a->dtype == VA_BF16 && ctx->info.coopmat_bf16)) return 0;
    return va_kernel_available(coop_name(a, c));
}

/* Workgroup-scope cooperative matrices (VK_NV_cooperative_matrix2) where the device has them:
 * the driver stages the operands, and its loads of whole aligned tiles beat our subgroup-scope
 * kernel's on the H100 (289 against 172 TFLOP/s at 8192^3 float16; see RESULTS.md).
 * VACCEL_COOPMAT2=0 keeps the subgroup-scope kernel. */
static const char *cm2_name(const va_tensor *a, const va_tensor *c) {
    if (a->dtype == VA_BF16) return c->dtype == VA_BF16 ? "matmul_cm2_bf16c" : "matmul_cm2_bf16";
    return c->dtype == VA_F16 ? "matmul_cm2_f16c" : "matmul_cm2";
}

static int use_cm2(const va_context *ctx, const va_tensor *a, const va_tensor *c) {
    if (!ctx->info.cooperative_matrix_nv2) return 0;
    const char *env = getenv("VACCEL_COOPMAT2");
    if (env && strcmp(env, "0") == 0) return 0;
    return va_kernel_available(cm2_name(a, c));
}

/* BM x BN x BK tiles, workgroup size and main-loop unroll of matmul_cm2;
 * VACCEL_CM2_TILE="BM,BN,BK,WG[,UNROLL]" overrides (UNROLL 1-16, else the default's). */
static void cm2_tiles(const va_context *ctx, uint32_t *t) {
    uint32_t d[5] = {128, 128, 32, 128, 8}, e[5];
    memcpy(e, d, sizeof e);
    const char *env = getenv("VACCEL_CM2_TILE");
    int n = env ? sscanf(env, "%u,%u,%u,%u,%u", &e[0], &e[1], &e[2], &e[3], &e[4]) : 0;
    if (n >= 4 && e[0] && e[1] && e[2] && e[3] && e[4] && e[4] <= 16 && e[0] % 16 == 0 && e[1] % 16 == 0 &&
        e[2] % 16 == 0 && e[3] % ctx->info.subgroup_size == 0 && e[3] <= ctx->info.max_workgroup_invocations)
        memcpy(d, e, sizeof d);
    memcpy(t, d, sizeof d);
}

/* 128x128x32 tiles, four subgroups of 64x64 (a 2x2 grid); VACCEL_COOPMAT_TILE="BM,BN,BK,WM,WN"
 * overrides, for tuning on a new device. */
va_coop_cfg va_coopmat_tiles(const va_context *ctx) {
    va_coop_cfg c = {128, 128, 32, 64, 64};
    const char *env = getenv("VACCEL_COOPMAT_TILE");
    va_coop_cfg e = {0};
    int n = env ? sscanf(env, "%u,%u,%u,%u,%u", &e.bm, &e.bn, &e.bk, &e.wm, &e.wn) : 0;
    if (n >= 5 && e.wm && e.wn && e.bm % e.wm == 0 && e.bn % e.wn == 0 && e.wm % ctx->info.coopmat_m == 0 &&
        e.wn % ctx->info.coopmat_n == 0 && e.bk % ctx->info.coopmat_k == 0 && e.bk % 8 == 0) {
        uint32_t sgs = (e.bm / e.wm) * (e.bn / e.wn);
        uint64_t shared = 2ull * 16 * ((e.bm * (e.bk / 8 + 1)) + (e.bk * (e.bn / 8 + 1))) +
                          (uint64_t)sgs * ctx->info.coopmat_m * ctx->info.coopmat_n * 4;
        if (shared <= ctx->info.shared_memory_per_workgroup &&
            sgs * ctx->info.subgroup_size <= ctx->info.max_workgroup_invocations)
            c = e;
    }
    return c;
}

va_status va_matmul(va_stream *s, const va_tensor *a, const va_tensor *b, const va_tensor *c, int accumulate) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    operand A, B, C;
    VA_TRY(describe(a, "a", &A));
    VA_TRY(describe(b, "b", &B));
    VA_TRY(describe(c, "out", &C));
    if ((a->dtype != VA_F32 && a->dtype != VA_F16 && a->dtype != VA_BF16) ||
        (b->dtype != VA_F32 && b->dtype != VA_F16 && b->dtype != VA_BF16))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "a and b must be float32, float16 or bfloat16");
    if ((a->dtype == VA_BF16) != (b->dtype == VA_BF16))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "a bfloat16 operand needs a bfloat16 partner");
    if (c->dtype != VA_F32 && !(c->dtype == a->dtype && c->dtype == b->dtype && c->dtype != VA_F32))
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "out must be float32 (float16 or bfloat16 only for a and b of that dtype)");
    if (C.colmajor && C.cols > 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must be row-major (its last axis contiguous)");
    int64_t m = C.rows, n = C.cols, k = A.cols, batch = C.batch;
    if (A.rows != m || B.cols != n || B.rows != k)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "shapes do not match: a (%lld, %lld), b (%lld, %lld), out (%lld, %lld)",
                       (long long)A.rows, (long long)A.cols, (long long)B.rows, (long long)B.cols, (long long)m,
                       (long long)n);
    if ((A.batch != batch && A.batch != 1) || (B.batch != batch && B.batch != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "batch sizes of a and b must match out's (%lld) or be 1",
                       (long long)batch);
    if (A.batch == 1) A.bs = 0;
    if (B.batch == 1) B.bs = 0;
    if (batch > 1 && C.bs < m * C.ld && m > 0 && n > 0)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out: batches overlap");
    if (m == 0 || n == 0 || batch == 0) return VA_SUCCESS;

    int coop = use_coopmat(ctx, a, b, c);
    int cm2 = coop && use_cm2(ctx, a, c);
    uint32_t cm2_t[5], cm2_spec[11];
    if (cm2) {
        cm2_tiles(ctx, cm2_t);
        uint32_t sp[11] = {cm2_t[3], 1, 1, cm2_t[0], cm2_t[1], cm2_t[2], A.colmajor, B.colmajor, 1, 1, cm2_t[4]};
        memcpy(cm2_spec, sp, sizeof sp);
        /* A driver that lists the extension may still refuse this kernel (a bfloat16 workgroup-
         * scope matrix, say): then the subgroup-scope kernel serves. The probe is the aligned
         * variant, the one large products take; made once, it is looked up on later calls. */
        const va_kernel *probe;
        if (va_kernel_get(ctx, cm2_name(a, c), cm2_spec, 11, ctx->info.subgroup_size, &probe) != VA_SUCCESS) {
            va_clear_error();
            cm2 = 0;
        }
    }
    uint32_t bm, bn, bk, vec, wg;
    uint32_t spec[17];
    uint32_t nspec;
    const char *name;
    simt_cfg sc = {0};
    if (cm2) {
        bm = cm2_t[0]; bn = cm2_t[1]; bk = cm2_t[2]; wg = cm2_t[3]; vec = 8;
        memcpy(spec, cm2_spec, sizeof cm2_spec);
        nspec = 11;
        name = cm2_name(a, c);
    } else if (coop) {
        va_coop_cfg cc = va_coopmat_tiles(ctx);
        uint32_t sgs = (cc.bm / cc.wm) * (cc.bn / cc.wn);
        bm = cc.bm; bn = cc.bn; bk = cc.bk; vec = 8;
        wg = sgs * ctx->info.subgroup_size;
        uint32_t sp[17] = {wg, 1, 1, bm, bn, bk, cc.wm, cc.wn, ctx->info.coopmat_m, ctx->info.coopmat_n,
                           ctx->info.coopmat_k, A.colmajor, B.colmajor, 0, 0, sgs, ctx->info.subgroup_size};
        memcpy(spec, sp, sizeof sp);
        nspec = 17;
        name = coop_name(a, c);
    } else {
        sc = simt_tiles(ctx, m, n, batch, a->dtype != VA_F32 || b->dtype != VA_F32);
        bm = sc.bm; bn = sc.bn; bk = sc.bk; vec = 4;
        wg = (sc.bm / sc.tm) * (sc.bn / sc.tn);
        uint32_t sp[12] = {wg, 1, 1, sc.bm, sc.bn, sc.bk, sc.tm, sc.tn, A.colmajor, B.colmajor, 0, 0};
        memcpy(spec, sp, sizeof sp);
        nspec = 12;
        name = a->dtype == VA_BF16 ? (c->dtype == VA_BF16 ? "matmul_bf16c" : "matmul_bf16")
             : a->dtype == VA_F16 ? (b->dtype == VA_F16 ? (c->dtype == VA_F16 ? "matmul_f16c" : "matmul_f16") : "matmul_a16")
             : b->dtype == VA_F16 ? "matmul_b16" : "matmul";
    }
    uint32_t vflag = cm2 ? 8 : coop ? 13 : 10;

    /* Blocks: halve the batch count, then rows, columns and depth (in whole tiles) until every
     * window fits one binding. */
    uint64_t range = ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64;
    size_t ea = va_dtype_size(a->dtype), eb = va_dtype_size(b->dtype), ec = va_dtype_size(c->dtype);
    int64_t nbc = batch, mc = m, nc = n, kc = k > 0 ? k : 1;
    for (;;) {
        int fa = block_span(&A, A.bs ? nbc : 1, mc, kc) * ea <= range;
        int fb = block_span(&B, B.bs ? nbc : 1, kc, nc) * eb <= range;
        int fc = block_span(&C, nbc, mc, nc) * ec <= range;
        if (fa && fb && fc) break;
        if (nbc > 1) nbc = (nbc + 1) / 2;
        else if ((!fa || !fc) && mc > bm) mc = ((mc + 1) / 2 + bm - 1) / bm * bm;
        else if ((!fb || !fc) && nc > bn) nc = ((nc + 1) / 2 + bn - 1) / bn * bn;
        else if ((!fa || !fb) && kc > bk) kc = ((kc + 1) / 2 + bk - 1) / bk * bk;
        else return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a matmul block does not fit the device's binding range");
    }

    const va_kernel *kern[4] = {NULL, NULL, NULL, NULL};
    for (int64_t b0 = 0; b0 < batch; b0 += nbc) {
        int64_t nb = batch - b0 < nbc ? batch - b0 : nbc;
        for (int64_t i0 = 0; i0 < m; i0 += mc) {
            int64_t ic = m - i0 < mc ? m - i0 : mc;
            for (int64_t j0 = 0; j0 < n; j0 += nc) {
                int64_t jc = n - j0 < nc ? n - j0 : nc;
                for (int64_t p0 = 0; p0 < k || p0 == 0; p0 += kc) {
                    int64_t pc_ = k - p0 < kc ? k - p0 : kc;
                    if (pc_ < 0) pc_ = 0;
                    uint32_t ra, rb, rc;
                    va_binding bind[3];
                    bind[0] = block_binding(ctx, &A, A.bs ? b0 : 0, i0, p0, A.bs ? nb : 1, ic, pc_ > 0 ? pc_ : 1, VA_READ, &ra);
                    bind[1] = block_binding(ctx, &B, B.bs ? b0 : 0, p0, j0, B.bs ? nb : 1, pc_ > 0 ? pc_ : 1, jc, VA_READ, &rb);
                    int acc = accumulate || p0 > 0;
                    bind[2] = block_binding(ctx, &C, b0, i0, j0, nb, ic, jc, acc ? VA_READ_WRITE : VA_WRITE, &rc);
                    /* The vector width needs the block's own extents, so check them on sub-views. */
                    operand Ab = A, Bb = B;
                    Ab.rows = ic; Ab.cols = pc_;
                    Bb.rows = pc_; Bb.cols = jc;
                    int va = vectorizable(&Ab, ra, A.bs ? nb : 1, vec), vb = vectorizable(&Bb, rb, B.bs ? nb : 1, vec);
                    int idx = va | (vb << 1);
                    if (!kern[idx]) {
                        spec[vflag] = (uint32_t)va;
                        spec[vflag + 1] = (uint32_t)vb;
                        VA_TRY(va_kernel_get(ctx, name, spec, nspec, coop ? ctx->info.subgroup_size : 0, &kern[idx]));
                    }
                    uint32_t pc[13] = {(uint32_t)ic, (uint32_t)jc, (uint32_t)pc_, (uint32_t)A.ld, (uint32_t)B.ld,
                                       (uint32_t)C.ld, ra, rb, rc, (uint32_t)A.bs, (uint32_t)B.bs, (uint32_t)C.bs,
                                       (uint32_t)acc};
                    VA_TRY(va_stream_dispatch(s, kern[idx], bind, 3, pc, sizeof pc, va_ceil_div((uint64_t)jc, bn),
                                              va_ceil_div((uint64_t)ic, bm), (uint32_t)nb));
                    if (k == 0) break;
                }
            }
        }
    }
    return VA_SUCCESS;
}

/* Registry adapter. Inputs: a, b; output: out; iparams: accumulate (optional). */
static va_status op_matmul(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                           const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_in != 2 || n_out != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "matmul takes (a, b) -> out");
    return va_matmul(s, &in[0], &in[1], &out[0], n_i > 0 && ip[0] != 0);
}
VA_REGISTER_OP(matmul, op_matmul);

/* y = A·x: a (m, k) or (batch, m, k); x (batch or 1, k); y (batch, m), float32 x and y. */
va_status va_matvec(va_stream *s, const va_tensor *a, const va_tensor *x, const va_tensor *y) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    operand A;
    VA_TRY(describe(a, "a", &A));
    if (a->dtype != VA_F32 && a->dtype != VA_F16) return va_fail(VA_ERROR_INVALID_ARGUMENT, "a must be float32 or float16");
    VA_TRY(va_check_matrix(x, "x", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(y, "out", VA_F32, VA_F32));
    int64_t batch = y->shape[0], m = y->shape[1], k = x->shape[1];
    if (A.rows != m || A.cols != k || (A.batch != batch && A.batch != 1) || (x->shape[0] != batch && x->shape[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "matvec: shapes of a, x and out do not match");
    if (A.batch == 1) A.bs = 0;
    int64_t xbs = x->shape[0] > 1 ? x->strides[0] : 0, ybs = batch > 1 ? y->strides[0] : m;
    if (m == 0 || batch == 0) return VA_SUCCESS;
    /* Windows: a batch chunk of A, x and y; rows split where one matrix exceeds a binding. */
    uint64_t range = ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64;
    size_t ea = va_dtype_size(a->dtype);
    int64_t nbc = batch, mc = m;
    operand X = {x, 1, k, k, xbs, x->shape[0], 0}, Y = {y, 1, m, m, ybs, batch, 0};
    for (;;) {
        int fa = block_span(&A, A.bs ? nbc : 1, mc, k > 0 ? k : 1) * ea <= range;
        int fx = block_span(&X, xbs ? nbc : 1, 1, k > 0 ? k : 1) * 4 <= range;
        int fy = block_span(&Y, nbc, 1, mc) * 4 <= range;
        if (fa && fx && fy) break;
        if (nbc > 1) nbc = (nbc + 1) / 2;
        else if (mc > 64) mc = (mc + 1) / 2;
        else return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a matvec block does not fit the device's binding range");
    }
    const char *name = a->dtype == VA_F16 ? "matvec_f16" : "matvec";
    const uint32_t wg = 256;
    const va_kernel *kern[2] = {NULL, NULL};
    for (int64_t b0 = 0; b0 < batch; b0 += nbc) {
        int64_t nb = batch - b0 < nbc ? batch - b0 : nbc;
        for (int64_t i0 = 0; i0 < m; i0 += mc) {
            int64_t ic = m - i0 < mc ? m - i0 : mc;
            uint32_t ra, rx, ry;
            va_binding bind[3];
            bind[0] = block_binding(ctx, &A, A.bs ? b0 : 0, i0, 0, A.bs ? nb : 1, ic, k > 0 ? k : 1, VA_READ, &ra);
            bind[1] = block_binding(ctx, &X, xbs ? b0 : 0, 0, 0, xbs ? nb : 1, 1, k > 0 ? k : 1, VA_READ, &rx);
            bind[2] = block_binding(ctx, &Y, b0, 0, i0, nb, 1, ic, VA_WRITE, &ry);
            int vec = !A.colmajor && k % 4 == 0 && A.ld % 4 == 0 && ra % 4 == 0 && (A.bs % 4 == 0);
            if (!kern[vec]) {
                uint32_t spec[5] = {wg, 1, 1, (uint32_t)A.colmajor, (uint32_t)vec};
                VA_TRY(va_kernel_get(ctx, name, spec, 5, 0, &kern[vec]));
            }
            uint32_t pc[9] = {(uint32_t)ic, (uint32_t)k, (uint32_t)A.ld, ra, rx, ry, (uint32_t)A.bs, (uint32_t)xbs,
                              (uint32_t)ybs};
            /* Row-major: a subgroup per row, so wg / subgroup rows per workgroup. */
            uint32_t per = A.colmajor ? wg : wg / ctx->info.subgroup_size;
            VA_TRY(va_stream_dispatch(s, kern[vec], bind, 3, pc, sizeof pc, va_ceil_div((uint64_t)ic, per), 1,
                                      (uint32_t)nb));
        }
    }
    return VA_SUCCESS;
}

static va_status op_matvec(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                           const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)ip; (void)n_i; (void)fp; (void)n_f;
    if (n_in != 2 || n_out != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "matvec takes (a, x) -> out");
    return va_matvec(s, &in[0], &in[1], &out[0]);
}
VA_REGISTER_OP(matvec, op_matvec);

/* out[b] = in[b]ᵀ: in (rows, cols) or (batch, rows, cols) with its last axis contiguous, out
 * (batch, cols, rows) likewise; 32- or 16-bit elements. */
va_status va_transpose(va_stream *s, const va_tensor *in, const va_tensor *out) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    operand I, O;
    VA_TRY(describe(in, "a", &I));
    VA_TRY(describe(out, "out", &O));
    size_t es = va_dtype_size(in->dtype);
    if (va_dtype_size(out->dtype) != es || (es != 4 && es != 2))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "transpose takes 16- or 32-bit elements of one size");
    if ((I.colmajor && I.cols > 1) || (O.colmajor && O.cols > 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "transpose: the last axes must be contiguous");
    int64_t batch = O.batch, r = I.rows, c = I.cols;
    if (O.rows != c || O.cols != r || (I.batch != batch && I.batch != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "transpose: out must be a's shape with the last two axes swapped");
    if (I.batch == 1) I.bs = 0;
    if (r == 0 || c == 0 || batch == 0) return VA_SUCCESS;
    uint64_t range = ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64;
    int64_t nbc = batch, rc = r, cc = c;
    for (;;) {
        int fi = block_span(&I, I.bs ? nbc : 1, rc, cc) * es <= range;
        int fo = block_span(&O, nbc, cc, rc) * es <= range;
        if (fi && fo) break;
        if (nbc > 1) nbc = (nbc + 1) / 2;
        else if (rc > 32 && rc >= cc) rc = ((rc + 1) / 2 + 31) / 32 * 32;
        else if (cc > 32) cc = ((cc + 1) / 2 + 31) / 32 * 32;
        else return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a transpose block does not fit the device's binding range");
    }
    uint32_t spec[3] = {32, 8, 1};
    const va_kernel *kern;
    VA_TRY(va_kernel_get(ctx, es == 2 ? "transpose_e16" : "transpose", spec, 3, 0, &kern));
    for (int64_t b0 = 0; b0 < batch; b0 += nbc) {
        int64_t nb = batch - b0 < nbc ? batch - b0 : nbc;
        for (int64_t i0 = 0; i0 < r; i0 += rc) {
            int64_t ic = r - i0 < rc ? r - i0 : rc;
            for (int64_t j0 = 0; j0 < c; j0 += cc) {
                int64_t jc = c - j0 < cc ? c - j0 : cc;
                uint32_t ri, ro;
                va_binding bind[2];
                bind[0] = block_binding(ctx, &I, I.bs ? b0 : 0, i0, j0, I.bs ? nb : 1, ic, jc, VA_READ, &ri);
                bind[1] = block_binding(ctx, &O, b0, j0, i0, nb, jc, ic, VA_WRITE, &ro);
                uint32_t pc[8] = {(uint32_t)ic, (uint32_t)jc, (uint32_t)I.ld, (uint32_t)O.ld, ri, ro, (uint32_t)I.bs,
                                  (uint32_t)O.bs};
                VA_TRY(va_stream_dispatch(s, kern, bind, 2, pc, sizeof pc, va_ceil_div((uint64_t)jc, 32),
                                          va_ceil_div((uint64_t)ic, 32), (uint32_t)nb));
            }
        }
    }
    return VA_SUCCESS;
}

static va_status op_transpose(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)ip; (void)n_i; (void)fp; (void)n_f;
    if (n_in != 1 || n_out != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "transpose takes a -> out");
    return va_transpose(s, &in[0], &out[0]);
}
VA_REGISTER_OP(transpose, op_transpose);
