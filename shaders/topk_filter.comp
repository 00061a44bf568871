// topk_filter.comp — the streaming pass of topk's filter path (topk.c): every entry of a row at
// least as good as the row's bound tau (v <= tau; v >= tau for the largest) is appended to the
// row's candidate list as (float32 bits, column + idx_base). Workgroups tile (row chunks) x rows;
// each thread keeps UNROLL 16-byte loads in flight, tests their entries against tau, and the
// subgroup appends what passed with one atomicAdd (a prefix sum hands out the slots). The count
// goes on past the list's cap, so knn_select can flag an overflow. Candidates are rare (a few per
// thousand entries), so a passing entry is read again entry-wise when it is written out instead
// of being kept in an indexed register array.
//
// Entries are numbered from the binding's start; the row's whole 16-byte vectors are read as such,
// the up to VW - 1 entries before the first and after the last one entry-wise by chunk 0. An entry
// that is NaN never passes a number bound (if the compiler assumes no NaN and lets one through,
// knn_select still ranks it last); a bound that is NaN passes nothing, so the row is recomputed.
//! variant f16: -DX_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_KHR_shader_subgroup_ballot : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
const uint VW = 8u;   // entries per 16-byte vector
#else
#define ELEM float
const uint VW = 4u;
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint LARGEST = 0;
layout(constant_id = 2) const uint UNROLL = 4;    // 16-byte loads in flight per thread (UNROLL * VW <= 32)

layout(binding = 0) readonly buffer XV_ { uvec4 XV[]; };    // the rows as 16-byte vectors
layout(binding = 1) readonly buffer X_ { ELEM X[]; };       // the same rows entry by entry
layout(binding = 2) readonly buffer T_ { float TAU[]; };
layout(binding = 3) writeonly buffer C_ { uvec2 CAND[]; };
layout(binding = 4) buffer N_ { uint CNT[]; };

layout(push_constant) uniform PC {
    uint m, n;
    uint ldx, x_off;     // rows of x (entries)
    uint t_ld, t_off;    // tau of row r: TAU[t_off + r * t_ld]
    uint cap, c_off;     // candidate slots per row; first slot
    uint n_off;          // first count
    uint vpc;            // vectors per chunk
    uint idx_base;
} pc;

bool passes(float v, float tau) { return LARGEST == 1 ? v >= tau : v <= tau; }

// Appends this thread's passing entries (bit i of mask: entry e0 + (i / VW) * ustride + i % VW);
// every invocation of the workgroup calls it together.
void append(uint row, uint mask, uint e0, uint ustride, uint a) {
    const uint cnt = bitCount(mask);
    if (!subgroupAny(cnt != 0u)) return;
    const uint before = subgroupExclusiveAdd(cnt);
    const uint total = subgroupAdd(cnt);
    uint base = 0u;
    if (subgroupElect()) base = atomicAdd(CNT[pc.n_off + row], total);
    uint slot = subgroupBroadcastFirst(base) + before;
    const uint cb = pc.c_off + row * pc.cap;
    while (mask != 0u) {
        const uint i = uint(findLSB(mask));
        mask &= mask - 1u;
        const uint e = e0 + (i / VW) * ustride + i % VW;
        if (slot < pc.cap) CAND[cb + slot] = uvec2(floatBitsToUint(float(X[e])), e - a + pc.idx_base);
        slot++;
    }
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint t = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.y;
    if (row >= pc.m) return;
    const float tau = TAU[pc.t_off + row * pc.t_ld];
    const uint a = pc.x_off + row * pc.ldx;          // the row's first entry
    const uint v0 = (a + VW - 1u) / VW;              // its first whole vector
    const uint v1 = max((a + pc.n) / VW, v0);        // one past its last
    const uint vb = v0 + gl_WorkGroupID.x * pc.vpc;
    const uint ve = min(vb + pc.vpc, v1);
    const uint step = WG * UNROLL;
    const uint iters = ve > vb ? (ve - vb + step - 1u) / step : 0u;
    for (uint it = 0u; it < iters; it++) {
        const uint v = vb + it * step + t;
        uint mask = 0u;
        [[unroll]] for (uint u = 0u; u < UNROLL; u++) {
            const uint vi = v + u * WG;
            if (vi < ve) {
                const uvec4 w = XV[vi];
#if defined(X_F16)
                [[unroll]] for (uint q = 0u; q < 4u; q++) {
                    const vec2 h = unpackHalf2x16(w[q]);
                    if (passes(h.x, tau)) mask |= 1u << (u * 8u + 2u * q);
                    if (passes(h.y, tau)) mask |= 1u << (u * 8u + 2u * q + 1u);
                }
#else
                const vec4 f = uintBitsToFloat(w);
                [[unroll]] for (uint q = 0u; q < 4u; q++)
                    if (passes(f[q], tau)) mask |= 1u << (u * 4u + q);
#endif
            }
        }
        append(row, mask, v * VW, WG * VW, a);
    }
    if (gl_WorkGroupID.x == 0u) {
        // The entries outside whole vectors: [a, a + nh) and [tail, a + n).
        const uint nh = min(v0 * VW, a + pc.n) - a;
        const uint tail = max(v1 * VW, a + nh);
        const uint nt = a + pc.n > tail ? a + pc.n - tail : 0u;
        const uint e = t < nh ? a + t : tail + (t - nh);
        const bool mine = t < nh + nt;
        append(row, mine && passes(float(X[mine ? e : a]), tau) ? 1u : 0u, e, 0u, a);
    }
}
