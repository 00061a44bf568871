// knn_epilogue.glsl — the distance epilogue shared by the GEMM kernels' KNN variants (matmul.comp,
// matmul_coopmat.comp): bindings 2-7, push constants, and what happens to one (query, database
// row) dot product. Included after the A and B bindings, with KNN_SPEC_METRIC and KNN_SPEC_MODE
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
float direct_sq(uint abase, uint bbase, uint i, uint j) {
    float s = 0.0;
    for (uint p = 0; p < pc.k; p++) {
        float t = float(A[abase + i * pc.lda + p]) - float(B[bbase + j * pc.ldb + p]);
        s = fma(t, t, s);
    }
    return s;
}

// Appends a candidate to query gr's list (the count goes on past the cap: knn_select flags it).
void emit(uint gr, uint gc, float v) {
    uint slot = atomicAdd(CNT[gr], 1u);
    if (slot < pc.cap) CAND[pc.o_off + gr * pc.ldo + slot] = uvec2(floatBitsToUint(v), pc.col_base + gc);
}

// The bounds of the pairs' distances from their dot products: smaller is better (the inner
// product is negated). The GEMM form v is within slack of the distance reported (computed directly
// where the GEMM form cancels: redo), so MODE 0 writes the upper bound v + slack and MODE 1 keeps
// every pair whose lower bound v - slack is within the query's bound tau: the k-th smallest upper
// bound of a sample is at least the k-th smallest distance of all, so no pair of the true k best
// is dropped. qn and dn: squared norms (inverse norms for cosine).
void knn_bounds(vec4 dot, float qn, vec4 dn, out vec4 v, out vec4 slack, out bvec4 redo) {
    if (METRIC == 0) {
        vec4 s = qn + dn;
        v = s - 2.0 * dot;
        redo = bvec4(uvec4(not(lessThanEqual(abs(s), vec4(3.0e38)))) | uvec4(isnan(v)) |
                     uvec4(lessThanEqual(v, pc.guard * s)));
        v = max(v, vec4(0.0));
        slack = pc.slack * s;
    } else if (METRIC == 1) {
        v = -dot;
        slack = pc.slack * 0.5 * (qn + dn);
        redo = bvec4(false);
    } else {
        v = 1.0 - dot * qn * dn;
        slack = vec4(pc.slack);
        redo = bvec4(false);
    }
}

// Whether a pair with value v, slack s stays a candidate of a query whose bound is tau. A bound
// that is not a finite number (a sample without k finite distances) keeps everything.
bool keep(float v, float s, float tau) { return v - s <= tau || !(abs(tau) <= 3.0e38); }

// One pair, for kernels that hold the dot products in shared memory (matmul_coopmat.comp).
void knn_out(uint abase, uint bbase, uint gr, uint gc, float qn, float tau, float dot) {
    uint jr = brow(gc);
    vec4 v, slack;
    bvec4 redo;
    knn_bounds(vec4(dot), qn, vec4(DN[pc.dn_off + jr]), v, slack, redo);
    if (MODE == 0) {
        O[pc.o_off + gr * pc.ldo + gc] = v.x + slack.x;
    } else if (keep(v.x, slack.x, tau)) {
        emit(gr, gc, redo.x ? direct_sq(abase, bbase, gr, jr) : v.x);
    }
}
