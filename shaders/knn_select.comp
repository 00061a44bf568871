// knn_select.comp — the k best of each query's candidate list (written by matmul.comp's KNN
// epilogue in arrival order): one workgroup per query sorts its candidates in shared memory as
// 64-bit keys (distance as an order-preserving uint, then database index, so ties go to the lower
// index and NaN after every number) with a bitonic network, and writes the first k. A query whose
// list overflowed (more candidates than slots), or holds fewer than pc.need, is flagged for an
// exact recomputation. topk's filter path (topk.c) uses it too: a row's candidates are its entries
// (value bits, column), OUT 3 ranks the largest first. I64 writes the indices as int64, -1 where
// there is none, so that the caller's int64 result needs no conversion on the host.
// REFINE variants (the tensor-core search, knn_coop.comp): a candidate's value is its margin, from
// which its distance from the float16 copies and that distance's rounding bound give an upper and
// a lower bound of the exact distance (knn_coop.glsl). The list is sorted by upper bound; tau2, the
// k-th of them, bounds the k-th best exact distance, so only the candidates whose lower bound is
// within tau2 (about k of them) get their exact distance computed (as knn_epilogue.glsl's direct())
// from the original rows; those are sorted and the first k written. A query is flagged where its
// list overflowed, where more than XCAP candidates had to be computed, or where fewer than `need`
// of the computed distances are finite.
//! variant refine: -DREFINE
//! variant refine_a16: -DREFINE -DQ_F16
//! variant refine_b16: -DREFINE -DX_F16
//! variant refine_f16: -DREFINE -DQ_F16 -DX_F16
#version 450
#if defined(REFINE)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CAP = 2048;     // slots per query, a power of two
layout(constant_id = 2) const uint OUT = 0;        // 0 value, 1 sqrt(value), 2 -value, 3 value largest first
layout(constant_id = 5) const bool I64 = false;    // I as int64 (two words each, -1 for none), else uint32

layout(binding = 0) readonly buffer CAND_ { uvec2 CAND[]; };
layout(binding = 1) readonly buffer CNT_ { uint CNT[]; };
layout(binding = 2) writeonly buffer D_ { float D[]; };
layout(binding = 3) writeonly buffer I_ { uint I[]; };
layout(binding = 4) writeonly buffer F_ { uint F[]; };

layout(push_constant) uniform PC {
    uint nq, k;
    uint d_off, ldd, i_off, ldi, f_off;
    uint need;   // fewer candidates (REFINE: finite exact distances) than this: flagged too
#if defined(REFINE)
    uint qn_off, xn_off, tau_off, tau_ld;
    uint d, ldq, q_off, ldx, x_off;
    float c0, c1, c2h, c3;
#endif
} pc;

shared uvec2 keys[CAP];

#if defined(REFINE)
#if defined(Q_F16)
#define ELEM_Q float16_t
#else
#define ELEM_Q float
#endif
#if defined(X_F16)
#define ELEM_X float16_t
#else
#define ELEM_X float
#endif
layout(constant_id = 3) const uint METRIC = 0;
layout(constant_id = 4) const uint XCAP = 1024;
layout(binding = 5) readonly buffer QN_ { float QNRM[]; };
layout(binding = 6) readonly buffer XN_ { float XNRM[]; };
layout(binding = 7) readonly buffer TAU_ { float TAU[]; };
layout(binding = 8) readonly buffer Q_ { ELEM_Q Q[]; };
layout(binding = 9) readonly buffer X_ { ELEM_X X[]; };
#define C0 pc.c0
#define C1 pc.c1
#define C2H pc.c2h
#define C3 pc.c3
#include "knn_coop.glsl"

shared uvec2 xkeys[XCAP];
shared uint n_exact, n_finite;

// The exact distance of query q to database row j, summed as knn_epilogue.glsl's direct().
float exact(uint q, uint j) {
    vec4 s = vec4(0.0);
    uint ai = pc.q_off + q * pc.ldq, bi = pc.x_off + j * pc.ldx, p = 0;
    for (; p + 4 <= pc.d; p += 4) {
        vec4 a = vec4(float(Q[ai + p]), float(Q[ai + p + 1]), float(Q[ai + p + 2]), float(Q[ai + p + 3]));
        vec4 b = vec4(float(X[bi + p]), float(X[bi + p + 1]), float(X[bi + p + 2]), float(X[bi + p + 3]));
        if (METRIC == 0) {
            vec4 t = a - b;
            s = fma(t, t, s);
        } else {
            s = fma(a, b, s);
        }
    }
    for (; p < pc.d; p++) {
        float a = float(Q[ai + p]), b = float(X[bi + p]);
        s.x = METRIC == 0 ? fma(a - b, a - b, s.x) : fma(a, b, s.x);
    }
    float r = (s.x + s.y) + (s.z + s.w);
    if (METRIC == 1) return -r;
    if (METRIC == 2) return 1.0 - r * QNRM[pc.qn_off + q] * XNRM[pc.xn_off + j];
    return r;
}
#endif

const uvec2 NONE = uvec2(0xFFFFFFFFu, 0xFFFFFFFFu);

// Keys of numbers lie in [0x007FFFFF, 0xFF800000], so inverting one (OUT 3) keeps it there.
uint order_key(uint bits) {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFFFFEu;   // NaN: after every number
    if (bits == 0x80000000u) bits = 0u;                              // -0 is 0
    uint key = (bits & 0x80000000u) != 0u ? ~bits : bits | 0x80000000u;
    return OUT == 3 ? ~key : key;
}

float key_value(uint key) {
    if (key == 0xFFFFFFFEu) return uintBitsToFloat(0x7FC00000u);
    if (OUT == 3) key = ~key;
    return uintBitsToFloat((key & 0x80000000u) != 0u ? key & 0x7FFFFFFFu : ~key);
}

bool less(uvec2 a, uvec2 b) { return a.x < b.x || (a.x == b.x && a.y < b.y); }

// Sorts the n (a power of two) keys of shared array ARR ascending, with the whole workgroup.
#define BITONIC_SORT(ARR, n)                                                                        \
    for (uint size = 2; size <= (n); size <<= 1) {                                                  \
        for (uint stride = size >> 1; stride > 0; stride >>= 1) {                                   \
            for (uint h = t; h < (n) / 2; h += WG) {                                                \
                uint i = 2 * h - (h & (stride - 1));                                                \
                uint j = i + stride;                                                                \
                uvec2 a = ARR[i], b = ARR[j];                                                       \
                if (less(b, a) == ((i & size) == 0)) {                                              \
                    ARR[i] = b;                                                                     \
                    ARR[j] = a;                                                                     \
                }                                                                                   \
            }                                                                                       \
            barrier();                                                                              \
        }                                                                                           \
    }

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint t = gl_LocalInvocationID.x;
    const uint q = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (q >= pc.nq) return;
    uint count = CNT[q];
    uint n = min(count, CAP);
    uint p2 = 1;
    while (p2 < max(n, pc.k)) p2 <<= 1;
    p2 = min(p2, CAP);
#if defined(REFINE)
    float qn = QNRM[pc.qn_off + q], tau = TAU[pc.tau_off + q * pc.tau_ld];
    float qterm = tau + coop_slack_q(qn, tau);
#endif
    for (uint i = t; i < p2; i += WG) {
        uvec2 c = i < n ? CAND[q * CAP + i] : NONE;
#if defined(REFINE)
        if (i < n) {
            // The upper bound: the margin plus what the candidate pass took off, plus the slack.
            float xn = XNRM[pc.xn_off + c.y];
            float approx = uintBitsToFloat(c.x) + qterm + coop_slack_x(xn);
            c.x = floatBitsToUint(approx + coop_slack_pair(qn, xn, tau));
        }
#endif
        keys[i] = i < n ? uvec2(order_key(c.x), c.y) : NONE;
    }
    barrier();
    BITONIC_SORT(keys, p2)
#if defined(REFINE)
    // tau2: the k-th smallest upper bound (NaN where there are not k of them: all are computed).
    if (t == 0) { n_exact = 0u; n_finite = 0u; }
    barrier();
    float tau2 = pc.k <= n ? key_value(keys[pc.k - 1].x) : uintBitsToFloat(0x7FC00000u);
    for (uint i = t; i < n; i += WG) {
        uvec2 c = keys[i];
        float xn = XNRM[pc.xn_off + c.y];
        float lower = key_value(c.x) - 2.0 * coop_slack_pair(qn, xn, tau);
        // Skipped only where both are finite numbers and lower > tau2 (a NaN bound is computed).
        if (coop_finite(lower) && coop_finite(tau2) && lower > tau2) continue;
        uint slot = atomicAdd(n_exact, 1u);
        if (slot < XCAP) {
            float v = exact(q, c.y);
            if (coop_finite(v)) atomicAdd(n_finite, 1u);
            xkeys[slot] = uvec2(order_key(floatBitsToUint(v)), c.y);
        }
    }
    barrier();
    uint ne = min(n_exact, XCAP);
    uint p2x = 1;
    while (p2x < max(ne, pc.k)) p2x <<= 1;
    for (uint i = ne + t; i < p2x; i += WG) xkeys[i] = NONE;
    barrier();
    BITONIC_SORT(xkeys, p2x)
#define SORTED xkeys
#define SORTED_N p2x
#else
#define SORTED keys
#define SORTED_N p2
#endif
    for (uint i = t; i < pc.k; i += WG) {
        uvec2 c = i < SORTED_N ? SORTED[i] : NONE;
        float v;
        uint idx;
        if (c == NONE) {
            v = OUT >= 2 ? uintBitsToFloat(0xFF800000u) : uintBitsToFloat(0x7F800000u);
            idx = 0xFFFFFFFFu;
        } else {
            v = key_value(c.x);
            if (OUT == 1) v = sqrt(v);
            else if (OUT == 2) v = -v;
            idx = c.y;
        }
        D[pc.d_off + q * pc.ldd + i] = v;
        if (I64) {
            uint at = 2u * (pc.i_off + q * pc.ldi + i);
            I[at] = idx;
            I[at + 1u] = idx == 0xFFFFFFFFu ? 0xFFFFFFFFu : 0u;
        } else {
            I[pc.i_off + q * pc.ldi + i] = idx;
        }
    }
#if defined(REFINE)
    if (t == 0) F[pc.f_off + q] = count > CAP || n_exact > XCAP || n_finite < pc.need ? 1u : 0u;
#else
    if (t == 0) F[pc.f_off + q] = count > CAP || count < pc.need ? 1u : 0u;
#endif
}
