// knn_coop.glsl — the rounding bounds of the tensor-core k-nearest-neighbour search (knn_coop.comp,
// and knn_select.comp's refine variants): how far a distance computed from float16 copies of the
// rows (the "approximation") can be from the exact float32 distance. See csrc/ops/knn.c.
//
// NRM holds what knn_coop_prep.comp wrote for each row: its squared norm (squared L2, inner
// product) or inverse norm (cosine), NaN where the float16 copy is not finite. The approximation
// is base_q + base_x + dot(A, B), A the scaled float16 query (-2 q, or -q), B the float16 row, and
//   |approx - exact| <= s(q, x) = 2 c2h |q| |x| + c3 (|q| + |x|) + c1 (|q|^2 + |x|^2 + |tau|) + 2 c0
// (|q|, |x|: 1 for cosine's unit rows): c2h for the float16 rounding of the values, c3 for values
// too small for a normal float16 (even if flushed to zero), c1 for the float32 sums (the tensor
// cores' and the exact distance's own), c0 for the products of two such small values. Since 2 |q| |x| <= |q|^2 + |x|^2, the bound splits into a
// query part slack_q and a row part slack_x with s <= slack_q + slack_x, which the candidate pass
// folds into its accumulators' starting values.
// Requires: a METRIC constant (0 squared L2, 1 inner product, 2 cosine); C0..C3 name the constants.

// A value that is not finite (by its bits, which no compiler folds away) becomes NaN; others v.
float coop_nanif(float n, float v) {
    return (floatBitsToUint(n) & 0x7F800000u) == 0x7F800000u ? uintBitsToFloat(0x7FC00000u) : v;
}
bool coop_finite(float v) { return (floatBitsToUint(v) & 0x7F800000u) != 0x7F800000u; }

float coop_norm2(float n) { return METRIC == 2 ? coop_nanif(n, 1.0) : n; }
float coop_base_q(float n) { return coop_nanif(n, METRIC == 0 ? n : METRIC == 1 ? 0.0 : 1.0); }
float coop_base_x(float n) { return coop_nanif(n, METRIC == 0 ? n : 0.0); }
float coop_slack_q(float n, float tau) {
    float a = coop_norm2(n);
    return C2H * a + C3 * sqrt(a) + C1 * (a + abs(tau)) + C0;
}
float coop_slack_x(float n) {
    float a = coop_norm2(n);
    return C2H * a + C3 * sqrt(a) + C1 * a + C0;
}
float coop_slack_pair(float nq, float nx, float tau) {
    float a = coop_norm2(nq), b = coop_norm2(nx);
    return 2.0 * C2H * sqrt(a * b) + C3 * (sqrt(a) + sqrt(b)) + C1 * (a + b + abs(tau)) + 2.0 * C0;
}
