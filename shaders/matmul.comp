// matmul.comp — C = A·B (or C += A·B) for float32/float16 operands on any device: one BM x BN tile
// of C per workgroup, BK-deep slices of A and B staged through two shared-memory buffers (the next
// slice is fetched into registers while the current one is multiplied, so one barrier per slice),
// TM x TN results per thread kept as vec4 accumulators (scalar arrays of that size spill on
// NVIDIA's compiler). A thread's rows are TM/4 blocks of 4 spread BM/(TM/4) apart, its columns
// likewise, so the shared-memory reads of a subgroup are broadcasts or consecutive vec4s.
// Operands are strided views: A is (M, K) with rows lda apart, or its transpose stored K-major
// (A_T); B is (K, N) with rows ldb apart, or stored N-major (B_T). Batches are gl_WorkGroupID.z.
// KNN variants: the same GEMM as the distance tile of a k-nearest-neighbour search (A = queries,
// B = database rows, B_T), with a distance epilogue instead of a store of C: MODE 0 writes the
// distances of the database rows listed in MAP (knn.c's sample), MODE 1 keeps only the pairs
// within TAU (+ a rounding slack) of their query and appends them to that query's candidate list,
// so the queries x database matrix is never written. See csrc/ops/knn.c.
//! variant f16: -DA_F16 -DB_F16
//! variant f16c: -DA_F16 -DB_F16 -DC_F16
//! variant a16: -DA_F16
//! variant b16: -DB_F16
//! variant bf16: -DA_BF16 -DB_BF16
//! variant bf16c: -DA_BF16 -DB_BF16 -DC_BF16
//! variant knn: -DKNN
//! variant knn_f16: -DKNN -DA_F16 -DB_F16
//! variant knn_a16: -DKNN -DA_F16
//! variant knn_b16: -DKNN -DB_F16
//! variant knn_sq8: -DKNN -DB_SQ8
//! variant knn_sq4: -DKNN -DB_SQ4
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(A_BF16) || defined(B_BF16) || defined(C_BF16)
#extension GL_EXT_shader_16bit_storage : require
#endif
#if defined(A_F16) || defined(B_F16) || defined(C_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
// bfloat16 is stored as its 16 bits (uint16_t): the upper half of a float32, so widening is a shift
// and narrowing rounds to nearest even (NaN stays a quiet NaN), as ml_dtypes and PyTorch do.
float bf16_to_f32(uint h) { return uintBitsToFloat(h << 16); }
uint f32_to_bf16(float x) {
    uint u = floatBitsToUint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
#if defined(A_F16)
#define ELEM_A float16_t
#define ELEM4_A f16vec4
#elif defined(A_BF16)
#define ELEM_A uint16_t
#define ELEM4_A u16vec4
#define LOAD_A(v) bf16_to_f32(uint(v))
#define LOAD4_A(v) uintBitsToFloat(uvec4(v) << 16)
#else
#define ELEM_A float
#define ELEM4_A vec4
#endif
#if defined(B_F16)
#define ELEM_B float16_t
#define ELEM4_B f16vec4
#elif defined(B_BF16)
#define ELEM_B uint16_t
#define ELEM4_B u16vec4
#define LOAD_B(v) bf16_to_f32(uint(v))
#define LOAD4_B(v) uintBitsToFloat(uvec4(v) << 16)
#else
#define ELEM_B float
#define ELEM4_B vec4
#endif
#if !defined(LOAD_A)
#define LOAD_A(v) float(v)
#define LOAD4_A(v) vec4(v)
#endif
#if !defined(LOAD_B)
#define LOAD_B(v) float(v)
#define LOAD4_B(v) vec4(v)
#endif
#if defined(C_F16)
#define ELEM_C float16_t
#define LOAD_C(v) float(v)
#define STORE_C(x) float16_t(x)
#elif defined(C_BF16)
#define ELEM_C uint16_t
#define LOAD_C(v) bf16_to_f32(uint(v))
#define STORE_C(x) uint16_t(f32_to_bf16(x))
#else
#define ELEM_C float
#define LOAD_C(v) (v)
#define STORE_C(x) (x)
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 128;
layout(constant_id = 4) const uint BN = 128;
layout(constant_id = 5) const uint BK = 8;
layout(constant_id = 6) const uint TM = 8;
layout(constant_id = 7) const uint TN = 8;
layout(constant_id = 8) const bool A_T = false;
layout(constant_id = 9) const bool B_T = false;
// VEC_A / VEC_B: the operand's contiguous axis, its leading dimension and its offset are
// multiples of 4 elements, so tile loads take 4 elements at a time.
layout(constant_id = 10) const bool VEC_A = false;
layout(constant_id = 11) const bool VEC_B = false;

layout(binding = 0) readonly buffer A_ { ELEM_A A[]; };
layout(binding = 0) readonly buffer A4_ { ELEM4_A A4[]; };
#if defined(B_SQ8) || defined(B_SQ4)
// KNN over scalar-quantizer codes (SQIndex): B holds code rows (B_T, byte-addressed: b_off and ldb
// in bytes, rows whole 32-bit words), decoded as they are fetched, vmin + (c + 0.5) * step
// (vaccel.ScalarQuantizer; sq_codec.comp), so no float copy of the database exists.
#define B_SQ 1
#if defined(B_SQ8)
#define SQ_BITS 8u
#else
#define SQ_BITS 4u
#endif
layout(binding = 1) readonly buffer B_ { uint BW[]; };
layout(binding = 8) readonly buffer VMIN_ { float VMIN[]; };
layout(binding = 9) readonly buffer STEP_ { float STEP[]; };
float sq_decode(uint c, uint p) {
    precise float v = VMIN[p] + (float(c) + 0.5) * STEP[p];
    return v;
}
// Element p of the code row starting at byte bi.
float sq_value(uint bi, uint p) {
    uint byte = bi + p * SQ_BITS / 8u;
    uint shift = (byte & 3u) * 8u + (p * SQ_BITS) % 8u;
    return sq_decode((BW[byte >> 2] >> shift) & ((1u << SQ_BITS) - 1u), p);
}
// Elements p .. p + 3 (p a multiple of 4, the row's start a multiple of 4 bytes): one aligned word
// (8-bit codes) or half of one (4-bit codes).
vec4 sq_vec4(uint bi, uint p) {
    uint byte = bi + p * SQ_BITS / 8u;
    uint w = BW[byte >> 2] >> ((byte & 3u) * 8u);
    return vec4(sq_decode(w & ((1u << SQ_BITS) - 1u), p),
                sq_decode((w >> SQ_BITS) & ((1u << SQ_BITS) - 1u), p + 1u),
                sq_decode((w >> (2u * SQ_BITS)) & ((1u << SQ_BITS) - 1u), p + 2u),
                sq_decode((w >> (3u * SQ_BITS)) & ((1u << SQ_BITS) - 1u), p + 3u));
}
#define KNN_B_VALUE(bi, p) sq_value(bi, p)
#define KNN_B_VEC4(bi, p) (VEC_B ? sq_vec4(bi, p) : vec4(sq_value(bi, p), sq_value(bi, (p) + 1u), \
                                                       sq_value(bi, (p) + 2u), sq_value(bi, (p) + 3u)))
#else
layout(binding = 1) readonly buffer B_ { ELEM_B B[]; };
layout(binding = 1) readonly buffer B4_ { ELEM4_B B4[]; };
#endif
#if defined(KNN)
#define KNN_SPEC_METRIC 12
#define KNN_SPEC_MODE 13
#define KNN_VEC4
#include "knn_epilogue.glsl"
#else
layout(binding = 2) buffer C_ { ELEM_C C[]; };

layout(push_constant) uniform PC {
    uint m, n, k;
    uint lda, ldb, ldc;
    uint a_off, b_off, c_off;
    uint a_bs, b_bs, c_bs;      // batch strides in elements (0 broadcasts)
    uint accumulate;            // 1: C += A·B (K split across dispatches)
} pc;
#define PC_B_BS pc.b_bs
#define PC_A_BS pc.a_bs

uint brow(uint j) { return j; }
#endif

const uint RT = BM / TM;        // threads along M
const uint CT = BN / TN;        // threads along N
const uint MB = TM / 4, NB = TN / 4;

shared vec4 As[2 * BK * (BM / 4)];
shared vec4 Bs[2 * BK * (BN / 4)];

// Elements of one slice each thread fetches: BM*BK/WG of A, BK*BN/WG of B.
const uint WG = RT * CT;
const uint LA = (BM * BK + WG - 1) / WG;
const uint LB = (BK * BN + WG - 1) / WG;

float a_at(uint base, uint i, uint p) {
    if (i >= pc.m || p >= pc.k) return 0.0;
    return LOAD_A(A[base + (A_T ? p * pc.lda + i : i * pc.lda + p)]);
}
float b_at(uint base, uint p, uint j) {
    if (p >= pc.k || j >= pc.n) return 0.0;
#if defined(B_SQ)
    return sq_value(base + brow(j) * pc.ldb, p);   // B_T only
#else
    return LOAD_B(B[base + (B_T ? brow(j) * pc.ldb + p : p * pc.ldb + j)]);
#endif
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint tx = t % CT, ty = t / CT;
#if defined(KNN)
    // Query blocks along x: the workgroups running together share one database tile, which is
    // then read from memory about once.
    const uint row0 = gl_WorkGroupID.x * BM, col0 = gl_WorkGroupID.y * BN;
#else
    const uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
#endif
    const uint batch = gl_WorkGroupID.z;
    const uint abase = pc.a_off + batch * PC_A_BS, bbase = pc.b_off + batch * PC_B_BS;

    // Register staging of one slice: vec4 groups along the operand's contiguous axis when VEC_*,
    // else scalars (4 per vec4 slot, same positions).
    const uint NA4 = (BM * BK / 4 + WG - 1) / WG;
    const uint NB4 = (BK * BN / 4 + WG - 1) / WG;
    vec4 ra[NA4], rb[NB4];

    // Slot s of this thread covers 4 consecutive elements of the tile along the contiguous axis:
    // for A (row-major) that is k, for A_T it is m; for B it is n, for B_T it is k.
    vec4 acc[TM][NB];
    [[unroll]] for (uint i = 0; i < TM; i++)
        [[unroll]] for (uint j = 0; j < NB; j++) acc[i][j] = vec4(0.0);

    uint nslices = (pc.k + BK - 1) / BK;

    // fetch(slice): global -> registers
#if defined(B_SQ)
#define B_T_VEC4(bi, p) sq_vec4(bi, p)
#define B4 BW          /* the non-transposed branch below is never taken (KNN is B_T) */
#else
#define B_T_VEC4(bi, p) LOAD4_B(B4[((bi) + (p)) / 4])
#endif
#define FETCH(k0)                                                                                   \
    [[unroll]] for (uint s = 0; s < NA4; s++) {                                                     \
        uint e = (s * WG + t) * 4;                                                                  \
        vec4 v = vec4(0.0);                                                                         \
        if (e < BM * BK) {                                                                          \
            if (!A_T) {                                                                             \
                uint i = row0 + e / BK, p = (k0) + e % BK;                                          \
                if (VEC_A) {                                                                        \
                    if (i < pc.m && p < pc.k) v = LOAD4_A(A4[(abase + i * pc.lda + p) / 4]);           \
                } else {                                                                            \
                    v = vec4(a_at(abase, i, p), a_at(abase, i, p + 1), a_at(abase, i, p + 2),      \
                             a_at(abase, i, p + 3));                                                \
                }                                                                                   \
            } else {                                                                                \
                uint i = row0 + e % BM, p = (k0) + e / BM;                                          \
                if (VEC_A) {                                                                        \
                    if (i < pc.m && p < pc.k) v = LOAD4_A(A4[(abase + p * pc.lda + i) / 4]);           \
                } else {                                                                            \
                    v = vec4(a_at(abase, i, p), a_at(abase, i + 1, p), a_at(abase, i + 2, p),      \
                             a_at(abase, i + 3, p));                                                \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        ra[s] = v;                                                                                  \
    }                                                                                               \
    [[unroll]] for (uint s = 0; s < NB4; s++) {                                                     \
        uint e = (s * WG + t) * 4;                                                                  \
        vec4 v = vec4(0.0);                                                                         \
        if (e < BK * BN) {                                                                          \
            if (!B_T) {                                                                             \
                uint p = (k0) + e / BN, j = col0 + e % BN;                                          \
                if (VEC_B) {                                                                        \
                    if (p < pc.k && j < pc.n) v = LOAD4_B(B4[(bbase + p * pc.ldb + j) / 4]);           \
                } else {                                                                            \
                    v = vec4(b_at(bbase, p, j), b_at(bbase, p, j + 1), b_at(bbase, p, j + 2),      \
                             b_at(bbase, p, j + 3));                                                \
                }                                                                                   \
            } else {                                                                                \
                uint p = (k0) + e % BK, j = col0 + e / BK;                                          \
                if (VEC_B) {                                                                        \
                    if (p < pc.k && j < pc.n) v = B_T_VEC4(bbase + brow(j) * pc.ldb, p);            \
                } else {                                                                            \
                    v = vec4(b_at(bbase, p, j), b_at(bbase, p + 1, j), b_at(bbase, p + 2, j),      \
                             b_at(bbase, p + 3, j));                                                \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
        rb[s] = v;                                                                                  \
    }

    // store(buffer): registers -> shared, As as [k][m] and Bs as [k][n] in vec4s.
#define STORE(buf)                                                                                  \
    [[unroll]] for (uint s = 0; s < NA4; s++) {                                                     \
        uint e = (s * WG + t) * 4;                                                                  \
        if ((BM * BK) % (WG * 4) == 0 || e < BM * BK) {                                             \
            if (!A_T) {                                                                             \
                uint i = e / BK, p = e % BK;                                                        \
                [[unroll]] for (uint c = 0; c < 4; c++)                                             \
                    As[(buf) * BK * (BM / 4) + (p + c) * (BM / 4) + i / 4][i % 4] = ra[s][c];       \
            } else {                                                                                \
                uint i = e % BM, p = e / BM;                                                        \
                As[(buf) * BK * (BM / 4) + p * (BM / 4) + i / 4] = ra[s];                           \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    [[unroll]] for (uint s = 0; s < NB4; s++) {                                                     \
        uint e = (s * WG + t) * 4;                                                                  \
        if ((BK * BN) % (WG * 4) == 0 || e < BK * BN) {                                             \
            if (!B_T) {                                                                             \
                uint p = e / BN, j = e % BN;                                                        \
                Bs[(buf) * BK * (BN / 4) + p * (BN / 4) + j / 4] = rb[s];                           \
            } else {                                                                                \
                uint p = e % BK, j = e / BK;                                                        \
                [[unroll]] for (uint c = 0; c < 4; c++)                                             \
                    Bs[(buf) * BK * (BN / 4) + (p + c) * (BN / 4) + j / 4][j % 4] = rb[s][c];       \
            }                                                                                       \
        }                                                                                           \
    }

    // A workgroup whose tile and slices lie wholly inside vector-aligned operands (most of a large
    // product) fetches with no test around its loads and no branch around the fetch. With them,
    // NVIDIA's compiler waited for the loads before the multiply they were meant to overlap
    // (8192^3 on an H100: 39.6 TFLOP/s guarded, 48.0 unguarded; see RESULTS.md). The last trip
    // fetches its own slice again, harmlessly, instead of testing.
#define FETCH_FAST(k0)                                                                              \
    [[unroll]] for (uint s = 0; s < NA4; s++) {                                                     \
        uint e = (s * WG + t) * 4;                                                                  \
        if ((BM * BK) % (WG * 4) == 0 || e < BM * BK) {                                             \
            uint i = A_T ? row0 + e % BM : row0 + e / BK, p = A_T ? (k0) + e / BM : (k0) + e % BK;  \
            ra[s] = LOAD4_A(A4[(abase + (A_T ? p * pc.lda + i : i * pc.lda + p)) / 4]);             \
        }                                                                                           \
    }                                                                                               \
    [[unroll]] for (uint s = 0; s < NB4; s++) {                                                     \
        uint e = (s * WG + t) * 4;                                                                  \
        if ((BK * BN) % (WG * 4) == 0 || e < BK * BN) {                                             \
            if (!B_T) {                                                                             \
                uint p = (k0) + e / BN, j = col0 + e % BN;                                          \
                rb[s] = LOAD4_B(B4[(bbase + p * pc.ldb + j) / 4]);                                  \
            } else {                                                                                \
                uint p = (k0) + e % BK, j = col0 + e / BK;                                          \
                rb[s] = B_T_VEC4(bbase + brow(j) * pc.ldb, p);                                      \
            }                                                                                       \
        }                                                                                           \
    }
#define MUL_SLICE()                                                                                 \
        [[unroll]] for (uint p = 0; p < BK; p++) {                                                  \
            vec4 av[MB], bv[NB];                                                                    \
            [[unroll]] for (uint i = 0; i < MB; i++) av[i] = As[abuf + p * (BM / 4) + i * RT + ty]; \
            [[unroll]] for (uint j = 0; j < NB; j++) bv[j] = Bs[bbuf + p * (BN / 4) + j * CT + tx]; \
            [[unroll]] for (uint i = 0; i < MB; i++)                                                \
                [[unroll]] for (uint r = 0; r < 4; r++)                                             \
                    [[unroll]] for (uint j = 0; j < NB; j++)                                        \
                        acc[i * 4 + r][j] = fma(vec4(av[i][r]), bv[j], acc[i * 4 + r][j]);          \
        }
    const bool interior = VEC_A && VEC_B && pc.k > 0 && pc.k % BK == 0 && row0 + BM <= pc.m &&
                          col0 + BN <= pc.n;
    if (interior) {
        FETCH_FAST(0)
        STORE(0)
        barrier();
        uint cur = 0;
        for (uint sl = 0; sl < nslices; sl++) {
            FETCH_FAST(min(sl + 1, nslices - 1) * BK)
            const uint abuf = cur * BK * (BM / 4), bbuf = cur * BK * (BN / 4);
            MUL_SLICE()
            STORE(1 - cur)
            barrier();
            cur = 1 - cur;
        }
    } else {
        if (nslices > 0) {
            FETCH(0)
            STORE(0)
        }
        barrier();
        uint cur = 0;
        for (uint sl = 0; sl < nslices; sl++) {
            bool more = sl + 1 < nslices;
            if (more) { FETCH((sl + 1) * BK) }
            const uint abuf = cur * BK * (BM / 4), bbuf = cur * BK * (BN / 4);
            MUL_SLICE()
            if (more) { STORE(1 - cur) }
            barrier();
            cur = 1 - cur;
        }
    }

#if defined(KNN)
    // The unrolled part only tests and marks (an append in there, with its atomic, sent the
    // accumulators to local memory on NVIDIA: 15 times slower); the marked pairs, a few per
    // tile, are appended afterwards with their exact distances.
    vec4 dn4[NB];
    [[unroll]] for (uint j = 0; j < NB; j++) {
        uint gc = col0 + (j * CT + tx) * 4;
        dn4[j] = vec4(gc < pc.n ? DN[pc.dn_off + brow(gc)] : 0.0, gc + 1 < pc.n ? DN[pc.dn_off + brow(gc + 1)] : 0.0,
                      gc + 2 < pc.n ? DN[pc.dn_off + brow(gc + 2)] : 0.0, gc + 3 < pc.n ? DN[pc.dn_off + brow(gc + 3)] : 0.0);
    }
    uint mark_lo = 0u, mark_hi = 0u;
    [[unroll]] for (uint i = 0; i < MB; i++)
        [[unroll]] for (uint r = 0; r < 4; r++) {
            uint gr = row0 + (i * RT + ty) * 4 + r;
            if (gr >= pc.m) continue;
            if (MODE == 0 && pc.zero_counts != 0 && tx == 0 && gl_WorkGroupID.y == 0) CNT[gr] = 0;
            float qn = QN[pc.qn_off + gr];
            float tau = MODE == 1 ? TAU[pc.tau_off + gr * pc.tau_ld] : 0.0;
            [[unroll]] for (uint j = 0; j < NB; j++) {
                uint gc = col0 + (j * CT + tx) * 4;
                vec4 v, slack;
                knn_bounds(acc[i * 4 + r][j], qn, dn4[j], v, slack);
                if (MODE == 0) {
                    uint o = pc.o_off + gr * pc.ldo + gc;
                    if (gc < pc.n) O[o] = v.x + slack.x;
                    if (gc + 1 < pc.n) O[o + 1] = v.y + slack.y;
                    if (gc + 2 < pc.n) O[o + 2] = v.z + slack.z;
                    if (gc + 3 < pc.n) O[o + 3] = v.w + slack.w;
                    continue;
                }
                uint q = ((i * 4 + r) * NB + j) * 4;
                [[unroll]] for (uint c = 0; c < 4; c++) {
                    if (gc + c < pc.n && keep(v[c], slack[c], tau)) {
                        if (q + c < 32) mark_lo |= 1u << (q + c);
                        else mark_hi |= 1u << (q + c - 32);
                    }
                }
            }
        }
    if (MODE == 1) {
        [[dont_unroll]] for (uint h = 0; h < 2; h++) {
            uint mask = h == 0 ? mark_lo : mark_hi;
            while (mask != 0u) {
                uint q = uint(findLSB(mask)) + 32 * h;
                mask &= mask - 1u;
                uint c = q % 4, j = (q / 4) % NB, ir = q / (4 * NB);
                uint gr = row0 + ((ir / 4) * RT + ty) * 4 + ir % 4, gc = col0 + (j * CT + tx) * 4 + c;
                emit(gr, gc, direct(abase, bbase, gr, gc));
            }
        }
    }
#else
    const uint cbase = pc.c_off + batch * pc.c_bs;
    [[unroll]] for (uint i = 0; i < MB; i++)
        [[unroll]] for (uint r = 0; r < 4; r++) {
            uint gr = row0 + (i * RT + ty) * 4 + r;
            if (gr >= pc.m) continue;
            [[unroll]] for (uint j = 0; j < NB; j++) {
                vec4 v = acc[i * 4 + r][j];
                uint gc = col0 + (j * CT + tx) * 4;
                [[unroll]] for (uint c = 0; c < 4; c++) {
                    if (gc + c < pc.n) {
                        uint o = cbase + gr * pc.ldc + gc + c;
                        float x = v[c];
                        if (pc.accumulate != 0) x += LOAD_C(C[o]);
                        C[o] = STORE_C(x);
                    }
                }
            }
        }
#endif
}
