/* reduce.c — reductions over one axis of a strided (B, R, C) view (sum, mean, var, std, min,
 * max, argmin, argmax, one-pass statistics) and histograms. Plans the split of R into segments (enough
 * workgroups to fill the device, each folding a slab), the second pass that merges the segments'
 * partial states, and the binding windows that keep every dispatch within maxStorageBufferRange. */
#include <stdlib.h>
#include <string.h>

#include "../core/internal.h"

enum { W_SUM, W_MEAN, W_VAR, W_STD, W_MIN, W_MAX, W_ARGMIN, W_ARGMAX, W_STATS, W_COUNT };

#define WG 256u          /* a multiple of every subgroup size (8, 32, 64) */
#define SHORT_RUN 4096   /* runs (sr == 1) up to this long go to groups of threads (see reduce_run) */
#define STATE_BYTES 32u  /* two uvec4 per partial state */

typedef struct geom {
    int64_t B, R, C, sb, sr, sc;
} geom;

static uint32_t op_of(int what) {
    switch (what) {
    case W_SUM: case W_MEAN: return 0;
    case W_MIN: case W_ARGMIN: return 1;
    case W_MAX: case W_ARGMAX: return 2;
    default: return 3;
    }
}

/* Workgroups one pass aims for: about two waves of 256-thread groups on a large GPU, so every
 * SM has slabs to stream; VACCEL_REDUCE_GROUPS overrides, for tuning. */
static int64_t target_groups(void) {
    const char *e = getenv("VACCEL_REDUCE_GROUPS");
    long v = e ? atol(e) : 0;
    return v > 0 ? v : 2048;
}

/* Column blocks one merging pass may take (VA counters, 4 bytes each). */
#define MERGE_UNITS 65536

/* Whether a pass may merge its own partial states (VACCEL_REDUCE_MERGE=pass: never, for tests). */
static int merge_in_pass(void) {
    const char *e = getenv("VACCEL_REDUCE_MERGE");
    return !(e && strcmp(e, "pass") == 0);
}

static int use_subgroups(void) {
    const char *e = getenv("VACCEL_REDUCE_SUBGROUP");
    return !(e && strcmp(e, "0") == 0);
}

static int64_t span_elems(const geom *g) {
    return (g->B - 1) * g->sb + (g->R - 1) * g->sr + (g->C - 1) * g->sc + 1;
}

/* One pass over x viewed through g. final 1: the pass writes the results (out windows); 0: partial
 * states at segment s0.. of the (B, C, S) layout in part; 2: both, the last workgroup of each
 * (b, column block) merging its states into the results (the stream's counters give the tickets;
 * every dispatch then spans all of R). seg: rows per segment. max_elems: the most elements one
 * binding window of x may span. */
static va_status pass(va_stream *s, const va_kernel *k, const va_tensor *x, size_t es, const geom *g,
                      int64_t seg, int64_t S, va_buffer *part, const va_tensor *out_v, const va_tensor *out_i,
                      int what, float ddof, double count, int64_t max_elems, int final, uint32_t grp) {
    va_context *ctx = va_stream_context(s);
    uint32_t ow = what == W_STATS ? 4 : 1;
    /* Column chunk: at most half a window, so a run of rows always fits beside it. */
    int64_t cc = g->C;
    if ((cc - 1) * g->sc + 1 > max_elems / 2) cc = (max_elems / 2 - 1) / (g->sc ? g->sc : 1) + 1;
    if (cc < 1) cc = 1;
    /* Rows per dispatch: whole segments that fit the window with cc columns. */
    int64_t rfit = g->sr ? (max_elems - (cc - 1) * g->sc - 1) / g->sr + 1 : g->R;
    int64_t rc = g->R;
    if (rc > rfit) {
        if (seg > rfit) return va_fail(VA_ERROR_INTERNAL, "reduce: segment exceeds a binding window");
        rc = rfit / seg * seg;
    }
    if (final == 2 && rc != g->R) return va_fail(VA_ERROR_INTERNAL, "reduce: a merging pass must span the whole axis");
    /* Batches per dispatch when all of R fits. */
    int64_t bc = 1;
    if (rc == g->R && cc == g->C && g->B > 1) {
        int64_t inner = (g->R - 1) * g->sr + (g->C - 1) * g->sc + 1;
        bc = g->sb ? (max_elems - inner) / g->sb + 1 : g->B;
        if (bc > g->B) bc = g->B;
        if (bc > 65535 * 64) bc = 65535 * 64;
        if (bc < 1) bc = 1;
    }
    for (int64_t b0 = 0; b0 < g->B; b0 += bc) {
        int64_t nb = g->B - b0 < bc ? g->B - b0 : bc;
        for (int64_t r0 = 0; r0 < g->R; r0 += rc) {
            int64_t nr = g->R - r0 < rc ? g->R - r0 : rc;
            int64_t nseg = (nr + seg - 1) / seg;
            for (int64_t c0 = 0; c0 < g->C; c0 += cc) {
                int64_t ncol = g->C - c0 < cc ? g->C - c0 : cc;
                uint32_t ceff = grp ? WG / grp : ncol < (int64_t)WG ? (uint32_t)ncol : WG;
                uint32_t rx, ro = 0, ri = 0;
                va_binding bind[5];
                geom w = {nb, nr, ncol, g->sb, g->sr, g->sc};
                uint64_t start = x->offset + (uint64_t)(b0 * g->sb + r0 * g->sr + c0 * g->sc) * es;
                uint64_t at = va_align_binding(ctx, start, (uint32_t)es, &rx);
                bind[0] = (va_binding){x->buf, at, ((uint64_t)span_elems(&w) + rx) * es, VA_READ};
                if (final) {
                    uint64_t o0 = (uint64_t)(b0 * g->C + c0), on = (uint64_t)((nb - 1) * g->C + ncol);
                    if (out_v) {
                        uint64_t a = va_align_binding(ctx, out_v->offset + o0 * ow * 4, 4, &ro);
                        bind[2] = (va_binding){out_v->buf, a, (on * ow + ro) * 4, VA_WRITE};
                    }
                    if (out_i) {
                        uint64_t a = va_align_binding(ctx, out_i->offset + o0 * 8, 4, &ri);
                        bind[3] = (va_binding){out_i->buf, a, (on * 2 + ri) * 4, VA_WRITE};
                    }
                    if (!out_v) bind[2] = bind[3];
                    if (!out_i) bind[3] = bind[2];
                    bind[1] = bind[4] = bind[2];
                    if (final == 2) {
                        va_buffer *cnt;
                        uint64_t units = (uint64_t)nb * va_ceil_div((uint64_t)ncol, ceff);
                        VA_TRY(va_stream_counters(s, units, &cnt));
                        bind[1] = (va_binding){part, 0, VK_WHOLE_SIZE, VA_READ_WRITE};
                        bind[4] = (va_binding){cnt, 0, units * 4, VA_READ_WRITE};
                    }
                } else {
                    bind[1] = (va_binding){part, 0, VK_WHOLE_SIZE, VA_WRITE};
                    bind[2] = bind[3] = bind[4] = bind[1];
                }
                struct {
                    uint32_t x_off, B, R, C, sb, sr, sc, seg, nseg, S, s0, b0, c0, Ctot, r0, ceff, what;
                    float ddof, count;
                    uint32_t o_off, oi_off, grp;
                } pc = {rx, (uint32_t)nb, (uint32_t)nr, (uint32_t)ncol, (uint32_t)g->sb, (uint32_t)g->sr,
                        (uint32_t)g->sc, (uint32_t)seg, (uint32_t)nseg, (uint32_t)S, (uint32_t)(r0 / seg),
                        (uint32_t)b0, (uint32_t)c0, (uint32_t)g->C, (uint32_t)r0, ceff, (uint32_t)what,
                        ddof, (float)count, ro, ri, grp};
                uint64_t gx = (uint64_t)nseg * va_ceil_div((uint64_t)ncol, ceff);
                if (gx > 0xFFFFFFFFull) return va_fail(VA_ERROR_INTERNAL, "reduce: too many workgroups");
                VA_TRY(va_stream_dispatch(s, k, bind, 5, &pc, sizeof pc, (uint32_t)gx, (uint32_t)nb, 1));
            }
        }
    }
    return VA_SUCCESS;
}

/* x: the data; g: its (B, R, C) view in elements from x's offset, reduced over R. out_v: float32
 * (B*C) values ((B*C, 4) for statistics: mean, var, min, max); out_i: int64 (B*C) indices
 * (argmin/argmax) or counts (statistics). max_elems > 0 lowers the binding window (tests). */
static va_status reduce_run(va_stream *s, const va_tensor *x, geom g, int what, float ddof,
                            const va_tensor *out_v, const va_tensor *out_i, int64_t max_elems) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    if (what < 0 || what >= W_COUNT) return va_fail(VA_ERROR_INVALID_ARGUMENT, "reduce: unknown reduction %d", what);
    if (!x || !x->buf) return va_fail(VA_ERROR_INVALID_ARGUMENT, "x: missing tensor");
    if (x->dtype != VA_F32 && x->dtype != VA_F16)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must be float32 or float16");
    if (g.B < 0 || g.R < 0 || g.C < 0 || g.sb < 0 || g.sr < 0 || g.sc < 0)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "reduce: negative extent or stride");
    if (g.B == 0 || g.C == 0) return VA_SUCCESS;
    if (g.R == 0) return va_fail(VA_ERROR_INVALID_ARGUMENT, "reduce: empty reduction axis (handled by the caller)");
    if (g.R > 0xFFFFFFFFll - 1 || g.B > 0xFFFFFFFFll || g.C > 0xFFFFFFFFll)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "reduce: an axis of 2^32 or more elements");
    size_t es = va_dtype_size(x->dtype);
    if (x->offset + (uint64_t)span_elems(&g) * es > va_buffer_size(x->buf))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x: the view reaches past the end of its buffer");
    int need_v = what != W_ARGMIN && what != W_ARGMAX, need_i = what >= W_ARGMIN;
    uint64_t nout = (uint64_t)(g.B * g.C);
    if (need_v && (!out_v || out_v->dtype != VA_F32 || va_tensor_span(out_v) < nout * (what == W_STATS ? 4 : 1) * 4))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out: a float32 array of %llu results expected",
                       (unsigned long long)nout);
    if (need_i && (!out_i || out_i->dtype != VA_I64 || va_tensor_span(out_i) < nout * 8))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out: an int64 array of %llu results expected",
                       (unsigned long long)nout);
    /* Unit strides where an extent is 1 make the contiguous test below simple. */
    if (g.C == 1) g.sc = 1;
    if (g.R == 1) g.sr = 1;
    if (g.B == 1) g.sb = 0;

    /* Segments: one pass when the (b, column-block) pairs already fill the device; otherwise R is
     * split so that about target_groups() workgroups run, each thread folding >= 16 rows. Later
     * passes merge the (B, C, S) partial states the same way until one segment is left (one merge
     * pass, unless the states of a column exceed a binding window). */
    /* The variants whose threads of one column, where they are adjacent lanes, merge their first
     * levels by subgroup shuffles (VACCEL_REDUCE_SUBGROUP=0: shared memory only, for tests). */
    int sg = ctx->info.subgroup_shuffle && use_subgroups();
    const char *name = x->dtype == VA_F16 ? (sg ? "reduce_f16_sg" : "reduce_f16") : (sg ? "reduce_sg" : "reduce");
    va_tensor cur = *x;
    double count = (double)g.R;
    for (int level = 0;; level++) {
        if (level > 32) return va_fail(VA_ERROR_INTERNAL, "reduce: the merge passes do not converge");
        uint64_t range = ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64;
        int64_t win = (int64_t)(range / es);
        if (max_elems > 0 && max_elems < win) win = max_elems;
        if (win < 64) win = 64;
        /* Short contiguous runs (sr == 1, R <= SHORT_RUN): grp adjacent threads per run, each
         * taking about 16 of its elements (reduce.comp); a batch of single runs (C == 1) becomes
         * a row of columns, so that one workgroup takes many. Rows of 128 floats (2^21 of them)
         * took 7.9 ms on the H100 with a workgroup per row. */
        uint32_t grp = 0;
        if (level == 0 && g.sr == 1 && g.R <= SHORT_RUN && g.B * g.C > 1) {
            if (g.C == 1) g = (geom){1, g.R, g.B, 0, 1, g.sb};
            grp = 1;
            while (grp < 32 && grp * 16 < (uint32_t)g.R) grp *= 2;
        }
        int64_t ceff = grp ? WG / grp : g.C < (int64_t)WG ? g.C : WG, Y = grp ? grp : WG / ceff;
        int64_t units = g.B * ((g.C + ceff - 1) / ceff), G = target_groups();
        int64_t seg = g.R;
        /* The merge levels split too: the 2048 x 128 states of a column reduction (var over axis
         * 0 of 2^21 x 128) took one workgroup 0.6 ms to merge, against 0.4 ms for the pass that
         * made them. A merge aims for an eighth of the workgroups. */
        if (level > 0) G = G / 8 > 1 ? G / 8 : 1;
        if (units < G / 2) {
            int64_t want = (G + units - 1) / units;
            seg = (g.R + want - 1) / want;
            if (seg < 16 * Y) seg = 16 * Y;
            seg = (seg + 63) / 64 * 64;
        }
        int64_t cc = g.C;
        if ((cc - 1) * g.sc + 1 > win / 2) cc = (win / 2 - 1) / g.sc + 1;
        int64_t rfit = (win - (cc - 1) * g.sc - 1) / g.sr + 1;
        if (seg > rfit) seg = rfit;
        if (seg > g.R) seg = g.R;
        int64_t S = (g.R + seg - 1) / seg;
        /* One dispatch merges its own states (the last workgroup of each column block does, see
         * reduce.comp) where the whole axis fits one window, each merging thread takes at most 16
         * states and the column blocks are not too many for the stream's counters. Otherwise a
         * second pass (VACCEL_REDUCE_MERGE=pass forces that, for tests). */
        int merge_here = S > 1 && g.R <= rfit && S <= 16 * Y && units <= MERGE_UNITS && merge_in_pass();
        uint32_t spec[5] = {WG, 1, 1, op_of(what), S == 1 ? 1u : merge_here ? 2u : 0u};
        const va_kernel *k;
        VA_TRY(va_kernel_get(ctx, name, spec, 5, 0, &k));
        va_buffer *part = NULL;
        uint64_t states = (uint64_t)(g.B * S * g.C);
        if (S > 1) VA_TRY(va_stream_scratch(s, states * STATE_BYTES, &part));
        if (S == 1 || merge_here)
            return pass(s, k, &cur, es, &g, seg, S, part, need_v ? out_v : NULL, need_i ? out_i : NULL, what, ddof,
                        count, win, S == 1 ? 1 : 2, grp);
        VA_TRY(pass(s, k, &cur, es, &g, seg, S, part, NULL, NULL, what, ddof, count, win, 0, grp));
        /* The states, (B, C, S) with S fastest, as the next input: a column's states are
         * contiguous, so every merge level fits many of them in a window and S shrinks. The
         * window and the strides count whole states. */
        cur = (va_tensor){part, 0, VA_F32, 1, {(int64_t)states * 8}, {1}};
        g = (geom){g.B, S, g.C, S * g.C, 1, S};
        if (g.C == 1) g.sc = 1;
        if (g.B == 1) g.sb = 0;
        es = STATE_BYTES;
        name = sg ? "reduce_state_sg" : "reduce_state";
    }
}

/* Registry adapter. iparams: what, B, R, C, sb, sr, sc (elements, from x's offset), window
 * (0: the device's binding range). fparams: ddof. Inputs: x. Outputs: values and/or indices
 * (argmin/argmax: indices only; statistics: values then counts). */
static va_status op_reduce(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                           const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 1 || n_i < 8 || n_out < 1 || n_out > 2)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "reduce takes x -> out(s) and 8 integer parameters");
    int what = (int)ip[0];
    geom g = {ip[1], ip[2], ip[3], ip[4], ip[5], ip[6]};
    const va_tensor *ov = NULL, *oi = NULL;
    if (what == W_ARGMIN || what == W_ARGMAX) oi = &out[0];
    else if (what == W_STATS) { ov = &out[0]; oi = n_out > 1 ? &out[1] : NULL; }
    else ov = &out[0];
    return reduce_run(s, &in[0], g, what, n_f > 0 ? (float)fp[0] : 0.0f, ov, oi, ip[7]);
}
VA_REGISTER_OP(reduce, op_reduce);

/* Histogram counts of the contiguous values x (f32/f16) into bins given by edges (nbins + 1
 * float32 edges rounded up from the exact ones; lo: the first of them; hi: the last edge rounded
 * down), accumulated into
 * counts (int64, nbins), which this op zeroes first. uniform != 0: equal-width bins, first guess
 * by arithmetic (scale = nbins / (last - first)), then corrected against the edges. */
static va_status histogram_run(va_stream *s, const va_tensor *x, const va_tensor *edges, int64_t nbins, int uniform,
                               float lo, float hi, float scale, const va_tensor *counts, int64_t max_elems) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    if (!x || !x->buf || (x->dtype != VA_F32 && x->dtype != VA_F16))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must be float32 or float16");
    if (nbins < 1 || nbins > (1 << 28)) return va_fail(VA_ERROR_INVALID_ARGUMENT, "bins must be in [1, 2^28]");
    if (!edges || edges->dtype != VA_F32 || va_tensor_span(edges) < (uint64_t)(nbins + 1) * 4)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "edges: float32 array of %lld expected", (long long)(nbins + 1));
    if (!counts || counts->dtype != VA_I64 || va_tensor_span(counts) < (uint64_t)nbins * 8)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "counts: int64 array of %lld expected", (long long)nbins);
    int64_t n = 1;
    for (int i = 0; i < x->ndim; i++) n *= x->shape[i];
    if (x->ndim > 1 || (x->ndim == 1 && x->shape[0] > 1 && x->strides[0] != 1))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "x must be a contiguous vector");
    size_t es = va_dtype_size(x->dtype);
    const uint32_t shared_bins = 4096;  /* 16 KiB of counters */
    const char *name = x->dtype == VA_F16 ? "histogram_f16" : "histogram";
    uint32_t spec[6] = {WG, 1, 1, uniform != 0, shared_bins, 1};
    const va_kernel *clear, *k;
    VA_TRY(va_kernel_get(ctx, name, spec, 6, 0, &clear));
    spec[5] = 0;
    VA_TRY(va_kernel_get(ctx, name, spec, 6, 0, &k));
    va_binding eb = va_tensor_binding(edges, VA_READ), cb = va_tensor_binding(counts, VA_READ_WRITE);
    struct { uint32_t x_off, n, nbins, per_group; float lo, hi, scale; } pc = {0, 0, (uint32_t)nbins, 0, lo, hi, scale};
    /* The clear pass reads no values: x's binding is the edges (any valid window). */
    va_binding b0[3] = {eb, eb, cb};
    VA_TRY(va_stream_dispatch(s, clear, b0, 3, &pc, sizeof pc, va_ceil_div((uint64_t)nbins * 2, WG), 1, 1));
    if (n == 0) return VA_SUCCESS;
    int64_t win = (int64_t)((ctx->info.max_storage_buffer_range - ctx->info.min_storage_buffer_offset_alignment - 64) / es);
    if (max_elems > 0 && max_elems < win) win = max_elems;
    if (win < 64) win = 64;
    /* Slabs of at least 64 values per thread; about target_groups() workgroups in all. */
    int64_t per = (n + target_groups() - 1) / target_groups();
    if (per < 64 * (int64_t)WG) per = 64 * WG;
    for (int64_t i0 = 0; i0 < n; i0 += win) {
        int64_t cnt = n - i0 < win ? n - i0 : win;
        uint32_t rx;
        uint64_t at = va_align_binding(ctx, x->offset + (uint64_t)i0 * es, (uint32_t)es, &rx);
        va_binding b[3] = {{x->buf, at, ((uint64_t)cnt + rx) * es, VA_READ}, eb, cb};
        pc.x_off = rx;
        pc.n = (uint32_t)cnt;
        pc.per_group = (uint32_t)(per < cnt ? per : cnt);
        VA_TRY(va_stream_dispatch(s, k, b, 3, &pc, sizeof pc, va_ceil_div((uint64_t)cnt, pc.per_group), 1, 1));
    }
    return VA_SUCCESS;
}

/* Registry adapter. Inputs: x, edges. Outputs: counts. iparams: nbins, uniform, window (0: the
 * device's binding range). fparams: lo, hi, scale. */
static va_status op_histogram(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                              const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_in != 2 || n_out != 1 || n_i < 3 || n_f < 3)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "histogram takes (x, edges) -> counts, 3 integer and 3 float parameters");
    return histogram_run(s, &in[0], &in[1], ip[0], (int)ip[1], (float)fp[0], (float)fp[1], (float)fp[2], &out[0], ip[2]);
}
VA_REGISTER_OP(histogram, op_histogram);
