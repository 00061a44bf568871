// kmeans_coop.comp — the nearest centre of every row of X on cooperative matrices (tensor cores),
// certified: float16 copies of the rows, a = -2 (x − shift), and of the centres c
// (knn_coop_prep.comp, with the squared norm of what each copy's rounding lost) give every score
// ‖c‖² − 2 x·c within a rigorous bound of its exact value, and a row whose best centre is provably
// the nearest takes it; the others are listed for the float32 assignment (kmeans_assign.comp's
// bounds variant reading the list).
// The bound: with ra = a − ã and rc = c − c̃ the rounding residuals (measured), the products of the
// copies differ from the exact ones by |a·c − ã·c̃| <= |ra| |c| + |ã| |rc|, and by AM-GM (any
// rho1, rho2 > 0) that is at most (|ra|²/rho1 + rho1 |c|²)/2 + (rho2 |ã|² + |rc|²/rho2)/2, a row
// part plus a centre part. The float32 sums (the tensor cores', the norms' and the starting value's)
// add at most c1 (|x|² + |c|²) (c1 = (2d + 32) 2^-22, several times their worst case). So
//   |approx − exact| <= slack_row(x) + slack_col(c).
// A workgroup takes BM rows, kept in registers as A fragments, and sweeps every centre tile (BN
// centres, staged through two shared-memory buffers as knn_coop.comp does). Each accumulator starts
// from its centre's term ‖c‖² − slack_col(c), so after the depth loop it holds s = approx − slack_col,
// a lower bound of the exact score up to slack_row. Every invocation keeps, for each element
// position of its fragments, the smallest s, its centre and the second smallest (element-wise on the
// accumulators: positions are the same in every fragment of one type); at the end these go through
// shared memory, so that each row merges its 16 columns (ties: the lower centre). With S1 at centre
// j and S2 the second smallest over all centres, every other centre's exact score is at least
// S2 − slack_row and centre j's at most S1 + 2 slack_col(c_j) + slack_row: where the first exceeds
// the second, j is the nearest centre (an exact tie never qualifies). Such a row gets label j; the
// `dist` variant then sums its exact squared distance Σ (x − shift − c)² in kmeans_exact.glsl's
// order, as the float32 kernels do, so every row gets the same bits whichever kernel served it.
// NaN or overflowing rows and non-finite centres are never certified. See csrc/ops/kmeans.c.
//! requires: cooperative_matrix
//! variant dist: -DDIST
//! variant dist_f16: -DDIST -DX_F16
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require
#if defined(X_F16)
#define ELEM_X float16_t
#else
#define ELEM_X float
#endif
const uint NONE = 0xFFFFFFFFu;

#if defined(DIST)
// The `dist` variant: the exact squared distance of every settled row to its centre (rows whose
// label is NONE are left to the float32 kernel), in kmeans_exact.glsl's order: 32 invocations per
// row, one lane sum each (coalesced reads), then one of them adds up the 32 in order.
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;   // 256 x 1 x 1
layout(constant_id = 3) const bool HAS_SHIFT = false;
layout(binding = 0) readonly buffer X_ { ELEM_X X[]; };
layout(binding = 1) readonly buffer MU_ { float MU[]; };
layout(binding = 2) readonly buffer C_ { float C[]; };
layout(binding = 3) readonly buffer L_ { uint L[]; };
layout(binding = 4) writeonly buffer DS_ { float DS[]; };
layout(push_constant) uniform PC { uint n, d, ldx, x_off, mu_off, ldc, c_off, l_off, ds_off; } pc;
#include "kmeans_exact.glsl"
shared float part[gl_WorkGroupSize.x];
void main() {
    const uint t = gl_LocalInvocationID.x, p = t % 32u;
    const uint r = (gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x) * (gl_WorkGroupSize.x / 32u) + t / 32u;
    uint j = NONE;
    if (r < pc.n) j = L[pc.l_off + r];
    float v = 0.0;
    if (j != NONE) v = exact_lane(pc.x_off + r * pc.ldx, pc.mu_off, pc.c_off + j * pc.ldc, pc.d, p);
    part[t] = v;
    barrier();
    if (p == 0u && j != NONE) {
        float q[4];
        [[unroll]] for (uint h = 0; h < 4u; h++) {
            q[h] = 0.0;
            [[unroll]] for (uint e = 8u * h; e < 8u * h + 8u; e++) q[h] += part[t + e];
        }
        DS[pc.ds_off + r] = exact_groups(q[0], q[1], q[2], q[3]);
    }
}
#else

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint SGM = 4;      // subgroups along the rows
layout(constant_id = 4) const uint FM = 2;       // row fragments per subgroup
layout(constant_id = 5) const uint FN = 2;       // centre fragments per subgroup
layout(constant_id = 6) const uint MM = 16;
layout(constant_id = 7) const uint NN = 16;
layout(constant_id = 8) const uint KK = 16;
layout(constant_id = 9) const uint CSTEPS = 8;   // KK-steps of a depth chunk
layout(constant_id = 10) const bool ONE_CHUNK = true;
layout(constant_id = 11) const uint SG = 32;     // the subgroup size the pipeline requires
layout(constant_id = 12) const uint PROBE = 0;   // 1: only the smallest per position (timing only)

layout(binding = 0) readonly buffer QH_ { uvec4 QH[]; };      // (block rows, ldq) float16 -2 (x − shift)
layout(binding = 1) readonly buffer CH_ { uvec4 CH[]; };      // (k, ldq) float16 centres
layout(binding = 2) readonly buffer QN_ { float QNRM[]; };    // the block's rows' squared norms (NaN: bad)
layout(binding = 3) readonly buffer CN_ { float CNRM[]; };    // the centres' squared norms (NaN: bad)
layout(binding = 4) writeonly buffer L_ { uint L[]; };        // the window's labels (NONE: listed)
layout(binding = 5) writeonly buffer LIST_ { uint LIST[]; };  // rows (of the window) left to float32
layout(binding = 6) buffer CS_ { uint CS[]; };                // CS[cnt_idx]: the list's length
layout(binding = 7) readonly buffer QR_ { float QRES[]; };    // squared norms of the rows' residuals
layout(binding = 8) readonly buffer CR_ { float CRES[]; };    // and the centres'

layout(push_constant) uniform PC {
    uint rows, row_base;           // rows of this block, its first row in the window
    uint k, nchunks, ldq;          // centres, depth chunks, row pitch of QH / CH in uvec4s
    uint l_off, list_off, cnt_idx;
    float rho1, rho2, c1, rmul;    // rmul: allowance for the float32 sums of the residual norms
} pc;

bool finite(float v) { return (floatBitsToUint(v) & 0x7F800000u) != 0x7F800000u; }
// nx = ‖x − shift‖² (NaN for a row whose copy is not finite), r2 = ‖ra‖² (a = -2 (x − shift)).
float slack_row(float nx, float r2) {
    float ra = r2 * pc.rmul, at = 2.0 * sqrt(nx) + sqrt(ra);
    return ra / (2.0 * pc.rho1) + 0.5 * pc.rho2 * at * at + pc.c1 * nx + 1e-30;
}
float slack_col(float nc, float r2) {
    return 0.5 * pc.rho1 * nc + r2 * pc.rmul / (2.0 * pc.rho2) + pc.c1 * nc;
}

#define INF uintBitsToFloat(0x7F800000u)
const uint BM = SGM * FM * MM, BN = FN * NN;
const uint RQ = CSTEPS * KK / 8;          // uvec4s of a row's depth chunk
const uint PITCH = RQ + 1;                // padded row pitch in shared memory
const uint B_SZ = BN * PITCH;
const uint CT_SZ = BN / 4;                // the BN centre terms (a stride-0 load broadcasts them)
const uint STAGE = B_SZ + CT_SZ;
const uint PATCH = MM * NN / 4;           // uvec4s of one fragment in shared memory
const uint SH_SZ = 2 * STAGE > SGM * 3 * PATCH ? 2 * STAGE : SGM * 3 * PATCH;
shared uvec4 SH[SH_SZ];
shared float w1[BM], w2[BM];
shared uint wc[BM];
shared uint bad_cols;

// s's starting value for centre j: ‖c‖² − slack_col(c) (NaN for a centre whose copy is not
// finite); +inf past the last centre.
float col_term(uint j) {
    if (j >= pc.k) return INF;
    float n = CNRM[j];
    return n - slack_col(n, CRES[j]);
}

void main() {
    const uint nthreads = SGM * SG;
    const uint t = gl_LocalInvocationID.x, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint row0 = gl_WorkGroupID.x * BM;          // in the block
    const uint wm0 = sg * FM * MM;
    const uint ntiles = (pc.k + BN - 1) / BN;
    const uint nstages = ntiles * pc.nchunks;
    if (t == 0) bad_cols = 0u;

    coopmat<float16_t, gl_ScopeSubgroup, MM, KK, gl_MatrixUseA> fa[FM][CSTEPS];
    coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> acc[FM][FN];
    // Per element position: the smallest s, its centre (tile * FN + fragment, as a float) and the
    // second smallest s.
    coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> m1[FM], m2[FM], mi[FM];
    [[unroll]] for (uint i = 0; i < FM; i++) {
        m1[i] = coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator>(INF);
        m2[i] = coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator>(INF);
        mi[i] = coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator>(0.0);
    }

#define LOAD_A(chunk)                                                                               \
    [[unroll]] for (uint i = 0; i < FM; i++)                                                        \
        [[unroll]] for (uint s = 0; s < CSTEPS; s++)                                                \
            coopMatLoad(fa[i][s], QH, (row0 + wm0 + i * MM) * pc.ldq + (chunk) * RQ + s * (KK / 8), \
                        pc.ldq, gl_CooperativeMatrixLayoutRowMajor);

    const uint B8N = BN * RQ;
    const uint RB = (B8N + nthreads - 1) / nthreads;
    const uint RC = (BN + nthreads - 1) / nthreads;
    uvec4 rb[RB];
    float rc[RC];
    bool bad = false;

    // Stage st: centre tile st / nchunks, depth chunk st % nchunks, into registers.
#define FETCH(st)                                                                                   \
    {                                                                                               \
        uint tl = (st) / pc.nchunks, ch = (st) % pc.nchunks;                                        \
        [[unroll]] for (uint s = 0; s < RB; s++) {                                                  \
            uint q = s * nthreads + t;                                                              \
            uint j = tl * BN + q / RQ;                                                              \
            rb[s] = q < B8N && j < pc.k ? CH[j * pc.ldq + ch * RQ + q % RQ] : uvec4(0);             \
        }                                                                                           \
        [[unroll]] for (uint s = 0; s < RC; s++) {                                                  \
            uint q = s * nthreads + t;                                                              \
            rc[s] = q < BN ? col_term(tl * BN + q) : 0.0;                                           \
            bad = bad || (q < BN && tl * BN + q < pc.k && !finite(rc[s]));                     \
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

    if (ONE_CHUNK) { LOAD_A(0) }
    FETCH(0u)
    STORE(0u)
    barrier();
    uint cur = 0;
    for (uint st = 0; st < nstages; st++) {
        const uint tl = st / pc.nchunks, ch = st % pc.nchunks;
        const bool more = st + 1 < nstages;
        if (more) FETCH(st + 1)
        if (!ONE_CHUNK) { LOAD_A(ch) }
        if (ch == 0) {
            [[unroll]] for (uint j = 0; j < FN; j++) {
                coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> cf;
                coopMatLoad(cf, SH, cur * STAGE + B_SZ + (j * NN) / 4, 0, gl_CooperativeMatrixLayoutRowMajor);
                [[unroll]] for (uint i = 0; i < FM; i++) acc[i][j] = cf;
            }
        }
        [[unroll]] for (uint s = 0; s < CSTEPS; s++) {
            coopmat<float16_t, gl_ScopeSubgroup, KK, NN, gl_MatrixUseB> fb[FN];
            [[unroll]] for (uint j = 0; j < FN; j++)
                coopMatLoad(fb[j], SH, cur * STAGE + (j * NN) * PITCH + s * (KK / 8), PITCH,
                            gl_CooperativeMatrixLayoutColumnMajor);
            [[unroll]] for (uint i = 0; i < FM; i++)
                [[unroll]] for (uint j = 0; j < FN; j++)
                    acc[i][j] = coopMatMulAdd(fa[i][s], fb[j], acc[i][j]);
        }
        if (ch == pc.nchunks - 1) {
            // The tile's scores into the running minima; fragments in increasing centre order and
            // a strict < keep the lower centre of equal values.
            [[unroll]] for (uint i = 0; i < FM; i++)
                [[unroll]] for (uint j = 0; j < FN; j++) {
                    const float code = float(tl * FN + j);
                    if (PROBE == 1) {
                        for (int e = 0; e < acc[i][j].length(); e++) m1[i][e] = min(m1[i][e], acc[i][j][e]);
                        continue;
                    }
                    for (int e = 0; e < acc[i][j].length(); e++) {
                        float v = acc[i][j][e], a = m1[i][e];
                        bool lt = v < a;
                        m2[i][e] = lt ? a : min(m2[i][e], v);
                        m1[i][e] = lt ? v : a;
                        mi[i][e] = lt ? code : mi[i][e];
                    }
                }
        }
        if (more) { STORE(1 - cur) }
        barrier();
        cur = 1 - cur;
    }
    if (bad) atomicOr(bad_cols, 1u);

    // Each row's 16 columns of minima, through this subgroup's patch of shared memory.
    const uint pb = sg * 3 * PATCH;
    [[unroll]] for (uint i = 0; i < FM; i++) {
        coopMatStore(m1[i], SH, pb, NN / 4, gl_CooperativeMatrixLayoutRowMajor);
        coopMatStore(m2[i], SH, pb + PATCH, NN / 4, gl_CooperativeMatrixLayoutRowMajor);
        coopMatStore(mi[i], SH, pb + 2 * PATCH, NN / 4, gl_CooperativeMatrixLayoutRowMajor);
        subgroupMemoryBarrierShared();
        subgroupBarrier();
        for (uint rr = lane; rr < MM; rr += SG) {
            float b1 = INF, b2 = INF;
            uint bc = NONE;
            for (uint c = 0; c < NN; c++) {
                uint at = rr * (NN / 4) + c / 4;
                float v1 = uintBitsToFloat(SH[pb + at][c % 4]);
                float v2 = uintBitsToFloat(SH[pb + PATCH + at][c % 4]);
                uint code = uint(uintBitsToFloat(SH[pb + 2 * PATCH + at][c % 4]));
                uint col = (code / FN) * BN + (code % FN) * NN + c;
                if (v1 < b1 || (v1 == b1 && v1 < INF && col < bc)) {
                    b2 = min(b1, min(b2, v2));
                    b1 = v1;
                    bc = col;
                } else {
                    b2 = min(b2, min(v1, v2));
                }
            }
            const uint r = wm0 + i * MM + rr;
            w1[r] = b1;
            w2[r] = b2;
            wc[r] = bc;
        }
        subgroupMemoryBarrierShared();
        subgroupBarrier();
    }
    barrier();

    // Certify: a settled row takes its centre; the others are listed (label NONE until then).
    for (uint r = t; r < BM; r += nthreads) {
        const uint br = row0 + r;
        if (br >= pc.rows) continue;
        const float s1 = w1[r], s2 = w2[r];
        const uint j = wc[r];
        bool ok = false;
        if (bad_cols == 0u && j < pc.k) {
            float sx = slack_row(QNRM[br], QRES[br]), sc = slack_col(CNRM[j], CRES[j]);
            // The comparison's own rounding: 2^-21 of the magnitudes.
            float margin = 2.0 * (sx + sc) + (abs(s1) + abs(s2)) * (1.0 / 2097152.0);
            ok = s2 - s1 > margin;   // false for NaN
        }
        L[pc.l_off + pc.row_base + br] = ok ? j : NONE;
        if (!ok) {
            uint slot = atomicAdd(CS[pc.cnt_idx], 1u);
            LIST[pc.list_off + slot] = pc.row_base + br;
        }
    }
}
#endif
