// row_l2.comp — per-row sums of squares (MODE 0: out[i] = sum x[i,:]^2), L2 normalisation
// (MODE 1: out[i,:] = x[i,:] / ||x[i,:]||, zero rows left zero) or inverse norms (MODE 2:
// out[i] = 1 / ||x[i,:]||, inf for zero rows, which makes their cosine distances NaN as SciPy's). Each subgroup takes one row of the
// workgroup's ROWS at a time, so any subgroup size works.
//! variant f16: -DIN_F16
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require
#if defined(IN_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const uint ROWS = 8;

layout(binding = 0) readonly buffer X_ { ELEM X[]; };
layout(binding = 1) writeonly buffer O_ { float O[]; };

layout(push_constant) uniform PC {
    uint m, d, ldx, x_off, ldo, o_off;
} pc;

void main() {
    for (uint r = gl_SubgroupID; r < ROWS; r += gl_NumSubgroups) {
        uint row = gl_WorkGroupID.x * ROWS + r;
        if (row >= pc.m) break;
        uint base = pc.x_off + row * pc.ldx;
        float s = 0.0;
        for (uint k = gl_SubgroupInvocationID; k < pc.d; k += gl_SubgroupSize) {
            float v = float(X[base + k]);
            s = fma(v, v, s);
        }
        s = subgroupAdd(s);
        if (MODE == 0) {
            if (subgroupElect()) O[pc.o_off + row] = s;
        } else if (MODE == 2) {
            if (subgroupElect()) O[pc.o_off + row] = 1.0 / sqrt(s);
        } else {
            float nrm = sqrt(s);
            uint ob = pc.o_off + row * pc.ldo;
            for (uint k = gl_SubgroupInvocationID; k < pc.d; k += gl_SubgroupSize) {
                float v = float(X[base + k]);
                O[ob + k] = s == 0.0 ? v : v / nrm;
            }
        }
    }
}
