// knn_tau.comp — each query's bound for the fused k-nearest-neighbour search (csrc/ops/knn.c): from
// its row of upper bounds over the sample, a value T >= the k-th smallest of them (NaN ranking
// after every number), which is all the bound needs, without sorting anything. One workgroup per
// row: the row's finite range [mn, mx] is cut into NB bins, a histogram finds the bin holding the
// k-th value, a second one cuts that bin into NB sub-bins, and T is the upper edge of the sub-bin
// holding it plus a margin of 8 sub-bins and 2^-20 relative for the rounding of the bin
// coordinates (capped at mx). Rows of -inf, +inf or NaN at the k-th place give those.
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NB = 2048;

layout(binding = 0) readonly buffer X_ { float X[]; };
layout(binding = 1) writeonly buffer T_ { float T[]; };

layout(push_constant) uniform PC {
    uint rows, n, ldx, x_off, t_off, k;
} pc;

shared uint hist[NB];
shared float red_f[2 * 64];
shared uint red_u[3 * 64];
shared uint sel[2];

bool finite_bits(float v) { return (floatBitsToUint(v) & 0x7F800000u) != 0x7F800000u; }

// The bin holding the target-th value (1-based) of the histogram, and how many lie before it.
void find_bin(uint target) {
    const uint WG = gl_WorkGroupSize.x, t = gl_LocalInvocationID.x;
    const uint per = (NB + WG - 1) / WG, b0 = t * per;
    uint s = 0;
    for (uint b = b0; b < min(b0 + per, NB); b++) s += hist[b];
    uint pre = subgroupExclusiveAdd(s), tot = subgroupAdd(s);
    if (subgroupElect()) red_u[gl_SubgroupID] = tot;
    barrier();
    for (uint g = 0; g < gl_SubgroupID; g++) pre += red_u[g];
    if (pre < target && target <= pre + s) {
        uint below = pre;
        for (uint b = b0; b < min(b0 + per, NB); b++) {
            if (below + hist[b] >= target) {
                sel[0] = b;
                sel[1] = below;
                break;
            }
            below += hist[b];
        }
    }
    barrier();
}

void main() {
    const uint WG = gl_WorkGroupSize.x, t = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= pc.rows) return;
    const uint base = pc.x_off + row * pc.ldx;

    // The finite range, and how many are -inf, +inf, NaN.
    float mn = uintBitsToFloat(0x7F7FFFFFu), mx = -mn;
    uint lo = 0, hi = 0, nan = 0;
    for (uint i = t; i < pc.n; i += WG) {
        float v = X[base + i];
        uint u = floatBitsToUint(v);
        if (finite_bits(v)) {
            mn = min(mn, v);
            mx = max(mx, v);
        } else if ((u & 0x007FFFFFu) != 0u) nan++;
        else if ((u & 0x80000000u) != 0u) lo++;
        else hi++;
    }
    mn = subgroupMin(mn);
    mx = subgroupMax(mx);
    lo = subgroupAdd(lo);
    hi = subgroupAdd(hi);
    nan = subgroupAdd(nan);
    if (subgroupElect()) {
        red_f[gl_SubgroupID] = mn;
        red_f[64 + gl_SubgroupID] = mx;
        red_u[gl_SubgroupID] = lo;
        red_u[64 + gl_SubgroupID] = hi;
        red_u[128 + gl_SubgroupID] = nan;
    }
    barrier();
    lo = 0; hi = 0; nan = 0;
    for (uint g = 0; g < gl_NumSubgroups; g++) {
        mn = min(mn, red_f[g]);
        mx = max(mx, red_f[64 + g]);
        lo += red_u[g];
        hi += red_u[64 + g];
        nan += red_u[128 + g];
    }
    const uint nfin = pc.n - lo - hi - nan;
    float tau;
    if (pc.k <= lo) tau = uintBitsToFloat(0xFF800000u);
    else if (pc.k > lo + nfin + hi) tau = uintBitsToFloat(0x7FC00000u);
    else if (pc.k > lo + nfin) tau = uintBitsToFloat(0x7F800000u);
    else {
        const uint kk = pc.k - lo;   // rank among the finite values, 1-based
        float scale = float(NB) / (mx - mn);
        if (!(mx > mn) || !finite_bits(scale) || !(scale > 0.0)) {
            tau = mx;
        } else {
            for (uint b = t; b < NB; b += WG) hist[b] = 0u;
            barrier();
            for (uint i = t; i < pc.n; i += WG) {
                float v = X[base + i];
                if (finite_bits(v)) atomicAdd(hist[min(uint((v - mn) * scale), NB - 1)], 1u);
            }
            barrier();
            find_bin(kk);
            const uint b1 = sel[0], k2 = kk - sel[1];
            barrier();
            for (uint b = t; b < NB; b += WG) hist[b] = 0u;
            barrier();
            for (uint i = t; i < pc.n; i += WG) {
                float v = X[base + i];
                if (finite_bits(v)) {
                    float u = (v - mn) * scale;
                    if (min(uint(u), NB - 1) == b1)
                        atomicAdd(hist[min(uint(max(u - float(b1), 0.0) * float(NB)), NB - 1)], 1u);
                }
            }
            barrier();
            find_bin(k2);
            const uint b2 = sel[0];
            float ut = float(b1) + float(b2 + 9u) / float(NB);
            tau = mn + ut / scale;
            tau += abs(tau) * (1.0 / 1048576.0) + 1e-30;
            tau = min(tau, mx);
        }
    }
    if (t == 0) T[pc.t_off + row] = tau;
}
