// elementwise.comp — every elementwise op and fused chain of them: a register-machine program of
// up to 24 instructions in specialization constants (ids 8..31), so the driver folds it into
// straight-line code and each distinct program is one cached pipeline. Up to 6 inputs (bindings
// 0..5), the output (binding 6), and the operands' strides (binding 7, MODE 1 only). Each thread
// computes groups of four elements as vec4: MODE 0 reads and writes contiguous operands (or
// single broadcast values) with vec4 accesses and no index arithmetic; MODE 1 takes up to 4 dims
// with per-operand strides (0 for a broadcast dim) and, when VEC == 4, vec4 accesses along the
// innermost dim.
//
// Instruction word: op (bits 0..5), destination register (6..9), sources a, b, c (10..15,
// 16..21, 22..27): 0..15 a register (inputs are loaded into registers 0..NIN-1), 16..31 the
// push-constant scalar k[s - 16]. The opcodes are mirrored in vaccel/elementwise.py.
//! variant f16: -DHAS_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
// NaN and inf are values here (NumPy's semantics): without SignedZeroInfNanPreserve, NVIDIA's
// compiler may fold isnan() to false and selects into max/min, which drop NaN.
#extension GL_EXT_spirv_intrinsics : require
spirv_execution_mode(extensions = ["SPV_KHR_float_controls"], capabilities = [4466], 4461, 32);
#if defined(HAS_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint NIN = 1;
layout(constant_id = 4) const uint MODE = 0;
// bits 0..5: input j is float16; bit 6: the output is float16; bits 8..13: input j is one value
// broadcast everywhere (MODE 0) or along the innermost dim (MODE 1, VEC 4)
layout(constant_id = 5) const uint IOMASK = 0;
layout(constant_id = 6) const uint NDIM = 1;
layout(constant_id = 7) const uint RESULT = 0;
layout(constant_id = 8) const uint P0 = 0;
layout(constant_id = 9) const uint P1 = 0;
layout(constant_id = 10) const uint P2 = 0;
layout(constant_id = 11) const uint P3 = 0;
layout(constant_id = 12) const uint P4 = 0;
layout(constant_id = 13) const uint P5 = 0;
layout(constant_id = 14) const uint P6 = 0;
layout(constant_id = 15) const uint P7 = 0;
layout(constant_id = 16) const uint P8 = 0;
layout(constant_id = 17) const uint P9 = 0;
layout(constant_id = 18) const uint P10 = 0;
layout(constant_id = 19) const uint P11 = 0;
layout(constant_id = 20) const uint P12 = 0;
layout(constant_id = 21) const uint P13 = 0;
layout(constant_id = 22) const uint P14 = 0;
layout(constant_id = 23) const uint P15 = 0;
layout(constant_id = 24) const uint P16 = 0;
layout(constant_id = 25) const uint P17 = 0;
layout(constant_id = 26) const uint P18 = 0;
layout(constant_id = 27) const uint P19 = 0;
layout(constant_id = 28) const uint P20 = 0;
layout(constant_id = 29) const uint P21 = 0;
layout(constant_id = 30) const uint P22 = 0;
layout(constant_id = 31) const uint P23 = 0;

// MODE 1 with VEC 4 is marked by bit 7 of IOMASK.
const bool VEC4 = (IOMASK & 0x80u) != 0u;
const uint UNROLL = 4u;

#define IN_BUF(i)                                                                      \
    layout(binding = i) restrict readonly buffer InF##i { float v[]; } inF##i;                  \
    layout(binding = i) restrict readonly buffer InV##i { vec4 v[]; } inV##i;
IN_BUF(0) IN_BUF(1) IN_BUF(2) IN_BUF(3) IN_BUF(4) IN_BUF(5)
layout(binding = 6) restrict writeonly buffer OutF { float v[]; } outF;
layout(binding = 6) restrict writeonly buffer OutV { vec4 v[]; } outV;
#if defined(HAS_F16)
#define IN_BUF16(i)                                                                    \
    layout(binding = i) restrict readonly buffer InH##i { float16_t v[]; } inH##i;              \
    layout(binding = i) restrict readonly buffer InHV##i { f16vec4 v[]; } inHV##i;
IN_BUF16(0) IN_BUF16(1) IN_BUF16(2) IN_BUF16(3) IN_BUF16(4) IN_BUF16(5)
layout(binding = 6) restrict writeonly buffer OutH { float16_t v[]; } outH;
layout(binding = 6) restrict writeonly buffer OutHV { f16vec4 v[]; } outHV;
#endif
// Strides in elements: operand j (6 = the output), dim d (outermost first) at s[4 * j + d].
layout(binding = 7) readonly buffer Meta { uint s[]; } meta;

layout(push_constant) uniform PC {
    uint n;          // elements in this dispatch
    uint rem[7];     // element offset of each operand within its binding window
    uint shape[4];   // MODE 1: the dims, outermost first, padded in front with 1
    float k[16];     // scalar operands
} pc;

bool is16(uint j) { return ((IOMASK >> j) & 1u) != 0u; }
bool bcast(uint j) { return ((IOMASK >> (8u + j)) & 1u) != 0u; }

float ld1(uint j, uint i) {
#if defined(HAS_F16)
    if (is16(j)) {
        switch (j) {
        case 0: return float(inH0.v[i]);
        case 1: return float(inH1.v[i]);
        case 2: return float(inH2.v[i]);
        case 3: return float(inH3.v[i]);
        case 4: return float(inH4.v[i]);
        default: return float(inH5.v[i]);
        }
    }
#endif
    switch (j) {
    case 0: return inF0.v[i];
    case 1: return inF1.v[i];
    case 2: return inF2.v[i];
    case 3: return inF3.v[i];
    case 4: return inF4.v[i];
    default: return inF5.v[i];
    }
}

// Four consecutive elements starting at element 4 * q.
vec4 ld4(uint j, uint q) {
#if defined(HAS_F16)
    if (is16(j)) {
        switch (j) {
        case 0: return vec4(inHV0.v[q]);
        case 1: return vec4(inHV1.v[q]);
        case 2: return vec4(inHV2.v[q]);
        case 3: return vec4(inHV3.v[q]);
        case 4: return vec4(inHV4.v[q]);
        default: return vec4(inHV5.v[q]);
        }
    }
#endif
    switch (j) {
    case 0: return inV0.v[q];
    case 1: return inV1.v[q];
    case 2: return inV2.v[q];
    case 3: return inV3.v[q];
    case 4: return inV4.v[q];
    default: return inV5.v[q];
    }
}

void st1(uint i, float v) {
#if defined(HAS_F16)
    if ((IOMASK & 0x40u) != 0u) { outH.v[i] = float16_t(v); return; }
#endif
    outF.v[i] = v;
}

void st4(uint q, vec4 v) {
#if defined(HAS_F16)
    if ((IOMASK & 0x40u) != 0u) { outHV.v[q] = f16vec4(v); return; }
#endif
    outV.v[q] = v;
}

#define NAN uintBitsToFloat(0x7fc00000u)
#define INF uintBitsToFloat(0x7f800000u)

// NumPy's maximum/minimum: NaN in either operand gives NaN (GLSL's max/min do not promise it).
vec4 nanmax(vec4 a, vec4 b) {
    vec4 r = max(a, b);
    r = mix(r, b, isnan(b));
    return mix(r, a, isnan(a));
}
vec4 nanmin(vec4 a, vec4 b) {
    vec4 r = min(a, b);
    r = mix(r, b, isnan(b));
    return mix(r, a, isnan(a));
}

// Phi(x) = 0.5 erfc(-x / sqrt 2) through erfc(z) = t P(t) exp(-z^2), t = 1 / (1 + z / 2), with
// P a degree-8 fit of erfcx(z) / t over z in [0, 10] (relative error 5e-8; vaccel's own fit).
// It keeps its relative accuracy in the far negative tail, where 1 + erf(x) would cancel.
vec4 gelu_erf(vec4 x) {
    vec4 z = abs(x) * 0.70710678118654752;
    vec4 t = 1.0 / (1.0 + 0.5 * z);
    vec4 p = vec4(-5.899930621e-02);
    p = p * t + 2.842611811e-01;
    p = p * t - 4.866046354e-01;
    p = p * t + 2.774484970e-01;
    p = p * t - 2.624194826e-02;
    p = p * t + 2.025419924e-01;
    p = p * t + 2.431361792e-01;
    p = p * t + 2.823713844e-01;
    p = p * t + 2.820866148e-01;
    vec4 q = 0.5 * t * p * exp(-z * z);  // 0.5 erfc(|x| / sqrt 2)
    vec4 phi = mix(1.0 - q, q, lessThan(x, vec4(0.0)));
    return x * phi;
}

vec4 apply(uint op, vec4 a, vec4 b, vec4 c) {
    switch (op) {
    case 1: return a + b;
    case 2: return a - b;
    case 3: return a * b;
    case 4: return a / b;
    case 5: return nanmax(a, b);
    case 6: return nanmin(a, b);
    case 7: return -a;
    case 8: return abs(a);
    case 9: return exp(a);
    // GLSL leaves log and sqrt undefined below zero: NumPy's values are spelled out.
    case 10: return mix(mix(log(a), vec4(-INF), equal(a, vec4(0.0))), vec4(NAN), lessThan(a, vec4(0.0)));
    case 11: return mix(sqrt(a), vec4(NAN), lessThan(a, vec4(0.0)));
    case 12: return mix(a, vec4(0.0), lessThan(a, vec4(0.0)));            // NaN stays NaN
    case 13: return gelu_erf(a);
    // x (1 + tanh u) / 2 = x / (1 + exp(-2u)): no tanh of large arguments (NaN on some drivers).
    case 14: return a / (1.0 + exp(-1.5957691216057308 * (a + 0.044715 * a * a * a)));
    case 15: return a / (1.0 + exp(-a));                                   // silu
    case 16: return 1.0 / (1.0 + exp(-a));                                 // sigmoid
    case 17: return nanmin(nanmax(a, b), c);                               // clip
    case 18: return a;
    default: return a;
    }
}

#define SRC(s) ((s) < 16u ? R[(s) & 15u] : vec4(pc.k[(s) & 15u]))
#define STEP(P)                                                                            \
    if (((P) & 63u) != 0u)                                                                 \
        R[((P) >> 6) & 15u] = apply((P) & 63u, SRC(((P) >> 10) & 63u), SRC(((P) >> 16) & 63u), \
                                    SRC(((P) >> 22) & 63u));

vec4 run(vec4 R[16]) {
    STEP(P0) STEP(P1) STEP(P2) STEP(P3) STEP(P4) STEP(P5) STEP(P6) STEP(P7)
    STEP(P8) STEP(P9) STEP(P10) STEP(P11) STEP(P12) STEP(P13) STEP(P14) STEP(P15)
    STEP(P16) STEP(P17) STEP(P18) STEP(P19) STEP(P20) STEP(P21) STEP(P22) STEP(P23)
    return R[RESULT];
}

uint stride(uint j, uint d) { return meta.s[4u * j + d]; }

// Coordinates of flat element i over the dims (outermost first).
uvec4 coords(uint i) {
    uvec4 c = uvec4(0u, 0u, 0u, i);
    if (NDIM >= 2u) {
        c.w = i % pc.shape[3];
        uint t = i / pc.shape[3];
        c.z = t;
        if (NDIM >= 3u) {
            c.z = t % pc.shape[2];
            t /= pc.shape[2];
            c.y = t;
            if (NDIM >= 4u) {
                c.y = t % pc.shape[1];
                c.x = t / pc.shape[1];
            }
        }
    }
    return c;
}

uint offset_of(uint j, uvec4 c) {
    return pc.rem[j] + c.x * stride(j, 0u) + c.y * stride(j, 1u) + c.z * stride(j, 2u) + c.w * stride(j, 3u);
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    uint lid = gl_LocalInvocationID.x;
    uint base = gl_WorkGroupID.x * WG * UNROLL;
    // All loads of a thread are issued before its first store, which the compiler could not
    // move loads across (the output may alias an input as far as it knows).
    vec4 R[UNROLL][16];
    [[unroll]] for (uint u = 0u; u < UNROLL; u++) {
        uint q = base + u * WG + lid;
        uint i = q * 4u;
        [[unroll]] for (uint j = 0u; j < 16u; j++) R[u][j] = vec4(0.0);
        if (i >= pc.n) continue;
        bool full = i + 3u < pc.n;
        if (MODE == 0u) {
            [[unroll]] for (uint j = 0u; j < NIN; j++) {
                if (bcast(j)) {
                    R[u][j] = vec4(ld1(j, pc.rem[j]));
                } else if (full) {
                    R[u][j] = ld4(j, pc.rem[j] / 4u + q);
                } else {
                    [[unroll]] for (uint e = 0u; e < 4u; e++)
                        if (i + e < pc.n) R[u][j][e] = ld1(j, pc.rem[j] + i + e);
                }
            }
        } else if (VEC4) {
            // Four elements along the innermost dim (its size is a multiple of 4).
            uvec4 c = coords(i);
            [[unroll]] for (uint j = 0u; j < NIN; j++) {
                uint o = offset_of(j, c);
                R[u][j] = bcast(j) ? vec4(ld1(j, o)) : ld4(j, o / 4u);
            }
        } else {
            [[unroll]] for (uint e = 0u; e < 4u; e++) {
                if (i + e >= pc.n) break;
                uvec4 c = coords(i + e);
                [[unroll]] for (uint j = 0u; j < NIN; j++) R[u][j][e] = ld1(j, offset_of(j, c));
            }
        }
    }
    [[unroll]] for (uint u = 0u; u < UNROLL; u++) {
        uint q = base + u * WG + lid;
        uint i = q * 4u;
        if (i >= pc.n) continue;
        vec4 r = run(R[u]);
        bool full = i + 3u < pc.n;
        if (MODE == 0u) {
            if (full) {
                st4(pc.rem[6] / 4u + q, r);
            } else {
                [[unroll]] for (uint e = 0u; e < 4u; e++)
                    if (i + e < pc.n) st1(pc.rem[6] + i + e, r[e]);
            }
        } else if (VEC4) {
            st4(offset_of(6u, coords(i)) / 4u, r);
        } else {
            [[unroll]] for (uint e = 0u; e < 4u; e++)
                if (i + e < pc.n) st1(offset_of(6u, coords(i + e)), r[e]);
        }
    }
}
