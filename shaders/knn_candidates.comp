// knn_candidates.comp — prepares the candidate rows of a fused k-NN pass (quantize.c's SQIndex
// search): per query, its bound tau = the k-th best distance over a sample of the database (from
// the sample's top-k), widened by a few ulps so that the same distance computed by another
// pipeline of the distance kernel cannot fall outside it; a zero candidate count; and cap empty
// slots (+inf, or -inf when larger is better, with row 0xFFFFFFFF), what the final top-k reads as
// "no entry". One workgroup per query.
#version 450

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint LARGEST = 0;

layout(binding = 0) readonly buffer DS_ { float DS[]; };   // the sample's top-k values (rows of ldd)
layout(binding = 1) writeonly buffer TC_ { uint TC[]; };   // bounds at tau_off + row, counts at cnt_off + row
layout(binding = 2) writeonly buffer C_ { uint C[]; };     // candidate rows: cap values, cap rows

layout(push_constant) uniform PC {
    uint nq, k, ldd, d_off, tau_off, cnt_off, cap, c_off, ldc;
} pc;

void main() {
    const uint row = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    if (row >= pc.nq) return;
    if (t == 0u) {
        float tau = DS[pc.d_off + row * pc.ldd + pc.k - 1u];
        float widen = abs(tau) * 1.0e-6 + 1.0e-30;
        TC[pc.tau_off + row] = floatBitsToUint(LARGEST == 1u ? tau - widen : tau + widen);
        TC[pc.cnt_off + row] = 0u;
    }
    const uint empty = LARGEST == 1u ? 0xFF800000u : 0x7F800000u;
    const uint base = pc.c_off + row * pc.ldc;
    for (uint i = t; i < pc.cap; i += gl_WorkGroupSize.x) {
        C[base + i] = empty;
        C[base + pc.cap + i] = 0xFFFFFFFFu;
    }
}
