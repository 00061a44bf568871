// kmeans_exact.glsl — a thread's share of the direct squared distance Σ (x − shift − c)² from a row
// of X to one centre, the row split over G threads (thread g takes features g, g + G, ...). One
// order of operations for the two kernels that must agree on it to the bit: kmeans_assign.comp
// (the winner's distance) and kmeans_bounds.comp (the distance to the kept centre of a row the
// bounds let through), so a fit gives the same distances, hence the same inertia and the same
// re-seeding of empty clusters, with or without bounds. The G partials are then added in order
// q = 0..G-1 starting from 0.0 (see the callers). Expects X (ELEM_X), MU and C buffers and
// HAS_SHIFT. With KMEANS_XSQ, also the thread's share of Σ (x − shift)² in *xsq (the order of that
// sum does not matter: it only widens bounds).
float exact_partial(uint xb, uint mb, uint cb, uint d, uint g, uint G
#if defined(KMEANS_XSQ)
                    , out float xsq
#endif
) {
    float s = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
#if defined(KMEANS_XSQ)
    float q0 = 0.0, q1 = 0.0;
#endif
    uint f = g;
    for (; f + 3u * G < d; f += 4u * G) {   // four independent loads in flight
        vec4 xv = vec4(float(X[xb + f]), float(X[xb + f + G]), float(X[xb + f + 2u * G]), float(X[xb + f + 3u * G]));
        if (HAS_SHIFT)
            xv -= vec4(MU[mb + f], MU[mb + f + G], MU[mb + f + 2u * G], MU[mb + f + 3u * G]);
        vec4 dv = xv - vec4(C[cb + f], C[cb + f + G], C[cb + f + 2u * G], C[cb + f + 3u * G]);
        s = fma(dv.x, dv.x, s);
        s1 = fma(dv.y, dv.y, s1);
        s2 = fma(dv.z, dv.z, s2);
        s3 = fma(dv.w, dv.w, s3);
#if defined(KMEANS_XSQ)
        q0 = fma(xv.x, xv.x, fma(xv.y, xv.y, q0));
        q1 = fma(xv.z, xv.z, fma(xv.w, xv.w, q1));
#endif
    }
    for (; f < d; f += G) {
        float xv = float(X[xb + f]);
        if (HAS_SHIFT) xv -= MU[mb + f];
        float dv = xv - C[cb + f];
        s = fma(dv, dv, s);
#if defined(KMEANS_XSQ)
        q0 = fma(xv, xv, q0);
#endif
    }
#if defined(KMEANS_XSQ)
    xsq = q0 + q1;
#endif
    return (s + s1) + (s2 + s3);
}
