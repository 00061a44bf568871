// hamming_filter.comp — main pass of the fused Hamming k-NN (hamming.c): every query of the block
// sits in shared memory with its bound tau (hamming_threshold.comp); each workgroup streams a slab
// of database codes once from device memory, each thread holding R codes in registers, and
// computes the Hamming distance of each of its codes to every query. A (distance, row) pair with
// distance <= tau (and allowed by the filter) is appended to the query's candidate row; rows past
// cap are counted but not stored (the caller redoes such queries exactly). Nothing of size
// queries x database is ever written: per query only the rows within tau (a few thousand at most
// in the usual case) reach memory, and the final top-k (topk_rows.comp) sorts those by
// (distance, row), ties to the lower row.
// Cost per (query, code) pair: W xors, W popcounts, W adds and one compare; the queries' words are
// read from shared memory as broadcasts and reused across the thread's R codes.
#version 450
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint W = 8;          // words per code
layout(constant_id = 4) const uint R = 4;          // codes per thread per step
layout(constant_id = 5) const uint QMAX = 1024;    // queries held in shared memory
layout(constant_id = 6) const uint HAS_MASK = 0;
layout(constant_id = 7) const uint VEC = 1;        // 4: codes read as uvec4 (W % 4 == 0, aligned rows)
// 1 (W % 8 == 0): each 8 words of xors are added bitwise by carry-save adders first (Harley-Seal),
// so 4 popcounts count them instead of 8, for 14 more logic operations: faster where popcount is
// the bottleneck and logic operations issue beside it (VACCEL_HAMMING_CSA=1; measure first).
layout(constant_id = 8) const uint CSA = 0;

layout(binding = 0) readonly buffer Q_ { uint Q[]; };
layout(binding = 1) readonly buffer B_ { uint B[]; };
layout(binding = 1) readonly buffer B4_ { uvec4 B4[]; };
layout(binding = 2) readonly buffer M_ { uint MASK[]; };
layout(binding = 3) readonly buffer T_ { uint TAU[]; };
layout(binding = 4) buffer C_ { uint CNT[]; };
layout(binding = 5) writeonly buffer CV_ { float CV[]; };
layout(binding = 6) writeonly buffer CI_ { uint CI[]; };

// Offsets and row strides in words. Workgroup g takes rows [g * slab, (g + 1) * slab) of this
// window of nb database rows, which starts at database row row0 (the filter's bit mask_off + j and
// the row reported are counted from there).
layout(push_constant) uniform PC {
    uint nq, nb, ldq, q_off, ldb, b_off, slab, cap, mask_off, gx, row0, c_off;
} pc;

shared uint qs[QMAX * W];
shared uint taus[QMAX];

bool allowed(uint j) {
    if (HAS_MASK == 0u) return true;
    uint bit = pc.mask_off + j;
    return ((MASK[bit >> 5] >> (bit & 31u)) & 1u) != 0u;
}

// Full adder over 32 bit positions: a + b + c = s + 2 carry.
void full_add(uint a, uint b, uint c, out uint s, out uint carry) {
    s = a ^ b ^ c;
    carry = (a & b) | (c & (a ^ b));
}

// Set bits of eight words, with 4 popcounts.
uint popcount8(uint x0, uint x1, uint x2, uint x3, uint x4, uint x5, uint x6, uint x7) {
    uint s1, c1, s2, c2, ones, c4, t, u;
    full_add(x0, x1, x2, s1, c1);
    full_add(x3, x4, x5, s2, c2);
    full_add(s1, s2, x6 ^ x7, ones, c4);            // x6 + x7 = (x6 ^ x7) + 2 (x6 & x7)
    full_add(c1, c2, x6 & x7, t, u);                 // weight 2
    uint twos = t ^ c4, u2 = t & c4;                 // + the carry of the ones: weight 2, 4
    uint fours = u ^ u2, eights = u & u2;
    return bitCount(ones) + 2u * bitCount(twos) + 4u * bitCount(fours) + 8u * bitCount(eights);
}

void main() {
    const uint WG = gl_WorkGroupSize.x, t = gl_LocalInvocationID.x;
    const uint g = gl_WorkGroupID.y * pc.gx + gl_WorkGroupID.x;
    for (uint i = t; i < pc.nq * W; i += WG) qs[i] = Q[pc.q_off + (i / W) * pc.ldq + i % W];
    for (uint i = t; i < pc.nq; i += WG) taus[i] = TAU[i];
    barrier();

    const uint start = g * pc.slab;
    const uint stop = min(start + pc.slab, pc.nb);
    for (uint base = start; base < stop; base += WG * R) {
        uint c[R * W];
        [[unroll]] for (uint r = 0u; r < R; r++) {
            uint j = base + r * WG + t;
            if (VEC == 4u) {
                [[unroll]] for (uint w = 0u; w < W / 4u; w++) {
                    uvec4 v = j < stop ? B4[(pc.b_off + j * pc.ldb) / 4u + w] : uvec4(0u);
                    c[r * W + 4u * w] = v.x;
                    c[r * W + 4u * w + 1u] = v.y;
                    c[r * W + 4u * w + 2u] = v.z;
                    c[r * W + 4u * w + 3u] = v.w;
                }
            } else {
                [[unroll]] for (uint w = 0u; w < W; w++) c[r * W + w] = j < stop ? B[pc.b_off + j * pc.ldb + w] : 0u;
            }
        }
        for (uint q = 0u; q < pc.nq; q++) {
            uint qv[W];
            [[unroll]] for (uint w = 0u; w < W; w++) qv[w] = qs[q * W + w];
            const uint tau = taus[q];
            [[unroll]] for (uint r = 0u; r < R; r++) {
                uint dist = 0u;
                if (CSA == 1u) {
                    [[unroll]] for (uint g = 0u; g < W / 8u; g++) {
                        uint o = r * W + 8u * g, v = 8u * g;
                        dist += popcount8(c[o] ^ qv[v], c[o + 1u] ^ qv[v + 1u], c[o + 2u] ^ qv[v + 2u],
                                          c[o + 3u] ^ qv[v + 3u], c[o + 4u] ^ qv[v + 4u], c[o + 5u] ^ qv[v + 5u],
                                          c[o + 6u] ^ qv[v + 6u], c[o + 7u] ^ qv[v + 7u]);
                    }
                } else {
                    [[unroll]] for (uint w = 0u; w < W; w++) dist += bitCount(c[r * W + w] ^ qv[w]);
                }
                uint j = base + r * WG + t;
                if (dist <= tau && j < stop && allowed(j)) {
                    uint slot = atomicAdd(CNT[pc.c_off + q], 1u);
                    if (slot < pc.cap) {
                        CV[q * pc.cap + slot] = float(dist);
                        CI[q * pc.cap + slot] = pc.row0 + j;
                    }
                }
            }
        }
    }
}
