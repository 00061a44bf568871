// kmeans_pp.comp — greedy k-means++ seeding on the device, one centre per step and nothing read
// back between steps. Per step (T candidate points, their rows gathered by kmeans_gather.comp):
// STAGE 1 `dist` (a workgroup per block of WG rows): D_t[i] = min(closest[i], ‖x_i − shift −
// cand_t‖²), computed directly, with closest = the previous step's D of its best trial, and the
// block sums of w·D_t; STAGE 2 `select` (one workgroup): each trial's potential Σ w·D_t in a
// fixed order, the best trial (ties: the first), its row copied out as centre `step`; STAGE 0
// `search` (one workgroup per X window, before the next step's gather): the next step's T
// candidates, sampled with probability ∝ w·closest: each threshold u·potential (u drawn on the
// host) is located by a scan over the block sums, then a scan inside the one block it falls in
// (numpy.searchsorted's rule on the cumulative sum: the first row whose running sum reaches it).
//
// ST (uint words): best trial, potential (float bits), candidates[T] | shift[d] at st_mu |
// candidate rows[T][d] at st_rows | uniforms[(k-1) T] at st_u | chosen rows[k] at st_idx.
// D: (rows, T) float32 per window; BS: (blocks, T) float32.
//! variant f16: -DX_F16
#version 450
#extension GL_EXT_control_flow_attributes : require
#if defined(X_F16)
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ELEM_X float16_t
#else
#define ELEM_X float
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint STAGE = 1;
layout(constant_id = 4) const uint T = 8;      // trials the arrays hold (>= the trials used)
layout(constant_id = 5) const uint DK = 16;    // feature slice of the dist stage

#define INF uintBitsToFloat(0x7F800000u)

layout(binding = 0) readonly buffer X_ { ELEM_X X[]; };
layout(binding = 1) readonly buffer W_ { float W[]; };
layout(binding = 2) readonly buffer DP_ { float DP[]; };   // previous step's D
layout(binding = 3) writeonly buffer DC_ { float DC[]; };  // this step's D
layout(binding = 4) readonly buffer BSP_ { float BSP[]; };
layout(binding = 5) writeonly buffer BSC_ { float BSC[]; };
layout(binding = 6) buffer ST_ { uint ST[]; };
layout(binding = 7) writeonly buffer C_ { float C[]; };

layout(push_constant) uniform PC {
    uint d, teff, step, first;   // first: step 0 (no previous D)
    uint ldx, x_off;
    uint r0, rc;                 // global rows of this X window (r0 a multiple of WG)
    uint w_off, has_w;
    uint dp_off, dc_off;         // window remainders of D
    uint nblk;                   // blocks of WG rows in all of X
    uint st_mu, st_rows, st_u, st_idx;
    uint c_off, ldc;
} pc;

const uint WG = gl_WorkGroupSize.x;
shared float red[WG];
shared float scan_[WG];
shared float Xs[WG * (DK + 1)];
shared float Cs[T * DK];
shared float pots[T];
shared uint sh_blk, sh_found, sh_last, sh_best;
shared float sh_r;

float st_f(uint i) { return uintBitsToFloat(ST[i]); }

// Inclusive scan of v over the workgroup (Hillis-Steele), returned per thread.
float scan_incl(float v) {
    const uint t = gl_LocalInvocationID.x;
    scan_[t] = v;
    barrier();
    for (uint h = 1u; h < WG; h <<= 1) {
        float x = t >= h ? scan_[t - h] : 0.0;
        barrier();
        scan_[t] += x;
        barrier();
    }
    return scan_[t];
}

void search() {
    const uint t = gl_LocalInvocationID.x;
    const uint best = ST[0];
    const float pot = st_f(1u);
    const uint per = (pc.nblk + WG - 1u) / WG;
    const uint a = min(pc.nblk, t * per), b = min(pc.nblk, a + per);
    float s = 0.0;
    for (uint q = a; q < b; q++) s += BSP[q * T + best];
    float inc = scan_incl(s);
    float total = scan_[WG - 1u];
    float prev = t > 0u ? scan_[t - 1u] : 0.0;
    const uint wb0 = pc.r0 / WG, wb1 = (pc.r0 + pc.rc + WG - 1u) / WG;   // this window's blocks
    for (uint tt = 0u; tt < pc.teff; tt++) {
        float r = min(st_f(pc.st_u + (pc.step - 1u) * T + tt) * pot, total);
        // The thread whose run of blocks holds r (exactly one: runs are nondecreasing).
        if ((t == 0u || prev < r) && inc >= r) {
            float cum = prev;
            uint blk = b > a ? b - 1u : a, lastpos = blk;
            bool found = false, anypos = false;
            float rr = 0.0;
            for (uint q = a; q < b; q++) {
                float v = BSP[q * T + best];
                if (v > 0.0) { lastpos = q; anypos = true; }
                if (!found && cum + v >= r) { blk = q; rr = r - cum; found = true; }
                cum += v;
            }
            if (!found) { blk = lastpos; rr = anypos ? BSP[lastpos * T + best] : 0.0; }
            sh_blk = blk;
            sh_r = rr;
        }
        if (t == 0u) { sh_found = 0u; sh_last = 0u; }
        barrier();
        const uint blk = sh_blk;
        const float rr = sh_r;
        if (blk >= wb0 && blk < wb1) {
            uint il = (blk - wb0) * WG + t;   // row in this window
            float v = 0.0;
            if (il < pc.rc) {
                v = DP[pc.dp_off + il * T + best];
                if (pc.has_w != 0u) v *= W[pc.w_off + il];
            }
            if (v > 0.0) atomicMax(sh_last, t);
            float inc2 = scan_incl(v);
            float prev2 = t > 0u ? scan_[t - 1u] : 0.0;
            if (il < pc.rc && (t == 0u || prev2 < rr) && inc2 >= rr) {
                ST[2u + tt] = pc.r0 + il;
                sh_found = 1u;
            }
            barrier();
            // Rounding left rr past the block's own running sum: its last row with any mass.
            if (t == 0u && sh_found == 0u) ST[2u + tt] = pc.r0 + (blk - wb0) * WG + sh_last;
        }
        barrier();
    }
}

void dist() {
    const uint t = gl_LocalInvocationID.x;
    const uint g = gl_WorkGroupID.x;
    const uint row0 = g * WG;                 // first row of this block, in the window
    float acc[T];
    [[unroll]] for (uint q = 0u; q < T; q++) acc[q] = 0.0;
    for (uint k0 = 0u; k0 < pc.d; k0 += DK) {
        [[unroll]] for (uint s = 0u; s < DK; s++) {
            uint e = s * WG + t;
            uint row = e / DK, col = e % DK;
            uint i = row0 + row, f = k0 + col;
            float v = 0.0;
            if (i < pc.rc && f < pc.d) v = float(X[pc.x_off + i * pc.ldx + f]) - st_f(pc.st_mu + f);
            Xs[row * (DK + 1u) + col] = v;
        }
        for (uint e = t; e < T * DK; e += WG) {
            uint q = e / DK, f = k0 + e % DK;
            Cs[e] = q < pc.teff && f < pc.d ? st_f(pc.st_rows + q * pc.d + f) : 0.0;
        }
        barrier();
        for (uint col = 0u; col < DK; col++) {
            float xv = Xs[t * (DK + 1u) + col];
            [[unroll]] for (uint q = 0u; q < T; q++) {
                float dv = xv - Cs[q * DK + col];
                acc[q] = fma(dv, dv, acc[q]);
            }
        }
        barrier();
    }
    const uint i = row0 + t;
    const bool valid = i < pc.rc;
    const uint best = ST[0];
    float closest = INF, w = 1.0;
    if (valid) {
        if (pc.first == 0u) closest = DP[pc.dp_off + i * T + best];
        if (pc.has_w != 0u) w = W[pc.w_off + i];
    }
    [[unroll]] for (uint q = 0u; q < T; q++) {
        if (q < pc.teff) {
            float dv = min(closest, acc[q]);
            if (valid) DC[pc.dc_off + i * T + q] = dv;
            red[t] = valid ? w * dv : 0.0;
            barrier();
            for (uint h = WG / 2u; h > 0u; h >>= 1) {
                if (t < h) red[t] += red[t + h];
                barrier();
            }
            if (t == 0u) BSC[(pc.r0 / WG + g) * T + q] = red[0];
            barrier();
        }
    }
}

void select_best() {
    const uint t = gl_LocalInvocationID.x;
    const uint per = (pc.nblk + WG - 1u) / WG;
    const uint a = min(pc.nblk, t * per), b = min(pc.nblk, a + per);
    [[unroll]] for (uint q = 0u; q < T; q++) {
        if (q < pc.teff) {
            float s = 0.0;
            for (uint bb = a; bb < b; bb++) s += BSP[bb * T + q];
            red[t] = s;
            barrier();
            for (uint h = WG / 2u; h > 0u; h >>= 1) {
                if (t < h) red[t] += red[t + h];
                barrier();
            }
            if (t == 0u) pots[q] = red[0];
            barrier();
        }
    }
    if (t == 0u) {
        uint bq = 0u;
        for (uint q = 1u; q < pc.teff; q++)
            if (pots[q] < pots[bq]) bq = q;
        ST[0] = bq;
        ST[1] = floatBitsToUint(pots[bq]);
        ST[pc.st_idx + pc.step] = ST[2u + bq];
        sh_best = bq;
    }
    barrier();
    const uint bq = sh_best;
    for (uint f = t; f < pc.d; f += WG) C[pc.c_off + pc.step * pc.ldc + f] = st_f(pc.st_rows + bq * pc.d + f);
}

void main() {
    if (STAGE == 0u) search();
    else if (STAGE == 1u) dist();
    else select_best();
}
