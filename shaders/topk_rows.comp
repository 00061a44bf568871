// topk_rows.comp — the k best entries of each row, sorted best first, ties by lower index, NaN
// after every number, masked-out columns never; one workgroup per row, any k up to the row length.
// Selection is a radix select on the 64-bit composite (order key, index): histogram passes of 11
// bits narrow a prefix until the chosen bucket holds exactly the entries still needed, so no
// candidate list is kept; the selected entries are then bitonic-sorted (in shared memory up to
// SORT_MAX, in the output row beyond). Any subgroup size; 24 KiB of shared memory.
#version 450
#extension GL_EXT_control_flow_attributes : require

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z_id = 2) in;
layout(constant_id = 3) const uint LARGEST = 0;    // 1: largest first
layout(constant_id = 4) const uint HAS_IDX = 0;    // 1: indices come from binding 1 (merging)
layout(constant_id = 5) const uint HAS_MASK = 0;   // 1: binding 2 is a bitset of allowed columns
layout(constant_id = 6) const uint SORT_MAX = 2048;

layout(binding = 0) readonly buffer X_ { float X[]; };
layout(binding = 1) readonly buffer I_ { uint IDX[]; };
layout(binding = 2) readonly buffer M_ { uint MASK[]; };
layout(binding = 3) buffer V_ { float OV[]; };
layout(binding = 4) buffer O_ { uint OI[]; };

layout(push_constant) uniform PC {
    uint m, n, k;
    uint ldx, x_off, ldi, i_off, ldv, v_off, ldo, o_off, mask_off, idx_base;
} pc;

const uint NAN_KEY = 0xFFFFFFFEu;   // after every number
const uint NONE = 0xFFFFFFFFu;      // padding: after everything

shared uint hist[2048];
shared uint skey[SORT_MAX];
shared uint sidx[SORT_MAX];
shared uint s_count, s_need, s_total, s_bucket, s_below, s_done;

// Order key: unsigned compare of keys = the requested order of the floats.
uint order_key(float v) {
    if (isnan(v)) return NAN_KEY;
    uint u = floatBitsToUint(v == 0.0 ? 0.0 : v);  // -0 and +0 are equal
    uint key = (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
    return LARGEST == 1 ? min(~key, NAN_KEY - 1u) : min(key, NAN_KEY - 1u);
}

float key_value(uint key) {
    if (key == NAN_KEY) return uintBitsToFloat(0x7FC00000u);
    if (LARGEST == 1) key = ~key;
    uint u = (key & 0x80000000u) != 0u ? (key & 0x7FFFFFFFu) : ~key;
    return uintBitsToFloat(u);
}

bool allowed(uint j) {
    if (HAS_MASK == 0) return true;
    uint bit = pc.mask_off + j;
    return ((MASK[bit >> 5] >> (bit & 31u)) & 1u) != 0u;
}

uint index_of(uint row, uint j) {
    return HAS_IDX == 1 ? IDX[pc.i_off + row * pc.ldi + j] : j + pc.idx_base;
}

// (a_key, a_idx) before (b_key, b_idx)?
bool before(uint ak, uint ai, uint bk, uint bi) { return ak < bk || (ak == bk && ai < bi); }

void main() {
    const uint WG = gl_WorkGroupSize.x;
    const uint t = gl_LocalInvocationID.x;
    const uint row = gl_WorkGroupID.x;
    if (row >= pc.m) return;
    const uint xb = pc.x_off + row * pc.ldx;

    // Radix select over (key, index), most significant bits first.
    uint phi = 0u, mhi = 0u, plo = 0u, mlo = 0u;
    bool all = false;
    if (t == 0u) { s_done = 0u; s_need = pc.k; }
    for (uint pass = 0u; pass < 6u; pass++) {
        uint shift = pass % 3u == 0u ? 21u : (pass % 3u == 1u ? 10u : 0u);
        uint bits = pass % 3u == 2u ? 10u : 11u;
        uint bmask = (1u << bits) - 1u;
        for (uint b = t; b < 2048u; b += WG) hist[b] = 0u;
        barrier();
        for (uint j = t; j < pc.n; j += WG) {
            if (!allowed(j)) continue;
            uint key = order_key(X[xb + j]);
            if ((key & mhi) != phi) continue;
            uint idx = pass >= 3u ? index_of(row, j) : 0u;
            if ((idx & mlo) != plo) continue;
            uint digit = ((pass < 3u ? key : idx) >> shift) & bmask;
            atomicAdd(hist[digit], 1u);
        }
        barrier();
        if (t == 0u) {
            uint total = 0u;
            for (uint b = 0u; b <= bmask; b++) total += hist[b];
            if (pass == 0u) s_total = total;
            uint need = s_need;
            if (total <= need) {
                // Everything still in play is taken (fewer valid entries than k).
                s_done = 2u;
            } else {
                uint below = 0u, b = 0u;
                while (below + hist[b] < need) { below += hist[b]; b++; }
                s_bucket = b;
                s_need = need - below;
                s_done = hist[b] == need - below ? 1u : 0u;
            }
        }
        barrier();
        if (s_done == 2u) { all = true; break; }
        uint b = s_bucket;
        if (pass < 3u) { phi |= b << shift; mhi |= bmask << shift; }
        else { plo |= b << shift; mlo |= bmask << shift; }
        if (s_done == 1u) break;
    }

    // Collect: entries whose masked composite is at or below the prefix.
    if (t == 0u) s_count = 0u;
    barrier();
    const bool in_shared = pc.k <= SORT_MAX;
    for (uint j = t; j < pc.n; j += WG) {
        if (!allowed(j)) continue;
        uint key = order_key(X[xb + j]);
        uint idx = index_of(row, j);
        bool take = all;
        if (!take) {
            uint hk = key & mhi, lk = idx & mlo;
            take = hk < phi || (hk == phi && lk <= plo);
        }
        if (!take) continue;
        uint slot = atomicAdd(s_count, 1u);
        if (slot >= pc.k) continue;  // cannot happen; guards the writes
        if (in_shared) {
            skey[slot] = key;
            sidx[slot] = idx;
        } else {
            OV[pc.v_off + row * pc.ldv + slot] = key_value(key);
            OI[pc.o_off + row * pc.ldo + slot] = idx;
        }
    }
    barrier();
    const uint cnt = min(s_count, pc.k);

    // Bitonic sort, ascending at every step (the first step of each stage compares mirrored
    // pairs), so positions past cnt act as +infinity and never move.
    uint size = 1u;
    while (size < cnt) size <<= 1u;
    const uint vb = pc.v_off + row * pc.ldv, ob = pc.o_off + row * pc.ldo;
    for (uint stage = 2u; stage <= size; stage <<= 1u) {
        for (uint step = stage >> 1u; step > 0u; step >>= 1u) {
            for (uint i = t; i < size / 2u; i += WG) {
                uint lo, hi;
                if (step == stage >> 1u) {
                    uint block = i / step, off = i % step;
                    lo = block * stage + off;
                    hi = block * stage + stage - 1u - off;
                } else {
                    uint block = i / step, off = i % step;
                    lo = block * 2u * step + off;
                    hi = lo + step;
                }
                if (hi >= cnt) continue;
                if (in_shared) {
                    if (before(skey[hi], sidx[hi], skey[lo], sidx[lo])) {
                        uint k0 = skey[lo]; skey[lo] = skey[hi]; skey[hi] = k0;
                        uint i0 = sidx[lo]; sidx[lo] = sidx[hi]; sidx[hi] = i0;
                    }
                } else {
                    uint kl = order_key(OV[vb + lo]), kh = order_key(OV[vb + hi]);
                    uint il = OI[ob + lo], ih = OI[ob + hi];
                    if (before(kh, ih, kl, il)) {
                        float v0 = OV[vb + lo]; OV[vb + lo] = OV[vb + hi]; OV[vb + hi] = v0;
                        OI[ob + lo] = ih; OI[ob + hi] = il;
                    }
                }
            }
            memoryBarrierBuffer();
            barrier();
        }
    }

    for (uint i = t; i < pc.k; i += WG) {
        if (i < cnt) {
            if (in_shared) {
                OV[vb + i] = key_value(skey[i]);
                OI[ob + i] = sidx[i];
            }
        } else {
            OV[vb + i] = LARGEST == 1 ? uintBitsToFloat(0xFF800000u) : uintBitsToFloat(0x7F800000u);
            OI[ob + i] = NONE;
        }
    }
}
