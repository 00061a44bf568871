// kmeans_centres.comp — the end of a Lloyd update. STAGE 0 (a thread per (label, column)) adds a
// window's chunk partials (kmeans_reduce.comp) into the running 64-bit fixed-point sums ACC;
// 1 (a workgroup per centre) turns the sums into the new centre (sum / weight; an empty centre
// keeps its old position and is counted), its weight and its squared shift; 2 (one workgroup)
// reduces the inertia partials and the shifts in a fixed order and writes the step's statistics.
//
// CNT (uint words): counts[k] | changed, empty, work chunks, - | inertia partials (float bits)
// AUX (uint words, from aux_off): weights[k] | shifts[k] | changed, empty, inertia, shift
#version 450
layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint STAGE = 0;

layout(binding = 0) buffer CNT_ { uint CNT[]; };
layout(binding = 1) readonly buffer OFF_ { uint OFF[]; };
layout(binding = 2) readonly buffer P_ { uvec2 P[]; };
layout(binding = 3) buffer ACC_ { uvec2 ACC[]; };
layout(binding = 4) readonly buffer SC_ { float SC[]; };
layout(binding = 5) readonly buffer CO_ { float CO[]; };   // old centres
layout(binding = 6) writeonly buffer CN_ { float CN[]; };  // new centres
layout(binding = 7) buffer AUX_ { uint AUX[]; };

layout(push_constant) uniform PC {
    uint k, d;
    uint first;            // stage 0: the first window (ACC starts from zero)
    uint sc_off, co_off, ldco, cn_off, ldcn, aux_off;
    uint npart;            // inertia partials
} pc;

const uint WG = gl_WorkGroupSize.x;
shared float red[WG];
shared float red2[WG];

uvec2 add64(uvec2 a, uvec2 b) {
    uint c;
    uint lo = uaddCarry(a.x, b.x, c);
    return uvec2(lo, a.y + b.y + c);
}

float from_fixed(uvec2 s) {
    bool neg = (s.y & 0x80000000u) != 0u;
    if (neg) {
        s.x = ~s.x + 1u;
        s.y = ~s.y + (s.x == 0u ? 1u : 0u);
    }
    float r = float(s.y) * 4294967296.0 + float(s.x);
    return neg ? -r : r;
}

void main() {
    const uint t = gl_LocalInvocationID.x;
    const uint k = pc.k, ncol = pc.d + 1u;
    if (STAGE == 0u) {
        uint e = gl_GlobalInvocationID.x;
        if (e >= k * ncol) return;
        uint j = e / ncol, f = e % ncol;
        const uint cb = 2u * k + 1u;
        uvec2 s = pc.first != 0u ? uvec2(0u) : ACC[e];
        for (uint g = OFF[cb + j]; g < OFF[cb + j + 1u]; g++) s = add64(s, P[g * ncol + f]);
        ACC[e] = s;
    } else if (STAGE == 1u) {
        const uint j = gl_WorkGroupID.x;
        float w = from_fixed(ACC[j * ncol + pc.d]) / SC[pc.sc_off + pc.d];
        bool live = w > 0.0;
        float sh = 0.0;
        for (uint f = t; f < pc.d; f += WG) {
            float old = CO[pc.co_off + j * pc.ldco + f];
            float c = live ? from_fixed(ACC[j * ncol + f]) / SC[pc.sc_off + f] / w : old;
            CN[pc.cn_off + j * pc.ldcn + f] = c;
            float dc = c - old;
            sh = fma(dc, dc, sh);
        }
        red[t] = sh;
        barrier();
        for (uint h = WG / 2u; h > 0u; h >>= 1) {
            if (t < h) red[t] += red[t + h];
            barrier();
        }
        if (t == 0u) {
            AUX[pc.aux_off + j] = floatBitsToUint(live ? w : 0.0);
            AUX[pc.aux_off + k + j] = floatBitsToUint(red[0]);
            if (!live) atomicAdd(CNT[k + 1u], 1u);
        }
    } else {
        // Thread-contiguous runs, then a tree: the same order every time.
        uint per = (pc.npart + WG - 1u) / WG;
        float a = 0.0;
        for (uint q = t * per; q < min(pc.npart, t * per + per); q++) a += uintBitsToFloat(CNT[k + 4u + q]);
        per = (k + WG - 1u) / WG;
        float b = 0.0;
        for (uint q = t * per; q < min(k, t * per + per); q++) b += uintBitsToFloat(AUX[pc.aux_off + k + q]);
        red[t] = a;
        red2[t] = b;
        barrier();
        for (uint h = WG / 2u; h > 0u; h >>= 1) {
            if (t < h) {
                red[t] += red[t + h];
                red2[t] += red2[t + h];
            }
            barrier();
        }
        if (t == 0u) {
            AUX[pc.aux_off + 2u * k] = CNT[k];
            AUX[pc.aux_off + 2u * k + 1u] = CNT[k + 1u];
            AUX[pc.aux_off + 2u * k + 2u] = floatBitsToUint(red[0]);
            AUX[pc.aux_off + 2u * k + 3u] = floatBitsToUint(red2[0]);
        }
    }
}
