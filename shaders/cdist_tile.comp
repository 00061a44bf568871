// cdist_tile.comp — one (BM x BN) tile of a pairwise-distance matrix per workgroup, staged through
// shared memory in BK-wide slices of the feature axis; each thread keeps TM x TN results in
// registers. The metric is a specialization constant, so each pipeline holds one inner loop.
// Dot-product metrics take precomputed squared row norms and recompute directly the pairs where
// the GEMM form would cancel (near-zero distances) or where a row holds inf/NaN.
//! variant f16: -DIN_F16
//! variant u32: -DIN_U32
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(IN_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM float16_t
#define SH float
#define LOAD(v) float(v)
#elif defined(IN_U32)
#define ELEM uint
#define SH uint
#define LOAD(v) (v)
#else
#define ELEM float
#define SH float
#define LOAD(v) (v)
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint BM = 64;
layout(constant_id = 4) const uint BN = 64;
layout(constant_id = 5) const uint BK = 16;
layout(constant_id = 6) const uint TM = 4;
layout(constant_id = 7) const uint TN = 4;
layout(constant_id = 8) const uint METRIC = 0;
layout(constant_id = 9) const float GUARD = 0.015625;

// METRIC values (va_cdist's planner maps SciPy names onto these).
const uint M_SQEUCLID = 0, M_EUCLID = 1, M_COSINE = 2, M_INNER = 3, M_L1 = 4, M_LINF = 5,
           M_LP = 6, M_HAMMING = 7, M_DIRECT_EUCLID = 8, M_BITS = 9;

layout(binding = 0) readonly buffer A_ { ELEM A[]; };
layout(binding = 1) readonly buffer B_ { ELEM B[]; };
layout(binding = 2) writeonly buffer O_ { float O[]; };
layout(binding = 3) readonly buffer NA_ { float NA[]; };
layout(binding = 4) readonly buffer NB_ { float NB[]; };

layout(push_constant) uniform PC {
    uint m, n, d;
    uint lda, ldb, ldo;
    uint a_off, b_off, o_off, na_off, nb_off;
    float p, inv_p;
} pc;

shared SH As[BK * (BM + 1)];
shared SH Bs[BK * (BN + 1)];

float direct_sq(uint i, uint j) {
    float s = 0.0;
    for (uint k = 0; k < pc.d; k++) {
        float t = float(LOAD(A[pc.a_off + i * pc.lda + k])) - float(LOAD(B[pc.b_off + j * pc.ldb + k]));
        s = fma(t, t, s);
    }
    return s;
}

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint RN = BN / TN;
    const uint t = gl_LocalInvocationID.x;
    const uint tm = t / RN, tn = t % RN;
    const uint row0 = gl_WorkGroupID.y * BM, col0 = gl_WorkGroupID.x * BN;

    float acc[TM * TN];
    [[unroll]] for (uint i = 0; i < TM * TN; i++) acc[i] = 0.0;

    for (uint k0 = 0; k0 < pc.d; k0 += BK) {
        for (uint idx = t; idx < BM * BK; idx += WG) {
            uint r = idx / BK, c = idx % BK;
            uint gr = row0 + r, gc = k0 + c;
            SH v = SH(0);
            if (gr < pc.m && gc < pc.d) v = SH(LOAD(A[pc.a_off + gr * pc.lda + gc]));
            As[c * (BM + 1) + r] = v;
        }
        for (uint idx = t; idx < BN * BK; idx += WG) {
            uint r = idx / BK, c = idx % BK;
            uint gr = col0 + r, gc = k0 + c;
            SH v = SH(0);
            if (gr < pc.n && gc < pc.d) v = SH(LOAD(B[pc.b_off + gr * pc.ldb + gc]));
            Bs[c * (BN + 1) + r] = v;
        }
        barrier();
        [[unroll]] for (uint k = 0; k < BK; k++) {
            SH a[TM], b[TN];
            [[unroll]] for (uint i = 0; i < TM; i++) a[i] = As[k * (BM + 1) + tm + i * (BM / TM)];
            [[unroll]] for (uint j = 0; j < TN; j++) b[j] = Bs[k * (BN + 1) + tn + j * RN];
            // One loop nest per metric, so the metric test is outside the unrolled body.
#if defined(IN_U32)
            [[unroll]] for (uint i = 0; i < TM; i++)
                [[unroll]] for (uint j = 0; j < TN; j++) acc[i * TN + j] += float(bitCount(a[i] ^ b[j]));
#else
            if (METRIC <= M_INNER) {
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) acc[i * TN + j] = fma(a[i], b[j], acc[i * TN + j]);
            } else if (METRIC == M_L1) {
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) acc[i * TN + j] += abs(a[i] - b[j]);
            } else if (METRIC == M_LINF) {
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) {
                        float v = abs(a[i] - b[j]);
                        acc[i * TN + j] = (isnan(v) || v > acc[i * TN + j]) ? v : acc[i * TN + j];
                    }
            } else if (METRIC == M_LP) {
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) {
                        // pow() of NaN is not defined by GLSL: keep NaN explicitly.
                        float v = abs(a[i] - b[j]);
                        acc[i * TN + j] += isnan(v) ? v : pow(v, pc.p);
                    }
            } else if (METRIC == M_HAMMING) {
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) acc[i * TN + j] += (a[i] == b[j]) ? 0.0 : 1.0;
            } else {
                [[unroll]] for (uint i = 0; i < TM; i++)
                    [[unroll]] for (uint j = 0; j < TN; j++) {
                        float v = a[i] - b[j];
                        acc[i * TN + j] = fma(v, v, acc[i * TN + j]);
                    }
            }
#endif
        }
        barrier();
    }

    [[unroll]] for (uint i = 0; i < TM; i++) {
        uint gr = row0 + tm + i * (BM / TM);
        if (gr >= pc.m) continue;
        [[unroll]] for (uint j = 0; j < TN; j++) {
            uint gc = col0 + tn + j * RN;
            if (gc >= pc.n) continue;
            float v = acc[i * TN + j];
            if (METRIC == M_SQEUCLID || METRIC == M_EUCLID) {
                float na = NA[pc.na_off + gr], nb = NB[pc.nb_off + gc];
                float s = na + nb;
                float d2 = s - 2.0 * v;
                // Cancellation: when d2 is small against the norms, the GEMM form loses digits;
                // non-finite rows need NumPy's inf/NaN arithmetic. Both are recomputed directly.
                if (!(abs(s) <= 3.0e38) || isnan(d2) || d2 <= GUARD * s) d2 = direct_sq(gr, gc);
                v = METRIC == M_EUCLID ? sqrt(d2) : d2;
            } else if (METRIC == M_COSINE) {
                float na = NA[pc.na_off + gr], nb = NB[pc.nb_off + gc];
                v = 1.0 - v / (sqrt(na) * sqrt(nb));
            } else if (METRIC == M_LP) {
                v = isnan(v) ? v : pow(v, pc.inv_p);
            } else if (METRIC == M_HAMMING) {
                v = v / float(pc.d);
            } else if (METRIC == M_DIRECT_EUCLID) {
                v = sqrt(v);
            }
            O[pc.o_off + gr * pc.ldo + gc] = v;
        }
    }
}
