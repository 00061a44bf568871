// knn_tau.comp — each query's bound for the fused k-nearest-neighbour search (csrc/ops/knn.c): from
// its row of upper bounds over the sample, a value T >= the k-th smallest of them (NaN ranking
// after every number), which is all the bound needs, without sorting anything. One workgroup per
// row. The first PREFIX entries give a range [lo, hi): hi their largest finite value (at least the
// k-th smallest of the row when they hold k finite values), lo as far below their smallest; one
// read of the row counts -inf, the finite values below lo, in each of NB bins of [lo, hi), above
// it, +inf and NaN, and so finds the bin holding the k-th value. T is that bin's upper edge plus a
// margin of a bin and 2^-20 relative for the rounding of the bin coordinates; where a bin is
// wider than 2^-10 of T (a row of a very wide range), a second read cuts it into NB sub-bins. A
// k-th value below lo gives lo, above hi +inf (valid, only looser); -inf, +inf or NaN at the k-th
// place give those. With LARGEST the row is read negated and -T written: a value <= the k-th largest
// (topk's filter path, csrc/ops/topk.c, takes its rows' bounds from here too).
#version 450
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint NB = 4096;
layout(constant_id = 2) const uint PREFIX = 2048;
layout(constant_id = 3) const bool LARGEST = false;

layout(binding = 0) readonly buffer X_ { float X[]; };
layout(binding = 1) writeonly buffer T_ { float T[]; };

layout(push_constant) uniform PC {
    uint rows, n, ldx, x_off, t_off, k;
} pc;

shared uint hist[NB];
shared float red_f[2 * 64];
shared uint red_u[3 * 64];
shared uint red_c[2 * 64];
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

    // The range, from the prefix.
    float pmn = uintBitsToFloat(0x7F7FFFFFu), pmx = -pmn;
    for (uint i = t; i < min(pc.n, PREFIX); i += WG) {
        float v = LARGEST ? -X[base + i] : X[base + i];
        if (finite_bits(v)) {
            pmn = min(pmn, v);
            pmx = max(pmx, v);
        }
    }
    pmn = subgroupMin(pmn);
    pmx = subgroupMax(pmx);
    if (subgroupElect()) {
        red_f[gl_SubgroupID] = pmn;
        red_f[64 + gl_SubgroupID] = pmx;
    }
    for (uint b = t; b < NB; b += WG) hist[b] = 0u;
    barrier();
    for (uint g = 0; g < gl_NumSubgroups; g++) {
        pmn = min(pmn, red_f[g]);
        pmx = max(pmx, red_f[64 + g]);
    }
    const float hi = pmx, lo = pmn - (pmx - pmn);
    float scale = float(NB) / (hi - lo);
    const bool binned = hi > lo && finite_bits(scale) && scale > 0.0;
    // One read: the counts and the histogram.
    uint ninf = 0, under = 0, over = 0, pinf = 0, nan = 0;
    for (uint i = t; i < pc.n; i += WG) {
        float v = LARGEST ? -X[base + i] : X[base + i];
        uint u = floatBitsToUint(v);
        if (!finite_bits(v)) {
            if ((u & 0x007FFFFFu) != 0u) nan++;
            else if ((u & 0x80000000u) != 0u) ninf++;
            else pinf++;
        } else if (!(v >= lo)) {
            under++;
        } else if (!binned || !(v < hi)) {
            over++;
        } else {
            atomicAdd(hist[min(uint((v - lo) * scale), NB - 1)], 1u);
        }
    }
    ninf = subgroupAdd(ninf); under = subgroupAdd(under); over = subgroupAdd(over);
    pinf = subgroupAdd(pinf); nan = subgroupAdd(nan);
    if (subgroupElect()) {
        red_u[gl_SubgroupID] = ninf;
        red_u[64 + gl_SubgroupID] = under;
        red_u[128 + gl_SubgroupID] = over;
        red_c[gl_SubgroupID] = pinf;
        red_c[64 + gl_SubgroupID] = nan;
    }
    barrier();
    ninf = 0; under = 0; over = 0; pinf = 0; nan = 0;
    for (uint g = 0; g < gl_NumSubgroups; g++) {
        ninf += red_u[g];
        under += red_u[64 + g];
        over += red_u[128 + g];
        pinf += red_c[g];
        nan += red_c[64 + g];
    }
    const uint inbins = pc.n - ninf - under - over - pinf - nan;
    barrier();
    float tau;
    uint kk = pc.k;
    if (kk <= ninf) tau = uintBitsToFloat(0xFF800000u);
    else if (kk <= ninf + under) tau = lo;
    else if (kk <= ninf + under + inbins) {
        kk -= ninf + under;
        find_bin(kk);
        const uint b1 = sel[0], k2 = kk - sel[1];
        barrier();
        float ut = float(b1 + 2u);
        if ((hi - lo) / float(NB) > abs(lo + float(b1 + 1u) / scale) * (1.0 / 1024.0)) {
            // A wide range: the bin's NB sub-bins, from a second read.
            for (uint b = t; b < NB; b += WG) hist[b] = 0u;
            barrier();
            for (uint i = t; i < pc.n; i += WG) {
                float v = LARGEST ? -X[base + i] : X[base + i];
                if (finite_bits(v) && v >= lo && v < hi) {
                    float u = (v - lo) * scale;
                    if (min(uint(u), NB - 1) == b1)
                        atomicAdd(hist[min(uint(max(u - float(b1), 0.0) * float(NB)), NB - 1)], 1u);
                }
            }
            barrier();
            find_bin(k2);
            ut = float(b1) + float(sel[0] + 9u) / float(NB);
        }
        tau = lo + ut / scale;
        tau += abs(tau) * (1.0 / 1048576.0) + 1e-30;
        tau = min(tau, hi);
    } else if (kk <= pc.n - nan) tau = uintBitsToFloat(0x7F800000u);
    else tau = uintBitsToFloat(0x7FC00000u);
    if (t == 0) T[pc.t_off + row] = LARGEST ? -tau : tau;
}
