// matmul_cm2.comp — C = A·B (or C += A·B) for float16 (or bfloat16) A and B through workgroup-scope cooperative
// matrices of VK_NV_cooperative_matrix2: the driver tiles each BM x BN x BK product over the
// workgroup's subgroups and stages the operands itself. Operands are addressed as tensors (a
// dimension and a row stride each, a permuted view for a transposed operand), with clamping, so
// edge tiles need no code of their own: loads past an edge read zeros, stores past it are dropped.
// One BM x BN tile of C per workgroup, float32 accumulation, float32 or float16 (bfloat16) C,
// a bfloat16 C rounded to nearest even as the other kernels round it. A workgroup
// whose tile lies wholly inside C, over a depth of whole BK slices, with 16-byte aligned operands
// (ALIGN_A / ALIGN_B), loads through unclamped layouts whose strides and offsets the compiler
// knows to be multiples of 8 elements; only the others pay for clamping.
//! variant f16c: -DC_F16
//! variant bf16 [bfloat16]: -DBF16
//! variant bf16c [bfloat16]: -DBF16 -DC_BF16
//! requires: cooperative_matrix
//! target: vulkan1.3
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require
#if defined(BF16)
#extension GL_EXT_bfloat16 : require
#define ELEM_AB bfloat16_t
#else
#define ELEM_AB float16_t
#endif
#if defined(C_F16)
#define ELEM_C float16_t
#elif defined(C_BF16)
// A bfloat16 result: each float32 is first rounded to nearest even in its own bits (a NaN stays
// a quiet NaN), so the conversion to bfloat16 that follows is exact whatever its rounding.
#define ELEM_C bfloat16_t
float bf16_round(float x) {
    uint u = floatBitsToUint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return uintBitsToFloat(u | 0x400000u);
    return uintBitsToFloat(((u + 0x7fffu + ((u >> 16) & 1u)) >> 16) << 16);
}
#else
#define ELEM_C float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 128;
layout(constant_id = 4) const uint BN = 128;
layout(constant_id = 5) const uint BK = 32;
layout(constant_id = 6) const bool A_T = false;
layout(constant_id = 7) const bool B_T = false;
// The operand's leading dimension, offset and batch stride are multiples of 8 elements.
layout(constant_id = 8) const bool ALIGN_A = false;
layout(constant_id = 9) const bool ALIGN_B = false;
// BK slices per trip of the main loop (unrolled).
layout(constant_id = 10) const uint UNROLL = 8;

layout(binding = 0) readonly buffer A_ { ELEM_AB A[]; };
layout(binding = 1) readonly buffer B_ { ELEM_AB B[]; };
layout(binding = 2) buffer C_ { ELEM_C C[]; };

layout(push_constant) uniform PC {
    uint m, n, k;
    uint lda, ldb, ldc;
    uint a_off, b_off, c_off;
    uint a_bs, b_bs, c_bs;
    uint accumulate;
} pc;

#define CLAMP gl_CooperativeMatrixClampModeConstantNV
#define ACC coopmat<float, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>

void main() {
    const uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;
    const uint batch = gl_WorkGroupID.z;
    const uint abase = pc.a_off + batch * pc.a_bs, bbase = pc.b_off + batch * pc.b_bs;
    const uint cbase = pc.c_off + batch * pc.c_bs;

    // Each operand as it lies in memory: rows of `ld` elements. A is (m, k), or (k, m) when A_T;
    // B is (k, n), or (n, k) when B_T. A transposed operand is read through a permuted view.
    tensorLayoutNV<2, CLAMP> ta = createTensorLayoutNV(2, CLAMP);
    tensorLayoutNV<2, CLAMP> tb = createTensorLayoutNV(2, CLAMP);
    tensorLayoutNV<2, CLAMP> tc = createTensorLayoutNV(2, CLAMP);
    ta = A_T ? setTensorLayoutDimensionNV(ta, pc.k, pc.m) : setTensorLayoutDimensionNV(ta, pc.m, pc.k);
    tb = B_T ? setTensorLayoutDimensionNV(tb, pc.n, pc.k) : setTensorLayoutDimensionNV(tb, pc.k, pc.n);
    tc = setTensorLayoutDimensionNV(tc, pc.m, pc.n);
    ta = setTensorLayoutStrideNV(ta, pc.lda, 1);
    tb = setTensorLayoutStrideNV(tb, pc.ldb, 1);
    tc = setTensorLayoutStrideNV(tc, pc.ldc, 1);
    tensorViewNV<2, false, 1, 0> tr = createTensorViewNV(2, false, 1, 0);

    ACC acc = ACC(0.0);
    if (pc.accumulate != 0) {
        coopmat<ELEM_C, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator> c0;
        coopMatLoadTensorNV(c0, C, cbase, sliceTensorLayoutNV(tc, row0, BM, col0, BN));
        acc = ACC(c0);
    }
    // One BK slice: acc += A[rows, p:p+BK] * B[p:p+BK, cols] through layouts LA / LB.
#define STEP(LA, LB, AB, BB)                                                                        \
    {                                                                                               \
        coopmat<ELEM_AB, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA> ma;                              \
        coopmat<ELEM_AB, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB> mb;                              \
        if (A_T)                                                                                    \
            coopMatLoadTensorNV(ma, A, AB, sliceTensorLayoutNV(LA, p, BK, row0, BM), tr);           \
        else                                                                                        \
            coopMatLoadTensorNV(ma, A, AB, sliceTensorLayoutNV(LA, row0, BM, p, BK));               \
        if (B_T)                                                                                    \
            coopMatLoadTensorNV(mb, B, BB, sliceTensorLayoutNV(LB, col0, BN, p, BK), tr);           \
        else                                                                                        \
            coopMatLoadTensorNV(mb, B, BB, sliceTensorLayoutNV(LB, p, BK, col0, BN));               \
        acc = coopMatMulAdd(ma, mb, acc);                                                           \
    }
    if (ALIGN_A && ALIGN_B && row0 + BM <= pc.m && col0 + BN <= pc.n && pc.k % BK == 0) {
        // Unclamped: every load is in bounds and 16-byte aligned.
        const uint lda = pc.lda & ~7u, ldb = pc.ldb & ~7u;
        const uint ab = abase & ~7u, bb = bbase & ~7u;
        tensorLayoutNV<2> ua = createTensorLayoutNV(2);
        tensorLayoutNV<2> ub = createTensorLayoutNV(2);
        ua = A_T ? setTensorLayoutDimensionNV(ua, pc.k, pc.m) : setTensorLayoutDimensionNV(ua, pc.m, pc.k);
        ub = B_T ? setTensorLayoutDimensionNV(ub, pc.n, pc.k) : setTensorLayoutDimensionNV(ub, pc.k, pc.n);
        ua = setTensorLayoutStrideNV(ua, lda, 1);
        ub = setTensorLayoutStrideNV(ub, ldb, 1);
        uint p = 0;
        for (; p + UNROLL * BK <= pc.k;) {
            [[unroll]] for (uint u = 0; u < UNROLL; u++) {
                STEP(ua, ub, ab, bb)
                p += BK;
            }
        }
        for (; p < pc.k; p += BK) { STEP(ua, ub, ab, bb) }
    } else {
        for (uint p = 0; p < pc.k; p += BK) { STEP(ta, tb, abase, bbase) }
    }
#if defined(C_F16)
    coopmat<float16_t, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator> res =
        coopmat<float16_t, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>(acc);
    coopMatStoreTensorNV(res, C, cbase, sliceTensorLayoutNV(tc, row0, BM, col0, BN));
#elif defined(C_BF16)
    [[unroll]] for (uint i = 0; i < acc.length(); i++) acc[i] = bf16_round(acc[i]);
    coopmat<bfloat16_t, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator> res =
        coopmat<bfloat16_t, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>(acc);
    coopMatStoreTensorNV(res, C, cbase, sliceTensorLayoutNV(tc, row0, BM, col0, BN));
#else
    coopMatStoreTensorNV(acc, C, cbase, sliceTensorLayoutNV(tc, row0, BM, col0, BN));
#endif
}
