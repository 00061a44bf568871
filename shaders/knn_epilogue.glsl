// knn_epilogue.glsl — the distance epilogue of the SIMT GEMM's KNN variants (matmul.comp; devices
// with cooperative matrices take knn_coop.comp instead): bindings 2-7, push constants, and what
// happens to one (query, database row) dot product. Included after the A and B bindings, with KNN_SPEC_METRIC and KNN_SPEC_MODE
// naming two free specialization constant ids. See csrc/ops/knn.c for the whole search.
layout(constant_id = KNN_SPEC_METRIC) const uint METRIC = 0;     // 0 squared L2, 1 inner product, 2 cosine
layout(constant_id = KNN_SPEC_MODE) const uint MODE = 0;       // 0 sample distances, 1 candidates
layout(binding = 2) writeonly buffer O_ { float O[]; };        // MODE 0: (m, ldo) distances
layout(binding = 2) writeonly buffer CAND_ { uvec2 CAND[]; };  // MODE 1: (m, ldo) (value bits, index)
layout(binding = 3) readonly buffer QN_ { float QN[]; };       // squared norms (inverse norms: cosine)
layout(binding = 4) readonly buffer DN_ { float DN[]; };
layout(binding = 5) readonly buffer MAP_ { uint MAP[]; };      // MODE 0: column -> database row
layout(binding = 6) readonly buffer TAU_ { float TAU[]; };     // MODE 1: per query bound
layout(binding = 7) buffer CNT_ { uint CNT[]; };               // MODE 1: per query candidate count

layout(push_constant) uniform PC {
    uint m, n, k;
    uint lda, ldb, ldo;
    uint a_off, b_off, o_off;
    uint qn_off, dn_off, map_off;
    uint map_base;              // MODE 0: MAP holds rows of the whole database; B starts at this one
    uint col_base;              // MODE 1: index of column 0 in the whole database
    uint cap;                   // MODE 1: candidate slots per query (ldo)
    uint tau_ld, tau_off;       // MODE 1: TAU[tau_off + row * tau_ld]
    uint zero_counts;           // MODE 0: this dispatch clears CNT for its rows
    float slack;                // relative rounding allowance of the GEMM form
    float guard;                // L2: recompute directly where d2 <= guard * (|q|^2 + |x|^2)
} pc;
#define PC_B_BS 0u
#define PC_A_BS 0u

// The storage row of column j of B (B_T): MODE 0 of KNN reads the sampled rows through MAP.
uint brow(uint j) {
    if (MODE == 0) return MAP[pc.map_off + j] - pc.map_base;
    return j;
}
// Element p of B's row starting at bi, and elements p .. p + 3: the including shader may define
// these (quantized codes are decoded there).
#if !defined(KNN_B_VALUE)
#define KNN_B_VALUE(bi, p) float(B[(bi) + (p)])
#endif
#if !defined(KNN_B_VEC4)
#if defined(KNN_VEC4)
#define KNN_B_VEC4(bi, p) (VEC_B ? vec4(B4[((bi) + (p)) / 4]) : vec4(KNN_B_VALUE(bi, p), KNN_B_VALUE(bi, (p) + 1), \
                                                                  KNN_B_VALUE(bi, (p) + 2), KNN_B_VALUE(bi, (p) + 3)))
#else
#define KNN_B_VEC4(bi, p) vec4(KNN_B_VALUE(bi, p), KNN_B_VALUE(bi, (p) + 1), KNN_B_VALUE(bi, (p) + 2), \
                               KNN_B_VALUE(bi, (p) + 3))
#endif
#endif

// The exact distance of one pair, computed directly (four independent sums for the latency),
// reported for every candidate: the GEMM form only decides which pairs are candidates.
float direct(uint abase, uint bbase, uint i, uint j) {
    vec4 s = vec4(0.0);
    uint ai = abase + i * pc.lda, bi = bbase + j * pc.ldb, p = 0;
    for (; p + 4 <= pc.k; p += 4) {
#if defined(KNN_VEC4)
        // KNN_VEC4: the including shader has 4-element views A4 and B4 (used when VEC_A, VEC_B).
        vec4 a = VEC_A ? vec4(A4[(ai + p) / 4])
                       : vec4(float(A[ai + p]), float(A[ai + p + 1]), float(A[ai + p + 2]), float(A[ai + p + 3]));
#else
        vec4 a = vec4(float(A[ai + p]), float(A[ai + p + 1]), float(A[ai + p + 2]), float(A[ai + p + 3]));
#endif
        vec4 b = KNN_B_VEC4(bi, p);
        if (METRIC == 0) {
            vec4 t = a - b;
            s = fma(t, t, s);
        } else {
            s = fma(a, b, s);
        }
    }
    for (; p < pc.k; p++) {
        float a = float(A[ai + p]), b = KNN_B_VALUE(bi, p);
        s.x = METRIC == 0 ? fma(a - b, a - b, s.x) : fma(a, b, s.x);
    }
    float r = (s.x + s.y) + (s.z + s.w);
    if (METRIC == 1) return -r;
    if (METRIC == 2) return 1.0 - r * QN[pc.qn_off + i] * DN[pc.dn_off + j];
    return r;
}

// Appends a candidate to query gr's list (the count goes on past the cap: knn_select flags it).
void emit(uint gr, uint gc, float v) {
    uint slot = atomicAdd(CNT[gr], 1u);
    if (slot < pc.cap) CAND[pc.o_off + gr * pc.ldo + slot] = uvec2(floatBitsToUint(v), pc.col_base + gc);
}

// The bounds of the pairs' distances from their dot products: smaller is better (the inner
// product is negated). The GEMM form v is within slack of the exact distance, so MODE 0 writes
// the upper bound v + slack and MODE 1 keeps every pair whose lower bound v - slack is within the
// query's bound tau: the k-th smallest upper bound of a sample is at least the k-th smallest
// distance of all, so no pair of the true k best is dropped. qn and dn: squared norms (inverse
// norms for cosine).
void knn_bounds(vec4 dot, float qn, vec4 dn, out vec4 v, out vec4 slack) {
    if (METRIC == 0) {
        vec4 s = qn + dn;
        v = max(s - 2.0 * dot, vec4(0.0));
        slack = pc.slack * s;
    } else if (METRIC == 1) {
        v = -dot;
        slack = pc.slack * 0.5 * (qn + dn);
    } else {
        v = 1.0 - dot * qn * dn;
        slack = vec4(pc.slack);
    }
}

// Whether a pair with value v, slack s stays a candidate of a query whose bound is tau. A bound
// that is not a finite number (a sample without k finite distances) keeps everything, and so
// does a value that is not a number (a row with inf or NaN: its exact distance decides).
bool keep(float v, float s, float tau) { return !(v - s > tau) || !(abs(tau) <= 3.0e38); }
