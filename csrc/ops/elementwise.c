/* elementwise.c — elementwise ops and fused chains (elementwise.comp): one program over up to six
 * broadcast inputs, run in one pass. Picks the path (contiguous vec4, strided with vec4 along the
 * innermost dim, general strided), uploads the strides the strided paths read, and splits the
 * work into blocks whose every binding window fits maxStorageBufferRange. */
#include <string.h>

#include "../core/internal.h"

#define EW_WG 256u
#define EW_UNROLL 4u
#define EW_META_WORDS 28u /* 7 operands x 4 dims */

typedef struct ew_plan {
    va_stream *s;
    va_context *ctx;
    const va_kernel *kern;
    const va_tensor *t[7];   /* inputs, then the output at index 6 (unused inputs: NULL) */
    int nin;
    uint32_t es[7];
    int64_t stride[7][4];    /* elements, dims padded in front to 4 */
    uint64_t align;          /* binding windows start at multiples of this */
    va_binding meta;
    float k[16];
    int vec4_inner;          /* MODE 1 with vec4 accesses along the innermost dim */
    int mode;
} ew_plan;

static int is_contiguous(const va_tensor *t) {
    int64_t want = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        if (t->shape[d] != 1 && t->strides[d] != want) return 0;
        want *= t->shape[d];
    }
    return 1;
}

static int is_broadcast_value(const va_tensor *t) {
    for (int d = 0; d < t->ndim; d++)
        if (t->shape[d] != 1 && t->strides[d] != 0) return 0;
    return 1;
}

/* The window holding bytes [off, off + span) of operand j's buffer, aligned down to p->align;
 * the element remainder goes to *rem. */
static va_binding window(const ew_plan *p, int j, uint64_t off, uint64_t span, uint32_t *rem) {
    uint64_t base = off / p->align * p->align;
    *rem = (uint32_t)((off - base) / p->es[j]);
    va_binding b = {p->t[j]->buf, base, span + (off - base), j == 6 ? VA_WRITE : VA_READ};
    if (b.offset + b.size > va_buffer_size(b.buf)) b.size = va_buffer_size(b.buf) - b.offset;
    return b;
}

static uint64_t block_span(const ew_plan *p, int j, const int64_t shape[4]) {
    uint64_t last = 0;
    for (int d = 0; d < 4; d++) last += (uint64_t)(shape[d] - 1) * (uint64_t)p->stride[j][d];
    return (last + 1) * p->es[j];
}

static va_status dispatch_block(ew_plan *p, const int64_t shape[4], const uint64_t off[7]) {
    struct {
        uint32_t n, rem[7], shape[4];
        float k[16];
    } pc;
    memset(&pc, 0, sizeof pc);
    uint64_t n = 1;
    for (int d = 0; d < 4; d++) {
        pc.shape[d] = (uint32_t)shape[d];
        n *= (uint64_t)shape[d];
    }
    if (n == 0) return VA_SUCCESS;
    pc.n = (uint32_t)n;
    memcpy(pc.k, p->k, sizeof pc.k);
    va_binding b[8];
    for (int j = 0; j < 7; j++) {
        if (!p->t[j]) continue;
        b[j] = window(p, j, off[j], block_span(p, j, shape), &pc.rem[j]);
    }
    for (int j = p->nin; j < 6; j++) b[j] = b[0]; /* unused inputs: any valid window */
    b[7] = p->mode == 1 ? p->meta : b[0];
    uint32_t groups = va_ceil_div(n, 4ull * EW_WG * EW_UNROLL);
    return va_stream_dispatch(p->s, p->kern, b, 8, &pc, sizeof pc, groups, 1, 1);
}

/* Dispatches the block, or splits it along its outermost dim of size > 1 (whole slices when they
 * fit, else one index at a time, recursing) until every operand's window fits the binding range. */
static va_status run_block(ew_plan *p, int64_t shape[4], uint64_t off[7]) {
    uint64_t range = p->ctx->info.max_storage_buffer_range - p->align;
    int fits = 1;
    for (int j = 0; j < 7 && fits; j++)
        if (p->t[j] && block_span(p, j, shape) > range) fits = 0;
    if (fits) return dispatch_block(p, shape, off);
    int d = 0;
    while (d < 3 && shape[d] == 1) d++;
    int64_t full = shape[d];
    int64_t cnt = full;
    shape[d] = 1;
    for (int j = 0; j < 7; j++) {
        if (!p->t[j] || p->stride[j][d] == 0) continue;
        uint64_t rest = block_span(p, j, shape);
        int64_t c = rest > range ? 0 : (int64_t)((range - rest) / ((uint64_t)p->stride[j][d] * p->es[j])) + 1;
        if (c < cnt) cnt = c;
    }
    /* Blocks along the innermost dim keep vec4 alignment. */
    if (d == 3 && p->vec4_inner && cnt >= 4) cnt -= cnt % 4;
    uint64_t sub_off[7];
    for (int64_t i0 = 0; i0 < full; i0 += cnt ? cnt : 1) {
        int64_t c = cnt ? (full - i0 < cnt ? full - i0 : cnt) : 1;
        for (int j = 0; j < 7; j++)
            sub_off[j] = p->t[j] ? off[j] + (uint64_t)i0 * (uint64_t)p->stride[j][d] * p->es[j] : 0;
        shape[d] = c;
        va_status st = cnt ? dispatch_block(p, shape, sub_off) : run_block(p, shape, sub_off);
        if (st) { shape[d] = full; return st; }
    }
    shape[d] = full;
    return VA_SUCCESS;
}

va_status va_elementwise(va_stream *s, const uint32_t *prog, int nprog, int result, const va_tensor *in, int nin,
                         const float *k, int nk, const va_tensor *out) {
    va_clear_error();
    va_context *ctx = va_stream_context(s);
    if (nin < 1 || nin > 6) return va_fail(VA_ERROR_INVALID_ARGUMENT, "elementwise takes 1 to 6 inputs, got %d", nin);
    if (nprog < 0 || nprog > 24) return va_fail(VA_ERROR_INVALID_ARGUMENT, "programs hold at most 24 instructions");
    if (result < 0 || result > 15) return va_fail(VA_ERROR_INVALID_ARGUMENT, "result register %d out of range", result);
    if (nk < 0 || nk > 16) return va_fail(VA_ERROR_INVALID_ARGUMENT, "at most 16 scalar operands, got %d", nk);
    if (!out || !out->buf || (out->dtype != VA_F32 && out->dtype != VA_F16))
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must be a float32 or float16 tensor");
    if (out->ndim < 1 || out->ndim > 4) return va_fail(VA_ERROR_INVALID_ARGUMENT, "out must have 1 to 4 dims");
    ew_plan p;
    memset(&p, 0, sizeof p);
    p.s = s;
    p.ctx = ctx;
    p.nin = nin;
    int any16 = out->dtype == VA_F16;
    for (int j = 0; j < 7; j++) {
        const va_tensor *t = j < nin ? &in[j] : j == 6 ? out : NULL;
        if (!t) continue;
        const char *what = j == 6 ? "out" : "an input";
        if (!t->buf || (t->dtype != VA_F32 && t->dtype != VA_F16))
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s must be a float32 or float16 tensor", what);
        if (t->ndim != out->ndim)
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s has %d dims, out has %d", what, t->ndim, out->ndim);
        for (int d = 0; d < t->ndim; d++)
            if (t->shape[d] != out->shape[d] || t->strides[d] < 0)
                return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s does not have out's shape (broadcast it first)", what);
        if (t->offset + va_tensor_span(t) > va_buffer_size(t->buf))
            return va_fail(VA_ERROR_INVALID_ARGUMENT, "%s reaches past the end of its buffer", what);
        any16 |= t->dtype == VA_F16;
        p.t[j] = t;
        p.es[j] = (uint32_t)va_dtype_size(t->dtype);
        int pad = 4 - t->ndim;
        for (int d = 0; d < t->ndim; d++) p.stride[j][pad + d] = t->shape[d] == 1 ? 0 : t->strides[d];
    }
    if (any16 && !ctx->info.storage_16bit)
        return va_fail(VA_ERROR_FEATURE_NOT_SUPPORTED, "this device cannot read float16 storage");
    for (int i = 0; i < nk; i++) p.k[i] = k[i];
    int64_t shape[4] = {1, 1, 1, 1};
    /* Counts reach the kernel as 32-bit words: every window is at most maxStorageBufferRange
     * (< 4 GiB) bytes, so a block never holds 2^31 elements. */
    uint64_t n = 1;
    for (int d = 0; d < out->ndim; d++) {
        shape[4 - out->ndim + d] = out->shape[d];
        n *= (uint64_t)out->shape[d];
    }
    if (n == 0) return VA_SUCCESS;
    p.align = ctx->info.min_storage_buffer_offset_alignment > 16 ? ctx->info.min_storage_buffer_offset_alignment : 16;

    /* MODE 0: every input is contiguous like out, or one value. */
    int mode0 = is_contiguous(out);
    uint32_t iomask = out->dtype == VA_F16 ? 0x40u : 0u;
    for (int j = 0; j < nin; j++) {
        if (in[j].dtype == VA_F16) iomask |= 1u << j;
        if (!is_contiguous(&in[j]) && !is_broadcast_value(&in[j])) mode0 = 0;
    }
    uint64_t off[7] = {0};
    for (int j = 0; j < 7; j++)
        if (p.t[j]) off[j] = p.t[j]->offset;
    /* vec4 accesses need 4-element alignment, except from operands read one value at a time. */
    int aligned = 1, aligned_v4 = 1;
    for (int j = 0; j < 7; j++) {
        if (!p.t[j] || (off[j] / p.es[j]) % 4 == 0) continue;
        if (j == 6 || !is_broadcast_value(p.t[j])) aligned = 0;
        if (p.stride[j][3] != 0) aligned_v4 = 0;
    }
    if (mode0 && aligned) {
        p.mode = 0;
        for (int j = 0; j < nin; j++)
            if (is_broadcast_value(&in[j]) && n > 1) iomask |= 1u << (8 + j);
        /* As one flat dim: contiguous operands stride 1, broadcast values stride 0. */
        for (int j = 0; j < 7; j++) {
            if (!p.t[j]) continue;
            memset(p.stride[j], 0, sizeof p.stride[j]);
            p.stride[j][3] = j < 6 && ((iomask >> (8 + j)) & 1u) ? 0 : 1;
        }
        shape[0] = shape[1] = shape[2] = 1;
        shape[3] = (int64_t)n;
        p.vec4_inner = 1;
    } else {
        p.mode = 1;
        /* vec4 along the innermost dim: its size a multiple of 4, every operand reads it
         * contiguously (or one value per row), rows start 4-aligned. */
        int v4 = shape[3] % 4 == 0 && p.stride[6][3] == 1 && aligned_v4;
        for (int j = 0; j < 7 && v4; j++) {
            if (!p.t[j]) continue;
            if (p.stride[j][3] > 1) v4 = 0;
            for (int d = 0; d < 3; d++)
                if (p.stride[j][3] == 1 && p.stride[j][d] % 4) v4 = 0;
        }
        if (v4) {
            iomask |= 0x80u;
            for (int j = 0; j < nin; j++)
                if (p.stride[j][3] == 0) iomask |= 1u << (8 + j);
        }
        p.vec4_inner = v4;
        uint32_t meta[EW_META_WORDS] = {0};
        for (int j = 0; j < 7; j++)
            if (p.t[j])
                for (int d = 0; d < 4; d++) meta[4 * j + d] = (uint32_t)p.stride[j][d];
        va_buffer *mb;
        VA_TRY(va_stream_scratch(s, sizeof meta, &mb));
        /* Small uploads are copied when recorded, so meta may live on the stack. */
        VA_TRY(va_stream_upload(s, mb, 0, meta, sizeof meta));
        p.meta = (va_binding){mb, 0, sizeof meta, VA_READ};
    }
    uint32_t spec[32] = {EW_WG, 1, 1, (uint32_t)nin, (uint32_t)p.mode, iomask, (uint32_t)out->ndim, (uint32_t)result};
    if (p.mode == 0) spec[6] = 1;
    for (int i = 0; i < nprog; i++) spec[8 + i] = prog[i];
    VA_TRY(va_kernel_get(ctx, any16 ? "elementwise_f16" : "elementwise", spec, 32, 0, &p.kern));
    return run_block(&p, shape, off);
}

/* Registry adapter. iparams[0]: nprog | result << 8; iparams[1..12]: instructions, two per
 * parameter (low word first). fparams: the scalar operands. Inputs: 1..6; output: out. */
static va_status op_elementwise(va_stream *s, const va_tensor *in, int n_in, const va_tensor *out, int n_out,
                                const int64_t *ip, int n_i, const double *fp, int n_f) {
    if (n_out != 1 || n_i < 1) return va_fail(VA_ERROR_INVALID_ARGUMENT, "elementwise takes inputs -> out and a program");
    int nprog = (int)(ip[0] & 0xff), result = (int)((ip[0] >> 8) & 0xff);
    if (nprog > 24 || 1 + (nprog + 1) / 2 > n_i)
        return va_fail(VA_ERROR_INVALID_ARGUMENT, "elementwise: program of %d instructions incomplete", nprog);
    uint32_t prog[24];
    for (int i = 0; i < nprog; i++) prog[i] = (uint32_t)((uint64_t)ip[1 + i / 2] >> (32 * (i % 2)));
    float k[16];
    for (int i = 0; i < n_f && i < 16; i++) k[i] = (float)fp[i];
    return va_elementwise(s, prog, nprog, result, in, n_in, k, n_f < 16 ? n_f : 16, &out[0]);
}
VA_REGISTER_OP(elementwise, op_elementwise);
