/* kmeans.c — k-means on the device. The fused assignment (kmeans_assign.comp: GEMM tiles whose
 * epilogue keeps the running argmin per row, then the winner's exact distance), which PQ encoding
 * and IVF list assignment reuse; a whole Lloyd step recorded as one piece of work (assignment,
 * counting sort by label, exact fixed-point sums, new centres, statistics) so a fit waits once per
 * iteration and reads back 16 bytes (20 with bounds); the same assignment with Hamerly's bounds
 * (kmeans_bounds.comp: one test pass over the rows writes a list of those that need every
 * centre, and the assignment reads only those), giving the same results to the bit; greedy
 * k-means++ seeding with every step on the device and nothing read back between steps; and the
 * row gather of initial centres. X larger than one binding window is taken in windows of rows;
 * everything else is O(k·d) or O(rows) scratch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"

#define WG 256u
#define ROW_ALIGN 256     /* windows of X start at multiples of this many rows (a k-means++ block) */
#define CHUNK_S 256u      /* rows per work chunk of the update's reduction */
#define SORT_ITEMS 8u     /* rows per thread of the counting sort */
#define SORT_LOCAL_K 2048 /* labels the counting sort keeps in shared memory (kmeans_sort.comp's LK) */
#define SPLIT_TARGET 512  /* assignment workgroups wanted before centres are split across several */

/* ---- argument checks and binding windows ---------------------------------------------------- */

static int64_t ld_of(const va_tensor *x) { return x->shape[0] > 1 ? x->strides[0] : (x->shape[1] > 0 ? x->shape[1] : 1); }

static va_status check_vec(const va_tensor *t, const char *name, va_dtype a, va_dtype b, int64_t n) {
    if (!t || !t->buf) return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: missing tensor", name);
    if (t->dtype != a && t->dtype != b) return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s has an unsupported dtype", name);
    if (t->ndim != 1 || t->shape[0] != n)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s must be a vector of %lld elements", name, (long long)n);
    if (n > 1 && t->strides[0] != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s must be contiguous", name);
    if (t->offset + va_tensor_span(t) > va_buffer_size(t->buf))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s reaches past the end of its buffer", name);
    return VA_SUCCESS;
}


/* Elements [e0, e0 + cnt) of a contiguous tensor as one window; the remainder goes to *rem. */
static va_binding vec_window(va_context *ctx, const va_tensor *t, int64_t e0, int64_t cnt, va_access acc,
                             uint32_t *rem) {
    size_t es = va_dtype_size(t->dtype);
    uint64_t at = va_align_binding(ctx, t->offset + (uint64_t)e0 * es, (uint32_t)es, rem);
    uint64_t size = ((uint64_t)(cnt > 0 ? cnt : 1) + *rem) * es;
    va_binding b = {t->buf, at, size, acc};
    if (b.offset + b.size > va_buffer_size(t->buf)) b.size = va_buffer_size(t->buf) - b.offset;
    return b;
}

static va_binding whole(va_buffer *b, va_access acc) { return (va_binding){b, 0, VK_WHOLE_SIZE, acc}; }

static uint64_t range_bytes(const va_context *ctx) {
    return ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64;
}

/* Rows of X per window: what one binding of X (and of `per_row` bytes of other per-row arrays)
 * holds, at most max_rows when > 0, a multiple of ROW_ALIGN unless it covers all n rows. */
static va_status rows_per_window(const va_context *ctx, const va_tensor *x, int64_t per_row, int64_t max_rows,
                                 int64_t *out) {
    int64_t n = x->shape[0], d = x->shape[1];
    int64_t r = va_rows_per_binding(ctx, ld_of(x), d > 0 ? d : 1, va_dtype_size(x->dtype));
    if (per_row > 0) {
        int64_t r2 = (int64_t)(range_bytes(ctx) / (uint64_t)per_row);
        if (r2 < r) r = r2;
    }
    if (max_rows > 0 && max_rows < r) r = max_rows;
    if (r >= n) { *out = n > 0 ? n : 1; return VA_SUCCESS; }
    r = r / ROW_ALIGN * ROW_ALIGN;
    if (r <= 0)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "%d rows of %lld features exceed the device's binding range",
                       ROW_ALIGN, (long long)d);
    *out = r;
    return VA_SUCCESS;
}

static va_status check_x(const va_tensor *x) {
    VA_TRY(va_check_matrix(x, "x", VA_F32, VA_F16));
    if (x->strides[0] < 0) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x has a negative row stride");
    if (x->shape[0] >= (int64_t)0xFFFFFFFF || x->shape[1] >= (int64_t)0x7FFFFFFF)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x: 2^32 rows or 2^31 features and more are not supported");
    return VA_SUCCESS;
}

/* x checked, as the kernels address it: rows ld_of(x) elements apart. */
static va_status x_view(const va_tensor *x, va_tensor *xv) {
    VA_TRY(check_x(x));
    *xv = *x;
    xv->strides[0] = ld_of(x);
    return VA_SUCCESS;
}

static va_status check_centres(const va_tensor *c, const char *name, int64_t d) {
    VA_TRY(va_check_matrix(c, name, VA_F32, VA_F32));
    if (c->shape[1] != d)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s has %lld features, x has %lld", name, (long long)c->shape[1],
                       (long long)d);
    if (c->shape[0] < 1 || c->shape[0] >= (int64_t)0x7FFFFFFF)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s: between 1 and 2^31 - 1 centres expected", name);
    return VA_SUCCESS;
}

static int overlap(const va_tensor *a, const va_tensor *b) {
    if (!a || !b || a->buf != b->buf) return 0;
    uint64_t a0 = a->offset, a1 = a0 + va_tensor_span(a), b0 = b->offset, b1 = b0 + va_tensor_span(b);
    return a0 < b1 && b0 < a1;
}

/* ---- assignment --------------------------------------------------------------------------------- */

typedef struct tile_cfg { uint32_t bm, bn, bk, tm, tn; } tile_cfg;

/* Shared memory of a tile, counting what the bounds variants add (the row map, second scores and
 * their merge buffer, the norms' reduction), so that a tile chosen for one serves both. */
static uint64_t tile_shared(tile_cfg c) {
    uint32_t ct = c.bn / c.tn, wg = (c.bm / c.tm) * ct;
    uint64_t half_ct = ct / 2 ? ct / 2 : 1;
    return 2ull * c.bk * (c.bm + c.bn) * 4 + (uint64_t)c.bm * half_ct * 8 + c.bm * 4ull + wg * 4ull +
           (uint64_t)c.bm * half_ct * 4 + c.bm * 8ull + wg * 4ull;
}

static int tile_ok(const va_context *ctx, tile_cfg c) {
    if (!c.tm || !c.tn || c.tm % 4 || c.tn % 4 || c.bk % 4 || c.bm % c.tm || c.bn % c.tn) return 0;
    uint32_t wg = (c.bm / c.tm) * (c.bn / c.tn);
    uint32_t ct = c.bn / c.tn;
    /* G = wg / bm threads per row sum the exact distance: 1, 2 or 4 (kmeans_exact.glsl). */
    return wg <= ctx->info.max_workgroup_invocations && wg >= c.bm && wg % c.bm == 0 &&
           (wg / c.bm == 1 || wg / c.bm == 2 || wg / c.bm == 4) && (ct & (ct - 1)) == 0 &&
           tile_shared(c) <= ctx->info.shared_memory_per_workgroup;
}

/* 128x128 tiles with 8x8 scores per thread (matmul's fp32 tile) where there are many centres
 * (128x64 with 8x4 for float16 X); 64x64 with 4x4 for few centres or few rows; 128x16 with 4x4
 * (128 threads) for at most 16 centres, which would leave most of a wider tile padding.
 * VACCEL_KMEANS_TILE="BM,BN,BK,TM,TN" overrides. */
static tile_cfg choose_tiles(const va_context *ctx, int64_t n, int64_t k, int half) {
    tile_cfg big = {128, 128, 8, 8, 8}, small = {64, 64, 16, 4, 4}, thin = {128, 16, 16, 4, 4};
    /* As matmul measured: with float16 loads NVIDIA's compiler spills the 8x8 tile; 8x4 it keeps. */
    if (half) big.bn = 64, big.tn = 4;
    tile_cfg c = (k > 64 && n >= 128 * 64 && tile_ok(ctx, big)) ? big : (k <= 16 && tile_ok(ctx, thin)) ? thin : small;
    const char *env = getenv("VACCEL_KMEANS_TILE");
    tile_cfg e;
    if (env && sscanf(env, "%u,%u,%u,%u,%u", &e.bm, &e.bn, &e.bk, &e.tm, &e.tn) == 5 && tile_ok(ctx, e)) c = e;
    return c;
}

static uint32_t tile_threads(tile_cfg c) { return (c.bm / c.tm) * (c.bn / c.tn); }

/* Threads per row of the exact distance of the winner (kmeans_assign.comp's exact_rows; the
 * finish pass runs with as many threads as the fused kernel): the bounds pass must use the same. */
static uint32_t exact_threads(tile_cfg c) { return tile_threads(c) / c.bm; }

/* The centres as the assignment reads them: Cᵀ padded to kp columns with the squared norms as its
 * last row (one prep dispatch), and a binding of the centres themselves. */
typedef struct centres_t {
    int64_t k, kp, ldc;
    va_buffer *ct;
    va_binding cb;
    uint32_t c_rem;
} centres_t;

static va_status prep_centres(va_stream *s, const va_tensor *x, const va_tensor *centres, const va_tensor *cnorms,
                              centres_t *o) {
    va_context *ctx = va_stream_context(s);
    int64_t d = x->shape[1], k = centres->shape[0];
    o->k = k;
    o->kp = (k + 3) / 4 * 4;
    uint64_t ct_bytes = (uint64_t)(d + 1) * (uint64_t)o->kp * 4;
    if (ct_bytes > range_bytes(ctx))
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "%lld centres of %lld features exceed the binding range",
                       (long long)k, (long long)d);
    o->ldc = k > 1 ? centres->strides[0] : d;
    va_tensor cv = *centres;
    cv.strides[0] = o->ldc;
    o->cb = va_rows_binding(ctx, &cv, 0, k, d > 0 ? d : 1, VA_READ, &o->c_rem);
    VA_TRY(va_stream_scratch(s, ct_bytes, &o->ct));
    uint32_t spec[13] = {WG, 1, 1, 128, 128, 8, 8, 8, 0, 1, 0, 1, cnorms != NULL};
    const va_kernel *prep;
    VA_TRY(va_kernel_get(ctx, "kmeans_assign_prep", spec, 13, 0, &prep));
    uint32_t cn_rem = 0;
    va_binding cnb = cnorms ? vec_window(ctx, cnorms, 0, k, VA_READ, &cn_rem) : o->cb;
    uint32_t rx0;
    va_binding xb0 = va_rows_binding(ctx, x, 0, 1, d > 0 ? d : 1, VA_READ, &rx0);
    va_binding b[8] = {xb0, whole(o->ct, VA_WRITE), cnb, o->cb, o->cb, o->cb, o->cb, o->cb};
    uint32_t pc[15] = {0, (uint32_t)d, (uint32_t)k, 0, 0, (uint32_t)o->kp, 0, 0, 0, 0, 0, (uint32_t)o->ldc,
                       o->c_rem, 0, cn_rem};
    return va_stream_dispatch(s, prep, b, 8, pc, sizeof pc, va_ceil_div((uint64_t)o->kp, WG), 1, 1);
}

/* What the bounds variants of the assignment take (see kmeans_bounds.comp): the state words CS,
 * the list of rows per window (NULL: every row) with its counters at CS[cnt0 + window], and where
 * the per-row lower bounds go. */
typedef struct bounds_io {
    va_buffer *cs;
    uint32_t cnt0;
    va_buffer *list;
    const va_tensor *lower;
    float slack;
} bounds_io;

/* Relative allowance of a GEMM-form score ‖c‖² − 2 x·c for its float32 rounding, over
 * (‖x‖² + ‖c‖²): four times the bound (2d + 6) 2^-24 of the dot product's, the norm's and the last
 * rounding's errors together (as knn.c allows its bounds). */
static float score_slack(int64_t d) { return (float)((8.0 * (double)d + 64.0) / 16777216.0); }

/* The fused assignment of x's rows (windows of `rows`) to the prepared centres: labels, dists and,
 * with bd, the bounds variant (rows through bd->list, lower bounds out). */
static va_status assign_rows(va_stream *s, const va_tensor *x, const centres_t *cen, const va_tensor *shift,
                             const va_tensor *labels, const va_tensor *dists, int64_t rows, const bounds_io *bd) {
    va_context *ctx = va_stream_context(s);
    int64_t n = x->shape[0], d = x->shape[1], k = cen->k;
    uint32_t mu_rem = 0;
    va_binding mub = shift ? vec_window(ctx, shift, 0, d, VA_READ, &mu_rem) : cen->cb;
    tile_cfg tc = choose_tiles(ctx, n, k, x->dtype == VA_F16);
    uint32_t wg = tile_threads(tc);
    uint32_t ntiles = va_ceil_div((uint64_t)cen->kp, tc.bn);
    uint32_t blocks = va_ceil_div((uint64_t)rows, tc.bm);
    uint32_t nsplit = 1;
    if (blocks < SPLIT_TARGET && ntiles > 1) {
        nsplit = va_ceil_div(SPLIT_TARGET, blocks);
        if (nsplit > ntiles) nsplit = ntiles;
    }
    const char *env = getenv("VACCEL_KMEANS_SPLIT");
    if (env && atoi(env) > 0) nsplit = (uint32_t)atoi(env) < ntiles ? (uint32_t)atoi(env) : ntiles;
    uint32_t tps = va_ceil_div(ntiles, nsplit);
    nsplit = va_ceil_div(ntiles, tps);
    va_buffer *pt = NULL;
    if (nsplit > 1) VA_TRY(va_stream_scratch(s, (uint64_t)rows * nsplit * (bd ? 16 : 8), &pt));

    int h = x->dtype == VA_F16;
    const char *name = bd ? (h ? "kmeans_assign_bounds_f16" : "kmeans_assign_bounds")
                          : (h ? "kmeans_assign_f16" : "kmeans_assign");
    const char *fname = bd ? (h ? "kmeans_assign_finish_bounds_f16" : "kmeans_assign_finish_bounds")
                           : (h ? "kmeans_assign_finish_f16" : "kmeans_assign_finish");
    int has_list = bd && bd->list;
    uint32_t sp[14] = {wg, 1, 1, tc.bm, tc.bn, tc.bk, tc.tm, tc.tn, 0, nsplit == 1, shift != NULL, dists != NULL, 0,
                       (uint32_t)has_list};
    uint32_t nsp = bd ? 14 : 13;
    const va_kernel *kern[2] = {NULL, NULL}, *fin = NULL;
    int64_t ldx = ld_of(x);
    union { float f; uint32_t u; } slack = {bd ? bd->slack : 0.0f};
    for (int64_t r0 = 0, w = 0; r0 < n; r0 += rows, w++) {
        int64_t rc = n - r0 < rows ? n - r0 : rows;
        uint32_t rx, rl, rd = 0, rli = 0, rlb = 0;
        va_binding b[10];
        b[0] = va_rows_binding(ctx, x, r0, rc, d > 0 ? d : 1, VA_READ, &rx);
        b[1] = whole(cen->ct, VA_READ);
        b[2] = bd ? whole(bd->cs, VA_READ) : cen->cb;
        b[3] = mub;
        b[4] = vec_window(ctx, labels, r0, rc, VA_WRITE, &rl);
        b[5] = dists ? vec_window(ctx, dists, r0, rc, VA_WRITE, &rd) : cen->cb;
        b[6] = pt ? whole(pt, VA_WRITE) : cen->cb;
        b[7] = cen->cb;
        if (bd) {
            va_tensor lt = {bd->list, 0, VA_U32, 1, {n}, {1}};
            b[8] = has_list ? vec_window(ctx, &lt, r0, rc, VA_READ, &rli) : cen->cb;
            b[9] = vec_window(ctx, bd->lower, r0, rc, VA_WRITE, &rlb);
        }
        int vec = d % 4 == 0 && ldx % 4 == 0 && rx % 4 == 0;
        if (!kern[vec]) {
            sp[8] = (uint32_t)vec;
            VA_TRY(va_kernel_get(ctx, name, sp, nsp, 0, &kern[vec]));
        }
        uint32_t pc[19] = {(uint32_t)rc, (uint32_t)d, (uint32_t)k, (uint32_t)ldx, rx, (uint32_t)cen->kp, tps, ntiles,
                           mu_rem, rl, rd, (uint32_t)cen->ldc, cen->c_rem, nsplit, 0,
                           rli, rlb, bd ? bd->cnt0 + (uint32_t)w : 0, slack.u};
        uint32_t gy = va_ceil_div((uint64_t)rc, tc.bm);
        uint32_t nb = bd ? 10 : 8;
        VA_TRY(va_stream_dispatch(s, kern[vec], b, nb, pc, bd ? sizeof pc : 15 * 4, nsplit, gy, 1));
        if (nsplit > 1) {
            if (!fin) {
                uint32_t fs[14] = {wg, 1, 1, tc.bm, tc.bn, tc.bk, tc.tm, tc.tn, 0, 1, shift != NULL, dists != NULL, 0,
                                   (uint32_t)has_list};
                VA_TRY(va_kernel_get(ctx, fname, fs, nsp, 0, &fin));
            }
            b[6] = whole(pt, VA_READ);
            b[1] = cen->cb;
            VA_TRY(va_stream_dispatch(s, fin, b, nb, pc, bd ? sizeof pc : 15 * 4, 1, gy, 1));
        }
    }
    return VA_SUCCESS;
}

/* ---- the assignment on tensor cores (kmeans_coop.comp) ----------------------------------------
 * Float16 copies of the rows (-2 (x − shift), knn_coop_prep.comp, a block of rows at a time) and of
 * the centres on cooperative matrices, with a rounding bound from the measured residuals of the
 * copies (kmeans_coop.comp): rows whose nearest centre the bound proves get it, and their exact
 * distance (the `dist` variant) summed as the float32 kernel sums it; the rest (near ties, rows
 * that overflow float16, non-finite data) are listed and assigned by the float32 kernel (the
 * bounds variant reading the list; the lower bounds it also writes go to scratch). Labels and
 * distances are therefore those of the float32 assignment but where two centres are within its
 * own rounding of each other, where this path takes the exactly nearest one. */

typedef struct kcoop_plan { uint32_t sgm, fm, fn, mm, nn, kk, csteps, nchunks, dpad, sg; } kcoop_plan;

#define KCOOP_BLOCK (1 << 18)   /* rows per float16 block: 64 MiB of copy at 128 features */

static int kcoop_plan_for(const va_context *ctx, const va_tensor *x, int64_t k, kcoop_plan *p) {
    int64_t d = x->shape[1];
    if (!va_coopmat_enabled(ctx) || !ctx->info.subgroup_size_control || !va_kernel_available("kmeans_coop")) return 0;
    p->mm = ctx->info.coopmat_m;
    p->nn = ctx->info.coopmat_n;
    p->kk = ctx->info.coopmat_k;
    p->sg = ctx->info.subgroup_size;
    if (!p->mm || p->mm % 8 || p->nn % 8 || p->kk % 8 || !p->sg || d < 1 || k < 1 || k >= (1 << 24)) return 0;
    /* 128 rows by 32 centres: the fastest of seven shapes on an H100 (1M x 1024 x 128). */
    p->sgm = 4; p->fm = 2; p->fn = 2;
    const char *env = getenv("VACCEL_KMEANS_COOP_TILE");   /* "SGM,FM,FN", for tuning */
    uint32_t e[3];
    if (env && sscanf(env, "%u,%u,%u", &e[0], &e[1], &e[2]) == 3 && e[0] && e[1] && e[2] && e[0] <= 16 &&
        e[1] * e[2] <= 16) {
        p->sgm = e[0]; p->fm = e[1]; p->fn = e[2];
    }
    uint64_t d16 = ((uint64_t)d + p->kk - 1) / p->kk * p->kk;
    p->csteps = d16 <= 8ull * p->kk ? (uint32_t)(d16 / p->kk) : 8;
    p->nchunks = (uint32_t)((d16 + (uint64_t)p->csteps * p->kk - 1) / ((uint64_t)p->csteps * p->kk));
    p->dpad = p->csteps * p->kk * p->nchunks;
    uint64_t bm = (uint64_t)p->sgm * p->fm * p->mm, bn = (uint64_t)p->fn * p->nn;
    uint64_t rq = (uint64_t)p->csteps * p->kk / 8, stage = bn * (rq + 1) + bn / 4, patch = p->mm * p->nn / 4;
    uint64_t sh = 2 * stage > p->sgm * 3 * patch ? 2 * stage : p->sgm * 3 * patch;
    uint64_t shared = sh * 16 + bm * 12 + 4;   /* as kmeans_coop.comp */
    return bn % 4 == 0 && p->nn % 4 == 0 && shared <= ctx->info.shared_memory_per_workgroup &&
           (uint64_t)p->sgm * p->sg <= ctx->info.max_workgroup_invocations &&
           (uint64_t)k * p->dpad * 2 <= range_bytes(ctx) && (uint64_t)KCOOP_BLOCK * p->dpad * 2 <= range_bytes(ctx);
}

static va_status coop_assign(va_stream *s, const va_tensor *x, const va_tensor *centres, const centres_t *cen,
                             const va_tensor *shift, const va_tensor *labels, const va_tensor *dists, int64_t rows,
                             const kcoop_plan *p) {
    va_context *ctx = va_stream_context(s);
    int64_t n = x->shape[0], d = x->shape[1], k = cen->k, ldx = ld_of(x);
    int64_t nwin = (n + rows - 1) / rows;
    uint32_t bm = p->sgm * p->fm * p->mm;
    int64_t blk = rows < KCOOP_BLOCK ? rows : KCOOP_BLOCK;
    int64_t bpad = (blk + bm - 1) / bm * bm;
    va_buffer *chb, *cnb, *crb, *qh, *qn, *qr, *cs, *list, *lower;
    VA_TRY(va_stream_scratch(s, (uint64_t)k * p->dpad * 2, &chb));
    VA_TRY(va_stream_scratch(s, (uint64_t)k * 4, &cnb));
    VA_TRY(va_stream_scratch(s, (uint64_t)k * 4, &crb));
    VA_TRY(va_stream_scratch(s, (uint64_t)bpad * p->dpad * 2, &qh));
    VA_TRY(va_stream_scratch(s, (uint64_t)bpad * 4, &qn));
    VA_TRY(va_stream_scratch(s, (uint64_t)bpad * 4, &qr));
    uint64_t cs_words = 8 + (uint64_t)nwin;
    VA_TRY(va_stream_scratch(s, cs_words * 4, &cs));
    VA_TRY(va_stream_scratch(s, (uint64_t)n * 4, &list));
    VA_TRY(va_stream_scratch(s, (uint64_t)n * 4, &lower));
    uint32_t *zeros = calloc(cs_words, 4);
    if (!zeros) return va_fail(VA_ERROR_OUT_OF_HOST_MEMORY, "k-means: out of host memory");
    va_status st = va_stream_upload(s, cs, 0, zeros, cs_words * 4);
    free(zeros);
    VA_TRY(st);
    va_tensor cv = *centres;
    cv.strides[0] = cen->ldc;
    VA_TRY(va_coop_prep(s, &cv, k, k, p->dpad, 0, NULL, 0, NULL, chb, cnb, crb, 1.0f));

    /* The bound's constants (kmeans_coop.comp). rho1 and rho2 may be any positive numbers; the
     * bound is tightest where they are |ra| / |c| and |rc| / |a|, which for float16 rounding to
     * nearest of rows and centres of similar norms are about 4e-4 and 1e-4 (measured); rows that
     * are float16 already and not shifted are copied exactly (ra = 0): rho1 then goes to nothing. */
    int q_exact = x->dtype == VA_F16 && !shift;
    union { float f; uint32_t u; } rho1 = {q_exact ? 1e-12f : 4e-4f}, rho2 = {1e-4f},
                                   c1 = {(float)((2.0 * (double)d + 32.0) / 4194304.0)},
                                   rmul = {(float)(1.0 + ((double)d + 2.0) / 8388608.0)};
    /* VACCEL_KMEANS_COOP_PROBE=1 (profiling only, the results are wrong): the kernel keeping only
     * the smallest score per position, to time the GEMM alone. */
    const char *probe = getenv("VACCEL_KMEANS_COOP_PROBE");
    uint32_t spec[13] = {p->sgm * p->sg, 1, 1, p->sgm, p->fm, p->fn, p->mm, p->nn, p->kk, p->csteps,
                         p->nchunks == 1, p->sg, probe && strcmp(probe, "1") == 0};
    const va_kernel *kern, *kdist = NULL;
    VA_TRY(va_kernel_get(ctx, "kmeans_coop", spec, 13, p->sg, &kern));
    if (dists) {
        uint32_t ds[4] = {256, 1, 1, shift != NULL};
        VA_TRY(va_kernel_get(ctx, x->dtype == VA_F16 ? "kmeans_coop_dist_f16" : "kmeans_coop_dist", ds, 4, 0, &kdist));
    }
    uint32_t mu_rem = 0;
    va_binding mub = shift ? vec_window(ctx, shift, 0, d, VA_READ, &mu_rem) : cen->cb;
    size_t es = va_dtype_size(x->dtype);
    for (int64_t r0 = 0, w = 0; r0 < n; r0 += rows, w++) {
        int64_t rc = n - r0 < rows ? n - r0 : rows;
        uint32_t rl, rli;
        va_tensor lt = {list, 0, VA_U32, 1, {n}, {1}};
        va_binding b[9];
        b[4] = vec_window(ctx, labels, r0, rc, VA_WRITE, &rl);
        b[5] = vec_window(ctx, &lt, r0, rc, VA_WRITE, &rli);
        b[6] = whole(cs, VA_READ_WRITE);
        for (int64_t b0 = 0; b0 < rc; b0 += blk) {
            int64_t bn = rc - b0 < blk ? rc - b0 : blk, bp = (bn + bm - 1) / bm * bm;
            va_tensor xb = *x;
            xb.offset += (uint64_t)(r0 + b0) * (uint64_t)ldx * es;
            xb.shape[0] = bn;
            VA_TRY(va_coop_prep(s, &xb, bp, bn, p->dpad, 0, NULL, 0, shift, qh, qn, qr, -2.0f));
            b[0] = (va_binding){qh, 0, (uint64_t)bp * p->dpad * 2, VA_READ};
            b[1] = (va_binding){chb, 0, (uint64_t)k * p->dpad * 2, VA_READ};
            b[2] = (va_binding){qn, 0, (uint64_t)bn * 4, VA_READ};
            b[3] = (va_binding){cnb, 0, (uint64_t)k * 4, VA_READ};
            b[7] = (va_binding){qr, 0, (uint64_t)bn * 4, VA_READ};
            b[8] = (va_binding){crb, 0, (uint64_t)k * 4, VA_READ};
            struct {
                uint32_t rows, row_base, k, nchunks, ldq, l_off, list_off, cnt_idx, rho1, rho2, c1, rmul;
            } pc = {(uint32_t)bn, (uint32_t)b0, (uint32_t)k, p->nchunks, p->dpad / 8, rl, rli, 8 + (uint32_t)w,
                    rho1.u, rho2.u, c1.u, rmul.u};
            VA_TRY(va_stream_dispatch(s, kern, b, 9, &pc, sizeof pc, (uint32_t)(bp / bm), 1, 1));
        }
        if (kdist) {   /* the settled rows' exact distances */
            uint32_t rx, rl2, rd;
            va_binding db[5] = {va_rows_binding(ctx, x, r0, rc, d, VA_READ, &rx), mub, cen->cb,
                                vec_window(ctx, labels, r0, rc, VA_READ, &rl2),
                                vec_window(ctx, dists, r0, rc, VA_WRITE, &rd)};
            uint32_t dpc[9] = {(uint32_t)rc, (uint32_t)d, (uint32_t)ldx, rx, mu_rem, (uint32_t)cen->ldc, cen->c_rem,
                               rl2, rd};
            uint64_t groups = va_ceil_div((uint64_t)rc, 8);
            uint32_t gx = groups < 65535 ? (uint32_t)groups : 65535;
            VA_TRY(va_stream_dispatch(s, kdist, db, 5, dpc, sizeof dpc, gx, (uint32_t)va_ceil_div(groups, gx), 1));
        }
    }
    /* The listed rows on the float32 kernel (its lower bounds go to scratch). */
    va_tensor lo = {lower, 0, VA_F32, 1, {n}, {1}};
    bounds_io bd = {cs, 8, list, &lo, 0.0f};
    return assign_rows(s, x, cen, shift, labels, dists, rows, &bd);
}

static va_status assign_run(va_stream *s, const va_tensor *x, const va_tensor *centres, const va_tensor *cnorms,
                            const va_tensor *shift, const va_tensor *labels, const va_tensor *dists, int64_t max_rows,
                            int coop) {
    va_context *ctx = va_stream_context(s);
    va_tensor xv;
    VA_TRY(x_view(x, &xv));
    x = &xv;
    int64_t n = x->shape[0], d = x->shape[1];
    VA_TRY(check_centres(centres, "centres", d));
    int64_t k = centres->shape[0];
    if (cnorms) VA_TRY(check_vec(cnorms, "centre norms", VA_F32, VA_F32, k));
    if (shift) VA_TRY(check_vec(shift, "shift", VA_F32, VA_F32, d));
    VA_TRY(check_vec(labels, "labels", VA_U32, VA_I32, n));
    if (dists) VA_TRY(check_vec(dists, "dists", VA_F32, VA_F32, n));
    if (n == 0) return VA_SUCCESS;
    if (x->dtype == VA_F16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");
    centres_t cen;
    VA_TRY(prep_centres(s, x, centres, cnorms, &cen));
    int64_t rows;
    VA_TRY(rows_per_window(ctx, x, 4, max_rows, &rows));
    kcoop_plan plan;
    if (coop && !cnorms && kcoop_plan_for(ctx, x, k, &plan))
        return coop_assign(s, x, centres, &cen, shift, labels, dists, rows, &plan);
    return assign_rows(s, x, &cen, shift, labels, dists, rows, NULL);
}

va_status va_kmeans_assign(va_stream *s, const va_tensor *x, const va_tensor *centres, const va_tensor *cnorms,
                           const va_tensor *shift, const va_tensor *labels, const va_tensor *dists) {
    va_clear_error();
    return assign_run(s, x, centres, cnorms, shift, labels, dists, 0, 0);
}

/* ---- assignment with Hamerly's bounds ---------------------------------------------------------- */

/* labels_out/dists_out/lower = the assignment of x to `centres`, equal to assign_run's, computing
 * only the rows whose bounds (kmeans_bounds.comp) cannot prove their centre stays the nearest.
 * centres_prev/labels_prev: the centres and labels of the previous assignment whose lower bounds
 * `lower` holds; both NULL: a full assignment that starts the bounds. *cs_out: the state words
 * (CS[0]: rows assigned in full). Rows per window of x: rows. */
static va_status bounded_assign(va_stream *s, const va_tensor *x, const va_tensor *shift, const va_tensor *centres,
                                const va_tensor *centres_prev, const va_tensor *labels_prev, const va_tensor *lower,
                                const va_tensor *labels_out, const va_tensor *dists_out, int64_t rows,
                                va_buffer **cs_out) {
    va_context *ctx = va_stream_context(s);
    int64_t n = x->shape[0], d = x->shape[1], k = centres->shape[0];
    int has_prev = labels_prev != NULL;
    if (x->dtype == VA_F16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");
    centres_t cen;
    VA_TRY(prep_centres(s, x, centres, NULL, &cen));
    int64_t nwin = (n + rows - 1) / rows;
    uint64_t hdr = ((uint64_t)nwin + 8 + 3) / 4 * 4;
    uint64_t cs_words = hdr + 5 * (uint64_t)k;
    if (cs_words * 4 > range_bytes(ctx))
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "k-means bounds of %lld centres exceed the binding range",
                       (long long)k);
    va_buffer *cs, *list = NULL;
    VA_TRY(va_stream_scratch(s, cs_words * 4, &cs));
    if (has_prev) VA_TRY(va_stream_scratch(s, (uint64_t)n * 4, &list));
    *cs_out = cs;

    tile_cfg tc = choose_tiles(ctx, n, k, x->dtype == VA_F16);
    uint32_t G = exact_threads(tc), R = WG / G;
    const va_kernel *kb[3];
    for (uint32_t st = 0; st < 3; st++) {
        uint32_t sp[7] = {st == 2 ? R * G : WG, 1, 1, st, G, shift != NULL, has_prev};
        VA_TRY(va_kernel_get(ctx, st == 2 && x->dtype == VA_F16 ? "kmeans_bounds_f16" : "kmeans_bounds", sp, 7, 0,
                             &kb[st]));
    }
    union { float f; uint32_t u; } slack = {score_slack(d)};
    struct {
        uint32_t n, d, k, ldx, x_off, mu_off, ldc, c_off, ldcp, cp_off, lo_off, l_off, ds_off, lb_off, list_off,
            cnt_idx, hdr, nclear, listed0, slack, use_s;
    } pc = {0, (uint32_t)d, (uint32_t)k, (uint32_t)ld_of(x), 0, 0, (uint32_t)cen.ldc, cen.c_rem, 0, 0, 0, 0, 0, 0, 0,
            0, (uint32_t)hdr, (uint32_t)nwin, has_prev ? 0 : (uint32_t)n, slack.u, 0};
    uint32_t mu_rem = 0;
    va_binding mub = shift ? vec_window(ctx, shift, 0, d, VA_READ, &mu_rem) : cen.cb;
    pc.mu_off = mu_rem;
    va_binding cpb = cen.cb;
    if (centres_prev) {
        int64_t ldcp = k > 1 ? centres_prev->strides[0] : d;
        va_tensor cpv = *centres_prev;
        cpv.strides[0] = ldcp;
        cpb = va_rows_binding(ctx, &cpv, 0, k, d > 0 ? d : 1, VA_READ, &pc.cp_off);
        pc.ldcp = (uint32_t)ldcp;
    }
    uint32_t rx0;
    va_binding xb0 = va_rows_binding(ctx, x, 0, 1, d > 0 ? d : 1, VA_READ, &rx0);
    {
        va_binding b[10] = {xb0, mub, cen.cb, cpb, cen.cb, cen.cb, cen.cb, cen.cb, cen.cb, whole(cs, VA_WRITE)};
        VA_TRY(va_stream_dispatch(s, kb[0], b, 10, &pc, sizeof pc, va_ceil_div((uint64_t)k, WG), 1, 1));
        b[9] = whole(cs, VA_READ_WRITE);
        VA_TRY(va_stream_dispatch(s, kb[1], b, 10, &pc, sizeof pc, 1, 1, 1));
    }
    bounds_io bd = {cs, 8, NULL, lower, slack.f};
    if (!has_prev) return assign_rows(s, x, &cen, shift, labels_out, dists_out, rows, &bd);

    /* s(c): the centres assigned to themselves, for each its lower bound to every other centre; a
     * k x k GEMM, so only where it costs little beside the rows' (k <= n / 8). */
    pc.use_s = k > 1 && (uint64_t)k * 8 <= (uint64_t)n;
    if (pc.use_s) {
        va_tensor cx = *centres;
        cx.strides[0] = cen.ldc;
        va_tensor lab_cc = {cs, (hdr + 2 * (uint64_t)k) * 4, VA_U32, 1, {k}, {1}};
        va_tensor low_cc = {cs, (hdr + 3 * (uint64_t)k) * 4, VA_F32, 1, {k}, {1}};
        va_tensor dst_cc = {cs, (hdr + 4 * (uint64_t)k) * 4, VA_F32, 1, {k}, {1}};
        bounds_io bc = {cs, 8, NULL, &low_cc, slack.f};
        VA_TRY(assign_rows(s, &cx, &cen, NULL, &lab_cc, &dst_cc, k, &bc));
    }
    /* The test of every row, window by window; then the assignment of the rows listed. */
    for (int64_t r0 = 0, w = 0; r0 < n; r0 += rows, w++) {
        int64_t rc = n - r0 < rows ? n - r0 : rows;
        uint32_t rx, rlo, rl, rd, rlb, rli;
        va_tensor lt = {list, 0, VA_U32, 1, {n}, {1}};
        va_binding b[10] = {va_rows_binding(ctx, x, r0, rc, d > 0 ? d : 1, VA_READ, &rx), mub, cen.cb, cpb,
                            vec_window(ctx, labels_prev, r0, rc, VA_READ, &rlo),
                            vec_window(ctx, labels_out, r0, rc, VA_WRITE, &rl),
                            vec_window(ctx, dists_out, r0, rc, VA_WRITE, &rd),
                            vec_window(ctx, lower, r0, rc, VA_READ_WRITE, &rlb),
                            vec_window(ctx, &lt, r0, rc, VA_WRITE, &rli), whole(cs, VA_READ_WRITE)};
        pc.n = (uint32_t)rc;
        pc.x_off = rx;
        pc.lo_off = rlo;
        pc.l_off = rl;
        pc.ds_off = rd;
        pc.lb_off = rlb;
        pc.list_off = rli;
        pc.cnt_idx = 8 + (uint32_t)w;
        VA_TRY(va_stream_dispatch(s, kb[2], b, 10, &pc, sizeof pc, va_ceil_div((uint64_t)rc, R), 1, 1));
    }
    bd.list = list;
    return assign_rows(s, x, &cen, shift, labels_out, dists_out, rows, &bd);
}

/* ---- Lloyd step -------------------------------------------------------------------------------- */

/* Arguments of the bounded assignment: lower (n) float32; centres_prev with labels_prev, or
 * neither (the first assignment). */
static va_status check_bounds(const va_tensor *x, const va_tensor *centres, const va_tensor *centres_prev,
                              const va_tensor *labels_prev, const va_tensor *lower, const va_tensor *labels_out,
                              const va_tensor *dists_out) {
    int64_t n = x->shape[0], d = x->shape[1], k = centres->shape[0];
    VA_TRY(check_vec(lower, "lower", VA_F32, VA_F32, n));
    if ((centres_prev == NULL) != (labels_prev == NULL))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "centres_prev and labels_prev go together");
    if (centres_prev) {
        VA_TRY(check_centres(centres_prev, "centres_prev", d));
        if (centres_prev->shape[0] != k)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "centres_prev must have %lld rows", (long long)k);
    }
    if (overlap(lower, labels_out) || overlap(lower, dists_out) || overlap(lower, labels_prev) ||
        overlap(lower, x) || overlap(lower, centres))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "lower overlaps another argument");
    return VA_SUCCESS;
}

static va_status lloyd_step(va_stream *s, const va_tensor *x, const va_tensor *weights, const va_tensor *shift,
                            const va_tensor *scales, const va_tensor *centres, const va_tensor *labels_prev,
                            const va_tensor *centres_prev, const va_tensor *lower,
                            const va_tensor *centres_out, const va_tensor *labels_out, const va_tensor *dists_out,
                            const va_tensor *aux_out, const va_tensor *stats_out, int64_t max_rows, int coop) {
    va_context *ctx = va_stream_context(s);
    va_tensor xv;
    VA_TRY(x_view(x, &xv));
    x = &xv;
    int64_t n = x->shape[0], d = x->shape[1];
    VA_TRY(check_centres(centres, "centres", d));
    int64_t k = centres->shape[0];
    VA_TRY(check_centres(centres_out, "centres_out", d));
    if (centres_out->shape[0] != k) return va_fail(VA_ERROR_INVALID_ARGUMENT, "centres_out must have %lld rows", (long long)k);
    VA_TRY(check_vec(shift, "shift", VA_F32, VA_F32, d));
    VA_TRY(check_vec(scales, "scales", VA_F32, VA_F32, d + 1));
    if (weights) VA_TRY(check_vec(weights, "weights", VA_F32, VA_F32, n));
    if (labels_prev) VA_TRY(check_vec(labels_prev, "labels_prev", VA_U32, VA_I32, n));
    VA_TRY(check_vec(labels_out, "labels", VA_U32, VA_I32, n));
    VA_TRY(check_vec(dists_out, "dists", VA_F32, VA_F32, n));
    VA_TRY(check_vec(aux_out, "aux", VA_F32, VA_U32, 2 * k + 4));
    if (stats_out) VA_TRY(check_vec(stats_out, "stats", VA_F32, VA_U32, lower ? 5 : 4));
    if (overlap(labels_prev, labels_out)) return va_fail(VA_ERROR_INVALID_ARGUMENT, "labels_prev and labels overlap");
    if (lower) VA_TRY(check_bounds(x, centres, centres_prev, labels_prev, lower, labels_out, dists_out));
    else if (centres_prev) return va_fail(VA_ERROR_INVALID_ARGUMENT, "centres_prev is only used with lower bounds");
    if (n == 0) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x has no rows");

    /* Per-row arrays of a window: labels, previous labels, distances, weights, row numbers. */
    int64_t rows;
    VA_TRY(rows_per_window(ctx, x, 4, max_rows, &rows));
    va_buffer *cs = NULL;
    if (lower)
        VA_TRY(bounded_assign(s, x, shift, centres, centres_prev, labels_prev, lower, labels_out, dists_out, rows,
                              &cs));
    else
        VA_TRY(assign_run(s, x, centres, NULL, shift, labels_out, dists_out, max_rows, coop));
    int64_t nwin = (n + rows - 1) / rows;
    int64_t ncol = d + 1;
    int64_t maxchunks = rows / CHUNK_S + k + 1;
    uint64_t npart = 0;
    for (int64_t r0 = 0; r0 < n; r0 += rows) npart += va_ceil_div((uint64_t)(n - r0 < rows ? n - r0 : rows), WG * SORT_ITEMS);
    uint64_t p_bytes = (uint64_t)maxchunks * (uint64_t)ncol * 8, acc_bytes = (uint64_t)k * (uint64_t)ncol * 8;
    if (p_bytes > range_bytes(ctx) || acc_bytes > range_bytes(ctx) || (uint64_t)(3 * k + 2) * 4 > range_bytes(ctx))
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "%lld centres of %lld features exceed the binding range",
                       (long long)k, (long long)d);
    va_buffer *cnt, *off, *perm, *part, *acc;
    VA_TRY(va_stream_scratch(s, ((uint64_t)k + 4 + npart) * 4, &cnt));
    VA_TRY(va_stream_scratch(s, (uint64_t)(3 * k + 2) * 4, &off));
    VA_TRY(va_stream_scratch(s, (uint64_t)rows * 4, &perm));
    VA_TRY(va_stream_scratch(s, p_bytes, &part));
    VA_TRY(va_stream_scratch(s, acc_bytes, &acc));

    const va_kernel *ksort[4], *kred, *kcen[3];
    for (uint32_t st = 0; st < 4; st++) {
        uint32_t sp[6] = {WG, 1, 1, st, k <= SORT_LOCAL_K, SORT_ITEMS};
        VA_TRY(va_kernel_get(ctx, "kmeans_sort", sp, 6, 0, &ksort[st]));
    }
    for (uint32_t st = 0; st < 3; st++) {
        uint32_t sp[4] = {WG, 1, 1, st};
        VA_TRY(va_kernel_get(ctx, "kmeans_centres", sp, 4, 0, &kcen[st]));
    }
    uint32_t fb = 1;
    while (fb < (uint32_t)d && fb < WG) fb <<= 1;
    {
        uint32_t sp[4] = {WG, 1, 1, fb};
        VA_TRY(va_kernel_get(ctx, x->dtype == VA_F16 ? "kmeans_reduce_f16" : "kmeans_reduce", sp, 4, 0, &kred));
    }

    uint32_t mu_rem, sc_rem, aux_rem, co_rem, cn_rem;
    va_binding mub = vec_window(ctx, shift, 0, d, VA_READ, &mu_rem);
    va_binding scb = vec_window(ctx, scales, 0, d + 1, VA_READ, &sc_rem);
    va_binding auxb = vec_window(ctx, aux_out, 0, 2 * k + 4, VA_READ_WRITE, &aux_rem);
    int64_t ldco = k > 1 ? centres->strides[0] : d, ldcn = k > 1 ? centres_out->strides[0] : d;
    va_tensor co = *centres, cn = *centres_out;
    co.strides[0] = ldco;
    cn.strides[0] = ldcn;
    va_binding cob = va_rows_binding(ctx, &co, 0, k, d > 0 ? d : 1, VA_READ, &co_rem);
    va_binding cnb = va_rows_binding(ctx, &cn, 0, k, d > 0 ? d : 1, VA_WRITE, &cn_rem);

    struct {
        uint32_t k, rows, l_off, lo_off, ds_off, w_off, has_w, first, part_base, S, clear_n;
    } spc = {(uint32_t)k, 0, 0, 0, 0, 0, weights != NULL, labels_prev == NULL, 0, CHUNK_S, (uint32_t)(k + 4)};
    uint32_t dl;
    va_binding dummy = vec_window(ctx, labels_out, 0, 1, VA_READ, &dl);
    {
        va_binding b[7] = {dummy, dummy, dummy, dummy, whole(cnt, VA_WRITE), whole(off, VA_READ), whole(perm, VA_READ)};
        VA_TRY(va_stream_dispatch(s, ksort[0], b, 7, &spc, sizeof spc, va_ceil_div((uint64_t)k + 4, WG), 1, 1));
    }
    int64_t ldx = ld_of(x);
    uint32_t part_base = 0;
    for (int64_t w = 0; w < nwin; w++) {
        int64_t r0 = w * rows, rc = n - r0 < rows ? n - r0 : rows;
        uint32_t rl, rlo = 0, rds, rw = 0, rx;
        va_binding lb = vec_window(ctx, labels_out, r0, rc, VA_READ, &rl);
        va_binding lob = labels_prev ? vec_window(ctx, labels_prev, r0, rc, VA_READ, &rlo) : lb;
        va_binding dsb = vec_window(ctx, dists_out, r0, rc, VA_READ, &rds);
        va_binding wb = weights ? vec_window(ctx, weights, r0, rc, VA_READ, &rw) : lb;
        va_binding xb = va_rows_binding(ctx, x, r0, rc, d > 0 ? d : 1, VA_READ, &rx);
        spc.rows = (uint32_t)rc;
        spc.l_off = rl;
        spc.lo_off = rlo;
        spc.ds_off = rds;
        spc.w_off = rw;
        spc.part_base = part_base;
        uint32_t groups = va_ceil_div((uint64_t)rc, WG * SORT_ITEMS);
        va_binding b1[7] = {lb, lob, dsb, wb, whole(cnt, VA_READ_WRITE), whole(off, VA_READ), whole(perm, VA_READ)};
        VA_TRY(va_stream_dispatch(s, ksort[1], b1, 7, &spc, sizeof spc, groups, 1, 1));
        va_binding b2[7] = {lb, lob, dsb, wb, whole(cnt, VA_READ_WRITE), whole(off, VA_WRITE), whole(perm, VA_READ)};
        VA_TRY(va_stream_dispatch(s, ksort[2], b2, 7, &spc, sizeof spc, 1, 1, 1));
        va_binding b3[7] = {lb, lob, dsb, wb, whole(cnt, VA_READ), whole(off, VA_READ_WRITE), whole(perm, VA_WRITE)};
        VA_TRY(va_stream_dispatch(s, ksort[3], b3, 7, &spc, sizeof spc, groups, 1, 1));
        part_base += groups;

        struct { uint32_t k, d, ldx, x_off, w_off, has_w, mu_off, sc_off, S; } rpc = {
            (uint32_t)k, (uint32_t)d, (uint32_t)ldx, rx, rw, weights != NULL, mu_rem, sc_rem, CHUNK_S};
        va_binding br[8] = {xb, wb, mub, scb, whole(off, VA_READ), whole(cnt, VA_READ), whole(perm, VA_READ),
                            whole(part, VA_WRITE)};
        uint64_t chunks = (uint64_t)(rc / CHUNK_S) + (uint64_t)k + 1;
        VA_TRY(va_stream_dispatch(s, kred, br, 8, &rpc, sizeof rpc, (uint32_t)chunks, 1, 1));

        struct { uint32_t k, d, first, sc_off, co_off, ldco, cn_off, ldcn, aux_off, npart; } cpc = {
            (uint32_t)k, (uint32_t)d, w == 0, sc_rem, co_rem, (uint32_t)ldco, cn_rem, (uint32_t)ldcn, aux_rem,
            (uint32_t)npart};
        va_binding bc[8] = {whole(cnt, VA_READ), whole(off, VA_READ), whole(part, VA_READ), whole(acc, VA_READ_WRITE),
                            scb, cob, cnb, auxb};
        VA_TRY(va_stream_dispatch(s, kcen[0], bc, 8, &cpc, sizeof cpc,
                                  va_ceil_div((uint64_t)k * (uint64_t)ncol, WG), 1, 1));
        if (w == nwin - 1) {
            bc[0] = whole(cnt, VA_READ_WRITE);
            VA_TRY(va_stream_dispatch(s, kcen[1], bc, 8, &cpc, sizeof cpc, (uint32_t)k, 1, 1));
            VA_TRY(va_stream_dispatch(s, kcen[2], bc, 8, &cpc, sizeof cpc, 1, 1, 1));
        }
    }
    if (stats_out) {
        VA_TRY(va_stream_copy(s, aux_out->buf, aux_out->offset + (uint64_t)(2 * k) * 4, stats_out->buf,
                              stats_out->offset, 16));
        if (cs) VA_TRY(va_stream_copy(s, cs, 0, stats_out->buf, stats_out->offset + 16, 4));
    }
    return VA_SUCCESS;
}

va_status va_kmeans_lloyd_step(va_stream *s, const va_tensor *x, const va_tensor *weights, const va_tensor *shift,
                               const va_tensor *scales, const va_tensor *centres, const va_tensor *labels_prev,
                               const va_tensor *centres_out, const va_tensor *labels_out, const va_tensor *dists_out,
                               const va_tensor *aux_out, const va_tensor *stats_out) {
    va_clear_error();
    return lloyd_step(s, x, weights, shift, scales, centres, labels_prev, NULL, NULL, centres_out, labels_out,
                      dists_out, aux_out, stats_out, 0, 0);
}

va_status va_kmeans_lloyd_step_bounded(va_stream *s, const va_tensor *x, const va_tensor *weights,
                                       const va_tensor *shift, const va_tensor *scales, const va_tensor *centres,
                                       const va_tensor *centres_prev, const va_tensor *labels_prev,
                                       const va_tensor *lower, const va_tensor *centres_out,
                                       const va_tensor *labels_out, const va_tensor *dists_out,
                                       const va_tensor *aux_out, const va_tensor *stats_out) {
    va_clear_error();
    if (!lower) return va_fail(VA_ERROR_INVALID_ARGUMENT, "lower: missing tensor");
    return lloyd_step(s, x, weights, shift, scales, centres, labels_prev, centres_prev, lower, centres_out,
                      labels_out, dists_out, aux_out, stats_out, 0, 0);
}

static va_status assign_bounded_run(va_stream *s, const va_tensor *x, const va_tensor *shift,
                                    const va_tensor *centres, const va_tensor *centres_prev,
                                    const va_tensor *labels_prev, const va_tensor *lower, const va_tensor *labels_out,
                                    const va_tensor *dists_out, const va_tensor *listed_out, int64_t max_rows) {
    va_context *ctx = va_stream_context(s);
    va_tensor xv;
    VA_TRY(x_view(x, &xv));
    x = &xv;
    int64_t n = x->shape[0], d = x->shape[1];
    VA_TRY(check_centres(centres, "centres", d));
    if (shift) VA_TRY(check_vec(shift, "shift", VA_F32, VA_F32, d));
    if (labels_prev) VA_TRY(check_vec(labels_prev, "labels_prev", VA_U32, VA_I32, n));
    VA_TRY(check_vec(labels_out, "labels", VA_U32, VA_I32, n));
    VA_TRY(check_vec(dists_out, "dists", VA_F32, VA_F32, n));
    if (listed_out) VA_TRY(check_vec(listed_out, "listed", VA_U32, VA_I32, 1));
    if (overlap(labels_prev, labels_out)) return va_fail(VA_ERROR_INVALID_ARGUMENT, "labels_prev and labels overlap");
    VA_TRY(check_bounds(x, centres, centres_prev, labels_prev, lower, labels_out, dists_out));
    if (n == 0) return VA_SUCCESS;
    int64_t rows;
    VA_TRY(rows_per_window(ctx, x, 4, max_rows, &rows));
    va_buffer *cs;
    VA_TRY(bounded_assign(s, x, shift, centres, centres_prev, labels_prev, lower, labels_out, dists_out, rows, &cs));
    if (listed_out) VA_TRY(va_stream_copy(s, cs, 0, listed_out->buf, listed_out->offset, 4));
    return VA_SUCCESS;
}

va_status va_kmeans_assign_bounded(va_stream *s, const va_tensor *x, const va_tensor *shift,
                                   const va_tensor *centres, const va_tensor *centres_prev,
                                   const va_tensor *labels_prev, const va_tensor *lower, const va_tensor *labels_out,
                                   const va_tensor *dists_out, const va_tensor *listed_out) {
    va_clear_error();
    return assign_bounded_run(s, x, shift, centres, centres_prev, labels_prev, lower, labels_out, dists_out,
                              listed_out, 0);
}

/* ---- k-means++ and the row gather ---------------------------------------------------------------- */

static va_status gather_rows(va_stream *s, const va_tensor *x, int64_t rows, va_binding ib, uint32_t i_off,
                             va_binding mub, uint32_t mu_off, int has_shift, va_binding ob, uint32_t o_off,
                             uint32_t ldo, uint32_t m) {
    va_context *ctx = va_stream_context(s);
    int64_t n = x->shape[0], d = x->shape[1], ldx = ld_of(x);
    const va_kernel *k;
    uint32_t spec[3] = {WG, 1, 1};
    VA_TRY(va_kernel_get(ctx, x->dtype == VA_F16 ? "kmeans_gather_f16" : "kmeans_gather", spec, 3, 0, &k));
    for (int64_t r0 = 0; r0 < n; r0 += rows) {
        int64_t rc = n - r0 < rows ? n - r0 : rows;
        uint32_t rx;
        va_binding b[4] = {va_rows_binding(ctx, x, r0, rc, d > 0 ? d : 1, VA_READ, &rx), ib, mub, ob};
        uint32_t pc[10] = {(uint32_t)d, (uint32_t)ldx, rx, (uint32_t)r0, (uint32_t)rc, i_off, mu_off, o_off, ldo,
                           (uint32_t)has_shift};
        VA_TRY(va_stream_dispatch(s, k, b, 4, pc, sizeof pc, m, 1, 1));
    }
    return VA_SUCCESS;
}

static va_status gather_run(va_stream *s, const va_tensor *x, const va_tensor *indices, const va_tensor *shift,
                            const va_tensor *out, int64_t max_rows) {
    va_context *ctx = va_stream_context(s);
    va_tensor xv;
    VA_TRY(x_view(x, &xv));
    x = &xv;
    int64_t d = x->shape[1];
    if (!indices || indices->ndim != 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "indices must be a vector");
    int64_t m = indices->shape[0];
    VA_TRY(check_vec(indices, "indices", VA_U32, VA_I32, m));
    VA_TRY(check_centres(out, "out", d));
    if (out->shape[0] != m) return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must have %lld rows", (long long)m);
    if (shift) VA_TRY(check_vec(shift, "shift", VA_F32, VA_F32, d));
    if (m == 0 || x->shape[0] == 0) return VA_SUCCESS;
    int64_t rows;
    VA_TRY(rows_per_window(ctx, x, 0, max_rows, &rows));
    uint32_t ri, rm = 0, ro;
    va_binding ib = vec_window(ctx, indices, 0, m, VA_READ, &ri);
    va_binding mub = shift ? vec_window(ctx, shift, 0, d, VA_READ, &rm) : ib;
    int64_t ldo = m > 1 ? out->strides[0] : d;
    va_tensor ov = *out;
    ov.strides[0] = ldo;
    va_binding ob = va_rows_binding(ctx, &ov, 0, m, d > 0 ? d : 1, VA_WRITE, &ro);
    return gather_rows(s, x, rows, ib, ri, mub, rm, shift != NULL, ob, ro, (uint32_t)ldo, (uint32_t)m);
}

va_status va_kmeans_gather(va_stream *s, const va_tensor *x, const va_tensor *indices, const va_tensor *shift,
                           const va_tensor *out) {
    va_clear_error();
    return gather_run(s, x, indices, shift, out, 0);
}

static va_status plusplus_run(va_stream *s, const va_tensor *x, const va_tensor *weights, const va_tensor *shift,
                              int64_t first, const va_tensor *uniforms, int64_t trials, const va_tensor *centres_out,
                              const va_tensor *indices_out, int64_t max_rows) {
    va_context *ctx = va_stream_context(s);
    VA_TRY(check_x(x));
    int64_t n = x->shape[0], d = x->shape[1];
    VA_TRY(check_centres(centres_out, "centres_out", d));
    int64_t k = centres_out->shape[0];
    if (trials < 1 || trials > 64) return va_fail(VA_ERROR_INVALID_ARGUMENT, "trials must be in [1, 64]");
    if (n < 1 || first < 0 || first >= n)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "first must be a row of x (0..%lld)", (long long)n - 1);
    VA_TRY(check_vec(shift, "shift", VA_F32, VA_F32, d));
    if (weights) VA_TRY(check_vec(weights, "weights", VA_F32, VA_F32, n));
    if (k > 1) VA_TRY(check_vec(uniforms, "uniforms", VA_F32, VA_F32, (k - 1) * trials));
    VA_TRY(check_vec(indices_out, "indices", VA_U32, VA_I32, k));
    if (x->dtype == VA_F16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");

    uint32_t T = (uint32_t)trials;
    va_tensor xv = *x;
    xv.strides[0] = ld_of(x);
    int64_t rows;
    VA_TRY(rows_per_window(ctx, x, (int64_t)T * 4, max_rows, &rows));
    uint64_t nblk = va_ceil_div((uint64_t)n, WG);
    /* ST: best, potential, candidates[T] | shift[d] | candidate rows[T][d] | uniforms | chosen rows[k]. */
    uint64_t st_mu = 2 + T, st_rows = st_mu + (uint64_t)d, st_u = st_rows + (uint64_t)T * d;
    uint64_t st_idx = st_u + (uint64_t)(k - 1) * T, st_words = st_idx + (uint64_t)k;
    if (st_words * 4 > range_bytes(ctx) || nblk * T * 4 > range_bytes(ctx) ||
        (uint64_t)k * (uint64_t)(k > 1 ? centres_out->strides[0] : d) * 4 > range_bytes(ctx))
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "k-means++ state of %lld centres exceeds the binding range",
                       (long long)k);
    va_buffer *st, *dbuf[2], *bs[2];
    VA_TRY(va_stream_scratch(s, st_words * 4, &st));
    for (int i = 0; i < 2; i++) {
        VA_TRY(va_stream_scratch(s, (uint64_t)n * T * 4, &dbuf[i]));
        VA_TRY(va_stream_scratch(s, nblk * T * 4, &bs[i]));
    }
    VA_TRY(va_stream_copy(s, shift->buf, shift->offset, st, st_mu * 4, (uint64_t)d * 4));
    if (k > 1) VA_TRY(va_stream_copy(s, uniforms->buf, uniforms->offset, st, st_u * 4, (uint64_t)(k - 1) * T * 4));
    uint32_t first32 = (uint32_t)first;
    VA_TRY(va_stream_upload(s, st, 8, &first32, 4));

    const va_kernel *kk[3];
    for (uint32_t stg = 0; stg < 3; stg++) {
        uint32_t sp[6] = {WG, 1, 1, stg, T, 16};
        const char *name = stg == 1 && x->dtype == VA_F16 ? "kmeans_pp_f16" : "kmeans_pp";
        VA_TRY(va_kernel_get(ctx, name, sp, 6, 0, &kk[stg]));
    }
    int64_t ldc = k > 1 ? centres_out->strides[0] : d, ldx = ld_of(x);
    va_tensor cv = *centres_out;
    cv.strides[0] = ldc;
    uint32_t c_rem;
    va_binding cw = va_rows_binding(ctx, &cv, 0, k, d > 0 ? d : 1, VA_WRITE, &c_rem);
    va_binding cr = cw;
    cr.access = VA_READ;
    struct {
        uint32_t d, teff, step, first, ldx, x_off, r0, rc, w_off, has_w, dp_off, dc_off, nblk, st_mu, st_rows, st_u,
            st_idx, c_off, ldc;
    } pc = {(uint32_t)d, 1, 0, 1, (uint32_t)ldx, 0, 0, 0, 0, weights != NULL, 0, 0, (uint32_t)nblk, (uint32_t)st_mu,
            (uint32_t)st_rows, (uint32_t)st_u, (uint32_t)st_idx, c_rem, (uint32_t)ldc};
    va_binding stb = whole(st, VA_READ_WRITE), str = whole(st, VA_READ), stw = whole(st, VA_WRITE);
    for (int64_t c = 0; c < k; c++) {
        int cur = (int)(c % 2), prev = 1 - cur;
        pc.step = (uint32_t)c;
        pc.first = c == 0;
        pc.teff = c == 0 ? 1 : T;
        /* search (the step's candidates; step 0's is `first`), gather, dist: window by window;
         * then one select. */
        for (int stage = 0; stage < 3; stage++) {
            if (stage == 0 && c == 0) continue;
            if (stage == 1)
                VA_TRY(gather_rows(s, &xv, rows, str, 2, str, (uint32_t)st_mu, 1, stw, (uint32_t)st_rows, (uint32_t)d,
                                   pc.teff));
            for (int64_t r0 = 0; r0 < n; r0 += rows) {
                int64_t rc = n - r0 < rows ? n - r0 : rows;
                uint32_t rx, rw = 0, rdp, rdc;
                va_tensor dt = {dbuf[prev], 0, VA_F32, 1, {n * T}, {1}}, dct = {dbuf[cur], 0, VA_F32, 1, {n * T}, {1}};
                va_binding xb = va_rows_binding(ctx, &xv, r0, rc, d > 0 ? d : 1, VA_READ, &rx);
                va_binding dpb = vec_window(ctx, &dt, r0 * T, rc * T, VA_READ, &rdp);
                va_binding dcb = vec_window(ctx, &dct, r0 * T, rc * T, stage == 1 ? VA_WRITE : VA_READ, &rdc);
                va_binding wb = weights ? vec_window(ctx, weights, r0, rc, VA_READ, &rw) : xb;
                pc.x_off = rx;
                pc.r0 = (uint32_t)r0;
                pc.rc = (uint32_t)rc;
                pc.w_off = rw;
                pc.dp_off = rdp;
                pc.dc_off = rdc;
                if (stage == 0) {
                    va_binding b[8] = {xb, wb, dpb, dcb, whole(bs[prev], VA_READ), whole(bs[cur], VA_READ), stb, cr};
                    VA_TRY(va_stream_dispatch(s, kk[0], b, 8, &pc, sizeof pc, 1, 1, 1));
                } else if (stage == 1) {
                    va_binding b[8] = {xb, wb, dpb, dcb, whole(bs[prev], VA_READ), whole(bs[cur], VA_WRITE), str, cr};
                    VA_TRY(va_stream_dispatch(s, kk[1], b, 8, &pc, sizeof pc, va_ceil_div((uint64_t)rc, WG), 1, 1));
                } else {
                    va_binding b[8] = {xb, wb, dpb, dcb, whole(bs[cur], VA_READ), whole(bs[prev], VA_READ), stb, cw};
                    VA_TRY(va_stream_dispatch(s, kk[2], b, 8, &pc, sizeof pc, 1, 1, 1));
                    break; /* one select per step */
                }
            }
        }
    }
    return va_stream_copy(s, st, st_idx * 4, indices_out->buf, indices_out->offset, (uint64_t)k * 4);
}

va_status va_kmeans_plusplus(va_stream *s, const va_tensor *x, const va_tensor *weights, const va_tensor *shift,
                             int64_t first, const va_tensor *uniforms, int64_t trials, const va_tensor *centres_out,
                             const va_tensor *indices_out) {
    va_clear_error();
    return plusplus_run(s, x, weights, shift, first, uniforms, trials, centres_out, indices_out, 0);
}

/* ---- registry adapters --------------------------------------------------------------------------- */

/* Inputs: x, centres[, cnorms][, shift]. Outputs: labels[, dists].
 * iparams: has_cnorms, has_shift, has_dists, max_rows (0: the device's binding range)[, coop: the
 * tensor-core assignment where the device has it (vaccel.cluster decides where it pays)]. */
static va_status op_kmeans_assign(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                  const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 4) return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_assign takes 4 integer parameters");
    int hc = ip[0] != 0, hs = ip[1] != 0, hd = ip[2] != 0;
    if (n_in != 2 + hc + hs || n_out != 1 + hd)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_assign: (x, centres[, cnorms][, shift]) -> (labels[, dists])");
    va_clear_error();
    return assign_run(s, &in[0], &in[1], hc ? &in[2] : NULL, hs ? &in[2 + hc] : NULL, &out[0], hd ? &out[1] : NULL,
                      ip[3], n_i > 4 && ip[4] != 0);
}
VA_REGISTER_OP(kmeans_assign, op_kmeans_assign);

/* Inputs: x, shift, scales, centres[, labels_prev][, weights][, centres_prev]. Outputs: centres_out,
 * labels, dists, aux[, stats][, lower]. iparams: has_prev, has_weights, has_stats, max_rows[, bounds[,
 * coop]] (coop: the tensor-core assignment where the device has it, for a step without bounds):
 * with bounds, `lower` (n) holds the rows' lower bounds (read when has_prev, then rewritten),
 * centres_prev comes with labels_prev, and stats has a fifth word: the rows assigned in full. */
static va_status op_kmeans_step(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 4) return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_step takes 4 integer parameters");
    int hp = ip[0] != 0, hw = ip[1] != 0, hs = ip[2] != 0, hb = n_i > 4 && ip[4] != 0;
    if (n_in != 4 + hp + hw + (hb && hp) || n_out != 4 + hs + hb)
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "kmeans_step: (x, shift, scales, centres[, labels_prev][, weights][, centres_prev]) -> "
                       "(centres, labels, dists, aux[, stats][, lower])");
    va_clear_error();
    return lloyd_step(s, &in[0], hw ? &in[4 + hp] : NULL, &in[1], &in[2], &in[3], hp ? &in[4] : NULL,
                      hb && hp ? &in[4 + hp + hw] : NULL, hb ? &out[4 + hs] : NULL, &out[0], &out[1], &out[2],
                      &out[3], hs ? &out[4] : NULL, ip[3], n_i > 5 && ip[5] != 0);
}
VA_REGISTER_OP(kmeans_step, op_kmeans_step);

/* Inputs: x, shift, centres[, centres_prev, labels_prev]. Outputs: labels, dists, lower[, listed].
 * iparams: has_prev, max_rows. The assignment to `centres` with Hamerly's bounds (lower: read
 * when has_prev, then rewritten); listed: 1 word, the rows assigned in full. */
static va_status op_kmeans_assign_bounded(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out,
                                          int n_out, const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 2) return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_assign_bounded takes 2 integer parameters");
    int hp = ip[0] != 0;
    if (n_in != 3 + 2 * hp || (n_out != 3 && n_out != 4))
        return va_fail(VA_ERROR_INVALID_ARGUMENT,
                       "kmeans_assign_bounded: (x, shift, centres[, centres_prev, labels_prev]) -> "
                       "(labels, dists, lower[, listed])");
    va_clear_error();
    return assign_bounded_run(s, &in[0], &in[1], &in[2], hp ? &in[3] : NULL, hp ? &in[4] : NULL, &out[2], &out[0],
                              &out[1], n_out == 4 ? &out[3] : NULL, ip[1]);
}
VA_REGISTER_OP(kmeans_assign_bounded, op_kmeans_assign_bounded);

/* Inputs: x, shift, uniforms[, weights]. Outputs: centres, indices. iparams: first, trials,
 * has_weights, max_rows. */
static va_status op_kmeans_plusplus(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                    const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 4) return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_plusplus takes 4 integer parameters");
    int hw = ip[2] != 0;
    if (n_in != 3 + hw || n_out != 2)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_plusplus: (x, shift, uniforms[, weights]) -> (centres, indices)");
    va_clear_error();
    return plusplus_run(s, &in[0], hw ? &in[3] : NULL, &in[1], ip[0], &in[2], ip[1], &out[0], &out[1], ip[3]);
}
VA_REGISTER_OP(kmeans_plusplus, op_kmeans_plusplus);

/* Inputs: x, indices[, shift]. Outputs: out. iparams: has_shift, max_rows. */
static va_status op_kmeans_gather(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                  const int64_t *ip, int n_i, const double *fp, int n_f) {
    (void)fp; (void)n_f;
    if (n_i < 2) return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_gather takes 2 integer parameters");
    int hs = ip[0] != 0;
    if (n_in != 2 + hs || n_out != 1)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "kmeans_gather: (x, indices[, shift]) -> out");
    va_clear_error();
    return gather_run(s, &in[0], &in[1], hs ? &in[2] : NULL, &out[0], ip[1]);
}
VA_REGISTER_OP(kmeans_gather, op_kmeans_gather);
