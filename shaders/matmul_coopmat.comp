// matmul_coopmat.comp — C = A·B (or C += A·B) for float16 (or bfloat16) A and B on cooperative
// matrices (VK_KHR_cooperative_matrix, tensor cores on NVIDIA), float32 accumulation, float32 or
// float16 (bfloat16) C.
// One BM x BN tile of C per workgroup; each subgroup owns a WM x WN part of it as (WM/MM) x (WN/NN)
// accumulators of the device's MM x NN x KK shape. BK-deep slices of A and B are staged through
// two shared-memory buffers in their memory order (A row- or column-major, B likewise), so a
// transposed operand costs nothing: the cooperative load reads it column-major. Shared memory is
// addressed in uvec4s (8 halves) so that global->shared copies are 16-byte moves; rows are padded
// by one uvec4 to spread them over the banks.
//! variant f16c: -DC_F16
//! variant bf16 [bfloat16]: -DBF16
//! variant bf16c [bfloat16]: -DBF16 -DC_BF16
//! requires: cooperative_matrix
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require
#if defined(BF16)
// bfloat16 operands (VK_KHR_shader_bfloat16): read and staged as their 16 bits, multiplied as
// bfloat16_t cooperative matrices.
#extension GL_EXT_bfloat16 : require
#define ELEM_AB bfloat16_t
#define RAW_AB uint16_t
#define RAW_T uint
uint pack2(uint x, uint y) { return x | (y << 16); }
#else
#define ELEM_AB float16_t
#define RAW_AB float16_t
#define RAW_T float16_t
uint pack2(float16_t x, float16_t y) { return packFloat2x16(f16vec2(x, y)); }
#endif
#if defined(C_F16)
#define ELEM_C float16_t
#define LOAD_C(v) float(v)
#define STORE_C(x) float16_t(x)
#elif defined(C_BF16)
// A bfloat16 result: float32 rounded to nearest even (a NaN stays a quiet NaN).
#define ELEM_C uint16_t
#define LOAD_C(v) uintBitsToFloat(uint(v) << 16)
uint bf16_bits(float x) {
    uint u = floatBitsToUint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
#define STORE_C(x) uint16_t(bf16_bits(x))
#else
#define ELEM_C float
#define LOAD_C(v) (v)
#define STORE_C(x) (x)
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 128;
layout(constant_id = 4) const uint BN = 128;
layout(constant_id = 5) const uint BK = 32;
layout(constant_id = 6) const uint WM = 64;
layout(constant_id = 7) const uint WN = 64;
layout(constant_id = 8) const uint MM = 16;
layout(constant_id = 9) const uint NN = 16;
layout(constant_id = 10) const uint KK = 16;
layout(constant_id = 11) const bool A_T = false;
layout(constant_id = 12) const bool B_T = false;
// VEC_A / VEC_B: the operand's contiguous axis, leading dimension and offset are multiples of 8
// elements, so a uvec4 of global memory is 8 consecutive elements of one row.
layout(constant_id = 13) const bool VEC_A = false;
layout(constant_id = 14) const bool VEC_B = false;
layout(constant_id = 15) const uint SUBGROUPS = 4;
// The subgroup size the pipeline requires: loops stepping by it have a constant trip count, so
// they unroll and the accumulators are only ever indexed by constants (a variable index sends
// the whole accumulator array to local memory on NVIDIA).
layout(constant_id = 16) const uint SG = 32;

layout(binding = 0) readonly buffer A_ { RAW_AB A[]; };
layout(binding = 0) readonly buffer A8_ { uvec4 A8[]; };
layout(binding = 1) readonly buffer B_ { RAW_AB B[]; };
layout(binding = 1) readonly buffer B8_ { uvec4 B8[]; };
layout(binding = 2) buffer C_ { ELEM_C C[]; };
layout(binding = 2) buffer CF_ { float CF[]; };

layout(push_constant) uniform PC {
    uint m, n, k;
    uint lda, ldb, ldc;
    uint a_off, b_off, c_off;
    uint a_bs, b_bs, c_bs;
    uint accumulate;
} pc;
#define PC_B_BS pc.b_bs
#define PC_A_BS pc.a_bs

uint brow(uint j) { return j; }

// Shared tiles in memory order: A as [m][k] (or [k][m] when A_T), B as [k][n] (or [n][k]).
const uint A_ROWS = A_T ? BK : BM, A_COLS = A_T ? BM : BK;
const uint B_ROWS = B_T ? BN : BK, B_COLS = B_T ? BK : BN;
const uint A_LD = A_COLS / 8 + 1, B_LD = B_COLS / 8 + 1;   // row pitch in uvec4s
const uint A_SZ = A_ROWS * A_LD, B_SZ = B_ROWS * B_LD;
shared uvec4 As[2 * A_SZ];
shared uvec4 Bs[2 * B_SZ];
shared float Cs[SUBGROUPS * MM * NN];

const uint FM = WM / MM, FN = WN / NN;

RAW_T a_at(uint base, uint i, uint p) {
    if (i >= pc.m || p >= pc.k) return RAW_T(0);
    return RAW_T(A[base + (A_T ? p * pc.lda + i : i * pc.lda + p)]);
}
RAW_T b_at(uint base, uint p, uint j) {
    if (p >= pc.k || j >= pc.n) return RAW_T(0);
    return RAW_T(B[base + (B_T ? brow(j) * pc.ldb + p : p * pc.ldb + j)]);
}


void main() {
    const uint nthreads = SUBGROUPS * SG;
    const uint t = gl_LocalInvocationID.x;
    const uint sg = gl_SubgroupID;
    const uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
    const uint batch = gl_WorkGroupID.z;
    const uint abase = pc.a_off + batch * PC_A_BS, bbase = pc.b_off + batch * PC_B_BS;
    const uint SG_N = BN / WN;
    const uint wm0 = (sg / SG_N) * WM, wn0 = (sg % SG_N) * WN;

    const uint A8N = A_ROWS * (A_COLS / 8), B8N = B_ROWS * (B_COLS / 8);
    const uint RA = (A8N + SUBGROUPS * SG - 1) / (SUBGROUPS * SG);
    const uint RB = (B8N + SUBGROUPS * SG - 1) / (SUBGROUPS * SG);
    uvec4 ra[RA], rb[RB];

    coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator> acc[FM][FN];
    [[unroll]] for (uint i = 0; i < FM; i++)
        [[unroll]] for (uint j = 0; j < FN; j++)
            acc[i][j] = coopmat<float, gl_ScopeSubgroup, MM, NN, gl_MatrixUseAccumulator>(0.0);

    const uint nslices = (pc.k + BK - 1) / BK;

    // Slot s of this thread is uvec4 number s*nthreads + t of the slice, in memory order.
#define FETCH(k0)                                                                                   \
    [[unroll]] for (uint s = 0; s < RA; s++) {                                                      \
        uint q = s * nthreads + t;                                                                  \
        uvec4 v = uvec4(0);                                                                         \
        if (q < A8N) {                                                                              \
            uint r = q / (A_COLS / 8), c = (q % (A_COLS / 8)) * 8;                                  \
            uint i = A_T ? row0 + c : row0 + r, p = A_T ? (k0) + r : (k0) + c;                      \
            if (VEC_A) {                                                                            \
                if (i < pc.m && p < pc.k) v = A8[(abase + (A_T ? p * pc.lda + i : i * pc.lda + p)) / 8]; \
            } else if (A_T) {                                                                       \
                v = uvec4(pack2(a_at(abase, i, p), a_at(abase, i + 1, p)),                          \
                          pack2(a_at(abase, i + 2, p), a_at(abase, i + 3, p)),                      \
                          pack2(a_at(abase, i + 4, p), a_at(abase, i + 5, p)),                      \
                          pack2(a_at(abase, i + 6, p), a_at(abase, i + 7, p)));                     \
            } else {                                                                                \
                v = uvec4(pack2(a_at(abase, i, p), a_at(abase, i, p + 1)),                          \
                          pack2(a_at(abase, i, p + 2), a_at(abase, i, p + 3)),                      \
                          pack2(a_at(abase, i, p + 4), a_at(abase, i, p + 5)),                      \
                          pack2(a_at(abase, i, p + 6), a_at(abase, i, p + 7)));                     \
            }                                                                                       \
        }                                                                                           \
        ra[s] = v;                                                                                  \
    }                                                                                               \
    [[unroll]] for (uint s = 0; s < RB; s++) {                                                      \
        uint q = s * nthreads + t;                                                                  \
        uvec4 v = uvec4(0);                                                                         \
        if (q < B8N) {                                                                              \
            uint r = q / (B_COLS / 8), c = (q % (B_COLS / 8)) * 8;                                  \
            uint p = B_T ? (k0) + c : (k0) + r, j = B_T ? col0 + r : col0 + c;                      \
            if (VEC_B) {                                                                            \
                if (p < pc.k && j < pc.n) v = B8[(bbase + (B_T ? brow(j) * pc.ldb + p : p * pc.ldb + j)) / 8]; \
            } else if (B_T) {                                                                       \
                v = uvec4(pack2(b_at(bbase, p, j), b_at(bbase, p + 1, j)),                          \
                          pack2(b_at(bbase, p + 2, j), b_at(bbase, p + 3, j)),                      \
                          pack2(b_at(bbase, p + 4, j), b_at(bbase, p + 5, j)),                      \
                          pack2(b_at(bbase, p + 6, j), b_at(bbase, p + 7, j)));                     \
            } else {                                                                                \
                v = uvec4(pack2(b_at(bbase, p, j), b_at(bbase, p, j + 1)),                          \
                          pack2(b_at(bbase, p, j + 2), b_at(bbase, p, j + 3)),                      \
                          pack2(b_at(bbase, p, j + 4), b_at(bbase, p, j + 5)),                      \
                          pack2(b_at(bbase, p, j + 6), b_at(bbase, p, j + 7)));                     \
            }                                                                                       \
        }                                                                                           \
        rb[s] = v;                                                                                  \
    }

#define STORE(buf)                                                                                  \
    [[unroll]] for (uint s = 0; s < RA; s++) {                                                      \
        uint q = s * nthreads + t;                                                                  \
        if (q < A8N) As[(buf) * A_SZ + (q / (A_COLS / 8)) * A_LD + q % (A_COLS / 8)] = ra[s];       \
    }                                                                                               \
    [[unroll]] for (uint s = 0; s < RB; s++) {                                                      \
        uint q = s * nthreads + t;                                                                  \
        if (q < B8N) Bs[(buf) * B_SZ + (q / (B_COLS / 8)) * B_LD + q % (B_COLS / 8)] = rb[s];       \
    }

    if (nslices > 0) {
        FETCH(0)
        STORE(0)
    }
    barrier();
    uint cur = 0;
    for (uint sl = 0; sl < nslices; sl++) {
        bool more = sl + 1 < nslices;
        if (more) { FETCH((sl + 1) * BK) }
        [[unroll]] for (uint kk = 0; kk < BK; kk += KK) {
            coopmat<ELEM_AB, gl_ScopeSubgroup, MM, KK, gl_MatrixUseA> fa[FM];
            coopmat<ELEM_AB, gl_ScopeSubgroup, KK, NN, gl_MatrixUseB> fb[FN];
            // Element offsets are in uvec4s: a fragment starts on an 8-element boundary because
            // MM, NN and KK are multiples of 8.
            [[unroll]] for (uint i = 0; i < FM; i++) {
                uint off = A_T ? kk * A_LD + (wm0 + i * MM) / 8 : (wm0 + i * MM) * A_LD + kk / 8;
                coopMatLoad(fa[i], As, cur * A_SZ + off, A_LD,
                            A_T ? gl_CooperativeMatrixLayoutColumnMajor : gl_CooperativeMatrixLayoutRowMajor);
            }
            [[unroll]] for (uint j = 0; j < FN; j++) {
                uint off = B_T ? (wn0 + j * NN) * B_LD + kk / 8 : kk * B_LD + (wn0 + j * NN) / 8;
                coopMatLoad(fb[j], Bs, cur * B_SZ + off, B_LD,
                            B_T ? gl_CooperativeMatrixLayoutColumnMajor : gl_CooperativeMatrixLayoutRowMajor);
            }
            [[unroll]] for (uint i = 0; i < FM; i++)
                [[unroll]] for (uint j = 0; j < FN; j++)
                    acc[i][j] = coopMatMulAdd(fa[i], fb[j], acc[i][j]);
        }
        if (more) { STORE(1 - cur) }
        barrier();
        cur = 1 - cur;
    }

    const uint cbase = pc.c_off + batch * pc.c_bs;
#if !defined(C_F16) && !defined(C_BF16)
    // Whole fragments inside C, no accumulation: straight to global memory.
    bool direct = pc.accumulate == 0 && row0 + wm0 + WM <= pc.m && col0 + wn0 + WN <= pc.n;
    if (direct) {
        [[unroll]] for (uint i = 0; i < FM; i++)
            [[unroll]] for (uint j = 0; j < FN; j++)
                coopMatStore(acc[i][j], CF, cbase + (row0 + wm0 + i * MM) * pc.ldc + col0 + wn0 + j * NN,
                             pc.ldc, gl_CooperativeMatrixLayoutRowMajor);
        return;
    }
#endif
    // Through this subgroup's MM x NN patch of shared memory, with bounds, conversion and +=.
    const uint lane = gl_SubgroupInvocationID;
    [[unroll]] for (uint i = 0; i < FM; i++)
        [[unroll]] for (uint j = 0; j < FN; j++) {
            coopMatStore(acc[i][j], Cs, sg * MM * NN, NN, gl_CooperativeMatrixLayoutRowMajor);
            subgroupBarrier();
            [[unroll]] for (uint e0 = 0; e0 < MM * NN; e0 += SG) {
                uint e = e0 + lane;
                uint gr = row0 + wm0 + i * MM + e / NN, gc = col0 + wn0 + j * NN + e % NN;
                if (e < MM * NN && gr < pc.m && gc < pc.n) {
                    uint o = cbase + gr * pc.ldc + gc;
                    float x = Cs[sg * MM * NN + e];
                    if (pc.accumulate != 0) x += LOAD_C(C[o]);
                    C[o] = STORE_C(x);
                }
            }
            subgroupBarrier();
        }
}
