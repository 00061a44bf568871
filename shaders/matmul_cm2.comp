// matmul_cm2.comp — C = A·B (or C += A·B) for float16 A and B through workgroup-scope cooperative
// matrices of VK_NV_cooperative_matrix2: the driver tiles each BM x BN x BK product over the
// workgroup's subgroups and stages the operands itself. Operands are addressed as tensors (a
// dimension and a row stride each, a permuted view for a transposed operand), with clamping, so
// edge tiles need no code of their own: loads past an edge read zeros, stores past it are dropped.
// One BM x BN tile of C per workgroup, float32 accumulation, float32 or float16 C.
//! variant f16c: -DC_F16
//! requires: cooperative_matrix
//! target: vulkan1.3
#version 450
#extension GL_KHR_cooperative_matrix : require
#extension GL_NV_cooperative_matrix2 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_control_flow_attributes : require
#if defined(C_F16)
#define ELEM_C float16_t
#else
#define ELEM_C float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 128;
layout(constant_id = 4) const uint BN = 128;
layout(constant_id = 5) const uint BK = 32;
layout(constant_id = 6) const bool A_T = false;
layout(constant_id = 7) const bool B_T = false;

layout(binding = 0) readonly buffer A_ { float16_t A[]; };
layout(binding = 1) readonly buffer B_ { float16_t B[]; };
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
    for (uint p = 0; p < pc.k; p += BK) {
        coopmat<float16_t, gl_ScopeWorkgroup, BM, BK, gl_MatrixUseA> ma;
        coopmat<float16_t, gl_ScopeWorkgroup, BK, BN, gl_MatrixUseB> mb;
        if (A_T)
            coopMatLoadTensorNV(ma, A, abase, sliceTensorLayoutNV(ta, p, BK, row0, BM), tr);
        else
            coopMatLoadTensorNV(ma, A, abase, sliceTensorLayoutNV(ta, row0, BM, p, BK));
        if (B_T)
            coopMatLoadTensorNV(mb, B, bbase, sliceTensorLayoutNV(tb, col0, BN, p, BK), tr);
        else
            coopMatLoadTensorNV(mb, B, bbase, sliceTensorLayoutNV(tb, p, BK, col0, BN));
        acc = coopMatMulAdd(ma, mb, acc);
    }
#if defined(C_F16)
    coopmat<float16_t, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator> res =
        coopmat<float16_t, gl_ScopeWorkgroup, BM, BN, gl_MatrixUseAccumulator>(acc);
    coopMatStoreTensorNV(res, C, cbase, sliceTensorLayoutNV(tc, row0, BM, col0, BN));
#else
    coopMatStoreTensorNV(acc, C, cbase, sliceTensorLayoutNV(tc, row0, BM, col0, BN));
#endif
}
