// hamming_threshold.comp — first pass of the fused Hamming k-NN (hamming.c): for each query, an
// upper bound tau on its k-th smallest Hamming distance, from a sample of the database rows (every
// stride-th row, the filter applied): the sample's k-th smallest distance is never below the whole
// database's, so every true neighbour has distance <= tau. Distances are small integers, so the
// sample's distances go into a per-query histogram in shared memory and tau is where the running
// count reaches k (all ones, i.e. every row, when the sample has fewer than k allowed rows).
// The pass also prepares the next ones: it zeroes each query's candidate count and fills its
// candidate row (cap slots) with +inf / 0xFFFFFFFF, what the final top-k reads as "no entry".
// QT queries per workgroup; codes are W 32-bit words (zero padded); any subgroup size.
#version 450
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint W = 8;        // words per code
layout(constant_id = 4) const uint QT = 4;       // queries per workgroup
layout(constant_id = 5) const uint HAS_MASK = 0;

layout(binding = 0) readonly buffer Q_ { uint Q[]; };
layout(binding = 1) readonly buffer B_ { uint B[]; };
layout(binding = 2) readonly buffer M_ { uint MASK[]; };
layout(binding = 3) writeonly buffer T_ { uint TAU[]; };
layout(binding = 4) writeonly buffer C_ { uint CNT[]; };
layout(binding = 5) writeonly buffer CV_ { float CV[]; };
layout(binding = 6) writeonly buffer CI_ { uint CI[]; };

// Offsets and row strides in words; sample rows are j = i * stride for i < nsample.
layout(push_constant) uniform PC {
    uint nq, nb, ldq, q_off, ldb, b_off, nsample, stride, k, cap, mask_off, c_off;
} pc;

const uint HB = W * 32u + 1u;                    // distances 0 .. 32 W
shared uint hist[QT * HB];
shared uint qs[QT * W];

bool allowed(uint j) {
    if (HAS_MASK == 0u) return true;
    uint bit = pc.mask_off + j;
    return ((MASK[bit >> 5] >> (bit & 31u)) & 1u) != 0u;
}

void main() {
    const uint WG = gl_WorkGroupSize.x, t = gl_LocalInvocationID.x;
    const uint q0 = gl_WorkGroupID.x * QT;
    for (uint i = t; i < QT * HB; i += WG) hist[i] = 0u;
    for (uint i = t; i < QT * W; i += WG) {
        uint q = q0 + i / W;
        qs[i] = q < pc.nq ? Q[pc.q_off + q * pc.ldq + i % W] : 0u;
    }
    const uint nfill = min(QT, pc.nq - q0) * pc.cap;
    for (uint i = t; i < nfill; i += WG) {
        CV[q0 * pc.cap + i] = uintBitsToFloat(0x7F800000u);
        CI[q0 * pc.cap + i] = 0xFFFFFFFFu;
    }
    if (t < QT && q0 + t < pc.nq) CNT[pc.c_off + q0 + t] = 0u;
    barrier();

    for (uint i = t; i < pc.nsample; i += WG) {
        uint j = i * pc.stride;
        if (!allowed(j)) continue;
        uint c[W];
        [[unroll]] for (uint w = 0u; w < W; w++) c[w] = B[pc.b_off + j * pc.ldb + w];
        [[unroll]] for (uint q = 0u; q < QT; q++) {
            uint dist = 0u;
            [[unroll]] for (uint w = 0u; w < W; w++) dist += bitCount(c[w] ^ qs[q * W + w]);
            atomicAdd(hist[q * HB + dist], 1u);
        }
    }
    barrier();

    if (t < QT && q0 + t < pc.nq) {
        uint run = 0u, tau = 0xFFFFFFFFu;
        for (uint b = 0u; b < HB; b++) {
            run += hist[t * HB + b];
            if (run >= pc.k) { tau = b; break; }
        }
        TAU[q0 + t] = tau;
    }
}
