// binary_codec.comp — vaccel.BinaryQuantizer's codes: one bit per element, set where x > the
// element's threshold (0 unless trained otherwise; NaN gives 0), packed 8 per byte; decoding gives
// +1.0 for a set bit and -1.0 for a clear one. Code rows are whole 32-bit words (row stride a
// multiple of 4 bytes); bits past d are written as zeros.
//
// Bit order within a byte (LITTLE): 0 = numpy.packbits' default 'big' (element 8i + b is bit 7 - b
// of byte i, the most significant bit first); 1 = 'little' (bit b), the order of faiss's
// real_to_binary / fvecs2bitvecs. Hamming distances do not depend on it.
//
// MODE 0 encode: one thread per output word (32 elements).  X (n, d) float, O codes.
// MODE 1 decode: one thread per output element.            X codes, O (n, d) float32.
//! variant f16: -DIN_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(IN_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#else
#define ELEM float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint MODE = 0;
layout(constant_id = 4) const uint LITTLE = 0;

layout(binding = 0) readonly buffer XF_ { ELEM XF[]; };
layout(binding = 0) readonly buffer XW_ { uint XW[]; };
layout(binding = 1) writeonly buffer OF_ { float OF[]; };
layout(binding = 1) writeonly buffer OW_ { uint OW[]; };
layout(binding = 2) readonly buffer THR_ { float THR[]; };

// Offsets and row strides: floats for float operands, bytes (word-aligned) for codes.
layout(push_constant) uniform PC {
    uint n, d, ldx, x_off, ldo, o_off, words, gx;
} pc;

// Position within its 32-bit word of element j's bit (bytes are little-endian in the word).
uint bit_of(uint j) {
    uint b = j & 7u;
    return ((j >> 3) & 3u) * 8u + (LITTLE == 1u ? b : 7u - b);
}

void main() {
    uint g = (gl_WorkGroupID.y * pc.gx + gl_WorkGroupID.x) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
    if (MODE == 0u) {
        if (g >= pc.n * pc.words) return;
        uint row = g / pc.words, w = g % pc.words;
        uint xb = pc.x_off + row * pc.ldx;
        uint word = 0u;
        [[unroll]] for (uint e = 0u; e < 32u; e++) {
            uint j = w * 32u + e;
            if (j < pc.d && float(XF[xb + j]) > THR[j]) word |= 1u << bit_of(j);
        }
        OW[(pc.o_off + row * pc.ldo) / 4u + w] = word;
    } else {
        if (g >= pc.n * pc.d) return;
        uint row = g / pc.d, j = g % pc.d;
        uint word = XW[(pc.x_off + row * pc.ldx) / 4u + j / 32u];
        OF[pc.o_off + row * pc.ldo + j] = ((word >> bit_of(j)) & 1u) != 0u ? 1.0 : -1.0;
    }
}
