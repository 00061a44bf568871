// knn_coop.comp — the distance tiles of the k-nearest-neighbour search on cooperative matrices
// (tensor cores), from float16 copies of the queries (A: scaled by -2 for squared L2, -1 for the
// inner product and cosine) and of the database rows (B), with float32 accumulation.
// A workgroup takes BM queries and a range of database tiles of BN rows. Its queries stay in
// registers as A fragments (the whole depth when it fits one chunk of CSTEPS x KK); database tiles
// are staged through two shared-memory buffers (the next is fetched into registers while the
// current one is multiplied: one barrier per stage). Every accumulator starts from a query term
// plus a row term (broadcast tiles in shared memory), so that after the depth loop it holds
//   MODE 0: approx + slack, an upper bound of the exact distance (the sample pass). Each subgroup
//           keeps the running minimum of every accumulator element over its fragments and tiles
//           (registers only; NaN ignored, padding columns +inf) and writes those minima: NN
//           values per query, each the least bound over a set of sample rows (one column of
//           each of its fragments) that no other value shares, to O[row * ldo + blk * NN + c],
//           blk = workgroup.y * SGN + the subgroup's column. The k-th smallest of all the values
//           of a row therefore bounds its k-th nearest distance from above, as the k-th of the
//           whole sample would, and the sample's bounds are never written out.
//   MODE 1: approx - slack - tau, a margin: the pair is a candidate where it is <= 0 or NaN,
// approx being the distance from the float16 copies and slack its rounding bound (knn_coop.glsl).
// A subgroup tests its fragments' elements where they are (integer tests on the bits, so NaN is a
// candidate under any compiler); only a fragment that holds a candidate goes through shared memory
// to find where (each invocation reads NE consecutive elements of it as vec4s). Candidates (value:
// the margin) are staged per subgroup in shared memory and appended to their queries' lists a
// batch at a time, so the latency of the global atomics is paid once per batch rather than once
// per candidate. (Testing the elements where they are and placing them with a position map
// instead keeps unrolled per-element code in the loop; it ran three times slower on an H100.)
// See csrc/ops/knn.c for the whole search.
//! requires: cooperative_matrix
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_vote : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint SGM = 4;      // subgroups along the queries
layout(constant_id = 4) const uint SGN = 1;      // subgroups along the database rows
layout(constant_id = 5) const uint FM = 2;       // query fragments per subgroup
layout(constant_id = 6) const uint FN = 4;       // database fragments per subgroup
layout(constant_id = 7) const uint MM = 16;
layout(constant_id = 8) const uint NN = 16;
layout(constant_id = 9) const uint KK = 16;
layout(constant_id = 10) const uint CSTEPS = 8;  // KK-steps of a depth chunk
layout(constant_id = 11) const bool ONE_CHUNK = true;
layout(constant_id = 12) const uint METRIC = 0;  // 0 squared L2, 1 inner product, 2 cosine
layout(constant_id = 13) const uint MODE = 1;       // 2: MODE 1 without its output (a profiling probe)
layout(constant_id = 14) const uint SG = 32;     // the subgroup size the pipeline requires

layout(binding = 0) readonly buffer QH_ { uvec4 QH[]; };      // (rows, ldq) float16 queries, 8 per uvec4
layout(binding = 1) readonly buffer XH_ { uvec4 XH[]; };      // (nb, ldx) float16 database rows
layout(binding = 2) writeonly buffer O_ { float O[]; };       // MODE 0: (nq, ldo) minima of upper bounds
layout(binding = 2) writeonly buffer CAND_ { uvec2 CAND[]; }; // MODE 1: (nq, cap) (margin bits, index)
layout(binding = 3) buffer CNT_ { uint CNT[]; };              // per query candidate count
layout(binding = 4) readonly buffer QN_ { float QNRM[]; };
layout(binding = 5) readonly buffer XN_ { float XNRM[]; };
layout(binding = 6) readonly buffer TAU_ { float TAU[]; };    // MODE 1: TAU[tau_off + row * tau_ld]

layout(push_constant) uniform PC {
    uint nq, nb, nchunks;
    uint ldq, ldx, q_off, x_off;   // in uvec4s
    uint qn_off, xn_off, tau_off, tau_ld;
    uint o_off, ldo;               // MODE 0: O; MODE 1: CAND, ldo = cap
    uint col_base;                 // MODE 1: database index of row 0
    uint tiles_per_wg;
    uint zero_counts;              // MODE 0: clear CNT for this block's queries
    float c0, c1, c2h, c3;
} pc;
#define C0 pc.c0
#define C1 pc.c1
#define C2H pc.c2h
#define C3 pc.c3

#include "knn_coop.glsl"

const uint SGS = SGM * SGN;
const uint BM = SGM * FM * MM, BN = SGN * FN * NN;
const uint RQ = CSTEPS * KK / 8;          // uvec4s of a row's depth chunk
const uint PITCH = RQ + 1;                // padded row pitch in shared memory
const uint B_SZ = BN * PITCH;
const uint CT_SZ = BN / 4;                // the BN row terms (a stride-0 load broadcasts them)
const uint STAGE = B_SZ + CT_SZ;
shared uvec4 SH[2 * STAGE];
const uint NE = MM * NN / SG;             // elements of a fragment per invocation
shared vec4 CS[SGS * MM * NN / 4];        // a fragment of each subgroup
const uint SCAP = 64;                     // staged candidates per subgroup
shared uvec2 STG[SGS * SCAP];             // (margin bits, database index)
shared uint STR[SGS * SCAP];              // query row
shared uint stg_n[SGS];

// A candidate: its margin is <= 0 (sign bit set, or +0) or NaN; (bits - 1) >= 0x7F800000 says
// exactly that, and the largest of them says it for a whole fragment.
uint flag_bits(float v) { return floatBitsToUint(v) - 1u; }

float row_term(uint r) {
    if (r >= pc.nq) return MODE == 1 ? uintBitsToFloat(0x7F800000u) : 0.0;
    float n = QNRM[pc.qn_off + r];
    if (MODE == 0) return coop_base_q(n) + coop_slack_q(n, 0.0);
    float tau = TAU[pc.tau_off + r * pc.tau_ld];
    return coop_base_q(n) - tau - coop_slack_q(n, tau);
}

float col_term(uint j) {
    if (j >= pc.nb) return uintBitsToFloat(0x7F800000u);   // no candidate (MODE 1), no minimum (MODE 0)
    float n = XNRM[pc.xn_off + j];
    float s = coop_slack_x(n);
    return MODE == 0 ? coop_base_x(n) + s : coop_base_x(n) - s;
}

void emit(uint r, uvec2 e) {
    uint slot = atomicAdd(CNT[r], 1u);
    if (slot < pc.ldo) CAND[pc.o_off + r * pc.ldo + slot] = e;
}

// Appends this subgroup's staged candidates to their lists (subgroup-uniform control flow).
void flush(uint sg, uint lane) {
    subgroupMemoryBarrierShared();
    subgroupBarrier();
    uint n = min(stg_n[sg], SCAP);
    for (uint e = lane; e < n; e += SG) emit(STR[sg * SCAP + e], STG[sg * SCAP + e]);
    subgroupBarrier();
    if (lane == 0) stg_n[sg] = 0u;
    subgroupMemoryBarrierShared();
    subgroupBarrier();
}

void main() {
    const uint nthreads = SGS * SG;
    const uint t = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint row0 = gl_WorkGroupID.x * BM;
    const uint wm0 = (sg / SGN) * FM * MM, wn0 = (sg % SGN) * FN * NN;
    const uint ntiles = (pc.nb + BN - 1) / BN;
    const uint tile0 = gl_WorkGroupID.y * pc.tiles_per_wg;
    const uint tile1 = min(tile0 + pc.tiles_per_wg, ntiles);

    // The query terms: BM floats at the start of SH (a stride-0 column-major load broadcasts them
    // along the rows of a fragment), then in registers.
    for (uint r = t; r < BM; r += nthreads) {
        SH[r / 4][r % 4] = floatBitsToUint(row_term(row0 + r));
        if (MODE == 0 && pc.zero_counts != 0 && gl_WorkGroupID.y == 0 && row0 + r < pc.nq) CNT[row0 + r] = 0u;
    }
    barrier();
    coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> rf[FM];
    [[unroll]] for (uint i = 0; i < FM; i++)
        coopMatLoad(rf[i], SH, (wm0 + i * MM) / 4, 0, gl_CooperativeMatrixLayoutColumnMajor);
    if (lane == 0) stg_n[sg] = 0u;
    barrier();
    if (tile0 >= tile1 && MODE != 0) return;
    const uint nstages = tile0 < tile1 ? (tile1 - tile0) * pc.nchunks : 0u;
    coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> mn[FM];   // MODE 0's minima
    [[unroll]] for (uint i = 0; i < FM; i++) mn[i] = coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator>(uintBitsToFloat(0x7F800000u));

    coopmat<float16_t, gl_ScopeSubgroup, MM, KK, gl_MatrixUseA> fa[FM][CSTEPS];
    coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> acc[FM][FN];

#define LOAD_A(chunk)                                                                               \
    [[unroll]] for (uint i = 0; i < FM; i++)                                                        \
        [[unroll]] for (uint s = 0; s < CSTEPS; s++)                                                \
            coopMatLoad(fa[i][s], QH, pc.q_off + (row0 + wm0 + i * MM) * pc.ldq + (chunk) * RQ + s * (KK / 8), \
                        pc.ldq, gl_CooperativeMatrixLayoutRowMajor);

    const uint B8N = BN * RQ;
    const uint RB = (B8N + nthreads - 1) / nthreads;
    const uint RC = (BN + nthreads - 1) / nthreads;
    uvec4 rb[RB];
    float rc[RC];

    // Stage st: database tile tile0 + st / nchunks, depth chunk st % nchunks, into registers.
#define FETCH(st)                                                                                   \
    {                                                                                               \
        uint tl = tile0 + (st) / pc.nchunks, ch = (st) % pc.nchunks;                                \
        [[unroll]] for (uint s = 0; s < RB; s++) {                                                  \
            uint q = s * nthreads + t;                                                              \
            uint j = tl * BN + q / RQ;                                                              \
            rb[s] = q < B8N && j < pc.nb ? XH[pc.x_off + j * pc.ldx + ch * RQ + q % RQ] : uvec4(0); \
        }                                                                                           \
        [[unroll]] for (uint s = 0; s < RC; s++) {                                                  \
            uint q = s * nthreads + t;                                                              \
            rc[s] = q < BN ? col_term(tl * BN + q) : 0.0;                                           \
        }                                                                                           \
    }
#define STORE(buf)                                                                                  \
    [[unroll]] for (uint s = 0; s < RB; s++) {                                                      \
        uint q = s * nthreads + t;                                                                  \
        if (q < B8N) SH[(buf) * STAGE + (q / RQ) * PITCH + q % RQ] = rb[s];                         \
    }                                                                                               \
    [[unroll]] for (uint s = 0; s < RC; s++) {                                                      \
        uint q = s * nthreads + t;                                                                  \
        if (q < BN) SH[(buf) * STAGE + B_SZ + q / 4][q % 4] = floatBitsToUint(rc[s]);              \
    }

    if (ONE_CHUNK && nstages > 0) { LOAD_A(0) }
    if (nstages > 0) {
        FETCH(0u)
        STORE(0u)
    }
    barrier();
    uint cur = 0;
    for (uint st = 0; st < nstages; st++) {
        const uint tl = tile0 + st / pc.nchunks, ch = st % pc.nchunks;
        const bool more = st + 1 < nstages;
        if (more) FETCH(st + 1)
        if (!ONE_CHUNK) { LOAD_A(ch) }
        if (ch == 0) {
            [[unroll]] for (uint j = 0; j < FN; j++) {
                coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> cf;
                coopMatLoad(cf, SH, cur * STAGE + B_SZ + (wn0 + j * NN) / 4, 0,
                            gl_CooperativeMatrixLayoutRowMajor);
                [[unroll]] for (uint i = 0; i < FM; i++) acc[i][j] = rf[i] + cf;
            }
        }
        [[unroll]] for (uint s = 0; s < CSTEPS; s++) {
            coopmat<float16_t, gl_ScopeSubgroup, KK, NN, gl_MatrixUseB> fb[FN];
            [[unroll]] for (uint j = 0; j < FN; j++)
                coopMatLoad(fb[j], SH, cur * STAGE + (wn0 + j * NN) * PITCH + s * (KK / 8), PITCH,
                            gl_CooperativeMatrixLayoutColumnMajor);
            [[unroll]] for (uint i = 0; i < FM; i++)
                [[unroll]] for (uint j = 0; j < FN; j++)
                    acc[i][j] = coopMatMulAdd(fa[i][s], fb[j], acc[i][j]);
        }
        if (ch == pc.nchunks - 1) {
            const uint col0 = tl * BN;
            [[unroll]] for (uint i = 0; i < FM; i++)
                [[unroll]] for (uint j = 0; j < FN; j++) {
                    const uint r0 = row0 + wm0 + i * MM, c0 = col0 + wn0 + j * NN;
                    if (MODE == 0) {   // the running minima, element by element (same layout)
                        for (int e = 0; e < mn[i].length(); e++) {
                            float v = acc[i][j][e];
                            if (v < mn[i][e]) mn[i][e] = v;
                        }
                        continue;
                    }
                    {
                        uint m = 0u;
                        for (int e = 0; e < acc[i][j].length(); e++) m = max(m, flag_bits(acc[i][j][e]));
                        if (MODE == 2) {   // the probe: the GEMM and this test only
                            if (m == 0x12345u) CNT[0] = m;
                            continue;
                        }
                        if (!subgroupAny(m >= 0x7F800000u)) continue;
                    }
                    // Through this subgroup's patch of shared memory, to know each value's place:
                    // this invocation takes elements lane * NE ... + NE - 1 (row-major).
                    coopMatStore(acc[i][j], CS, sg * (MM * NN / 4), NN / 4, gl_CooperativeMatrixLayoutRowMajor);
                    subgroupMemoryBarrierShared();
                    subgroupBarrier();
                    const uint cb = sg * (MM * NN / 4) + lane * (NE / 4);
                    {
                        uint mask = 0u;
                        [[unroll]] for (uint q = 0; q < NE / 4; q++) {
                            uvec4 f = floatBitsToUint(CS[cb + q]) - 1u;
                            [[unroll]] for (uint c4 = 0; c4 < 4; c4++)
                                if (f[c4] >= 0x7F800000u) mask |= 1u << (q * 4 + c4);
                        }
                        while (mask != 0u) {
                            uint b = uint(findLSB(mask));
                            mask &= mask - 1u;
                            uint e = lane * NE + b, r = r0 + e / NN, c = c0 + e % NN;
                            if (r < pc.nq && c < pc.nb) {
                                float v = CS[cb + b / 4][b % 4];
                                uint slot = atomicAdd(stg_n[sg], 1u);
                                uvec2 entry = uvec2(floatBitsToUint(v), pc.col_base + c);
                                if (slot < SCAP) {
                                    STG[sg * SCAP + slot] = entry;
                                    STR[sg * SCAP + slot] = r;
                                } else {
                                    emit(r, entry);   // the stage is full (a burst of candidates)
                                }
                            }
                        }
                    }
                    subgroupMemoryBarrierShared();
                    subgroupBarrier();
                }
            if (MODE == 1) {
                subgroupMemoryBarrierShared();
                subgroupBarrier();
                if (stg_n[sg] >= SCAP / 2) flush(sg, lane);
            }
        }
        if (more) { STORE(1 - cur) }
        barrier();
        cur = 1 - cur;
    }
    if (MODE == 1) flush(sg, lane);
    if (MODE == 0) {   // the minima: column c of block blk is O[row * ldo + blk * NN + c]
        const uint blk = gl_WorkGroupID.y * SGN + sg % SGN, cb = sg * (MM * NN / 4);
        [[unroll]] for (uint i = 0; i < FM; i++) {
            const uint r0 = row0 + wm0 + i * MM;
            if (r0 + MM <= pc.nq) {
                coopMatStore(mn[i], O, pc.o_off + r0 * pc.ldo + blk * NN, pc.ldo, gl_CooperativeMatrixLayoutRowMajor);
                continue;
            }
            coopMatStore(mn[i], CS, cb, NN / 4, gl_CooperativeMatrixLayoutRowMajor);
            subgroupMemoryBarrierShared();
            subgroupBarrier();
            for (uint e = lane; e < MM * NN; e += SG)
                if (r0 + e / NN < pc.nq) O[pc.o_off + (r0 + e / NN) * pc.ldo + blk * NN + e % NN] = CS[cb + e / 4][e % 4];
            subgroupMemoryBarrierShared();
            subgroupBarrier();
        }
    }
}
