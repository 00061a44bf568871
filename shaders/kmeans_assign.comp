// kmeans_assign.comp — the nearest centre of every row of X (k-means assignment), fused: one
// workgroup takes BM rows and sweeps the centre tiles of its split, each tile a register-tiled
// GEMM (BM x BN x d, BK-deep slices of X and Cᵀ through two shared-memory buffers, as
// matmul.comp's SIMT path) whose epilogue folds score = ‖c‖² − 2 x·c into a running (min, index)
// per row kept in registers; no distance matrix is ever written. The CT threads sharing a row then
// merge their candidates (ties: lowest centre index), and the winner's squared distance is
// recomputed directly, Σ (x − shift − c)², so it carries no GEMM-form cancellation.
// With several centre splits (few rows, many centres) each split writes its (score, index) per row
// and the `finish` variant merges them and recomputes the distances. The `prep` variant writes
// Cᵀ padded to a multiple of 4 columns, with the squared norms as row d (+inf in the padding).
// X is float32 or float16 (f16 variants), any row stride; centres float32.
// The `bounds` variants serve a Lloyd step with Hamerly's bounds (kmeans_bounds.comp): rows are
// read through a list of the rows that need work (its length on the device: workgroups past it
// return at once), or all rows; each row also keeps its second-smallest score, from which a
// rigorous lower bound of its distance to every other centre is written (see lower_bound).
//! variant f16: -DX_F16
//! variant finish: -DFINISH
//! variant finish_f16: -DFINISH -DX_F16
//! variant prep: -DPREP
//! variant bounds: -DBOUNDS
//! variant bounds_f16: -DBOUNDS -DX_F16
//! variant finish_bounds: -DFINISH -DBOUNDS
//! variant finish_bounds_f16: -DFINISH -DBOUNDS -DX_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#extension GL_GOOGLE_include_directive : require
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM_X float16_t
#define ELEM4_X f16vec4
#else
#define ELEM_X float
#define ELEM4_X vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 128;
layout(constant_id = 4) const uint BN = 128;
layout(constant_id = 5) const uint BK = 8;
layout(constant_id = 6) const uint TM = 8;
layout(constant_id = 7) const uint TN = 8;
// VEC_A: d, the row stride of X and its window remainder are multiples of 4: X loads 4 at a time.
layout(constant_id = 8) const bool VEC_A = false;
// FINAL: one split covers every centre tile, so this kernel writes labels and distances itself.
layout(constant_id = 9) const bool FINAL = true;
layout(constant_id = 10) const bool HAS_SHIFT = false;
layout(constant_id = 11) const bool HAS_DISTS = true;
// prep: the caller gave the squared norms (else they are computed here).
layout(constant_id = 12) const bool HAS_CN = false;
// bounds: rows come from LIST (its length in CS[pc.cnt_idx]); else every row of the dispatch.
layout(constant_id = 13) const bool HAS_LIST = false;

#define INF uintBitsToFloat(0x7F800000u)
const uint NONE = 0xFFFFFFFFu;

layout(binding = 0) readonly buffer X_ { ELEM_X X[]; };
layout(binding = 0) readonly buffer X4_ { ELEM4_X X4[]; };
#if defined(PREP)
layout(binding = 1) writeonly buffer CT_ { float CTS[]; };
#else
layout(binding = 1) readonly buffer CT_ { float CTS[]; };
layout(binding = 1) readonly buffer CT4_ { vec4 CTS4[]; };
#endif
#if defined(BOUNDS)
// Bounds state (kmeans_bounds.comp): [1] an upper bound of every centre's squared norm (float
// bits), [cnt_idx] the length of this window's list.
layout(binding = 2) readonly buffer CS_ { uint CS[]; };
#else
layout(binding = 2) readonly buffer CN_ { float CN[]; };     // prep: the given squared norms
#endif
layout(binding = 3) readonly buffer MU_ { float MU[]; };     // subtracted from every row of X
layout(binding = 4) writeonly buffer L_ { uint L[]; };
layout(binding = 5) writeonly buffer DS_ { float DS[]; };
#if defined(BOUNDS)
#define PT_T uvec4                                           // (score bits, index, second score bits, -)
#else
#define PT_T uvec2                                           // (score bits, index) per (row, split)
#endif
#if defined(FINISH)
layout(binding = 6) readonly buffer PT_ { PT_T PT[]; };
#else
layout(binding = 6) writeonly buffer PT_ { PT_T PT[]; };
#endif
layout(binding = 7) readonly buffer C_ { float C[]; };       // centres, row-major
#if defined(BOUNDS)
layout(binding = 8) readonly buffer LIST_ { uint LIST[]; };  // rows (of this window) to assign
layout(binding = 9) writeonly buffer LB_ { float LB[]; };    // lower bound to any other centre
#endif

layout(push_constant) uniform PC {
    uint n, d, k;          // rows of this dispatch, features, centres
    uint ldx, x_off;       // X row stride and window remainder (elements)
    uint ldct;             // row pitch of Cᵀ (k rounded up to 4)
    uint tps, ntiles;      // centre tiles per split, centre tiles in all
    uint mu_off, l_off, ds_off;
    uint ldc, c_off;       // centres: row stride and window remainder
    uint nsplit;           // splits (partials per row)
    uint cn_off;           // prep: window remainder of the given norms
    uint list_off, lb_off; // bounds: window remainders of LIST and LB
    uint cnt_idx;          // bounds: CS word holding the list's length
    float slack;           // bounds: relative rounding allowance of a GEMM-form score
} pc;

#if defined(PREP)
void main() {
    uint j = gl_GlobalInvocationID.x;
    if (j >= pc.ldct) return;
    float s = 0.0;
    for (uint f = 0; f < pc.d; f++) {
        float v = j < pc.k ? C[pc.c_off + j * pc.ldc + f] : 0.0;
        CTS[f * pc.ldct + j] = v;
        s = fma(v, v, s);
    }
    CTS[pc.d * pc.ldct + j] = j < pc.k ? (HAS_CN ? CN[pc.cn_off + j] : s) : INF;
}
#else

// The winner of each row of the block, then its exact distance (shared by the fused kernel and
// the finish pass): G = WG / BM threads per row (1, 2 or 4), in kmeans_exact.glsl's order.
shared uint win[BM];
shared float red[gl_WorkGroupSize.x];
#if defined(BOUNDS)
#define KMEANS_XSQ
shared float red2[gl_WorkGroupSize.x];
shared uint rmap[BM];      // row of X (in this window) of each row of the block; NONE: none
shared float sec[BM];      // second-smallest score of each row of the block
#endif
#include "kmeans_exact.glsl"

#if defined(BOUNDS)
// A lower bound of ‖x − c_j‖ for every centre j but the winner, from the second-smallest GEMM-form
// score s2 = min over j ≠ winner of fl(‖c_j‖² − 2 x·c_j) and xx = fl(‖x‖²): each score is within
// E = slack (‖x‖² + max ‖c‖²) of its exact value (slack: four times the bound of the dot product's,
// the norms' and the last rounding's errors), and the sums below lose less than 2^-20 each; a
// denormal floor covers devices that flush them. +inf when there is no other centre.
float lower_bound(float s2, float xx) {
    const float rho = float(2u * pc.d + 16u) * (1.0 / 16777216.0);
    const float tiny = float(pc.d + 16u) * 1.0e-37;
    float cnmax = uintBitsToFloat(CS[1]);
    float e = pc.slack * (xx * (1.0 + rho) + tiny + cnmax) + tiny;
    float l2 = (s2 + xx * (1.0 - rho)) - e;
    return l2 > 0.0 ? sqrt(l2 * (1.0 - 2.0e-6)) * (1.0 - 2.0e-6) : 0.0;
}
#endif

void exact_rows(uint row0) {
    const uint WG = gl_WorkGroupSize.x;
    const uint G = WG / BM;
    const uint t = gl_LocalInvocationID.x;
    const uint r = t / G, g = t % G;
#if defined(BOUNDS)
    const uint gr = r < BM ? rmap[r] : NONE;
    float xs = 0.0;
#else
    const uint gr = row0 + r;
#endif
    float s = 0.0;
    if (r < BM && gr < pc.n) {
        uint j = win[r];
#if defined(BOUNDS)
        s = exact_partial(pc.x_off + gr * pc.ldx, pc.mu_off, pc.c_off + j * pc.ldc, pc.d, g, G, xs);
#else
        s = exact_partial(pc.x_off + gr * pc.ldx, pc.mu_off, pc.c_off + j * pc.ldc, pc.d, g, G);
#endif
    }
    red[t] = s;
#if defined(BOUNDS)
    red2[t] = xs;
#endif
    barrier();
    if (r < BM && g == 0u && gr < pc.n) {
        float tot = exact_combine(red[t], G > 1u ? red[t + 1u] : 0.0, G > 2u ? red[t + 2u] : 0.0,
                                  G > 2u ? red[t + 3u] : 0.0, G);
        L[pc.l_off + gr] = win[r];
        if (HAS_DISTS) DS[pc.ds_off + gr] = tot;
#if defined(BOUNDS)
        float xx = 0.0;
        for (uint q = 0; q < G; q++) xx += red2[t + q];
        LB[pc.lb_off + gr] = lower_bound(sec[r], xx);
#endif
    }
}

#if defined(BOUNDS)
// rmap for the block starting at list position row0; the list's length (or the rows).
uint rows_total() { return HAS_LIST ? CS[pc.cnt_idx] : pc.n; }
void load_rmap(uint row0, uint total) {
    for (uint q = gl_LocalInvocationID.x; q < BM; q += gl_WorkGroupSize.x) {
        uint p = row0 + q;
        rmap[q] = p < total ? (HAS_LIST ? LIST[pc.list_off + p] : p) : NONE;
    }
}
#endif

// (v, i) replaces (bv, bi): a smaller score, or an equal one at a lower centre index. NaN never.
bool better(float v, uint i, float bv, uint bi) {
    return v < bv || (v == bv && i < bi);
}

#if defined(FINISH)
void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint row0 = gl_WorkGroupID.y * BM;
#if defined(BOUNDS)
    const uint total = rows_total();
    if (row0 >= total) return;
    load_rmap(row0, total);
#else
    const uint total = pc.n;
#endif
    if (t < BM) {
        uint gr = row0 + t;   // a row of the dispatch (bounds: a place in the list)
        float bv = INF, b2 = INF;
        uint bi = NONE;
        if (gr < total) {
            for (uint s = 0; s < pc.nsplit; s++) {
                PT_T p = PT[gr * pc.nsplit + s];
                float v = uintBitsToFloat(p.x);
#if defined(BOUNDS)
                float v2 = uintBitsToFloat(p.z);
                if (better(v, p.y, bv, bi)) { b2 = min(bv, min(b2, v2)); bv = v; bi = p.y; }
                else b2 = min(b2, min(v, v2));
#else
                if (better(v, p.y, bv, bi)) { bv = v; bi = p.y; }
#endif
            }
        }
        win[t] = bi == NONE ? 0u : bi;
#if defined(BOUNDS)
        sec[t] = b2;
#endif
    }
    barrier();
    exact_rows(row0);
}
#else

const uint RT = BM / TM;        // threads along the rows
const uint CT = BN / TN;        // threads along the centres
const uint MB = TM / 4, NB = TN / 4;
const uint WG = RT * CT;

shared vec4 As[2 * BK * (BM / 4)];
shared vec4 Bs[2 * BK * (BN / 4)];
// Candidates handed between the CT threads of a row during the final merge.
shared float Rv[BM * (CT / 2 > 0 ? CT / 2 : 1)];
shared uint Ri[BM * (CT / 2 > 0 ? CT / 2 : 1)];
#if defined(BOUNDS)
shared float Rv2[BM * (CT / 2 > 0 ? CT / 2 : 1)];
#endif

const uint NA4 = (BM * BK / 4 + WG - 1) / WG;
const uint NB4 = (BK * BN / 4 + WG - 1) / WG;

float x_at(uint i, uint p) {
    if (i >= pc.n || p >= pc.d) return 0.0;
    float v = float(X[pc.x_off + i * pc.ldx + p]);
    return HAS_SHIFT ? v - MU[pc.mu_off + p] : v;
}

// The thread's scores of the current centre tile and its running minima (module scope, so the
// tile epilogue below and both main loops share them; every index is a constant after unrolling).
vec4 acc[TM][NB];
float bv[TM];
uint bi[TM];
#if defined(BOUNDS)
float b2[TM];   // second-smallest score of the thread's rows (ties with the smallest count)
#endif

// Epilogue of a centre tile starting at column col0: a thread's columns, visited in increasing
// order, so a strict < keeps the lowest index among its equal scores; the scores are cleared.
void finish_tile(uint col0, uint tx) {
    [[unroll]] for (uint j = 0; j < NB; j++) {
        uint gc = col0 + (j * CT + tx) * 4;
        vec4 cn = gc < pc.ldct ? CTS4[(pc.d * pc.ldct + gc) / 4] : vec4(INF);
        [[unroll]] for (uint q = 0; q < TM; q++) {
            vec4 sc = fma(vec4(-2.0), acc[q][j], cn);
#if defined(BOUNDS)
            if (sc.x < bv[q]) { b2[q] = bv[q]; bv[q] = sc.x; bi[q] = gc; } else b2[q] = min(b2[q], sc.x);
            if (sc.y < bv[q]) { b2[q] = bv[q]; bv[q] = sc.y; bi[q] = gc + 1u; } else b2[q] = min(b2[q], sc.y);
            if (sc.z < bv[q]) { b2[q] = bv[q]; bv[q] = sc.z; bi[q] = gc + 2u; } else b2[q] = min(b2[q], sc.z);
            if (sc.w < bv[q]) { b2[q] = bv[q]; bv[q] = sc.w; bi[q] = gc + 3u; } else b2[q] = min(b2[q], sc.w);
#else
            if (sc.x < bv[q]) { bv[q] = sc.x; bi[q] = gc; }
            if (sc.y < bv[q]) { bv[q] = sc.y; bi[q] = gc + 1u; }
            if (sc.z < bv[q]) { bv[q] = sc.z; bi[q] = gc + 2u; }
            if (sc.w < bv[q]) { bv[q] = sc.w; bi[q] = gc + 3u; }
#endif
            acc[q][j] = vec4(0.0);
        }
    }
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint tx = t % CT, ty = t / CT;
    const uint split = gl_WorkGroupID.x;
    const uint row0 = gl_WorkGroupID.y * BM;
    const uint tile0 = split * pc.tps;
    const uint ntl = min(pc.ntiles, tile0 + pc.tps) - min(pc.ntiles, tile0);
#if defined(BOUNDS)
    // Blocks of list places: past the list's length the whole workgroup leaves at once.
    const uint rows = rows_total();
    if (row0 >= rows) return;
    load_rmap(row0, rows);
    barrier();
#define ROW_OF(li) rmap[li]
#else
    const uint rows = pc.n;
#define ROW_OF(li) (row0 + (li))
#endif

    vec4 ra[NA4], rb[NB4];
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = vec4(0.0);
    [[unroll]] for (uint q = 0; q < TM; q++) { bv[q] = INF; bi[q] = NONE; }
#if defined(BOUNDS)
    [[unroll]] for (uint q = 0; q < TM; q++) b2[q] = INF;
#endif

    const uint nsl = (pc.d + BK - 1) / BK;
    const uint total = ntl * nsl;

    // fetch(col0, k0): X rows row0.. (shifted) and Cᵀ columns col0.., depth k0.., into registers.
#define FETCH(col0, k0)                                                                            \
    [[unroll]] for (uint s = 0; s < NA4; s++) {                                                    \
        uint e = (s * WG + t) * 4;                                                                 \
        vec4 v = vec4(0.0);                                                                        \
        if (e < BM * BK) {                                                                         \
            uint i = ROW_OF(e / BK), p = (k0) + e % BK;                                            \
            if (VEC_A) {                                                                           \
                if (i < pc.n && p < pc.d) {                                                        \
                    v = vec4(X4[(pc.x_off + i * pc.ldx + p) / 4]);                                 \
                    if (HAS_SHIFT)                                                                 \
                        v -= vec4(MU[pc.mu_off + p], MU[pc.mu_off + p + 1], MU[pc.mu_off + p + 2], \
                                  MU[pc.mu_off + p + 3]);                                          \
                }                                                                                  \
            } else {                                                                               \
                v = vec4(x_at(i, p), x_at(i, p + 1), x_at(i, p + 2), x_at(i, p + 3));              \
            }                                                                                      \
        }                                                                                          \
        ra[s] = v;                                                                                 \
    }                                                                                              \
    [[unroll]] for (uint s = 0; s < NB4; s++) {                                                    \
        uint e = (s * WG + t) * 4;                                                                 \
        vec4 v = vec4(0.0);                                                                        \
        if (e < BK * BN) {                                                                         \
            uint p = (k0) + e / BN, j = (col0) + e % BN;                                           \
            if (p < pc.d && j < pc.ldct) v = CTS4[(p * pc.ldct + j) / 4];                           \
        }                                                                                          \
        rb[s] = v;                                                                                 \
    }

    // store(buffer): registers -> shared, As as [k][m] and Bs as [k][n] in vec4s.
#define STORE(buf)                                                                                 \
    [[unroll]] for (uint s = 0; s < NA4; s++) {                                                    \
        uint e = (s * WG + t) * 4;                                                                 \
        if (e < BM * BK) {                                                                         \
            uint i = e / BK, p = e % BK;                                                           \
            [[unroll]] for (uint c = 0; c < 4; c++)                                                \
                As[(buf) * BK * (BM / 4) + (p + c) * (BM / 4) + i / 4][i % 4] = ra[s][c];          \
        }                                                                                          \
    }                                                                                              \
    [[unroll]] for (uint s = 0; s < NB4; s++) {                                                    \
        uint e = (s * WG + t) * 4;                                                                 \
        if (e < BK * BN) {                                                                         \
            uint p = e / BN, j = e % BN;                                                           \
            Bs[(buf) * BK * (BN / 4) + p * (BN / 4) + j / 4] = rb[s];                              \
        }                                                                                          \
    }

    // fetch_fast(col0, k0): the same for a workgroup whose rows, slices and centre tiles all lie
    // inside aligned operands: no test around the loads, no branch between them and their stores.
    // With them NVIDIA's compiler waited for the loads before the multiply (see matmul.comp).
#define FETCH_FAST(col0, k0)                                                                       \
    [[unroll]] for (uint s = 0; s < NA4; s++) {                                                    \
        uint e = (s * WG + t) * 4;                                                                 \
        if ((BM * BK) % (WG * 4) == 0 || e < BM * BK) {                                            \
            uint i = row0 + e / BK, p = (k0) + e % BK;                                             \
            ra[s] = vec4(X4[(pc.x_off + i * pc.ldx + p) / 4]);                                     \
            if (HAS_SHIFT)                                                                         \
                ra[s] -= vec4(MU[pc.mu_off + p], MU[pc.mu_off + p + 1], MU[pc.mu_off + p + 2],     \
                              MU[pc.mu_off + p + 3]);                                              \
        }                                                                                          \
    }                                                                                              \
    [[unroll]] for (uint s = 0; s < NB4; s++) {                                                    \
        uint e = (s * WG + t) * 4;                                                                 \
        if ((BK * BN) % (WG * 4) == 0 || e < BK * BN) {                                            \
            uint p = (k0) + e / BN, j = (col0) + e % BN;                                           \
            rb[s] = CTS4[(p * pc.ldct + j) / 4];                                                   \
        }                                                                                          \
    }

    // One flat loop over (centre tile, slice), so the fetch of the next slice also runs across
    // tile boundaries; after a tile's last slice (and the store of the next slice) its scores go
    // into the running minima. The last trip fetches its own slice again (interior) or past the
    // centres, where every load is tested and reads zeros (the others).
#define ASSIGN_LOOP(FETCHX, LAST_SAME)                                                             \
    {                                                                                              \
        FETCHX(tile0 * BN, 0)                                                                      \
        STORE(0)                                                                                   \
        barrier();                                                                                 \
        uint cur = 0;                                                                              \
        uint tl = 0, sl = 0;                                                                       \
        for (uint it = 0; it < total; it++) {                                                      \
            bool last = LAST_SAME && it + 1 == total;                                              \
            uint ntl_ = last ? tl : (sl + 1 == nsl ? tl + 1 : tl);                                 \
            uint nsl_ = last ? sl : (sl + 1 == nsl ? 0 : sl + 1);                                  \
            FETCHX((tile0 + ntl_) * BN, nsl_ * BK)                                                 \
            const uint abuf = cur * BK * (BM / 4), bbuf = cur * BK * (BN / 4);                     \
            [[unroll]] for (uint p = 0; p < BK; p++) {                                             \
                vec4 av[MB], bw[NB];                                                               \
                [[unroll]] for (uint i = 0; i < MB; i++) av[i] = As[abuf + p * (BM / 4) + i * RT + ty]; \
                [[unroll]] for (uint j = 0; j < NB; j++) bw[j] = Bs[bbuf + p * (BN / 4) + j * CT + tx]; \
                [[unroll]] for (uint i = 0; i < MB; i++)                                           \
                    [[unroll]] for (uint r = 0; r < 4; r++)                                        \
                        [[unroll]] for (uint j = 0; j < NB; j++)                                   \
                            acc[i * 4 + r][j] = fma(vec4(av[i][r]), bw[j], acc[i * 4 + r][j]);     \
            }                                                                                      \
            STORE(1 - cur)                                                                         \
            if (sl + 1 == nsl) finish_tile((tile0 + tl) * BN, tx);                                 \
            barrier();                                                                             \
            cur = 1 - cur;                                                                         \
            tl = last ? tl + 1 : ntl_;                                                             \
            sl = last ? 0 : nsl_;                                                                  \
        }                                                                                          \
    }
    bool interior = false;
#if !defined(BOUNDS)
    interior = VEC_A && total > 0 && row0 + BM <= pc.n && pc.d % BK == 0 &&
               (tile0 + ntl) * BN <= pc.ldct;
#endif
    if (interior) {
        ASSIGN_LOOP(FETCH_FAST, true)
    } else if (total > 0) {
        ASSIGN_LOOP(FETCH, false)
    } else {
        barrier();
    }

    // Merge the CT threads of each row: halve the active threads each round.
    for (uint h = CT / 2; h > 0u; h >>= 1) {
        if (tx >= h && tx < 2u * h) {
            [[unroll]] for (uint i = 0; i < MB; i++)
                [[unroll]] for (uint r = 0; r < 4; r++) {
                    uint lr = (i * RT + ty) * 4 + r;
                    Rv[lr * (CT / 2) + (tx - h)] = bv[i * 4 + r];
                    Ri[lr * (CT / 2) + (tx - h)] = bi[i * 4 + r];
#if defined(BOUNDS)
                    Rv2[lr * (CT / 2) + (tx - h)] = b2[i * 4 + r];
#endif
                }
        }
        barrier();
        if (tx < h) {
            [[unroll]] for (uint i = 0; i < MB; i++)
                [[unroll]] for (uint r = 0; r < 4; r++) {
                    uint lr = (i * RT + ty) * 4 + r;
                    float v = Rv[lr * (CT / 2) + tx];
                    uint ix = Ri[lr * (CT / 2) + tx];
#if defined(BOUNDS)
                    // The second of the union: the loser's smallest, or either's second.
                    float v2 = Rv2[lr * (CT / 2) + tx];
                    if (better(v, ix, bv[i * 4 + r], bi[i * 4 + r])) {
                        b2[i * 4 + r] = min(bv[i * 4 + r], min(b2[i * 4 + r], v2));
                        bv[i * 4 + r] = v;
                        bi[i * 4 + r] = ix;
                    } else {
                        b2[i * 4 + r] = min(b2[i * 4 + r], min(v, v2));
                    }
#else
                    if (better(v, ix, bv[i * 4 + r], bi[i * 4 + r])) { bv[i * 4 + r] = v; bi[i * 4 + r] = ix; }
#endif
                }
        }
        barrier();
    }
    if (tx == 0u) {
        [[unroll]] for (uint i = 0; i < MB; i++)
            [[unroll]] for (uint r = 0; r < 4; r++) {
                uint lr = (i * RT + ty) * 4 + r;
                uint b = bi[i * 4 + r];
                if (FINAL) {
                    win[lr] = b == NONE ? 0u : b;
#if defined(BOUNDS)
                    sec[lr] = b2[i * 4 + r];
#endif
                } else if (row0 + lr < rows) {
#if defined(BOUNDS)
                    PT[(row0 + lr) * pc.nsplit + split] = uvec4(floatBitsToUint(bv[i * 4 + r]), b,
                                                                floatBitsToUint(b2[i * 4 + r]), 0u);
#else
                    PT[(row0 + lr) * pc.nsplit + split] = uvec2(floatBitsToUint(bv[i * 4 + r]), b);
#endif
                }
            }
    }
    if (FINAL) {
        barrier();
        exact_rows(row0);
    }
}
#endif
#endif
