// kmeans_reduce.comp — the second half of a Lloyd update's sums: one workgroup per work chunk (at
// most S rows of one label, in the order kmeans_sort.comp scattered them) sums w·(x − shift) for
// every feature, plus w itself as column d, into one partial row per chunk. Sums are exact 64-bit
// fixed point — each term scaled by a power of two per column (SC, chosen by the caller so no sum
// can overflow) and rounded once — so they do not depend on the order of the rows: the result is
// the same on every run and device, without float atomics. 64-bit words are (low, high) uint pairs
// with carry, so no shaderInt64 is needed. Threads: FB columns x (WG / FB) lanes of rows, four rows
// in flight per thread; the weights ride along with the first pass.
//! variant f16: -DX_F16
#version 450
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM_X float16_t
#else
#define ELEM_X float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint FB = 256;   // feature columns per pass (a power of two <= WG)

layout(binding = 0) readonly buffer X_ { ELEM_X X[]; };
layout(binding = 1) readonly buffer W_ { float W[]; };
layout(binding = 2) readonly buffer MU_ { float MU[]; };
layout(binding = 3) readonly buffer SC_ { float SC[]; };
layout(binding = 4) readonly buffer OFF_ { uint OFF[]; };   // offsets[k + 1] | cursor[k] | chunk bases[k + 1]
layout(binding = 5) readonly buffer CNT_ { uint CNT[]; };   // counts[k] | changed, empty, work chunks
layout(binding = 6) readonly buffer PERM_ { uint PERM[]; };
layout(binding = 7) writeonly buffer P_ { uvec2 P[]; };     // (chunks, d + 1) partial sums

layout(push_constant) uniform PC {
    uint k, d, ldx, x_off;
    uint w_off, has_w, mu_off, sc_off;
    uint S;
} pc;

const uint WG = gl_WorkGroupSize.x;
const uint LN = WG / FB;
shared uvec2 red[WG];
shared uvec2 redw[LN];

uvec2 add64(uvec2 a, uvec2 b) {
    uint c;
    uint lo = uaddCarry(a.x, b.x, c);
    return uvec2(lo, a.y + b.y + c);
}

// round(v) as a two's-complement 64-bit integer, |v| < 2^63. The split is exact: a − hi·2^32 has
// at most 24 significant bits.
uvec2 to_fixed(float v) {
    float a = abs(v);
    float hf = floor(a * (1.0 / 4294967296.0));
    uint hi = uint(hf), lo = uint(roundEven(a - hf * 4294967296.0));
    if (v < 0.0) {
        lo = ~lo + 1u;
        hi = ~hi + (lo == 0u ? 1u : 0u);
    }
    return uvec2(lo, hi);
}

float wt(uint i) { return pc.has_w != 0u ? W[pc.w_off + i] : 1.0; }

void main() {
    const uint g = gl_WorkGroupID.x;
    const uint k = pc.k, d = pc.d;
    if (g >= CNT[k + 2u]) return;
    // The label of chunk g: cbase[j] <= g < cbase[j + 1] (labels with no rows have no chunks).
    const uint cb = 2u * k + 1u;
    uint lo = 0u, hi = k;
    while (hi - lo > 1u) {
        uint m = (lo + hi) >> 1;
        if (OFF[cb + m] <= g) lo = m; else hi = m;
    }
    const uint j = lo;
    const uint p0 = OFF[j] + (g - OFF[cb + j]) * pc.S;
    const uint p1 = min(p0 + pc.S, OFF[j + 1u]);
    const uint t = gl_LocalInvocationID.x;
    const uint fl = t % FB, lane = t / FB;
    const float sw = SC[pc.sc_off + d];
    for (uint fb = 0u; fb < d; fb += FB) {
        const uint f = fb + fl;
        const bool valid = f < d;
        const bool wcol = fb == 0u && fl == 0u;   // these threads also sum the weights (column d)
        const float s = valid ? SC[pc.sc_off + f] : 0.0, m = valid ? MU[pc.mu_off + f] : 0.0;
        uvec2 acc = uvec2(0u), accw = uvec2(0u);
        uint pos = p0 + lane;
        // Four rows per step: four independent loads in flight per thread.
        for (; pos + 3u * LN < p1; pos += 4u * LN) {
            uint i0 = PERM[pos], i1 = PERM[pos + LN], i2 = PERM[pos + 2u * LN], i3 = PERM[pos + 3u * LN];
            float x0 = 0.0, x1 = 0.0, x2 = 0.0, x3 = 0.0;
            if (valid) {
                x0 = float(X[pc.x_off + i0 * pc.ldx + f]);
                x1 = float(X[pc.x_off + i1 * pc.ldx + f]);
                x2 = float(X[pc.x_off + i2 * pc.ldx + f]);
                x3 = float(X[pc.x_off + i3 * pc.ldx + f]);
            }
            float w0 = wt(i0), w1 = wt(i1), w2 = wt(i2), w3 = wt(i3);
            acc = add64(add64(acc, to_fixed((x0 - m) * w0 * s)), add64(to_fixed((x1 - m) * w1 * s), to_fixed((x2 - m) * w2 * s)));
            acc = add64(acc, to_fixed((x3 - m) * w3 * s));
            if (wcol) accw = add64(add64(accw, to_fixed(w0 * sw)), add64(add64(to_fixed(w1 * sw), to_fixed(w2 * sw)), to_fixed(w3 * sw)));
        }
        for (; pos < p1; pos += LN) {
            uint i = PERM[pos];
            float w = wt(i);
            if (valid) acc = add64(acc, to_fixed((float(X[pc.x_off + i * pc.ldx + f]) - m) * w * s));
            if (wcol) accw = add64(accw, to_fixed(w * sw));
        }
        red[t] = acc;
        if (fb == 0u && fl == 0u) redw[lane] = accw;
        barrier();
        for (uint h = LN / 2u; h > 0u; h >>= 1) {
            if (lane < h) {
                red[t] = add64(red[t], red[t + h * FB]);
                if (fb == 0u && fl == 0u) redw[lane] = add64(redw[lane], redw[lane + h]);
            }
            barrier();
        }
        if (lane == 0u && valid) P[g * (d + 1u) + f] = red[t];
        if (t == 0u && fb == 0u) P[g * (d + 1u) + d] = redw[0];
        barrier();
    }
}
