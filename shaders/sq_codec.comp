// sq_codec.comp — vaccel.ScalarQuantizer's codes: encode float rows into 8- or 4-bit codes,
// decode codes into float32 rows, or reduce decoded rows to their squared / inverse L2 norms (what
// the distance tiles of SQIndex search need, without a float copy of the database).
//
// The quantizer (per dimension j, L = 2^BITS levels, trained vmin_j <= vmax_j):
//     scale_j = L / (vmax_j - vmin_j)          (0 when vmax_j == vmin_j)
//     step_j  = (vmax_j - vmin_j) / L
//     encode: t = (x - vmin_j) * scale_j;  c = t >= 0 ? min(floor(t), L - 1) : 0   (NaN -> 0)
//     decode: vmin_j + (c + 0.5) * step_j  (the centre of bucket c)
// each operation rounded to float32 (no fused multiply-add: `precise`), so results equal the
// NumPy reference bit for bit. 8-bit codes are one byte per element; 4-bit codes pack two per byte,
// element 2i in the low nibble of byte i (faiss's QT_4bit layout). Code rows are whole 32-bit
// words (row stride a multiple of 4 bytes): the bytes past the code are written as zeros.
//
// MODE 0 encode: one thread per output word (4 or 8 elements).  X (n, d) float, O codes.
// MODE 1 decode: one thread per input word.                      X codes, O (n, d) float32.
// MODE 2 / 3: ROWS rows per workgroup: squared norm / inverse norm (inf for a zero row, as row_l2).
//! variant f16: -DIN_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
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
layout(constant_id = 4) const uint BITS = 8;
layout(constant_id = 5) const uint ROWS = 8;    // MODE 2-3: rows per workgroup

layout(binding = 0) readonly buffer XF_ { ELEM XF[]; };   // MODE 0: the floats
layout(binding = 0) readonly buffer XW_ { uint XW[]; };   // MODE 1-3: the codes
layout(binding = 1) writeonly buffer OF_ { float OF[]; };
layout(binding = 1) writeonly buffer OW_ { uint OW[]; };
layout(binding = 2) readonly buffer VMIN_ { float VMIN[]; };
layout(binding = 3) readonly buffer SC_ { float SC[]; };   // scale (MODE 0) or step (MODE 1-3)

// Offsets in elements of the bound type: x_off floats (MODE 0) or bytes (MODE 1-3, word-aligned);
// o_off bytes (MODE 0, word-aligned) or floats. ldx / ldo likewise.
layout(push_constant) uniform PC {
    uint n, d, ldx, x_off, ldo, o_off, words, gx;
} pc;

const uint EPW = 32u / BITS;          // elements per 32-bit word
const uint LEVELS = 1u << BITS;

uint encode_one(float x, uint j) {
    precise float t = (x - VMIN[j]) * SC[j];
    // Negative and NaN go to 0; min() before the conversion keeps +inf in range.
    return t >= 0.0 ? uint(min(floor(t), float(LEVELS - 1u))) : 0u;
}

float decode_one(uint c, uint j) {
    precise float v = VMIN[j] + (float(c) + 0.5) * SC[j];
    return v;
}

void main() {
    if (MODE <= 1u) {
        uint g = (gl_WorkGroupID.y * pc.gx + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
        if (g >= pc.n * pc.words) return;
        uint row = g / pc.words, w = g % pc.words;
        uint j0 = w * EPW;
        if (MODE == 0u) {
            uint xb = pc.x_off + row * pc.ldx;
            uint word = 0u;
            [[unroll]] for (uint e = 0u; e < EPW; e++) {
                uint j = j0 + e;
                if (j < pc.d) word |= encode_one(float(XF[xb + j]), j) << (e * BITS);
            }
            OW[(pc.o_off + row * pc.ldo) / 4u + w] = word;
        } else {
            uint word = XW[(pc.x_off + row * pc.ldx) / 4u + w];
            uint ob = pc.o_off + row * pc.ldo;
            [[unroll]] for (uint e = 0u; e < EPW; e++) {
                uint j = j0 + e;
                if (j < pc.d) OF[ob + j] = decode_one((word >> (e * BITS)) & (LEVELS - 1u), j);
            }
        }
        return;
    }
    // Norms of decoded rows: ROWS rows per workgroup, a subgroup per row at a time, its lanes over
    // the row's words (any subgroup size).
    for (uint r = gl_SubgroupID; r < ROWS; r += gl_NumSubgroups) {
        uint row = (gl_WorkGroupID.y * pc.gx + gl_WorkGroupID.x) * ROWS + r;
        if (row >= pc.n) break;
        uint xb = (pc.x_off + row * pc.ldx) / 4u;
        float s = 0.0;
        for (uint w = gl_SubgroupInvocationID; w < pc.words; w += gl_SubgroupSize) {
            uint word = XW[xb + w];
            [[unroll]] for (uint e = 0u; e < EPW; e++) {
                uint j = w * EPW + e;
                if (j < pc.d) {
                    float v = decode_one((word >> (e * BITS)) & (LEVELS - 1u), j);
                    s = fma(v, v, s);
                }
            }
        }
        s = subgroupAdd(s);
        if (subgroupElect()) OF[pc.o_off + row] = MODE == 2u ? s : 1.0 / sqrt(s);
    }
}
