// kmeans_exact.glsl — the direct squared distance Σ (x − shift − c)² from a row of X to one centre,
// in one fixed order of operations for every kernel that computes it: kmeans_assign.comp (the
// winner's distance), kmeans_bounds.comp (the distance to the kept centre of a row the bounds let
// through) and kmeans_coop.comp (rows the tensor cores settled), so that a fit gives the same
// distances, hence the same inertia and the same re-seeding of empty clusters, whichever served a
// row. The order: 32 lane sums P_p = Σ over features f = p, p + 32, ... (in that order, fma from
// 0.0) of (x_f − shift_f − c_f)²; four group sums Q_h = P_8h + ... + P_8h+7 (in order, from 0.0);
// the distance (Q_0 + Q_1) + (Q_2 + Q_3). It suits any number of threads per row: G = 1, 2 or 4
// threads each take whole groups (exact_partial, then exact_combine), and a subgroup can take one
// lane sum per invocation (exact_lane, then exact_groups over the 32 sums in order). Expects X
// (ELEM_X), MU and C buffers and HAS_SHIFT. With KMEANS_XSQ, exact_partial also returns the
// thread's share of Σ (x − shift)² in *xsq (its order does not matter: it only widens bounds).

float exact_lane(uint xb, uint mb, uint cb, uint d, uint p
#if defined(KMEANS_XSQ)
                 , inout float xsq
#endif
) {
    float s = 0.0;
    for (uint f = p; f < d; f += 32u) {
        float xv = float(X[xb + f]);
        if (HAS_SHIFT) xv -= MU[mb + f];
        float dv = xv - C[cb + f];
        s = fma(dv, dv, s);
#if defined(KMEANS_XSQ)
        xsq = fma(xv, xv, xsq);
#endif
    }
    return s;
}

float exact_group(uint xb, uint mb, uint cb, uint d, uint h
#if defined(KMEANS_XSQ)
                  , inout float xsq
#endif
) {
    float q = 0.0;
    for (uint p = 8u * h; p < 8u * h + 8u; p++)
#if defined(KMEANS_XSQ)
        q += exact_lane(xb, mb, cb, d, p, xsq);
#else
        q += exact_lane(xb, mb, cb, d, p);
#endif
    return q;
}

#if defined(KMEANS_XSQ)
#define EXACT_GROUP(h) exact_group(xb, mb, cb, d, h, xsq)
#else
#define EXACT_GROUP(h) exact_group(xb, mb, cb, d, h)
#endif

// Thread g's share of the distance, G (1, 2 or 4) threads per row.
float exact_partial(uint xb, uint mb, uint cb, uint d, uint g, uint G
#if defined(KMEANS_XSQ)
                    , out float xsq
#endif
) {
#if defined(KMEANS_XSQ)
    xsq = 0.0;
#endif
    if (G == 4u) return EXACT_GROUP(g);
    if (G == 2u) return EXACT_GROUP(2u * g) + EXACT_GROUP(2u * g + 1u);
    return (EXACT_GROUP(0u) + EXACT_GROUP(1u)) + (EXACT_GROUP(2u) + EXACT_GROUP(3u));
}

// The distance from the G shares of a row (v[g] for g < G; the others are not read).
float exact_combine(float v0, float v1, float v2, float v3, uint G) {
    return G == 4u ? (v0 + v1) + (v2 + v3) : G == 2u ? v0 + v1 : v0;
}

// The distance from the 32 lane sums, in order.
float exact_groups(float q0, float q1, float q2, float q3) { return (q0 + q1) + (q2 + q3); }
