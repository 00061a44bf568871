// knn_select.comp — the k best of each query's candidate list (written by matmul.comp's KNN
// epilogue in arrival order): one workgroup per query sorts its candidates in shared memory as
// 64-bit keys (distance as an order-preserving uint, then database index, so ties go to the lower
// index and NaN after every number) with a bitonic network, and writes the first k. A query whose
// list overflowed (more candidates than slots), or holds fewer than pc.need, is flagged for an
// exact recomputation. topk's filter path (topk.c) uses it too: a row's candidates are its entries
// (value bits, column), OUT 3 ranks the largest first.
#version 450

layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint CAP = 2048;     // slots per query, a power of two
layout(constant_id = 2) const uint OUT = 0;        // 0 value, 1 sqrt(value), 2 -value, 3 value largest first

layout(binding = 0) readonly buffer CAND_ { uvec2 CAND[]; };
layout(binding = 1) readonly buffer CNT_ { uint CNT[]; };
layout(binding = 2) writeonly buffer D_ { float D[]; };
layout(binding = 3) writeonly buffer I_ { uint I[]; };
layout(binding = 4) writeonly buffer F_ { uint F[]; };

layout(push_constant) uniform PC {
    uint nq, k;
    uint d_off, ldd, i_off, ldi, f_off;
    uint need;   // fewer candidates than this: flagged too
} pc;

shared uvec2 keys[CAP];

const uvec2 NONE = uvec2(0xFFFFFFFFu, 0xFFFFFFFFu);

// Keys of numbers lie in [0x007FFFFF, 0xFF800000], so inverting one (OUT 3) keeps it there.
uint order_key(uint bits) {
    if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return 0xFFFFFFFEu;   // NaN: after every number
    if (bits == 0x80000000u) bits = 0u;                              // -0 is 0
    uint key = (bits & 0x80000000u) != 0u ? ~bits : bits | 0x80000000u;
    return OUT == 3 ? ~key : key;
}

float key_value(uint key) {
    if (key == 0xFFFFFFFEu) return uintBitsToFloat(0x7FC00000u);
    if (OUT == 3) key = ~key;
    return uintBitsToFloat((key & 0x80000000u) != 0u ? key & 0x7FFFFFFFu : ~key);
}

bool less(uvec2 a, uvec2 b) { return a.x < b.x || (a.x == b.x && a.y < b.y); }

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint t = gl_LocalInvocationID.x;
    const uint q = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (q >= pc.nq) return;
    uint count = CNT[q];
    uint n = min(count, CAP);
    uint p2 = 1;
    while (p2 < max(n, pc.k)) p2 <<= 1;
    p2 = min(p2, CAP);
    for (uint i = t; i < p2; i += WG) {
        uvec2 c = i < n ? CAND[q * CAP + i] : NONE;
        keys[i] = i < n ? uvec2(order_key(c.x), c.y) : NONE;
    }
    barrier();
    for (uint size = 2; size <= p2; size <<= 1) {
        for (uint stride = size >> 1; stride > 0; stride >>= 1) {
            for (uint h = t; h < p2 / 2; h += WG) {
                uint i = 2 * h - (h & (stride - 1));
                uint j = i + stride;
                bool up = (i & size) == 0;
                uvec2 a = keys[i], b = keys[j];
                if (less(b, a) == up) {
                    keys[i] = b;
                    keys[j] = a;
                }
            }
            barrier();
        }
    }
    for (uint i = t; i < pc.k; i += WG) {
        uvec2 c = i < p2 ? keys[i] : NONE;
        float v;
        uint idx;
        if (c == NONE) {
            v = OUT >= 2 ? uintBitsToFloat(0xFF800000u) : uintBitsToFloat(0x7F800000u);
            idx = 0xFFFFFFFFu;
        } else {
            v = key_value(c.x);
            if (OUT == 1) v = sqrt(v);
            else if (OUT == 2) v = -v;
            idx = c.y;
        }
        D[pc.d_off + q * pc.ldd + i] = v;
        I[pc.i_off + q * pc.ldi + i] = idx;
    }
    if (t == 0) F[pc.f_off + q] = count > CAP || count < pc.need ? 1u : 0u;
}
