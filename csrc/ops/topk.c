/* topk.c — the k best entries of each row, two ways.
 *
 * The row kernel (topk_rows.comp): one workgroup per row, exact for any input, rows split so every
 * binding window fits maxStorageBufferRange. Also the building block of knn's merges (an index per
 * entry, a bitset of allowed columns).
 *
 * The filter path, for long rows: one streaming read of the matrix at full bandwidth keeps only a
 * few thousand candidates per row. Per window of rows:
 *  1. topk_sample copies nsb blocks of 8 entries of each row (about one block in g, stratified,
 *     random within a stratum) into a sample matrix, and zeroes the rows' candidate counts;
 *  2. knn_tau.comp bounds each sample row's r-th best without sorting: tau, at least as far as the
 *     r-th (within one of its histogram bins), is the row's bound. The sample is a subset of the
 *     row, so at least r entries of the row are as good as tau; about r / f are (f = sample
 *     entries / n), with a standard deviation of about sqrt(r) / f;
 *  3. topk_filter reads the rows once and appends every entry as good as tau to its row's list of
 *     cap slots;
 *  4. knn_select sorts each list and writes its k best; a row with more candidates than slots or
 *     fewer than k is flagged;
 *  5. the row kernel recomputes the flagged rows (HAS_FLAGS: the others return at once).
 * r is k f + 5 sqrt(k f) + 10: the sample holds r of the row's k - 1 best with a probability below
 * 1e-8 (a binomial tail), so a row almost never has fewer than k candidates; f is the smallest of
 * 1/64 .. 1/4 for which r / f plus 6 of its standard deviations fits FILTER_CAP (an overflow below
 * about 1e-6 per row; both for rows in random order, which the stratified sample only improves).
 * Expected candidates per row: about 830 at k = 10, 1150 at k = 100, 2240 at k = 1000 (f = 1/32);
 * k up to about 2800 qualifies. Results never depend on the sample: any row it serves badly
 * (sorted, constant, NaN, adversarial) is recomputed exactly, only time is lost. */
#include <math.h>
#include <stdlib.h>

#include "../core/internal.h"

#define SORT_MAX 2048u
#define FILTER_CAP 4096u            /* candidate slots per row: knn_select sorts 32 KiB of keys */
#define FILTER_MIN_N 16384          /* shorter rows: the row kernel */
#define FILTER_WG 256u
#define FILTER_UNROLL 4u            /* 16-byte loads in flight per thread (UNROLL * entries per load <= 32) */
#define FILTER_ITERS 8u             /* load rounds per workgroup: 128 KiB of a row */
#define SAMPLE_BYTES ((uint64_t)256 << 20) /* the sample matrix of one window of rows */

/* Sampling for a row of n entries: nsb blocks of 8 (s entries), one in about every g, and the
 * bound's rank r; cap candidate slots per row. */
typedef struct filter_plan { uint32_t g, nsb, s, r, cap; } filter_plan;

/* VACCEL_TOPK_FILTER=0 turns the filter path off, 1 takes it wherever it can run (tests use it on
 * small inputs); otherwise it serves rows of FILTER_MIN_N entries or more. */
static int filter_mode(void) {
    const char *e = getenv("VACCEL_TOPK_FILTER");
    if (e && e[0] == '0' && !e[1]) return 0;
    if (e && e[0] == '1' && !e[1]) return 2;
    return 1;
}

/* Tuning of the streaming pass: VACCEL_TOPK_UNROLL 16-byte loads in flight per thread (1 to 8
 * for float32, 1 to 4 for float16; default 4), VACCEL_TOPK_ITERS rounds of them per workgroup
 * (1 to 64; default FILTER_ITERS). */
static uint32_t env_u32(const char *name, uint32_t lo, uint32_t hi, uint32_t dflt) {
    const char *e = getenv(name);
    if (e && *e) {
        long v = strtol(e, NULL, 10);
        if (v >= (long)lo && v <= (long)hi) return (uint32_t)v;
    }
    return dflt;
}
static uint32_t filter_unroll(int f16) { return env_u32("VACCEL_TOPK_UNROLL", 1, f16 ? 4 : 8, FILTER_UNROLL); }
static uint32_t filter_iters(void) { return env_u32("VACCEL_TOPK_ITERS", 1, 64, FILTER_ITERS); }

/* VACCEL_TOPK_CAP (a power of two from 16 to FILTER_CAP) shrinks the lists without changing the
 * sample: tests use it to force overflows. */
static uint32_t filter_cap(void) {
    const char *env = getenv("VACCEL_TOPK_CAP");
    if (env && *env) {
        long v = strtol(env, NULL, 10);
        if (v >= 16 && v <= (long)FILTER_CAP && (v & (v - 1)) == 0) return (uint32_t)v;
    }
    return FILTER_CAP;
}

/* Rows longer than one binding are taken in nc column windows; window i starts at entry
 * col_start(n, nc, i), a multiple of 8 (so blocks of 8 never straddle two). */
static int64_t col_start(int64_t n, int64_t nc, int64_t i) {
    return i >= nc ? n : 8 * ((n / 8) * i / nc);
}

/* Entries in one column window: a binding's worth, less the slack of its aligned start.
 * VACCEL_TOPK_COLUMNS (at least 1024) makes it smaller, and treats every row longer than it as
 * too long for a binding: tests run the column windows on small rows (lavapipe also stops any
 * invocation after 65535 loop iterations, so its row kernel cannot take rows of many millions). */
static int64_t columns_override(void) {
    const char *e = getenv("VACCEL_TOPK_COLUMNS");
    long long v = e && *e ? strtoll(e, NULL, 10) : 0;
    return v >= 1024 ? (int64_t)v : 0;
}

static int64_t column_window(const va_context *ctx, size_t es) {
    uint64_t range = ctx->info.max_storage_buffer_range;
    uint64_t slack = (uint64_t)ctx->info.min_storage_buffer_offset_alignment + 16;
    int64_t w = range > slack ? (int64_t)((range - slack) / es) - 16 : 0, o = columns_override();
    return o && o < w ? o : w;
}

/* Whether rows of n entries (stride ld, es bytes each) need column windows. */
static int too_long(const va_context *ctx, int64_t ld, int64_t n, size_t es) {
    int64_t o = columns_override();
    return va_rows_per_binding(ctx, ld, n > 0 ? n : 1, es) <= 0 || (o && n > o);
}

/* Sampled blocks of row windows [col_start(i), col_start(i + 1)) at one block in g. */
static int64_t sampled_blocks(int64_t n, int64_t nc, int64_t i, uint32_t g) {
    return (col_start(n, nc, i + 1) - col_start(n, nc, i)) / 8 / g;
}

static int plan_filter(int64_t n, int64_t nc, int64_t k, int forced, filter_plan *p) {
    static const uint32_t gs[] = {64, 32, 16, 8, 4, 2, 1};
    int64_t nblk = n / 8;
    int ng = forced ? 7 : 5;
    if (nblk < 1 || k > (int64_t)FILTER_CAP || nblk > 0x1FFFFFFF) return 0;
    p->cap = filter_cap();
    double rank = 0;
    for (int i = 0; i < ng; i++) {
        int64_t nsb = 0, lo = INT64_MAX;
        for (int64_t c = 0; c < nc; c++) {
            int64_t b = sampled_blocks(n, nc, c, gs[i]);
            nsb += b;
            if (b < lo) lo = b;
        }
        if (lo < 1) continue;
        double sz = 8.0 * (double)nsb, lam = (double)k * sz / (double)n;
        rank = ceil(lam + 5.0 * sqrt(lam) + 10.0);
        if (rank > sz) continue;
        if ((rank + 6.0 * sqrt(rank)) * (double)n / sz > (double)FILTER_CAP) continue;
        p->g = gs[i];
        p->nsb = (uint32_t)nsb;
        p->s = (uint32_t)(8 * nsb);
        p->r = (uint32_t)rank;
        return 1;
    }
    if (!forced || nc > 1) return 0;
    /* Forced onto rows too short for a margin: the whole of their full blocks, bound at rank
     * min(r, s). Few candidates or too many only send rows to the row kernel. */
    p->g = 1;
    p->nsb = (uint32_t)nblk;
    p->s = (uint32_t)(8 * nblk);
    p->r = rank < (double)p->s ? (uint32_t)rank : p->s;
    return 1;
}

static va_tensor rows_of(const va_tensor *t, int64_t r0, int64_t rows) {
    va_tensor v = *t;
    v.offset += (uint64_t)r0 * (uint64_t)t->strides[0] * va_dtype_size(t->dtype);
    v.shape[0] = rows;
    return v;
}

static va_status rows_kernel(va_stream *s, const va_tensor *x, int64_t k, int largest, const va_tensor *idx,
                             const va_tensor *mask, int64_t mask_offset, int64_t idx_base, const va_tensor *out_v,
                             const va_tensor *out_i, const va_tensor *flags);

/* Columns [j0, j0 + cols) of a matrix view. */
static va_tensor cols_of(const va_tensor *t, int64_t j0, int64_t cols) {
    va_tensor v = *t;
    v.offset += (uint64_t)j0 * va_dtype_size(t->dtype);
    v.shape[1] = cols;
    return v;
}

/* Rows longer than one binding, one at a time: the best k of each of nc column windows go into a
 * candidate row [running best k | this window's best k], merged into the running best k by the row
 * kernel over those 2k entries with their indices (as knn merges its database chunks). Windows hold
 * at least 2k entries, so a window never pads its k with placeholders that would rank before a
 * NaN of another window. With flags, every dispatch leaves unflagged rows alone. */
static va_status rows_kernel_long(va_stream *s, const va_tensor *x, int64_t k, int largest, const va_tensor *idx,
                                  const va_tensor *mask, int64_t mask_offset, int64_t idx_base,
                                  const va_tensor *out_v, const va_tensor *out_i, const va_tensor *flags) {
    va_context *ctx = va_stream_context(s);
    int64_t m = x->shape[0], n = x->shape[1];
    int64_t w = column_window(ctx, va_dtype_size(x->dtype));
    if (idx && column_window(ctx, 4) < w) w = column_window(ctx, 4);
    int64_t nc = w > 16 ? (n + w - 17) / (w - 16) : 0;
    if (nc < 2 || col_start(n, nc, 1) < 2 * k || va_rows_per_binding(ctx, 2 * k, 2 * k, 4) < 1)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "topk: rows of %lld entries need column windows of "
                       "at least 2k = %lld entries; this device's binding range is too small", (long long)n,
                       (long long)(2 * k));
    va_buffer *cv[2], *ci[2];
    for (int b = 0; b < 2; b++) {
        VA_TRY(va_stream_scratch(s, (uint64_t)k * 8, &cv[b]));
        VA_TRY(va_stream_scratch(s, (uint64_t)k * 8, &ci[b]));
    }
    for (int64_t r = 0; r < m; r++) {
        va_tensor xr = rows_of(x, r, 1), ir = idx ? rows_of(idx, r, 1) : xr;
        va_tensor vr = rows_of(out_v, r, 1), orow = rows_of(out_i, r, 1);
        va_tensor fr = {0};
        if (flags) {
            fr = *flags;
            fr.offset += (uint64_t)r * (uint64_t)(flags->shape[0] > 1 ? flags->strides[0] : 1) * 4;
            fr.shape[0] = 1;
        }
        int cur = 0;
        for (int64_t c = 0; c < nc; c++) {
            int64_t j0 = col_start(n, nc, c), jn = col_start(n, nc, c + 1) - j0;
            va_tensor xw = cols_of(&xr, j0, jn), iw = cols_of(&ir, j0, jn);
            va_tensor cand_v = {cv[cur], 0, VA_F32, 2, {1, 2 * k}, {2 * k, 1}};
            va_tensor cand_i = {ci[cur], 0, VA_U32, 2, {1, 2 * k}, {2 * k, 1}};
            va_tensor hv = cols_of(&cand_v, c > 0 ? k : 0, k), hi = cols_of(&cand_i, c > 0 ? k : 0, k);
            VA_TRY(rows_kernel(s, &xw, k, largest, idx ? &iw : NULL, mask, mask_offset + j0, idx_base + j0, &hv, &hi,
                               flags ? &fr : NULL));
            if (c == 0) continue;
            int last = c == nc - 1;
            va_tensor nv = {cv[1 - cur], 0, VA_F32, 2, {1, k}, {2 * k, 1}};
            va_tensor ni = {ci[1 - cur], 0, VA_U32, 2, {1, k}, {2 * k, 1}};
            VA_TRY(rows_kernel(s, &cand_v, k, largest, &cand_i, NULL, 0, 0, last ? &vr : &nv, last ? &orow : &ni,
                               flags ? &fr : NULL));
            cur = 1 - cur;
        }
    }
    return VA_SUCCESS;
}

/* The row kernel over every row of x; flags (m,) u32, optional: only the rows whose flag is set. */
static va_status rows_kernel(va_stream *s, const va_tensor *x, int64_t k, int largest, const va_tensor *idx,
                             const va_tensor *mask, int64_t mask_offset, int64_t idx_base, const va_tensor *out_v,
                             const va_tensor *out_i, const va_tensor *flags) {
    va_context *ctx = va_stream_context(s);
    int64_t m = x->shape[0], n = x->shape[1];
    size_t es = va_dtype_size(x->dtype);
    uint32_t spec[8] = {256, 1, 1, largest ? 1u : 0u, idx ? 1u : 0u, mask ? 1u : 0u, SORT_MAX, flags ? 1u : 0u};
    const va_kernel *kern;
    VA_TRY(va_kernel_get(ctx, x->dtype == VA_F16 ? "topk_rows_f16" : "topk_rows", spec, 8, 0, &kern));

    int64_t ldx = m > 1 ? x->strides[0] : n, ldi = idx ? (m > 1 ? idx->strides[0] : n) : 0;
    int64_t ldv = m > 1 ? out_v->strides[0] : k, ldo = m > 1 ? out_i->strides[0] : k;
    va_tensor xv = *x, iv = idx ? *idx : *x, vv = *out_v, ov = *out_i;
    xv.strides[0] = ldx; iv.strides[0] = idx ? ldi : ldx; vv.strides[0] = ldv; ov.strides[0] = ldo;
    int64_t chunk = va_rows_per_binding(ctx, ldx, n > 0 ? n : 1, es);
    int64_t c2 = va_rows_per_binding(ctx, ldv, k, 4), c3 = va_rows_per_binding(ctx, ldo, k, 4);
    if (c2 < chunk) chunk = c2;
    if (c3 < chunk) chunk = c3;
    if (idx) {
        int64_t c4 = va_rows_per_binding(ctx, ldi, n > 0 ? n : 1, 4);
        if (c4 < chunk) chunk = c4;
    }
    if (too_long(ctx, ldx, n, es) || (idx && too_long(ctx, ldi, n, 4)))
        return rows_kernel_long(s, &xv, k, largest, idx ? &iv : NULL, mask, mask_offset, idx_base, &vv, &ov, flags);
    if (chunk <= 0) return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "a row of k = %lld results does not fit the "
                                   "device's binding range", (long long)k);
    uint32_t mword_rem = 0;
    va_binding mb = {0};
    if (mask) {
        /* The whole bitset is one window (it is n/32 words). */
        mb = va_tensor_binding(mask, VA_READ);
        mb.offset = va_align_binding(ctx, mask->offset, 4, &mword_rem);
        mb.size = va_tensor_span(mask) + mword_rem * 4;
    }
    va_tensor fv = {0};
    if (flags) {
        fv = *flags;
        fv.ndim = 2;
        fv.shape[0] = m;
        fv.shape[1] = 1;
        fv.strides[0] = fv.strides[1] = 1;
    }
    for (int64_t r0 = 0; r0 < m; r0 += chunk) {
        int64_t rc = m - r0 < chunk ? m - r0 : chunk;
        uint32_t rx, ri = 0, rv, ro, rf = 0;
        va_binding b[6];
        b[0] = va_rows_binding(ctx, &xv, r0, rc, n > 0 ? n : 1, VA_READ, &rx);
        b[1] = idx ? va_rows_binding(ctx, &iv, r0, rc, n > 0 ? n : 1, VA_READ, &ri) : b[0];
        b[2] = mask ? mb : b[0];
        b[3] = va_rows_binding(ctx, &vv, r0, rc, k, VA_READ_WRITE, &rv);
        b[4] = va_rows_binding(ctx, &ov, r0, rc, k, VA_READ_WRITE, &ro);
        b[5] = flags ? va_rows_binding(ctx, &fv, r0, rc, 1, VA_READ, &rf) : b[0];
        uint32_t pc[14] = {(uint32_t)rc, (uint32_t)n, (uint32_t)k, (uint32_t)ldx, rx, (uint32_t)ldi, ri,
                           (uint32_t)ldv, rv, (uint32_t)ldo, ro,
                           (uint32_t)(mword_rem * 32 + (uint64_t)mask_offset), (uint32_t)idx_base, rf};
        VA_TRY(va_stream_dispatch(s, kern, b, 6, pc, sizeof pc, (uint32_t)rc, 1, 1));
    }
    return VA_SUCCESS;
}

/* Rows [r0, r0 + rows) of x as a binding whose start is 16-byte aligned (the filter reads whole
 * 16-byte vectors); *rem: the entries between that start and row r0. */
static va_binding rows_binding16(va_context *ctx, const va_tensor *x, int64_t r0, int64_t rows, int64_t cols,
                                 uint32_t *rem) {
    va_binding b = va_rows_binding(ctx, x, r0, rows, cols, VA_READ, rem);
    uint64_t shift = b.offset % 16;
    b.offset -= shift;
    b.size += shift;
    *rem += (uint32_t)(shift / va_dtype_size(x->dtype));
    return b;
}

static va_status filter_path(va_stream *s, const va_tensor *x, int64_t k, int largest, int64_t idx_base,
                             int64_t nc, const filter_plan *p, const va_tensor *out_v, const va_tensor *out_i) {
    va_context *ctx = va_stream_context(s);
    int64_t m = x->shape[0], n = x->shape[1];
    int f16 = x->dtype == VA_F16;
    size_t es = va_dtype_size(x->dtype);
    uint32_t vw = 16 / (uint32_t)es, cap = p->cap, r = p->r, ns = p->s;
    int64_t ldx = m > 1 ? x->strides[0] : n;
    int64_t ldv = m > 1 ? out_v->strides[0] : k, ldo = m > 1 ? out_i->strides[0] : k;
    va_tensor xv = *x, vv = *out_v, ov = *out_i;
    xv.strides[0] = ldx; vv.strides[0] = ldv; ov.strides[0] = ldo;

    /* Rows per window: every binding fits, and the sample stays in budget. Rows longer than one
     * binding go one at a time, in nc column windows. */
    int64_t win = nc > 1 ? 1 : va_rows_per_binding(ctx, ldx, n, es), c;
    if ((c = va_rows_per_binding(ctx, ldv, k, 4)) < win) win = c;
    if ((c = va_rows_per_binding(ctx, ldo, k, 4)) < win) win = c;
    if ((c = va_rows_per_binding(ctx, ns, ns, 4)) < win) win = c;
    if ((c = va_rows_per_binding(ctx, 2 * (int64_t)cap, 2 * (int64_t)cap, 4)) < win) win = c;
    if ((c = (int64_t)(SAMPLE_BYTES / ((uint64_t)ns * 4))) < win) win = c;
    if (win > 65535) win = 65535;
    if (win > m) win = m;
    if (win < 1) win = 1;

    va_buffer *sb = NULL, *tvb = NULL, *cb = NULL, *nb = NULL, *fb = NULL;
    VA_TRY(va_stream_scratch(s, (uint64_t)win * ns * 4, &sb));
    VA_TRY(va_stream_scratch(s, (uint64_t)win * 4, &tvb));
    VA_TRY(va_stream_scratch(s, (uint64_t)win * cap * 8, &cb));
    VA_TRY(va_stream_scratch(s, (uint64_t)win * 4, &nb));
    VA_TRY(va_stream_scratch(s, (uint64_t)win * 4, &fb));

    const va_kernel *ksample, *kfilter, *kselect;
    uint32_t sspec[1] = {256};
    uint32_t fspec[3] = {FILTER_WG, largest ? 1u : 0u, filter_unroll(f16)};
    uint32_t lspec[3] = {256, cap, largest ? 3u : 0u};
    VA_TRY(va_kernel_get(ctx, f16 ? "topk_sample_f16" : "topk_sample", sspec, 1, 0, &ksample));
    VA_TRY(va_kernel_get(ctx, f16 ? "topk_filter_f16" : "topk_filter", fspec, 3, 0, &kfilter));
    VA_TRY(va_kernel_get(ctx, "knn_select", lspec, 3, 0, &kselect));
    uint32_t vpc = FILTER_WG * fspec[2] * filter_iters();

    for (int64_t r0 = 0; r0 < m; r0 += win) {
        int64_t rc = m - r0 < win ? m - r0 : win;
        va_tensor xr = rows_of(&xv, r0, rc);
        va_tensor flags = {fb, 0, VA_U32, 1, {rc}, {1}};
        va_binding bcnt = {nb, 0, (uint64_t)rc * 4, VA_WRITE};
        va_binding bcand = {cb, 0, (uint64_t)rc * cap * 8, VA_WRITE};
        va_binding b[5];
        uint32_t rx;

        /* 1. The sample (column window by column window), and zero counts. */
        uint32_t s_off = 0;
        for (int64_t w = 0; w < nc; w++) {
            int64_t j0 = col_start(n, nc, w), jn = col_start(n, nc, w + 1) - j0;
            uint32_t nblk = (uint32_t)(jn / 8), nsb = (uint32_t)sampled_blocks(n, nc, w, p->g);
            va_tensor xw = cols_of(&xr, j0, jn);
            b[0] = va_rows_binding(ctx, &xw, 0, rc, jn, VA_READ, &rx);
            b[1] = (va_binding){sb, 0, (uint64_t)rc * ns * 4, VA_WRITE};
            b[2] = bcnt;
            uint32_t spc[10] = {(uint32_t)rc, nblk, nsb, nblk / nsb, (uint32_t)ldx, rx, ns, s_off, 0,
                                (uint32_t)(r0 + w * 0x3C6EF372ll)};
            VA_TRY(va_stream_dispatch(s, ksample, b, 3, spc, sizeof spc, va_ceil_div(nsb, 256), (uint32_t)rc, 1));
            s_off += 8 * nsb;
        }

        /* 2. The bounds: tau at least as far as each sample row's r-th best. */
        VA_TRY(va_tau_rows(s, sb, rc, ns, r, largest, tvb));

        /* 3. The candidates. */
        for (int64_t w = 0; w < nc; w++) {
            int64_t j0 = col_start(n, nc, w), jn = col_start(n, nc, w + 1) - j0;
            va_tensor xw = cols_of(&xr, j0, jn);
            uint32_t nvec = (uint32_t)((uint64_t)jn / vw);
            b[0] = rows_binding16(ctx, &xw, 0, rc, jn, &rx);
            b[1] = b[0];
            b[2] = (va_binding){tvb, 0, (uint64_t)rc * 4, VA_READ};
            b[3] = bcand;
            b[4] = bcnt;
            b[4].access = VA_READ_WRITE;
            uint32_t fpc[11] = {(uint32_t)rc, (uint32_t)jn, (uint32_t)ldx, rx, 1, 0, cap, 0, 0, vpc,
                                (uint32_t)(idx_base + j0)};
            VA_TRY(va_stream_dispatch(s, kfilter, b, 5, fpc, sizeof fpc, nvec > vpc ? va_ceil_div(nvec, vpc) : 1,
                                      (uint32_t)rc, 1));
        }

        /* 4. Each list's k best, and the flags. */
        va_tensor f2 = {fb, 0, VA_U32, 2, {rc, 1}, {1, 1}};
        uint32_t rd, ri, rf;
        b[0] = bcand;
        b[0].access = VA_READ;
        b[1] = bcnt;
        b[1].access = VA_READ;
        b[2] = va_rows_binding(ctx, &vv, r0, rc, k, VA_WRITE, &rd);
        b[3] = va_rows_binding(ctx, &ov, r0, rc, k, VA_WRITE, &ri);
        b[4] = va_rows_binding(ctx, &f2, 0, rc, 1, VA_WRITE, &rf);
        uint32_t lpc[8] = {(uint32_t)rc, (uint32_t)k, rd, (uint32_t)ldv, ri, (uint32_t)ldo, rf, (uint32_t)k};
        uint32_t lx = rc < 65535 ? (uint32_t)rc : 65535;
        VA_TRY(va_stream_dispatch(s, kselect, b, 5, lpc, sizeof lpc, lx, va_ceil_div((uint64_t)rc, lx), 1));

        /* 5. The flagged rows, exactly. */
        va_tensor vr = rows_of(&vv, r0, rc), orow = rows_of(&ov, r0, rc);
        VA_TRY(rows_kernel(s, &xr, k, largest, NULL, NULL, 0, idx_base, &vr, &orow, &flags));
    }
    return VA_SUCCESS;
}

va_status va_topk(va_stream *s, const va_tensor *x, int64_t k, int largest, const va_tensor *idx,
                  const va_tensor *mask, int64_t mask_offset, int64_t idx_base, const va_tensor *out_v,
                  const va_tensor *out_i) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    VA_TRY(va_check_matrix(x, "x", VA_F32, VA_F16));
    VA_TRY(va_check_matrix(out_v, "values", VA_F32, VA_F32));
    VA_TRY(va_check_matrix(out_i, "indices", VA_U32, VA_I32));
    if (x->dtype == VA_F16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");
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

    int mode = filter_mode();
    if (mode && !idx && !mask && (mode == 2 || n >= FILTER_MIN_N) && k <= n) {
        /* Rows longer than one binding: column windows (each holding many strata). */
        size_t es = va_dtype_size(x->dtype);
        int64_t w = column_window(ctx, es), nc = 1;
        if (too_long(ctx, m > 1 ? x->strides[0] : n, n, es)) nc = w > 16 ? (n + w - 17) / (w - 16) : 0;
        filter_plan plan;
        if (nc >= 1 && plan_filter(n, nc, k, mode == 2, &plan) && va_rows_per_binding(ctx, plan.s, plan.s, 4) > 0)
            return filter_path(s, x, k, largest, idx_base, nc, &plan, out_v, out_i);
    }
    return rows_kernel(s, x, k, largest, idx, mask, mask_offset, idx_base, out_v, out_i, NULL);
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
