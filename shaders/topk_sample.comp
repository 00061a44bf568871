// topk_sample.comp — the sample of topk's filter path (topk.c). Row r's full blocks of 8 entries
// are cut into nsb strata of G or G + 1 consecutive blocks; one block at a pseudo-random position
// in each stratum is copied, as float32, into row r of the sample matrix (nsb * 8 entries).
// Stratified, so a sorted row is sampled evenly along its length; random within a stratum, so a
// periodic row is not sampled in phase; whole blocks of 32 bytes (16 for float16), so a block
// costs one memory sector. One thread per block; the thread of block 0 also zeroes the row's
// candidate count for the filter pass that follows.
//! variant f16: -DX_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(local_size_x_id = 0) in;

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 1) writeonly buffer S_ { float S[]; };
layout(binding = 2) writeonly buffer N_ { uint CNT[]; };

layout(push_constant) uniform PC {
    uint m;          // rows
    uint nblk;       // full blocks of 8 entries in a row
    uint nsb;        // sampled blocks per row (strata)
    uint g;          // nblk / nsb
    uint ldx, x_off; // rows of x: stride and first entry (elements)
    uint lds, s_off; // rows of the sample
    uint c_off;      // the candidate counts
    uint seed;
} pc;

// A 32-bit integer hash with good avalanche (xor-shift-multiply, two rounds).
uint mix(uint x) {
    x ^= x >> 16;
    x *= 0x7FEB352Du;
    x ^= x >> 15;
    x *= 0x846CA68Bu;
    x ^= x >> 16;
    return x;
}

void main() {
    const uint row = gl_WorkGroupID.y;
    const uint b = gl_GlobalInvocationID.x;
    if (row >= pc.m) return;
    if (b == 0u) CNT[pc.c_off + row] = 0u;
    if (b >= pc.nsb) return;
    // Stratum b: blocks [lo, hi); the nblk - nsb * g spare blocks spread one per stratum.
    // b * rem < nsb * g <= nblk < 2^29: no overflow.
    const uint rem = pc.nblk - pc.nsb * pc.g;
    const uint lo = b * pc.g + (b * rem) / pc.nsb;
    const uint hi = (b + 1u) * pc.g + ((b + 1u) * rem) / pc.nsb;
    uint pick, unused;
    umulExtended(mix(b * 0x9E3779B9u ^ mix(row + pc.seed)), hi - lo, pick, unused);
    const uint src = pc.x_off + row * pc.ldx + (lo + pick) * 8u;
    const uint dst = pc.s_off + row * pc.lds + b * 8u;
    [[unroll]] for (uint i = 0u; i < 8u; i++) S[dst + i] = float(X[src + i]);
}
