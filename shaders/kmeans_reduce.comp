// kmeans_reduce.comp — the second half of a Lloyd update's sums: one workgroup per work chunk (at
// most S rows of one label, in the order kmeans_sort.comp scattered them) sums w·(x − shift) for
// every feature, plus w itself as column d, into one partial row per chunk. Sums are exact 64-bit
// fixed point — each term scaled by a power of two per column (SC, chosen by the caller so no sum
// can overflow) and rounded once — so they do not depend on the order of the rows: the result is
// the same on every run and device, without float atomics. 64-bit words are (low, high) uint pairs
// with carry, so no shaderInt64 is needed. Threads: FB columns x (WG / FB) lanes of rows.
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
layout(constant_id = 3) const uint FB = 256;   // columns per pass (a power of two <= WG)

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

void main() {
    const uint g = gl_WorkGroupID.x;
    const uint k = pc.k;
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
    const uint ncol = pc.d + 1u;
    for (uint fb = 0u; fb < ncol; fb += FB) {
        uint f = fb + fl;
        uvec2 acc = uvec2(0u);
        if (f < ncol) {
            float s = SC[pc.sc_off + f];
            for (uint pos = p0 + lane; pos < p1; pos += LN) {
                uint i = PERM[pos];
                float w = pc.has_w != 0u ? W[pc.w_off + i] : 1.0;
                float v = f < pc.d ? (float(X[pc.x_off + i * pc.ldx + f]) - MU[pc.mu_off + f]) * w : w;
                acc = add64(acc, to_fixed(v * s));
            }
        }
        red[t] = acc;
        barrier();
        for (uint h = LN / 2u; h > 0u; h >>= 1) {
            if (lane < h) red[t] = add64(red[t], red[t + h * FB]);
            barrier();
        }
        if (lane == 0u && f < ncol) P[g * ncol + f] = red[t];
        barrier();
    }
}
