// kmeans_bounds.comp — Hamerly's bounds for a Lloyd step that recomputes only the rows whose
// nearest centre may have changed, with every answer the same as a full assignment's.
//
// Every row keeps one lower bound l of its distance to all centres but its own (LB, written by
// kmeans_assign.comp's bounds variants from the second-smallest score). When the centres move,
// l drops by the largest drift of the other centres. The upper bound is exact: this pass computes
// the row's distance D to its own centre anyway (the step needs it for the inertia, and a
// skipped row must have the very float a full assignment gives: kmeans_exact.glsl), and Hamerly's
// second test comes from s(a) = ½ min over j ≠ a of ‖c_a − c_j‖, a lower bound that kmeans_assign
// writes for the centres themselves (a k x k assignment, run when k is small beside n). A row keeps its centre without a GEMM when
//   D + 2E < max(l, 2 s(a) − √D)²,  E = slack (‖x‖² + max ‖c‖²),
// i.e. when even the float32 GEMM-form scores of a full assignment, each within E of its exact
// value, would rank its centre strictly first (so ties and near-ties are always recomputed).
// Every quantity is rounded towards safety (factors of 1 ± 2^-20 and more; see the callers'
// slack). Rows that fail go to a compacted list (one shared counter per workgroup, one global
// atomic per workgroup), which kmeans_assign's bounds variant reads.
//
// STAGE 0 (a thread per centre): drift_j = an upper bound of ‖c_j − c_j(prev)‖ and an upper
//   bound of ‖c_j‖². STAGE 1 (one workgroup): the largest drift (its centre, lowest index) and
//   the largest of the others, the largest squared norm; clears the list counters.
//   STAGE 2 (G threads per row, as kmeans_assign's exact distance): the test above.
//
// CS (uint words): [0] rows listed, all windows | [1] max ‖c‖² (float) | [2] largest drift |
//   [3] its centre | [4] largest drift of the others | [5..8) - | [8 + w] rows listed in window w |
//   from hdr: drift[k] | ‖c‖²[k] | centre pass: nearest centre[k] | lower bound[k] | distance[k].
//! variant f16: -DX_F16
#version 450
#extension GL_GOOGLE_include_directive : require
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM_X float16_t
#else
#define ELEM_X float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint STAGE = 0;
layout(constant_id = 4) const uint G = 1;             // stage 2: threads per row
layout(constant_id = 5) const bool HAS_SHIFT = true;
layout(constant_id = 6) const bool HAS_PREV = true;   // stage 0: previous centres given

const uint NONE = 0xFFFFFFFFu;

layout(binding = 0) readonly buffer X_ { ELEM_X X[]; };
layout(binding = 1) readonly buffer MU_ { float MU[]; };
layout(binding = 2) readonly buffer C_ { float C[]; };     // centres now
layout(binding = 3) readonly buffer CP_ { float CP[]; };   // centres of the previous assignment
layout(binding = 4) readonly buffer LO_ { uint LO[]; };    // labels of the previous assignment
layout(binding = 5) writeonly buffer L_ { uint L[]; };
layout(binding = 6) writeonly buffer DS_ { float DS[]; };
layout(binding = 7) buffer LB_ { float LB[]; };
layout(binding = 8) writeonly buffer LIST_ { uint LIST[]; };
layout(binding = 9) buffer CS_ { uint CS[]; };

layout(push_constant) uniform PC {
    uint n, d, k;          // rows of this window (stage 2), features, centres
    uint ldx, x_off, mu_off;
    uint ldc, c_off, ldcp, cp_off;
    uint lo_off, l_off, ds_off, lb_off, list_off;
    uint cnt_idx;          // stage 2: CS word of this window's count
    uint hdr;              // CS word where the per-centre arrays begin
    uint nclear;           // stage 1: window counters to clear
    uint listed0;          // stage 1: CS[0] starts at this (the rows of a full assignment)
    float slack;           // relative rounding allowance of a GEMM-form score
    uint use_s;            // stage 2: the centre pass ran (else Hamerly's second bound is left out)
} pc;

const uint WG = gl_WorkGroupSize.x;
shared float red[WG];
shared float red2[WG];
shared uint red_i[WG];
shared float red3[WG];
shared uint sh_cnt, sh_base;

#define KMEANS_XSQ
#include "kmeans_exact.glsl"

float rho() { return float(2u * pc.d + 16u) * (1.0 / 16777216.0); }
float tiny() { return float(pc.d + 16u) * 1.0e-37; }
float csf(uint i) { return uintBitsToFloat(CS[i]); }

// (m, i, m2) absorbs (v, j, v2): the largest (ties: lowest index), and the largest of the rest.
void absorb(inout float m, inout uint i, inout float m2, float v, uint j, float v2) {
    if (v > m || (v == m && j < i)) {
        m2 = max(m, max(m2, v2));
        m = v;
        i = j;
    } else {
        m2 = max(m2, max(v, v2));
    }
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    if (STAGE == 0u) {
        uint j = gl_GlobalInvocationID.x;
        if (j >= pc.k) return;
        float cn = 0.0, dr = 0.0;
        for (uint f = 0; f < pc.d; f++) {
            float c = C[pc.c_off + j * pc.ldc + f];
            cn = fma(c, c, cn);
            if (HAS_PREV) {
                float dv = c - CP[pc.cp_off + j * pc.ldcp + f];
                dr = fma(dv, dv, dr);
            }
        }
        float drift = HAS_PREV ? sqrt(dr * (1.0 + rho()) + tiny()) * (1.0 + 2.0e-6) : 0.0;
        CS[pc.hdr + j] = floatBitsToUint(drift);
        CS[pc.hdr + pc.k + j] = floatBitsToUint(cn * (1.0 + rho()) + tiny());
    } else if (STAGE == 1u) {
        float m = -1.0, m2 = 0.0, cm = 0.0;
        uint mi = NONE;
        for (uint j = t; j < pc.k; j += WG) {
            absorb(m, mi, m2, csf(pc.hdr + j), j, 0.0);
            cm = max(cm, csf(pc.hdr + pc.k + j));
        }
        red[t] = m;
        red_i[t] = mi;
        red2[t] = m2;
        red3[t] = cm;
        barrier();
        for (uint h = WG / 2u; h > 0u; h >>= 1) {
            if (t < h) {
                absorb(m, mi, m2, red[t + h], red_i[t + h], red2[t + h]);
                red[t] = m;
                red_i[t] = mi;
                red2[t] = m2;
                cm = max(cm, red3[t + h]);
                red3[t] = cm;
            }
            barrier();
        }
        if (t == 0u) {
            CS[0] = pc.listed0;
            CS[1] = floatBitsToUint(cm);
            CS[2] = floatBitsToUint(max(m, 0.0));
            CS[3] = mi;
            CS[4] = floatBitsToUint(m2);
        }
        for (uint w = t; w < pc.nclear; w += WG) CS[8u + w] = 0u;
    } else {
        const uint R = WG / G;
        const uint r = t / G, g = t % G;
        const uint i = gl_WorkGroupID.x * R + r;
        const bool valid = r < R && i < pc.n;
        uint a = 0u;
        float s = 0.0, xs = 0.0;
        if (valid) {
            a = LO[pc.lo_off + i];
            s = exact_partial(pc.x_off + i * pc.ldx, pc.mu_off, pc.c_off + a * pc.ldc, pc.d, g, G, xs);
        }
        red[t] = s;
        red2[t] = xs;
        if (t == 0u) sh_cnt = 0u;
        barrier();
        bool need = false;
        uint pos = 0u;
        if (valid && g == 0u) {
            float D = 0.0, xx = 0.0;
            D = exact_combine(red[t], G > 1u ? red[t + 1u] : 0.0, G > 2u ? red[t + 2u] : 0.0,
                              G > 2u ? red[t + 3u] : 0.0, G);   // kmeans_exact.glsl's order
            for (uint q = 0; q < G; q++) xx += red2[t + q];
            L[pc.l_off + i] = a;
            DS[pc.ds_off + i] = D;
            // l for the centres now: the old bound less the largest drift of the other centres.
            float dl = a == CS[3] ? csf(4) : csf(2);
            float l = min(LB[pc.lb_off + i], 1.0e30);   // +inf (no other centre): a finite stand-in
            float ln = (l - dl) - (abs(l) + dl) * 2.0e-6;
            LB[pc.lb_off + i] = ln;
            float dh = D * (1.0 + rho()) + tiny();             // ≥ the exact ‖x − c_a‖²
            float uh = sqrt(dh) * (1.0 + 2.0e-6);
            // Hamerly's second bound: 2 s(a) − u, when the centre pass found c_a nearest to itself.
            float ss = pc.use_s != 0u && CS[pc.hdr + 2u * pc.k + a] == a ? min(csf(pc.hdr + 3u * pc.k + a), 1.0e30)
                                                                         : 0.0;
            float l2 = (ss - uh) - (ss + uh) * 2.0e-6;
            float lb = max(ln, l2);
            float e = pc.slack * (xx * (1.0 + rho()) + tiny() + csf(1)) + tiny();
            bool keep = lb > 0.0 && (dh + 2.0 * e) * (1.0 + 2.0e-6) < (lb * lb) * (1.0 - 2.0e-6);
            if (!keep) {
                need = true;
                pos = atomicAdd(sh_cnt, 1u);
            }
        }
        barrier();
        if (t == 0u) {
            uint c = sh_cnt;
            sh_base = c > 0u ? atomicAdd(CS[pc.cnt_idx], c) : 0u;
            if (c > 0u) atomicAdd(CS[0], c);
        }
        barrier();
        if (need) LIST[pc.list_off + sh_base + pos] = i;
    }
}
