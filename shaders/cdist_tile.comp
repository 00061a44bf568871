// cdist_tile.comp — one (BM x BN) tile of a pairwise-distance matrix per workgroup, staged through
// shared memory in BK-wide slices of the feature axis; each thread keeps TM x TN results in
// registers. The metric is a specialization constant, so each pipeline holds one inner loop.
// Dot-product metrics take precomputed squared row norms and recompute directly the pairs where
// the GEMM form would cancel (near-zero distances) or where a row holds inf/NaN.
//! variant f16: -DA_F16 -DB_F16
//! variant a16: -DA_F16
//! variant b16: -DB_F16
//! variant u32: -DIN_U32
//! variant sq8: -DB_SQ8
//! variant sq4: -DB_SQ4
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(A_F16) || defined(B_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#endif
// Each operand is float32 or float16 in memory (A_F16, B_F16); tiles hold float32. IN_U32: packed
// bit codes, compared with popcount. B_SQ8 / B_SQ4: B holds scalar-quantizer codes (one byte or one
// nibble per element, rows byte-addressed from b_off), decoded to float32 as they are staged into
// shared memory (vaccel.ScalarQuantizer's formula, see sq_codec.comp); no float copy of B exists.
#if defined(B_SQ8) || defined(B_SQ4)
#define B_SQ 1
#endif
#if defined(IN_U32)
#define SH uint
#define SH4 uvec4
#define ELEM_A uint
#define ELEM4_A uvec4
#define ELEM_B uint
#define ELEM4_B uvec4
#else
#define SH float
#define SH4 vec4
#if defined(A_F16)
#define ELEM_A float16_t
#define ELEM4_A f16vec4
#else
#define ELEM_A float
#define ELEM4_A vec4
#endif
#if defined(B_F16)
#define ELEM_B float16_t
#define ELEM4_B f16vec4
#else
#define ELEM_B float
#define ELEM4_B vec4
#endif
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 64;
layout(constant_id = 4) const uint BN = 64;
layout(constant_id = 5) const uint BK = 16;
layout(constant_id = 6) const uint TM = 4;
layout(constant_id = 7) const uint TN = 4;
layout(constant_id = 8) const uint METRIC = 0;
layout(constant_id = 9) const float GUARD = 0.015625;
// VEC = 4: rows, offsets and d are multiples of 4 elements, so tiles load 4 elements at a time.
layout(constant_id = 10) const uint VEC = 1;

// METRIC values (va_cdist's planner maps SciPy names onto these).
const uint M_SQEUCLID = 0, M_EUCLID = 1, M_COSINE = 2, M_INNER = 3, M_L1 = 4, M_LINF = 5,
           M_LP = 6, M_HAMMING = 7, M_DIRECT_EUCLID = 8, M_BITS = 9;

layout(binding = 0) readonly buffer A_ { ELEM_A A[]; };
layout(binding = 0) readonly buffer A4_ { ELEM4_A A4[]; };
#if defined(B_SQ)
layout(binding = 1) readonly buffer B_ { uint BW[]; };
#else
layout(binding = 1) readonly buffer B_ { ELEM_B B[]; };
layout(binding = 1) readonly buffer B4_ { ELEM4_B B4[]; };
#endif
layout(binding = 2) writeonly buffer O_ { float O[]; };
layout(binding = 3) readonly buffer NA_ { float NA[]; };
layout(binding = 4) readonly buffer NB_ { float NB[]; };
#if defined(B_SQ)
layout(binding = 5) readonly buffer VMIN_ { float VMIN[]; };
layout(binding = 6) readonly buffer STEP_ { float STEP[]; };
#endif

layout(push_constant) uniform PC {
    uint m, n, d;
    uint lda, ldb, ldo;
    uint a_off, b_off, o_off, na_off, nb_off;
    float p, inv_p;
} pc;

shared SH As[BK * (BM + 1)];
shared SH Bs[BK * (BN + 1)];

#if defined(B_SQ)
#if defined(B_SQ8)
const uint EPW = 4u;   // codes per 32-bit word
const uint CBITS = 8u;
#else
const uint EPW = 8u;
const uint CBITS = 4u;
#endif
// Element k of a code row as the quantizer decodes it: vmin + (c + 0.5) * step, no fused multiply-add.
float sq_decode(uint c, uint k) {
    precise float v = VMIN[k] + (float(c) + 0.5) * STEP[k];
    return v;
}
// Element k of B's row j (rows counted from the window's start).
float b_value(uint j, uint k) {
    uint byte = pc.b_off + j * pc.ldb + k / (8u / CBITS);
    uint shift = (byte & 3u) * 8u + (k % (8u / CBITS)) * CBITS;
    return sq_decode((BW[byte >> 2] >> shift) & ((1u << CBITS) - 1u), k);
}
#else
float b_value(uint j, uint k) { return float(B[pc.b_off + j * pc.ldb + k]); }
#endif

float direct_sq(uint i, uint j) {
    float s = 0.0;
    for (uint k = 0; k < pc.d; k++) {
        float t = float(A[pc.a_off + i * pc.lda + k]) - b_value(j, k);
        s = fma(t, t, s);
    }
    return s;
}

// Pairs the GEMM form cannot give exactly (bit q of the thread's outputs), recomputed directly
// after the tile is written, in a loop that is not unrolled, so that code exists once.
uint redo_lo = 0u, redo_hi = 0u;

// Applies the metric's epilogue to one accumulated value and stores it.
void finish(uint gr, uint gc, uint q, float v) {
    if (gr >= pc.m || gc >= pc.n) return;
    if (METRIC == M_SQEUCLID || METRIC == M_EUCLID) {
        float s = NA[pc.na_off + gr] + NB[pc.nb_off + gc];
        float d2 = s - 2.0 * v;
        // Cancellation: when d2 is small against the norms, the GEMM form loses digits;
        // non-finite rows need NumPy's inf/NaN arithmetic.
        if (!(abs(s) <= 3.0e38) || isnan(d2) || d2 <= GUARD * s) {
            if (q < 32) redo_lo |= 1u << q;
            else redo_hi |= 1u << (q - 32);
        }
        d2 = max(d2, 0.0);
        v = METRIC == M_EUCLID ? sqrt(d2) : d2;
    } else if (METRIC == M_COSINE) {
        // NA and NB hold inverse norms here.
        v = 1.0 - v * NA[pc.na_off + gr] * NB[pc.nb_off + gc];
    } else if (METRIC == M_LP) {
        v = isnan(v) ? v : pow(v, pc.inv_p);
    } else if (METRIC == M_HAMMING) {
        v = v / float(pc.d);
    } else if (METRIC == M_DIRECT_EUCLID) {
        v = sqrt(v);
    }
    O[pc.o_off + gr * pc.ldo + gc] = v;
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint RN = BN / TN;
    const uint t = gl_LocalInvocationID.x;
    const uint tm = t / RN, tn = t % RN;
    const uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;

    // Accumulators as vec4s (TN is a multiple of 4): the driver keeps a few vectors in registers
    // where a long scalar array would go to local memory.
    vec4 acc[TM * TN / 4];
    [[unroll]] for (uint i = 0; i < TM * TN / 4; i++) acc[i] = vec4(0.0);

    for (uint k0 = 0; k0 < pc.d; k0 += BK) {
        if (VEC == 4) {
            for (uint idx = t; idx < BM * BK / 4; idx += WG) {
                uint r = idx / (BK / 4), c = (idx % (BK / 4)) * 4;
                uint gr = row0 + r, gc = k0 + c;
                SH4 v = SH4(0);
                if (gr < pc.m && gc < pc.d) v = SH4(A4[(pc.a_off + gr * pc.lda + gc) / 4]);
                As[(c + 0) * (BM + 1) + r] = v.x;
                As[(c + 1) * (BM + 1) + r] = v.y;
                As[(c + 2) * (BM + 1) + r] = v.z;
                As[(c + 3) * (BM + 1) + r] = v.w;
            }
#if defined(B_SQ)
            // One word holds EPW consecutive codes of a row (rows and b_off are word-aligned here);
            // elements past d (a row's padding) are staged as zeros.
            for (uint idx = t; idx < BN * BK / EPW; idx += WG) {
                uint r = idx / (BK / EPW), c = (idx % (BK / EPW)) * EPW;
                uint gr = col0 + r, gc = k0 + c;
                uint w = 0u;
                if (gr < pc.n && gc < pc.d) w = BW[(pc.b_off + gr * pc.ldb) / 4u + gc / EPW];
                [[unroll]] for (uint e = 0; e < EPW; e++)
                    Bs[(c + e) * (BN + 1) + r] = gr < pc.n && gc + e < pc.d
                        ? sq_decode((w >> (e * CBITS)) & ((1u << CBITS) - 1u), gc + e) : 0.0;
            }
#else
            for (uint idx = t; idx < BN * BK / 4; idx += WG) {
                uint r = idx / (BK / 4), c = (idx % (BK / 4)) * 4;
                uint gr = col0 + r, gc = k0 + c;
                SH4 v = SH4(0);
                if (gr < pc.n && gc < pc.d) v = SH4(B4[(pc.b_off + gr * pc.ldb + gc) / 4]);
                Bs[(c + 0) * (BN + 1) + r] = v.x;
                Bs[(c + 1) * (BN + 1) + r] = v.y;
                Bs[(c + 2) * (BN + 1) + r] = v.z;
                Bs[(c + 3) * (BN + 1) + r] = v.w;
            }
#endif
        } else {
            for (uint idx = t; idx < BM * BK; idx += WG) {
                uint r = idx / BK, c = idx % BK;
                uint gr = row0 + r, gc = k0 + c;
                SH v = SH(0);
                if (gr < pc.m && gc < pc.d) v = SH(A[pc.a_off + gr * pc.lda + gc]);
                As[c * (BM + 1) + r] = v;
            }
            for (uint idx = t; idx < BN * BK; idx += WG) {
                uint r = idx / BK, c = idx % BK;
                uint gr = col0 + r, gc = k0 + c;
                SH v = SH(0);
#if defined(B_SQ)
                if (gr < pc.n && gc < pc.d) v = b_value(gr, gc);
#else
                if (gr < pc.n && gc < pc.d) v = SH(B[pc.b_off + gr * pc.ldb + gc]);
#endif
                Bs[c * (BN + 1) + r] = v;
            }
        }
        barrier();
        [[unroll]] for (uint k = 0; k < BK; k++) {
            SH a[TM];
            SH4 b[TN / 4];
            [[unroll]] for (uint i = 0; i < TM; i++) a[i] = As[k * (BM + 1) + tm + i * (BM / TM)];
            [[unroll]] for (uint j = 0; j < TN / 4; j++) {
                uint base = k * (BN + 1) + tn + 4 * j * RN;
                b[j] = SH4(Bs[base], Bs[base + RN], Bs[base + 2 * RN], Bs[base + 3 * RN]);
            }
            // One loop nest per metric, so the metric test is outside the unrolled body.
            [[unroll]] for (uint i = 0; i < TM; i++) {
                [[unroll]] for (uint j = 0; j < TN / 4; j++) {
                    uint q = i * (TN / 4) + j;
#if defined(IN_U32)
                    acc[q] += vec4(bitCount(uvec4(a[i]) ^ b[j]));
#else
                    vec4 av = vec4(a[i]);
                    if (METRIC <= M_INNER) {
                        acc[q] = fma(av, b[j], acc[q]);
                    } else if (METRIC == M_L1) {
                        acc[q] += abs(av - b[j]);
                    } else if (METRIC == M_LINF) {
                        vec4 v = abs(av - b[j]);
                        acc[q] = mix(acc[q], v, bvec4(uvec4(greaterThan(v, acc[q])) | uvec4(isnan(v))));
                    } else if (METRIC == M_LP) {
                        // pow() of NaN is not defined by GLSL: keep NaN explicitly.
                        vec4 v = abs(av - b[j]);
                        acc[q] += mix(pow(v, vec4(pc.p)), v, isnan(v));
                    } else if (METRIC == M_HAMMING) {
                        acc[q] += vec4(1.0) - vec4(equal(av, b[j]));
                    } else {
                        vec4 v = av - b[j];
                        acc[q] = fma(v, v, acc[q]);
                    }
#endif
                }
            }
        }
        barrier();
    }

    // Each accumulator vector is finished through explicit components (finish() below), so no
    // array or vector is indexed by a loop variable even if the driver does not unroll.
    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint gr = row0 + tm + i * (BM / TM);
        [[unroll]] for (uint j4 = 0; j4 < TN / 4; j4++) {
            vec4 r = acc[i * (TN / 4) + j4];
            uint q = i * TN + j4 * 4;
            uint gc = col0 + tn + j4 * 4 * RN;
            finish(gr, gc, q, r.x);
            finish(gr, gc + RN, q + 1, r.y);
            finish(gr, gc + 2 * RN, q + 2, r.z);
            finish(gr, gc + 3 * RN, q + 3, r.w);
        }
    }
    if (METRIC == M_SQEUCLID || METRIC == M_EUCLID) {
        [[dont_unroll]] for (uint q = 0; q < TM * TN; q++) {
            if (((q < 32 ? redo_lo >> q : redo_hi >> (q - 32)) & 1u) == 0u) continue;
            uint gr = row0 + tm + (q / TN) * (BM / TM), gc = col0 + tn + (q % TN) * RN;
            float d2 = direct_sq(gr, gc);
            O[pc.o_off + gr * pc.ldo + gc] = METRIC == M_EUCLID ? sqrt(d2) : d2;
        }
    }
}
