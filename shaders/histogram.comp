// histogram.comp — counts of a contiguous run of values per bin, bin i holding E[i] <= x < E[i+1]
// and the last bin also x == its upper edge; values outside [E[0], hi] and NaN are not counted.
// E holds the edges rounded up to float32 and hi the last edge rounded down, so float32
// comparisons decide exactly as comparisons with the float64 edges would. UNIFORM bins take
// an arithmetic first guess that is then corrected against E (as NumPy does); other edges are
// found by binary search. Counts gather in shared memory (up to SHARED_BINS bins) or directly
// in global memory, and land in int64 counters as (low, high) word pairs with carry. In shared
// memory, few bins get several copies (up to 8, rows padded by a word so that a bin's copies sit
// in different banks) and neighbouring threads count into different copies: values that fall in
// the same bin, the usual case for a peaked distribution, then rarely meet on one counter. CLEAR
// = 1 zeroes the counters instead.
//! variant f16: -DIN_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(IN_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint UNIFORM = 1;
layout(constant_id = 4) const uint SHARED_BINS = 4096;
layout(constant_id = 5) const uint CLEAR = 0;

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 1) readonly buffer E_ { float E[]; };
layout(binding = 2) buffer N_ { uint N[]; };

layout(push_constant) uniform PC {
    uint x_off, n;        // window remainder, values in this dispatch
    uint nbins, per_group;
    float lo, hi, scale;  // counted range [lo, hi]; nbins / (last edge - first edge)
} pc;

shared uint cnt[SHARED_BINS];
// Uniform bins, up to PAIR_BINS of them: each bin's (lower, upper) edge as one shared-memory pair,
// so the usual bin (the arithmetic guess, right) costs one 8-byte read.
layout(constant_id = 6) const uint PAIR_BINS = 1;   // what shared memory beside the counters holds
shared vec2 pair[UNIFORM == 1u ? PAIR_BINS : 1u];

uint find_bin(float x) {
    uint nb = pc.nbins;
    if (UNIFORM == 1u) {
        float f = (x - E[0]) * pc.scale;
        uint i = uint(clamp(f, 0.0, float(nb - 1u)));
        if (x < E[i] && i > 0u) i--;
        else if (i + 1u < nb && x >= E[i + 1u]) i++;
        // A guess off by more than one (huge ranges) walks on.
        while (i > 0u && x < E[i]) i--;
        while (i + 1u < nb && x >= E[i + 1u]) i++;
        return i;
    }
    // The last edge <= x among E[0..nb-1].
    uint a = 0u, b = nb - 1u;
    while (a < b) {
        uint m = (a + b + 1u) >> 1u;
        if (E[m] <= x) a = m; else b = m - 1u;
    }
    return a;
}

// find_bin for uniform bins whose edge pairs are in shared memory.
uint find_bin_pairs(float x) {
    uint nb = pc.nbins;
    float f = (x - pair[0].x) * pc.scale;
    uint i = uint(clamp(f, 0.0, float(nb - 1u)));
    vec2 e = pair[i];
    if (x < e.x) {
        while (i > 0u && x < pair[i].x) i--;
    } else if (x >= e.y && i + 1u < nb) {
        while (i + 1u < nb && x >= pair[i].y) i++;
    }
    return i;
}

void add_global(uint bin, uint v) {
    uint old = atomicAdd(N[2u * bin], v);
    if (old + v < old) atomicAdd(N[2u * bin + 1u], 1u);
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    uint t = gl_LocalInvocationID.x;
    if (CLEAR == 1u) {
        uint i = gl_WorkGroupID.x * WG + t;
        if (i < 2u * pc.nbins) N[i] = 0u;
        return;
    }
    bool local_bins = pc.nbins <= SHARED_BINS;
    uint copies = local_bins ? clamp(SHARED_BINS / (pc.nbins + 1u), 1u, 8u) : 1u;
    uint stride = copies > 1u ? pc.nbins + 1u : pc.nbins;
    uint mine = (t % copies) * stride;
    bool pairs = UNIFORM == 1u && pc.nbins <= PAIR_BINS && PAIR_BINS > 1u;
    if (pairs)
        for (uint i = t; i < pc.nbins; i += WG) pair[i] = vec2(E[i], E[i + 1u]);
    if (local_bins)
        for (uint i = t; i < copies * stride; i += WG) cnt[i] = 0u;
    barrier();
    uint start = gl_WorkGroupID.x * pc.per_group;
    uint end = min(pc.n, start + pc.per_group);
    // Four values in flight per thread, then their bins.
    uint j = start + t;
    for (; j + 3u * WG < end; j += 4u * WG) {
        float v[4];
        [[unroll]] for (uint u = 0u; u < 4u; u++) v[u] = float(X[pc.x_off + j + u * WG]);
        [[unroll]] for (uint u = 0u; u < 4u; u++) {
            float x = v[u];
            // NaN fails both tests, so it is never counted.
            if (!(x >= pc.lo && x <= pc.hi)) continue;
            uint bin = pairs ? find_bin_pairs(x) : find_bin(x);   // at most hi: the last bin is closed
            if (local_bins) atomicAdd(cnt[mine + bin], 1u);
            else add_global(bin, 1u);
        }
    }
    for (; j < end; j += WG) {
        float x = float(X[pc.x_off + j]);
        if (!(x >= pc.lo && x <= pc.hi)) continue;
        uint bin = pairs ? find_bin_pairs(x) : find_bin(x);
        if (local_bins) atomicAdd(cnt[mine + bin], 1u);
        else add_global(bin, 1u);
    }
    if (local_bins) {
        barrier();
        for (uint i = t; i < pc.nbins; i += WG) {
            uint c = 0u;
            for (uint k = 0u; k < copies; k++) c += cnt[k * stride + i];
            if (c != 0u) add_global(i, c);
        }
    }
}
