// transpose.comp — out[b, j, i] = in[b, i, j] for a batch of matrices of 32-bit (or, as the e16
// variant, 16-bit) elements, through 32 x 32 tiles in shared memory so that both the reads and the
// writes of a subgroup are consecutive. A column of padding keeps the tile's columns on
// different banks.
//! variant e16: -DE16
#version 450
#if defined(E16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_int16 : require
#define ELEM uint16_t
#else
#define ELEM uint
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;   // 32 x 8
layout(binding = 0) readonly buffer I_ { ELEM I[]; };
layout(binding = 1) writeonly buffer O_ { ELEM O[]; };
layout(push_constant) uniform PC {
    uint rows, cols, ldi, ldo, i_off, o_off, i_bs, o_bs;
} pc;

shared ELEM tile[32][33];

void main() {
    const uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    const uint r0 = gl_WorkGroupID.y * 32, c0 = gl_WorkGroupID.x * 32;
    const uint ib = pc.i_off + gl_WorkGroupID.z * pc.i_bs, ob = pc.o_off + gl_WorkGroupID.z * pc.o_bs;
    for (uint y = ty; y < 32; y += gl_WorkGroupSize.y) {
        uint r = r0 + y, c = c0 + tx;
        if (r < pc.rows && c < pc.cols) tile[y][tx] = I[ib + r * pc.ldi + c];
    }
    barrier();
    for (uint y = ty; y < 32; y += gl_WorkGroupSize.y) {
        uint c = c0 + y, r = r0 + tx;   // output row c, column r
        if (r < pc.rows && c < pc.cols) O[ob + c * pc.ldo + r] = tile[tx][y];
    }
}
