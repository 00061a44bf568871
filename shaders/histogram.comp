// histogram.comp — counts of a contiguous run of values per bin, bin i holding E[i] <= x < E[i+1]
// and the last bin also x == its upper edge; values outside [E[0], hi] and NaN are not counted.
// E holds the edges rounded up to float32 and hi the last edge rounded down, so float32
// comparisons decide exactly as comparisons with the float64 edges would. UNIFORM bins take
// an arithmetic first guess that is then corrected against E (as NumPy does); other edges are
// found by binary search. Counts gather in shared memory (up to SHARED_BINS bins) or directly
// in global memory, and land in int64 counters as (low, high) word pairs with carry. CLEAR = 1
// zeroes the counters instead.
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
    if (local_bins) {
        for (uint i = t; i < pc.nbins; i += WG) cnt[i] = 0u;
        barrier();
    }
    uint start = gl_WorkGroupID.x * pc.per_group;
    uint end = min(pc.n, start + pc.per_group);
    for (uint j = start + t; j < end; j += WG) {
        float x = float(X[pc.x_off + j]);
        // NaN fails both tests, so it is never counted.
        if (!(x >= pc.lo && x <= pc.hi)) continue;
        uint bin = find_bin(x);   // at most hi: the last bin is closed
        if (local_bins) atomicAdd(cnt[bin], 1u);
        else add_global(bin, 1u);
    }
    if (local_bins) {
        barrier();
        for (uint i = t; i < pc.nbins; i += WG)
            if (cnt[i] != 0u) add_global(i, cnt[i]);
    }
}
