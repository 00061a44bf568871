// ivf_flat_scan.comp — IVF-Flat list scan: exact distances from a query to the raw vectors of one
// probed inverted list, with the k best rows selected in the same pass (scan_select.glsl).
//
// One workgroup per (query q = x, probe j = y) pair: it scans list probes[q, j] (its rows inside
// the window bound in this dispatch). Queries vary fastest so that a query's later probes start
// after its nearest lists have tightened the shared bound (scan_select.glsl). A subgroup takes one
// row at a time: its lanes read the row's consecutive 16-byte pieces (one coalesced read of the
// row), accumulate (x - q)^2 or x * q directly (no norm expansion), and a subgroup sum gives the
// distance. Any subgroup size.
// The pair's k best go to columns [(col0 + j) * k, +k) of the query's row of the partial outputs;
// a topk merge (topk_rows.comp) finishes.
#version 450
#extension GL_GOOGLE_include_directive : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_KHR_shader_subgroup_arithmetic : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint LARGEST = 0;      // 1: inner product, largest first
layout(constant_id = 4) const uint QG = 1;
layout(constant_id = 5) const uint CAP = 512;
layout(constant_id = 6) const uint SBUF = 512;
layout(constant_id = 7) const uint BUF_GLOBAL = 0;
layout(constant_id = 8) const uint VEC4 = 0;         // d, the row stride and the offset are multiples of 4
layout(constant_id = 9) const uint HAS_MASK = 0;
layout(constant_id = 10) const uint P = 2;           // rows per subgroup per round

layout(binding = 0) readonly buffer X_ { float X[]; };
layout(binding = 0) readonly buffer X4_ { vec4 X4[]; };
layout(binding = 1) readonly buffer Q_ { float Q[]; };
layout(binding = 2) readonly buffer W_ { uint WORK[]; };   // probes
layout(binding = 3) readonly buffer L_ { uint LISTS[]; };  // (first row, count) per list
layout(binding = 4) readonly buffer M_ { uint MASK[]; };
layout(binding = 5) buffer O_ { uint SB[]; };              // outputs and device candidate buffers

layout(push_constant) uniform PC {
    uint nq, k, d;
    uint x_off, ldx, row0, rows;        // bound window: rows [row0, row0 + rows) from X[x_off]
    uint q_off, ldq;
    uint nprobe, probe_off, lists_off, mask_off;
    uint col0, ldo, v_off, i_off, sel_off, gt_off;
} pc;

#include "scan_select.glsl"

bool allowed(uint row) {
    if (HAS_MASK == 0u) return true;
    uint bit = pc.mask_off + row;
    return ((MASK[bit >> 5] >> (bit & 31u)) & 1u) != 0u;
}

void main() {
    sel_k = pc.k;
    sel_gb = pc.sel_off + (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * (2u * QG * CAP);
    const uint q = gl_WorkGroupID.x, j = gl_WorkGroupID.y;
    sel_gt = pc.gt_off;
    sel_q0 = q;
    sel_nq = pc.nq;
    const uint list = WORK[pc.probe_off + q * pc.nprobe + j];
    uint r0 = 0u, r1 = 0u;
    if (list != NONE) {
        uint first = LISTS[pc.lists_off + 2u * list], count = LISTS[pc.lists_off + 2u * list + 1u];
        uint a = max(first, pc.row0), b = min(first + count, pc.row0 + pc.rows);
        if (a < b) { r0 = a - pc.row0; r1 = b - pc.row0; }
    }
    sel_init();

    const uint nsg = gl_NumSubgroups, sg = gl_SubgroupID, lane = gl_SubgroupInvocationID;
    const uint sgs = gl_SubgroupSize;
    const uint room = nsg * P;
    const uint qb = pc.q_off + q * pc.ldq;
    uint gt_ready = NONE, gt_next = NONE;
    for (uint base = r0; base < r1; base += room) {
        if (gl_LocalInvocationID.x == 0u) gt_next = sel_bound_fetch(0u);
        const uint tau = s_tau[0];
        for (uint p = 0u; p < P; p++) {
            const uint r = base + p * nsg + sg;
            if (r >= r1 || !allowed(pc.row0 + r)) continue;   // uniform in the subgroup
            const uint xb = pc.x_off + r * pc.ldx;
            float s = 0.0;
            if (VEC4 == 1u) {
                for (uint i = lane; i < pc.d / 4u; i += sgs) {
                    vec4 x = X4[(xb >> 2u) + i];
                    vec4 y = vec4(Q[qb + 4u * i], Q[qb + 4u * i + 1u], Q[qb + 4u * i + 2u], Q[qb + 4u * i + 3u]);
                    if (LARGEST == 1u) {
                        s += dot(x, y);
                    } else {
                        vec4 diff = x - y;
                        s += dot(diff, diff);
                    }
                }
            } else {
                for (uint i = lane; i < pc.d; i += sgs) {
                    float x = X[xb + i], y = Q[qb + i];
                    s = LARGEST == 1u ? fma(x, y, s) : fma(x - y, x - y, s);
                }
            }
            s = subgroupAdd(s);
            if (subgroupElect()) sel_offer(0u, tau, order_key(s), pc.row0 + r);
        }
        sel_round_end(room, gt_ready);
        gt_ready = gt_next;
    }
    const uint at = q * pc.ldo + (pc.col0 + j) * pc.k;
    sel_write(0u, true, pc.v_off + at, pc.i_off + at);
}
