// kmeans_gather.comp — rows of X picked by an index list on the device, shifted (x − shift) and
// written as float32 rows: the initial centres of a random init, and each k-means++ step's
// candidate points. X may span several binding windows: each dispatch covers rows [r0, r0 + rc)
// and copies only the picked rows inside it. One workgroup per picked row.
//! variant f16: -DX_F16
#version 450
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM_X float16_t
#else
#define ELEM_X float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;

layout(binding = 0) readonly buffer X_ { ELEM_X X[]; };
layout(binding = 1) readonly buffer I_ { uint I[]; };
layout(binding = 2) readonly buffer MU_ { float MU[]; };
layout(binding = 3) writeonly buffer O_ { float O[]; };

layout(push_constant) uniform PC {
    uint d, ldx, x_off;
    uint r0, rc;           // global rows of this X window
    uint i_off, mu_off, o_off, ldo;
    uint has_shift;
} pc;

void main() {
    uint q = gl_WorkGroupID.x;
    uint row = I[pc.i_off + q];
    if (row < pc.r0 || row - pc.r0 >= pc.rc) return;
    uint xb = pc.x_off + (row - pc.r0) * pc.ldx, ob = pc.o_off + q * pc.ldo;
    for (uint f = gl_LocalInvocationID.x; f < pc.d; f += gl_WorkGroupSize.x) {
        float v = float(X[xb + f]);
        if (pc.has_shift != 0u) v -= MU[pc.mu_off + f];
        O[ob + f] = v;
    }
}
