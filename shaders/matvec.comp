// matvec.comp — y = A·x for a batch of matrices, float32 accumulation. Row-major A: each subgroup
// reduces whole rows with 4-element loads where aligned (a memory-bound pass over A, read once).
// Column-major A (a transposed view): each thread owns one output and walks down its column,
// so a subgroup's loads are consecutive. Written for any subgroup size.
//! variant f16: -DA_F16
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#if defined(A_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#define ELEM4 f16vec4
#else
#define ELEM float
#define ELEM4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const bool COLMAJOR = false;
layout(constant_id = 4) const bool VEC = false;   // k, lda and a_off multiples of 4 (row-major)

layout(binding = 0) readonly buffer A_ { ELEM A[]; };
layout(binding = 0) readonly buffer A4_ { ELEM4 A4[]; };
layout(binding = 1) readonly buffer X_ { float X[]; };
layout(binding = 2) writeonly buffer Y_ { float Y[]; };

layout(push_constant) uniform PC {
    uint m, k, lda, a_off, x_off, y_off, a_bs, x_bs, y_bs;
} pc;

void main() {
    const uint batch = gl_WorkGroupID.z;
    const uint abase = pc.a_off + batch * pc.a_bs, xbase = pc.x_off + batch * pc.x_bs;
    const uint ybase = pc.y_off + batch * pc.y_bs;
    if (COLMAJOR) {
        uint i = gl_WorkGroupID.x * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
        if (i >= pc.m) return;
        float s = 0.0;
        for (uint p = 0; p < pc.k; p++) s = fma(float(A[abase + p * pc.lda + i]), X[xbase + p], s);
        Y[ybase + i] = s;
        return;
    }
    const uint rows = gl_NumSubgroups;
    uint i = gl_WorkGroupID.x * rows + gl_SubgroupID;
    if (i >= pc.m) return;
    uint base = abase + i * pc.lda;
    float s = 0.0;
    if (VEC) {
        for (uint q = gl_SubgroupInvocationID; q < pc.k / 4; q += gl_SubgroupSize) {
            vec4 a = vec4(A4[base / 4 + q]);
            uint p = xbase + q * 4;
            s += dot(a, vec4(X[p], X[p + 1], X[p + 2], X[p + 3]));
        }
    } else {
        for (uint p = gl_SubgroupInvocationID; p < pc.k; p += gl_SubgroupSize)
            s = fma(float(A[base + p]), X[xbase + p], s);
    }
    s = subgroupAdd(s);
    if (subgroupElect()) Y[ybase + i] = s;
}
